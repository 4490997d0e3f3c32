// q8_0 / q4_0 matmul kernels: the wasm SIMD kernel (assembly/quant.ts) against the TS reference
// (src/kernels/ts/quant.ts), on random shapes with odd row counts and several blocks per row.
//
// Both quantize the activations the same way and do the same f32 operations per output (an exact
// integer block sum times d_w·d_x, accumulated block by block), so they must agree BIT FOR BIT,
// for decode (T < 4) and prefill (T >= 4) alike, and however the rows are split into ranges.
// Separately, the reference is held to plain dequantize-and-dot in f64: activation quantization
// moves each product by at most |w|·d_x/2, so |y − Σ w·x| <= Σ_i |w_i|·d_x(i)/2 + 1e-5·Σ|w_i·x_i|.
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { Mulberry32 } from "../../src/util/rng.js";
import type { Weight } from "../../src/kernels/kernels.js";
import { BLOCK_BYTES, dequantize, isGroupedQ4, quantize, quantizedBytes, type QuantDType } from "../../src/kernels/quant.js";
import { createTsKernels } from "../../src/kernels/ts/index.js";
import { createWasmKernels, type WasmKernels } from "../../src/kernels/wasm/index.js";

const ts = createTsKernels();
let wasm: WasmKernels;
beforeAll(async () => {
  wasm = await createWasmKernels();
  wasm.reserve(64 << 20);
});

function scoped<R>(fn: () => R): R {
  const mark = wasm.arena.mark();
  try {
    return fn();
  } finally {
    wasm.arena.release(mark);
  }
}

/** Random values sign·U(0.5,1)·2^(U{-6..6}), with some exact zeros. */
function randomValues(g: Mulberry32, n: number, logScale = 0): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    out[i] = g.next() < 0.05 ? 0 : (g.next() < 0.5 ? -1 : 1) * (0.5 + g.next() / 2) * 2 ** (logScale + Math.floor(g.next() * 13) - 6);
  }
  return out;
}

function quantWeight(dtype: QuantDType, values: Float32Array, O: number, I: number): { host: Weight; dev: Weight; deq: Float32Array } {
  const bytes = new Uint8Array(quantizedBytes(dtype, O * I));
  quantize(dtype, bytes, 0, values, 0, O * I);
  const dev = wasm.allocU8(bytes.length);
  dev.set(bytes);
  const deq = new Float32Array(O * I);
  dequantize(dtype, deq, bytes, 0, O * I);
  return { host: { dtype, shape: [O, I], data: bytes }, dev: { dtype, shape: [O, I], data: dev }, deq };
}

function firstBitDifference(a: Float32Array, b: Float32Array): string | null {
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return `element ${i}: ${a[i]} vs ${b[i]}`;
  return null;
}

const shapes = fc.record({
  dtype: fc.constantFrom<QuantDType>("q8_0", "q4_0"),
  T: fc.constantFrom(1, 2, 3, 4, 5, 7, 8, 13),
  O: fc.constantFrom(1, 3, 5, 7, 13, 63, 65),
  B: fc.integer({ min: 1, max: 7 }), // blocks per row
  logScale: fc.integer({ min: -12, max: 12 }),
  seed: fc.integer({ min: 1, max: 1 << 30 }),
});

