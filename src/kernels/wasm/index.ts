// The WebAssembly SIMD backend: the Kernels interface implemented by build/kernels.wasm.
//
// Every Float32Array / Uint16Array passed in must be a view on the module's memory (made by
// allocF32/allocU16 of this backend); a kernel call passes `array.byteOffset` as the pointer, so
// nothing is copied. Views from elsewhere are rejected with an error naming the argument.
// Memory growth: see arena.ts (shared memory where available, so buffers may be allocated at any
// time; otherwise the buffers are planned with allocate(), which grows the memory once).

import type { DType, Kernels, Weight } from "../kernels.js";
import { groupedQ4Shape, isQuantDType, markGroupedQ4, Q4_0X4, QK, quantizedBytes, type QuantDType } from "../quant.js";
import { planBytes } from "../plan.js";
import { WasmArena } from "./arena.js";
import { instantiateKernels, type KernelExports, type LoadOptions } from "./load.js";
import { CONTROL_BLOCK_BYTES, KernelPool, type SpawnWorker, type Split } from "./pool.js";
import { defaultThreads, spawnWorker, threadsUnavailable, warnSingleThreadOnce } from "./threads.js";

/** dtype codes of assembly/half.ts and assembly/quant.ts. */
export const DTYPE_CODE: Record<DType, number> = { f32: 0, f16: 1, bf16: 2, q8_0: 5, q4_0: 6 };
const ELEMENT_BYTES: Record<DType, number> = { f32: 4, f16: 2, bf16: 2, q8_0: 1, q4_0: 1 };
/** Rows per threaded crossEntropy call (its targets and losses buffers hold this many). */
const CROSS_ENTROPY_ROWS = 8192;
/** Most query rows attentionBackward handles per pass over dk and dv (fewer when the scratch holds fewer). */
const ATTENTION_BACKWARD_ROWS = 16;
/**
 * From this many tokens on, matmul and matmulBackwardX are split by tokens instead of by outputs
 * (training's batches: B·T in the thousands). Then each thread reads only its rows of x and writes
 * only its rows of y; split by outputs, every thread reads all of x and writes a slice of every
 * row of y, sharing cache lines with the others at each slice's ends. A prefill (up to a few
 * hundred tokens) keeps the output split, which packs each weight panel once, not once per thread.
 */
const TOKEN_SPLIT_MIN_T = 512;
/** matmul's dtype code for f16 weights known to hold no Inf/NaN (assembly/matmul.ts DT_F16_FINITE). */
const F16_FINITE_CODE = 3;
/** matmulQuant's dtype code for q4_0 in the four-row layout (assembly/quant.ts DT_Q4_0X4). */
const Q4_0X4_CODE = 7;

/** The wasm Kernels, plus access to the arena and raw exports. */
export interface WasmKernels extends Kernels {
  readonly name: "wasm";
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
 * It is set where a thread's share of a call takes longer than a threaded call's dispatch and
 * barrier (BENCHMARKS.md, Threads: "empty kernel"; per-core decode rates: Kernels; the figures
 * behind this choice: "Figures cited in the source"), so a smaller share would save less than the
 * dispatch costs. The 125M decode's k/v projections (576×192) are just above it.
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
  // attention's scores and transposed keys (the calling thread's is `scratch`).
  const qScratchBytes = wasm.QMATMUL_SCRATCH_BYTES.value as number;
  const scratchBytes = Math.max(wasm.MATMUL_SCRATCH_BYTES.value as number, qScratchBytes, wasm.ATTENTION_SCRATCH_BYTES.value as number);
  const scratch = arena.alloc(scratchBytes);
  const pool =
    threads === 1
      ? null
      : await KernelPool.start({
          threads,
          module,
          memory,
          exports: instanceExports(wasm),
          ctrl: arena.alloc(CONTROL_BLOCK_BYTES),
          scratch: [scratch, ...Array.from({ length: threads - 1 }, () => arena.alloc(scratchBytes))],
          spawn: opts.spawnWorker ?? spawnWorker,
          minWork: opts.minThreadWork ?? MIN_THREAD_WORK,
          oversubscribed: threads > (await defaultThreads()),
        });
  // crossEntropy's targets (i32) and per-row losses (f64) for threaded calls, CROSS_ENTROPY_ROWS rows at a time
  const ceTargets = pool ? arena.alloc(CROSS_ENTROPY_ROWS * 4) : 0,
    ceLosses = pool ? arena.alloc(CROSS_ENTROPY_ROWS * 8) : 0;
  /** Row t0 + t's checked target into the targets buffer (t < CROSS_ENTROPY_ROWS), for each row of [t0, t1). */
  function stageTargets(targetsT: ArrayLike<number>, V: number, t0: number, t1: number): void {
    const view = new Int32Array(memory.buffer, ceTargets, t1 - t0);
    for (let t = t0; t < t1; t++) view[t - t0] = checkTarget(targetsT[t]!, V, t);
  }
  /** Attention's per-thread scores live in the thread's scratch: contexts up to this many positions. */
  const maxThreadedP = scratchBytes >> 2;

