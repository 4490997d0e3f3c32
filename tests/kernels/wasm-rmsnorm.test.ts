// The wasm kernels vs the TS reference: RMSNorm and its backward. Tolerances and random data: wasm-helpers.ts.
import fc from "fast-check";
import { describe, it } from "vitest";
import { ts, wasm, scoped, mulberry32, values, toWasm, expectClose, size, seed } from "./wasm-helpers.js";

describe("wasm backward (training) kernels vs TS reference", () => {
  it("rmsnormBackward (accumulates; |diff| <= 1e-5 · the magnitudes of its terms)", () => {
    fc.assert(
      fc.property(seed, fc.integer({ min: 1, max: 5 }), size, fc.integer({ min: -10, max: 10 }), (s, T, D, lx) =>
        scoped(() => {
          const rand = mulberry32(s);
          const x = values(rand, T * D, lx),
            w = values(rand, D, 0),
            dy = values(rand, T * D, 0);
          const dx0 = values(rand, T * D, -lx),
            dw0 = values(rand, D, 0);
          const eps = 1e-5 * 2 ** (2 * lx);
          const wantDx = dx0.slice(),
            wantDw = dw0.slice();
          ts.rmsnormBackward(wantDx, wantDw, dy, x, w, T, D, eps);
          const gotDx = toWasm(dx0),
            gotDw = toWasm(dw0);
          wasm.rmsnormBackward(gotDx, gotDw, toWasm(dy), toWasm(x), toWasm(w), T, D, eps);
          const r = (t: number) => 1 / Math.sqrt(x.subarray(t * D, t * D + D).reduce((a, b) => a + b * b, 0) / D + eps);
          const gxAbs = (t: number) => {
            let m = 0;
            for (let i = 0; i < D; i++) m += Math.abs(dy[t * D + i]! * w[i]! * x[t * D + i]!);
            return m;
          };
          expectClose(
            gotDx,
            wantDx,
            (j) => {
              const t = Math.floor(j / D),
                i = j % D,
                rt = r(t);
              return 1e-5 * (Math.abs(dx0[j]!) + rt * Math.abs(dy[j]! * w[i]!) + ((rt ** 3 * gxAbs(t)) / D) * Math.abs(x[j]!)) + 1e-35;
            },
            `rmsnormBackward dx T=${T} D=${D}`,
          );
          expectClose(
            gotDw,
            wantDw,
            (i) => {
              let m = Math.abs(dw0[i]!);
              for (let t = 0; t < T; t++) m += Math.abs(dy[t * D + i]! * x[t * D + i]!) * r(t);
              return 1e-5 * m + 1e-35;
            },
            `rmsnormBackward dw T=${T} D=${D}`,
          );
        }),
      ),
      { numRuns: 100 },
    );
  });
});

describe("wasm forward kernels vs TS reference", () => {
  it("rmsnorm (relative 1e-5, in place too)", () => {
    fc.assert(
      fc.property(seed, fc.integer({ min: 1, max: 5 }), size, fc.integer({ min: -20, max: 20 }), fc.boolean(), (s, T, D, lx, inPlace) =>
        scoped(() => {
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
        }),
      ),
      { numRuns: 100 },
    );
  });
});
