// The training run state: every activation the backward pass needs, for a batch of B sequences of
// T tokens (N = B·T rows), planned once from the config and allocated from the backend. A training
// step allocates nothing.
//
// Each block application a (L of them, or 2·L with layer sharing: each run of a shared block keeps
// its own activations, and both runs' gradients accumulate into the block's one set of weights)
// has its own BlockActs (src/model/state.ts) and its own keys/values; application a's output
// buffer is application a+1's input.

import type { Allocator, Kernels } from "../kernels/kernels.js";
import type { MobileLLMConfig } from "../model/config.js";
import { fillRopeTables, type RopeTables } from "../model/rotary.js";
import { numApplications, type BlockActs, type BlockGradScratch } from "../model/state.js";
import { allocAdamW, type AdamWState } from "./adamw.js";
import { allocTrainParams, type TrainParams } from "./params.js";

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
  opt: AdamWState; // AdamW's moments, zero (the trainer may load them from a checkpoint)
  B: number;
  T: number;
  rope: RopeTables; // cos/sin [T, Dh/2]
  idsN: Int32Array; // the batch's token ids [B, T]
  targetsN: Int32Array; // next-token targets [B, T]: ids shifted by one, −1 at each sequence's end
  hEmbedND: Float32Array; // embed_tokens(ids), the first application's input [N, D]
  apps: ApplicationActs[];
  xnFND: Float32Array; // model.norm(h) [N, D]
  logitsNV: Float32Array; // logits, then probabilities, then d logits [N, V]
  d: BlockGradScratch; // backward scratch, shared by the applications
}

/** Parameters (zero), optimizer moments (zero) and activations for batches of B sequences of T tokens. */
export function allocTrainState(k: Kernels, c: MobileLLMConfig, B: number, T: number): TrainState {
  if (T < 2) throw new RangeError(`sequence length ${T} is too short: next-token training needs at least 2 tokens`);
  // One memory plan for everything (parameters, gradients, Adam moments, activations, scratch),
  // allocated at once: wasm memory without SharedArrayBuffer cannot grow once buffers exist.
  const s = k.allocate((a) => allocTrainBuffers(a, c, B, T));
  fillRopeTables(s.rope, T, c.headDim, c.ropeTheta);
  const N = B * T;
  return { config: c, kernels: k, B, T, idsN: new Int32Array(N), targetsN: new Int32Array(N), ...s };
}

/** The backend buffers of a TrainState (declared in a memory plan: see Kernels.allocate). */
function allocTrainBuffers(a: Allocator, c: MobileLLMConfig, B: number, T: number) {
  const params = allocTrainParams(a, c);
  const opt = allocAdamW(params.layout.total, a);
  const N = B * T,
    D = c.hiddenSize,
    Q = c.numHeads * c.headDim,
    K = c.numKvHeads * c.headDim;
  const F = c.intermediateSize,
    V = c.vocabSize,
    A = numApplications(c);
  const f = (n: number) => a.allocF32(n);
  const hEmbedND = f(N * D);
  const apps: ApplicationActs[] = [];
  for (let i = 0; i < A; i++) {
    const x: BlockActs = {
      hInTD: i === 0 ? hEmbedND : apps[i - 1]!.x.hOutTD,
      xn1TD: f(N * D),
      qTHDh: f(N * Q),
      attTHDh: f(N * Q),
      hMidTD: f(N * D),
      xn2TD: f(N * D),
      gateTF: f(N * F),
      upTF: f(N * F),
      actTF: f(N * F),
      outTD: f(N * D),
      hOutTD: f(N * D),
      scoresP: f(T),
    };
    apps.push({ x, kNKVDh: f(N * K), vNKVDh: f(N * K) });
  }
  const rope: RopeTables = { cosPR: f(T * (c.headDim / 2)), sinPR: f(T * (c.headDim / 2)) };
  return {
    params,
    opt,
    rope,
    hEmbedND,
    apps,
    xnFND: f(N * D),
    logitsNV: f(N * V),
    d: {
      dhTD: f(N * D),
      dxnTD: f(N * D),
      dtmpTD: f(N * D),
      dqTHDh: f(N * Q),
      dkTKVDh: f(N * K),
      dvTKVDh: f(N * K),
      dattTHDh: f(N * Q),
      dactTF: f(N * F),
      dgateTF: f(N * F),
      dupTF: f(N * F),
      scratch2T: f(2 * T),
    },
  };
}
