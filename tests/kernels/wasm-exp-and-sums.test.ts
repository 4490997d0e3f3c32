// The wasm kernels vs the TS reference: the kernels' f32 exp and the streaming-read baselines (debug exports). Tolerances and random data: wasm-helpers.ts.
import { describe, expect, it } from "vitest";
import { wasm, debug, scoped } from "./wasm-helpers.js";

describe("wasm streaming-read baselines", () => {
  it("sumF32 over one stream and over four quarters both give Σx (odd n included)", () => {
    scoped(() => {
      for (const n of [0, 1, 7, 31, 32, 33, 100, 1000, 4099]) {
        const x = wasm.allocF32(n);
        for (let i = 0; i < n; i++) x[i] = (i % 17) - 8 + 0.25; // exact in f32 at every partial sum
        let want = 0;
        for (let i = 0; i < n; i++) want += x[i]!;
        expect(debug.sumF32(x, n)).toBe(want);
        expect(debug.sumF32(x, n, 4)).toBe(want);
      }
    });
  });
});

describe("wasm forward kernels vs TS reference", () => {
  it("the kernels' f32 exp is within 2 ulp of the correctly rounded e^x over [-87.3, 88.7]", () => {
    scoped(() => {
      const n = 200_003;
      const x = wasm.allocF32(n);
      for (let i = 0; i < n; i++) x[i] = -87.3 + (176 * i) / (n - 1);
      const xs = x.slice();
      debug.expInPlace(x, n);
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
      debug.expInPlace(e, 5);
      expect(Array.from(e)).toEqual([0, 0, Infinity, NaN, 1]);
    });
  });
});
