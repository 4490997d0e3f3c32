// mobilellm: MobileLLM in readable TypeScript with WebAssembly SIMD kernels.
export type { DType, Weight, Kernels } from "./kernels/kernels.js";
export { createTsKernels } from "./kernels/ts/index.js";
