// Training checkpoints in the Hugging Face folder layout, so every checkpoint is also a model that
// `loadModel` (and `mobilellm generate`) can run:
//
//   <out>/checkpoint-<step>/config.json           model_type "mobilellm" (configToJson)
//                          /model.safetensors     f32 master weights, Hugging Face names
//                          /optimizer.safetensors AdamW moments exp_avg, exp_avg_sq (flat, model.safetensors order)
//                          /trainer_state.json    step, data position, RNG state, data counts
//                          /tokenizer.model       copied when the run knows its tokenizer
//   <out>/latest                                  name of the newest complete checkpoint
//
// Writes are atomic: everything goes to a temporary folder, each file is fsynced, the folder is
// renamed into place, then `latest` is replaced (write + fsync + rename). A crash at any moment
// leaves the previous checkpoint intact and `latest` pointing at a complete one. Older
// checkpoints are deleted only after the new one is in place (the seed keeps one: save_total_limit 1).
// What a killed save leaves behind (temporary folders and files) is tidied on resume.
//
// Nothing non-finite is saved or resumed: weights and Adam moments holding NaN/Inf are refused,
// naming the tensor, so a diverged run never replaces its last good checkpoint. The state files
// (trainer_state.json here, the run's run.json) are validated field by field on reading.

