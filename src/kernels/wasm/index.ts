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
import { CONTROL_BLOCK_BYTES, KernelPool, type SpawnWorker, type Split } from "./pool.js";
import { defaultThreads, spawnWorker, threadsUnavailable, warnSingleThreadOnce } from "./threads.js";

/** dtype codes of assembly/half.ts and assembly/quant.ts. */
const DTYPE_CODE: Record<DType, number> = { f32: 0, f16: 1, bf16: 2, q8_0: 5, q4_0: 6 };
const ELEMENT_BYTES: Record<DType, number> = { f32: 4, f16: 2, bf16: 2, q8_0: 1, q4_0: 1 };
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
  /** Threads running kernels (1: no workers). */
  readonly threads: number;
  /**
   * Run a range entry point of the module, `kernel(...args, begin, end[, scratch])`, over
   * [0, split.units) on every thread (or on the calling thread alone when the call is small).
   * Threading a new kernel is one line: give it a range entry point and call this.
   */
  parallel(kernel: keyof KernelExports & string, args: readonly number[], split: Split): void;
  /** End the worker threads (idempotent; the kernels must not be used afterwards). */
  dispose(): Promise<void>;
  /** Whether the relaxed-SIMD build was loaded (load.ts). */
  readonly relaxedSimd: boolean;
  readonly arena: WasmArena;
  readonly memory: WebAssembly.Memory;
  readonly exports: KernelExports;
}

export interface WasmKernelOptions extends LoadOptions {
  /** Threads to run kernels on (default: the machine's available parallelism; 1: no workers). */
  threads?: number;
  /**
   * Least work (multiply-adds) per thread for a call to be split; smaller calls run on the
   * calling thread. Default MIN_THREAD_WORK (measured: BENCHMARKS.md, Threads); 0 splits every
   * call (the bit-identity tests use it so tiny models exercise every split).
   */
  minThreadWork?: number;
  /** How workers are started (default: the platform's, threads.ts). */
  spawnWorker?: SpawnWorker;
  /** Where to say that threads are unavailable here (default console.warn; said once per process). */
  log?: (message: string) => void;
}

/**
 * Default least work per thread, in multiply-adds: below it a call stays on the calling thread.
 * A threaded call costs about 1.3 µs of dispatch and barrier on an idle 2-core machine
 * (BENCHMARKS.md, Threads: "empty kernel"); 2^15 multiply-adds take 2–4 µs on one core (f32
 * decode streams ~14 G/s, f16 ~7.5 G/s: BENCHMARKS.md, Kernels), so a smaller share would save
 * less than the dispatch costs. The 125M decode's k/v projections (576×192) are just above it.
 */
export const MIN_THREAD_WORK = 1 << 15;