  function parallel(kernel: keyof KernelExports & string, args: readonly number[], split: Split): void {
    if (pool) {
      pool.run(kernel, args, split);
      return;
    }
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

  // q4_0 matrices are multiplied from groups of four rows interleaved (src/kernels/quant.ts Q4_0X4:
  // no horizontal sums, one weight stream per group; faster per weight: BENCHMARKS.md, Figures cited
  // in the source): each is rewritten in place at its first matmul, through this thread's scratch,
  // and the bytes are recorded as grouped (plainBlocks undoes it for anything reading them).
  function quantCode(w: Weight, wPtr: number, O: number, I: number): number {
    if (w.dtype !== "q4_0") return DTYPE_CODE[w.dtype];
    const grouped = groupedQ4Shape(w);
    if (grouped) {
      if (grouped[0] !== O || grouped[1] !== I) {
        throw new RangeError(
          `wasm kernels (src/kernels/wasm/index.ts): matmul: a q4_0 weight in the ${Q4_0X4} layout as [${grouped}], called as [${O}, ${I}]`,
        );
      }
      return Q4_0X4_CODE;
    }
    // only a whole matrix [O, I] is rewritten (a call on part of one takes the plain kernel)
    if (O < 4 || w.shape.length !== 2 || w.shape[0] !== O || w.shape[1] !== I) return DTYPE_CODE.q4_0;
    wasm.repackQ4x4(wPtr, O, I, scratch);
    markGroupedQ4(w, O, I);
    return Q4_0X4_CODE;
  }

  /** Byte address of `a` after checking it lives in our memory and holds `need` elements. */
  function ptr(a: Float32Array | Uint16Array | Uint8Array, need: number, what: string, op: string): number {
    if (!arena.owns(a.buffer)) {
      throw new Error(
        `wasm kernels (src/kernels/wasm/index.ts): ${op}: ${what} is not a view on this backend's wasm memory ` +
          "(allocate it with kernels.allocF32/allocU16; a view also detaches if the memory grew after it was made)",
      );
    }
    if (a.length < need) {
      throw new RangeError(`wasm kernels (src/kernels/wasm/index.ts): ${op}: ${what} has ${a.length} elements, needs ${need}`);
    }
    return a.byteOffset;
  }

  /** RoPE's rotation of every head of T rows by +θ (sign 1, the forward) or -θ (-1, its backward), by rows. */
  function rotate(
    xTHDh: Float32Array,
    T: number,
    H: number,
    Dh: number,
    pos0: number,
    cosPR: Float32Array,
    sinPR: Float32Array,
    sign: 1 | -1,
    op: string,
  ): void {
    const R = Dh >> 1;
    parallel(
      "rotateRows",
      [
        ptr(xTHDh, T * H * Dh, "xTHDh", op),
        T,
        H,
        Dh,
        pos0,
        ptr(cosPR, (pos0 + T) * R, "cosPR", op),
        ptr(sinPR, (pos0 + T) * R, "sinPR", op),
        sign,
      ],
      { units: T, align: 1, work: 2 * T * H * Dh },
    );
  }

  function weightPtr(w: Weight, need: number, what: string, op: string): number {
    if (DTYPE_CODE[w.dtype] === undefined || w.data.BYTES_PER_ELEMENT !== ELEMENT_BYTES[w.dtype]) {
      throw new TypeError(
        `wasm kernels (src/kernels/wasm/index.ts): ${op}: ${what} has dtype ${w.dtype} but a ` +
          `${w.data.constructor.name} (f32 -> Float32Array, f16/bf16 -> Uint16Array, q8_0/q4_0 -> Uint8Array)`,
      );
    }
    return ptr(w.data, isQuantDType(w.dtype) ? quantizedBytes(w.dtype, need) : need, what, op);
  }

  function checkTarget(target: number, V: number, t: number): number {
    if (!(Number.isInteger(target) && target < V)) {
      throw new RangeError(
        `wasm kernels (src/kernels/wasm/index.ts): crossEntropy: target ${target} of row ${t} is outside the vocabulary [0, ${V})`,
      );
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

    allocate(build) {
      const bytes = planBytes(build);
      arena.reserve(bytes); // the one growth: nothing below grows (the check after says so)
      const before = arena.used;
      const result = build(kernels);
      if (arena.used - before !== bytes) {
        throw new Error(
          `wasm kernels (src/kernels/wasm/index.ts): allocate(): the plan measured ${bytes} bytes but ` +
            `allocated ${arena.used - before}; a build function must declare the same buffers every time it runs`,
        );
      }
      return result;
    },
    reserve: (bytes) => arena.reserve(bytes),
    allocF32: (n) => arena.allocF32(n),
    allocU16: (n) => arena.allocU16(n),
    allocU8: (n) => arena.allocU8(n),

    // Threaded by output rows o (8 at a time: the prefill panel's width); never inside a dot product.
    matmul(yTO, xTI, wOI, T, I, O) {
      const w = weightPtr(wOI, O * I, "wOI", "matmul");
      if (isQuantDType(wOI.dtype)) {
        if (I % QK !== 0 || 2 * I + I / 4 > qScratchBytes) {
          throw new RangeError(
            `wasm kernels (src/kernels/wasm/index.ts): matmul: ${wOI.dtype} needs I a multiple of ${QK} and at most ${Math.floor(qScratchBytes / 2.25)}, got ${I}`,
          );
        }
        // Threaded by output rows o; every thread quantizes x into its own scratch (the same bytes).
        const code = quantCode(wOI, w, O, I);
        parallel("matmulQuant", [ptr(yTO, T * O, "yTO", "matmul"), ptr(xTI, T * I, "xTI", "matmul"), w, code, T, I, O], {
          units: O,
          align: 4,
          work: T * I * O,
          scratch: true,
        });
        return;
      }
      const args = [ptr(yTO, T * O, "yTO", "matmul"), ptr(xTI, T * I, "xTI", "matmul"), w, matmulDtypeCode(wOI, w, O * I), T, I, O];
      // training batches: by tokens, 4 at a time (the micro-kernel's rows)
      if (T >= TOKEN_SPLIT_MIN_T && I > 0) return parallel("matmulTokens", args, { units: T, align: 4, work: T * I * O, scratch: true });
      parallel("matmulRows", args, { units: O, align: 8, work: T * I * O, scratch: true });
    },

    // Threaded by input columns i (8 at a time, as the kernel blocks them), or for training
    // batches by tokens (4 at a time, as the kernel blocks them; see TOKEN_SPLIT_MIN_T).
    matmulBackwardX(dXTI, dYTO, wOI, T, I, O) {
      if (wOI.dtype !== "f32")
        throw new TypeError(`wasm kernels (src/kernels/wasm/index.ts): matmulBackwardX needs f32 weights, got ${wOI.dtype}`);
      const args = [
        ptr(dXTI, T * I, "dXTI", "matmulBackwardX"),
        ptr(dYTO, T * O, "dYTO", "matmulBackwardX"),
        weightPtr(wOI, O * I, "wOI", "matmulBackwardX"),
        T,
        I,
        O,
      ];
      if (T >= TOKEN_SPLIT_MIN_T) return parallel("matmulBackwardXTokens", args, { units: T, align: 4, work: T * I * O });
      parallel("matmulBackwardXCols", args, { units: I, align: 8, work: T * I * O });
    },

    // Threaded by weight rows o (4 at a time, as the kernel blocks them); the kernel works down T
    // in blocks of 64 rows, whose partial sums it adds into dW in order (see there).
    matmulBackwardW(dWOI, dYTO, xTI, T, I, O) {
      const dW = ptr(dWOI, O * I, "dWOI", "matmulBackwardW"),
        dY = ptr(dYTO, T * O, "dYTO", "matmulBackwardW");
      const x = ptr(xTI, T * I, "xTI", "matmulBackwardW");
      // every chunk reads all of x and dY's columns for its rows: 2 chunks per thread, not 4 (measured:
      // on the nano training shapes, 2 threads, 4–15% faster; 2 still lets a thread that starts late take less)
      parallel("matmulBackwardWRows", [dW, dY, x, T, I, O], { units: O, align: 4, work: T * I * O, scratch: true, chunksPerThread: 2 });
    },

    // The elementwise and row-wise ops of training are split by elements (4 at a time, so every
    // element takes the SIMD or scalar path it takes in one call) or rows; together they were
    // ~6% of a nano training step on one thread (BENCHMARKS.md, Training throughput). Work counts
    // multiply-adds per element roughly, so decode's small calls stay on the calling thread.
    // embedding and rmsnormBackward stay there (rmsnormBackward's dw is one sum over all rows).
    embedding(outTD, tableVD, ids, T, D) {
      const V = tableVD.shape[0]!;
      const out = ptr(outTD, T * D, "outTD", "embedding");
      const table = weightPtr(tableVD, V * D, "tableVD", "embedding");
      const quant = isQuantDType(tableVD.dtype);
      // a q4_0 table that is also the lm_head: rows [0, V&~3) in groups of four (src/kernels/quant.ts Q4_0X4)
      const grouped = groupedQ4Shape(tableVD);
      if (grouped && grouped[1] !== D) {
        throw new RangeError(
          `wasm kernels (src/kernels/wasm/index.ts): embedding: a q4_0 table grouped as [${grouped}] read with D = ${D}`,
        );
      }
      const groupedRows = grouped ? grouped[0] & ~3 : 0;
      const rowBytes = quant ? quantizedBytes(tableVD.dtype as QuantDType, D) : D * ELEMENT_BYTES[tableVD.dtype];
      for (let t = 0; t < T; t++) {
        const id = ids[t]!;
        if (!(Number.isInteger(id) && id >= 0 && id < V)) {
          throw new RangeError(`token id ${id} at position ${t} is outside the vocabulary [0, ${V})`);
        }
        if (id < groupedRows) wasm.dequantizeRowQ4x4(out + t * D * 4, table + (id >> 2) * 4 * rowBytes, id & 3, D);
        else if (quant) wasm.dequantizeRow(out + t * D * 4, table + id * rowBytes, DTYPE_CODE[tableVD.dtype], D);
        else wasm.widenRow(out + t * D * 4, table + id * rowBytes, DTYPE_CODE[tableVD.dtype], D);
      }
    },

    embeddingBackward(dTableVD, dOutTD, ids, T, D) {
      const V = dTableVD.length / D;
      const dTable = ptr(dTableVD, D, "dTableVD", "embeddingBackward"),
        dOut = ptr(dOutTD, T * D, "dOutTD", "embeddingBackward");
      for (let t = 0; t < T; t++) {
        const id = ids[t]!;
        if (!(Number.isInteger(id) && id >= 0 && id < V)) {
          throw new RangeError(`token id ${id} at position ${t} is outside the vocabulary [0, ${V})`);
        }
        wasm.add(dTable + id * D * 4, dOut + t * D * 4, D);
      }
    },

    rmsnorm(yTD, xTD, wD, T, D, eps) {
      parallel(
        "rmsnormRows",
        [ptr(yTD, T * D, "yTD", "rmsnorm"), ptr(xTD, T * D, "xTD", "rmsnorm"), ptr(wD, D, "wD", "rmsnorm"), T, D, eps],
        { units: T, align: 1, work: 3 * T * D },
      );
    },

    rmsnormBackward(dxTD, dwD, dyTD, xTD, wD, T, D, eps) {
      const op = "rmsnormBackward";
      wasm.rmsnormBackward(
        ptr(dxTD, T * D, "dxTD", op),
        ptr(dwD, D, "dwD", op),
        ptr(dyTD, T * D, "dyTD", op),
        ptr(xTD, T * D, "xTD", op),
        ptr(wD, D, "wD", op),
        T,
        D,
        eps,
      );
    },

    // RoPE's backward is the rotation by -θ: one kernel, the sign picks the direction.
    ropeBackward(dxTHDh, T, H, Dh, pos0, cosPR, sinPR) {
      rotate(dxTHDh, T, H, Dh, pos0, cosPR, sinPR, -1, "ropeBackward");
    },

    rope(xTHDh, T, H, Dh, pos0, cosPR, sinPR) {
      rotate(xTHDh, T, H, Dh, pos0, cosPR, sinPR, 1, "rope");
    },

    // Prefill (T >= 3): the blocked kernel, split into units of equal causal work (below). Decode
    // (and what the blocked kernel cannot take): threaded by query heads; with enough KV groups for
    // every thread, the heads of one group go together (they read the same keys and values). Each
    // thread keeps its scores in its scratch.
    attention(outTHDh, qTHDh, kPKVDh, vPKVDh, T, pos0, H, KV, Dh, scoresP) {
      if (H % KV !== 0) throw new RangeError(`wasm kernels (src/kernels/wasm/index.ts): attention: H=${H} is not a multiple of KV=${KV}`);
      const P = pos0 + T;
      const args = [
        ptr(outTHDh, T * H * Dh, "outTHDh", "attention"),
        ptr(qTHDh, T * H * Dh, "qTHDh", "attention"),
        ptr(kPKVDh, P * KV * Dh, "kPKVDh", "attention"),
        ptr(vPKVDh, P * KV * Dh, "vPKVDh", "attention"),
        T,
        pos0,
        H,
        KV,
        Dh,
      ];
      const scores = ptr(scoresP, P, "scoresP", "attention");
      // Prefill: blocks of 4 query rows (assembly/attention.ts), threaded by work units of equal
      // causal cost (a kv head's query head and a pair of row blocks, one early and one late). From
      // 3 queries on: 2 fill half a block, and measured slower than the one-row kernel (0.8x at
      // 1000 cached positions, 125M shape); 3 measured 1.3x faster.
      if (T >= 3 && Dh % 4 === 0 && wasm.attentionBlocksScratchFloats(P, Dh) * 4 <= scratchBytes) {
        const units = KV * Math.ceil(Math.ceil(T / 4) / 2) * (H / KV);
        return parallel("attentionBlocks", args, { units, align: 1, work: T * H * Dh * P, scratch: true });
      }
      if (pool === null || P > maxThreadedP) return wasm.attentionHeads(...(args as Tuple9), 0, H, scores);
      // work: q·k and p·v over the visible positions (about T·P/2 of them per head)
      pool.run("attentionHeads", args, { units: H, align: KV >= 2 * threads ? H / KV : 1, work: T * H * Dh * P, scratch: true });
    },

    attentionBackward(dqTHDh, dkTKVDh, dvTKVDh, doutTHDh, qTHDh, kTKVDh, vTKVDh, T, H, KV, Dh, scratch2T) {
      const op = "attentionBackward";
      if (H % KV !== 0) throw new RangeError(`wasm kernels (src/kernels/wasm/index.ts): ${op}: H=${H} is not a multiple of KV=${KV}`);
      const Q = T * H * Dh,
        K = T * KV * Dh;
      const args = [
        ptr(dqTHDh, Q, "dqTHDh", op),
        ptr(dkTKVDh, K, "dkTKVDh", op),
        ptr(dvTKVDh, K, "dvTKVDh", op),
        ptr(doutTHDh, Q, "doutTHDh", op),
        ptr(qTHDh, Q, "qTHDh", op),
        ptr(kTKVDh, K, "kTKVDh", op),
        ptr(vTKVDh, K, "vTKVDh", op),
        T,
        H,
        KV,
        Dh,
      ];
      // Blocks of 4 query rows (assembly/attention.ts), threaded by KV groups as below.
      if (Dh % 4 === 0 && wasm.attentionBackwardBlocksScratchFloats(T, Dh) * 4 <= scratchBytes)
        return parallel("attentionBackwardBlocks", args, { units: KV, align: 1, work: 2 * T * T * H * Dh, scratch: true });
      // Blocked over R query rows (the same bits as the one-row kernel, fewer passes over dk and dv):
      // the group's probabilities and dS for R rows live in the thread's scratch. Threaded by KV
      // groups (a group's query heads write only its own dk, dv). work: about T²/2 visible pairs per head, 4 dots each.
      const R = Math.min(ATTENTION_BACKWARD_ROWS, Math.floor(maxThreadedP / (2 * (H / KV) * T)));
      if (R >= 1)
        return parallel("attentionBackwardBlocked", [...args, R], { units: KV, align: 1, work: 2 * T * T * H * Dh, scratch: true });
      // contexts too long for the scratch: one row at a time, probabilities in the caller's scratch2T
      const scratch = ptr(scratch2T, 2 * T, "scratch2T", op);
      if (pool === null || 2 * T > maxThreadedP) return wasm.attentionBackwardGroups(...(args as Tuple11), 0, KV, scratch);
      pool.run("attentionBackwardGroups", args, { units: KV, align: 1, work: 2 * T * T * H * Dh, scratch: true });
    },

    siluMulBackward(dgateN, dupN, doutN, gateN, upN, n) {
      const op = "siluMulBackward";
      parallel(
        "siluMulBackwardRange",
        [
          ptr(dgateN, n, "dgateN", op),
          ptr(dupN, n, "dupN", op),
          ptr(doutN, n, "doutN", op),
          ptr(gateN, n, "gateN", op),
          ptr(upN, n, "upN", op),
          n,
        ],
        { units: n, align: 4, work: 24 * n },
      );
    },

    crossEntropy(logitsTV, targetsT, T, V) {
      const x = ptr(logitsTV, T * V, "logitsTV", "crossEntropy");
      let total = 0;
      if (pool === null) {
        for (let t = 0; t < T; t++) total += wasm.crossEntropyRow(x + t * V * 4, V, checkTarget(targetsT[t]!, V, t));
        return total;
      }
      // threaded by rows; the losses are summed here in row order, as above
      for (let t0 = 0; t0 < T; t0 += CROSS_ENTROPY_ROWS) {
        const n = Math.min(CROSS_ENTROPY_ROWS, T - t0);
        stageTargets(targetsT, V, t0, t0 + n);
        parallel("crossEntropyRows", [x + t0 * V * 4, V, ceTargets, ceLosses], { units: n, align: 1, work: 8 * n * V });
        const losses = new Float64Array(memory.buffer, ceLosses, n);
        for (let t = 0; t < n; t++) total += losses[t]!;
      }
      return total;
    },

    crossEntropyBackward(probsTV, targetsT, T, V, scale) {
      const x = ptr(probsTV, T * V, "probsTV", "crossEntropyBackward");
      if (pool === null) {
        for (let t = 0; t < T; t++) wasm.crossEntropyBackwardRow(x + t * V * 4, V, checkTarget(targetsT[t]!, V, t), scale);
        return;
      }
      for (let t0 = 0; t0 < T; t0 += CROSS_ENTROPY_ROWS) {
        const n = Math.min(CROSS_ENTROPY_ROWS, T - t0);
        stageTargets(targetsT, V, t0, t0 + n);
        parallel("crossEntropyBackwardRows", [x + t0 * V * 4, V, ceTargets, Math.fround(scale)], { units: n, align: 1, work: n * V });
      }
    },

    adamw(wN, gN, mN, vN, n, lr, beta1, beta2, eps, weightDecay, step) {
      const op = "adamw";
      parallel(
        "adamwRange",
        [
          ptr(wN, n, "wN", op),
          ptr(gN, n, "gN", op),
          ptr(mN, n, "mN", op),
          ptr(vN, n, "vN", op),
          n,
          lr,
          beta1,
          beta2,
          eps,
          weightDecay,
          1 - beta1 ** step,
          1 - beta2 ** step,
        ],
        { units: n, align: 1, work: 16 * n },
      );
    },

    // Threaded by elements (4 at a time): an exp per element makes it 1–3% of a 125M prefill on one
    // thread (BENCHMARKS.md, Threads), the largest of the elementwise ops. Work counts an element as
    // about 16 multiply-adds, so decode's 1536 elements stay on the calling thread.
    siluMul(outN, gateN, upN, n) {
      parallel("siluMulRange", [ptr(outN, n, "outN", "siluMul"), ptr(gateN, n, "gateN", "siluMul"), ptr(upN, n, "upN", "siluMul"), n], {
        units: n,
        align: 4,
        work: 16 * n,
      });
    },

    relu(outN, xN, n) {
      wasm.relu(ptr(outN, n, "outN", "relu"), ptr(xN, n, "xN", "relu"), n);
    },

    reluBackward(dxN, doutN, xN, n) {
      wasm.reluBackward(ptr(dxN, n, "dxN", "reluBackward"), ptr(doutN, n, "doutN", "reluBackward"), ptr(xN, n, "xN", "reluBackward"), n);
    },

    add(yN, xN, n) {
      parallel("addRange", [ptr(yN, n, "yN", "add"), ptr(xN, n, "xN", "add"), n], { units: n, align: 4, work: n });
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
