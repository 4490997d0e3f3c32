// Causal grouped-query self-attention over a training batch, forward and backward. Every
// sequence attends from position 0 (no KV cache); query head h reads kv head floor(h / (H/KV)).
// The softmax probabilities are kept for the backward ([B, H, T, T], zero above the diagonal).
//
// Per sequence and head, as PyTorch's eager attention writes it, with matrices [T, Dh]:
//   S = q kᵀ / sqrt(Dh) + causal mask,   P = softmax_rows(S),   out = P v
// Backward:
//   dP = dout vᵀ          dv += Pᵀ dout
//   dS = P ∘ (dP − rowsum(P ∘ dP)) / sqrt(Dh)          (softmax backward)
//   dq = dS k             dk += dSᵀ q
// A kv head serves H/KV query heads, so its dk and dv sum over the heads of its group.
//
// The four products are the three matmul kernels (y = x Wᵀ, dx = dy W, dW += dyᵀ x) with k or v in
// the role of the weight, so they run on the fast backend. Each head's q, k, v, out are first
// gathered into contiguous [T, Dh] scratch (the activations are [B, T, heads, Dh]); the full T×T
// scores are computed and the causal mask applied afterwards (twice the minimal work, in exchange
// for one large matmul per head).

import type { Kernels, Weight } from "../kernels/kernels.js";

/** Per-head scratch in backend memory, planned once (see state.ts). */
export interface AttentionScratch {
  qTDh: Float32Array;
  kTDh: Float32Array;
  vTDh: Float32Array;
  oTDh: Float32Array;       // out (forward), dout (backward)
  dqTDh: Float32Array;
  dkTDh: Float32Array;
  dvTDh: Float32Array;
  sTT: Float32Array;        // scores / probabilities / dP, dS
  pTT: Float32Array;        // P of the head (backward)
  kW: Weight;               // kTDh as a [T, Dh] "weight"
  vW: Weight;               // vTDh as a [T, Dh] "weight"
}

export function allocAttentionScratch(k: Kernels, T: number, Dh: number): AttentionScratch {
  const f = (n: number) => k.allocF32(n);
  const kTDh = f(T * Dh), vTDh = f(T * Dh);
  return {
    qTDh: f(T * Dh), kTDh, vTDh, oTDh: f(T * Dh), dqTDh: f(T * Dh), dkTDh: f(T * Dh), dvTDh: f(T * Dh),
    sTT: f(T * T), pTT: f(T * T),
    kW: { dtype: "f32", shape: [T, Dh], data: kTDh }, vW: { dtype: "f32", shape: [T, Dh], data: vTDh },
  };
}

/** headTDh[t, :] = xNHDh[b, t, h, :]  (one head of one sequence, made contiguous). */
function gather(headTDh: Float32Array, x: Float32Array, b: number, h: number, T: number, heads: number, Dh: number): void {
  for (let t = 0; t < T; t++) {
    const src = ((b * T + t) * heads + h) * Dh;
    for (let i = 0; i < Dh; i++) headTDh[t * Dh + i] = x[src + i]!;
  }
}

/** xNHDh[b, t, h, :] = headTDh[t, :] */
function scatter(x: Float32Array, headTDh: Float32Array, b: number, h: number, T: number, heads: number, Dh: number): void {
  for (let t = 0; t < T; t++) {
    const dst = ((b * T + t) * heads + h) * Dh;
    for (let i = 0; i < Dh; i++) x[dst + i] = headTDh[t * Dh + i]!;
  }
}

