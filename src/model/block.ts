// One pre-norm transformer block, as in LLaMA, forward and backward:
//   h = h + Attention(RMSNorm(h));   h = h + SwiGLU(RMSNorm(h))
// The backward walks the same steps in reverse; a residual add passes its gradient through
// unchanged, so d h accumulates the two norms' input gradients on top of it.

import type { Kernels } from "../kernels/kernels.js";
import { attentionBackward, attentionForward, type KVSlot } from "./attention.js";
import type { MobileLLMConfig } from "./config.js";
import { mlpBackward, mlpForward } from "./mlp.js";
import type { RopeTables } from "./rotary.js";
import type { BlockActs, BlockGradScratch } from "./state.js";
import type { LayerGrads, LayerWeights } from "./weights.js";

/** out = h + y over n values (in place when out is h, as inference does). */
function residual(k: Kernels, outN: Float32Array, hN: Float32Array, yN: Float32Array, n: number): void {
  if (outN !== hN) outN.set(hN.subarray(0, n));
  k.add(outN, yN, n);
}

/**
 * Apply one block to the residual stream x.hInTD of B sequences of T tokens at positions pos0..
 * (see attention.ts), writing x.hOutTD; keys/values go to kPKVDh/vPKVDh (attention reads
 * `attendTo` instead when given, see attentionForward).
 */
export function blockForward(
  k: Kernels,
  c: MobileLLMConfig,
  w: LayerWeights,
  x: BlockActs,
  kPKVDh: Float32Array,
  vPKVDh: Float32Array,
  rope: RopeTables,
  B: number,
  T: number,
  pos0: number,
  attendTo?: KVSlot,
): void {
  const D = c.hiddenSize,
    N = B * T,
    n = N * D;
  k.rmsnorm(x.xn1TD, x.hInTD, w.inputNormD, N, D, c.rmsNormEps); // input_layernorm
  attentionForward(k, c, w, x, kPKVDh, vPKVDh, rope, B, T, pos0, attendTo);
  residual(k, x.hMidTD, x.hInTD, x.outTD, n);
  k.rmsnorm(x.xn2TD, x.hMidTD, w.postNormD, N, D, c.rmsNormEps); // post_attention_layernorm
  mlpForward(k, c, w, x, N);
  residual(k, x.hOutTD, x.hMidTD, x.outTD, n);
}

/**
 * Backward of blockForward over B sequences from position 0, with the forward's own buffers x
 * and keys/values: d.dhTD holds d hOut on entry and d hIn on return; g accumulates.
 */
export function blockBackward(
  k: Kernels,
  c: MobileLLMConfig,
  w: LayerWeights,
  g: LayerGrads,
  x: BlockActs,
  kNKVDh: Float32Array,
  vNKVDh: Float32Array,
  d: BlockGradScratch,
  rope: RopeTables,
  B: number,
  T: number,
): void {
  const D = c.hiddenSize,
    N = B * T,
    eps = c.rmsNormEps;
  mlpBackward(k, c, w, g, x, d, N); // dh is now d hMid ...
  k.rmsnormBackward(d.dhTD, g.postNormD, d.dxnTD, x.hMidTD, w.postNormD, N, D, eps); // ... plus the norm's path
  attentionBackward(k, c, w, g, x, kNKVDh, vNKVDh, d, rope, B, T); // dh is now d hIn ...
  k.rmsnormBackward(d.dhTD, g.inputNormD, d.dxnTD, x.hInTD, w.inputNormD, N, D, eps); // ... plus the norm's path
}
