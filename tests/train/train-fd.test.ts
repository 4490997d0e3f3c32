// Finite-difference checks of every hand-written backward, on small random shapes (fast-check).
// The layer code only indexes its arrays, so the test runs that very code in float64 by passing
// Float64Arrays: central differences with h = 1e-5 are then accurate to ~1e-9, and a wrong
// derivative shows up as an O(1) relative error.
import { Mulberry32 } from "../../src/util/rng.js";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { Kernels } from "../../src/kernels/kernels.js";
import { createTsKernels } from "../../src/kernels/ts/index.js";
import type { MobileLLMConfig } from "../../src/model/config.js";
import { trainBackward, trainForward, zeroGrads } from "../../src/train/model.js";
import { allocTrainState } from "../../src/train/state.js";
import { fillRopeTables } from "../../src/model/rotary.js";

type F = Float32Array; // the layers' declared type; a Float64Array is passed at runtime
const f64 = (n: number) => new Float64Array(n) as unknown as F;

/** Deterministic pseudo-random numbers in [-1, 1) from a seed (the project's Mulberry32). */
function rand(seed: number): () => number {
  const g = new Mulberry32(seed);
  return () => g.next() * 2 - 1;
}
function randArray(n: number, r: () => number, scale = 1): F {
  const a = f64(n);
  for (let i = 0; i < n; i++) a[i] = r() * scale;
  return a;
}
function dot(a: F, b: F): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

/** Compare analytic d loss/d x with central differences at up to `samples` elements of x. */
function checkGrad(x: F, analytic: F, loss: () => number, samples = 12, r = rand(7)): void {
  const h = 1e-5;
  for (let s = 0; s < Math.min(samples, x.length); s++) {
    const i = samples >= x.length ? s : Math.floor(((r() + 1) / 2) * x.length);
    const x0 = x[i]!;
    x[i] = x0 + h;
    const lp = loss();
    x[i] = x0 - h;
    const lm = loss();
    x[i] = x0;
    const numeric = (lp - lm) / (2 * h);
    expect(Math.abs(analytic[i]! - numeric), `element ${i}: analytic ${analytic[i]} vs numeric ${numeric}`).toBeLessThanOrEqual(
      1e-6 + 1e-5 * Math.abs(numeric),
    );
  }
}

const RUNS = { numRuns: 15 };

