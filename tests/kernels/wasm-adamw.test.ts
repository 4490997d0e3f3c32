// The wasm kernels vs the TS reference: the AdamW step. Tolerances and random data: wasm-helpers.ts.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ts, wasm, scoped, mulberry32, values, toWasm, size, seed } from "./wasm-helpers.js";

describe("wasm backward (training) kernels vs TS reference", () => {
  it("adamw is bit-identical to the reference (both float64 per element)", () => {
    fc.assert(
      fc.property(seed, size, fc.integer({ min: 1, max: 5000 }), fc.constantFrom(0, 0.1), (s, n, step, wd) =>
        scoped(() => {
          const rand = mulberry32(s);
          const w = values(rand, n, -3),
            g = values(rand, n, -8),
            m = values(rand, n, -9),
            v = values(rand, n, -20).map(Math.abs);
          const want = { w: w.slice(), m: m.slice(), v: v.slice() };
          ts.adamw(want.w, g, want.m, want.v, n, 1e-3, 0.9, 0.95, 1e-8, wd, step);
          const got = { w: toWasm(w), m: toWasm(m), v: toWasm(v) };
          wasm.adamw(got.w, toWasm(g), got.m, got.v, n, 1e-3, 0.9, 0.95, 1e-8, wd, step);
          expect(Array.from(got.w)).toEqual(Array.from(want.w));
          expect(Array.from(got.m)).toEqual(Array.from(want.m));
          expect(Array.from(got.v)).toEqual(Array.from(want.v));
        }),
      ),
      { numRuns: 80 },
    );
  });
});
