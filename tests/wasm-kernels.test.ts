// Every WebAssembly SIMD kernel against the readable TypeScript reference (src/kernels/ts), on
// random shapes (including the awkward sizes 1, 3, 5, 7, 13, 63, 65 that exercise every SIMD tail)
// and random values spanning many orders of magnitude.
//
// Tolerances: the reference accumulates in float64 and rounds once; the wasm kernels accumulate
// in float32 in a different order. For a sum of products the error bound used is
//   |wasm − ref| <= 1e-5 · Σ|x_i·w_i| + 1e-35
// i.e. relative to the sum of magnitudes (not to the possibly-cancelling result). Elementwise
// kernels get a few-ulp relative bound, stated where used. f16/bf16 widening must be bit-exact.

import { Mulberry32 } from "../src/generate/sampling.js";
import { beforeAll, describe, expect, it } from "vitest";
import fc from "fast-check";
import { createWasmKernels, type WasmKernels } from "../src/kernels/wasm/index.js";
import { createTsKernels } from "../src/kernels/ts/index.js";
import { BF16_TABLE, F16_TABLE } from "../src/kernels/half.js";
import type { DType, Kernels, Weight } from "../src/kernels/kernels.js";

const ts: Kernels = createTsKernels();
let wasm: WasmKernels;

beforeAll(async () => {
  wasm = await createWasmKernels();
  wasm.reserve(256 << 20);
});

/** Run `fn` with arena scratch released afterwards, so property runs don't accumulate memory. */
function scoped<R>(fn: () => R): R {
  const mark = wasm.arena.mark();
  try {
    return fn();
  } finally {
    wasm.arena.release(mark);
  }
}

// ---- random data ---------------------------------------------------------------------------------

function mulberry32(seed: number): () => number {
  const g = new Mulberry32(seed);
  return () => g.next();
}

/** n float32 values: sign · U(0.5, 1) · 2^(logScale + U{-8..8}); about 5 decades around 2^logScale. */
function values(rand: () => number, n: number, logScale: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const e = logScale + Math.floor(rand() * 17) - 8;
    out[i] = (rand() < 0.5 ? -1 : 1) * (0.5 + rand() / 2) * 2 ** e;
  }
  return out;
}

/** n random finite f16 bit patterns (all exponents 0..30, so zeros and subnormals occur). */
function f16Bits(rand: () => number, n: number): Uint16Array {
  const out = new Uint16Array(n);
  for (let i = 0; i < n; i++) {
    let h: number;
    do h = Math.floor(rand() * 65536); while ((h & 0x7c00) === 0x7c00);
    out[i] = h;
  }
  return out;
}

function bf16Bits(rand: () => number, n: number, logScale: number): Uint16Array {
  const f = values(rand, n, logScale);
  const u = new Uint32Array(f.buffer);
  const out = new Uint16Array(n);
  for (let i = 0; i < n; i++) out[i] = u[i]! >>> 16;
  return out;
}

function widenedValue(w: Weight, e: number): number {
  if (w.dtype === "f32") return w.data[e]!;
  return (w.dtype === "f16" ? F16_TABLE : BF16_TABLE)[w.data[e]!]!;
}

/** A weight with host data and an identical copy in wasm memory. */
function makeWeight(rand: () => number, dtype: DType, shape: number[], logScale: number): { host: Weight; dev: Weight } {
  const n = shape.reduce((a, b) => a * b, 1);
  const hostData = dtype === "f32" ? values(rand, n, logScale) : dtype === "f16" ? f16Bits(rand, n) : bf16Bits(rand, n, logScale);
  const devData = dtype === "f32" ? wasm.allocF32(n) : wasm.allocU16(n);
  devData.set(hostData);
  return { host: { dtype, shape, data: hostData }, dev: { dtype, shape, data: devData } };
}

function toWasm(a: Float32Array): Float32Array {
  const v = wasm.allocF32(a.length);
  v.set(a);
  return v;
}

/** Assert |got − want| <= tol[i] elementwise, reporting the worst element. */
function expectClose(got: Float32Array, want: Float32Array, tol: (i: number) => number, what: string): void {
  expect(got.length).toBe(want.length);
  let worst = -1, worstRatio = 0;
  for (let i = 0; i < want.length; i++) {
    const g = got[i]!, w = want[i]!;
    if (Number.isNaN(w) || Number.isNaN(g)) {
      if (Number.isNaN(w) !== Number.isNaN(g)) { worst = i; worstRatio = Infinity; break; }
      continue;
    }
    if (g === w) continue;
    const ratio = Math.abs(g - w) / tol(i);
    if (!(ratio <= 1) && ratio > worstRatio) { worst = i; worstRatio = ratio; }
  }
  if (worst >= 0) {
    expect.fail(`${what}: element ${worst} is ${got[worst]}, reference ${want[worst]}, |diff| = ${Math.abs(got[worst]! - want[worst]!)} > tolerance ${tol(worst)}`);
  }
}

const SIZES = [1, 3, 5, 7, 13, 63, 65];
const size = fc.oneof(fc.constantFrom(...SIZES), fc.integer({ min: 1, max: 70 }));
const seed = fc.integer({ min: 0, max: 2 ** 31 - 1 });
const logScale = fc.integer({ min: -30, max: 30 });

// ---- f16 / bf16 widening -------------------------------------------------------------------------

