// Run state: the activation buffers of one forward chunk and the KV cache. Planned once per
// model from the config and the largest chunk, allocated from the backend (so on wasm they live
// in linear memory beside the weights), and reused by every forward: nothing allocates inside.
//
// The block code (block.ts) reads and writes a BlockActs. Inference points every application at
// one set of buffers (the residual stream updated in place, one normalized copy, silu(gate)·up
// written over gate); training (src/train/state.ts) gives each application its own set, so the
// backward pass finds every activation it needs.

import type { Allocator } from "../kernels/kernels.js";
import { planBytes } from "../kernels/plan.js";
import { layerSharingOrderOf, type MobileLLMConfig } from "./config.js";
import type { RopeTables } from "./rotary.js";

/** The buffers of one block application over T tokens (rows). */
export interface BlockActs {
  hInTD: Float32Array; // residual stream entering the block [T, D]
  xn1TD: Float32Array; // input_layernorm(h) [T, D]
  qTHDh: Float32Array; // queries, after RoPE [T, H, Dh]
  attTHDh: Float32Array; // attention output, heads concatenated [T, H, Dh]
  hMidTD: Float32Array; // h + attention: the residual stream between the two sub-layers [T, D]
  xn2TD: Float32Array; // post_attention_layernorm(hMid) [T, D]
  gateTF: Float32Array; // SwiGLU gate projection [T, F]
  upTF: Float32Array; // SwiGLU up projection [T, F]
  actTF: Float32Array; // silu(gate)·up, input of down_proj [T, F]
  outTD: Float32Array; // a sub-layer's output before its residual add [T, D]
  hOutTD: Float32Array; // residual stream leaving the block [T, D]
  scoresP: Float32Array; // attention scores of one query over the cache [P]
}

/** Gradient scratch of one block's backward (shared by all applications; see block.ts). */
export interface BlockGradScratch {
  dhTD: Float32Array; // d loss / d residual stream: d hOut on entry, d hIn on return [T, D]
  dxnTD: Float32Array; // d of a normalized input [T, D]
  dtmpTD: Float32Array; // one matmul's input gradient before it is summed in [T, D]
  dqTHDh: Float32Array; // [T, H, Dh]
  dkTKVDh: Float32Array; // [T, KV, Dh]
  dvTKVDh: Float32Array; // [T, KV, Dh]
  dattTHDh: Float32Array; // [T, H, Dh]
  dactTF: Float32Array; // [T, F]
  dgateTF: Float32Array; // [T, F]
  dupTF: Float32Array; // [T, F]
  scratch2T: Float32Array; // attention backward: one row's probabilities and their gradient [2·T]
}

export interface Activations {
  /** Largest number of tokens one chunk may hold (prefill is processed in chunks of this size). */
  maxT: number;
  xTD: Float32Array; // the residual stream h [T, D]
  xnTD: Float32Array; // a normalized copy of h, input of the attention / MLP [T, D]
  qTHDh: Float32Array; // queries [T, H, Dh]
  attTHDh: Float32Array; // attention output, heads concatenated [T, H, Dh]
  outTD: Float32Array; // a sub-layer's output before the residual add [T, D]
  gateTF: Float32Array; // SwiGLU gate projection, then silu(gate)·up [T, F]
  upTF: Float32Array; // SwiGLU up projection [T, F]
  scoresP: Float32Array; // attention scores of one query over the cache [P]
  logitsTV: Float32Array; // output logits [T, V]
  /** The same buffers as the block code sees them (residual in place, buffers reused). */
  block: BlockActs;
}

/**
 * The KV cache: for every attention *application*, keys (already rotated) and values of every
 * position seen so far, [P, KV, Dh] each. With layer sharing a block runs twice per token and each
 * run attends over its own inputs, so it needs its own slot: 2·L slots, not L. (The published
 * training code keeps one per block, which is only right when nothing is cached.)
 */
export interface KVCache {
  /** Positions held (the next token goes at this position). */
  length: number;
  /** Capacity in positions. */
  maxP: number;
  kPKVDh: Float32Array[]; // one per application
  vPKVDh: Float32Array[];
}

/** How many times the blocks are applied per token: L, or 2·L with layer sharing. */
export function numApplications(c: MobileLLMConfig): number {
  return c.numLayers * (c.layerSharing ? 2 : 1);
}

/**
 * The block that application `a` (0 .. 2L−1 with layer sharing) uses, by the sharing order (§2.3):
 * immediate a/2 (0 0 1 1 2 2), repeat_all a mod L (0 1 2 0 1 2), reverse (0 1 2 2 1 0).
 */
