// Test and bench hooks on the wasm module: not part of the Kernels interface, and not used by
// src/. They call the module's debug exports (assembly/debug.ts) and its widening kernels directly.

import type { Weight } from "../kernels.js";
import { isQuantDType, plainBlocks, quantizedBytes } from "../quant.js";
import { DTYPE_CODE, type WasmKernels } from "./index.js";

export interface WasmDebugHooks {
  /** Σ x[0..n) read as one stream, or as four (one per quarter): bench:kernels' streaming baselines. */
  sumF32(x: Float32Array, n: number, streams?: 1 | 4): number;
  /** outN = weight elements [0, n) widened to f32 (exact; the f16/bf16 bit-exactness tests use it). */
  widen(outN: Float32Array, w: Weight, n: number): void;
  /** x = e^x in place with the kernels' f32 exp (for its accuracy test). */
  expInPlace(xN: Float32Array, n: number): void;
}

export function wasmDebugHooks(k: WasmKernels): WasmDebugHooks {
  const wasm = k.exports;
  /** Byte address of a view on k's memory holding at least `bytes` bytes. */
  const ptr = (a: ArrayBufferView, bytes: number, what: string): number => {
    if (!k.arena.owns(a.buffer) || a.byteLength < bytes)
      throw new RangeError(`wasm debug hook: ${what} is not a view of ${bytes} bytes on the kernels' memory`);
    return a.byteOffset;
  };
  return {
    sumF32(x, n, streams = 1) {
      const p = ptr(x, 4 * n, "x");
      return streams === 4 ? wasm.debugSumF32Quarters(p, n) : wasm.debugSumF32(p, n);
    },
    widen(outN, w, n) {
      const out = ptr(outN, 4 * n, "outN");
      if (isQuantDType(w.dtype)) wasm.dequantizeRow(out, ptr(plainBlocks(w), quantizedBytes(w.dtype, n), "w"), DTYPE_CODE[w.dtype], n);
      else wasm.widenRow(out, ptr(w.data, n * w.data.BYTES_PER_ELEMENT, "w"), DTYPE_CODE[w.dtype], n);
    },
    expInPlace(xN, n) {
      wasm.debugExpInPlace(ptr(xN, 4 * n, "xN"), n);
    },
  };
}