describe("wasm widening", () => {
  it("f16 -> f32 is bit-exact with F16_TABLE for all 65536 patterns (incl. subnormals, Inf, NaN payloads)", () => {
    scoped(() => {
      const bits = wasm.allocU16(65536);
      for (let h = 0; h < 65536; h++) bits[h] = h;
      const out = wasm.allocF32(65536);
      wasm.widen(out, { dtype: "f16", shape: [65536], data: bits }, 65536);
      expect(new Uint32Array(out.slice().buffer)).toEqual(new Uint32Array(F16_TABLE.slice().buffer));
      // the embedding path widens the same way (odd row length: SIMD body + scalar tail)
      const emb = wasm.allocF32(65536);
      const ids = Array.from({ length: 65536 / 16 }, (_, i) => i);
      wasm.embedding(emb, { dtype: "f16", shape: [4096, 16], data: bits }, ids, 4096, 16);
      expect(new Uint32Array(emb.slice().buffer)).toEqual(new Uint32Array(F16_TABLE.slice().buffer));
      const odd = wasm.allocF32(65535);
      wasm.widen(odd, { dtype: "f16", shape: [65536], data: bits }, 65535);
      expect(new Uint32Array(odd.slice().buffer)).toEqual(new Uint32Array(F16_TABLE.slice(0, 65535).buffer));
    });
  });

  it("bf16 -> f32 is bit-exact with BF16_TABLE for all 65536 patterns", () => {
    scoped(() => {
      const bits = wasm.allocU16(65536);
      for (let h = 0; h < 65536; h++) bits[h] = h;
      const out = wasm.allocF32(65535);
      wasm.widen(out, { dtype: "bf16", shape: [65536], data: bits }, 65535);
      expect(new Uint32Array(out.slice().buffer)).toEqual(new Uint32Array(BF16_TABLE.slice(0, 65535).buffer));
    });
  });

  it("f16 matmul uses exactly the widened weights: each one-hot x picks out W[o, i] bit-exactly", () => {
    scoped(() => {
      // W[o, i] = pattern o*I + i covers all 65536 patterns; y = W·e_i equals column i exactly
      const I = 256, O = 256;
      const bits = wasm.allocU16(O * I);
      for (let h = 0; h < 65536; h++) bits[h] = h;
      const w: Weight = { dtype: "f16", shape: [O, I], data: bits };
      for (const T of [1, 4]) {
        const x = wasm.allocF32(T * I), y = wasm.allocF32(T * O);
        for (const i of [0, 1, 7, 8, 100, 255]) {
          x.fill(0);
          for (let t = 0; t < T; t++) x[t * I + i] = 1;
          wasm.matmul(y, x, w, T, I, O);
          for (let o = 0; o < O; o++) {
            const want = F16_TABLE[o * I + i]!;
            const got = y[(T - 1) * O + o]!;
            // x·w with the other entries 0: NaN stays NaN (0·NaN), Inf stays Inf, everything else exact
            if (Number.isNaN(want) || !Number.isFinite(want)) expect(Number.isNaN(got) || got === want).toBe(true);
            else expect(got).toBe(want + 0); // the sum starts at +0, so -0 comes out as +0
          }
        }
      }
    });
  });
  it("fast f16 decode path (matrix checked finite) picks out every finite W[o, i] bit-exactly", () => {
    scoped(() => {
      // all 63488 finite patterns = 248 rows × 256; with x one-hot the sum is the widened weight
      // times x[i]: x = 1 takes the path with x pre-scaled by 2^112, x = 2^20 the unscaled one
      const I = 256, O = 248;
      const bits = wasm.allocU16(O * I);
      let e = 0;
      for (let h = 0; h < 65536; h++) if ((h & 0x7c00) !== 0x7c00) bits[e++] = h;
      const w: Weight = { dtype: "f16", shape: [O, I], data: bits };
      const x = wasm.allocF32(I), y = wasm.allocF32(O);
      for (const scale of [1, 2 ** 20]) {
        for (const i of [0, 1, 2, 3, 4, 5, 6, 7, 8, 100, 255]) {
          x.fill(0);
          x[i] = scale;
          wasm.matmul(y, x, w, 1, I, O);
          for (let o = 0; o < O; o++) expect(y[o]).toBe(F16_TABLE[bits[o * I + i]!]! * scale + 0);
        }
      }
    });
  });
});

describe("wasm streaming-read baselines", () => {
  it("sumF32 over one stream and over four quarters both give Σx (odd n included)", () => {
    scoped(() => {
      for (const n of [0, 1, 7, 31, 32, 33, 100, 1000, 4099]) {
        const x = wasm.allocF32(n);
        for (let i = 0; i < n; i++) x[i] = (i % 17) - 8 + 0.25; // exact in f32 at every partial sum
        let want = 0;
        for (let i = 0; i < n; i++) want += x[i]!;
        expect(wasm.sumF32(x, n)).toBe(want);
        expect(wasm.sumF32(x, n, 4)).toBe(want);
      }
    });
  });
});

// ---- matmul ----------------------------------------------------------------------------------------

function matmulTolerance(x: Float32Array, w: Weight, T: number, I: number, O: number): (j: number) => number {
  return (j) => {
    const t = Math.floor(j / O), o = j % O;
    let mag = 0;
    for (let i = 0; i < I; i++) mag += Math.abs(x[t * I + i]! * widenedValue(w, o * I + i));
    return 1e-5 * mag + 1e-35;
  };
}

