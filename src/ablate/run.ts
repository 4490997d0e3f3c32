// `mobilellm ablate`: train every configuration of the chosen studies (studies.ts) with the same
// data, tokens, schedule and seeds through the one training loop (src/train/trainer.ts pretrain),
// evaluate each on a held-out split no run trains on, and write the report (report.ts).
//
// The output folder:
//   ablate.json           the settings (budget, data, vocabulary); a rerun must use the same
//   data/                 tokenizer.model, train/ and val/ in the training-data layout (prepare.ts)
//   runs/<key>-seed<s>/   one pretrain run folder per configuration and seed (checkpoints, loss.jsonl),
//                         result.json once trained and evaluated
//   report.md, summary.json, <study>.svg
//
// A killed study continues where it stopped: finished runs (result.json) are read back, the
// unfinished one resumes from its latest checkpoint (bit-exact, as pretrain --resume is), and the
// rest start. An AbortSignal (Ctrl-C in the CLI) stops after the current step with a checkpoint.

import { cpus, platform } from "node:os";
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { openSafetensors } from "../io/files.js";
import { createKernels, type BackendName } from "../kernels/index.js";
import { configToJson, parameterCount, type MobileLLMConfig } from "../model/config.js";
import { numApplications } from "../model/state.js";
import { loadTokenizer } from "../load.js";
import { trainBpeTokenizer } from "../tokenizer/index.js";
import { writeFileAtomic, writeTextAtomic } from "../train/checkpoint.js";
import { TokenStream } from "../train/data.js";
import { parseLossLog, type LossRecord } from "../train/loss-curve.js";
import { readParams } from "../train/params.js";
import { prepare, splitText } from "../train/prepare.js";
import { allocTrainState } from "../train/state.js";
import { evaluate, pretrain, RECIPE_DEFAULTS } from "../train/trainer.js";
import { decodeUtf8File } from "../util/utf8.js";
import { writeReport, type RunResult } from "./report.js";
import { buildStudies, checkEqualParams, describeConfig, type Budget, type Study } from "./studies.js";

/** Where the text comes from: a raw text file (split, tokenized with a BPE tokenizer trained here) or a prepared folder. */
export type AblateData = { text: string } | { prepared: string };

export interface AblateOptions {
  budget: Budget;
  studies: Study["name"][];
  data: AblateData;
  out: string;
  backend?: BackendName;
  /** Threads of the wasm kernels (results are bit-identical for every count). */
  threads?: number;
  signal?: AbortSignal;
  log?: (message: string) => void;
  /** After every training step of every run. */
  onProgress?: (p: AblateProgress) => void;
}

export interface AblateProgress {
  study: string;
  run: string;
  /** 1-based index of the run among the runs this call plans, and their number. */
  runIndex: number;
  runs: number;
  step: number;
  steps: number;
  loss: number;
  /** Estimated seconds left for all planned runs (from this call's measured speed), if known. */
  etaSeconds?: number;
  /** Work done and planned, in arbitrary units (per-token multiply-adds × steps). */
  done: number;
  total: number;
}

export interface AblateResult {
  stopped: "finished" | "aborted";
  reportDir: string;
  /** Runs trained (or resumed) by this call, and runs read back as already finished. */
  trained: string[];
  skipped: string[];
}

const FORMAT = "mobilellm ablate";
/** The held-out fraction: the data README's convention for tiny Shakespeare, also used for --data folders (last lines). */
const VALIDATION_FRACTION = 0.1;

/** Prepared data of an ablation: training and validation base paths, vocabulary, bytes per validation token. */
export interface AblationData {
  train: string;
  val: string;
  vocabSize: number;
  /** UTF-8 bytes per validation token (for bits per byte), when the source records it. */
  valBytesPerToken: number | null;
  tokenizer: string | null;
  /** Next-token predictions per line of the data (the budget's for a text file; a prepared folder's own). */
  seqLen: number;
  description: string;
}

function readJson(file: string): Record<string, unknown> {
  try {
    return JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>;
  } catch (e) {
    throw new Error(`${file}: cannot read (${(e as Error).message}); remove it, or choose another --out`);
  }
}

/** Bytes per token recorded by `prepare` (text bytes over all tokens, including the dropped tail). */
function bytesPerToken(prepareJson: Record<string, unknown>): number | null {
  const bytes = prepareJson.text_bytes,
    tokens = prepareJson.tokens,
    dropped = prepareJson.dropped_tokens ?? 0;
  return typeof bytes === "number" && typeof tokens === "number" && typeof dropped === "number" && tokens + dropped > 0
    ? bytes / (tokens + dropped)
    : null;
}

