// The WebAssembly SIMD backend: the Kernels interface implemented by build/kernels.wasm.
//
// Every Float32Array / Uint16Array passed in must be a view on the module's memory (made by
// allocF32/allocU16 of this backend); a kernel call passes `array.byteOffset` as the pointer, so
// nothing is copied. Views from elsewhere are rejected with an error naming the argument.
// Memory growth: see arena.ts (shared memory where available, so buffers may be allocated at any
// time; otherwise reserve() the total up front).

import type { DType, Kernels, Weight } from "../kernels.js";
import { isQuantDType, QK, quantizedBytes, type QuantDType } from "../quant.js";
import { WasmArena } from "./arena.js";
import { instantiateKernels, type KernelExports, type LoadOptions } from "./load.js";

/** dtype codes of assembly/half.ts and assembly/quant.ts. */
const DTYPE_CODE: Record<DType, number> = { f32: 0, f16: 1, bf16: 2, q8_0: 5, q4_0: 6 };
const ELEMENT_BYTES: Record<DType, number> = { f32: 4, f16: 2, bf16: 2, q8_0: 1, q4_0: 1 };
/** matmul's dtype code for f16 weights known to hold no Inf/NaN (assembly/matmul.ts DT_F16_FINITE). */
const F16_FINITE_CODE = 3;

/** The wasm Kernels, plus the training backward matmuls and access to the arena and raw exports. */
export interface WasmKernels extends Kernels {
  readonly name: "wasm";
  /** dX[T,I] = dY[T,O]·W[O,I]  (backward of y = x·Wᵀ for x; W must be f32). */
  matmulBackwardX(dXTI: Float32Array, dYTO: Float32Array, wOI: Weight, T: number, I: number, O: number): void;
  /** dW[O,I] += dY[T,O]ᵀ·X[T,I]  (backward of y = x·Wᵀ for W; accumulates). */
  matmulBackwardW(dWOI: Float32Array, dYTO: Float32Array, xTI: Float32Array, T: number, I: number, O: number): void;
  /** Σ x[0..n) read as one stream, or as four (one per quarter): bench/kernels.bench.ts's streaming baselines. */
  sumF32(x: Float32Array, n: number, streams?: 1 | 4): number;
  /** outN = weight elements [0, n) widened to f32 (exact; the f16/bf16 bit-exactness tests use it). */
  widen(outN: Float32Array, w: Weight, n: number): void;
  /** x = e^x in place with the kernels' f32 exp (for its accuracy test). */
  expInPlace(xN: Float32Array, n: number): void;
  /** Whether the relaxed-SIMD build was loaded (load.ts). */
  readonly relaxedSimd: boolean;
  readonly arena: WasmArena;
  readonly memory: WebAssembly.Memory;
  readonly exports: KernelExports;
}

export type WasmKernelOptions = LoadOptions;

