// Initial weights for training from scratch, as Hugging Face's LlamaPreTrainedModel._init_weights
// does for the MobileLLM seed (initializer_range 0.02): every linear and embedding matrix
// ~ N(0, 0.02²), every RMSNorm weight 1.

import type { Mulberry32 } from "../util/rng.js";
import type { TrainParams } from "./params.js";

export function initParams(params: TrainParams, rng: Mulberry32, std = 0.02): void {
  for (const t of params.layout.tensors) {
    const w = params.flat.subarray(t.offset, t.offset + t.size);
    if (t.shape.length === 1)
      w.fill(1); // RMSNorm weight
    else for (let i = 0; i < w.length; i++) w[i] = std * rng.normal();
  }
}