/**
 * Build `<out>/data` once: from a text file, a BPE tokenizer of the budget's vocabulary trained on
 * the training split (the first 90% of the bytes, cut at a newline) and both splits prepared in
 * lines of seqLen + 1 ids; from a prepared folder, its lines with the last 10% held out.
 */
export async function prepareAblationData(source: AblateData, out: string, budget: Budget): Promise<AblationData> {
  const dir = join(out, "data");
  const train = join(dir, "train"),
    val = join(dir, "val"),
    tokFile = join(dir, "tokenizer.model");
  const T = budget.seqLen + 1;
  if ("text" in source) {
    const file = resolve(source.text);
    if (!existsSync(file) || !statSync(file).isFile()) throw new Error(`${source.text}: text file not found`);
    if (!existsSync(join(val, "prepare.json"))) {
      mkdirSync(dir, { recursive: true });
      const text = splitText(decodeUtf8File(readFileSync(file), file), "train", VALIDATION_FRACTION);
      writeFileAtomic(tokFile, [trainBpeTokenizer(text, { vocabSize: budget.vocabSize })]);
      const tok = await loadTokenizer(tokFile);
      const encoder = {
        encode: (t: string) => tok.encode(t, { addBos: false }),
        bosId: tok.bosId,
        eosId: tok.eosId,
        vocabSize: tok.vocabSize,
      };
      prepare(encoder, {
        inputs: [file],
        out: train,
        seqLen: budget.seqLen,
        split: "train",
        validationFraction: VALIDATION_FRACTION,
        tokenizerFile: tokFile,
      });
      prepare(encoder, { inputs: [file], out: val, seqLen: budget.seqLen, split: "validation", validationFraction: VALIDATION_FRACTION });
    }
    const p = readJson(join(val, "prepare.json"));
    return {
      train,
      val,
      vocabSize: budget.vocabSize,
      valBytesPerToken: bytesPerToken(p),
      tokenizer: tokFile,
      seqLen: budget.seqLen,
      description:
        `${file.split(/[\\/]/).pop()}: BPE tokenizer of ${budget.vocabSize} pieces trained on the training split (first 90% of the bytes); ` +
        `the last 10% (from the first newline after the 90% mark) held out for validation; lines of ${T} ids`,
    };
  }
  // A prepared folder: <dir>/1/*.jsonl, with prepare.json (vocab_size, text_bytes) or tokenizer.model beside.
  const src = resolve(source.prepared);
  const folder = join(src, "1");
  if (!existsSync(folder) || !statSync(folder).isDirectory()) {
    throw new Error(
      `--data ${source.prepared}: no ${folder} folder; --data takes a folder written by \`mobilellm prepare\` (BASEPATH/1/*.jsonl)`,
    );
  }
  const prep = existsSync(join(src, "prepare.json")) ? readJson(join(src, "prepare.json")) : {};
  let vocabSize = typeof prep.vocab_size === "number" ? prep.vocab_size : 0;
  const srcTok = existsSync(join(src, "tokenizer.model")) ? join(src, "tokenizer.model") : null;
  if (srcTok) vocabSize = Math.max(vocabSize, (await loadTokenizer(srcTok)).vocabSize);
  if (!vocabSize)
    throw new Error(`--data ${source.prepared}: neither prepare.json (vocab_size) nor tokenizer.model says the vocabulary size`);
  if (!existsSync(join(val, "1", "data.jsonl"))) {
    const lines = readdirSync(folder)
      .filter((f) => f.endsWith(".jsonl"))
      .sort()
      .flatMap((f) =>
        readFileSync(join(folder, f), "utf8")
          .split("\n")
          .filter((l) => l.trim() !== ""),
      );
    const held = Math.max(budget.batchSize, Math.round(lines.length * VALIDATION_FRACTION));
    if (lines.length < held + budget.batchSize) {
      throw new Error(
        `--data ${source.prepared}: ${lines.length} lines are too few to hold out ${held} for validation and still train on batches of ${budget.batchSize}`,
      );
    }
    mkdirSync(join(train, "1"), { recursive: true });
    mkdirSync(join(val, "1"), { recursive: true });
    writeTextAtomic(join(train, "1", "data.jsonl"), lines.slice(0, lines.length - held).join("\n") + "\n");
    writeTextAtomic(join(val, "1", "data.jsonl"), lines.slice(lines.length - held).join("\n") + "\n");
    if (srcTok) writeFileAtomic(tokFile, [readFileSync(srcTok)]);
  }
  const stream = new TokenStream(train, vocabSize, 0);
  const seqLen = stream.firstLineLength() - 1;
  stream.close();
  return {
    train,
    val,
    vocabSize,
    valBytesPerToken: bytesPerToken(prep),
    tokenizer: existsSync(tokFile) ? tokFile : null,
    seqLen,
    description:
      `prepared folder ${src.split(/[\\/]/).pop()} (vocabulary ${vocabSize}, lines of ${seqLen + 1} ids); its last 10% of lines held out for validation` +
      (bytesPerToken(prep) === null
        ? "; no prepare.json text_bytes, so no bits per byte"
        : "; bits per byte use the folder's bytes per token"),
  };
}