import {
  closeSync,
  copyFileSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";
import { openSafetensors } from "../io/files.js";
import { encodeSafetensors } from "../io/safetensors.js";
import { CheckpointError } from "../io/tensor-file.js";
import { readRegularFile } from "../platform/node.js";
import type { BackendName } from "../kernels/kernels.js";
import { configToJson, parseConfig, type MobileLLMConfig } from "../model/config.js";
import type { AdamWState } from "./adamw.js";
import type { DataCounts, DataPosition } from "./data.js";
import type { LossRecord } from "./loss-curve.js";
import type { Recipe } from "./trainer.js";
import { firstNonFinite } from "../model/weights.js";
import { readParams, type ParamLayout, type TrainParams } from "./params.js";

export interface TrainerState {
  /** Optimizer steps completed. */
  step: number;
  /** Where the data stream continues. */
  data: DataPosition;
  dataCounts: DataCounts;
  rng: number[];
  /** Training tokens consumed so far. */
  tokens: number;
}

function bytesOf(a: Float32Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** Write `chunks` to `path` and fsync it. */
function writeFileSynced(path: string, chunks: Uint8Array[]): void {
  const fd = openSync(path, "w");
  try {
    for (const c of chunks) {
      let off = 0;
      while (off < c.length) off += writeSync(fd, c, off, c.length - off);
    }
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function fsyncDir(dir: string): void {
  const fd = openSync(dir, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Atomically replace a file: write a temporary beside it, fsync, rename over. */
export function writeFileAtomic(path: string, chunks: Uint8Array[]): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSynced(tmp, chunks);
  renameSync(tmp, path);
}

export function writeTextAtomic(path: string, text: string): void {
  writeFileAtomic(path, [new TextEncoder().encode(text)]);
}

export function checkpointName(step: number): string {
  return `checkpoint-${step}`;
}

/** Save a checkpoint of the run in `outDir`; returns its folder. */
export function saveCheckpoint(
  outDir: string,
  c: MobileLLMConfig,
  params: TrainParams,
  opt: AdamWState,
  state: TrainerState,
  tokenizerFile?: string,
): string {
  // A diverged state never replaces the last good checkpoint.
  assertFinite(params, opt, `step ${state.step}: not saved (the last good checkpoint is kept)`);
  // A run that had a tokenizer keeps it in every checkpoint, even if this call was not told about it.
  const previous = latestCheckpoint(outDir);
  if (!tokenizerFile && previous && existsSync(join(previous, "tokenizer.model"))) tokenizerFile = join(previous, "tokenizer.model");
  const name = checkpointName(state.step);
  const final = join(outDir, name);
  const tmp = join(outDir, `.tmp-${name}-${process.pid}`);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });

  const text = (o: unknown) => [new TextEncoder().encode(JSON.stringify(o, null, 2) + "\n")];
  writeFileSynced(join(tmp, "config.json"), text(configToJson(c)));
  const weights = params.layout.tensors.map((t) => ({
    name: t.name,
    dtype: "F32" as const,
    shape: t.shape,
    bytes: bytesOf(params.flat.subarray(t.offset, t.offset + t.size)),
  }));
  writeFileSynced(join(tmp, "model.safetensors"), encodeSafetensors(weights));
  const total = params.layout.total;
  writeFileSynced(
    join(tmp, "optimizer.safetensors"),
    encodeSafetensors(
      [
        { name: "exp_avg", dtype: "F32", shape: [total], bytes: bytesOf(opt.m) },
        { name: "exp_avg_sq", dtype: "F32", shape: [total], bytes: bytesOf(opt.v) },
      ],
      { format: "pt", layout: "flat, in the tensor order of model.safetensors", step: String(opt.step) },
    ),
  );
  writeFileSynced(join(tmp, "trainer_state.json"), text(state));
  if (tokenizerFile) {
    copyFileSync(tokenizerFile, join(tmp, "tokenizer.model"));
    const fd = openSync(join(tmp, "tokenizer.model"), "r+");
    fsyncSync(fd);
    closeSync(fd);
  }
  fsyncDir(tmp);

  // Move into place. If a checkpoint of the same step exists (a re-run), set it aside first and
  // delete it only once the new one is in place.
  const aside = `${final}.old-${process.pid}`;
  if (existsSync(final)) renameSync(final, aside);
  renameSync(tmp, final);
  fsyncDir(outDir);
  writeTextAtomic(join(outDir, "latest"), name + "\n");
  fsyncDir(outDir);
  rmSync(aside, { recursive: true, force: true });
  for (const f of readdirSync(outDir)) {
    if (/^checkpoint-\d+$/.test(f) && f !== name) rmSync(join(outDir, f), { recursive: true, force: true });
  }
  return final;
}

/** The newest complete checkpoint folder in `outDir`, or null. */
export function latestCheckpoint(outDir: string): string | null {
  const latest = join(outDir, "latest");
  if (existsSync(latest)) {
    let name = "";
    try {
      name = readFileSync(latest, "utf8").trim();
    } catch (e) {
      throw new Error(
        `${latest}: cannot read the name of the latest checkpoint (${(e as Error).message}); remove it to fall back to the newest checkpoint-N folder`,
      );
    }
    if (/^checkpoint-\d+$/.test(name) && existsSync(join(outDir, name, "trainer_state.json"))) return join(outDir, name);
  }
  if (!existsSync(outDir)) return null;
  const steps = readdirSync(outDir)
    .map((f) => /^checkpoint-(\d+)$/.exec(f))
    .filter((m) => m !== null)
    .filter((m) => existsSync(join(outDir, m![0], "trainer_state.json")))
    .map((m) => Number(m![1]))
    .sort((a, b) => b - a);
  return steps.length ? join(outDir, checkpointName(steps[0]!)) : null;
}

/** The first NaN/Inf in a buffer of this layout (weights, gradients or Adam moments), by tensor name, or null. */
export function firstNonFiniteParam(layout: ParamLayout, flat: Float32Array): { name: string; index: number } | null {
  for (const t of layout.tensors) {
    const i = firstNonFinite(flat.subarray(t.offset, t.offset + t.size), "f32");
    if (i >= 0) return { name: t.name, index: i };
  }
  return null;
}

/** Throw naming the first tensor of weights or Adam moments that holds NaN/Inf (`where` says whose). */
function assertFinite(params: TrainParams, opt: AdamWState, where: string): void {
  for (const [what, flat] of [
    ["weight", params.flat],
    ["Adam first moment (exp_avg) of", opt.m],
    ["Adam second moment (exp_avg_sq) of", opt.v],
  ] as const) {
    const bad = firstNonFiniteParam(params.layout, flat);
    if (bad) throw new NonFiniteError(`${where}: ${what} "${bad.name}" holds a non-finite value (NaN or Inf) at element ${bad.index}`);
  }
}

/** NaN or Inf found in training state: the message names the tensor or step. */
export class NonFiniteError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "NonFiniteError";
  }
}

/** Restore weights, optimizer moments and trainer state from a checkpoint folder. */
export async function loadCheckpoint(dir: string, c: MobileLLMConfig, params: TrainParams, opt: AdamWState): Promise<TrainerState> {
  const weights = await openSafetensors(join(dir, "model.safetensors"));
  try {
    await readParams(params, weights, c);
  } finally {
    weights.close();
  }
  const optFile = await openSafetensors(join(dir, "optimizer.safetensors"));
  try {
    for (const [name, dst] of [
      ["exp_avg", opt.m],
      ["exp_avg_sq", opt.v],
    ] as const) {
      const t = optFile.tensors.get(name);
      if (t?.dtype !== "F32" || t.numel !== dst.length) {
        throw new Error(`${optFile.path}: "${name}" missing or not F32[${dst.length}]; the checkpoint does not match this model`);
      }
      await t.read(bytesOf(dst));
    }
  } finally {
    optFile.close();
  }
  const file = join(dir, "trainer_state.json");
  const state = parseTrainerState(readJson(file, "trainer state"), file);
  assertFinite(params, opt, dir);
  opt.step = state.step;
  return state;
}

/** Read a small JSON file, naming it in every error. */
export function readJson(file: string, what: string): unknown {
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(readRegularFile(file, what, 16 << 20));
  } catch (e) {
    throw new Error(e instanceof CheckpointError ? e.message : `${file}: cannot read the ${what} (${(e as Error).message})`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new Error(`${file}: the ${what} is not valid JSON (${(e as Error).message}); the file is corrupt`);
  }
}

/** Field-by-field checks of state files: every failure names the file and the field. */
class Fields {
  constructor(
    readonly file: string,
    readonly o: Record<string, unknown>,
    readonly path = "",
  ) {}
  static of(file: string, v: unknown, what: string): Fields {
    if (typeof v !== "object" || v === null || Array.isArray(v))
      throw new Error(`${file}: the ${what} is not a JSON object; the file is corrupt`);
    return new Fields(file, v as Record<string, unknown>);
  }
  fail(key: string, expected: string): never {
    throw new Error(
      `${this.file}: field "${this.path}${key}" is ${JSON.stringify(this.o[key]) ?? "missing"}, expected ${expected}; the file is corrupt`,
    );
  }
  int(key: string, min = 0, max = Number.MAX_SAFE_INTEGER): number {
    const v = this.o[key];
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < min || v > max) this.fail(key, `an integer in [${min}, ${max}]`);
    return v as number;
  }
  num(key: string, min: number, max = Infinity, minInclusive = true): number {
    const v = this.o[key];
    if (typeof v !== "number" || !Number.isFinite(v) || (minInclusive ? v < min : v <= min) || v > max) {
      this.fail(key, `a finite number ${minInclusive ? ">=" : ">"} ${min}${max < Infinity ? ` and <= ${max}` : ""}`);
    }
    return v as number;
  }
  str(key: string, optional = false): string | undefined {
    const v = this.o[key];
    if (v === undefined && optional) return undefined;
    if (typeof v !== "string" || v === "" || v.includes("\0")) this.fail(key, "a non-empty string");
    return v as string;
  }
  bool(key: string, optional = false): boolean | undefined {
    const v = this.o[key];
    if (v === undefined && optional) return undefined;
    if (typeof v !== "boolean") this.fail(key, "true or false");
    return v as boolean;
  }
  sub(key: string): Fields {
    const v = this.o[key];
    if (typeof v !== "object" || v === null || Array.isArray(v)) this.fail(key, "an object");
    return new Fields(this.file, v as Record<string, unknown>, `${this.path}${key}.`);
  }
}

