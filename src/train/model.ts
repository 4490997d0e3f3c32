// Forward and backward of the whole MobileLLM over a training batch, llm.c style. The forward is
// the model's own code (src/model/: the same blockForward and outputForward that inference runs),
// given one set of buffers per block application so every activation stays for the backward; the
// backward walks the same steps in reverse and accumulates into the gradient buffer (zero it with
// `zeroGrads` before a new optimizer step).
//
//   h = embed(ids);  for each application a:  h = block_a(h)
//   logits = norm(h) · Wᵀ   (W = embed_tokens when share_embedding, else lm_head)
//   loss = mean next-token cross-entropy (Hugging Face CausalLM: labels = input_ids, shifted)

import { blockBackward, blockForward } from "../model/block.js";
import { outputBackward, outputForward } from "../model/model.js";
import { blockOf, numApplications } from "../model/state.js";
import type { TrainState } from "./state.js";

/** Number of next-token predictions in a batch: T − 1 per sequence. */
function predictions(s: TrainState): number {
  return s.B * (s.T - 1);
}

/**
 * The model's forward over the B·T ids in s.idsN, keeping every activation: s.logitsNV holds the
 * logits afterwards (the same numbers MobileLLM.forward gives for each sequence; tested).
 */
export function trainLogits(s: TrainState): void {
  const c = s.config,
    k = s.kernels,
    w = s.params.weights;
  const B = s.B,
    T = s.T,
    N = B * T,
    A = numApplications(c);
  k.embedding(s.hEmbedND, w.embedVD, s.idsN, N, c.hiddenSize); // h = embed_tokens(ids)
  for (let a = 0; a < A; a++) {
    const app = s.apps[a]!;
    blockForward(k, c, w.layers[blockOf(c, a)]!, app.x, app.kNKVDh, app.vNKVDh, s.rope, B, T, 0);
  }
  outputForward(k, c, w, s.apps[A - 1]!.x.hOutTD, s.xnFND, s.logitsNV, N); // norm, lm_head
}

/** Forward and loss over the B·T ids in s.idsN; returns the mean loss. logitsNV then holds softmax probabilities. */
export function trainForward(s: TrainState): number {
  const B = s.B,
    T = s.T;
  for (let b = 0; b < B; b++) {
    // position t predicts token t+1 of its sequence
    for (let t = 0; t < T; t++) s.targetsN[b * T + t] = t < T - 1 ? s.idsN[b * T + t + 1]! : -1;
  }
  trainLogits(s);
  return s.kernels.crossEntropy(s.logitsNV, s.targetsN, B * T, s.config.vocabSize) / predictions(s);
}

/**
 * Backward of the last trainForward: adds d(loss · lossScale)/d params into s.params.gradFlat.
 * lossScale is 1, or 1/gradAccum when several micro-batches make one optimizer step.
 */
export function trainBackward(s: TrainState, lossScale = 1): void {
  const c = s.config,
    k = s.kernels,
    w = s.params.weights,
    g = s.params.grads,
    d = s.d;
  const B = s.B,
    T = s.T,
    N = B * T,
    A = numApplications(c);
  k.crossEntropyBackward(s.logitsNV, s.targetsN, N, c.vocabSize, lossScale / predictions(s)); // d logits
  outputBackward(k, c, w, g, s.logitsNV, s.apps[A - 1]!.x.hOutTD, s.xnFND, d.dxnTD, d.dhTD, N);
  for (let a = A - 1; a >= 0; a--) {
    const app = s.apps[a]!,
      l = blockOf(c, a);
    blockBackward(k, c, w.layers[l]!, g.layers[l]!, app.x, app.kNKVDh, app.vNKVDh, d, s.rope, B, T);
  }
  k.embeddingBackward(g.embedVD, d.dhTD, s.idsN, N, c.hiddenSize); // d embed_tokens (input use)
}

export function zeroGrads(s: TrainState): void {
  s.params.gradFlat.fill(0);
}