export async function createWasmKernels(opts: WasmKernelOptions = {}): Promise<WasmKernels> {
  const { exports: wasm, memory, shared, relaxedSimd } = await instantiateKernels(opts);
  const arena = new WasmArena(memory, wasm.heapBase(), shared);
  const scratch = arena.alloc(wasm.MATMUL_SCRATCH_BYTES.value as number); // matmul's packed panel
  const qScratchBytes = wasm.QMATMUL_SCRATCH_BYTES.value as number;
  const qScratch = arena.alloc(qScratchBytes); // matmulQuant's quantized activations

  // The fast f16 decode widening is exact for finite values only, so each f16 matrix is scanned for
  // Inf/NaN once, on its first matmul, and the answer is remembered with its array: weights are
  // read-only once a model uses them (a matrix holding Inf/NaN takes the exact, slower widening).
  const f16Finite = new WeakMap<Uint16Array | Float32Array | Uint8Array, boolean>();
  function matmulDtypeCode(w: Weight, wPtr: number, n: number): number {
    if (w.dtype !== "f16") return DTYPE_CODE[w.dtype];
    let finite = f16Finite.get(w.data);
    if (finite === undefined) {
      finite = wasm.f16AllFinite(wPtr, n) === 1;
      f16Finite.set(w.data, finite);
    }
    return finite ? F16_FINITE_CODE : DTYPE_CODE.f16;
  }

  /** Byte address of `a` after checking it lives in our memory and holds `need` elements. */
  function ptr(a: Float32Array | Uint16Array | Uint8Array, need: number, what: string, op: string): number {
    if (!arena.owns(a.buffer)) {
      throw new Error(
        `wasm kernels (src/kernels/wasm/index.ts): ${op}: ${what} is not a view on this backend's wasm memory ` +
        "(allocate it with kernels.allocF32/allocU16; a view also detaches if the memory grew after it was made)");
    }
    if (a.length < need) {
      throw new RangeError(`wasm kernels (src/kernels/wasm/index.ts): ${op}: ${what} has ${a.length} elements, needs ${need}`);
    }
    return a.byteOffset;
  }

  function weightPtr(w: Weight, need: number, what: string, op: string): number {
    if (DTYPE_CODE[w.dtype] === undefined || w.data.BYTES_PER_ELEMENT !== ELEMENT_BYTES[w.dtype]) {
      throw new TypeError(`wasm kernels (src/kernels/wasm/index.ts): ${op}: ${what} has dtype ${w.dtype} but a ` +
        `${w.data.constructor.name} (f32 -> Float32Array, f16/bf16 -> Uint16Array, q8_0/q4_0 -> Uint8Array)`);
    }
    return ptr(w.data, isQuantDType(w.dtype) ? quantizedBytes(w.dtype, need) : need, what, op);
  }

  return {
    name: "wasm",
    relaxedSimd,
    arena,
    memory,
    exports: wasm,

    reserve: (bytes) => arena.reserve(bytes),
    allocF32: (n) => arena.allocF32(n),
    allocU16: (n) => arena.allocU16(n),
    allocU8: (n) => arena.allocU8(n),

    matmul(yTO, xTI, wOI, T, I, O) {
      const w = weightPtr(wOI, O * I, "wOI", "matmul");
      if (isQuantDType(wOI.dtype)) {
        if (I % QK !== 0 || (2 * I + I / 4) > qScratchBytes) {
          throw new RangeError(`wasm kernels (src/kernels/wasm/index.ts): matmul: ${wOI.dtype} needs I a multiple of ${QK} and at most ${Math.floor(qScratchBytes / 2.25)}, got ${I}`);
        }
        wasm.matmulQuant(ptr(yTO, T * O, "yTO", "matmul"), ptr(xTI, T * I, "xTI", "matmul"), w,
          DTYPE_CODE[wOI.dtype], T, I, O, 0, O, qScratch);
        return;
      }
      wasm.matmul(ptr(yTO, T * O, "yTO", "matmul"), ptr(xTI, T * I, "xTI", "matmul"), w,
        matmulDtypeCode(wOI, w, O * I), T, I, O, scratch);
    },

    matmulBackwardX(dXTI, dYTO, wOI, T, I, O) {
      if (wOI.dtype !== "f32") throw new TypeError(`wasm kernels (src/kernels/wasm/index.ts): matmulBackwardX needs f32 weights, got ${wOI.dtype}`);
      wasm.matmulBackwardX(ptr(dXTI, T * I, "dXTI", "matmulBackwardX"), ptr(dYTO, T * O, "dYTO", "matmulBackwardX"),
        weightPtr(wOI, O * I, "wOI", "matmulBackwardX"), T, I, O);
    },

    matmulBackwardW(dWOI, dYTO, xTI, T, I, O) {
      wasm.matmulBackwardW(ptr(dWOI, O * I, "dWOI", "matmulBackwardW"), ptr(dYTO, T * O, "dYTO", "matmulBackwardW"),
        ptr(xTI, T * I, "xTI", "matmulBackwardW"), T, I, O);
    },

    embedding(outTD, tableVD, ids, T, D) {
      const V = tableVD.shape[0]!;
      const out = ptr(outTD, T * D, "outTD", "embedding");
      const table = weightPtr(tableVD, V * D, "tableVD", "embedding");
      const quant = isQuantDType(tableVD.dtype);
      const rowBytes = quant ? quantizedBytes(tableVD.dtype as QuantDType, D) : D * ELEMENT_BYTES[tableVD.dtype];
      for (let t = 0; t < T; t++) {
        const id = ids[t]!;
        if (!(Number.isInteger(id) && id >= 0 && id < V)) {
          throw new RangeError(`token id ${id} at position ${t} is outside the vocabulary [0, ${V})`);
        }
        if (quant) wasm.dequantizeRow(out + t * D * 4, table + id * rowBytes, DTYPE_CODE[tableVD.dtype], D);
        else wasm.widenRow(out + t * D * 4, table + id * rowBytes, DTYPE_CODE[tableVD.dtype], D);
      }
    },

    widen(outN, w, n) {
      if (isQuantDType(w.dtype)) {
        wasm.dequantizeRow(ptr(outN, n, "outN", "widen"), weightPtr(w, n, "w", "widen"), DTYPE_CODE[w.dtype], n);
        return;
      }
      wasm.widenRow(ptr(outN, n, "outN", "widen"), weightPtr(w, n, "w", "widen"), DTYPE_CODE[w.dtype], n);
    },

    rmsnorm(yTD, xTD, wD, T, D, eps) {
      wasm.rmsnorm(ptr(yTD, T * D, "yTD", "rmsnorm"), ptr(xTD, T * D, "xTD", "rmsnorm"), ptr(wD, D, "wD", "rmsnorm"), T, D, eps);
    },

    rope(xTHDh, T, H, Dh, pos0, cosPR, sinPR) {
      const R = Dh >> 1;
      wasm.rope(ptr(xTHDh, T * H * Dh, "xTHDh", "rope"), T, H, Dh, pos0,
        ptr(cosPR, (pos0 + T) * R, "cosPR", "rope"), ptr(sinPR, (pos0 + T) * R, "sinPR", "rope"));
    },

    attention(outTHDh, qTHDh, kPKVDh, vPKVDh, T, pos0, H, KV, Dh, scoresP) {
      if (H % KV !== 0) throw new RangeError(`wasm kernels (src/kernels/wasm/index.ts): attention: H=${H} is not a multiple of KV=${KV}`);
      const P = pos0 + T;
      wasm.attention(ptr(outTHDh, T * H * Dh, "outTHDh", "attention"), ptr(qTHDh, T * H * Dh, "qTHDh", "attention"),
        ptr(kPKVDh, P * KV * Dh, "kPKVDh", "attention"), ptr(vPKVDh, P * KV * Dh, "vPKVDh", "attention"),
        T, pos0, H, KV, Dh, ptr(scoresP, P, "scoresP", "attention"));
    },

    siluMul(outN, gateN, upN, n) {
      wasm.siluMul(ptr(outN, n, "outN", "siluMul"), ptr(gateN, n, "gateN", "siluMul"), ptr(upN, n, "upN", "siluMul"), n);
    },

    add(yN, xN, n) {
      wasm.add(ptr(yN, n, "yN", "add"), ptr(xN, n, "xN", "add"), n);
    },

    softmax(xRC, R, C) {
      wasm.softmax(ptr(xRC, R * C, "xRC", "softmax"), R, C);
    },

    sumF32(x, n, streams = 1) {
      const p = ptr(x, n, "x", "sumF32");
      return streams === 4 ? wasm.sumF32Quarters(p, n) : wasm.sumF32(p, n);
    },

    expInPlace(xN, n) {
      wasm.expInPlace(ptr(xN, n, "xN", "expInPlace"), n);
    },
  };
}
