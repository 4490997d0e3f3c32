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

import {
  closeSync, copyFileSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeSync,
} from "node:fs";
import { join } from "node:path";
import { encodeSafetensors, openSafetensors } from "../io/safetensors.js";
import { configToJson, type MobileLLMConfig } from "../model/config.js";
import type { AdamWState } from "./adamw.js";
import type { DataCounts, DataPosition } from "./data.js";
import { readParams, type TrainParams } from "./params.js";

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
export function saveCheckpoint(outDir: string, c: MobileLLMConfig, params: TrainParams, opt: AdamWState,
                               state: TrainerState, tokenizerFile?: string): string {
  const name = checkpointName(state.step);
  const final = join(outDir, name);
  const tmp = join(outDir, `.tmp-${name}-${process.pid}`);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });

  const text = (o: unknown) => [new TextEncoder().encode(JSON.stringify(o, null, 2) + "\n")];
  writeFileSynced(join(tmp, "config.json"), text(configToJson(c)));
  const weights = params.layout.tensors.map((t) => ({
    name: t.name, dtype: "F32" as const, shape: t.shape, bytes: bytesOf(params.flat.subarray(t.offset, t.offset + t.size)),
  }));
  writeFileSynced(join(tmp, "model.safetensors"), encodeSafetensors(weights));
  const total = params.layout.total;
  writeFileSynced(join(tmp, "optimizer.safetensors"), encodeSafetensors([
    { name: "exp_avg", dtype: "F32", shape: [total], bytes: bytesOf(opt.m) },
    { name: "exp_avg_sq", dtype: "F32", shape: [total], bytes: bytesOf(opt.v) },
  ], { format: "pt", layout: "flat, in the tensor order of model.safetensors", step: String(opt.step) }));
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
    const name = readFileSync(latest, "utf8").trim();
    if (/^checkpoint-\d+$/.test(name) && existsSync(join(outDir, name, "trainer_state.json"))) return join(outDir, name);
  }
  if (!existsSync(outDir)) return null;
  const steps = readdirSync(outDir).map((f) => /^checkpoint-(\d+)$/.exec(f)).filter((m) => m !== null)
    .filter((m) => existsSync(join(outDir, m![0], "trainer_state.json"))).map((m) => Number(m![1])).sort((a, b) => b - a);
  return steps.length ? join(outDir, checkpointName(steps[0]!)) : null;
}

/** Restore weights, optimizer moments and trainer state from a checkpoint folder. */
export function loadCheckpoint(dir: string, c: MobileLLMConfig, params: TrainParams, opt: AdamWState): TrainerState {
  const weights = openSafetensors(join(dir, "model.safetensors"));
  try {
    readParams(params, weights, c);
  } finally {
    weights.close();
  }
  const optFile = openSafetensors(join(dir, "optimizer.safetensors"));
  try {
    for (const [name, dst] of [["exp_avg", opt.m], ["exp_avg_sq", opt.v]] as const) {
      const t = optFile.tensors.get(name);
      if (!t || t.dtype !== "F32" || t.numel !== dst.length) {
        throw new Error(`${optFile.path}: "${name}" missing or not F32[${dst.length}]; the checkpoint does not match this model`);
      }
      t.read(bytesOf(dst));
    }
  } finally {
    optFile.close();
  }
  const file = join(dir, "trainer_state.json");
  let state: TrainerState;
  try {
    state = JSON.parse(readFileSync(file, "utf8")) as TrainerState;
  } catch (e) {
    throw new Error(`${file}: cannot read the trainer state (${(e as Error).message})`);
  }
  if (!Number.isInteger(state.step) || state.step < 0 || !state.data) throw new Error(`${file}: missing "step" or "data"`);
  opt.step = state.step;
  return state;
}