describe("wasm matmul vs TS reference", () => {
  for (const dtype of ["f32", "f16", "bf16"] as const) {
    it(`${dtype} weights: decode (T<4) and prefill (T>=4) paths, odd sizes`, () => {
      fc.assert(
        fc.property(seed, fc.constantFrom(1, 2, 3, 4, 5, 7, 13), size, size, logScale, logScale,
          (s, T, I, O, lx, lw) => scoped(() => {
            const rand = mulberry32(s);
            const x = values(rand, T * I, lx);
            const w = makeWeight(rand, dtype, [O, I], lw);
            const want = new Float32Array(T * O);
            ts.matmul(want, x, w.host, T, I, O);
            const got = wasm.allocF32(T * O);
            wasm.matmul(got, toWasm(x), w.dev, T, I, O);
            expectClose(got, want, matmulTolerance(x, w.host, T, I, O), `matmul ${dtype} T=${T} I=${I} O=${O}`);
          })),
        { numRuns: 120 },
      );
    });

    it(`${dtype} weights: I larger than one k-block (several partial sums per output)`, () => {
      fc.assert(
        fc.property(seed, fc.constantFrom(1, 6, 9), fc.constantFrom(513, 1031, 1100), fc.constantFrom(5, 17),
          (s, T, I, O) => scoped(() => {
            const rand = mulberry32(s);
            const x = values(rand, T * I, 0);
            const w = makeWeight(rand, dtype, [O, I], -4);
            const want = new Float32Array(T * O);
            ts.matmul(want, x, w.host, T, I, O);
            const got = wasm.allocF32(T * O);
            wasm.matmul(got, toWasm(x), w.dev, T, I, O);
            expectClose(got, want, matmulTolerance(x, w.host, T, I, O), `matmul ${dtype} T=${T} I=${I} O=${O}`);
          })),
        { numRuns: 8 },
      );
    });
  }

  it("decode with I too large for the prepared copy of x (I > 8192) still matches, f16 and bf16", () => {
    scoped(() => {
      const rand = mulberry32(7);
      const I = 8203, O = 5, T = 1;
      for (const dtype of ["f16", "bf16"] as const) {
        const x = values(rand, T * I, 0);
        const w = makeWeight(rand, dtype, [O, I], -4);
        const want = new Float32Array(T * O);
        ts.matmul(want, x, w.host, T, I, O);
        const got = wasm.allocF32(T * O);
        wasm.matmul(got, toWasm(x), w.dev, T, I, O);
        expectClose(got, want, matmulTolerance(x, w.host, T, I, O), `matmul ${dtype} T=${T} I=${I} O=${O}`);
      }
    });
  });

  it("I = 0 (empty sums) writes zeros on both paths", () => {
    scoped(() => {
      for (const T of [1, 5]) {
        const y = wasm.allocF32(T * 3);
        y.fill(9);
        wasm.matmul(y, wasm.allocF32(0), { dtype: "f16", shape: [3, 0], data: wasm.allocU16(0) }, T, 0, 3);
        expect(Array.from(y)).toEqual(new Array(T * 3).fill(0));
      }
    });
  });

  it("f16 weights containing Inf and NaN give the reference's Inf/NaN (fast path falls back exactly)", () => {
    fc.assert(
      fc.property(seed, fc.constantFrom(1, 5), size, size, (s, T, I, O) => scoped(() => {
        const rand = mulberry32(s);
        const x = values(rand, T * I, 0);
        const w = makeWeight(rand, "f16", [O, I], 0);
        const specials = [0x7c00, 0xfc00, 0x7e00, 0x7c01, 0xfd55];
        for (let k = 0; k < 3; k++) {
          const e = Math.floor(rand() * O * I);
          w.host.data[e] = w.dev.data[e] = specials[Math.floor(rand() * specials.length)]!;
        }
        const want = new Float32Array(T * O);
        ts.matmul(want, x, w.host, T, I, O);
        const got = wasm.allocF32(T * O);
        wasm.matmul(got, toWasm(x), w.dev, T, I, O);
        expectClose(got, want, matmulTolerance(x, w.host, T, I, O), `matmul f16+Inf/NaN T=${T} I=${I} O=${O}`);
      })),
      { numRuns: 60 },
    );
  });
});

