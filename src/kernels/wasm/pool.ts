// The thread pool: N−1 workers plus the calling thread, each with its own instance of the same
// compiled kernels module on the one shared WebAssembly.Memory (weights, KV cache and activations
// are never copied). A threaded kernel call cuts its output into a few chunks per thread (fixed
// boundaries, from the call's size alone); every thread claims chunks one at a time and runs the
// module's range entry point on them (e.g. `matmulRows(..., oBegin, oEnd, scratch)`), and the call
// returns when every chunk is done.
//
// Dispatch and the barrier go through a small control block in the shared memory, never through
// postMessage (a 125M decode step makes ~250 kernel calls):
//
//   caller                                          worker i (1 .. N−1)
//   write kernel id, args, units, chunks            spin on SEQ a while, then Atomics.wait(SEQ)
//   DONE = 0; CLAIM = (chunks, next 0)
//   SEQ += 1; notify(SEQ)                   ──►     claim chunks: next = CLAIM++ (fetch-add)
//   claim and run chunks too                        run each; DONE += 1 (the last one notifies)
//   spin on DONE, then Atomics.wait         ◄──     (a throw: ERROR = 1 + i, message into the block)
//
// Claiming instead of one fixed range per thread keeps a loaded machine from stalling the call:
// a worker that is not running when the call starts simply finds no chunk left, and the caller
// never waits for work nobody has started. Results are bit-identical for every thread count, and
// whoever runs a chunk: work is only split by output rows, columns or heads, so each output value
// is the same sum in the same order. `workerLoop` below is the worker's whole program; it is sent
// to the worker as source text, so it must not refer to anything outside itself.

/** Int32 slots of the control block (byte offset `ctrl` in the shared memory). */
const LAYOUT = {
  SEQ: 0, // dispatch sequence number: bumped once per threaded call (wakes the workers)
  CLAIM: 1, // chunks << 16 | next unclaimed chunk, of the current call
  DONE: 2, // chunks finished in the current call
  KERNEL: 3, // index of the kernel among the module's exports
  NARGS: 4, // number of leading arguments (before the range)
  SCRATCH: 5, // 1: append the thread's scratch address after the range
  UNITS: 6, // the call's output units (rows, columns, heads) ...
  ALIGN: 7, // ... cut at multiples of this
  ERROR: 8, // 0, or 1 + the index of the first thread that threw
  STOP: 9, // 1: workers exit their loop
  ERROR_LEN: 10, // bytes of the UTF-8 error message at ERROR_TEXT_BYTE
  ARGS_BYTE: 1024, // Float64 arguments (exact for every i32, u32 and f32 value)
  ERROR_TEXT_BYTE: 2048,
  BYTES: 4096,
} as const;
const MAX_THREADS = 64;
const MAX_ARGS = 96;
/** Chunks per participating thread: enough to balance uneven progress, few enough to cost nothing. */
const CHUNKS_PER_THREAD = 4;
/**
 * Most spin iterations before sleeping in Atomics.wait (about 50–200 µs): decode's kernel calls
 * come a few µs apart, so a spinning worker is already awake for the next one. Each thread adapts
 * its budget: halved after a wait that had to sleep, doubled after one that did not. On an idle
 * machine the waits are short and the budget stays high; on an overloaded one (two of our threads
 * sharing a core) spinning would only burn the time slice the other thread needs, and the budget
 * drops to MIN_SPIN.
 */
const SPIN = 1 << 15;
const MIN_SPIN = 1 << 6;

/** What a worker needs; structured-cloned to it (the Module and the shared Memory are shared, not copied). */
export interface WorkerData {
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  ctrl: number;
  index: number;
  scratch: number;
  spin: number;
  minSpin: number;
  layout: typeof LAYOUT;
}

/** A started worker, as the platform adapter (threads.ts) gives it. */
export interface PoolWorker {
  terminate(): Promise<unknown>;
}

