// `mobilellm ablate` with a micro budget (a few steps): the equal-parameter construction of every
// study and budget, the report's structure (report.md sections, summary.json fields, well-formed
// SVG), and resuming after Ctrl-C and after a kill: the finished runs are not redone, and the
// result equals an uninterrupted run's bit for bit.
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { BUDGETS, buildStudies, checkEqualParams, PARAM_TOLERANCE } from "../../src/ablate/studies.js";
import { meanStd, verdict, type VariantSummary } from "../../src/ablate/report.js";
import { parameterCount } from "../../src/model/config.js";
import { ByteTokenizer, prepare } from "../../src/train/prepare.js";
import { Mulberry32 } from "../../src/util/rng.js";
import { BIN, HAS_BIN, mobilellm, mobilellmAsync } from "../cli/bin-helpers.js";

const tmp = mkdtempSync(join(tmpdir(), "mobilellm-ablate-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe("equal-parameter construction", () => {
  it.each(Object.values(BUDGETS).map((b) => [b.name, b] as const))(
    "%s: every configuration of every study is within 2 percent of the base",
    (_n, b) => {
      for (const V of [b.vocabSize, 259, 1000]) {
        const studies = buildStudies(b, V);
        const P = parameterCount(studies[0]!.variants[0]!.config);
        for (const s of studies) {
          const diffs = checkEqualParams(s, P);
          for (const d of diffs) expect(Math.abs(d.diff), `${b.name} V=${V} ${s.name} ${d.key}`).toBeLessThanOrEqual(PARAM_TOLERANCE);
          // the base is the same configuration in every study (trained once)
          expect(s.variants.filter((v) => v.key === "base").map((v) => v.config)).toEqual([studies[0]!.variants[0]!.config]);
        }
        const by = (name: string, key: string) => studies.find((s) => s.name === name)!.variants.find((v) => v.key === key)!.config;
        expect(by("ffn", "relu-ffn").ffnType).toBe("relu");
        expect(by("depth", "wide-shallow").numLayers).toBeLessThan(b.base.L);
        expect(by("depth", "wide-shallow").hiddenSize).toBeGreaterThan(b.base.D);
        expect(by("embedding", "separate-embedding").shareEmbedding).toBe(false);
        // its V·D output layer displaces whole layers when it is at least half a layer's size (else the FFN pays)
        expect(by("embedding", "separate-embedding").numLayers).toBeLessThanOrEqual(b.base.L);
        expect(by("gqa", "mha").numKvHeads).toBe(b.base.H);
        expect(
          ["share-immediate", "share-repeat_all", "share-reverse"].map((k) => by("layer-sharing", k).layerSharingOrder ?? "immediate"),
        ).toEqual(["immediate", "repeat_all", "reverse"]);
      }
    },
  );
});

describe("verdict", () => {
  const v = (label: string, losses: number[]): VariantSummary => {
    const { mean, std } = meanStd(losses);
    return { label, seeds: losses.map((_, i) => i), val_loss: losses, val_loss_mean: mean, val_loss_std: std } as VariantSummary;
  };
  it("agrees only when the paper's choice is best, and says when the gap is within the seeds' spread", () => {
    expect(meanStd([1, 2, 3])).toEqual({ mean: 2, std: 1 });
    expect(verdict([v("a", [1.0, 1.01, 0.99]), v("b", [1.2, 1.21, 1.19])], "a").verdict).toBe("agrees");
    expect(verdict([v("a", [1.0, 1.3, 0.7]), v("b", [1.05, 1.06, 1.04])], "a").verdict).toBe("agrees (within noise)");
    expect(verdict([v("a", [1.2, 1.21, 1.19]), v("b", [1.0, 1.01, 0.99])], "a").verdict).toBe("disagrees");
    expect(verdict([v("a", [1.1, 1.4, 0.8]), v("b", [1.05, 1.06, 1.04])], "a").verdict).toBe("disagrees (within noise)");
  });
});