/** Validate trainer_state.json: step, data position and counts, RNG state, tokens. */
export function parseTrainerState(json: unknown, file: string): TrainerState {
  const f = Fields.of(file, json, "trainer state");
  const step = f.int("step");
  const d = f.sub("data");
  const data = { file: d.int("file"), byte: d.int("byte"), line: d.int("line"), pass: d.int("pass") };
  const n = f.sub("dataCounts");
  const dataCounts: DataCounts = { sequences: n.int("sequences"), malformed: n.int("malformed") };
  const rng = f.o.rng;
  if (!Array.isArray(rng) || rng.length !== 1 || !rng.every((v) => Number.isInteger(v) && v >= 0 && v <= 0xffffffff)) {
    f.fail("rng", "one unsigned 32-bit integer (the Mulberry32 state)");
  }
  return { step, data, dataCounts, rng: rng as number[], tokens: f.int("tokens") };
}

/** The options of a run besides its recipe, stored in run.json so --resume restores every one. */
export interface RunOptions {
  /** Checkpoint every N steps (0: only at the end). */
  saveEvery: number;
  /** tokenizer.model copied into checkpoints (absolute path), if the run has one. */
  tokenizer?: string;
  evalData?: string;
  evalSequences?: number;
  node: string;
  worldSize: number;
  rank: number;
  strict: boolean;
}

export interface RunFile {
  format: string;
  config: MobileLLMConfig;
  /** The config as stored (compared verbatim on resume). */
  configJson: unknown;
  recipe: Recipe;
  data: string;
  backend: BackendName;
  /** Absent in runs written before options were recorded. */
  options?: RunOptions;
}