/**
 * Starts one worker that calls the function whose source text is `loopSource` (workerLoop) with
 * `data` and a function posting a message to the parent; resolves once the worker posted "ready".
 */
export type SpawnWorker = (loopSource: string, data: WorkerData) => Promise<PoolWorker>;

/** The worker's program. Self-contained: it is turned into source text with toString(). */
export function workerLoop(d: WorkerData, post: (message: unknown) => void): void {
  const L = d.layout;
  const instance = new WebAssembly.Instance(d.module, { env: { memory: d.memory } });
  // kernel ids index the module's exports in their declared order, as on the calling thread
  const fns = WebAssembly.Module.exports(d.module).map((e) => (instance.exports as Record<string, unknown>)[e.name]);
  const i32 = new Int32Array(d.memory.buffer, d.ctrl, L.BYTES >> 2);
  const f64 = new Float64Array(d.memory.buffer, d.ctrl + L.ARGS_BYTE, (L.ERROR_TEXT_BYTE - L.ARGS_BYTE) >> 3);
  const u8 = new Uint8Array(d.memory.buffer, d.ctrl + L.ERROR_TEXT_BYTE, L.BYTES - L.ERROR_TEXT_BYTE);
  let seq = Atomics.load(i32, L.SEQ);
  let budget = d.spin; // adaptive spin, see SPIN
  post("ready");
  for (;;) {
    let slept = false;
    for (let spins = 0; Atomics.load(i32, L.SEQ) === seq; ) {
      if (++spins > budget) {
        slept = true;
        Atomics.wait(i32, L.SEQ, seq);
      }
    }
    budget = slept ? Math.max(d.minSpin, budget >> 1) : Math.min(d.spin, budget * 2);
    seq = Atomics.load(i32, L.SEQ);
    if (Atomics.load(i32, L.STOP) === 1) return;
    for (;;) {
      // Claim the next chunk. A claim below `chunks` is a chunk of the call in progress, whichever
      // call that is by now, and pins its arguments until DONE counts it; anything else: no work.
      const claim = Atomics.add(i32, L.CLAIM, 1),
        chunks = claim >>> 16,
        c = claim & 0xffff;
      if (c >= chunks) break;
      const units = i32[L.UNITS]!,
        align = i32[L.ALIGN]!,
        blocks = Math.ceil(units / align);
      const begin = Math.min(Math.floor((c * blocks) / chunks) * align, units);
      const end = Math.min(Math.floor(((c + 1) * blocks) / chunks) * align, units);
      try {
        const n = i32[L.NARGS]!,
          args: number[] = [];
        for (let a = 0; a < n; a++) args.push(f64[a]!);
        args.push(begin, end);
        if (i32[L.SCRATCH] === 1) args.push(d.scratch);
        (fns[i32[L.KERNEL]!] as (...a: number[]) => void)(...args);
      } catch (e) {
        if (Atomics.compareExchange(i32, L.ERROR, 0, 1 + d.index) === 0) {
          const bytes = new TextEncoder().encode(String((e as Error)?.message ?? e)).subarray(0, u8.length);
          u8.set(bytes);
          i32[L.ERROR_LEN] = bytes.length;
        }
      }
      if (Atomics.add(i32, L.DONE, 1) + 1 === chunks) Atomics.notify(i32, L.DONE);
    }
  }
}

/** How one threaded call splits its work. */
export interface Split {
  /** Output units to divide: rows, columns or heads. */
  units: number;
  /** Ranges start at multiples of this (and end at one, or at `units`). */
  align: number;
  /** Work of the whole call (e.g. multiply-adds); below `minWork` per thread the call is not split. */
  work: number;
  /** Append each thread's scratch address (MATMUL_SCRATCH_BYTES) after the range. */
  scratch?: boolean;
  /**
   * Chunks per participating thread (default CHUNKS_PER_THREAD). Fewer for a kernel whose every
   * chunk reads all of a large operand (matmulBackwardW reads all of x for any rows of dW).
   */
  chunksPerThread?: number;
}

