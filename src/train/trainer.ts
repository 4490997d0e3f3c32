// The pretraining loop of the MobileLLM recipe (pretrain.py + the Hugging Face Trainer):
// for every optimizer step, `gradAccum` micro-batches of B sequences of T tokens go forward and
// backward (gradients accumulate, each micro-batch's loss scaled by 1/gradAccum), the gradients
// are clipped to global norm 1.0, and AdamW updates the weights at the learning rate of a linear
// warmup followed by a cosine decay to 0.1× the peak. The run writes into its output folder:
//
//   run.json        the run's model config and recipe (a folder holds one run)
//   loss.jsonl      one line per optimizer step (see loss-curve.ts), loss.svg beside it
//   checkpoint-N/   the latest checkpoint (see checkpoint.ts), `latest` names it
//
// Everything a step depends on (weights, Adam moments, step, data position) is in a checkpoint,
// and the arithmetic is deterministic, so `resume` continues bit-exactly.

import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, rmSync, statSync, writeSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { createKernels, type BackendName, type KernelOptions } from "../kernels/index.js";
import type { Kernels } from "../kernels/kernels.js";
import { configToJson, parameterCount, type MobileLLMConfig } from "../model/config.js";
import { adamwStep, clipGradNorm, cosineLr, decayGroups, ADAMW_DEFAULTS, type AdamWConfig } from "./adamw.js";
import {
  cleanupInterruptedSaves,
  latestCheckpoint,
  loadCheckpoint,
  NonFiniteError,
  readLossRecords,
  readRunFile,
  saveCheckpoint,
  writeTextAtomic,
  type RunOptions,
  type TrainerState,
} from "./checkpoint.js";
import { TokenStream, type DataOptions } from "./data.js";
import { initParams } from "./init.js";
import { lossCurveSvg, type LossRecord } from "./loss-curve.js";
import { trainBackward, trainForward, zeroGrads } from "./model.js";
import { Mulberry32 } from "../util/rng.js";
import { allocTrainState, type TrainState } from "./state.js";

/** The hyper-parameters that define a run (stored in run.json; a resume must use the same). */
export interface Recipe {
  steps: number; // total optimizer steps (sets the cosine schedule)
  batchSize: number; // B sequences per micro-batch
  seqLen: number; // L next-token predictions per sequence: each data line holds L + 1 ids (taken from the data)
  gradAccum: number; // micro-batches per optimizer step
  lr: number; // peak learning rate
  warmup: number; // linear warmup steps
  minLrRatio: number; // cosine floor as a fraction of the peak
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  maxGradNorm: number;
  seed: number; // weight initialisation
}

export const RECIPE_DEFAULTS: Omit<Recipe, "steps" | "batchSize" | "seqLen"> = {
  gradAccum: 1,
  lr: ADAMW_DEFAULTS.lr,
  warmup: 1000,
  minLrRatio: 0.1,
  beta1: ADAMW_DEFAULTS.beta1,
  beta2: ADAMW_DEFAULTS.beta2,
  eps: ADAMW_DEFAULTS.eps,
  weightDecay: ADAMW_DEFAULTS.weightDecay,
  maxGradNorm: 1.0,
  seed: 0,
};

export interface PretrainOptions {
  config: MobileLLMConfig;
  /** The recipe; seqLen may be left out: it is the data lines' length − 1 (given, it must be). */
  recipe: Omit<Recipe, "seqLen"> & { seqLen?: number };
  /** Base path of the training data (`<data>/<node>/*.jsonl`). */
  data: string;
  dataOptions?: DataOptions;
  out: string;
  saveEvery?: number; // checkpoint every N steps (and always at the end)
  resume?: boolean;
  force?: boolean;
  backend?: BackendName;
  /** Threads for the wasm kernels (default: the machine's available parallelism; 1: no workers). Bit-identical for every count. */
  threads?: number;
  /** Least multiply-adds per thread for a kernel call to be split (default measured; 0 splits every call). */
  minThreadWork?: number;
  /** tokenizer.model to copy into checkpoints. */
  tokenizer?: string;
  /** Validation data base path: its loss is computed at every checkpoint. */
  evalData?: string;
  /** At most this many validation sequences (default all). */
  evalSequences?: number;
  /** Stop (with a checkpoint) once this many steps are done in total, e.g. to split a run. */
  stopAfter?: number;
  signal?: AbortSignal;
  /** Informational messages (start, resume, data problems, checkpoints). */
  log?: (message: string) => void;
  /** Called after every optimizer step. */
  onStep?: (r: LossRecord, info: { totalSteps: number; tokensPerSecond: number; etaSeconds: number }) => void;
}