describe("wasm backward matmuls vs TS reference", () => {
  it("matmulBackwardX: dX = dY·W", () => {
    fc.assert(
      fc.property(seed, fc.constantFrom(1, 2, 3, 4, 5, 7, 13), size, size, logScale, logScale, (s, T, I, O, ly, lw) => scoped(() => {
        const rand = mulberry32(s);
        const dY = values(rand, T * O, ly);
        const w = makeWeight(rand, "f32", [O, I], lw);
        const want = new Float32Array(T * I);
        ts.matmulBackwardX(want, dY, w.host, T, I, O);
        const got = wasm.allocF32(T * I);
        got.fill(123); // overwritten, not accumulated
        wasm.matmulBackwardX(got, toWasm(dY), w.dev, T, I, O);
        expectClose(got, want, (j) => {
          const t = Math.floor(j / I), i = j % I;
          let mag = 0;
          for (let o = 0; o < O; o++) mag += Math.abs(dY[t * O + o]! * w.host.data[o * I + i]!);
          return 1e-5 * mag + 1e-35;
        }, `matmulBackwardX T=${T} I=${I} O=${O}`);
      })),
      { numRuns: 100 },
    );
  });

  it("matmulBackwardW: dW += dYᵀ·X", () => {
    fc.assert(
      fc.property(seed, fc.constantFrom(1, 2, 3, 4, 5, 7, 13, 64, 65, 130), size, size, logScale, logScale, (s, T, I, O, ly, lx) => scoped(() => {
        const rand = mulberry32(s);
        const dY = values(rand, T * O, ly);
        const x = values(rand, T * I, lx);
        const dW0 = values(rand, O * I, ly + lx);
        const want = dW0.slice();
        ts.matmulBackwardW(want, dY, x, T, I, O);
        const got = toWasm(dW0);
        wasm.matmulBackwardW(got, toWasm(dY), toWasm(x), T, I, O);
        expectClose(got, want, (j) => {
          const o = Math.floor(j / I), i = j % I;
          let mag = Math.abs(dW0[j]!);
          for (let t = 0; t < T; t++) mag += Math.abs(dY[t * O + o]! * x[t * I + i]!);
          return 1e-5 * mag + 1e-35;
        }, `matmulBackwardW T=${T} I=${I} O=${O}`);
      })),
      { numRuns: 100 },
    );
  });
});

// ---- the other forward kernels ---------------------------------------------------------------------