describe("finite differences, per kernel backward (float64, TS reference kernels)", () => {
  const K = createTsKernels();

  it("rmsnorm", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 13 }), fc.integer(), (N, D, seed) => {
        const r = rand(seed);
        const x = randArray(N * D, r),
          w = randArray(D, r),
          proj = randArray(N * D, r);
        const y = f64(N * D);
        const loss = () => {
          K.rmsnorm(y, x, w, N, D, 1e-5);
          return dot(y, proj);
        };
        loss();
        const dx = f64(N * D),
          dw = f64(D);
        K.rmsnormBackward(dx, dw, proj, x, w, N, D, 1e-5);
        checkGrad(x, dx, loss);
        checkGrad(w, dw, loss);
      }),
      RUNS,
    );
  });

  it("rope (at any start position)", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 1, max: 3 }),
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 0, max: 5 }),
        fc.integer(),
        (T, H, R, pos0, seed) => {
          const r = rand(seed),
            Dh = 2 * R,
            n = T * H * Dh;
          const tables = { cosPR: f64((pos0 + T) * R), sinPR: f64((pos0 + T) * R) };
          fillRopeTables(tables, pos0 + T, Dh, 10000);
          const x = randArray(n, r),
            proj = randArray(n, r),
            y = f64(n);
          const loss = () => {
            y.set(x);
            K.rope(y, T, H, Dh, pos0, tables.cosPR, tables.sinPR);
            return dot(y, proj);
          };
          const dx = f64(n);
          dx.set(proj);
          K.ropeBackward(dx, T, H, Dh, pos0, tables.cosPR, tables.sinPR);
          checkGrad(x, dx, loss);
        },
      ),
      RUNS,
    );
  });

  it("grouped-query causal attention (kv gradients summed over each group)", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 1, max: 3 }),
        fc.integer({ min: 1, max: 3 }),
        fc.integer({ min: 1, max: 5 }),
        fc.integer(),
        (T, KV, group, Dh, seed) => {
          const r = rand(seed),
            H = KV * group,
            nq = T * H * Dh,
            nk = T * KV * Dh;
          const q = randArray(nq, r),
            k = randArray(nk, r),
            v = randArray(nk, r),
            proj = randArray(nq, r);
          const out = f64(nq),
            scores = f64(T);
          const loss = () => {
            K.attention(out, q, k, v, T, 0, H, KV, Dh, scores);
            return dot(out, proj);
          };
          loss();
          const dq = f64(nq),
            dk = f64(nk),
            dv = f64(nk);
          K.attentionBackward(dq, dk, dv, proj, q, k, v, T, H, KV, Dh, f64(2 * T));
          checkGrad(q, dq, loss);
          checkGrad(k, dk, loss);
          checkGrad(v, dv, loss);
        },
      ),
      RUNS,
    );
  });

  it("siluMul (SwiGLU's gate)", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 30 }), fc.integer(), (n, seed) => {
        const r = rand(seed);
        const gate = randArray(n, r, 4),
          up = randArray(n, r),
          proj = randArray(n, r),
          act = f64(n);
        const loss = () => {
          K.siluMul(act, gate, up, n);
          return dot(act, proj);
        };
        const dg = f64(n),
          du = f64(n);
        K.siluMulBackward(dg, du, proj, gate, up, n);
        checkGrad(gate, dg, loss);
        checkGrad(up, du, loss);
      }),
      RUNS,
    );
  });

  it("relu (the vanilla FFN's activation, ffn_type relu)", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 30 }), fc.integer(), (n, seed) => {
        const r = rand(seed);
        // away from the kink at 0, where the derivative does not exist
        const x = randArray(n, r, 4).map((v) => (Math.abs(v) < 1e-3 ? v + 0.01 : v)) as F,
          proj = randArray(n, r),
          act = f64(n);
        const loss = () => {
          K.relu(act, x, n);
          return dot(act, proj);
        };
        const dx = f64(n);
        K.reluBackward(dx, proj, x, n);
        checkGrad(x, dx, loss);
      }),
      RUNS,
    );
  });

  it("embedding (repeated ids accumulate)", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 7 }),
        fc.integer({ min: 1, max: 9 }),
        fc.integer({ min: 1, max: 5 }),
        fc.integer(),
        (V, N, D, seed) => {
          const r = rand(seed);
          const table = randArray(V * D, r),
            proj = randArray(N * D, r),
            out = f64(N * D);
          const ids = new Int32Array(N).map(() => Math.floor(((r() + 1) / 2) * V));
          const tableW = { dtype: "f32" as const, shape: [V, D], data: table };
          const loss = () => {
            K.embedding(out, tableW, ids, N, D);
            return dot(out, proj);
          };
          const dt = f64(V * D);
          K.embeddingBackward(dt, proj, ids, N, D);
          checkGrad(table, dt, loss, V * D);
        },
      ),
      RUNS,
    );
  });

  it("cross-entropy (summed over the rows that have a target)", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 9 }), fc.integer({ min: 2, max: 11 }), fc.integer(), (T, V, seed) => {
        const r = rand(seed);
        const logits = randArray(T * V, r, 3),
          work = f64(T * V);
        const targets = new Int32Array(T).map(() => (r() < -0.6 ? -1 : Math.floor(((r() + 1) / 2) * V)));
        const loss = () => {
          work.set(logits);
          return K.crossEntropy(work, targets, T, V);
        };
        loss();
        K.crossEntropyBackward(work, targets, T, V, 1);
        checkGrad(logits, work.slice(), loss);
      }),
      RUNS,
    );
  });
});

