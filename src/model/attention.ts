// Grouped-query attention (GQA, Ainslie et al.) with rotary embeddings and a causal mask,
// forward and backward.
//
// MobileLLM §2.2.4: sub-billion models gain from fewer key/value heads than query heads (e.g.
// 9 query heads sharing 3 kv heads in the 125M model): the saved parameters go into depth, and
// the KV cache shrinks by H/KV. Query head h reads kv head floor(h / (H/KV)).
//
// The tokens are B sequences of T (N = B·T rows). Inference feeds one sequence (B = 1) at
// positions pos0.. with a KV cache; training feeds B sequences from position 0, and each
// sequence's keys/values are its rows of the [N, KV, Dh] buffers (its "cache").

import type { Kernels } from "../kernels/kernels.js";
import type { MobileLLMConfig } from "./config.js";
import type { RopeTables } from "./rotary.js";
import type { BlockActs, BlockGradScratch } from "./state.js";
import type { LayerGrads, LayerWeights } from "./weights.js";

/** Rows [b·n, (b+1)·n) of x: sequence b's part of a batch buffer (x itself when there is one sequence). */
function seq(x: Float32Array, b: number, n: number, B: number): Float32Array {
  return B === 1 ? x : x.subarray(b * n, (b + 1) * n);
}

/**
/** One KV cache slot: keys (rotated) and values of every cached position, [P, KV, Dh] each. */
export interface KVSlot {
  kPKVDh: Float32Array;
  vPKVDh: Float32Array;
}

/**
 * x.outTD = o_proj(attention(q_proj(xn), k_proj(xn), v_proj(xn))) with xn = x.xn1TD. The new keys
 * and values are written into kPKVDh/vPKVDh at positions pos0.. (B = 1), or at the B sequences'
 * rows (pos0 = 0).
 *
 * With `attendTo` (layerSharingAttention "reference-cache", see model.ts; B = 1 only) the queries
 * attend over the keys and values already in that slot (the shared block's first application)
 * instead of their own: k and v are not computed, and kPKVDh/vPKVDh are left untouched.
 */
export function attentionForward(
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
  if (B > 1 && pos0 !== 0) throw new RangeError(`attention over ${B} sequences must start at position 0, got ${pos0}`);
  if (B > 1 && attendTo) throw new RangeError(`attention over another application's cache is for one sequence, got ${B}`);
  const D = c.hiddenSize,
    H = c.numHeads,
    KV = c.numKvHeads,
    Dh = c.headDim;
  const Q = H * Dh,
    K = KV * Dh,
    N = B * T;
  const kNewNKVDh = kPKVDh.subarray(pos0 * K, (pos0 + N) * K);
  const vNewNKVDh = vPKVDh.subarray(pos0 * K, (pos0 + N) * K);
  const kAttPKVDh = attendTo?.kPKVDh ?? kPKVDh,
    vAttPKVDh = attendTo?.vPKVDh ?? vPKVDh;

  k.matmul(x.qTHDh, x.xn1TD, w.wqQD, N, D, Q); // q = x Wqᵀ   [N, H, Dh]
  if (!attendTo) {
    k.matmul(kNewNKVDh, x.xn1TD, w.wkKD, N, D, K); // k = x Wkᵀ   [N, KV, Dh]
    k.matmul(vNewNKVDh, x.xn1TD, w.wvKD, N, D, K); // v = x Wvᵀ   [N, KV, Dh]
  }
  for (let b = 0; b < B; b++) {
    k.rope(seq(x.qTHDh, b, T * Q, B), T, H, Dh, pos0, rope.cosPR, rope.sinPR); // q, k = apply_rotary_pos_emb(q, k)
    if (!attendTo) k.rope(seq(kNewNKVDh, b, T * K, B), T, KV, Dh, pos0, rope.cosPR, rope.sinPR);
    // softmax(q kᵀ / sqrt(Dh) + causal mask) v over positions 0 .. pos0+t
    k.attention(
      seq(x.attTHDh, b, T * Q, B),
      seq(x.qTHDh, b, T * Q, B),
      seq(kAttPKVDh, b, T * K, B),
      seq(vAttPKVDh, b, T * K, B),
      T,
      pos0,
      H,
      KV,
      Dh,
      x.scoresP,
    );
  }
  k.matmul(x.outTD, x.attTHDh, w.woDQ, N, Q, D); // o_proj(concat heads)   [N, D]
}

/**
 * The forward's steps in reverse, for B sequences from position 0 whose keys/values the forward
 * left in kNKVDh/vNKVDh. d.dhTD holds d outTD; on return d.dxnTD holds d xn1TD; weight gradients
 * accumulate into g.
 */
export function attentionBackward(
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
    H = c.numHeads,
    KV = c.numKvHeads,
    Dh = c.headDim;
  const Q = H * Dh,
    K = KV * Dh,
    N = B * T;
  k.matmulBackwardW(g.woDQ, d.dhTD, x.attTHDh, N, Q, D); // o_proj
  k.matmulBackwardX(d.dattTHDh, d.dhTD, w.woDQ, N, Q, D);
  for (let b = 0; b < B; b++) {
    k.attentionBackward(
      seq(d.dqTHDh, b, T * Q, B),
      seq(d.dkTKVDh, b, T * K, B),
      seq(d.dvTKVDh, b, T * K, B),
      seq(d.dattTHDh, b, T * Q, B),
      seq(x.qTHDh, b, T * Q, B),
      seq(kNKVDh, b, T * K, B),
      seq(vNKVDh, b, T * K, B),
      T,
      H,
      KV,
      Dh,
      d.scratch2T,
    );
    k.ropeBackward(seq(d.dqTHDh, b, T * Q, B), T, H, Dh, 0, rope.cosPR, rope.sinPR);
    k.ropeBackward(seq(d.dkTKVDh, b, T * K, B), T, KV, Dh, 0, rope.cosPR, rope.sinPR);
  }
  k.matmulBackwardW(g.wqQD, d.dqTHDh, x.xn1TD, N, D, Q); // q, k, v projections
  k.matmulBackwardW(g.wkKD, d.dkTKVDh, x.xn1TD, N, D, K);
  k.matmulBackwardW(g.wvKD, d.dvTKVDh, x.xn1TD, N, D, K);
  k.matmulBackwardX(d.dxnTD, d.dqTHDh, w.wqQD, N, D, Q); // d xn = dq Wq + dk Wk + dv Wv
  k.matmulBackwardX(d.dtmpTD, d.dkTKVDh, w.wkKD, N, D, K);
  k.add(d.dxnTD, d.dtmpTD, N * D);
  k.matmulBackwardX(d.dtmpTD, d.dvTKVDh, w.wvKD, N, D, K);
  k.add(d.dxnTD, d.dtmpTD, N * D);
}