/** outNQ for q [B,T,H,Dh], k, v [B,T,KV,Dh]; stores the probabilities in probsBHTT. */
export function attentionForward(k: Kernels, sc: AttentionScratch, outNQ: Float32Array, probsBHTT: Float32Array,
                                 qNQ: Float32Array, kNK: Float32Array, vNK: Float32Array,
                                 B: number, T: number, H: number, KV: number, Dh: number): void {
  const group = H / KV, scale = 1 / Math.sqrt(Dh);
  const S = sc.sTT;
  for (let b = 0; b < B; b++) {
    for (let kvh = 0; kvh < KV; kvh++) {
      gather(sc.kTDh, kNK, b, kvh, T, KV, Dh);
      gather(sc.vTDh, vNK, b, kvh, T, KV, Dh);
      for (let h = kvh * group; h < (kvh + 1) * group; h++) {
        gather(sc.qTDh, qNQ, b, h, T, H, Dh);
        k.matmul(S, sc.qTDh, sc.kW, T, Dh, T);                   // S = q kᵀ
        for (let t = 0; t < T; t++) {                            // P = softmax(S / sqrt(Dh) + causal mask)
          const row = t * T;
          let max = -Infinity;
          for (let p = 0; p <= t; p++) {
            const s = S[row + p]! * scale;
            S[row + p] = s;
            if (s > max) max = s;
          }
          let sum = 0;
          for (let p = 0; p <= t; p++) {
            const e = Math.exp(S[row + p]! - max);
            S[row + p] = e;
            sum += e;
          }
          for (let p = 0; p <= t; p++) S[row + p] /= sum;
          for (let p = t + 1; p < T; p++) S[row + p] = 0;
        }
        probsBHTT.set(S, (b * H + h) * T * T);
        k.matmulBackwardX!(sc.oTDh, S, sc.vW, T, Dh, T);        // out = P v
        scatter(outNQ, sc.oTDh, b, h, T, H, Dh);
      }
    }
  }
}

/** Overwrites dqNQ, dkNK, dvNK. */
export function attentionBackward(k: Kernels, sc: AttentionScratch, dqNQ: Float32Array, dkNK: Float32Array, dvNK: Float32Array,
                                  doutNQ: Float32Array, qNQ: Float32Array, kNK: Float32Array, vNK: Float32Array,
                                  probsBHTT: Float32Array, B: number, T: number, H: number, KV: number, Dh: number): void {
  const group = H / KV, scale = 1 / Math.sqrt(Dh);
  const P = sc.pTT, dS = sc.sTT;
  for (let b = 0; b < B; b++) {
    for (let kvh = 0; kvh < KV; kvh++) {
      gather(sc.kTDh, kNK, b, kvh, T, KV, Dh);
      gather(sc.vTDh, vNK, b, kvh, T, KV, Dh);
      sc.dkTDh.fill(0);
      sc.dvTDh.fill(0);
      for (let h = kvh * group; h < (kvh + 1) * group; h++) {
        gather(sc.qTDh, qNQ, b, h, T, H, Dh);
        gather(sc.oTDh, doutNQ, b, h, T, H, Dh);
        const pHead = (b * H + h) * T * T;
        for (let j = 0; j < T * T; j++) P[j] = probsBHTT[pHead + j]!;
        k.matmul(dS, sc.oTDh, sc.vW, T, Dh, T);                  // dP = dout vᵀ
        k.matmulBackwardW!(sc.dvTDh, P, sc.oTDh, T, Dh, T);      // dv += Pᵀ dout
        for (let t = 0; t < T; t++) {                            // dS = P ∘ (dP − rowsum(P ∘ dP)) / sqrt(Dh)
          const row = t * T;
          let pdp = 0;
          for (let p = 0; p <= t; p++) pdp += P[row + p]! * dS[row + p]!;
          for (let p = 0; p <= t; p++) dS[row + p] = P[row + p]! * (dS[row + p]! - pdp) * scale;
          for (let p = t + 1; p < T; p++) dS[row + p] = 0;
        }
        k.matmulBackwardX!(sc.dqTDh, dS, sc.kW, T, Dh, T);      // dq = dS k
        k.matmulBackwardW!(sc.dkTDh, dS, sc.qTDh, T, Dh, T);    // dk += dSᵀ q
        scatter(dqNQ, sc.dqTDh, b, h, T, H, Dh);
      }
      scatter(dkNK, sc.dkTDh, b, kvh, T, KV, Dh);
      scatter(dvNK, sc.dvTDh, b, kvh, T, KV, Dh);
    }
  }
}