export class KernelPool {
  /** Threads running kernels: the caller plus the workers. */
  readonly threads: number;
  private readonly i32: Int32Array;
  private readonly f64: Float64Array;
  private readonly u8: Uint8Array;
  private readonly kernelIds = new Map<string, number>();
  private readonly fns: Record<string, unknown>;
  private disposed = false;
  private budget: number; // the calling thread's adaptive spin, see SPIN

  private constructor(
    memory: WebAssembly.Memory,
    readonly ctrl: number,
    private readonly scratch0: number,
    private readonly workers: PoolWorker[],
    module: WebAssembly.Module,
    exports: Record<string, unknown>,
    readonly minWork: number,
    private readonly spin: number,
  ) {
    this.threads = workers.length + 1;
    this.budget = spin;
    this.i32 = new Int32Array(memory.buffer, ctrl, LAYOUT.BYTES >> 2);
    this.f64 = new Float64Array(memory.buffer, ctrl + LAYOUT.ARGS_BYTE, MAX_ARGS);
    this.u8 = new Uint8Array(memory.buffer, ctrl + LAYOUT.ERROR_TEXT_BYTE, LAYOUT.BYTES - LAYOUT.ERROR_TEXT_BYTE);
    WebAssembly.Module.exports(module).forEach((e, i) => this.kernelIds.set(e.name, i));
    this.fns = exports;
  }

  /**
   * Start `threads − 1` workers. `ctrl` is LAYOUT.BYTES of zeroed shared memory for the control
   * block; scratch[i] is thread i's scratch (scratch[0] the caller's). If any worker fails to
   * start, the others are ended and the error says which one and why.
   */
  static async start(o: {
    threads: number;
    module: WebAssembly.Module;
    memory: WebAssembly.Memory;
    exports: Record<string, unknown>;
    ctrl: number;
    scratch: number[];
    spawn: SpawnWorker;
    minWork: number;
    oversubscribed: boolean;
  }): Promise<KernelPool> {
    if (!(Number.isInteger(o.threads) && o.threads >= 1 && o.threads <= MAX_THREADS)) {
      throw new RangeError(`wasm kernels (src/kernels/wasm/pool.ts): threads must be an integer in 1..${MAX_THREADS}, got ${o.threads}`);
    }
    // more threads than cores: spinning would only take the core a sleeping thread needs
    const spin = o.oversubscribed ? 0 : SPIN;
    const source = workerLoop.toString();
    const started = await Promise.allSettled(
      Array.from({ length: o.threads - 1 }, (_, w) =>
        o.spawn(source, {
          module: o.module,
          memory: o.memory,
          ctrl: o.ctrl,
          index: w + 1,
          scratch: o.scratch[w + 1]!,
          spin,
          minSpin: Math.min(spin, MIN_SPIN),
          layout: LAYOUT,
        }),
      ),
    );
    const workers = started.flatMap((s) => (s.status === "fulfilled" ? [s.value] : []));
    const failed = started.findIndex((s) => s.status === "rejected");
    if (failed >= 0) {
      const reason = (started[failed] as PromiseRejectedResult).reason as Error;
      await stopWorkers(new Int32Array(o.memory.buffer, o.ctrl, LAYOUT.BYTES >> 2), workers);
      throw new Error(
        `wasm kernels (src/kernels/wasm/pool.ts): kernel worker ${failed + 1} of ${o.threads - 1} failed to start: ` +
          `${reason?.message ?? reason}; pass threads: 1 to run without workers`,
      );
    }
    return new KernelPool(o.memory, o.ctrl, o.scratch[0]!, workers, o.module, o.exports, o.minWork, spin);
  }

  /** Into how many parts a call of this size is split (1: it runs on the calling thread alone). */
  parts(s: Split): number {
    const blocks = Math.ceil(s.units / s.align);
    return Math.max(1, Math.min(this.threads, blocks, Math.floor(s.work / this.minWork)));
  }