/** Mean validation loss (nats/token) of a checkpoint over every full batch of the held-out split. */
async function evaluateCheckpoint(
  ckpt: string,
  c: MobileLLMConfig,
  valSeqs: Int32Array[],
  B: number,
  backend: BackendName,
  threads: number | undefined,
): Promise<number> {
  const k = await createKernels(backend, threads !== undefined ? { threads } : {});
  try {
    const s = allocTrainState(k, c, B, valSeqs[0]!.length);
    const file = await openSafetensors(join(ckpt, "model.safetensors"));
    try {
      await readParams(s.params, file, c);
    } finally {
      file.close();
    }
    return evaluate(s, valSeqs);
  } finally {
    await k.dispose?.();
  }
}

/** Multiply-adds per token of a config's matmuls (for the progress estimate only). */
function workPerToken(c: MobileLLMConfig): number {
  const perLayer = parameterCount({ ...c, numLayers: 1, vocabSize: 0 });
  return numApplications(c) * perLayer + c.vocabSize * c.hiddenSize;
}

/** Run (or finish, or report) the studies. */
export async function runAblation(o: AblateOptions): Promise<AblateResult> {
  const log = o.log ?? (() => {});
  const backend = o.backend ?? "wasm";
  let b = o.budget;
  mkdirSync(o.out, { recursive: true });
  // The settings that make runs comparable; a rerun into the same folder must match them.
  const { purpose: _purpose, ...budgetSettings } = b; // (the purpose is words, not a setting)
  const settings = {
    budget: budgetSettings,
    data: "text" in o.data ? { text: resolve(o.data.text) } : { prepared: resolve(o.data.prepared) },
  };
  const settingsFile = join(o.out, "ablate.json");
  if (existsSync(settingsFile)) {
    const prev = readJson(settingsFile);
    if (JSON.stringify({ budget: prev.budget, data: prev.data }) !== JSON.stringify(settings)) {
      throw new Error(
        `${settingsFile}: this folder holds an ablation with other settings (budget, --steps/--seeds or --data); ` +
          `use the same flags to continue it, or another --out`,
      );
    }
  } else if (readdirSync(o.out).length > 0) {
    throw new Error(`${o.out}: the folder is not empty and holds no ablation (ablate.json); choose another --out`);
  }
  const data = await prepareAblationData(o.data, o.out, b);
  writeTextAtomic(settingsFile, JSON.stringify({ format: FORMAT, ...settings }, null, 2) + "\n");
  b = { ...b, seqLen: data.seqLen }; // a prepared folder's lines set the sequence length

  const studies = buildStudies(b, data.vocabSize).filter((s) => o.studies.includes(s.name));
  const budgetParams = parameterCount(studies[0]!.variants.find((v) => v.key === "base")!.config);
  for (const s of studies) {
    checkEqualParams(s, budgetParams);
    log(`study ${s.name} (${s.paperRef}): ${s.title}`);
    for (const v of s.variants) log(`  ${v.label.padEnd(14)} ${describeConfig(v.config)}`);
  }

  // Every (configuration, seed) once, in study order: the base is trained once for all studies.
  interface Planned {
    id: string;
    study: string;
    config: MobileLLMConfig;
    seed: number;
    work: number;
  }
  const plan: Planned[] = [];
  for (const s of studies) {
    for (const v of s.variants) {
      for (const seed of b.seeds) {
        const id = `${v.key}-seed${seed}`;
        if (plan.some((p) => p.id === id)) continue;
        plan.push({ id, study: s.name, config: v.config, seed, work: workPerToken(v.config) * b.steps });
      }
    }
  }
  const valStream = new TokenStream(data.val, data.vocabSize, b.seqLen + 1);
  const valSeqs = valStream.readPass();
  valStream.close();
  if (valSeqs.length < b.batchSize)
    throw new Error(`${data.val}: the held-out split has ${valSeqs.length} sequences, fewer than one batch of ${b.batchSize}`);
  const results = new Map<string, RunResult>();
  const trained: string[] = [],
    skipped: string[] = [];
  const total = plan.reduce((a, p) => a + p.work, 0);
  let done = 0,
    measuredWork = 0,
    measuredSeconds = 0;
  const report = () =>
    writeReport(o.out, { budget: b, budgetParams, studies, results, data, backend, threads: o.threads ?? null, machine: machine() });

  for (const [i, p] of plan.entries()) {
    const dir = join(o.out, "runs", p.id),
      resultFile = join(dir, "result.json");
    if (existsSync(resultFile)) {
      results.set(p.id, readJson(resultFile) as unknown as RunResult);
      skipped.push(p.id);
      done += p.work;
      continue;
    }
    const started = performance.now();
    const resume = existsSync(join(dir, "run.json"));
    // wall time of the sessions that trained this run (a session ended by SIGKILL is not counted)
    const secondsFile = join(dir, "seconds.json");
    const prevSeconds = existsSync(secondsFile) ? Number(readJson(secondsFile).seconds) || 0 : 0;
    log(`${resume ? "resuming" : "training"} ${p.id} (${i + 1}/${plan.length}): ${describeConfig(p.config)}`);
    let stepWork = 0,
      firstStep = -1;
    const res = await pretrain({
      config: p.config,
      recipe: { ...RECIPE_DEFAULTS, steps: b.steps, batchSize: b.batchSize, seqLen: b.seqLen, lr: b.lr, warmup: b.warmup, seed: p.seed },
      data: data.train,
      out: dir,
      saveEvery: b.evalEvery,
      resume,
      backend,
      ...(o.threads !== undefined ? { threads: o.threads } : {}),
      ...(data.tokenizer ? { tokenizer: data.tokenizer } : {}),
      evalData: data.val,
      evalSequences: b.evalSequences,
      ...(o.signal ? { signal: o.signal } : {}),
      log: (m) => log(`  ${p.id}: ${m}`),
      onStep: (r) => {
        if (firstStep < 0) firstStep = r.step - 1;
        stepWork = (r.step - firstStep) * (p.work / b.steps);
        const seconds = measuredSeconds + (performance.now() - started) / 1000,
          work = measuredWork + stepWork;
        const now = done + (r.step / b.steps) * p.work;
        o.onProgress?.({
          study: p.study,
          run: p.id,
          runIndex: i + 1,
          runs: plan.length,
          step: r.step,
          steps: b.steps,
          loss: r.loss,
          ...(work > 0 && seconds > 1 ? { etaSeconds: ((total - now) * seconds) / work } : {}),
          done: now,
          total,
        });
      },
    });
    measuredWork += stepWork;
    measuredSeconds += (performance.now() - started) / 1000;
    trained.push(p.id);
    if (res.stopped === "aborted") {
      if (existsSync(dir))
        writeTextAtomic(secondsFile, JSON.stringify({ seconds: prevSeconds + (performance.now() - started) / 1000 }) + "\n");
      log(`interrupted in ${p.id} at step ${res.step}: run the same command again to continue (finished runs are kept)`);
      report();
      return { stopped: "aborted", reportDir: o.out, trained, skipped };
    }
    const valLoss = await evaluateCheckpoint(res.checkpoint, p.config, valSeqs, b.batchSize, backend, o.threads);
    const records: LossRecord[] = parseLossLog(readFileSync(join(dir, "loss.jsonl"), "utf8"));
    const result: RunResult = {
      id: p.id,
      key: p.id.replace(/-seed\d+$/, ""),
      seed: p.seed,
      config: configToJson(p.config),
      params: parameterCount(p.config),
      steps: res.step,
      tokens: res.step * b.batchSize * (b.seqLen + 1),
      val_loss: valLoss,
      val_bpb: data.valBytesPerToken ? valLoss / Math.LN2 / data.valBytesPerToken : null,
      val_sequences: Math.floor(valSeqs.length / b.batchSize) * b.batchSize,
      final_train_loss: records.at(-1)?.loss ?? null,
      seconds: prevSeconds + (performance.now() - started) / 1000,
    };
    writeTextAtomic(resultFile, JSON.stringify(result, null, 2) + "\n");
    results.set(p.id, result);
    done += p.work;
    log(`${p.id}: validation loss ${valLoss.toFixed(4)}${result.val_bpb !== null ? `, ${result.val_bpb.toFixed(4)} bits per byte` : ""}`);
    report();
  }
  report();
  return { stopped: "finished", reportDir: o.out, trained, skipped };
}

/** The machine, for the report. */
function machine(): { cpu: string; cores: number; platform: string; node: string } {
  const c = cpus();
  return { cpu: c[0]?.model.trim() ?? "unknown", cores: c.length, platform: `${platform()}/${process.arch}`, node: process.version };
}
