// Choosing a kernel backend by name.
import type { BackendName, Kernels } from "./kernels.js";
import { createTsKernels } from "./ts/index.js";

export type { BackendName };
export const BACKENDS: readonly BackendName[] = ["ts", "wasm"];

export interface KernelOptions {
  /**
   * Threads to run the kernels on: the wasm backend's default is the machine's available
   * parallelism, and 1 runs no workers. The ts reference runs on one thread only.
   */
  threads?: number;
  /** wasm: least multiply-adds per thread for a call to be split (default MIN_THREAD_WORK; 0: split all). */
  minThreadWork?: number;
  /**
   * wasm: a shared memory (the default where SharedArrayBuffer exists; threads need it), or false:
   * an ordinary memory on one thread, as on a web page that is not cross-origin isolated.
   */
  shared?: boolean;
  /** wasm: where to say, once, that threads are unavailable here (default console.warn). */
  log?: (message: string) => void;
}

export async function createKernels(backend: BackendName, options: KernelOptions = {}): Promise<Kernels> {
  switch (backend) {
    case "ts":
      if (options.threads !== undefined && options.threads !== 1) {
        throw new Error(`the ts reference backend runs on one thread; threads: ${options.threads} needs the wasm backend`);
      }
      return createTsKernels();
    case "wasm": {
      const { createWasmKernels } = await import("./wasm/index.js");
      return createWasmKernels(options);
    }
    default:
      throw new Error(`unknown backend ${JSON.stringify(backend)}; choose one of ${BACKENDS.join(", ")}`);
  }
}
