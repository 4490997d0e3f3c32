// The wasm kernels vs the TS reference: embedding and its backward. Tolerances and random data: wasm-helpers.ts.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { DType } from "../../src/kernels/kernels.js";
import { ts, wasm, scoped, mulberry32, values, makeWeight, toWasm, size, seed } from "./wasm-helpers.js";

describe("wasm backward (training) kernels vs TS reference", () => {
  it("embeddingBackward is exact (repeated ids accumulate)", () => {
    fc.assert(
      fc.property(seed, fc.integer({ min: 1, max: 9 }), fc.integer({ min: 1, max: 13 }), size, (s, V, T, D) =>
        scoped(() => {
          const rand = mulberry32(s);
          const dTable = values(rand, V * D, 0),
            dOut = values(rand, T * D, 0);
          const ids = Array.from({ length: T }, () => Math.floor(rand() * V));
          const want = dTable.slice();
          ts.embeddingBackward(want, dOut, ids, T, D);
          const got = toWasm(dTable);
          wasm.embeddingBackward(got, toWasm(dOut), ids, T, D);
          expect(Array.from(got)).toEqual(Array.from(want));
        }),
      ),
      { numRuns: 80 },
    );
  });
});

describe("wasm forward kernels vs TS reference", () => {
  it("embedding (every dtype) copies the widened rows exactly", () => {
    fc.assert(
      fc.property(seed, fc.constantFrom<DType>("f32", "f16", "bf16"), fc.integer({ min: 1, max: 9 }), size, size, (s, dtype, T, V, D) =>
        scoped(() => {
          const rand = mulberry32(s);
          const table = makeWeight(rand, dtype, [V, D], 0);
          const ids = Array.from({ length: T }, () => Math.floor(rand() * V));
          const want = new Float32Array(T * D);
          ts.embedding(want, table.host, ids, T, D);
          const got = wasm.allocF32(T * D);
          wasm.embedding(got, table.dev, ids, T, D);
          expect(new Uint32Array(got.slice().buffer)).toEqual(new Uint32Array(want.buffer));
        }),
      ),
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
});
