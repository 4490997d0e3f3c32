// The ablation report: summary.json (every number), report.md (what was compared, the paper's
// claim, our result as mean ± standard deviation over seeds, whether it agrees) and one SVG chart
// of the training curves per study (hand-written SVG, no dependency). Rewritten after every run,
// so a report exists while the studies are still running (unfinished studies say so).

import { readFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { writeTextAtomic } from "../train/checkpoint.js";
import { parseLossLog, type LossRecord } from "../train/loss-curve.js";
import { parameterCount } from "../model/config.js";
import type { Budget, Study } from "./studies.js";
import type { AblationData } from "./run.js";

/** One trained and evaluated run (runs/<id>/result.json). */
export interface RunResult {
  id: string;
  key: string;
  seed: number;
  config: Record<string, unknown>;
  params: number;
  steps: number;
  tokens: number;
  /** Mean next-token loss over the whole held-out split, nats per token. */
  val_loss: number;
  /** The same in bits per UTF-8 byte of the held-out text (null when the data does not record its bytes). */
  val_bpb: number | null;
  val_sequences: number;
  final_train_loss: number | null;
  /** Wall time of training and evaluating this run. */
  seconds: number;
}

export interface ReportContext {
  budget: Budget;
  budgetParams: number;
  studies: Study[];
  results: Map<string, RunResult>;
  data: AblationData;
  backend: string;
  threads: number | null;
  machine: { cpu: string; cores: number; platform: string; node: string };
}

/** Mean and sample standard deviation (n − 1; 0 for a single value). */
export function meanStd(xs: number[]): { mean: number; std: number } {
  const n = xs.length,
    mean = xs.reduce((a, b) => a + b, 0) / n;
  const std = n > 1 ? Math.sqrt(xs.reduce((a, x) => a + (x - mean) ** 2, 0) / (n - 1)) : 0;
  return { mean, std };
}

export interface VariantSummary {
  key: string;
  label: string;
  layers: number;
  applications: number;
  hidden: number;
  heads: number;
  kv_heads: number;
  ffn: string;
  ffn_size: number;
  embedding: "shared" | "separate";
  layer_sharing: string;
  params: number;
  param_diff: number;
  seeds: number[];
  val_loss: number[];
  val_bpb: (number | null)[];
  val_loss_mean: number | null;
  val_loss_std: number | null;
  val_bpb_mean: number | null;
  val_bpb_std: number | null;
}

export interface StudySummary {
  name: string;
  title: string;
  paper_ref: string;
  claim: string;
  expected_best: string;
  complete: boolean;
  variants: VariantSummary[];
  /** Lowest mean validation loss, once complete. */
  best: string | null;
  /** "agrees", "agrees (within noise)", "disagrees (within noise)", "disagrees", or null before the study is complete. */
  verdict: string | null;
  /** The verdict's numbers in words. */
  detail: string | null;
}

/**
 * Whether the paper's choice has the lowest mean validation loss, and whether the gap to the
 * nearest other variant exceeds the seeds' spread (the larger of the two standard deviations).
 * With one seed there is no spread: the verdict says so.
 */
export function verdict(variants: VariantSummary[], expected: string): { best: string; verdict: string; detail: string } {
  const ranked = [...variants].sort((a, b) => a.val_loss_mean! - b.val_loss_mean!);
  const best = ranked[0]!,
    exp = variants.find((v) => v.label === expected)!;
  const rival = best === exp ? ranked[1]! : best;
  const gap = Math.abs(rival.val_loss_mean! - exp.val_loss_mean!);
  const spread = Math.max(exp.val_loss_std!, rival.val_loss_std!);
  const seeds = exp.seeds.length;
  const fmt = (x: number) => x.toFixed(4);
  const agrees = best === exp;
  const clear = seeds > 1 && gap > spread;
  const v = agrees
    ? clear || seeds === 1
      ? "agrees"
      : "agrees (within noise)"
    : clear || seeds === 1
      ? "disagrees"
      : "disagrees (within noise)";
  const detail =
    `${agrees ? `${exp.label} is best, ahead of ${rival.label}` : `${best.label} beats the paper's choice ${exp.label}`} by ${fmt(gap)} nats/token; ` +
    (seeds > 1
      ? `the larger seed standard deviation of the two is ${fmt(spread)}, so the gap is ${clear ? "larger" : "not larger"} than the spread`
      : "one seed: no spread measured");
  return { best: best.label, verdict: v, detail };
}

export function summarize(ctx: ReportContext): StudySummary[] {
  return ctx.studies.map((s) => {
    const variants: VariantSummary[] = s.variants.map((v) => {
      const c = v.config;
      const runs = ctx.budget.seeds.map((seed) => ctx.results.get(`${v.key}-seed${seed}`)).filter((r): r is RunResult => r !== undefined);
      const loss = runs.map((r) => r.val_loss),
        bpb = runs.map((r) => r.val_bpb);
      const complete = runs.length === ctx.budget.seeds.length;
      const l = complete ? meanStd(loss) : null;
      const bb = complete && bpb.every((x) => x !== null) ? meanStd(bpb as number[]) : null;
      return {
        key: v.key,
        label: v.label,
        layers: c.numLayers,
        applications: c.layerSharing ? 2 * c.numLayers : c.numLayers,
        hidden: c.hiddenSize,
        heads: c.numHeads,
        kv_heads: c.numKvHeads,
        ffn: c.ffnType ?? "swiglu",
        ffn_size: c.intermediateSize,
        embedding: c.shareEmbedding ? "shared" : "separate",
        layer_sharing: c.layerSharing ? (c.layerSharingOrder ?? "immediate") : "none",
        params: parameterCount(c),
        param_diff: parameterCount(c) / ctx.budgetParams - 1,
        seeds: runs.map((r) => r.seed),
        val_loss: loss,
        val_bpb: bpb,
        val_loss_mean: l?.mean ?? null,
        val_loss_std: l?.std ?? null,
        val_bpb_mean: bb?.mean ?? null,
        val_bpb_std: bb?.std ?? null,
      };
    });
    const complete = variants.every((v) => v.val_loss_mean !== null);
    const ver = complete ? verdict(variants, s.expectedBest) : null;
    return {
      name: s.name,
      title: s.title,
      paper_ref: s.paperRef,
      claim: s.claim,
      expected_best: s.expectedBest,
      complete,
      variants,
      best: ver?.best ?? null,
      verdict: ver?.verdict ?? null,
      detail: ver?.detail ?? null,
    };
  });
}

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"];

/** Trailing mean over `w` steps (the per-step loss of one small batch is noisy). */
function smooth(records: LossRecord[], w: number): { step: number; loss: number }[] {
  const out: { step: number; loss: number }[] = [];
  let sum = 0;
  records.forEach((r, i) => {
    sum += r.loss;
    if (i >= w) sum -= records[i - w]!.loss;
    out.push({ step: r.step, loss: sum / Math.min(i + 1, w) });
  });
  return out;
}

/**
 * A 720×420 chart of one study: every run's training loss (a trailing mean over `w` steps, one
 * colour per configuration, one line per seed) and its validation loss on the held-out slice
 * (dots) against step.
 */
export function studySvg(title: string, series: { label: string; runs: LossRecord[][] }[], w: number): string {
  const W = 720,
    H = 420,
    left = 60,
    right = 150,
    top = 34,
    bottom = 42;
  const pw = W - left - right,
    ph = H - top - bottom;
  const lines = series.map((s) => s.runs.map((r) => smooth(r, w)));
  const vals = lines
    .flat(2)
    .map((p) => p.loss)
    .concat(series.flatMap((s) => s.runs.flat().flatMap((r) => (r.val_loss !== undefined ? [r.val_loss] : []))));
  const maxStep = Math.max(1, ...series.flatMap((s) => s.runs.flat().map((r) => r.step)));
  // the first steps sit far above the rest: the y range starts at the 5th step's level so the ends are readable
  const late = lines
    .flat(2)
    .filter((p) => p.step >= Math.min(5, maxStep))
    .map((p) => p.loss);
  let lo = vals.length ? Math.min(...vals) : 0,
    hi = late.length ? Math.max(...late) : 1;
  if (!(hi - lo > 1e-9)) {
    lo -= 0.5;
    hi += 0.5;
  }
  const x = (s: number) => left + (s / maxStep) * pw;
  const y = (v: number) => top + (1 - (Math.min(v, hi) - lo) / (hi - lo)) * ph;
  const o: string[] = [];
  o.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="11">`,
  );
  o.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  o.push(`<text x="${left + pw / 2}" y="20" text-anchor="middle" font-size="13">${esc(title)}</text>`);
  for (let i = 0; i <= 4; i++) {
    const v = lo + ((hi - lo) * i) / 4,
      yy = y(v).toFixed(1);
    o.push(`<line x1="${left}" y1="${yy}" x2="${left + pw}" y2="${yy}" stroke="#ddd"/>`);
    o.push(`<text x="${left - 6}" y="${yy}" text-anchor="end" dominant-baseline="middle">${v.toFixed(2)}</text>`);
    const s = Math.round((maxStep * i) / 4);
    o.push(`<text x="${x(s).toFixed(1)}" y="${H - bottom + 16}" text-anchor="middle">${s}</text>`);
  }
  o.push(`<text x="${left + pw / 2}" y="${H - 8}" text-anchor="middle">optimizer step</text>`);
  o.push(`<text x="16" y="${top + ph / 2}" transform="rotate(-90 16 ${top + ph / 2})" text-anchor="middle">loss (nats/token)</text>`);
  o.push(`<rect x="${left}" y="${top}" width="${pw}" height="${ph}" fill="none" stroke="#888"/>`);
  series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length]!;
    lines[i]!.forEach((pts) => {
      if (pts.length === 0) return;
      const d = pts.map((p, j) => `${j ? "L" : "M"}${x(p.step).toFixed(1)},${y(p.loss).toFixed(1)}`).join("");
      o.push(`<path d="${d}" fill="none" stroke="${color}" stroke-width="1.2" stroke-opacity="0.8"/>`);
    });
    for (const r of s.runs.flat()) {
      if (r.val_loss !== undefined) o.push(`<circle cx="${x(r.step).toFixed(1)}" cy="${y(r.val_loss).toFixed(1)}" r="3" fill="${color}"/>`);
    }
    const ly = top + 14 + i * 16;
    o.push(`<line x1="${left + pw + 12}" y1="${ly}" x2="${left + pw + 30}" y2="${ly}" stroke="${color}" stroke-width="2"/>`);
    o.push(`<text x="${left + pw + 34}" y="${ly}" dominant-baseline="middle">${esc(s.label)} (${s.runs.length})</text>`);
  });
  const ny = top + 14 + series.length * 16 + 8;
  o.push(`<text x="${left + pw + 12}" y="${ny}" font-size="10" fill="#555">lines: train, ${w}-step mean</text>`);
  o.push(`<text x="${left + pw + 12}" y="${ny + 13}" font-size="10" fill="#555">dots: validation slice</text>`);
  o.push(`<text x="${left + pw + 12}" y="${ny + 26}" font-size="10" fill="#555">(n): seeds</text>`);
  o.push(`</svg>`);
  return o.join("\n") + "\n";
}

const pm = (m: number | null, s: number | null, digits = 4) => (m === null ? "–" : `${m.toFixed(digits)} ± ${s!.toFixed(digits)}`);
const pct = (x: number) => `${x >= 0 ? "+" : ""}${(x * 100).toFixed(2)}%`;
const duration = (s: number) =>
  s >= 3600 ? `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min` : s >= 60 ? `${Math.round(s / 60)} min` : `${s.toFixed(0)} s`;

function reportMarkdown(ctx: ReportContext, summaries: StudySummary[]): string {
  const b = ctx.budget,
    runs = [...ctx.results.values()];
  const trainSeconds = runs.reduce((a, r) => a + r.seconds, 0);
  const tokens = b.steps * b.batchSize * (b.seqLen + 1);
  const L: string[] = [];
  L.push(`# MobileLLM's design study at micro scale (budget \`${b.name}\`)`, "");
  L.push(
    "The MobileLLM paper (Liu et al., ICML 2024) §2 compares design choices for sub-billion models trained on",
    "many GPUs. `mobilellm ablate` repeats its comparisons with very small models trained on a CPU: each study",
    "trains the compared configurations at an equal parameter budget with the same data, tokens, schedule and",
    "seeds, and compares their loss on held-out text no run trained on. The paper measures zero-shot accuracy",
    "of models trained on up to a trillion tokens; we measure validation loss of models trained for a few hundred",
    "steps. Agreement here is suggestive, disagreement is a real result at this scale, and neither settles the",
    "question at the paper's scale.",
    "",
  );
  L.push("## Setup", "");
  L.push("| | |", "|---|---|");
  L.push(`| budget | \`${b.name}\`: ${b.purpose} |`);
  L.push(`| parameters | ${ctx.budgetParams.toLocaleString("en-US")} for the base configuration; every configuration within ±2% |`);
  L.push(`| tokens per run | ${tokens.toLocaleString("en-US")} (${b.steps} steps × ${b.batchSize} sequences × ${b.seqLen + 1} tokens) |`);
  L.push(`| seeds | ${b.seeds.length} per configuration (${b.seeds.join(", ")}: initial weights; data order is the same for all) |`);
  L.push(
    `| recipe | AdamW, peak lr ${b.lr}, ${b.warmup} warmup steps then cosine decay to 0.1×, weight decay 0.1 (not on RMSNorm weights), gradient clipping 1.0 (the pretrain recipe) |`,
  );
  L.push(`| data | ${ctx.data.description} |`);
  L.push(
    `| evaluation | mean next-token loss (nats/token) over every full batch of the held-out split${ctx.data.valBytesPerToken ? `; bits per byte = loss / ln 2 / ${ctx.data.valBytesPerToken.toFixed(3)} bytes per token` : ""} |`,
  );
  L.push(
    `| machine | ${ctx.machine.cpu}, ${ctx.machine.cores} cores (os.cpus()), ${ctx.machine.platform}, Node ${ctx.machine.node}; ${ctx.backend} kernels on ${ctx.threads ?? "all available"} thread(s) |`,
  );
  L.push(
    `| wall time | ${duration(trainSeconds)} for ${runs.length} runs (training and evaluation; the machine was shared with other jobs) |`,
  );
  L.push("");
  L.push("## Results", "");
  L.push("| study | paper | the paper's choice | best here | verdict |", "|---|---|---|---|---|");
  for (const s of summaries)
    L.push(`| [${s.title}](#${s.name}) | ${s.paper_ref} | ${s.expected_best} | ${s.best ?? "–"} | ${s.verdict ?? "not finished"} |`);
  L.push(
    "",
    "Verdict: *agrees* when the paper's choice has the lowest mean validation loss and the gap to the",
    "nearest other configuration is larger than the seeds' standard deviation; *within noise* when the gap is",
    "not larger than that spread.",
    "",
  );
  summaries.forEach((s, i) => {
    L.push(`<a id="${s.name}"></a>`, `## ${i + 1}. ${s.title} (${s.paper_ref})`, "");
    L.push(`**The paper:** ${s.claim}`, "");
    L.push(
      "| configuration | layers | width D | heads | KV heads | FFN | embedding | sharing | parameters | vs budget |",
      "|---|---|---|---|---|---|---|---|---|---|",
    );
    for (const v of s.variants) {
      L.push(
        `| ${v.label} | ${v.layers}${v.applications !== v.layers ? ` (${v.applications} applied)` : ""} | ${v.hidden} | ${v.heads} | ${v.kv_heads} | ` +
          `${v.ffn} ${v.ffn_size} | ${v.embedding} | ${v.layer_sharing} | ${v.params.toLocaleString("en-US")} | ${pct(v.param_diff)} |`,
      );
    }
    L.push("", "| configuration | validation loss (mean ± std) | bits per byte (mean ± std) | per seed (loss) |", "|---|---|---|---|");
    for (const v of s.variants) {
      L.push(
        `| ${v.label} | ${pm(v.val_loss_mean, v.val_loss_std)} | ${pm(v.val_bpb_mean, v.val_bpb_std)} | ${v.val_loss.map((x) => x.toFixed(4)).join(", ") || "–"} |`,
      );
    }
    L.push(
      "",
      s.complete
        ? `**Our result:** ${s.verdict} — ${s.detail}.`
        : "**Our result:** not finished (runs missing); rerun the same command to complete it.",
      "",
    );
    if (s.complete && s.variants.length > 2) {
      const ranked = [...s.variants].sort((a, b) => a.val_loss_mean! - b.val_loss_mean!);
      L.push(
        `Ranking by mean validation loss (lowest first): ${ranked.map((v) => `${v.label} ${v.val_loss_mean!.toFixed(4)}`).join(" < ")}.`,
        "",
      );
    }
    L.push(`![${esc(s.title)}](${s.name}.svg)`, "");
  });
  L.push("## Reproduce", "");
  L.push("```", `mobilellm ablate --budget ${b.name} --threads 1 --out ablate-${b.name}`, "```", "");
  L.push(
    "The same command continues an interrupted run: finished runs are kept, the unfinished one resumes from its",
    "checkpoint bit-exactly. Thread count does not change any result (the kernels are bit-identical for every count).",
    "",
  );
  return L.join("\n");
}

/** Write summary.json, report.md and one SVG per study into `out`. */
export function writeReport(out: string, ctx: ReportContext): void {
  const summaries = summarize(ctx);
  const runs = [...ctx.results.values()];
  writeTextAtomic(
    join(out, "summary.json"),
    JSON.stringify(
      {
        format: "mobilellm ablate summary",
        budget: ctx.budget,
        budget_params: ctx.budgetParams,
        data: { description: ctx.data.description, vocab_size: ctx.data.vocabSize, val_bytes_per_token: ctx.data.valBytesPerToken },
        machine: ctx.machine,
        backend: ctx.backend,
        threads: ctx.threads,
        wall_seconds: runs.reduce((a, r) => a + r.seconds, 0),
        studies: summaries,
        runs: runs.map((r) => ({
          id: r.id,
          seed: r.seed,
          params: r.params,
          steps: r.steps,
          tokens: r.tokens,
          val_loss: r.val_loss,
          val_bpb: r.val_bpb,
          final_train_loss: r.final_train_loss,
          seconds: r.seconds,
        })),
      },
      null,
      2,
    ) + "\n",
  );
  const w = Math.max(1, Math.round(ctx.budget.steps / 30));
  ctx.studies.forEach((s) => {
    const series = s.variants.map((v) => ({
      label: v.label,
      runs: ctx.budget.seeds
        .map((seed) => join(out, "runs", `${v.key}-seed${seed}`, "loss.jsonl"))
        .filter((f) => existsSync(f))
        .map((f) => parseLossLog(readFileSync(f, "utf8"))),
    }));
    writeTextAtomic(join(out, `${s.name}.svg`), studySvg(`${s.title} (${s.paperRef})`, series, w));
  });
  writeTextAtomic(join(out, "report.md"), reportMarkdown(ctx, summaries));
}
