// The wasm kernels vs the TS reference: f16 / bf16 -> f32 widening (half.ts), bit-exact, and the f16 matmul paths that rely on it. Tolerances and random data: wasm-helpers.ts.
import { describe, expect, it } from "vitest";
import { BF16_TABLE, F16_TABLE } from "../../src/kernels/half.js";
import type { Weight } from "../../src/kernels/kernels.js";
import { wasm, debug, scoped } from "./wasm-helpers.js";

describe("wasm widening", () => {
  it("f16 -> f32 is bit-exact with F16_TABLE for all 65536 patterns (incl. subnormals, Inf, NaN payloads)", () => {
    scoped(() => {
      const bits = wasm.allocU16(65536);
      for (let h = 0; h < 65536; h++) bits[h] = h;
      const out = wasm.allocF32(65536);
      debug.widen(out, { dtype: "f16", shape: [65536], data: bits }, 65536);
      expect(new Uint32Array(out.slice().buffer)).toEqual(new Uint32Array(F16_TABLE.slice().buffer));
      // the embedding path widens the same way (odd row length: SIMD body + scalar tail)
      const emb = wasm.allocF32(65536);
      const ids = Array.from({ length: 65536 / 16 }, (_, i) => i);
      wasm.embedding(emb, { dtype: "f16", shape: [4096, 16], data: bits }, ids, 4096, 16);
      expect(new Uint32Array(emb.slice().buffer)).toEqual(new Uint32Array(F16_TABLE.slice().buffer));
      const odd = wasm.allocF32(65535);
      debug.widen(odd, { dtype: "f16", shape: [65536], data: bits }, 65535);
      expect(new Uint32Array(odd.slice().buffer)).toEqual(new Uint32Array(F16_TABLE.slice(0, 65535).buffer));
    });
  });
  it("bf16 -> f32 is bit-exact with BF16_TABLE for all 65536 patterns", () => {
    scoped(() => {
      const bits = wasm.allocU16(65536);
      for (let h = 0; h < 65536; h++) bits[h] = h;
      const out = wasm.allocF32(65535);
      debug.widen(out, { dtype: "bf16", shape: [65536], data: bits }, 65535);
      expect(new Uint32Array(out.slice().buffer)).toEqual(new Uint32Array(BF16_TABLE.slice(0, 65535).buffer));
    });
  });
  it("f16 matmul uses exactly the widened weights: each one-hot x picks out W[o, i] bit-exactly", () => {
    scoped(() => {
      // W[o, i] = pattern o*I + i covers all 65536 patterns; y = W·e_i equals column i exactly
      const I = 256,
        O = 256;
      const bits = wasm.allocU16(O * I);
      for (let h = 0; h < 65536; h++) bits[h] = h;
      const w: Weight = { dtype: "f16", shape: [O, I], data: bits };
      for (const T of [1, 4]) {
        const x = wasm.allocF32(T * I),
          y = wasm.allocF32(T * O);
        for (const i of [0, 1, 7, 8, 100, 255]) {
          x.fill(0);
          for (let t = 0; t < T; t++) x[t * I + i] = 1;
          wasm.matmul(y, x, w, T, I, O);
          for (let o = 0; o < O; o++) {
            const want = F16_TABLE[o * I + i]!;
            const got = y[(T - 1) * O + o]!;
            // x·w with the other entries 0: NaN stays NaN (0·NaN), Inf stays Inf, everything else exact
            if (Number.isNaN(want) || !Number.isFinite(want)) expect(Number.isNaN(got) || got === want).toBe(true);
            else expect(got).toBe(want + 0); // the sum starts at +0, so -0 comes out as +0
          }
        }
      }
    });
  });
  it("fast f16 decode path (matrix checked finite) picks out every finite W[o, i] bit-exactly", () => {
    scoped(() => {
      // all 63488 finite patterns = 248 rows × 256; with x one-hot the sum is the widened weight
      // times x[i]: x = 1 takes the path with x pre-scaled by 2^112, x = 2^20 the unscaled one
      const I = 256,
        O = 248;
      const bits = wasm.allocU16(O * I);
      let e = 0;
      for (let h = 0; h < 65536; h++) if ((h & 0x7c00) !== 0x7c00) bits[e++] = h;
      const w: Weight = { dtype: "f16", shape: [O, I], data: bits };
      const x = wasm.allocF32(I),
        y = wasm.allocF32(O);
      for (const scale of [1, 2 ** 20]) {
        for (const i of [0, 1, 2, 3, 4, 5, 6, 7, 8, 100, 255]) {
          x.fill(0);
          x[i] = scale;
          wasm.matmul(y, x, w, 1, I, O);
          for (let o = 0; o < O; o++) expect(y[o]).toBe(F16_TABLE[bits[o * I + i]!]! * scale + 0);
        }
      }
    });
  });
});
