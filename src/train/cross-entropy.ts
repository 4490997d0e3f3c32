// Next-token cross-entropy, Hugging Face CausalLM style (labels = input_ids): position t of each
// sequence predicts token t+1, so a batch of B sequences of T tokens has B·(T−1) predictions and
// the loss is their mean. The last position of each sequence predicts nothing.
//   loss_t = logsumexp(logits_t) − logits_t[target]
//   d logits_t = (softmax(logits_t) − onehot(target)) · scale,   scale = 1 / (B·(T−1)) (÷ grad-accum)

/**
 * Returns the mean loss over the B·(T−1) predictions (summed in float64), and turns each row of
 * logitsNV into its softmax probabilities in place (kept for the backward).
 */
export function crossEntropyForward(logitsNV: Float32Array, ids: Int32Array, B: number, T: number, V: number): number {
  let total = 0;
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      const base = (b * T + t) * V;
      let max = -Infinity;
      for (let v = 0; v < V; v++) if (logitsNV[base + v]! > max) max = logitsNV[base + v]!;
      const target = t < T - 1 ? logitsNV[base + ids[b * T + t + 1]!]! : 0;
      let sum = 0;
      for (let v = 0; v < V; v++) {
        const e = Math.exp(logitsNV[base + v]! - max);
        logitsNV[base + v] = e;
        sum += e;
      }
      if (t < T - 1) total += Math.log(sum) + max - target;
      for (let v = 0; v < V; v++) logitsNV[base + v] /= sum;
    }
  }
  return total / (B * (T - 1));
}

/** In place: probabilities → d loss / d logits (times `scale`); rows of last positions → 0. */
export function crossEntropyBackward(probsNV: Float32Array, ids: Int32Array, B: number, T: number, V: number, scale: number): void {
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      const base = (b * T + t) * V;
      if (t === T - 1) {
        probsNV.fill(0, base, base + V);
        continue;
      }
      for (let v = 0; v < V; v++) probsNV[base + v] *= scale;
      probsNV[base + ids[b * T + t + 1]!] -= scale;
    }
  }
}
