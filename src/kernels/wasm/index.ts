// The WebAssembly SIMD backend: the Kernels interface implemented by build/kernels.wasm.
//
// Every Float32Array / Uint16Array passed in must be a view on the module's memory (made by
// allocF32/allocU16 of this backend); a kernel call passes `array.byteOffset` as the pointer, so
// nothing is copied. Views from elsewhere are rejected with an error naming the argument.
// Memory growth: see arena.ts (shared memory where available, so buffers may be allocated at any
// time; otherwise reserve() the total up front).

import type { DType, Kernels, Weight } from "../kernels.js";
import { WasmArena } from "./arena.js";
import { instantiateKernels, type KernelExports, type LoadOptions } from "./load.js";

const DTYPE_CODE: Record<DType, number> = { f32: 0, f16: 1, bf16: 2 };
/** Rows of dY/x per matmulBackwardW call (cache blocking over T, see there). */
const BACKWARD_W_ROWS = 64;
/** matmul's dtype code for f16 weights known to hold no Inf/NaN (assembly/matmul.ts DT_F16_FINITE). */
const F16_FINITE_CODE = 3;

/** The wasm Kernels, plus access to the arena and raw exports. */
export interface WasmKernels extends Kernels {
  readonly name: "wasm";
  /** Σ x[0..n) read as one stream, or as four (one per quarter): bench/kernels.bench.ts's streaming baselines. */
  sumF32(x: Float32Array, n: number, streams?: 1 | 4): number;
  /** outN = weight elements [0, n) widened to f32 (exact; the f16/bf16 bit-exactness tests use it). */
  widen(outN: Float32Array, w: Weight, n: number): void;
  /** x = e^x in place with the kernels' f32 exp (for its accuracy test). */
  expInPlace(xN: Float32Array, n: number): void;
  readonly arena: WasmArena;
  readonly memory: WebAssembly.Memory;
  readonly exports: KernelExports;
}

export type WasmKernelOptions = LoadOptions;