/**
 * TS kernels whose buffers are Float64Arrays and whose three matmuls are plain float64 loops
 * written here: the whole training step in float64.
 */
function f64Kernels(): Kernels {
  const k = createTsKernels();
  return {
    ...k,
    allocF32: (n) => f64(n),
    matmul(y, x, w, T, I, O) {
      const W = w.data;
      for (let t = 0; t < T; t++)
        for (let o = 0; o < O; o++) {
          let s = 0;
          for (let i = 0; i < I; i++) s += x[t * I + i]! * W[o * I + i]!;
          y[t * O + o] = s;
        }
    },
    matmulBackwardX(dx, dy, w, T, I, O) {
      const W = w.data;
      for (let t = 0; t < T; t++)
        for (let i = 0; i < I; i++) {
          let s = 0;
          for (let o = 0; o < O; o++) s += dy[t * O + o]! * W[o * I + i]!;
          dx[t * I + i] = s;
        }
    },
    matmulBackwardW(dw, dy, x, T, I, O) {
      for (let o = 0; o < O; o++)
        for (let i = 0; i < I; i++) {
          let s = 0;
          for (let t = 0; t < T; t++) s += dy[t * O + o]! * x[t * I + i]!;
          dw[o * I + i]! += s;
        }
    },
  };
}

describe("finite differences, whole model (float64, random configs)", () => {
  it("embedding + blocks + final norm + lm head, share_embedding and layer_sharing both ways, every sharing order and FFN", () => {
    fc.assert(
      fc.property(
        fc.record({
          KV: fc.integer({ min: 1, max: 2 }),
          group: fc.integer({ min: 1, max: 3 }),
          R: fc.integer({ min: 1, max: 3 }),
          D: fc.integer({ min: 3, max: 9 }),
          F: fc.integer({ min: 1, max: 7 }),
          V: fc.integer({ min: 3, max: 13 }),
          L: fc.integer({ min: 1, max: 2 }),
          B: fc.integer({ min: 1, max: 2 }),
          T: fc.integer({ min: 2, max: 5 }),
          shareEmbedding: fc.boolean(),
          layerSharing: fc.boolean(),
          seed: fc.integer(),
          order: fc.constantFrom("immediate", "repeat_all", "reverse"),
          relu: fc.boolean(),
        }),
        (p) => {
          const H = p.KV * p.group;
          const c: MobileLLMConfig = {
            vocabSize: p.V,
            hiddenSize: p.D,
            intermediateSize: p.F,
            numLayers: p.L,
            numHeads: H,
            numKvHeads: p.KV,
            headDim: 2 * p.R,
            maxPositions: 16,
            rmsNormEps: 1e-5,
            ropeTheta: 10000,
            shareEmbedding: p.shareEmbedding,
            layerSharing: p.layerSharing,
            bosTokenId: 0,
            eosTokenId: 0,
            ...(p.relu ? { ffnType: "relu" as const } : {}),
            ...(p.layerSharing && p.order !== "immediate" ? { layerSharingOrder: p.order } : {}),
          };
          const s = allocTrainState(f64Kernels(), c, p.B, p.T);
          const r = rand(p.seed);
          const w = s.params.flat;
          for (let i = 0; i < w.length; i++) w[i] = r() * 0.5;
          for (let i = 0; i < s.idsN.length; i++) s.idsN[i] = Math.floor(((r() + 1) / 2) * p.V);
          zeroGrads(s);
          trainForward(s);
          trainBackward(s);
          const grad = s.params.gradFlat.slice();
          // check a few elements of every tensor
          for (const t of s.params.layout.tensors) {
            checkGrad(w.subarray(t.offset, t.offset + t.size), grad.subarray(t.offset, t.offset + t.size), () => trainForward(s), 3, r);
          }
        },
      ),
      { numRuns: 25, seed: 20261130 },
    ); // fixed: a ReLU input within h of its kink would fail the difference by chance
  });
});
