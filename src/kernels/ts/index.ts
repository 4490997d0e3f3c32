// The readable reference kernels: plain TypeScript loops, one per operation, forward and backward.
// Each line of math names the PyTorch expression it implements. The wasm kernels compute the
// same things; the property tests hold them to these.

import type { Kernels, Weight } from "../kernels.js";
import { BF16_TABLE, F16_TABLE } from "../half.js";
import { isQuantDType } from "../quant.js";
import { dequantizeRowTo, matmulQuantRef } from "./quant.js";

/** Copy row `r` of a weight (any dtype) into `out` as f32. */
function widenRow(out: Float32Array, w: Weight, r: number, n: number): void {
  const base = r * n;
  if (w.dtype === "f32") {
    out.set((w.data as Float32Array).subarray(base, base + n));
    return;
  }
  if (isQuantDType(w.dtype)) {
    dequantizeRowTo(out, w, r, n);
    return;
  }
  const table = w.dtype === "f16" ? F16_TABLE : BF16_TABLE;
  const bits = w.data as Uint16Array;
  for (let i = 0; i < n; i++) out[i] = table[bits[base + i]!]!;
}

/** x'[i] = x[i]·cos − x[i+R]·sin·sign,  x'[i+R] = x[i+R]·cos + x[i]·sin·sign  (R = Dh/2, position pos0 + t). */
function rotate(
  x: Float32Array,
  T: number,
  H: number,
  Dh: number,
  pos0: number,
  cosPR: Float32Array,
  sinPR: Float32Array,
  sign: 1 | -1,
): void {
  const R = Dh >> 1;
  for (let t = 0; t < T; t++) {
    const tab = (pos0 + t) * R;
    for (let h = 0; h < H; h++) {
      const base = (t * H + h) * Dh;
      for (let i = 0; i < R; i++) {
        const c = cosPR[tab + i]!,
          s = sign * sinPR[tab + i]!;
        const a = x[base + i]!,
          b = x[base + i + R]!;
        x[base + i] = a * c - b * s;
        x[base + i + R] = b * c + a * s;
      }
    }
  }
}

