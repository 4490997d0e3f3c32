// Causal grouped-query self-attention over a training batch, forward and backward. Every
// sequence attends from position 0 (no KV cache); query head h reads kv head floor(h / (H/KV)).
// The softmax probabilities are kept for the backward ([B, H, T, T], zero above the diagonal).
//
//   S[t,p] = q_t · k_p / sqrt(Dh)  (p ≤ t),   P = softmax_p(S),   out_t = Σ_p P[t,p] v_p
// Backward:
//   dP[t,p] = dout_t · v_p            dv_p += P[t,p] · dout_t
//   dS[t,p] = P[t,p] · (dP[t,p] − Σ_p' P[t,p'] dP[t,p'])     (softmax backward)
//   dq_t += dS[t,p] k_p / sqrt(Dh)    dk_p += dS[t,p] q_t / sqrt(Dh)
// A kv head serves H/KV query heads, so its dk and dv sum over the heads of its group.

/** outNQ[b,t,h,:] for q [B,T,H,Dh], k, v [B,T,KV,Dh]; stores the probabilities in probsBHTT. */
export function attentionForward(outNQ: Float32Array, probsBHTT: Float32Array, qNQ: Float32Array, kNK: Float32Array,
                                 vNK: Float32Array, B: number, T: number, H: number, KV: number, Dh: number): void {
  const group = H / KV, scale = 1 / Math.sqrt(Dh);
  const Q = H * Dh, K = KV * Dh;
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const kvh = Math.floor(h / group);
      for (let t = 0; t < T; t++) {
        const qBase = (b * T + t) * Q + h * Dh;
        const pRow = ((b * H + h) * T + t) * T;
        let max = -Infinity;
        for (let p = 0; p <= t; p++) {
          const kBase = (b * T + p) * K + kvh * Dh;
          let dot = 0;
          for (let i = 0; i < Dh; i++) dot += qNQ[qBase + i]! * kNK[kBase + i]!;
          const s = dot * scale;
          probsBHTT[pRow + p] = s;
          if (s > max) max = s;
        }
        let sum = 0;
        for (let p = 0; p <= t; p++) {
          const e = Math.exp(probsBHTT[pRow + p]! - max);
          probsBHTT[pRow + p] = e;
          sum += e;
        }
        for (let p = 0; p <= t; p++) probsBHTT[pRow + p] /= sum;
        for (let p = t + 1; p < T; p++) probsBHTT[pRow + p] = 0; // causal mask
        for (let i = 0; i < Dh; i++) outNQ[qBase + i] = 0;
        for (let p = 0; p <= t; p++) {
          const w = probsBHTT[pRow + p]!;
          const vBase = (b * T + p) * K + kvh * Dh;
          for (let i = 0; i < Dh; i++) outNQ[qBase + i] += w * vNK[vBase + i]!;
        }
      }
    }
  }
}

/** Overwrites dqNQ, dkNK, dvNK. dpT is scratch of T floats. */
export function attentionBackward(dqNQ: Float32Array, dkNK: Float32Array, dvNK: Float32Array, doutNQ: Float32Array,
                                  qNQ: Float32Array, kNK: Float32Array, vNK: Float32Array, probsBHTT: Float32Array,
                                  B: number, T: number, H: number, KV: number, Dh: number, dpT: Float32Array): void {
  const group = H / KV, scale = 1 / Math.sqrt(Dh);
  const Q = H * Dh, K = KV * Dh;
  dqNQ.fill(0, 0, B * T * Q);
  dkNK.fill(0, 0, B * T * K);
  dvNK.fill(0, 0, B * T * K);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const kvh = Math.floor(h / group);
      for (let t = 0; t < T; t++) {
        const qBase = (b * T + t) * Q + h * Dh;
        const pRow = ((b * H + h) * T + t) * T;
        let pdp = 0; // Σ_p P[t,p] dP[t,p]
        for (let p = 0; p <= t; p++) {
          const vBase = (b * T + p) * K + kvh * Dh;
          const P = probsBHTT[pRow + p]!;
          let dp = 0;
          for (let i = 0; i < Dh; i++) {
            dp += doutNQ[qBase + i]! * vNK[vBase + i]!;
            dvNK[vBase + i] += P * doutNQ[qBase + i]!;
          }
          dpT[p] = dp;
          pdp += P * dp;
        }
        for (let p = 0; p <= t; p++) {
          const ds = probsBHTT[pRow + p]! * (dpT[p]! - pdp) * scale;
          const kBase = (b * T + p) * K + kvh * Dh;
          for (let i = 0; i < Dh; i++) {
            dqNQ[qBase + i] += ds * kNK[kBase + i]!;
            dkNK[kBase + i] += ds * qNQ[qBase + i]!;
          }
        }
      }
    }
  }
}