export interface PretrainResult {
  /** The run's recipe (seqLen from the data). */
  recipe: Recipe;
  /** Why the call ended: all steps done ("finished", also when a finished run is resumed), stopAfter, or the signal. */
  stopped: "finished" | "stopAfter" | "aborted";
  /** The records of the steps run by this call. */
  records: LossRecord[];
  checkpoint: string;
  step: number;
  tokensPerSecond: number;
  valLoss?: number;
  dataCounts: TrainerState["dataCounts"];
}

const RUN_FORMAT = "mobilellm-ts pretraining run";

function recipeDiff(a: Recipe, b: Recipe): string[] {
  return (Object.keys(a) as (keyof Recipe)[])
    .filter((k) => k !== "steps" && a[k] !== b[k])
    .map((k) => `${k}: ${b[k]} (run) vs ${a[k]} (now)`);
}

/**
 * Check the output folder (refuse another run's folder unless resuming/forcing) without writing
 * anything; returns the function that claims it once the run has started (so a failed start
 * leaves no run.json behind).
 */
function checkOutDir(o: PretrainOptions, recipe: Recipe): () => void {
  const out = o.out;
  const runFile = join(out, "run.json");
  const backend = o.backend ?? "ts";
  const d = o.dataOptions ?? {};
  const options: RunOptions = {
    saveEvery: o.saveEvery ?? 0,
    node: d.node ?? "1",
    worldSize: d.worldSize ?? 1,
    rank: d.rank ?? 0,
    strict: d.strict ?? false,
    ...(o.tokenizer ? { tokenizer: resolve(o.tokenizer) } : {}),
    ...(o.evalData ? { evalData: resolve(o.evalData) } : {}),
    ...(o.evalSequences !== undefined ? { evalSequences: o.evalSequences } : {}),
  };
  const runJson = { format: RUN_FORMAT, config: configToJson(o.config), recipe, data: resolve(o.data), backend, options };
  if (existsSync(out) && !statSync(out).isDirectory())
    throw new Error(`${out}: is a file, not a folder; the output (--out) must be a run folder (it is created if missing)`);
  let discard = false;
  if (existsSync(out) && readdirSync(out).length > 0) {
    if (o.force && !o.resume) {
      discard = true;
    } else if (!existsSync(runFile)) {
      throw new Error(
        `${out}: the output folder is not empty and holds no training run (run.json); choose another --out, or pass --force to train into it anyway`,
      );
    } else {
      const prev = readRunFile(runFile);
      if (!o.resume) {
        throw new Error(
          `${out}: already holds a training run (run.json, ${latestCheckpoint(out) ?? "no checkpoint yet"}); ` +
            `pass --resume to continue it, or --force to discard it and start over`,
        );
      }
      const diffs = JSON.stringify(prev.configJson) !== JSON.stringify(runJson.config) ? ["model config"] : [];
      diffs.push(...recipeDiff(recipe, prev.recipe));
      if (prev.backend && prev.backend !== backend) {
        o.log?.(`note: the run used the ${prev.backend} backend and resumes on ${backend}; the continuation is not bit-exact`);
      }
      if (diffs.length)
        throw new Error(
          `${runFile}: --resume with different settings than the run was started with (${diffs.join("; ")}); use the same flags, or --force to start over`,
        );
    }
  }
  return () => {
    if (discard) {
      for (const f of readdirSync(out)) {
        if (/^(run\.json|loss\.jsonl|loss\.svg|latest)$|^checkpoint-\d+$|^\.tmp-/.test(f))
          rmSync(join(out, f), { recursive: true, force: true });
      }
    }
    mkdirSync(out, { recursive: true });
    writeTextAtomic(runFile, JSON.stringify(runJson, null, 2) + "\n");
  };
}

/** Mean loss over full batches of the validation sequences (no gradients). */
export function evaluate(s: TrainState, sequences: Int32Array[]): number {
  const B = s.B,
    T = s.T;
  const batches = Math.floor(sequences.length / B);
  if (batches === 0) throw new Error(`validation needs at least ${B} sequences (one batch), got ${sequences.length}`);
  let sum = 0;
  for (let i = 0; i < batches; i++) {
    for (let b = 0; b < B; b++) s.idsN.set(sequences[i * B + b]!, b * T);
    sum += trainForward(s);
  }
  return sum / batches;
}

