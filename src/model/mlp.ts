// SwiGLU feed-forward network (Shazeer, 2020).
//
// MobileLLM §2.2.1: replacing the vanilla ReLU FFN with SwiGLU improves a 125M model's average
// zero-shot accuracy by about 1.3 points:  down( silu(gate(x)) · up(x) ).

import type { Kernels } from "../kernels/kernels.js";
import type { MobileLLMConfig } from "./config.js";
import type { Activations } from "./state.js";
import type { LayerWeights } from "./weights.js";

/** out = down_proj(silu(gate_proj(x)) * up_proj(x)). Reads act.xnTD, writes act.outTD. */
export function mlpForward(k: Kernels, c: MobileLLMConfig, w: LayerWeights, act: Activations, T: number): void {
  const D = c.hiddenSize, F = c.intermediateSize;
  k.matmul(act.gateTF, act.xnTD, w.wGateFD, T, D, F);       // gate = x Wgateᵀ   [T, F]
  k.matmul(act.upTF, act.xnTD, w.wUpFD, T, D, F);           // up   = x Wupᵀ     [T, F]
  k.siluMul(act.gateTF, act.gateTF, act.upTF, T * F);       // silu(gate) * up
  k.matmul(act.outTD, act.gateTF, w.wDownDF, T, F, D);      // down projection   [T, D]
}
