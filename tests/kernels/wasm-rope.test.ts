// The wasm kernels vs the TS reference: rotary embedding and its backward. Tolerances and random data: wasm-helpers.ts.
import fc from "fast-check";
import { describe, it } from "vitest";
import { ts, wasm, scoped, mulberry32, values, toWasm, expectClose, seed, logScale } from "./wasm-helpers.js";

describe("wasm backward (training) kernels vs TS reference", () => {
  it("ropeBackward (|diff| <= 1e-6 · (|a| + |b|)), and it undoes rope", () => {
    fc.assert(
      fc.property(
        seed,
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 1, max: 40 }),
        fc.integer({ min: 0, max: 20 }),
        (s, T, H, R, pos0) =>
          scoped(() => {
            const rand = mulberry32(s);
            const Dh = 2 * R,
              maxP = pos0 + T;
            const cos = new Float32Array(maxP * R),
              sin = new Float32Array(maxP * R);
            for (let p = 0; p < maxP; p++) {
              for (let i = 0; i < R; i++) {
                cos[p * R + i] = Math.cos(p / 10000 ** ((2 * i) / Dh));
                sin[p * R + i] = Math.sin(p / 10000 ** ((2 * i) / Dh));
              }
            }
            const x = values(rand, T * H * Dh, 0);
            const want = x.slice();
            ts.ropeBackward(want, T, H, Dh, pos0, cos, sin);
            const got = toWasm(x),
              cd = toWasm(cos),
              sd = toWasm(sin);
            wasm.ropeBackward(got, T, H, Dh, pos0, cd, sd);
            const pair = (j: number) => {
              const base = j - (j % Dh),
                i = (j % Dh) % R;
              return Math.abs(x[base + i]!) + Math.abs(x[base + i + R]!);
            };
            expectClose(got, want, (j) => 2e-6 * pair(j) + 1e-35, `ropeBackward T=${T} H=${H} Dh=${Dh}`);
            wasm.rope(got, T, H, Dh, pos0, cd, sd);
            expectClose(got, x, (j) => 4e-6 * pair(j) + 1e-35, `rope(ropeBackward(x)) T=${T} H=${H} Dh=${Dh}`);
          }),
      ),
      { numRuns: 100 },
    );
  });
});

describe("wasm forward kernels vs TS reference", () => {
  it("rope (|diff| <= 1e-6 · (|a·cos| + |b·sin|))", () => {
    fc.assert(
      fc.property(
        seed,
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 1, max: 40 }),
        fc.integer({ min: 0, max: 20 }),
        logScale,
        (s, T, H, R, pos0, lx) =>
          scoped(() => {
            const rand = mulberry32(s);
            const Dh = 2 * R;
            const maxP = pos0 + T;
            const cos = new Float32Array(maxP * R),
              sin = new Float32Array(maxP * R);
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
            expectClose(
              got,
              want,
              (j) => {
                const t = Math.floor(j / (H * Dh)),
                  base = j - (j % Dh),
                  i = (j % Dh) % R,
                  tab = (pos0 + t) * R + i;
                return 1e-6 * (Math.abs(x[base + i]!) + Math.abs(x[base + i + R]!)) * (Math.abs(cos[tab]!) + Math.abs(sin[tab]!)) + 1e-35;
              },
              `rope T=${T} H=${H} Dh=${Dh}`,
            );
          }),
      ),
      { numRuns: 100 },
    );
  });
});