/** Let pending events (a signal handler's abort) run between steps: the loop itself never waits. */
function yieldToEvents(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

export async function pretrain(o: PretrainOptions): Promise<PretrainResult> {
  const c = o.config,
    log = o.log ?? (() => {});
  for (const [k, v] of Object.entries({ steps: o.recipe.steps, batchSize: o.recipe.batchSize, gradAccum: o.recipe.gradAccum })) {
    if (!(Number.isInteger(v) && v >= 1)) throw new Error(`${k} must be a positive integer, got ${v}`);
  }
  // The data lines are used as they are: their length sets the sequence length (L + 1 ids, L predictions).
  const data = new TokenStream(o.data, c.vocabSize, 0, { ...o.dataOptions, warn: (m) => log(m) });
  const lineLength = data.firstLineLength();
  if (lineLength < 2)
    throw new Error(`${data.folder}: the first line holds ${lineLength} token id(s); next-token training needs at least 2 per line`);
  if (o.recipe.seqLen !== undefined && o.recipe.seqLen !== lineLength - 1) {
    throw new Error(
      `${data.folder}: the lines hold ${lineLength} token ids (${lineLength - 1} predictions), but the sequence length asked for is ` +
        `${o.recipe.seqLen} (lines of ${o.recipe.seqLen + 1}); lines are used as they are: leave out --seq-len, or prepare the data with it`,
    );
  }
  data.seqLen = lineLength;
  const r: Recipe = { ...o.recipe, seqLen: lineLength - 1 };
  if (lineLength > c.maxPositions) {
    log(
      `note: sequences of ${lineLength} tokens are longer than the config's max_position_embeddings ${c.maxPositions} ` +
        `(rotary positions extend; the published trainer does not check either)`,
    );
  }
  const valSeqs = o.evalData
    ? new TokenStream(o.evalData, c.vocabSize, lineLength, { ...o.dataOptions, warn: (m) => log(`validation: ${m}`) }).readPass(
        o.evalSequences,
      )
    : null;
  if (valSeqs && valSeqs.length < r.batchSize)
    throw new Error(`${o.evalData}: validation needs at least ${r.batchSize} sequences (one batch), got ${valSeqs.length}`);
  const claimOutDir = checkOutDir(o, r);

  const kernelOptions: KernelOptions = {};
  if (o.threads !== undefined) kernelOptions.threads = o.threads;
  if (o.minThreadWork !== undefined) kernelOptions.minThreadWork = o.minThreadWork;
  const k = await createKernels(o.backend ?? "ts", kernelOptions);
  try {
    return await train(k, o, { r, data, valSeqs, claimOutDir, log });
  } finally {
    await k.dispose?.(); // the wasm backend's worker threads
  }
}

/** What pretrain() settles before the kernels exist: the recipe with the data's sequence length, the data, the folder claim. */
interface Prepared {
  r: Recipe;
  data: TokenStream;
  valSeqs: Int32Array[] | null;
  claimOutDir: () => void;
  log: (message: string) => void;
}

async function train(k: Kernels, o: PretrainOptions, { r, data, valSeqs, claimOutDir, log }: Prepared): Promise<PretrainResult> {
  const c = o.config;
  const T = r.seqLen + 1;
  const s = allocTrainState(k, c, r.batchSize, T);
  const opt = s.opt;
  const groups = decayGroups(s.params.layout);
  const adam: AdamWConfig = { lr: r.lr, beta1: r.beta1, beta2: r.beta2, eps: r.eps, weightDecay: r.weightDecay };
  const rng = new Mulberry32(r.seed);
  const lossFile = join(o.out, "loss.jsonl");
  let records: LossRecord[] = [];
  let state: TrainerState;

  if (o.resume) cleanupInterruptedSaves(o.out, log);
  const ckpt = o.resume ? latestCheckpoint(o.out) : null;
  if (ckpt) {
    state = await loadCheckpoint(ckpt, c, s.params, opt);
    data.seek(state.data);
    Object.assign(data.counts, state.dataCounts);
    rng.setState(state.rng);
    // keep the log of the steps up to the checkpoint (a crashed run may have logged more)
    records = readLossRecords(lossFile, state.step);
    log(`resuming from ${ckpt} at step ${state.step}`);
  } else {
    initParams(s.params, rng);
    state = { step: 0, data: data.position(), dataCounts: { ...data.counts }, rng: rng.getState(), tokens: 0 };
    log(
      `training from scratch: ${(parameterCount(c) / 1e6).toFixed(2)}M parameters, ${r.steps} steps of ` +
        `${r.batchSize}×${T}${r.gradAccum > 1 ? `×${r.gradAccum}` : ""} tokens (lines of ${T} ids: ${r.seqLen} predictions each)`,
    );
  }
  claimOutDir();
  log(`kernels: ${k.name} on ${k.threads ?? 1} thread${(k.threads ?? 1) === 1 ? "" : "s"}`);
  writeTextAtomic(lossFile, records.map((x) => JSON.stringify(x) + "\n").join(""));

  const newRecords: LossRecord[] = [];
  let lastCheckpoint = ckpt ?? "";
  let valLoss: number | undefined;
  const save = (rec?: LossRecord) => {
    if (valSeqs) {
      valLoss = evaluate(s, valSeqs);
      if (rec) rec.val_loss = valLoss;
      log(
        `step ${state.step}: validation loss ${valLoss.toFixed(4)} over ${Math.floor(valSeqs.length / r.batchSize) * r.batchSize} sequences`,
      );
    }
    // The step's line goes to the log before the checkpoint that covers it: a kill at any moment
    // leaves every step up to `latest` in the log (a resume drops lines beyond it).
    if (rec) appendLossRecord(lossFile, rec, true);
    state.data = data.position();
    state.dataCounts = { ...data.counts };
    state.rng = rng.getState();
    lastCheckpoint = saveCheckpoint(o.out, c, s.params, opt, state, o.tokenizer);
    writeTextAtomic(join(o.out, "loss.svg"), lossCurveSvg(records, `MobileLLM pretraining: ${basename(resolve(o.out))}`));
  };

  const tokensPerStep = r.batchSize * T * r.gradAccum;
  const until = Math.min(r.steps, o.stopAfter ?? Infinity);
  if (ckpt && state.step >= r.steps) {
    log(
      `the run in ${o.out} is finished: ${ckpt} is step ${state.step} of ${r.steps}; nothing to train ` +
        `(raise --steps to continue it, or --force to start over)`,
    );
  }
  const t0 = performance.now();
  let stepsRun = 0;
  await yieldToEvents();
  while (state.step < until && !o.signal?.aborted) {
    zeroGrads(s);
    let loss = 0;
    for (let micro = 0; micro < r.gradAccum; micro++) {
      data.nextBatch(s.idsN);
      loss += trainForward(s) / r.gradAccum;
      trainBackward(s, 1 / r.gradAccum);
    }
    const gradNorm = clipGradNorm(s.params.gradFlat, r.maxGradNorm);
    if (!Number.isFinite(loss) || !Number.isFinite(gradNorm)) {
      // stop before the update: the weights stay as the last step left them
      data.close();
      throw new NonFiniteError(
        `step ${state.step + 1}: the loss is ${loss} and the gradient norm ${gradNorm}: training diverged. ` +
          `Nothing was saved for this step; the last good checkpoint is ${lastCheckpoint || "none (no checkpoint yet)"}. Resume from it with a lower --lr.`,
      );
    }
    const lr = cosineLr(state.step, r.lr, r.warmup, r.steps, r.minLrRatio);
    adamwStep(s.params.flat, s.params.gradFlat, opt, adam, lr, groups, k);
    state.step++;
    state.tokens += tokensPerStep;
    stepsRun++;
    const rec: LossRecord = { step: state.step, loss, lr, grad_norm: gradNorm, tokens: state.tokens };
    records.push(rec);
    newRecords.push(rec);
    const elapsed = (performance.now() - t0) / 1000;
    const tps = (stepsRun * tokensPerStep) / elapsed;
    o.onStep?.(rec, { totalSteps: r.steps, tokensPerSecond: tps, etaSeconds: ((until - state.step) * tokensPerStep) / tps });
    const saveEvery = o.saveEvery ?? 0;
    if (state.step === until || (saveEvery > 0 && state.step % saveEvery === 0)) save(rec);
    else appendLossRecord(lossFile, rec);
    await yieldToEvents(); // a SIGINT/SIGTERM handler may abort the signal here: the step just taken is complete
  }
  const aborted = o.signal?.aborted === true && state.step < until;
  if (aborted) {
    // Interrupted between two steps: the state is consistent, so checkpoint it (atomically) now.
    if (stepsRun > 0 && !lastCheckpoint.endsWith(`checkpoint-${state.step}`)) save();
    log(
      `interrupted after step ${state.step}: ${lastCheckpoint ? `the run continues from ${lastCheckpoint} with --resume` : "no checkpoint written"}`,
    );
  }
  data.close();
  const d = data.counts;
  if (d.malformed) log(`data: ${d.sequences} sequences used; skipped ${d.malformed} malformed lines`);
  const elapsed = (performance.now() - t0) / 1000;
  const result: PretrainResult = {
    recipe: r,
    stopped: aborted ? "aborted" : state.step >= r.steps ? "finished" : "stopAfter",
    records: newRecords,
    checkpoint: lastCheckpoint,
    step: state.step,
    tokensPerSecond: stepsRun ? (stepsRun * tokensPerStep) / elapsed : 0,
    dataCounts: { ...data.counts },
  };
  if (valLoss !== undefined) result.valLoss = valLoss;
  return result;
}

/** Append one record to the loss log (fsynced before a checkpoint; a resume drops lines past it). */
function appendLossRecord(file: string, rec: LossRecord, sync = false): void {
  const fd = openSync(file, "a");
  try {
    writeSync(fd, JSON.stringify(rec) + "\n");
    if (sync) fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
