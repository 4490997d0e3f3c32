// Shared setup of the wasm kernel tests (tests/kernels/wasm-*.test.ts): every WebAssembly SIMD kernel is checked against the readable TypeScript reference (src/kernels/ts), on
// random shapes (including the awkward sizes 1, 3, 5, 7, 13, 63, 65 that exercise every SIMD tail)
// and random values spanning many orders of magnitude.
//
// Tolerances: the reference accumulates in float64 and rounds once; the wasm kernels accumulate
// in float32 in a different order. For a sum of products the error bound used is
//   |wasm − ref| <= 1e-5 · Σ|x_i·w_i| + 1e-35
// i.e. relative to the sum of magnitudes (not to the possibly-cancelling result). Elementwise
// kernels get a few-ulp relative bound, stated where used. f16/bf16 widening must be bit-exact.

import fc from "fast-check";
import { expect } from "vitest";
import { BF16_TABLE, F16_TABLE } from "../../src/kernels/half.js";
import type { DType, Kernels, Weight } from "../../src/kernels/kernels.js";
import { createTsKernels } from "../../src/kernels/ts/index.js";
import { wasmDebugHooks } from "../../src/kernels/wasm/debug.js";
import { createWasmKernels, type WasmKernels } from "../../src/kernels/wasm/index.js";
import { Mulberry32 } from "../../src/util/rng.js";

export const ts: Kernels = createTsKernels();
export const wasm: WasmKernels = await createWasmKernels();
export const debug = wasmDebugHooks(wasm); // test hooks (sumF32, widen, expInPlace) on the same module
wasm.reserve(256 << 20);

/** Run `fn` with arena scratch released afterwards, so property runs don't accumulate memory. */
export function scoped<R>(fn: () => R): R {
  const mark = wasm.arena.mark();
  try {
    return fn();
  } finally {
    wasm.arena.release(mark);
  }
}

// ---- random data ---------------------------------------------------------------------------------

export function mulberry32(seed: number): () => number {
  const g = new Mulberry32(seed);
  return () => g.next();
}

/** n float32 values: sign · U(0.5, 1) · 2^(logScale + U{-8..8}); about 5 decades around 2^logScale. */
export function values(rand: () => number, n: number, logScale: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const e = logScale + Math.floor(rand() * 17) - 8;
    out[i] = (rand() < 0.5 ? -1 : 1) * (0.5 + rand() / 2) * 2 ** e;
  }
  return out;
}

/** n random finite f16 bit patterns (all exponents 0..30, so zeros and subnormals occur). */
export function f16Bits(rand: () => number, n: number): Uint16Array {
  const out = new Uint16Array(n);
  for (let i = 0; i < n; i++) {
    let h: number;
    do h = Math.floor(rand() * 65536);
    while ((h & 0x7c00) === 0x7c00);
    out[i] = h;
  }
  return out;
}

export function bf16Bits(rand: () => number, n: number, logScale: number): Uint16Array {
  const f = values(rand, n, logScale);
  const u = new Uint32Array(f.buffer);
  const out = new Uint16Array(n);
  for (let i = 0; i < n; i++) out[i] = u[i]! >>> 16;
  return out;
}

export function widenedValue(w: Weight, e: number): number {
  if (w.dtype === "f32") return w.data[e]!;
  return (w.dtype === "f16" ? F16_TABLE : BF16_TABLE)[w.data[e]!]!;
}

/** A weight with host data and an identical copy in wasm memory. */
export function makeWeight(rand: () => number, dtype: DType, shape: number[], logScale: number): { host: Weight; dev: Weight } {
  const n = shape.reduce((a, b) => a * b, 1);
  const hostData = dtype === "f32" ? values(rand, n, logScale) : dtype === "f16" ? f16Bits(rand, n) : bf16Bits(rand, n, logScale);
  const devData = dtype === "f32" ? wasm.allocF32(n) : wasm.allocU16(n);
  devData.set(hostData);
  return { host: { dtype, shape, data: hostData }, dev: { dtype, shape, data: devData } };
}

export function toWasm(a: Float32Array): Float32Array {
  const v = wasm.allocF32(a.length);
  v.set(a);
  return v;
}

/** Assert |got − want| <= tol[i] elementwise, reporting the worst element. */
export function expectClose(got: Float32Array, want: Float32Array, tol: (i: number) => number, what: string): void {
  expect(got.length).toBe(want.length);
  let worst = -1,
    worstRatio = 0;
  for (let i = 0; i < want.length; i++) {
    const g = got[i]!,
      w = want[i]!;
    if (Number.isNaN(w) || Number.isNaN(g)) {
      if (Number.isNaN(w) !== Number.isNaN(g)) {
        worst = i;
        worstRatio = Infinity;
        break;
      }
      continue;
    }
    if (g === w) continue;
    const ratio = Math.abs(g - w) / tol(i);
    if (!(ratio <= 1) && ratio > worstRatio) {
      worst = i;
      worstRatio = ratio;
    }
  }
  if (worst >= 0) {
    expect.fail(
      `${what}: element ${worst} is ${got[worst]}, reference ${want[worst]}, |diff| = ${Math.abs(got[worst]! - want[worst]!)} > tolerance ${tol(worst)}`,
    );
  }
}

export const SIZES = [1, 3, 5, 7, 13, 63, 65];
export const size = fc.oneof(fc.constantFrom(...SIZES), fc.integer({ min: 1, max: 70 }));
export const seed = fc.integer({ min: 0, max: 2 ** 31 - 1 });
export const logScale = fc.integer({ min: -30, max: 30 });
