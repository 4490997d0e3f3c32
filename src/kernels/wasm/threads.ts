// Threads on each platform: how many cores there are, whether this thread may block in
// Atomics.wait, and how to start a kernel worker. The only platform-dependent part of the pool.
//
//  * Node, Deno, Bun: node:worker_threads (all three support it without flags), reached through
//    process.getBuiltinModule (no import statement, so a browser bundle never sees a Node module:
//    tests/browser-imports.test.ts), the worker's code as a data: URL module. Workers are unref'd once started, so an idle pool never keeps the
//    process alive, and a process that forgets dispose() still exits.
//  * Browsers: a module Web Worker from a Blob URL. Threads need SharedArrayBuffer (a page served
//    cross-origin isolated) and a calling thread that may block: a Web Worker, not the page's main
//    thread. Elsewhere the backend runs on one thread and says so once.

import type { PoolWorker, SpawnWorker, WorkerData } from "./pool.js";

/**
 * A Node built-in module where the runtime has them (Node >= 20.16, Deno, Bun), else undefined (a
 * browser). process.getBuiltinModule instead of an import: the browser entry's module graph then
 * holds no Node module at all, and no bundler tries to resolve one.
 */
export function nodeBuiltin<T>(name: string): T | undefined {
  const proc = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
  return proc?.getBuiltinModule?.(name) as T | undefined;
}

/** The machine's available parallelism: os.availableParallelism() or navigator.hardwareConcurrency. */
export async function defaultThreads(): Promise<number> {
  const os = nodeBuiltin<{ availableParallelism?: () => number; cpus(): unknown[] }>("node:os");
  if (os) return Math.max(1, os.availableParallelism?.() ?? os.cpus().length);
  const n = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator?.hardwareConcurrency;
  return Math.max(1, n ?? 1);
}

/** Why this thread cannot run a pool (no shared memory, or blocking forbidden here), or null if it can. */
export function threadsUnavailable(): string | null {
  if (typeof SharedArrayBuffer === "undefined") {
    return "SharedArrayBuffer is not available (in a browser, serve the page cross-origin isolated: COOP/COEP headers)";
  }
  try {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 1, 0); // "not-equal" where blocking is allowed
  } catch {
    return "this thread may not block in Atomics.wait (a browser's main thread: run the model inside a Web Worker)";
  }
  return null;
}

let warned = false;
/** Say once per process that threads were asked for but cannot run here. */
export function warnSingleThreadOnce(reason: string, log: (message: string) => void = console.warn): void {
  if (warned) return;
  warned = true;
  log(`mobilellm: running the wasm kernels on one thread: ${reason}`);
}

/** The few node:worker_threads members used here. */
interface NodeWorkerThreads {
  Worker: new (
    url: URL,
    options: { workerData: unknown },
  ) => {
    once(event: string, listener: (arg: never) => void): void;
    on(event: string, listener: (arg: never) => void): void;
    removeAllListeners(): void;
    unref(): void;
    terminate(): Promise<number>;
  };
}

/** Start a kernel worker with the platform's worker API. */
export const spawnWorker: SpawnWorker = async (loopSource, data) => {
  const threads = nodeBuiltin<NodeWorkerThreads>("node:worker_threads");
  return threads ? spawnNodeWorker(threads, loopSource, data) : spawnWebWorker(loopSource, data);
};

async function spawnNodeWorker(threads: NodeWorkerThreads, loopSource: string, data: WorkerData): Promise<PoolWorker> {
  const source =
    `import { parentPort, workerData } from "node:worker_threads";\n` + `(${loopSource})(workerData, (m) => parentPort.postMessage(m));\n`;
  const worker = new threads.Worker(new URL("data:text/javascript," + encodeURIComponent(source)), { workerData: data });
  await new Promise<void>((resolve, reject) => {
    worker.once("message", () => resolve());
    worker.once("error", reject);
    worker.once("exit", (code: number) => reject(new Error(`the worker exited (code ${code}) before it was ready`)));
  });
  worker.removeAllListeners();
  // A worker only ends through terminate(); an uncaught error after start (never from a kernel:
  // the loop catches those) would leave the pool waiting, so surface it rather than hide it.
  worker.on("error", (e: Error) => console.error(`mobilellm: kernel worker ${data.index} crashed:`, e));
  worker.unref();
  return { terminate: () => worker.terminate() };
}

async function spawnWebWorker(loopSource: string, data: WorkerData): Promise<PoolWorker> {
  const source = `self.onmessage = (e) => { self.onmessage = null; (${loopSource})(e.data, (m) => self.postMessage(m)); };\n`;
  const url = URL.createObjectURL(new Blob([source], { type: "text/javascript" }));
  const WorkerCtor = (globalThis as unknown as { Worker: new (url: string, o: { type: string }) => WebWorker }).Worker;
  const worker = new WorkerCtor(url, { type: "module" });
  try {
    await new Promise<void>((resolve, reject) => {
      worker.onmessage = () => resolve();
      worker.onerror = (e) => reject(new Error(e.message ?? "the worker failed to start"));
      worker.postMessage(data);
    });
  } finally {
    URL.revokeObjectURL(url);
  }
  worker.onmessage = null;
  return { terminate: async () => worker.terminate() };
}

/** The few Web Worker members used here (this project does not load lib.dom). */
interface WebWorker {
  onmessage: ((e: { data: unknown }) => void) | null;
  onerror: ((e: { message?: string }) => void) | null;
  postMessage(data: unknown): void;
  terminate(): void;
}
