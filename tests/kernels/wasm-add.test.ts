// The wasm kernels vs the TS reference: the residual add. Tolerances and random data: wasm-helpers.ts.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ts, wasm, scoped, mulberry32, values, toWasm, size, seed, logScale } from "./wasm-helpers.js";

describe("wasm forward kernels vs TS reference", () => {
  it("relu and reluBackward are exact (out aliasing the input too)", () => {
    fc.assert(
      fc.property(seed, size, logScale, fc.boolean(), (s, n, lx, alias) =>
        scoped(() => {
          const rand = mulberry32(s);
          const x = values(rand, n, lx),
            d = values(rand, n, 0);
          const want = new Float32Array(n),
            wantDx = new Float32Array(n);
          ts.relu(want, x, n);
          ts.reluBackward(wantDx, d, x, n);
          const xd = toWasm(x);
          const dx = wasm.allocF32(n);
          wasm.reluBackward(dx, toWasm(d), xd, n);
          const got = alias ? xd : wasm.allocF32(n);
          wasm.relu(got, xd, n);
          expect(Array.from(got), `relu n=${n}`).toEqual(Array.from(want));
          expect(Array.from(dx), `reluBackward n=${n}`).toEqual(Array.from(wantDx));
        }),
      ),
      { numRuns: 100 },
    );
  });

  it("add is exact", () => {
    fc.assert(
      fc.property(seed, size, logScale, (s, n, l) =>
        scoped(() => {
          const rand = mulberry32(s);
          const y = values(rand, n, l),
            x = values(rand, n, l);
          const want = y.slice();
          ts.add(want, x, n);
          const got = toWasm(y);
          wasm.add(got, toWasm(x), n);
          expect(Array.from(got)).toEqual(Array.from(want));
        }),
      ),
      { numRuns: 100 },
    );
  });
});