  /**
   * Run the range entry point `kernel(...args, begin, end[, scratch])` over [0, s.units) on all
   * threads and return when every part is done. A throw on any thread is rethrown here, naming
   * the kernel.
   */
  run(kernel: string, args: readonly number[], s: Split): void {
    if (this.disposed) throw new Error(`wasm kernels (src/kernels/wasm/pool.ts): ${kernel} called after dispose(); load the model again`);
    const parts = this.parts(s);
    const fn = this.fns[kernel] as ((...a: number[]) => void) | undefined;
    const id = this.kernelIds.get(kernel);
    if (fn === undefined || id === undefined)
      throw new Error(`wasm kernels (src/kernels/wasm/pool.ts): the module has no kernel ${kernel}`);
    const tail = s.scratch ? [this.scratch0] : [];
    if (parts === 1) {
      fn(...args, 0, s.units, ...tail);
      return;
    }
    if (args.length > MAX_ARGS) throw new RangeError(`wasm kernels (src/kernels/wasm/pool.ts): ${kernel}: more than ${MAX_ARGS} arguments`);
    const i32 = this.i32,
      L = LAYOUT;
    const blocks = Math.ceil(s.units / s.align);
    const chunks = Math.min(blocks, parts * (s.chunksPerThread ?? CHUNKS_PER_THREAD));
    for (let a = 0; a < args.length; a++) this.f64[a] = args[a]!;
    i32[L.KERNEL] = id;
    i32[L.NARGS] = args.length;
    i32[L.SCRATCH] = s.scratch ? 1 : 0;
    i32[L.UNITS] = s.units;
    i32[L.ALIGN] = s.align;
    Atomics.store(i32, L.DONE, 0);
    Atomics.store(i32, L.CLAIM, chunks << 16); // publishes the call: chunks may be claimed from here on
    Atomics.add(i32, L.SEQ, 1);
    Atomics.notify(i32, L.SEQ);
    let mine: unknown = null;
    for (;;) {
      // the calling thread claims chunks like any worker
      const claim = Atomics.add(i32, L.CLAIM, 1),
        c = claim & 0xffff;
      if (c >= chunks) break;
      try {
        fn(
          ...args,
          Math.min(Math.floor((c * blocks) / chunks) * s.align, s.units),
          Math.min(Math.floor(((c + 1) * blocks) / chunks) * s.align, s.units),
          ...tail,
        );
      } catch (e) {
        mine ??= e; // finish the call all the same: the workers are still using the memory
      }
      Atomics.add(i32, L.DONE, 1);
    }
    let slept = false;
    for (let spins = 0, done: number; (done = Atomics.load(i32, L.DONE)) !== chunks; ) {
      if (++spins > this.budget) {
        slept = true;
        Atomics.wait(i32, L.DONE, done);
      }
    }
    this.budget = slept ? Math.max(Math.min(this.spin, MIN_SPIN), this.budget >> 1) : Math.min(this.spin, this.budget * 2);
    const failed = Atomics.exchange(i32, L.ERROR, 0);
    if (mine !== null)
      throw new Error(`wasm kernels: ${kernel} failed on the calling thread: ${(mine as Error)?.message ?? mine}`, { cause: mine });
    if (failed !== 0) {
      const text = new TextDecoder().decode(this.u8.slice(0, i32[L.ERROR_LEN]!));
      throw new Error(`wasm kernels: ${kernel} failed on worker thread ${failed - 1}: ${text}`);
    }
  }

  /** End the workers (idempotent). Later calls throw. */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    await stopWorkers(this.i32, this.workers);
  }
}

async function stopWorkers(i32: Int32Array, workers: PoolWorker[]): Promise<void> {
  Atomics.store(i32, LAYOUT.STOP, 1);
  Atomics.add(i32, LAYOUT.SEQ, 1);
  Atomics.notify(i32, LAYOUT.SEQ);
  await Promise.all(workers.map((w) => w.terminate()));
}

export const CONTROL_BLOCK_BYTES = LAYOUT.BYTES;
