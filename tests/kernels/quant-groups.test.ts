// q4_0 in groups of four rows (src/kernels/quant.ts Q4_0X4): the layout the wasm backend rewrites
// a q4_0 matrix into at its first matmul (assembly/quant.ts repackQ4x4, matvecQ4x4, matmul4Q4x4).
// The grouped kernels must give the TS reference's bits (which reads GGUF's layout) on every
// thread count, rows past the last multiple of 4 included; the rewrite must be the TS one's bytes
// and undo exactly; everything else that reads the bytes (embedding rows, the TS kernels,
// plainBlocks for GGUF export) must see the plain values.
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Weight } from "../../src/kernels/kernels.js";
import { dequantize, isGroupedQ4, plainBlocks, quantize, quantizedBytes, repackQ4x4, unpackQ4x4 } from "../../src/kernels/quant.js";
import { createTsKernels } from "../../src/kernels/ts/index.js";
import { createWasmKernels, type WasmKernels } from "../../src/kernels/wasm/index.js";
import { Mulberry32 } from "../../src/util/rng.js";

const THREADS = [1, 2, 3, 8] as const;
const ts = createTsKernels();
const kernels = new Map<number, WasmKernels>();
beforeAll(async () => {
  for (const t of THREADS) {
    const k = await createWasmKernels({ threads: t, minThreadWork: 0 });
    k.reserve(16 << 20);
    kernels.set(t, k);
  }
});
afterAll(async () => {
  for (const k of kernels.values()) await k.dispose();
});

function scoped<R>(k: WasmKernels, fn: () => R): R {
  const mark = k.arena.mark();
  try {
    return fn();
  } finally {
    k.arena.release(mark);
  }
}

/** q4_0 blocks of O·I random values (magnitudes over 2^±6 times 2^logScale, some zeros). */
function q4Bytes(g: Mulberry32, O: number, I: number, logScale = 0): Uint8Array {
  const v = Float32Array.from({ length: O * I }, () =>
    g.next() < 0.05 ? 0 : (g.next() - 0.5) * 2 ** (logScale + Math.floor(g.next() * 13) - 6),
  );
  const bytes = new Uint8Array(quantizedBytes("q4_0", O * I));
  quantize("q4_0", bytes, 0, v, 0, O * I);
  return bytes;
}

function onDevice(k: WasmKernels, bytes: Uint8Array, O: number, I: number): Weight {
  const data = k.allocU8(bytes.length);
  data.set(bytes);
  return { dtype: "q4_0", shape: [O, I], data };
}

function firstBitDifference(a: Float32Array, b: Float32Array): string | null {
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return `element ${i}: ${a[i]} vs ${b[i]}`;
  return null;
}

const shapes = fc.record({
  T: fc.constantFrom(1, 2, 3, 4, 5, 8, 9),
  O: fc.constantFrom(4, 5, 7, 8, 13, 15, 17, 63, 65, 67, 129),
  B: fc.integer({ min: 1, max: 7 }),
  logScale: fc.integer({ min: -12, max: 12 }),
  seed: fc.integer({ min: 1, max: 1 << 30 }),
});