export async function createWasmKernels(opts: WasmKernelOptions = {}): Promise<WasmKernels> {
  const { exports: wasm, memory, shared } = await instantiateKernels(opts);
  const arena = new WasmArena(memory, wasm.heapBase(), shared);
  const scratch = arena.alloc(wasm.MATMUL_SCRATCH_BYTES.value as number); // matmul's packed panel

  // The fast f16 decode widening is exact for finite values only, so each f16 matrix is scanned for
  // Inf/NaN once, on its first matmul, and the answer is remembered with its array: weights are
  // read-only once a model uses them (a matrix holding Inf/NaN takes the exact, slower widening).
  const f16Finite = new WeakMap<Uint16Array | Float32Array, boolean>();
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
  function ptr(a: Float32Array | Uint16Array, need: number, what: string, op: string): number {
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
    const expectBytes = w.dtype === "f32" ? 4 : 2;
    if (DTYPE_CODE[w.dtype] === undefined || w.data.BYTES_PER_ELEMENT !== expectBytes) {
      throw new TypeError(`wasm kernels (src/kernels/wasm/index.ts): ${op}: ${what} has dtype ${w.dtype} but a ` +
        `${w.data.constructor.name} (f32 -> Float32Array, f16/bf16 -> Uint16Array)`);
    }
    return ptr(w.data, need, what, op);
  }

  function checkTarget(target: number, V: number, t: number): number {
    if (!(Number.isInteger(target) && target < V)) {
      throw new RangeError(`wasm kernels (src/kernels/wasm/index.ts): crossEntropy: target ${target} of row ${t} is outside the vocabulary [0, ${V})`);
    }
    return target < 0 ? -1 : target;
  }

  return {
    name: "wasm",
    arena,
    memory,
    exports: wasm,

    reserve: (bytes) => arena.reserve(bytes),
    allocF32: (n) => arena.allocF32(n),
    allocU16: (n) => arena.allocU16(n),

    matmul(yTO, xTI, wOI, T, I, O) {
      const w = weightPtr(wOI, O * I, "wOI", "matmul");
      wasm.matmul(ptr(yTO, T * O, "yTO", "matmul"), ptr(xTI, T * I, "xTI", "matmul"), w,
        matmulDtypeCode(wOI, w, O * I), T, I, O, scratch);
    },

    matmulBackwardX(dXTI, dYTO, wOI, T, I, O) {
      if (wOI.dtype !== "f32") throw new TypeError(`wasm kernels (src/kernels/wasm/index.ts): matmulBackwardX needs f32 weights, got ${wOI.dtype}`);
      wasm.matmulBackwardX(ptr(dXTI, T * I, "dXTI", "matmulBackwardX"), ptr(dYTO, T * O, "dYTO", "matmulBackwardX"),
        weightPtr(wOI, O * I, "wOI", "matmulBackwardX"), T, I, O);
    },

    matmulBackwardW(dWOI, dYTO, xTI, T, I, O) {
      const dW = ptr(dWOI, O * I, "dWOI", "matmulBackwardW"), dY = ptr(dYTO, T * O, "dYTO", "matmulBackwardW");
      const x = ptr(xTI, T * I, "xTI", "matmulBackwardW");
      // The kernel's inner loop runs down T, a whole row of dY and of x per step; over a training
      // batch (T = B·seq, thousands) those rows fall out of cache before they are reused. Blocks of
      // 64 rows (the kernel accumulates, so blocks simply add up) keep them cached: 3-9x faster on
      // the bench's nano shapes.
      for (let t0 = 0; t0 < T; t0 += BACKWARD_W_ROWS) {
        wasm.matmulBackwardW(dW, dY + t0 * O * 4, x + t0 * I * 4, Math.min(BACKWARD_W_ROWS, T - t0), I, O);
      }
    },

    embedding(outTD, tableVD, ids, T, D) {
      const V = tableVD.shape[0]!;
      const out = ptr(outTD, T * D, "outTD", "embedding");
      const table = weightPtr(tableVD, V * D, "tableVD", "embedding");
      const bytes = tableVD.dtype === "f32" ? 4 : 2;
      for (let t = 0; t < T; t++) {
        const id = ids[t]!;
        if (!(Number.isInteger(id) && id >= 0 && id < V)) {
          throw new RangeError(`token id ${id} at position ${t} is outside the vocabulary [0, ${V})`);
        }
        wasm.widenRow(out + t * D * 4, table + id * D * bytes, DTYPE_CODE[tableVD.dtype], D);
      }
    },

    embeddingBackward(dTableVD, dOutTD, ids, T, D) {
      const V = dTableVD.length / D;
      const dTable = ptr(dTableVD, D, "dTableVD", "embeddingBackward"), dOut = ptr(dOutTD, T * D, "dOutTD", "embeddingBackward");
      for (let t = 0; t < T; t++) {
        const id = ids[t]!;
        if (!(Number.isInteger(id) && id >= 0 && id < V)) {
          throw new RangeError(`token id ${id} at position ${t} is outside the vocabulary [0, ${V})`);
        }
        wasm.add(dTable + id * D * 4, dOut + t * D * 4, D);
      }
    },

    widen(outN, w, n) {
      wasm.widenRow(ptr(outN, n, "outN", "widen"), weightPtr(w, n, "w", "widen"), DTYPE_CODE[w.dtype], n);
    },

    rmsnorm(yTD, xTD, wD, T, D, eps) {
      wasm.rmsnorm(ptr(yTD, T * D, "yTD", "rmsnorm"), ptr(xTD, T * D, "xTD", "rmsnorm"), ptr(wD, D, "wD", "rmsnorm"), T, D, eps);
    },

    rmsnormBackward(dxTD, dwD, dyTD, xTD, wD, T, D, eps) {
      const op = "rmsnormBackward";
      wasm.rmsnormBackward(ptr(dxTD, T * D, "dxTD", op), ptr(dwD, D, "dwD", op), ptr(dyTD, T * D, "dyTD", op),
        ptr(xTD, T * D, "xTD", op), ptr(wD, D, "wD", op), T, D, eps);
    },

    ropeBackward(dxTHDh, T, H, Dh, pos0, cosPR, sinPR) {
      const R = Dh >> 1;
      wasm.ropeBackward(ptr(dxTHDh, T * H * Dh, "dxTHDh", "ropeBackward"), T, H, Dh, pos0,
        ptr(cosPR, (pos0 + T) * R, "cosPR", "ropeBackward"), ptr(sinPR, (pos0 + T) * R, "sinPR", "ropeBackward"));
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

    attentionBackward(dqTHDh, dkTKVDh, dvTKVDh, doutTHDh, qTHDh, kTKVDh, vTKVDh, T, H, KV, Dh, scratch2T) {
      const op = "attentionBackward";
      if (H % KV !== 0) throw new RangeError(`wasm kernels (src/kernels/wasm/index.ts): ${op}: H=${H} is not a multiple of KV=${KV}`);
      const Q = T * H * Dh, K = T * KV * Dh;
      wasm.attentionBackward(ptr(dqTHDh, Q, "dqTHDh", op), ptr(dkTKVDh, K, "dkTKVDh", op), ptr(dvTKVDh, K, "dvTKVDh", op),
        ptr(doutTHDh, Q, "doutTHDh", op), ptr(qTHDh, Q, "qTHDh", op), ptr(kTKVDh, K, "kTKVDh", op), ptr(vTKVDh, K, "vTKVDh", op),
        T, H, KV, Dh, ptr(scratch2T, 2 * T, "scratch2T", op), 0, KV);
    },

    siluMulBackward(dgateN, dupN, doutN, gateN, upN, n) {
      const op = "siluMulBackward";
      wasm.siluMulBackward(ptr(dgateN, n, "dgateN", op), ptr(dupN, n, "dupN", op), ptr(doutN, n, "doutN", op),
        ptr(gateN, n, "gateN", op), ptr(upN, n, "upN", op), n);
    },

    crossEntropy(logitsTV, targetsT, T, V) {
      const x = ptr(logitsTV, T * V, "logitsTV", "crossEntropy");
      let total = 0;
      for (let t = 0; t < T; t++) total += wasm.crossEntropyRow(x + t * V * 4, V, checkTarget(targetsT[t]!, V, t));
      return total;
    },

    crossEntropyBackward(probsTV, targetsT, T, V, scale) {
      const x = ptr(probsTV, T * V, "probsTV", "crossEntropyBackward");
      for (let t = 0; t < T; t++) wasm.crossEntropyBackwardRow(x + t * V * 4, V, checkTarget(targetsT[t]!, V, t), scale);
    },

    adamw(wN, gN, mN, vN, n, lr, beta1, beta2, eps, weightDecay, step) {
      const op = "adamw";
      wasm.adamw(ptr(wN, n, "wN", op), ptr(gN, n, "gN", op), ptr(mN, n, "mN", op), ptr(vN, n, "vN", op), n,
        lr, beta1, beta2, eps, weightDecay, 1 - beta1 ** step, 1 - beta2 ** step);
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
