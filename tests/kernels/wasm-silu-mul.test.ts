// The wasm kernels vs the TS reference: SwiGLU's silu(gate)·up and its backward. Tolerances and random data: wasm-helpers.ts.
import fc from "fast-check";
import { describe, it } from "vitest";
import { ts, wasm, scoped, mulberry32, values, toWasm, expectClose, size, seed, logScale } from "./wasm-helpers.js";

describe("wasm backward (training) kernels vs TS reference", () => {
  it("siluMulBackward (relative 1e-5)", () => {
    fc.assert(
      fc.property(seed, size, fc.integer({ min: -10, max: 4 }), (s, n, lg) =>
        scoped(() => {
          const rand = mulberry32(s);
          const g = values(rand, n, lg),
            u = values(rand, n, 0),
            d = values(rand, n, 0);
          const want = { dg: new Float32Array(n), du: new Float32Array(n) };
          ts.siluMulBackward(want.dg, want.du, d, g, u, n);
          const got = { dg: wasm.allocF32(n), du: wasm.allocF32(n) };
          wasm.siluMulBackward(got.dg, got.du, toWasm(d), toWasm(g), toWasm(u), n);
          // d silu/dg = σ(1 + g(1 − σ)) cancels near g ≈ −1.28: bound by the magnitudes of its terms
          const sig = (x: number) => 1 / (1 + Math.exp(-x));
          // (for g below about −80, where the gradient is below 1e-30·|dout·up|, f32 may give 0)
          expectClose(
            got.dg,
            want.dg,
            (i) => Math.abs(d[i]! * u[i]!) * (1e-5 * sig(g[i]!) * (1 + Math.abs(g[i]!)) + 1e-30) + 1e-35,
            `siluMulBackward dgate n=${n}`,
          );
          // (likewise silu(g) = g·σ(g) underflows to 0 in f32 for g below about −88)
          expectClose(got.du, want.du, (i) => 1e-5 * Math.abs(want.du[i]!) + 1e-30 * Math.abs(d[i]!) + 1e-35, `siluMulBackward dup n=${n}`);
        }),
      ),
      { numRuns: 150 },
    );
  });
});

describe("wasm forward kernels vs TS reference", () => {
  // e^-g overflows f32 for g < -88.72, where silu(g) < 1e-36: those come out as ±0 (hence the
  // absolute term scaled by |up|).
  it("siluMul (relative 1e-6, out aliasing gate too)", () => {
    fc.assert(
      fc.property(seed, size, fc.integer({ min: -12, max: 5 }), logScale, fc.boolean(), (s, n, lg, lu, alias) =>
        scoped(() => {
          const rand = mulberry32(s);
          const g = values(rand, n, lg),
            u = values(rand, n, lu);
          const want = new Float32Array(n);
          ts.siluMul(want, g, u, n);
          const gd = toWasm(g);
          const got = alias ? gd : wasm.allocF32(n);
          wasm.siluMul(got, gd, toWasm(u), n);
          expectClose(got, want, (i) => 1e-6 * Math.abs(want[i]!) + 1e-35 * (1 + Math.abs(u[i]!)), `siluMul n=${n}`);
        }),
      ),
      { numRuns: 150 },
    );
  });
});