describe("q4_0 in groups of four rows", () => {
  it("the wasm rewrite gives the TS rewrite's bytes, rows past O&~3 untouched, and unpackQ4x4 undoes it", () => {
    const k = kernels.get(1)!;
    fc.assert(
      fc.property(shapes, ({ O, B, seed }) =>
        scoped(k, () => {
          const I = 32 * B,
            bytes = q4Bytes(new Mulberry32(seed), O, I);
          const w = onDevice(k, bytes, O, I);
          const scratch = k.arena.alloc(k.exports.QMATMUL_SCRATCH_BYTES.value as number);
          k.exports.repackQ4x4(w.data.byteOffset, O, I, scratch);
          const grouped = bytes.slice();
          repackQ4x4(grouped, O, I);
          expect(Buffer.from(w.data as Uint8Array).equals(Buffer.from(grouped))).toBe(true);
          const tail = (O & ~3) * quantizedBytes("q4_0", I);
          expect(Buffer.from(grouped.subarray(tail)).equals(Buffer.from(bytes.subarray(tail)))).toBe(true);
          if (O >= 8) expect(Buffer.from(grouped).equals(Buffer.from(bytes))).toBe(false);
          unpackQ4x4(grouped, O, I);
          expect(Buffer.from(grouped).equals(Buffer.from(bytes))).toBe(true);
        }),
      ),
      { numRuns: 60 },
    );
  });

  it("the grouped matmul (decode and prefill) equals the TS reference bit for bit on 1, 2, 3 and 8 threads", () => {
    fc.assert(
      fc.property(shapes, ({ T, O, B, logScale, seed }) => {
        const I = 32 * B,
          g = new Mulberry32(seed);
        const bytes = q4Bytes(g, O, I, logScale);
        const x = Float32Array.from({ length: T * I }, () =>
          g.next() < 0.05 ? 0 : (g.next() - 0.5) * 2 ** (Math.floor(g.next() * 13) - 6),
        );
        const yTs = new Float32Array(T * O);
        ts.matmul(yTs, x, { dtype: "q4_0", shape: [O, I], data: bytes }, T, I, O);
        for (const [threads, k] of kernels) {
          scoped(k, () => {
            const w = onDevice(k, bytes, O, I);
            const xk = k.allocF32(T * I);
            xk.set(x);
            for (const pass of ["first (rewrites)", "second (grouped)"]) {
              const y = k.allocF32(T * O);
              k.matmul(y, xk, w, T, I, O);
              expect(isGroupedQ4(w)).toBe(true);
              expect(firstBitDifference(y, yTs), `${threads} threads, ${pass} call, T=${T} O=${O} I=${I}`).toBeNull();
            }
          });
        }
      }),
      { numRuns: 40 },
    );
  });

  it("embedding rows of a grouped table (a q4_0 embedding that is also the lm_head) are the plain rows", () => {
    const k = kernels.get(1)!;
    scoped(k, () => {
      const V = 23,
        D = 96,
        g = new Mulberry32(5);
      const bytes = q4Bytes(g, V, D);
      const table = onDevice(k, bytes, V, D);
      const x = k.allocF32(D),
        logits = k.allocF32(V);
      x.set(Float32Array.from({ length: D }, () => g.next() - 0.5));
      k.matmul(logits, x, table, 1, D, V);
      expect(isGroupedQ4(table)).toBe(true);
      const ids = Array.from({ length: V }, (_, i) => V - 1 - i);
      const out = k.allocF32(V * D),
        want = new Float32Array(V * D);
      k.embedding(out, table, ids, V, D);
      ids.forEach((id, t) => dequantize("q4_0", want.subarray(t * D, (t + 1) * D), bytes, id * quantizedBytes("q4_0", D), D));
      expect(firstBitDifference(out, want)).toBeNull();
    });
  });

  it("plainBlocks restores GGUF's bytes in place; the TS kernels read a grouped weight correctly; the next wasm matmul regroups", () => {
    const k = kernels.get(1)!;
    scoped(k, () => {
      const O = 13,
        I = 64,
        g = new Mulberry32(7);
      const bytes = q4Bytes(g, O, I);
      const w = onDevice(k, bytes, O, I);
      const x = Float32Array.from({ length: I }, () => g.next() - 0.5);
      const xk = k.allocF32(I);
      xk.set(x);
      const y = k.allocF32(O),
        yTs = new Float32Array(O);
      k.matmul(y, xk, w, 1, I, O);
      expect(isGroupedQ4(w)).toBe(true);
      ts.matmul(yTs, x, w, 1, I, O); // the TS kernel restores the bytes first
      expect(firstBitDifference(y, yTs)).toBeNull();
      expect(isGroupedQ4(w)).toBe(false);
      expect(Buffer.from(w.data as Uint8Array).equals(Buffer.from(bytes))).toBe(true);
      k.matmul(y, xk, w, 1, I, O);
      expect(isGroupedQ4(w)).toBe(true);
      expect(firstBitDifference(y, yTs)).toBeNull();
      expect(Buffer.from(plainBlocks(w)).equals(Buffer.from(bytes))).toBe(true);
      expect(isGroupedQ4(w)).toBe(false);
    });
  });

  it("a second Weight over the same bytes sees the layout; a grouped weight called as another shape is an error", () => {
    const k = kernels.get(1)!;
    scoped(k, () => {
      const O = 9,
        I = 32,
        g = new Mulberry32(8);
      const bytes = q4Bytes(g, O, I);
      const a = onDevice(k, bytes, O, I);
      const b: Weight = { dtype: "q4_0", shape: [O, I], data: a.data };
      const x = k.allocF32(I);
      x.set(Float32Array.from({ length: I }, () => g.next() - 0.5));
      const ya = k.allocF32(O),
        yb = k.allocF32(O);
      k.matmul(ya, x, a, 1, I, O);
      k.matmul(yb, x, b, 1, I, O);
      expect(isGroupedQ4(b)).toBe(true);
      expect(firstBitDifference(ya, yb)).toBeNull();
      expect(() => k.matmul(ya, x, { dtype: "q4_0", shape: [O - 1, I], data: a.data }, 1, I, O - 1)).toThrow(
        /q4_0x4 layout as \[9,32\], called as \[8, 32\]/,
      );
    });
  });
});
