// Rotary position embeddings (RoPE, Su et al.), as in LLaMA, which MobileLLM inherits.
// Each pair of channels (i, i + Dh/2) of a query or key is rotated by an angle proportional to the
// token's position, so q·k depends only on the distance between the two positions.
// Hugging Face's "rotate_half" convention pairs channel i with i + Dh/2 (not 2i with 2i+1).

/** cos/sin tables [P, Dh/2] for positions 0..P-1: angle = p · theta^(-2i/Dh). */
export interface RopeTables {
  cosPR: Float32Array;
  sinPR: Float32Array;
}

/** Fill the tables (computed in float64, stored as float32). */
export function fillRopeTables(tables: RopeTables, P: number, Dh: number, theta: number): void {
  const R = Dh / 2;
  for (let p = 0; p < P; p++) {
    for (let i = 0; i < R; i++) {
      const invFreq = theta ** (-(2 * i) / Dh);
      const angle = p * invFreq;
      tables.cosPR[p * R + i] = Math.cos(angle);
      tables.sinPR[p * R + i] = Math.sin(angle);
    }
  }
}
