// The training run state: every activation the backward pass needs, for a batch of B sequences of
// T tokens (N = B·T rows), planned once from the config and allocated from the backend. A training
// step allocates nothing.
//
// Per block application a (L of them, or 2·L with layer sharing: each run of a shared block keeps
// its own activations, and both runs' gradients accumulate into the block's one set of weights):

import type { Kernels } from "../kernels/kernels.js";
import type { MobileLLMConfig } from "../model/config.js";
import { fillRopeTables, type RopeTables } from "../model/rotary.js";
import { allocAttentionScratch, type AttentionScratch } from "./attention.js";
import { allocTrainParams, paramLayout, type TrainParams } from "./params.js";

export interface ApplicationActs {
  rstd1N: Float32Array;     // input_layernorm 1/rms per row [N]
  xn1ND: Float32Array;      // normalized input of attention [N, D]
  qNQ: Float32Array;        // queries after RoPE [B, T, H, Dh]
  kNK: Float32Array;        // keys after RoPE [B, T, KV, Dh]
  vNK: Float32Array;        // values [B, T, KV, Dh]
  probsBHTT: Float32Array;  // attention probabilities [B, H, T, T]
  attNQ: Float32Array;      // attention output, heads concatenated [N, H·Dh]
  midND: Float32Array;      // residual stream after the attention sub-layer [N, D]
  rstd2N: Float32Array;     // post_attention_layernorm 1/rms [N]
  xn2ND: Float32Array;      // normalized input of the MLP [N, D]
  gateNF: Float32Array;     // gate projection (before silu) [N, F]
  upNF: Float32Array;       // up projection [N, F]
  actNF: Float32Array;      // silu(gate)·up, input of down_proj [N, F]
}

export interface TrainState {
  config: MobileLLMConfig;
  kernels: Kernels;
  params: TrainParams;
  B: number;
  T: number;
  rope: RopeTables;         // cos/sin [T, Dh/2]
  idsN: Int32Array;         // the batch's token ids [B, T]
  residND: Float32Array[];  // residual stream entering application a (A+1 of them; the last is the blocks' output)
  apps: ApplicationActs[];
  rstdFN: Float32Array;     // final norm 1/rms [N]
  xnFND: Float32Array;      // final normalized hidden state [N, D]
  logitsNV: Float32Array;   // logits, then softmax probabilities, then d loss/d logits [N, V]
  // backward scratch
  dresND: Float32Array;     // d loss / d residual stream [N, D]
  dxnND: Float32Array;      // d loss / d a normalized input [N, D]
  dtmpND: Float32Array;     // one matmul's input gradient before it is summed in [N, D]
  dqNQ: Float32Array;
  dkNK: Float32Array;
  dvNK: Float32Array;
  dattNQ: Float32Array;
  dactNF: Float32Array;
  dgateNF: Float32Array;
  dupNF: Float32Array;
  att: AttentionScratch;    // one head's contiguous q, k, v, scores (attention.ts)
}

export function numApplications(c: MobileLLMConfig): number {
  return c.numLayers * (c.layerSharing ? 2 : 1);
}

/** Floats of activation memory for a batch (to print, and to reserve wasm memory once). */
export function trainStateFloats(c: MobileLLMConfig, B: number, T: number): number {
  const N = B * T, D = c.hiddenSize, Q = c.numHeads * c.headDim, K = c.numKvHeads * c.headDim;
  const F = c.intermediateSize, V = c.vocabSize, A = numApplications(c);
  const perApp = 2 * N + 3 * N * D + N * Q * 2 + 2 * N * K + B * c.numHeads * T * T + 3 * N * F;
  return A * perApp + (A + 1) * N * D + N + N * D + N * V + 3 * N * D + 2 * N * Q + 2 * N * K + 3 * N * F + T * c.headDim + 7 * T * c.headDim + 2 * T * T;
}

/** Parameters (zero) + activations for batches of B sequences of T tokens. */
export function allocTrainState(k: Kernels, c: MobileLLMConfig, B: number, T: number): TrainState {
  if (T < 2) throw new RangeError(`sequence length ${T} is too short: next-token training needs at least 2 tokens`);
  // One reservation for everything (parameters, gradients, activations, scratch): on the wasm
  // backend memory must grow before the first view into it is handed out. 16 bytes of alignment
  // slack per buffer.
  const buffers = 2 + 16 * numApplications(c) + 30;
  k.reserve((2 * paramLayout(c).total + trainStateFloats(c, B, T)) * 4 + buffers * 16);
  const params = allocTrainParams(k, c);
  const N = B * T, D = c.hiddenSize, Q = c.numHeads * c.headDim, K = c.numKvHeads * c.headDim;
  const F = c.intermediateSize, V = c.vocabSize, A = numApplications(c);
  const f = (n: number) => k.allocF32(n);
  const apps: ApplicationActs[] = [];
  for (let a = 0; a < A; a++) {
    apps.push({
      rstd1N: f(N), xn1ND: f(N * D), qNQ: f(N * Q), kNK: f(N * K), vNK: f(N * K),
      probsBHTT: f(B * c.numHeads * T * T), attNQ: f(N * Q), midND: f(N * D), rstd2N: f(N), xn2ND: f(N * D),
      gateNF: f(N * F), upNF: f(N * F), actNF: f(N * F),
    });
  }
  const residND: Float32Array[] = [];
  for (let a = 0; a <= A; a++) residND.push(f(N * D));
  const rope = { cosPR: f(T * (c.headDim / 2)), sinPR: f(T * (c.headDim / 2)) };
  fillRopeTables(rope, T, c.headDim, c.ropeTheta);
  return {
    config: c, kernels: k, params, B, T, rope, idsN: new Int32Array(N), residND, apps,
    rstdFN: f(N), xnFND: f(N * D), logitsNV: f(N * V),
    dresND: f(N * D), dxnND: f(N * D), dtmpND: f(N * D), dqNQ: f(N * Q), dkNK: f(N * K), dvNK: f(N * K),
    dattNQ: f(N * Q), dactNF: f(N * F), dgateNF: f(N * F), dupNF: f(N * F), att: allocAttentionScratch(k, T, c.headDim),
  };
}