export async function createWasmKernels(opts: WasmKernelOptions = {}): Promise<WasmKernels> {
  let threads = opts.threads ?? (await defaultThreads());
  if (!(Number.isInteger(threads) && threads >= 1)) {
    throw new RangeError(`wasm kernels (src/kernels/wasm/index.ts): threads must be a positive integer, got ${opts.threads}`);
  }
  const why = threads > 1 ? (opts.shared === false ? "an unshared memory was asked for (shared: false)" : threadsUnavailable()) : null;
  if (why !== null) {
    warnSingleThreadOnce(why, opts.log);
    threads = 1;
  }
  const { exports: wasm, memory, shared, module, relaxedSimd } = await instantiateKernels(opts);
  const arena = new WasmArena(memory, wasm.heapBase(), shared);
  // Each thread's scratch: matmul's packed panel, matmulQuant's quantized activations, or
  // attention's scores (the calling thread's is `scratch`).
  const qScratchBytes = wasm.QMATMUL_SCRATCH_BYTES.value as number;
  const scratchBytes = Math.max(wasm.MATMUL_SCRATCH_BYTES.value as number, qScratchBytes);
  const scratch = arena.alloc(scratchBytes);
  const pool = threads === 1 ? null : await KernelPool.start({
    threads, module, memory, exports: instanceExports(wasm), ctrl: arena.alloc(CONTROL_BLOCK_BYTES),
    scratch: [scratch, ...Array.from({ length: threads - 1 }, () => arena.alloc(scratchBytes))],
    spawn: opts.spawnWorker ?? spawnWorker, minWork: opts.minThreadWork ?? MIN_THREAD_WORK,
    oversubscribed: threads > (await defaultThreads()),
  });
  /** Attention's per-thread scores live in the thread's scratch: contexts up to this many positions. */
  const maxThreadedP = scratchBytes >> 2;

  function parallel(kernel: keyof KernelExports & string, args: readonly number[], split: Split): void {
    if (pool) return pool.run(kernel, args, split);
    (wasm[kernel] as unknown as (...a: number[]) => void)(...args, 0, split.units, ...(split.scratch ? [scratch] : []));
  }

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

  function checkTarget(target: number, V: number, t: number): number {
    if (!(Number.isInteger(target) && target < V)) {
      throw new RangeError(`wasm kernels (src/kernels/wasm/index.ts): crossEntropy: target ${target} of row ${t} is outside the vocabulary [0, ${V})`);
    }
    return target < 0 ? -1 : target;
  }

  const kernels: WasmKernels = {
    name: "wasm",
    threads,
    parallel,
    dispose: async () => pool?.dispose(),
    relaxedSimd,
    arena,
    memory,
    exports: wasm,

    reserve: (bytes) => arena.reserve(bytes),
    allocF32: (n) => arena.allocF32(n),
    allocU16: (n) => arena.allocU16(n),
    allocU8: (n) => arena.allocU8(n),

    // Threaded by output rows o (8 at a time: the prefill panel's width); never inside a dot product.
    matmul(yTO, xTI, wOI, T, I, O) {
      const w = weightPtr(wOI, O * I, "wOI", "matmul");
      if (isQuantDType(wOI.dtype)) {
        if (I % QK !== 0 || (2 * I + I / 4) > qScratchBytes) {
          throw new RangeError(`wasm kernels (src/kernels/wasm/index.ts): matmul: ${wOI.dtype} needs I a multiple of ${QK} and at most ${Math.floor(qScratchBytes / 2.25)}, got ${I}`);
        }
        // Threaded by output rows o; every thread quantizes x into its own scratch (the same bytes).
        parallel("matmulQuant", [ptr(yTO, T * O, "yTO", "matmul"), ptr(xTI, T * I, "xTI", "matmul"), w,
          DTYPE_CODE[wOI.dtype], T, I, O], { units: O, align: 4, work: T * I * O, scratch: true });
        return;
      }
      parallel("matmulRows", [ptr(yTO, T * O, "yTO", "matmul"), ptr(xTI, T * I, "xTI", "matmul"), w,
        matmulDtypeCode(wOI, w, O * I), T, I, O], { units: O, align: 8, work: T * I * O, scratch: true });
    },

    // Threaded by input columns i (8 at a time, as the kernel blocks them).
    matmulBackwardX(dXTI, dYTO, wOI, T, I, O) {
      if (wOI.dtype !== "f32") throw new TypeError(`wasm kernels (src/kernels/wasm/index.ts): matmulBackwardX needs f32 weights, got ${wOI.dtype}`);
      parallel("matmulBackwardXCols", [ptr(dXTI, T * I, "dXTI", "matmulBackwardX"), ptr(dYTO, T * O, "dYTO", "matmulBackwardX"),
        weightPtr(wOI, O * I, "wOI", "matmulBackwardX"), T, I, O], { units: I, align: 8, work: T * I * O });
    },

    // Threaded by weight rows o (4 at a time, as the kernel blocks them).
    matmulBackwardW(dWOI, dYTO, xTI, T, I, O) {
      const dW = ptr(dWOI, O * I, "dWOI", "matmulBackwardW"), dY = ptr(dYTO, T * O, "dYTO", "matmulBackwardW");
      const x = ptr(xTI, T * I, "xTI", "matmulBackwardW");
      // The kernel's inner loop runs down T, a whole row of dY and of x per step; over a training
      // batch (T = B·seq, thousands) those rows fall out of cache before they are reused. Blocks of
      // 64 rows (the kernel accumulates, so blocks simply add up, in the same order on every thread
      // count) keep them cached: 3-9x faster on the bench's nano shapes.
      for (let t0 = 0; t0 < T; t0 += BACKWARD_W_ROWS) {
        parallel("matmulBackwardWRows", [dW, dY + t0 * O * 4, x + t0 * I * 4, Math.min(BACKWARD_W_ROWS, T - t0), I, O],
          { units: O, align: 4, work: Math.min(BACKWARD_W_ROWS, T - t0) * I * O });
      }
    },

    // The elementwise and row-wise ops stay on the calling thread, except siluMul: the others
    // together are well under 1% of a 125M prefill (BENCHMARKS.md, Threads: add, rmsnorm per
    // prefill), and on decode each call is smaller than a dispatch. Splitting them by rows would
    // keep the bits.
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
      if (isQuantDType(w.dtype)) {
        wasm.dequantizeRow(ptr(outN, n, "outN", "widen"), weightPtr(w, n, "w", "widen"), DTYPE_CODE[w.dtype], n);
        return;
      }
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

    // Threaded by query heads; with enough KV groups for every thread, the heads of one group go
    // together (they read the same keys and values). Each thread keeps its scores in its scratch.
    attention(outTHDh, qTHDh, kPKVDh, vPKVDh, T, pos0, H, KV, Dh, scoresP) {
      if (H % KV !== 0) throw new RangeError(`wasm kernels (src/kernels/wasm/index.ts): attention: H=${H} is not a multiple of KV=${KV}`);
      const P = pos0 + T;
      const args = [ptr(outTHDh, T * H * Dh, "outTHDh", "attention"), ptr(qTHDh, T * H * Dh, "qTHDh", "attention"),
        ptr(kPKVDh, P * KV * Dh, "kPKVDh", "attention"), ptr(vPKVDh, P * KV * Dh, "vPKVDh", "attention"), T, pos0, H, KV, Dh];
      const scores = ptr(scoresP, P, "scoresP", "attention");
      if (pool === null || P > maxThreadedP) return wasm.attentionHeads(...(args as Tuple9), 0, H, scores);
      // work: q·k and p·v over the visible positions (about T·P/2 of them per head)
      pool.run("attentionHeads", args, { units: H, align: KV >= 2 * threads ? H / KV : 1, work: T * H * Dh * P, scratch: true });
    },

    attentionBackward(dqTHDh, dkTKVDh, dvTKVDh, doutTHDh, qTHDh, kTKVDh, vTKVDh, T, H, KV, Dh, scratch2T) {
      const op = "attentionBackward";
      if (H % KV !== 0) throw new RangeError(`wasm kernels (src/kernels/wasm/index.ts): ${op}: H=${H} is not a multiple of KV=${KV}`);
      const Q = T * H * Dh, K = T * KV * Dh;
      const args = [ptr(dqTHDh, Q, "dqTHDh", op), ptr(dkTKVDh, K, "dkTKVDh", op), ptr(dvTKVDh, K, "dvTKVDh", op),
        ptr(doutTHDh, Q, "doutTHDh", op), ptr(qTHDh, Q, "qTHDh", op), ptr(kTKVDh, K, "kTKVDh", op), ptr(vTKVDh, K, "vTKVDh", op),
        T, H, KV, Dh];
      const scratch = ptr(scratch2T, 2 * T, "scratch2T", op);
      if (pool === null || 2 * T > maxThreadedP) return wasm.attentionBackwardGroups(...(args as Tuple11), 0, KV, scratch);
      // Threaded by KV groups (a group's query heads write only its own dk, dv); each thread keeps
      // its probabilities and their gradient in its scratch. work: about T²/2 visible pairs per head, 4 dots each.
      pool.run("attentionBackwardGroups", args, { units: KV, align: 1, work: 2 * T * T * H * Dh, scratch: true });
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

    // Threaded by elements (4 at a time): an exp per element makes it 1–3% of a 125M prefill on one
    // thread (BENCHMARKS.md, Threads), the largest of the elementwise ops. Work counts an element as
    // about 16 multiply-adds, so decode's 1536 elements stay on the calling thread.
    siluMul(outN, gateN, upN, n) {
      parallel("siluMulRange", [ptr(outN, n, "outN", "siluMul"), ptr(gateN, n, "gateN", "siluMul"), ptr(upN, n, "upN", "siluMul"), n],
        { units: n, align: 4, work: 16 * n });
    },

    relu(outN, xN, n) {
      wasm.relu(ptr(outN, n, "outN", "relu"), ptr(xN, n, "xN", "relu"), n);
    },

    reluBackward(dxN, doutN, xN, n) {
      wasm.reluBackward(ptr(dxN, n, "dxN", "reluBackward"), ptr(doutN, n, "doutN", "reluBackward"), ptr(xN, n, "xN", "reluBackward"), n);
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
  if (pool) unreachablePools.register(kernels, pool);
  return kernels;
}

/** Kernels that become garbage without dispose() still end their workers. */
const unreachablePools = new FinalizationRegistry<KernelPool>((pool) => void pool.dispose());

type Tuple9 = [number, number, number, number, number, number, number, number, number];
type Tuple11 = [number, number, number, number, number, number, number, number, number, number, number];

/** The module's exports as a plain record (for the pool's kernel lookup by name). */
function instanceExports(wasm: KernelExports): Record<string, unknown> {
  return wasm as unknown as Record<string, unknown>;
}
