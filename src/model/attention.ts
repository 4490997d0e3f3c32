// Grouped-query attention (GQA, Ainslie et al.) with rotary embeddings and a causal mask.
//
// MobileLLM §2.2.4: sub-billion models gain from fewer key/value heads than query heads (e.g.
// 9 query heads sharing 3 kv heads in the 125M model): the saved parameters go into depth, and
// the KV cache shrinks by H/KV. Query head h reads kv head floor(h / (H/KV)).

import type { Kernels } from "../kernels/kernels.js";
import type { MobileLLMConfig } from "./config.js";
import type { RopeTables } from "./rotary.js";
import type { Activations, KVCache } from "./state.js";
import type { LayerWeights } from "./weights.js";

/**
 * out = o_proj(attention(q_proj(x), k_proj(x), v_proj(x))) for T tokens at positions pos0.., using
 * and extending the KV cache slot `a`. Reads act.xnTD, writes act.outTD.
 *
 * With `kvSlot` !== a (layerSharingAttention "reference-cache", see model.ts) the queries attend
 * over the keys and values already in slot `kvSlot` (the block's first application) instead of
 * their own: k and v are not computed, slot `a` is left untouched.
 */
export function attentionForward(k: Kernels, c: MobileLLMConfig, w: LayerWeights, act: Activations,
                                 cache: KVCache, a: number, rope: RopeTables, T: number, pos0: number, kvSlot = a): void {
  const D = c.hiddenSize, H = c.numHeads, KV = c.numKvHeads, Dh = c.headDim;
  const Q = H * Dh, K = KV * Dh;
  k.matmul(act.qTHDh, act.xnTD, w.wqQD, T, D, Q);          // q = x Wqᵀ   [T, H, Dh]
  k.rope(act.qTHDh, T, H, Dh, pos0, rope.cosPR, rope.sinPR); // q = apply_rotary_pos_emb(q)
  if (kvSlot === a) {
    // Keys and values of the new tokens are written straight into the cache at pos0 .. pos0+T-1.
    const kNewTKDh = cache.kPKVDh[a]!.subarray(pos0 * K, (pos0 + T) * K);
    const vNewTKDh = cache.vPKVDh[a]!.subarray(pos0 * K, (pos0 + T) * K);
    k.matmul(kNewTKDh, act.xnTD, w.wkKD, T, D, K);          // k = x Wkᵀ   [T, KV, Dh]
    k.matmul(vNewTKDh, act.xnTD, w.wvKD, T, D, K);          // v = x Wvᵀ   [T, KV, Dh]
    k.rope(kNewTKDh, T, KV, Dh, pos0, rope.cosPR, rope.sinPR); // k = apply_rotary_pos_emb(k)
  }
  // softmax(q kᵀ / sqrt(Dh) + causal mask) v over positions 0 .. pos0+t
  k.attention(act.attTHDh, act.qTHDh, cache.kPKVDh[kvSlot]!, cache.vPKVDh[kvSlot]!, T, pos0, H, KV, Dh, act.scoresP);
  k.matmul(act.outTD, act.attTHDh, w.woDQ, T, Q, D);        // o_proj(concat heads)   [T, D]
}
