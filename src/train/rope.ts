// Rotary position embedding over a training batch, forward and backward (Hugging Face
// "rotate_half" pairing of channel i with i + Dh/2). Every sequence starts at position 0.
// RoPE rotates each pair by an angle θ; a rotation's transpose is the rotation by −θ, so the
// backward applies the same tables with the sign of sin flipped.

/** In place on xNHDh = [B, T, H, Dh]:  x'[i] = x[i]·cos − x[i+R]·sin,  x'[i+R] = x[i+R]·cos + x[i]·sin. */
export function ropeForward(xNHDh: Float32Array, B: number, T: number, H: number, Dh: number,
                            cosPR: Float32Array, sinPR: Float32Array): void {
  rotate(xNHDh, B, T, H, Dh, cosPR, sinPR, 1);
}

/** In place on the gradient dxNHDh:  dx[i] = dy[i]·cos + dy[i+R]·sin,  dx[i+R] = dy[i+R]·cos − dy[i]·sin. */
export function ropeBackward(dxNHDh: Float32Array, B: number, T: number, H: number, Dh: number,
                             cosPR: Float32Array, sinPR: Float32Array): void {
  rotate(dxNHDh, B, T, H, Dh, cosPR, sinPR, -1);
}

function rotate(x: Float32Array, B: number, T: number, H: number, Dh: number,
                cosPR: Float32Array, sinPR: Float32Array, sign: 1 | -1): void {
  const R = Dh >> 1;
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      const tab = t * R; // position t within its sequence
      for (let h = 0; h < H; h++) {
        const base = ((b * T + t) * H + h) * Dh;
        for (let i = 0; i < R; i++) {
          const c = cosPR[tab + i]!, s = sign * sinPR[tab + i]!;
          const a = x[base + i]!, bb = x[base + i + R]!;
          x[base + i] = a * c - bb * s;
          x[base + i + R] = bb * c + a * s;
        }
      }
    }
  }
}
