// The wasm kernels vs the TS reference: matmul (decode and prefill paths) and its two backward products. Tolerances and random data: wasm-helpers.ts.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { Weight } from "../../src/kernels/kernels.js";
import {
  ts,
  wasm,
  scoped,
  mulberry32,
  values,
  widenedValue,
  makeWeight,
  toWasm,
  expectClose,
  size,
  seed,
  logScale,
} from "./wasm-helpers.js";

// ---- matmul ----------------------------------------------------------------------------------------

function matmulTolerance(x: Float32Array, w: Weight, _T: number, I: number, O: number): (j: number) => number {
  return (j) => {
    const t = Math.floor(j / O),
      o = j % O;
    let mag = 0;
    for (let i = 0; i < I; i++) mag += Math.abs(x[t * I + i]! * widenedValue(w, o * I + i));
    return 1e-5 * mag + 1e-35;
  };
}

describe("wasm matmul vs TS reference", () => {
  for (const dtype of ["f32", "f16", "bf16"] as const) {
    it(`${dtype} weights: decode (T<4) and prefill (T>=4) paths, odd sizes`, () => {
      fc.assert(
        fc.property(seed, fc.constantFrom(1, 2, 3, 4, 5, 7, 13), size, size, logScale, logScale, (s, T, I, O, lx, lw) =>
          scoped(() => {
            const rand = mulberry32(s);
            const x = values(rand, T * I, lx);
            const w = makeWeight(rand, dtype, [O, I], lw);
            const want = new Float32Array(T * O);
            ts.matmul(want, x, w.host, T, I, O);
            const got = wasm.allocF32(T * O);
            wasm.matmul(got, toWasm(x), w.dev, T, I, O);
            expectClose(got, want, matmulTolerance(x, w.host, T, I, O), `matmul ${dtype} T=${T} I=${I} O=${O}`);
          }),
        ),
        { numRuns: 120 },
      );
    });

    // T 37 and 70: several token blocks of the f32 prefill path (about 32768 / I tokens each)
    it(`${dtype} weights: I larger than one k-block (several partial sums per output), several token blocks`, () => {
      fc.assert(
        fc.property(seed, fc.constantFrom(1, 6, 9, 37, 70), fc.constantFrom(513, 1031, 1100), fc.constantFrom(5, 17), (s, T, I, O) =>
          scoped(() => {
            const rand = mulberry32(s);
            const x = values(rand, T * I, 0);
            const w = makeWeight(rand, dtype, [O, I], -4);
            const want = new Float32Array(T * O);
            ts.matmul(want, x, w.host, T, I, O);
            const got = wasm.allocF32(T * O);
            wasm.matmul(got, toWasm(x), w.dev, T, I, O);
            expectClose(got, want, matmulTolerance(x, w.host, T, I, O), `matmul ${dtype} T=${T} I=${I} O=${O}`);
          }),
        ),
        { numRuns: 8 },
      );
    });
  }

  it("decode with I too large for the prepared copy of x (I > 8192) still matches, f16 and bf16", () => {
    scoped(() => {
      const rand = mulberry32(7);
      const I = 8203,
        O = 5,
        T = 1;
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
      fc.property(seed, fc.constantFrom(1, 5), size, size, (s, T, I, O) =>
        scoped(() => {
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
        }),
      ),
      { numRuns: 60 },
    );
  });
});

describe("wasm backward matmuls vs TS reference", () => {
  it("matmulBackwardX: dX = dY·W", () => {
    fc.assert(
      fc.property(seed, fc.constantFrom(1, 2, 3, 4, 5, 7, 13), size, size, logScale, logScale, (s, T, I, O, ly, lw) =>
        scoped(() => {
          const rand = mulberry32(s);
          const dY = values(rand, T * O, ly);
          const w = makeWeight(rand, "f32", [O, I], lw);
          const want = new Float32Array(T * I);
          ts.matmulBackwardX(want, dY, w.host, T, I, O);
          const got = wasm.allocF32(T * I);
          got.fill(123); // overwritten, not accumulated
          wasm.matmulBackwardX(got, toWasm(dY), w.dev, T, I, O);
          expectClose(
            got,
            want,
            (j) => {
              const t = Math.floor(j / I),
                i = j % I;
              let mag = 0;
              for (let o = 0; o < O; o++) mag += Math.abs(dY[t * O + o]! * w.host.data[o * I + i]!);
              return 1e-5 * mag + 1e-35;
            },
            `matmulBackwardX T=${T} I=${I} O=${O}`,
          );
        }),
      ),
      { numRuns: 100 },
    );
  });

  it("matmulBackwardW: dW += dYᵀ·X", () => {
    fc.assert(
      fc.property(seed, fc.constantFrom(1, 2, 3, 4, 5, 7, 13, 64, 65, 130), size, size, logScale, logScale, (s, T, I, O, ly, lx) =>
        scoped(() => {
          const rand = mulberry32(s);
          const dY = values(rand, T * O, ly);
          const x = values(rand, T * I, lx);
          const dW0 = values(rand, O * I, ly + lx);
          const want = dW0.slice();
          ts.matmulBackwardW(want, dY, x, T, I, O);
          const got = toWasm(dW0);
          wasm.matmulBackwardW(got, toWasm(dY), toWasm(x), T, I, O);
          expectClose(
            got,
            want,
            (j) => {
              const o = Math.floor(j / I),
                i = j % I;
              let mag = Math.abs(dW0[j]!);
              for (let t = 0; t < T; t++) mag += Math.abs(dY[t * O + o]! * x[t * I + i]!);
              return 1e-5 * mag + 1e-35;
            },
            `matmulBackwardW T=${T} I=${I} O=${O}`,
          );
        }),
      ),
      { numRuns: 100 },
    );
  });
});
