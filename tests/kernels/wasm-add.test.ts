// The wasm kernels vs the TS reference: the residual add. Tolerances and random data: wasm-helpers.ts.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ts, wasm, scoped, mulberry32, values, toWasm, size, seed, logScale } from "./wasm-helpers.js";

describe("wasm forward kernels vs TS reference", () => {
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
});
