// Choosing a kernel backend by name.
import type { Kernels } from "./kernels.js";
import { createTsKernels } from "./ts/index.js";

export type BackendName = "ts" | "wasm";
export const BACKENDS: readonly BackendName[] = ["ts", "wasm"];

export async function createKernels(backend: BackendName): Promise<Kernels> {
  switch (backend) {
    case "ts":
      return createTsKernels();
    case "wasm": {
      const { createWasmKernels } = await import("./wasm/index.js");
      return createWasmKernels();
    }
    default:
      throw new Error(`unknown backend ${JSON.stringify(backend)}; choose one of ${BACKENDS.join(", ")}`);
  }
}
