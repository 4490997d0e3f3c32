// SwiGLU's gate, forward and backward:  act = silu(gate) · up,  silu(g) = g·σ(g)
//   d gate = d act · up · σ(g)·(1 + g·(1 − σ(g)))        d up = d act · silu(g)

export function swigluForward(actN: Float32Array, gateN: Float32Array, upN: Float32Array, n: number): void {
  for (let i = 0; i < n; i++) {
    const g = gateN[i]!;
    actN[i] = (g / (1 + Math.exp(-g))) * upN[i]!;
  }
}

/** Overwrites dgateN and dupN. */
export function swigluBackward(dgateN: Float32Array, dupN: Float32Array, dactN: Float32Array,
                               gateN: Float32Array, upN: Float32Array, n: number): void {
  for (let i = 0; i < n; i++) {
    const g = gateN[i]!, d = dactN[i]!;
    const sig = 1 / (1 + Math.exp(-g));
    dgateN[i] = d * upN[i]! * sig * (1 + g * (1 - sig));
    dupN[i] = d * g * sig;
  }
}