describe("wasm backward (training) kernels vs TS reference", () => {
  it("embeddingBackward is exact (repeated ids accumulate)", () => {
    fc.assert(
      fc.property(seed, fc.integer({ min: 1, max: 9 }), fc.integer({ min: 1, max: 13 }), size, (s, V, T, D) => scoped(() => {
        const rand = mulberry32(s);
        const dTable = values(rand, V * D, 0), dOut = values(rand, T * D, 0);
        const ids = Array.from({ length: T }, () => Math.floor(rand() * V));
        const want = dTable.slice();
        ts.embeddingBackward(want, dOut, ids, T, D);
        const got = toWasm(dTable);
        wasm.embeddingBackward(got, toWasm(dOut), ids, T, D);
        expect(Array.from(got)).toEqual(Array.from(want));
      })),
      { numRuns: 80 },
    );
  });

  it("rmsnormBackward (accumulates; |diff| <= 1e-5 · the magnitudes of its terms)", () => {
    fc.assert(
      fc.property(seed, fc.integer({ min: 1, max: 5 }), size, fc.integer({ min: -10, max: 10 }), (s, T, D, lx) => scoped(() => {
        const rand = mulberry32(s);
        const x = values(rand, T * D, lx), w = values(rand, D, 0), dy = values(rand, T * D, 0);
        const dx0 = values(rand, T * D, -lx), dw0 = values(rand, D, 0);
        const eps = 1e-5 * 2 ** (2 * lx);
        const wantDx = dx0.slice(), wantDw = dw0.slice();
        ts.rmsnormBackward(wantDx, wantDw, dy, x, w, T, D, eps);
        const gotDx = toWasm(dx0), gotDw = toWasm(dw0);
        wasm.rmsnormBackward(gotDx, gotDw, toWasm(dy), toWasm(x), toWasm(w), T, D, eps);
        const r = (t: number) => 1 / Math.sqrt(x.subarray(t * D, t * D + D).reduce((a, b) => a + b * b, 0) / D + eps);
        const gxAbs = (t: number) => { let m = 0; for (let i = 0; i < D; i++) m += Math.abs(dy[t * D + i]! * w[i]! * x[t * D + i]!); return m; };
        expectClose(gotDx, wantDx, (j) => {
          const t = Math.floor(j / D), i = j % D, rt = r(t);
          return 1e-5 * (Math.abs(dx0[j]!) + rt * Math.abs(dy[j]! * w[i]!) + rt ** 3 * gxAbs(t) / D * Math.abs(x[j]!)) + 1e-35;
        }, `rmsnormBackward dx T=${T} D=${D}`);
        expectClose(gotDw, wantDw, (i) => {
          let m = Math.abs(dw0[i]!);
          for (let t = 0; t < T; t++) m += Math.abs(dy[t * D + i]! * x[t * D + i]!) * r(t);
          return 1e-5 * m + 1e-35;
        }, `rmsnormBackward dw T=${T} D=${D}`);
      })),
      { numRuns: 100 },
    );
  });

  it("ropeBackward (|diff| <= 1e-6 · (|a| + |b|)), and it undoes rope", () => {
    fc.assert(
      fc.property(seed, fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 40 }),
        fc.integer({ min: 0, max: 20 }), (s, T, H, R, pos0) => scoped(() => {
          const rand = mulberry32(s);
          const Dh = 2 * R, maxP = pos0 + T;
          const cos = new Float32Array(maxP * R), sin = new Float32Array(maxP * R);
          for (let p = 0; p < maxP; p++) {
            for (let i = 0; i < R; i++) {
              cos[p * R + i] = Math.cos(p / 10000 ** ((2 * i) / Dh));
              sin[p * R + i] = Math.sin(p / 10000 ** ((2 * i) / Dh));
            }
          }
          const x = values(rand, T * H * Dh, 0);
          const want = x.slice();
          ts.ropeBackward(want, T, H, Dh, pos0, cos, sin);
          const got = toWasm(x), cd = toWasm(cos), sd = toWasm(sin);
          wasm.ropeBackward(got, T, H, Dh, pos0, cd, sd);
          const pair = (j: number) => { const base = j - (j % Dh), i = (j % Dh) % R; return Math.abs(x[base + i]!) + Math.abs(x[base + i + R]!); };
          expectClose(got, want, (j) => 2e-6 * pair(j) + 1e-35, `ropeBackward T=${T} H=${H} Dh=${Dh}`);
          wasm.rope(got, T, H, Dh, pos0, cd, sd);
          expectClose(got, x, (j) => 4e-6 * pair(j) + 1e-35, `rope(ropeBackward(x)) T=${T} H=${H} Dh=${Dh}`);
        })),
      { numRuns: 100 },
    );
  });

  // dS = P·(dP − Σ P·dP) cancels (exactly 0 in exact arithmetic when a row sees one position), so
  // the bound is relative to the size of the terms, B = T·max|dout|·(1 + Dh·max|v|·max|q,k|), too.
  it("attentionBackward: dq, dk, dv (|diff| <= 1e-4 · (1 + max score magnitude) · (max|reference| + B))", () => {
    fc.assert(
      fc.property(seed, fc.integer({ min: 1, max: 13 }), fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 3 }),
        fc.oneof(fc.constantFrom(1, 3, 4, 7, 16, 20, 64), fc.integer({ min: 1, max: 70 })), fc.integer({ min: -4, max: 0 }),
        (s, T, KV, group, Dh, lqk) => scoped(() => {
          const rand = mulberry32(s);
          const H = KV * group, nq = T * H * Dh, nk = T * KV * Dh;
          const q = values(rand, nq, lqk), k = values(rand, nk, lqk), v = values(rand, nk, 0), dout = values(rand, nq, 0);
          const want = { dq: new Float32Array(nq), dk: new Float32Array(nk), dv: new Float32Array(nk) };
          ts.attentionBackward(want.dq, want.dk, want.dv, dout, q, k, v, T, H, KV, Dh, new Float32Array(2 * T));
          const got = { dq: wasm.allocF32(nq), dk: wasm.allocF32(nk), dv: wasm.allocF32(nk) };
          got.dq.fill(7); got.dk.fill(7); got.dv.fill(7); // overwritten, not accumulated
          wasm.attentionBackward(got.dq, got.dk, got.dv, toWasm(dout), toWasm(q), toWasm(k), toWasm(v), T, H, KV, Dh, wasm.allocF32(2 * T));
          let maxScore = 0;
          for (let t = 0; t < T; t++) for (let h = 0; h < H; h++) for (let p = 0; p <= t; p++) {
            let m = 0;
            for (let i = 0; i < Dh; i++) m += Math.abs(q[(t * H + h) * Dh + i]! * k[(p * KV + Math.floor(h / group)) * Dh + i]!);
            maxScore = Math.max(maxScore, m / Math.sqrt(Dh));
          }
          const maxAbs = (a: Float32Array) => a.reduce((m, b) => Math.max(m, Math.abs(b)), 0);
          const terms = T * maxAbs(dout) * (1 + Dh * maxAbs(v) * Math.max(maxAbs(q), maxAbs(k)));
          for (const name of ["dq", "dk", "dv"] as const) {
            const maxRef = maxAbs(want[name]);
            expectClose(got[name], want[name], () => 1e-4 * (1 + maxScore) * (maxRef + terms) + 1e-30,
              `attentionBackward ${name} T=${T} H=${H} KV=${KV} Dh=${Dh}`);
          }
        })),
      { numRuns: 100 },
    );
  });

  it("siluMulBackward (relative 1e-5)", () => {
    fc.assert(
      fc.property(seed, size, fc.integer({ min: -10, max: 4 }), (s, n, lg) => scoped(() => {
        const rand = mulberry32(s);
        const g = values(rand, n, lg), u = values(rand, n, 0), d = values(rand, n, 0);
        const want = { dg: new Float32Array(n), du: new Float32Array(n) };
        ts.siluMulBackward(want.dg, want.du, d, g, u, n);
        const got = { dg: wasm.allocF32(n), du: wasm.allocF32(n) };
        wasm.siluMulBackward(got.dg, got.du, toWasm(d), toWasm(g), toWasm(u), n);
        // d silu/dg = σ(1 + g(1 − σ)) cancels near g ≈ −1.28: bound by the magnitudes of its terms
        const sig = (x: number) => 1 / (1 + Math.exp(-x));
        // (for g below about −80, where the gradient is below 1e-30·|dout·up|, f32 may give 0)
        expectClose(got.dg, want.dg, (i) => Math.abs(d[i]! * u[i]!) * (1e-5 * sig(g[i]!) * (1 + Math.abs(g[i]!)) + 1e-30) + 1e-35, `siluMulBackward dgate n=${n}`);
        // (likewise silu(g) = g·σ(g) underflows to 0 in f32 for g below about −88)
        expectClose(got.du, want.du, (i) => 1e-5 * Math.abs(want.du[i]!) + 1e-30 * Math.abs(d[i]!) + 1e-35, `siluMulBackward dup n=${n}`);
      })),
      { numRuns: 150 },
    );
  });

  it("crossEntropy and its backward (rows without a target predict nothing)", () => {
    fc.assert(
      fc.property(seed, fc.integer({ min: 1, max: 5 }), size, fc.integer({ min: -8, max: -2 }), (s, T, V, l) => scoped(() => {
        const rand = mulberry32(s);
        const x = values(rand, T * V, l);
        const targets = Array.from({ length: T }, () => (rand() < 0.2 ? -1 : Math.floor(rand() * V)));
        const want = x.slice();
        const wantLoss = ts.crossEntropy(want, targets, T, V);
        const got = toWasm(x);
        const gotLoss = wasm.crossEntropy(got, targets, T, V);
        let lossMag = 0;
        for (let t = 0; t < T; t++) if (targets[t]! >= 0) lossMag += 1 + Math.log(V) + 2 * Math.max(...x.subarray(t * V, t * V + V).map(Math.abs));
        expect(Math.abs(gotLoss - wantLoss), `loss ${gotLoss} vs ${wantLoss}`).toBeLessThanOrEqual(1e-5 * lossMag);
        const rowMax = (i: number) => Math.max(...x.subarray(i - (i % V), i - (i % V) + V));
        const probs = want.slice();
        const ptol = (i: number) => (4e-6 + Math.abs(x[i]! - rowMax(i)) * 2 ** -23) * Math.abs(probs[i]!) + 1e-37;
        expectClose(got, want, ptol, `crossEntropy probabilities T=${T} V=${V}`);
        const scale = 1 / 3;
        ts.crossEntropyBackward(want, targets, T, V, scale);
        wasm.crossEntropyBackward(got, targets, T, V, scale);
        // p·scale − scale rounds to f32 once more on the target's element
        expectClose(got, want, (i) => scale * (ptol(i) + 2 ** -23) + 1e-37, `crossEntropyBackward T=${T} V=${V}`);
      })),
      { numRuns: 100 },
    );
  });

  it("adamw is bit-identical to the reference (both float64 per element)", () => {
    fc.assert(
      fc.property(seed, size, fc.integer({ min: 1, max: 5000 }), fc.constantFrom(0, 0.1), (s, n, step, wd) => scoped(() => {
        const rand = mulberry32(s);
        const w = values(rand, n, -3), g = values(rand, n, -8), m = values(rand, n, -9), v = values(rand, n, -20).map(Math.abs);
        const want = { w: w.slice(), m: m.slice(), v: v.slice() };
        ts.adamw(want.w, g, want.m, want.v, n, 1e-3, 0.9, 0.95, 1e-8, wd, step);
        const got = { w: toWasm(w), m: toWasm(m), v: toWasm(v) };
        wasm.adamw(got.w, toWasm(g), got.m, got.v, n, 1e-3, 0.9, 0.95, 1e-8, wd, step);
        expect(Array.from(got.w)).toEqual(Array.from(want.w));
        expect(Array.from(got.m)).toEqual(Array.from(want.m));
        expect(Array.from(got.v)).toEqual(Array.from(want.v));
      })),
      { numRuns: 80 },
    );
  });
});