/** Tags balance and every element is closed: a well-formed XML document without a parser. */
function expectWellFormedSvg(svg: string): void {
  expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
  const stack: string[] = [];
  for (const m of svg.matchAll(/<(\/?)([a-zA-Z]+)((?:\s+[a-zA-Z][a-zA-Z0-9:-]*="[^"<]*")*)\s*(\/?)>/g)) {
    if (m[1]) expect(stack.pop(), `</${m[2]}>`).toBe(m[2]);
    else if (!m[4]) stack.push(m[2]!);
  }
  expect(stack).toEqual([]);
  // no stray markup: every '<' starts one of the tags matched above
  expect(svg.replace(/<(\/?)([a-zA-Z]+)((?:\s+[a-zA-Z][a-zA-Z0-9:-]*="[^"<]*")*)\s*(\/?)>/g, "")).not.toMatch(/[<>]/);
}

/** Deterministic text with some structure to learn. */
function text(words: number): string {
  const rng = new Mulberry32(3),
    vocab = ["the", "king", "speaks", "to", "his", "lords", "and", "queen", "of", "fair", "verona", "night"];
  const out: string[] = [];
  for (let i = 0; i < words; i++) out.push(vocab[rng.nextUint32() % vocab.length]! + (i % 9 === 8 ? ".\n" : ""));
  return out.join(" ");
}

describe.skipIf(!HAS_BIN)("mobilellm ablate, micro budget", () => {
  const data = join(tmp, "data");
  const textFile = join(tmp, "corpus.txt");
  // a prepared folder (byte tokens), as `mobilellm prepare` writes it
  writeFileSync(textFile, text(5000));
  prepare(new ByteTokenizer(), { inputs: [textFile], out: data, seqLen: 32 });
  const args = (out: string) => [
    "ablate",
    "--study",
    "ffn",
    "--budget",
    "tiny",
    "--steps",
    "18",
    "--seeds",
    "2",
    "--data",
    data,
    "--out",
    out,
    "--threads",
    "1",
    "-q",
  ];
  const RUNS = ["base-seed0", "base-seed1", "relu-ffn-seed0", "relu-ffn-seed1"];

  /** The child, stopped with `sig` once a run is mid-way (some result.json exists, an unfinished run has ≥ 8 steps logged, past its first checkpoint at 6). */
  async function interrupted(
    out: string,
    sig: NodeJS.Signals,
    after: number,
  ): Promise<{ code: number | null; stderr: string; stoppedIn: string }> {
    const child = spawn(process.execPath, [BIN, ...args(out)], { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "",
      stoppedIn = "";
    child.stderr.setEncoding("utf8").on("data", (d: string) => {
      stderr += d;
    });
    const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
    const poll = setInterval(() => {
      if (stoppedIn || !existsSync(join(out, "runs"))) return;
      const runs = readdirSync(join(out, "runs"));
      const finished = runs.filter((r) => existsSync(join(out, "runs", r, "result.json")));
      if (finished.length < after) return;
      for (const r of runs) {
        const log = join(out, "runs", r, "loss.jsonl");
        if (finished.includes(r) || !existsSync(log)) continue;
        if (
          readFileSync(log, "utf8")
            .split("\n")
            .filter((l) => l.trim()).length >= 8
        ) {
          stoppedIn = r;
          child.kill(sig);
        }
      }
    }, 5);
    const code = await exited;
    clearInterval(poll);
    expect(stoppedIn, `the child finished before it could be stopped:\n${stderr}`).not.toBe("");
    return { code, stderr, stoppedIn };
  }

  it("writes the report, and after Ctrl-C and a kill continues to exactly the uninterrupted result", { timeout: 300_000 }, async () => {
    const ref = join(tmp, "ref");
    const r0 = await mobilellmAsync(args(ref)).done; // (no time limit: the machine may be loaded)
    expect(r0.code, r0.stderr).toBe(0);

    // structure of the report
    const report = readFileSync(join(ref, "report.md"), "utf8");
    for (const heading of [
      "# MobileLLM's design study at micro scale",
      "## Setup",
      "## Results",
      "## 1. SwiGLU vs vanilla ReLU feed-forward network (§2.2.1)",
      "## Reproduce",
    ]) {
      expect(report).toContain(heading);
    }
    expect(report).toMatch(/\| swiglu \| \d\.\d{4} ± \d\.\d{4} \| \d\.\d{4} ± \d\.\d{4} \|/);
    expect(report).toMatch(/\*\*Our result:\*\* (agrees|disagrees)/);
    expect(report).toContain("![SwiGLU vs vanilla ReLU feed-forward network](ffn.svg)");
    expect(report).toMatch(/\| machine \| .*\d+ cores \(os\.cpus\(\)\)/);
    expect(report).toMatch(/\| wall time \| .* for 4 runs/);
    const summary = JSON.parse(readFileSync(join(ref, "summary.json"), "utf8"));
    expect(summary).toMatchObject({ format: "mobilellm ablate summary", budget: { name: "tiny", steps: 18, seeds: [0, 1] } });
    expect(summary.machine.cores).toBeGreaterThan(0);
    expect(summary.studies).toHaveLength(1);
    const study = summary.studies[0];
    expect(study).toMatchObject({ name: "ffn", paper_ref: "§2.2.1", expected_best: "swiglu", complete: true });
    expect(["agrees", "agrees (within noise)", "disagrees", "disagrees (within noise)"]).toContain(study.verdict);
    expect(study.variants.map((x: VariantSummary) => x.label)).toEqual(["swiglu", "relu"]);
    for (const x of study.variants as VariantSummary[]) {
      expect(x.val_loss).toHaveLength(2);
      expect(x.val_bpb.every((b) => typeof b === "number" && b > 0)).toBe(true);
      expect(x.val_loss_mean).toBeCloseTo(meanStd(x.val_loss).mean, 12);
      expect(Math.abs(x.param_diff)).toBeLessThanOrEqual(0.02);
      expect(x.params).toBe(summary.budget_params * (1 + x.param_diff));
    }
    expect(summary.runs.map((x: { id: string }) => x.id).sort()).toEqual([...RUNS].sort());
    const svg = readFileSync(join(ref, "ffn.svg"), "utf8");
    expectWellFormedSvg(svg);
    expect(svg.match(/<path /g)).toHaveLength(4); // every run
    for (const id of RUNS) expect(existsSync(join(ref, "runs", id, "latest")), id).toBe(true); // each run's checkpoint

    // Ctrl-C mid-run: checkpoint and exit 130; then a kill mid-run; then the same command finishes
    const out = join(tmp, "run");
    const a = await interrupted(out, "SIGINT", 1);
    expect(a.code, a.stderr).toBe(130);
    expect(a.stderr).toContain("interrupted: rerun the same command to continue");
    expect(existsSync(join(out, "runs", a.stoppedIn, "latest")), "a checkpoint of the interrupted run").toBe(true);
    const finishedBefore = RUNS.filter((id) => existsSync(join(out, "runs", id, "result.json")));
    const mtimes = finishedBefore.map((id) => statSync(join(out, "runs", id, "result.json")).mtimeMs);
    const b = await interrupted(out, "SIGKILL", finishedBefore.length + 1);
    expect(b.code).toBeNull();
    const r = await mobilellmAsync(args(out)).done;
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/report\.md: \d runs trained, ([1-3]) already finished/);
    expect(r.stderr).toContain(`resuming ${b.stoppedIn}`);
    // the runs finished before the first interruption were not redone
    expect(finishedBefore.map((id) => statSync(join(out, "runs", id, "result.json")).mtimeMs)).toEqual(mtimes);
    for (const id of RUNS) {
      const want = JSON.parse(readFileSync(join(ref, "runs", id, "result.json"), "utf8"));
      const got = JSON.parse(readFileSync(join(out, "runs", id, "result.json"), "utf8"));
      expect(got.val_loss, id).toBe(want.val_loss);
      expect(got.final_train_loss, id).toBe(want.final_train_loss);
      expect(readFileSync(join(out, "runs", id, "loss.jsonl"), "utf8"), id).toBe(readFileSync(join(ref, "runs", id, "loss.jsonl"), "utf8"));
    }
    const summary2 = JSON.parse(readFileSync(join(out, "summary.json"), "utf8"));
    expect(summary2.studies).toEqual(summary.studies);
  });

  it("refuses another budget in the same folder, and a missing --data", () => {
    const r = mobilellm([...args(join(tmp, "ref")), "--seeds", "3"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("this folder holds an ablation with other settings");
    const m = mobilellm(["ablate", "--data", join(tmp, "nope"), "--out", join(tmp, "x")]);
    expect(m.code).toBe(2);
    expect(m.stderr).toContain("--data");
  });
});