export function createTsKernels(): Kernels {
  let rowScratch = new Float32Array(0); // one widened weight row, reused

  return {
    name: "ts",
    threads: 1,

    allocate(build) {
      return build(this); // plain typed arrays: nothing to plan (`this`: a copy with its own allocF32 allocates with it)
    },
    reserve() {},
    allocF32: (n) => new Float32Array(n),
    allocU16: (n) => new Uint16Array(n),
    allocU8: (n) => new Uint8Array(n),

    // y = x @ W.T  — for each output feature o, widen W[o,:] once, then dot it with every row of x.
    matmul(yTO, xTI, wOI, T, I, O) {
      if (isQuantDType(wOI.dtype)) {
        // int8 weights times int8-quantized activations, block by block (./quant.ts)
        matmulQuantRef(yTO, xTI, wOI, T, I, O);
        return;
      }
      if (rowScratch.length < I) rowScratch = new Float32Array(I);
      const w = wOI.dtype === "f32" ? null : rowScratch;
      const wf32 = wOI.data as Float32Array;
      for (let o = 0; o < O; o++) {
        let wBase = o * I;
        let wRow: Float32Array = wf32;
        if (w) {
          widenRow(w, wOI, o, I);
          wRow = w;
          wBase = 0;
        }
        for (let t = 0; t < T; t++) {
          const xBase = t * I;
          let s0 = 0,
            s1 = 0,
            s2 = 0,
            s3 = 0; // four partial sums: shorter dependency chains
          let i = 0;
          for (; i + 4 <= I; i += 4) {
            s0 += xTI[xBase + i]! * wRow[wBase + i]!;
            s1 += xTI[xBase + i + 1]! * wRow[wBase + i + 1]!;
            s2 += xTI[xBase + i + 2]! * wRow[wBase + i + 2]!;
            s3 += xTI[xBase + i + 3]! * wRow[wBase + i + 3]!;
          }
          for (; i < I; i++) s0 += xTI[xBase + i]! * wRow[wBase + i]!;
          yTO[t * O + o] = s0 + s1 + s2 + s3;
        }
      }
    },

    // x = embed_tokens.weight[ids]
    embedding(outTD, tableVD, ids, T, D) {
      const V = tableVD.shape[0]!;
      for (let t = 0; t < T; t++) {
        const id = ids[t]!;
        if (!(id >= 0 && id < V)) throw new RangeError(`token id ${id} at position ${t} is outside the vocabulary [0, ${V})`);
        widenRow(outTD.subarray(t * D, (t + 1) * D), tableVD, id, D);
      }
    },

    // embed_tokens.weight.grad.index_add_(0, ids, dout)
    embeddingBackward(dTableVD, dOutTD, ids, T, D) {
      for (let t = 0; t < T; t++) {
        const row = ids[t]! * D,
          src = t * D;
        for (let i = 0; i < D; i++) dTableVD[row + i]! += dOutTD[src + i]!;
      }
    },

    // y = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w
    rmsnorm(yTD, xTD, wD, T, D, eps) {
      for (let t = 0; t < T; t++) {
        const base = t * D;
        let ss = 0;
        for (let i = 0; i < D; i++) ss += xTD[base + i]! * xTD[base + i]!;
        const scale = 1 / Math.sqrt(ss / D + eps);
        for (let i = 0; i < D; i++) yTD[base + i] = xTD[base + i]! * scale * wD[i]!;
      }
    },

    // d x = d y · ∂y/∂x with r = rsqrt(mean(x²) + eps), g = dy·w:  dx = r·g − x·r³·mean(g·x),  dw = Σ dy·x·r
    rmsnormBackward(dxTD, dwD, dyTD, xTD, wD, T, D, eps) {
      for (let t = 0; t < T; t++) {
        const base = t * D;
        let ss = 0;
        for (let i = 0; i < D; i++) ss += xTD[base + i]! * xTD[base + i]!;
        const r = 1 / Math.sqrt(ss / D + eps);
        let gx = 0; // Σ_i dy_i w_i x_i
        for (let i = 0; i < D; i++) gx += dyTD[base + i]! * wD[i]! * xTD[base + i]!;
        const c = (r * r * r * gx) / D;
        for (let i = 0; i < D; i++) {
          const x = xTD[base + i]!,
            dy = dyTD[base + i]!;
          dwD[i]! += dy * x * r;
          dxTD[base + i]! += r * dy * wD[i]! - c * x;
        }
      }
    },

    // q_embed = q * cos + rotate_half(q) * sin, rotate_half(x) = cat(-x[R:], x[:R])
    rope(xTHDh, T, H, Dh, pos0, cosPR, sinPR) {
      rotate(xTHDh, T, H, Dh, pos0, cosPR, sinPR, 1);
    },

    // the transpose of a rotation is the rotation by the opposite angle: sin → −sin
    ropeBackward(dxTHDh, T, H, Dh, pos0, cosPR, sinPR) {
      rotate(dxTHDh, T, H, Dh, pos0, cosPR, sinPR, -1);
    },

    // out = softmax(q @ k.T / sqrt(Dh) + causal_mask) @ v, query head h reading kv head h / (H/KV)
    attention(outTHDh, qTHDh, kPKVDh, vPKVDh, T, pos0, H, KV, Dh, scoresP) {
      const group = H / KV;
      const scale = 1 / Math.sqrt(Dh);
      for (let t = 0; t < T; t++) {
        const P = pos0 + t + 1; // positions this query may see: 0 .. pos0+t
        for (let h = 0; h < H; h++) {
          const kvh = Math.floor(h / group);
          const qBase = (t * H + h) * Dh;
          let max = -Infinity;
          for (let p = 0; p < P; p++) {
            const kBase = (p * KV + kvh) * Dh;
            let dot = 0;
            for (let i = 0; i < Dh; i++) dot += qTHDh[qBase + i]! * kPKVDh[kBase + i]!;
            const score = dot * scale;
            scoresP[p] = score;
            if (score > max) max = score;
          }
          let sum = 0;
          for (let p = 0; p < P; p++) {
            const e = Math.exp(scoresP[p]! - max);
            scoresP[p] = e;
            sum += e;
          }
          const outBase = qBase;
          for (let i = 0; i < Dh; i++) outTHDh[outBase + i] = 0;
          for (let p = 0; p < P; p++) {
            const weight = scoresP[p]! / sum;
            const vBase = (p * KV + kvh) * Dh;
            for (let i = 0; i < Dh; i++) outTHDh[outBase + i]! += weight * vPKVDh[vBase + i]!;
          }
        }
      }
    },

    // The backward of softmax(q kᵀ/sqrt(Dh) + mask) v, one query row at a time (probabilities recomputed).
    attentionBackward(dqTHDh, dkTKVDh, dvTKVDh, doutTHDh, qTHDh, kTKVDh, vTKVDh, T, H, KV, Dh, scratch2T) {
      const group = H / KV;
      const scale = 1 / Math.sqrt(Dh);
      dkTKVDh.fill(0, 0, T * KV * Dh);
      dvTKVDh.fill(0, 0, T * KV * Dh);
      const pP = scratch2T,
        dpP = scratch2T.subarray(T);
      for (let t = 0; t < T; t++) {
        const P = t + 1;
        for (let h = 0; h < H; h++) {
          const kvh = Math.floor(h / group);
          const qBase = (t * H + h) * Dh;
          let max = -Infinity;
          for (let p = 0; p < P; p++) {
            // scores, as the forward computes them
            const kBase = (p * KV + kvh) * Dh;
            let dot = 0;
            for (let i = 0; i < Dh; i++) dot += qTHDh[qBase + i]! * kTKVDh[kBase + i]!;
            pP[p] = dot * scale;
            if (pP[p]! > max) max = pP[p]!;
          }
          let sum = 0;
          for (let p = 0; p < P; p++) {
            const e = Math.exp(pP[p]! - max);
            pP[p] = e;
            sum += e;
          }
          let pdp = 0; // Σ_p P_p·dP_p
          for (let p = 0; p < P; p++) {
            pP[p] = pP[p]! / sum;
            const vBase = (p * KV + kvh) * Dh;
            let dot = 0;
            for (let i = 0; i < Dh; i++) dot += doutTHDh[qBase + i]! * vTKVDh[vBase + i]!;
            dpP[p] = dot;
            pdp += pP[p]! * dot;
          }
          for (let i = 0; i < Dh; i++) dqTHDh[qBase + i] = 0;
          for (let p = 0; p < P; p++) {
            const ds = pP[p]! * (dpP[p]! - pdp) * scale;
            const kBase = (p * KV + kvh) * Dh;
            for (let i = 0; i < Dh; i++) {
              dqTHDh[qBase + i]! += ds * kTKVDh[kBase + i]!;
              dkTKVDh[kBase + i]! += ds * qTHDh[qBase + i]!;
              dvTKVDh[kBase + i]! += pP[p]! * doutTHDh[qBase + i]!;
            }
          }
        }
      }
    },

    // F.silu(gate) * up, silu(x) = x * sigmoid(x)
    siluMul(outN, gateN, upN, n) {
      for (let i = 0; i < n; i++) {
        const g = gateN[i]!;
        outN[i] = (g / (1 + Math.exp(-g))) * upN[i]!;
      }
    },

    // d silu(g)/dg = σ(g)·(1 + g·(1 − σ(g)))
    siluMulBackward(dgateN, dupN, doutN, gateN, upN, n) {
      for (let i = 0; i < n; i++) {
        const g = gateN[i]!,
          d = doutN[i]!;
        const sig = 1 / (1 + Math.exp(-g));
        dgateN[i] = d * upN[i]! * sig * (1 + g * (1 - sig));
        dupN[i] = d * g * sig;
      }
    },

    // F.relu(x) = max(x, 0)
    relu(outN, xN, n) {
      for (let i = 0; i < n; i++) outN[i] = xN[i]! > 0 ? xN[i]! : 0;
    },

    // d relu(x)/dx = 1 where x > 0, else 0
    reluBackward(dxN, doutN, xN, n) {
      for (let i = 0; i < n; i++) dxN[i] = xN[i]! > 0 ? doutN[i]! : 0;
    },

    // dx = dy @ W  — the input gradient of y = x @ W.T
    matmulBackwardX(dXTI, dYTO, wOI, T, I, O) {
      if (rowScratch.length < I) rowScratch = new Float32Array(I);
      dXTI.fill(0, 0, T * I);
      for (let o = 0; o < O; o++) {
        widenRow(rowScratch, wOI, o, I);
        for (let t = 0; t < T; t++) {
          const g = dYTO[t * O + o]!;
          for (let i = 0; i < I; i++) dXTI[t * I + i]! += g * rowScratch[i]!;
        }
      }
    },

    // dW += dy.T @ x  — the weight gradient of y = x @ W.T (accumulated, llm.c style)
    matmulBackwardW(dWOI, dYTO, xTI, T, I, O) {
      for (let o = 0; o < O; o++) {
        for (let i = 0; i < I; i++) {
          let s = 0;
          for (let t = 0; t < T; t++) s += dYTO[t * O + o]! * xTI[t * I + i]!;
          dWOI[o * I + i]! += s;
        }
      }
    },

    add(yN, xN, n) {
      for (let i = 0; i < n; i++) yN[i]! += xN[i]!;
    },

    // F.cross_entropy(logits, targets, reduction="sum", ignore_index=<negative>); rows keep softmax(logits)
    crossEntropy(logitsTV, targetsT, T, V) {
      let total = 0;
      for (let t = 0; t < T; t++) {
        const base = t * V,
          target = targetsT[t]!;
        let max = -Infinity;
        for (let v = 0; v < V; v++) if (logitsTV[base + v]! > max) max = logitsTV[base + v]!;
        const z = target >= 0 ? logitsTV[base + target]! : 0;
        let sum = 0;
        for (let v = 0; v < V; v++) {
          const e = Math.exp(logitsTV[base + v]! - max);
          logitsTV[base + v] = e;
          sum += e;
        }
        if (target >= 0) total += Math.log(sum) + max - z; // logsumexp(z) − z[target]
        for (let v = 0; v < V; v++) logitsTV[base + v]! /= sum;
      }
      return total;
    },

    // d loss/d logits = softmax(logits) − onehot(target)
    crossEntropyBackward(probsTV, targetsT, T, V, scale) {
      for (let t = 0; t < T; t++) {
        const base = t * V,
          target = targetsT[t]!;
        if (target < 0) {
          probsTV.fill(0, base, base + V);
          continue;
        }
        for (let v = 0; v < V; v++) probsTV[base + v]! *= scale;
        probsTV[base + target]! -= scale;
      }
    },

    // torch.optim.AdamW.step (decoupled weight decay), in float64 per element
    adamw(wN, gN, mN, vN, n, lr, beta1, beta2, eps, weightDecay, step) {
      const bc1 = 1 - beta1 ** step,
        bc2 = 1 - beta2 ** step;
      const stepSize = lr / bc1,
        bc2Sqrt = Math.sqrt(bc2),
        decay = 1 - lr * weightDecay;
      for (let i = 0; i < n; i++) {
        const g = gN[i]!;
        mN[i] = beta1 * mN[i]! + (1 - beta1) * g;
        vN[i] = beta2 * vN[i]! + (1 - beta2) * g * g;
        wN[i] = wN[i]! * decay - (stepSize * mN[i]!) / (Math.sqrt(vN[i]!) / bc2Sqrt + eps);
      }
    },
  };
}