describe("wasm forward kernels vs TS reference", () => {
  it("embedding (every dtype) copies the widened rows exactly", () => {
    fc.assert(
      fc.property(seed, fc.constantFrom<DType>("f32", "f16", "bf16"), fc.integer({ min: 1, max: 9 }), size, size,
        (s, dtype, T, V, D) => scoped(() => {
          const rand = mulberry32(s);
          const table = makeWeight(rand, dtype, [V, D], 0);
          const ids = Array.from({ length: T }, () => Math.floor(rand() * V));
          const want = new Float32Array(T * D);
          ts.embedding(want, table.host, ids, T, D);
          const got = wasm.allocF32(T * D);
          wasm.embedding(got, table.dev, ids, T, D);
          expect(new Uint32Array(got.slice().buffer)).toEqual(new Uint32Array(want.buffer));
        })),
      { numRuns: 100 },
    );
  });

  it("embedding rejects ids outside the vocabulary", () => {
    scoped(() => {
      const rand = mulberry32(1);
      const table = makeWeight(rand, "f16", [4, 8], 0);
      expect(() => wasm.embedding(wasm.allocF32(8), table.dev, [4], 1, 8)).toThrow(/outside the vocabulary/);
    });
  });

  it("rmsnorm (relative 1e-5, in place too)", () => {
    fc.assert(
      fc.property(seed, fc.integer({ min: 1, max: 5 }), size, fc.integer({ min: -20, max: 20 }), fc.boolean(),
        (s, T, D, lx, inPlace) => scoped(() => {
          const rand = mulberry32(s);
          const x = values(rand, T * D, lx);
          const w = values(rand, D, 0);
          const eps = 1e-5 * 2 ** (2 * lx);
          const want = new Float32Array(T * D);
          ts.rmsnorm(want, x, w, T, D, eps);
          const xd = toWasm(x);
          const got = inPlace ? xd : wasm.allocF32(T * D);
          wasm.rmsnorm(got, xd, toWasm(w), T, D, eps);
          expectClose(got, want, (i) => 1e-5 * Math.abs(want[i]!) + 1e-35, `rmsnorm T=${T} D=${D}`);
        })),
      { numRuns: 100 },
    );
  });

  it("rope (|diff| <= 1e-6 · (|a·cos| + |b·sin|))", () => {
    fc.assert(
      fc.property(seed, fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 40 }),
        fc.integer({ min: 0, max: 20 }), logScale,
        (s, T, H, R, pos0, lx) => scoped(() => {
          const rand = mulberry32(s);
          const Dh = 2 * R;
          const maxP = pos0 + T;
          const cos = new Float32Array(maxP * R), sin = new Float32Array(maxP * R);
          for (let p = 0; p < maxP; p++) {
            for (let i = 0; i < R; i++) {
              const a = p / 10000 ** ((2 * i) / Dh);
              cos[p * R + i] = Math.cos(a);
              sin[p * R + i] = Math.sin(a);
            }
          }
          const x = values(rand, T * H * Dh, lx);
          const want = x.slice();
          ts.rope(want, T, H, Dh, pos0, cos, sin);
          const got = toWasm(x);
          wasm.rope(got, T, H, Dh, pos0, toWasm(cos), toWasm(sin));
          expectClose(got, want, (j) => {
            const t = Math.floor(j / (H * Dh)), base = j - (j % Dh), i = (j % Dh) % R, tab = (pos0 + t) * R + i;
            return 1e-6 * (Math.abs(x[base + i]!) + Math.abs(x[base + i + R]!)) * (Math.abs(cos[tab]!) + Math.abs(sin[tab]!)) + 1e-35;
          }, `rope T=${T} H=${H} Dh=${Dh}`);
        })),
      { numRuns: 100 },
    );
  });

  it("causal GQA attention (|diff| <= 1e-5 · (1 + max score magnitude) · max|v|)", () => {
    fc.assert(
      fc.property(seed, fc.integer({ min: 1, max: 5 }), fc.integer({ min: 0, max: 70 }), fc.integer({ min: 1, max: 3 }),
        fc.integer({ min: 1, max: 3 }), fc.oneof(fc.constantFrom(1, 3, 4, 7, 16, 20, 64), fc.integer({ min: 1, max: 70 })),
        fc.integer({ min: -3, max: 1 }), logScale,
        (s, T, pos0, KV, group, Dh, lqk, lv) => scoped(() => {
          const rand = mulberry32(s);
          const H = KV * group, P = pos0 + T, maxP = P + 2;
          const q = values(rand, T * H * Dh, lqk);
          const k = values(rand, maxP * KV * Dh, lqk);
          const v = values(rand, maxP * KV * Dh, lv);
          const want = new Float32Array(T * H * Dh);
          ts.attention(want, q, k, v, T, pos0, H, KV, Dh, new Float32Array(P));
          const got = wasm.allocF32(T * H * Dh);
          wasm.attention(got, toWasm(q), toWasm(k), toWasm(v), T, pos0, H, KV, Dh, wasm.allocF32(P));
          let maxV = 0, maxScore = 0;
          for (const a of v) maxV = Math.max(maxV, Math.abs(a));
          for (let t = 0; t < T; t++) for (let h = 0; h < H; h++) for (let p = 0; p < P; p++) {
            let m = 0;
            for (let i = 0; i < Dh; i++) m += Math.abs(q[(t * H + h) * Dh + i]! * k[(p * KV + Math.floor(h / group)) * Dh + i]!);
            maxScore = Math.max(maxScore, m / Math.sqrt(Dh));
          }
          expectClose(got, want, () => 1e-5 * (1 + maxScore) * maxV + 1e-35, `attention T=${T} pos0=${pos0} H=${H} KV=${KV} Dh=${Dh}`);
        })),
      { numRuns: 120 },
    );
  });

  // e^-g overflows f32 for g < -88.72, where silu(g) < 1e-36: those come out as ±0 (hence the
  // absolute term scaled by |up|).
  it("siluMul (relative 1e-6, out aliasing gate too)", () => {
    fc.assert(
      fc.property(seed, size, fc.integer({ min: -12, max: 5 }), logScale, fc.boolean(), (s, n, lg, lu, alias) => scoped(() => {
        const rand = mulberry32(s);
        const g = values(rand, n, lg), u = values(rand, n, lu);
        const want = new Float32Array(n);
        ts.siluMul(want, g, u, n);
        const gd = toWasm(g);
        const got = alias ? gd : wasm.allocF32(n);
        wasm.siluMul(got, gd, toWasm(u), n);
        expectClose(got, want, (i) => 1e-6 * Math.abs(want[i]!) + 1e-35 * (1 + Math.abs(u[i]!)), `siluMul n=${n}`);
      })),
      { numRuns: 150 },
    );
  });

  it("relu and reluBackward are exact (out aliasing the input too)", () => {
    fc.assert(
      fc.property(seed, size, logScale, fc.boolean(), (s, n, lx, alias) => scoped(() => {
        const rand = mulberry32(s);
        const x = values(rand, n, lx), d = values(rand, n, 0);
        const want = new Float32Array(n), wantDx = new Float32Array(n);
        ts.relu(want, x, n);
        ts.reluBackward(wantDx, d, x, n);
        const xd = toWasm(x);
        const dx = wasm.allocF32(n);
        wasm.reluBackward(dx, toWasm(d), xd, n);
        const got = alias ? xd : wasm.allocF32(n);
        wasm.relu(got, xd, n);
        expect(Array.from(got), `relu n=${n}`).toEqual(Array.from(want));
        expect(Array.from(dx), `reluBackward n=${n}`).toEqual(Array.from(wantDx));
      })),
      { numRuns: 100 },
    );
  });

  it("add is exact", () => {
    fc.assert(
      fc.property(seed, size, logScale, (s, n, l) => scoped(() => {
        const rand = mulberry32(s);
        const y = values(rand, n, l), x = values(rand, n, l);
        const want = y.slice();
        ts.add(want, x, n);
        const got = toWasm(y);
        wasm.add(got, toWasm(x), n);
        expect(Array.from(got)).toEqual(Array.from(want));
      })),
      { numRuns: 100 },
    );
  });

  // x − max is rounded to f32 before exp (the reference subtracts in f64), so the relative error
  // grows by |x − max|·2^-24 on top of a few ulp from exp, the sum and the division.
  it("softmax (relative 2e-6 + |x − max|·2^-23)", () => {
    fc.assert(
      fc.property(seed, fc.integer({ min: 1, max: 4 }), size, fc.integer({ min: -10, max: 8 }), (s, R, C, l) => scoped(() => {
        const rand = mulberry32(s);
        const x = values(rand, R * C, l);
        const want = x.slice();
        ts.softmax(want, R, C);
        const got = toWasm(x);
        wasm.softmax(got, R, C);
        const rowMax = (i: number) => Math.max(...x.subarray(i - (i % C), i - (i % C) + C));
        expectClose(got, want, (i) => (2e-6 + Math.abs(x[i]! - rowMax(i)) * 2 ** -23) * Math.abs(want[i]!) + 1e-37,
          `softmax R=${R} C=${C}`);
      })),
      { numRuns: 150 },
    );
  });

  it("the kernels' f32 exp is within 2 ulp of the correctly rounded e^x over [-87.3, 88.7]", () => {
    scoped(() => {
      const n = 200_003;
      const x = wasm.allocF32(n);
      for (let i = 0; i < n; i++) x[i] = -87.3 + (176 * i) / (n - 1);
      const xs = x.slice();
      wasm.expInPlace(x, n);
      let worst = 0;
      for (let i = 0; i < n; i++) {
        const want = Math.fround(Math.exp(xs[i]!));
        const ulp = 2 ** (Math.floor(Math.log2(want)) - 23);
        worst = Math.max(worst, Math.abs(x[i]! - want) / ulp);
      }
      expect(worst).toBeLessThanOrEqual(2);
      // edges: underflow to 0, overflow to Inf, NaN stays NaN, e^0 = 1
      const e = wasm.allocF32(5);
      e.set([-100, -Infinity, 100, NaN, 0]);
      wasm.expInPlace(e, 5);
      expect(Array.from(e)).toEqual([0, 0, Infinity, NaN, 1]);
    });
  });
});