describe("quantized matmul: wasm == TS reference, bit for bit", () => {
  it("random shapes, decode and prefill", () => {
    fc.assert(
      fc.property(shapes, ({ dtype, T, O, B, logScale, seed }) =>
        scoped(() => {
          const I = B * 32,
            g = new Mulberry32(seed);
          const w = quantWeight(dtype, randomValues(g, O * I, logScale), O, I);
          const xHost = randomValues(g, T * I);
          const x = wasm.allocF32(T * I);
          x.set(xHost);
          const yWasm = wasm.allocF32(T * O),
            yTs = new Float32Array(T * O);
          wasm.matmul(yWasm, x, w.dev, T, I, O);
          ts.matmul(yTs, xHost, w.host, T, I, O);
          expect(firstBitDifference(yWasm, yTs)).toBeNull();
        }),
      ),
      { numRuns: 150 },
    );
  });

  it("any split of the rows into ranges [o0, o1) gives the same bits", () => {
    fc.assert(
      fc.property(shapes, fc.array(fc.integer({ min: 0, max: 65 }), { maxLength: 4 }), ({ dtype, T, O, B, seed }, cuts) =>
        scoped(() => {
          const I = B * 32,
            g = new Mulberry32(seed);
          const w = quantWeight(dtype, randomValues(g, O * I), O, I);
          const x = wasm.allocF32(T * I);
          x.set(randomValues(g, T * I));
          const whole = wasm.allocF32(T * O),
            parts = wasm.allocF32(T * O);
          const plain = wasm.allocU8(w.dev.data.length); // GGUF's layout, never given to matmul
          plain.set(w.dev.data);
          wasm.matmul(whole, x, w.dev, T, I, O); // q4_0 with O >= 4: now in groups of four rows
          const scratch = wasm.arena.alloc(wasm.exports.QMATMUL_SCRATCH_BYTES.value as number);
          const split = (data: Uint8Array, code: number, align: number): string | null => {
            parts.fill(NaN);
            const bounds = [0, ...cuts.map((c) => (c % (O + 1)) - ((c % (O + 1)) % align)).sort((a, b) => a - b), O];
            for (let k = 0; k + 1 < bounds.length; k++) {
              wasm.exports.matmulQuant(parts.byteOffset, x.byteOffset, data.byteOffset, code, T, I, O, bounds[k]!, bounds[k + 1]!, scratch);
            }
            return firstBitDifference(parts, whole);
          };
          // the plain kernels, split anywhere; the q4_0 groups (code 7), split at multiples of 4 as the backend does
          expect(split(plain, dtype === "q8_0" ? 5 : 6, 1)).toBeNull();
          expect(isGroupedQ4(w.dev)).toBe(dtype === "q4_0" && O >= 4);
          if (isGroupedQ4(w.dev)) expect(split(w.dev.data as Uint8Array, 7, 4)).toBeNull();
        }),
      ),
      { numRuns: 60 },
    );
  });

  it("a long input is processed in chunks of tokens with the same result per token", () =>
    scoped(() => {
      // I = 4096: 8.5 KB of quantized activations per token, so 300 tokens need several chunks
      const T = 300,
        I = 4096,
        O = 5,
        g = new Mulberry32(9);
      const w = quantWeight("q4_0", randomValues(g, O * I), O, I);
      const x = wasm.allocF32(T * I);
      x.set(randomValues(g, T * I));
      const y = wasm.allocF32(T * O),
        yTs = new Float32Array(T * O);
      wasm.matmul(y, x, w.dev, T, I, O);
      ts.matmul(yTs, x.slice(), w.host, T, I, O);
      expect(firstBitDifference(y, yTs)).toBeNull();
    }));

  it("extreme weights and activations: the integer block sums stay exact", () =>
    scoped(() => {
      // The baseline build's q4_0 dot works on 256·Σ n·x (nibbles masked in place against x stored
      // pre-scaled by up to 256, assembly/quant.ts), the largest intermediates of any path: drive
      // them to their limits with every nibble 0 or 15 (q8_0: every byte -128 or 127, as a GGUF from
      // elsewhere may hold) and every activation at ±127 after quantization, in runs and alternating.
      const I = 96,
        O = 7,
        B = I / 32,
        g = new Mulberry32(11);
      for (const dtype of ["q4_0", "q8_0"] as const) {
        for (const pattern of ["high", "low", "alternate", "random"] as const) {
          const bytes = new Uint8Array(quantizedBytes(dtype, O * I)),
            bb = BLOCK_BYTES[dtype];
          for (let blk = 0; blk < O * B; blk++) {
            bytes[blk * bb] = 0x00;
            bytes[blk * bb + 1] = blk % 2 ? 0x3c : 0xbc; // scale ±1.0 (f16)
            for (let j = 2; j < bb; j++) {
              const hi = pattern === "high" || (pattern === "alternate" && j % 2 === 0) || (pattern === "random" && g.next() < 0.5);
              bytes[blk * bb + j] = dtype === "q4_0" ? (hi ? 0xff : 0x00) : hi ? 0x7f : 0x80;
            }
          }
          const dev = wasm.allocU8(bytes.length);
          dev.set(bytes);
          for (const T of [1, 5]) {
            const xHost = new Float32Array(T * I);
            for (let i = 0; i < T * I; i++) xHost[i] = pattern === "alternate" ? (i % 2 ? -3 : 3) : g.next() < 0.5 ? -3 : 3;
            const x = wasm.allocF32(T * I);
            x.set(xHost);
            const yWasm = wasm.allocF32(T * O),
              yTs = new Float32Array(T * O);
            wasm.matmul(yWasm, x, { dtype, shape: [O, I], data: dev }, T, I, O);
            ts.matmul(yTs, xHost, { dtype, shape: [O, I], data: bytes }, T, I, O);
            expect(firstBitDifference(yWasm, yTs), `${dtype} ${pattern} T=${T}`).toBeNull();
          }
        }
      }
    }));

  it("non-finite activations give NaN/Inf outputs, not finite garbage", () =>
    scoped(() => {
      const I = 64,
        O = 3,
        g = new Mulberry32(3);
      const w = quantWeight("q8_0", randomValues(g, O * I), O, I);
      for (const bad of [NaN, Infinity]) {
        const x = wasm.allocF32(I);
        x.set(randomValues(g, I));
        x[40] = bad;
        const y = wasm.allocF32(O),
          yTs = new Float32Array(O);
        wasm.matmul(y, x, w.dev, 1, I, O);
        ts.matmul(yTs, x.slice(), w.host, 1, I, O);
        for (let o = 0; o < O; o++) expect(Number.isFinite(y[o])).toBe(false);
        expect(firstBitDifference(y, yTs)).toBeNull();
      }
    }));
});

