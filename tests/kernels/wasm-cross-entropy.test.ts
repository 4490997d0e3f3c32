// The wasm kernels vs the TS reference: cross-entropy and its backward. Tolerances and random data: wasm-helpers.ts.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ts, wasm, scoped, mulberry32, values, toWasm, expectClose, size, seed } from "./wasm-helpers.js";

describe("wasm backward (training) kernels vs TS reference", () => {
  it("crossEntropy and its backward (rows without a target predict nothing)", () => {
    fc.assert(
      fc.property(seed, fc.integer({ min: 1, max: 5 }), size, fc.integer({ min: -8, max: -2 }), (s, T, V, l) =>
        scoped(() => {
          const rand = mulberry32(s);
          const x = values(rand, T * V, l);
          const targets = Array.from({ length: T }, () => (rand() < 0.2 ? -1 : Math.floor(rand() * V)));
          const want = x.slice();
          const wantLoss = ts.crossEntropy(want, targets, T, V);
          const got = toWasm(x);
          const gotLoss = wasm.crossEntropy(got, targets, T, V);
          let lossMag = 0;
          for (let t = 0; t < T; t++)
            if (targets[t]! >= 0) lossMag += 1 + Math.log(V) + 2 * Math.max(...x.subarray(t * V, t * V + V).map(Math.abs));
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
        }),
      ),
      { numRuns: 100 },
    );
  });
});