// ---- memory: arena and argument checks -------------------------------------------------------------

describe("wasm arena", () => {
  it("hands out 16-byte aligned, zero-filled views (also after release) and tracks the high-water mark", () => {
    const mark = wasm.arena.mark();
    const a = wasm.allocF32(5);
    a.fill(7);
    const b = wasm.allocU16(3);
    expect(a.byteOffset % 16).toBe(0);
    expect(b.byteOffset % 16).toBe(0);
    expect(b.byteOffset).toBeGreaterThanOrEqual(a.byteOffset + 20);
    expect(wasm.arena.highWaterMark).toBeGreaterThanOrEqual(wasm.arena.used);
    wasm.arena.release(mark);
    const c = wasm.allocF32(5);
    expect(c.byteOffset).toBe(a.byteOffset);
    expect(Array.from(c)).toEqual([0, 0, 0, 0, 0]);
    wasm.arena.release(mark);
  });

  it("rejects arrays that are not views on its memory, naming the argument", () => {
    scoped(() => {
      const y = wasm.allocF32(4);
      expect(() => wasm.add(y, new Float32Array(4), 4)).toThrow(/add: xN is not a view on this backend's wasm memory/);
      expect(() => wasm.add(y, wasm.allocF32(2), 4)).toThrow(/xN has 2 elements, needs 4/);
    });
  });

  it("with a shared memory (the default here), views stay valid when memory grows after they were made", async () => {
    const k = await createWasmKernels();
    expect(k.arena.shared).toBe(true);
    const a = k.allocF32(1000);
    a.fill(3);
    const b = k.allocF32(4 << 20); // 16 MiB more: the memory grows
    expect(a.length).toBe(1000);
    expect(a[999]).toBe(3);
    k.add(b, a, 1000); // views made before and after growth both work
    expect(b[999]).toBe(3);
    expect(k.arena.highWaterMark).toBeGreaterThan(16 << 20);
  });

  it("with an ordinary memory, growing after views exist throws a clear error instead of detaching them", async () => {
    const k = await createWasmKernels({ shared: false });
    k.reserve(1 << 20);
    const a = k.allocF32(1000); // fits in the reservation
    expect(() => k.allocF32(1 << 20)).toThrow(/call reserve\(\) first with the total size/);
    expect(a.length).toBe(1000); // still attached
    k.add(a, a, 1000);
    expect(k.arena.highWaterMark).toBeGreaterThan(4000);
  });
});