/** Read and validate `<out>/run.json` field by field. */
export function readRunFile(file: string): RunFile {
  const f = Fields.of(file, readJson(file, "training run description (run.json)"), "run description");
  const format = f.str("format")!;
  let config: MobileLLMConfig;
  try {
    config = parseConfig(f.o.config, `${file} (field "config")`);
  } catch (e) {
    throw new Error((e as Error).message + "; the file is corrupt");
  }
  const r = f.sub("recipe");
  const recipe: Recipe = {
    steps: r.int("steps", 1),
    batchSize: r.int("batchSize", 1),
    seqLen: r.int("seqLen", 2),
    gradAccum: r.int("gradAccum", 1),
    lr: r.num("lr", 0),
    warmup: r.int("warmup"),
    minLrRatio: r.num("minLrRatio", 0, 1),
    beta1: r.num("beta1", 0, 1),
    beta2: r.num("beta2", 0, 1),
    eps: r.num("eps", 0, Infinity, false),
    weightDecay: r.num("weightDecay", 0),
    maxGradNorm: r.num("maxGradNorm", 0, Infinity, false),
    seed: r.int("seed"),
  };
  const backend = f.str("backend", true) ?? "ts";
  if (backend !== "ts" && backend !== "wasm") f.fail("backend", `"ts" or "wasm"`);
  const out: RunFile = { format, config, configJson: f.o.config, recipe, data: f.str("data")!, backend: backend as BackendName };
  if (f.o.options !== undefined) {
    const o = f.sub("options");
    const options: RunOptions = {
      saveEvery: o.int("saveEvery", 0),
      node: o.str("node")!,
      worldSize: o.int("worldSize", 1),
      rank: o.int("rank"),
      strict: o.bool("strict")!,
    };
    if (options.rank >= options.worldSize) o.fail("rank", `an integer below worldSize (${options.worldSize})`);
    const tokenizer = o.str("tokenizer", true),
      evalData = o.str("evalData", true);
    if (tokenizer !== undefined) options.tokenizer = tokenizer;
    if (evalData !== undefined) options.evalData = evalData;
    if (o.o.evalSequences !== undefined) options.evalSequences = o.int("evalSequences", 1);
    out.options = options;
  }
  return out;
}

/**
 * Tidy what a save killed midway leaves behind: temporary checkpoint folders and files
 * (`.tmp-checkpoint-N-PID`, `latest.tmp-PID`, `loss.jsonl.tmp-PID`, ...) are removed; a checkpoint
 * set aside to be replaced (`checkpoint-N.old-PID`) is put back if its replacement never arrived.
 */
export function cleanupInterruptedSaves(outDir: string, log?: (m: string) => void): void {
  if (!existsSync(outDir)) return;
  for (const f of readdirSync(outDir)) {
    const aside = /^(checkpoint-\d+)\.old-\d+$/.exec(f);
    if (aside && !existsSync(join(outDir, aside[1]!))) {
      renameSync(join(outDir, f), join(outDir, aside[1]!));
      log?.(`restored ${aside[1]} (a save was interrupted while replacing it)`);
    } else if (aside || /^\.tmp-checkpoint-\d+-\d+$/.test(f) || /^(latest|loss\.jsonl|loss\.svg|run\.json)\.tmp-\d+$/.test(f)) {
      rmSync(join(outDir, f), { recursive: true, force: true });
      log?.(`removed ${f}, left by an interrupted save`);
    }
  }
}

/**
 * The loss log's records up to `step`. A line cut short by a kill during an append (the last one,
 * without its newline) is dropped; any other line that is not a record is an error naming it.
 */
export function readLossRecords(file: string, step: number): LossRecord[] {
  if (!existsSync(file)) return [];
  const lines = new TextDecoder().decode(readRegularFile(file, "loss log", 1 << 30)).split("\n");
  lines.pop(); // "" after the final newline, or a torn last line
  const records: LossRecord[] = [];
  lines.forEach((line, i) => {
    if (line.trim() === "") return;
    let r: LossRecord;
    try {
      r = JSON.parse(line) as LossRecord;
    } catch (e) {
      throw new Error(`${file}:${i + 1}: not a loss record (${(e as Error).message}); the log is corrupt`);
    }
    if (typeof r !== "object" || r === null || !Number.isSafeInteger(r.step))
      throw new Error(`${file}:${i + 1}: a loss record without an integer "step"; the log is corrupt`);
    if (r.step <= step) records.push(r);
  });
  return records;
}
