// Token embedding, forward and backward.  h = embed_tokens.weight[ids]
// With share_embedding (MobileLLM §2.2.2) the same [V, D] matrix is also the output projection,
// so its gradient receives both this scatter and the lm head's dWᵀ (see model.ts).

/** outND[n,:] = tableVD[ids[n], :] for the N = B·T tokens of the batch. */
export function embeddingForward(outND: Float32Array, tableVD: Float32Array, ids: Int32Array, N: number, D: number, V: number): void {
  for (let n = 0; n < N; n++) {
    const id = ids[n]!;
    if (!(id >= 0 && id < V)) throw new RangeError(`token id ${id} at batch position ${n} is outside the vocabulary [0, ${V})`);
    outND.set(tableVD.subarray(id * D, id * D + D), n * D);
  }
}

/** dTableVD[ids[n], :] += doutND[n, :]  (rows of tokens absent from the batch get nothing). */
export function embeddingBackward(dTableVD: Float32Array, doutND: Float32Array, ids: Int32Array, N: number, D: number): void {
  for (let n = 0; n < N; n++) {
    const row = ids[n]! * D, src = n * D;
    for (let i = 0; i < D; i++) dTableVD[row + i] += doutND[src + i]!;
  }
}
