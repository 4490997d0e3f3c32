// Choosing a kernel backend by name.
import type { Kernels } from "./kernels.js";
import { createTsKernels } from "./ts/index.js";

export type BackendName = "ts" | "wasm";
export const BACKENDS: readonly BackendName[] = ["ts", "wasm"];

export async function createKernels(backend: BackendName): Promise<Kernels> {
  switch (backend) {
    case "ts":
      return createTsKernels();
    case "wasm":
      throw new Error('the "wasm" backend is not available in this build yet; use backend: "ts"');
    default:
      throw new Error(`unknown backend ${JSON.stringify(backend)}; choose one of ${BACKENDS.join(", ")}`);
  }
}
