// WebAssembly SIMD kernels for MobileLLM (see src/kernels/kernels.ts for the interface they
// implement and src/kernels/wasm/ for the TypeScript side). Every argument is a byte address in
// the imported linear memory or a size; nothing here allocates (runtime "stub", no GC).

export { widenRow } from "./half";
export { matmul, matmulBackwardX, matmulBackwardW, f16AllFinite, MATMUL_SCRATCH_BYTES } from "./matmul";
export { matmulQuant, dequantizeRow, relaxedSimdSelfTest, QMATMUL_SCRATCH_BYTES } from "./quant";
export { sumF32, sumF32Quarters, rmsnorm, rope, attention, siluMul, add, softmax } from "./ops";

/** First free byte after the module's static data: the TypeScript arena starts here. */
export function heapBase(): usize {
  return __heap_base;
}

/** e^x for n values in place (exposes the kernels' exp so its accuracy can be tested). */
export { expInPlace } from "./exptest";