export function blockOf(c: MobileLLMConfig, a: number): number {
  if (!c.layerSharing) return a;
  const L = c.numLayers;
  switch (layerSharingOrderOf(c)) {
    case "immediate":
      return a >> 1;
    case "repeat_all":
      return a % L;
    case "reverse":
      return a < L ? a : 2 * L - 1 - a;
  }
}

export function allocActivations(k: Allocator, c: MobileLLMConfig, maxT: number, maxP: number): Activations {
  const D = c.hiddenSize,
    Q = c.numHeads * c.headDim,
    F = c.intermediateSize,
    V = c.vocabSize;
  const xTD = k.allocF32(maxT * D),
    xnTD = k.allocF32(maxT * D),
    qTHDh = k.allocF32(maxT * Q);
  const attTHDh = k.allocF32(maxT * Q),
    outTD = k.allocF32(maxT * D);
  const gateTF = k.allocF32(maxT * F),
    upTF = k.allocF32(maxT * F),
    scoresP = k.allocF32(maxP);
  return {
    maxT,
    xTD,
    xnTD,
    qTHDh,
    attTHDh,
    outTD,
    gateTF,
    upTF,
    scoresP,
    logitsTV: k.allocF32(maxT * V),
    block: {
      hInTD: xTD,
      xn1TD: xnTD,
      qTHDh,
      attTHDh,
      hMidTD: xTD,
      xn2TD: xnTD,
      gateTF,
      upTF,
      actTF: gateTF,
      outTD,
      hOutTD: xTD,
      scoresP,
    },
  };
}

export function allocKVCache(k: Allocator, c: MobileLLMConfig, maxP: number): KVCache {
  const n = maxP * c.numKvHeads * c.headDim;
  const kPKVDh: Float32Array[] = [],
    vPKVDh: Float32Array[] = [];
  for (let a = 0; a < numApplications(c); a++) {
    kPKVDh.push(k.allocF32(n));
    vPKVDh.push(k.allocF32(n));
  }
  return { length: 0, maxP, kPKVDh, vPKVDh };
}

export function allocRopeTables(k: Allocator, maxP: number, Dh: number): RopeTables {
  return { cosPR: k.allocF32(maxP * (Dh / 2)), sinPR: k.allocF32(maxP * (Dh / 2)) };
}

/** Everything a model runs on besides its weights: activations, KV cache and rotary tables. */
export interface RunState {
  act: Activations;
  cache: KVCache;
  rope: RopeTables; // filled by the model (fillRopeTables) once allocated
}

/** Declare the run state for chunks of maxT tokens and maxP positions (a memory plan: Kernels.allocate). */
export function allocRunState(a: Allocator, c: MobileLLMConfig, maxT: number, maxP: number): RunState {
  return { act: allocActivations(a, c, maxT, maxP), cache: allocKVCache(a, c, maxP), rope: allocRopeTables(a, maxP, c.headDim) };
}

/** Run state in bytes, measured from its plan (allocRunState). */
export function runStateBytes(c: MobileLLMConfig, maxT: number, maxP: number): number {
  return planBytes((a) => allocRunState(a, c, maxT, maxP));
}

/** Run state that any model may plan without question (the 125M model at 2048 positions needs ~100 MB). */
export const RUN_STATE_FREE_BYTES = 256 << 20;
/** Run state larger than this cannot be allocated on any backend (wasm32 addresses 4 GiB). */
export const RUN_STATE_MAX_BYTES = 2 ** 32;

/**
 * Why the run state for this context cannot or should not be allocated, or undefined. It is
 * checked before any allocation. A context taken from config.json (not asked for explicitly) may
 * not need more than RUN_STATE_FREE_BYTES or 8× the weights, whichever is more: a
 * max_position_embeddings of 1e8 beside a small checkpoint is a corrupt config, not a plan.
 */
export function runStateProblem(
  c: MobileLLMConfig,
  maxT: number,
  maxP: number,
  weightBytes: number,
  explicitMaxP: boolean,
): string | undefined {
  const bytes = runStateBytes(c, maxT, maxP);
  const mb = (b: number) => `${(b / 2 ** 20).toFixed(b < 10 * 2 ** 20 ? 1 : 0)} MB`;
  if (bytes > RUN_STATE_MAX_BYTES) {
    return (
      `a context of ${maxP} positions needs ${mb(bytes)} of KV cache and activations, more than the 4 GiB any backend can hold; ` +
      `load with a smaller maxPositions`
    );
  }
  if (!explicitMaxP && bytes > Math.max(RUN_STATE_FREE_BYTES, 8 * weightBytes)) {
    return (
      `max_position_embeddings ${maxP} would need ${mb(bytes)} of KV cache and activations for ${mb(weightBytes)} of weights; ` +
      `that is not a plausible config (check config.json), or ask for the context you need with the maxPositions option`
    );
  }
  return undefined;
}
