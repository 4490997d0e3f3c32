// RMSNorm (Zhang & Sennrich), forward and backward:
//   y = x · r · w,   r = 1 / sqrt(mean(x²) + eps)        (one r per token row)
// Backward, with g = dy · w:
//   dw += Σ_rows dy · x · r
//   dx += r · g − x · r³ · mean(g · x)

/** yND = rmsnorm(xND) · wD for N rows of D; also stores each row's r in rstdN for the backward. */
export function rmsnormForward(yND: Float32Array, rstdN: Float32Array, xND: Float32Array, wD: Float32Array,
                               N: number, D: number, eps: number): void {
  for (let n = 0; n < N; n++) {
    const base = n * D;
    let ss = 0;
    for (let i = 0; i < D; i++) ss += xND[base + i]! * xND[base + i]!;
    const r = 1 / Math.sqrt(ss / D + eps);
    rstdN[n] = r;
    for (let i = 0; i < D; i++) yND[base + i] = xND[base + i]! * r * wD[i]!;
  }
}

/** Accumulates into dxND (the residual stream's gradient) and dwD. */
export function rmsnormBackward(dxND: Float32Array, dwD: Float32Array, dyND: Float32Array, xND: Float32Array,
                                wD: Float32Array, rstdN: Float32Array, N: number, D: number): void {
  for (let n = 0; n < N; n++) {
    const base = n * D;
    const r = rstdN[n]!;
    let gx = 0; // Σ_i dy_i w_i x_i
    for (let i = 0; i < D; i++) gx += dyND[base + i]! * wD[i]! * xND[base + i]!;
    const c = (r * r * r * gx) / D;
    for (let i = 0; i < D; i++) {
      const x = xND[base + i]!, dy = dyND[base + i]!;
      dwD[i] += dy * x * r;
      dxND[base + i] += r * dy * wD[i]! - c * x;
    }
  }
}
