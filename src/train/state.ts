// The training run state: every activation the backward pass needs, for a batch of B sequences of
// T tokens (N = B·T rows), planned once from the config and allocated from the backend. A training
// step allocates nothing.
//
// Each block application a (L of them, or 2·L with layer sharing: each run of a shared block keeps
// its own activations, and both runs' gradients accumulate into the block's one set of weights)
// has its own BlockActs (src/model/state.ts) and its own keys/values; application a's output
// buffer is application a+1's input.

import type { Kernels } from "../kernels/kernels.js";
import type { MobileLLMConfig } from "../model/config.js";
import { fillRopeTables, type RopeTables } from "../model/rotary.js";
import { numApplications, type BlockActs, type BlockGradScratch } from "../model/state.js";
import { allocTrainParams, paramLayout, type TrainParams } from "./params.js";

/** One block application's activations and keys/values (after RoPE) [N, KV, Dh]. */
export interface ApplicationActs {
  x: BlockActs;
  kNKVDh: Float32Array;
  vNKVDh: Float32Array;
}

export interface TrainState {
  config: MobileLLMConfig;
  kernels: Kernels;
  params: TrainParams;
  B: number;
  T: number;
  rope: RopeTables;         // cos/sin [T, Dh/2]
  idsN: Int32Array;         // the batch's token ids [B, T]
  targetsN: Int32Array;     // next-token targets [B, T]: ids shifted by one, −1 at each sequence's end
  hEmbedND: Float32Array;   // embed_tokens(ids), the first application's input [N, D]
  apps: ApplicationActs[];
  xnFND: Float32Array;      // model.norm(h) [N, D]
  logitsNV: Float32Array;   // logits, then probabilities, then d logits [N, V]
  d: BlockGradScratch;      // backward scratch, shared by the applications
}

/** Floats of activation memory for a batch (to print, and to reserve wasm memory once). */
export function trainStateFloats(c: MobileLLMConfig, B: number, T: number): number {
  const N = B * T, D = c.hiddenSize, Q = c.numHeads * c.headDim, K = c.numKvHeads * c.headDim;
  const F = c.intermediateSize, V = c.vocabSize, A = numApplications(c);
  const perApp = 5 * N * D + 2 * N * Q + 3 * N * F + 2 * N * K + T;
  const scratch = 3 * N * D + 2 * N * Q + 2 * N * K + 3 * N * F + 2 * T;
  return A * perApp + N * D + N * D + N * V + scratch + T * c.headDim;
}

/** Parameters (zero) + activations for batches of B sequences of T tokens. */
export function allocTrainState(k: Kernels, c: MobileLLMConfig, B: number, T: number): TrainState {
  if (T < 2) throw new RangeError(`sequence length ${T} is too short: next-token training needs at least 2 tokens`);
  // One reservation for everything (parameters, gradients, Adam moments, activations, scratch): on the wasm
  // backend memory must grow before the first view into it is handed out. 16 bytes of alignment
  // slack per buffer.
  const buffers = 2 + 14 * numApplications(c) + 30;
  k.reserve((4 * paramLayout(c).total + trainStateFloats(c, B, T)) * 4 + buffers * 16);
  const params = allocTrainParams(k, c);
  const N = B * T, D = c.hiddenSize, Q = c.numHeads * c.headDim, K = c.numKvHeads * c.headDim;
  const F = c.intermediateSize, V = c.vocabSize, A = numApplications(c);
  const f = (n: number) => k.allocF32(n);
  const hEmbedND = f(N * D);
  const apps: ApplicationActs[] = [];
  for (let a = 0; a < A; a++) {
    const x: BlockActs = {
      hInTD: a === 0 ? hEmbedND : apps[a - 1]!.x.hOutTD, xn1TD: f(N * D), qTHDh: f(N * Q), attTHDh: f(N * Q),
      hMidTD: f(N * D), xn2TD: f(N * D), gateTF: f(N * F), upTF: f(N * F), actTF: f(N * F), outTD: f(N * D),
      hOutTD: f(N * D), scoresP: f(T),
    };
    apps.push({ x, kNKVDh: f(N * K), vNKVDh: f(N * K) });
  }
  const rope = { cosPR: f(T * (c.headDim / 2)), sinPR: f(T * (c.headDim / 2)) };
  fillRopeTables(rope, T, c.headDim, c.ropeTheta);
  return {
    config: c, kernels: k, params, B, T, rope, idsN: new Int32Array(N), targetsN: new Int32Array(N), hEmbedND, apps,
    xnFND: f(N * D), logitsNV: f(N * V),
    d: {
      dhTD: f(N * D), dxnTD: f(N * D), dtmpTD: f(N * D), dqTHDh: f(N * Q), dkTKVDh: f(N * K), dvTKVDh: f(N * K),
      dattTHDh: f(N * Q), dactTF: f(N * F), dgateTF: f(N * F), dupTF: f(N * F), scratch2T: f(2 * T),
    },
  };
}