describe("quantized matmul vs plain dequantize-and-dot (float64)", () => {
  it("within the activation-quantization bound", () => {
    fc.assert(
      fc.property(shapes, ({ dtype, T, O, B, logScale, seed }) => {
        const I = B * 32,
          g = new Mulberry32(seed);
        const values = randomValues(g, O * I, logScale);
        const bytes = new Uint8Array(quantizedBytes(dtype, O * I));
        quantize(dtype, bytes, 0, values, 0, O * I);
        const deq = new Float32Array(O * I);
        dequantize(dtype, deq, bytes, 0, O * I);
        const x = randomValues(g, T * I);
        const y = new Float32Array(T * O);
        ts.matmul(y, x, { dtype, shape: [O, I], data: bytes }, T, I, O);
        for (let t = 0; t < T; t++) {
          for (let o = 0; o < O; o++) {
            let exact = 0,
              bound = 0,
              mag = 0;
            for (let b = 0; b < B; b++) {
              let amax = 0;
              for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[t * I + b * 32 + j]!));
              const dx = amax / 127;
              for (let j = 0; j < 32; j++) {
                const i = b * 32 + j,
                  wv = deq[o * I + i]!,
                  xv = x[t * I + i]!;
                exact += wv * xv;
                bound += ((Math.abs(wv) * dx) / 2) * 1.000001;
                mag += Math.abs(wv * xv);
              }
            }
            expect(Math.abs(y[t * O + o]! - exact)).toBeLessThanOrEqual(bound + 1e-5 * mag + 1e-30);
          }
        }
      }),
      { numRuns: 100 },
    );
  });
});

describe("quantized embedding rows", () => {
  it("wasm dequantizes rows exactly like the TS reference", () =>
    scoped(() => {
      for (const dtype of ["q8_0", "q4_0"] as const) {
        const V = 7,
          D = 96,
          g = new Mulberry32(4);
        const w = quantWeight(dtype, randomValues(g, V * D), V, D);
        const ids = [6, 0, 3, 3];
        const out = wasm.allocF32(ids.length * D),
          outTs = new Float32Array(ids.length * D);
        wasm.embedding(out, w.dev, ids, ids.length, D);
        ts.embedding(outTs, w.host, ids, ids.length, D);
        expect(firstBitDifference(out, outTs)).toBeNull();
        expect(Array.from(outTs.subarray(0, D))).toEqual(Array.from(w.deq.subarray(6 * D, 7 * D)));
      }
    }));

  it("block bytes: q8_0 34, q4_0 18", () => {
    expect(BLOCK_BYTES).toEqual({ q8_0: 34, q4_0: 18 });
  });
});
