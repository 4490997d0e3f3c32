// Next-token cross-entropy from one row of logits, computed stably.
//
// -log softmax(z)[y] = logsumexp(z) - z[y], with logsumexp(z) = m + log Σ_v exp(z[v] - m) and
// m = max(z) so that no exp overflows. The logits are float32 (what the model produces); the sum
// and the result are float64, so rounding does not build up over a 32000-entry vocabulary or
// over the ~300k predictions of a WikiText-2 run.

/** log Σ_v exp(zV[v]) for the row zV = logits[off .. off+V). */
export function logSumExp(logits: Float32Array, off: number, V: number): number {
  let m = -Infinity;
  for (let v = 0; v < V; v++) if (logits[off + v]! > m) m = logits[off + v]!;
  if (m === -Infinity) return -Infinity;
  let sum = 0;
  for (let v = 0; v < V; v++) sum += Math.exp(logits[off + v]! - m);
  return m + Math.log(sum);
}

/** -log p(target) under softmax(logits[off .. off+V)): one token's cross-entropy (nats). */
export function crossEntropy(logits: Float32Array, off: number, V: number, target: number): number {
  return logSumExp(logits, off, V) - logits[off + target]!;
}
