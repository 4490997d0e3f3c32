// One pre-norm transformer block, as in LLaMA:
//   h = h + Attention(RMSNorm(h));   h = h + SwiGLU(RMSNorm(h))

import type { Kernels } from "../kernels/kernels.js";
import { attentionForward } from "./attention.js";
import type { MobileLLMConfig } from "./config.js";
import { mlpForward } from "./mlp.js";
import type { RopeTables } from "./rotary.js";
import type { Activations, KVCache } from "./state.js";
import type { LayerWeights } from "./weights.js";

/** Apply one block to the residual stream act.xTD of T tokens at positions pos0.. (cache slot a;
 *  attention reads slot kvSlot, see attentionForward). */
export function blockForward(k: Kernels, c: MobileLLMConfig, w: LayerWeights, act: Activations,
                             cache: KVCache, a: number, rope: RopeTables, T: number, pos0: number, kvSlot = a): void {
  const n = T * c.hiddenSize;
  k.rmsnorm(act.xnTD, act.xTD, w.inputNormD, T, c.hiddenSize, c.rmsNormEps);     // input_layernorm
  attentionForward(k, c, w, act, cache, a, rope, T, pos0, kvSlot);
  k.add(act.xTD, act.outTD, n);                                                   // residual
  k.rmsnorm(act.xnTD, act.xTD, w.postNormD, T, c.hiddenSize, c.rmsNormEps);      // post_attention_layernorm
  mlpForward(k, c, w, act, T);
  k.add(act.xTD, act.outTD, n);                                                   // residual
}
