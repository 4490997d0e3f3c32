// WebAssembly SIMD kernels for MobileLLM (see src/kernels/kernels.ts for the interface they
// implement and src/kernels/wasm/ for the TypeScript side). Every argument is a byte address in
// the imported linear memory or a size; nothing here allocates (runtime "stub", no GC).

export { widenRow } from "./half";
export { matmul, matmulRows, matmulBackwardX, matmulBackwardXCols, matmulBackwardW, matmulBackwardWRows, f16AllFinite,
  MATMUL_SCRATCH_BYTES } from "./matmul";
export {
  sumF32, sumF32Quarters, rmsnorm, rmsnormBackward, rope, ropeBackward, attention, attentionHeads, attentionBackward, attentionBackwardGroups, siluMul,
  siluMulRange, siluMulBackward, relu, reluBackward, add, softmax, crossEntropyRow, crossEntropyBackwardRow, adamw,
} from "./ops";
export { matmulQuant, dequantizeRow, relaxedSimdSelfTest, QMATMUL_SCRATCH_BYTES } from "./quant";

/** First free byte after the module's static data: the TypeScript arena starts here. */
export function heapBase(): usize {
  return __heap_base;
}

/** e^x for n values in place (exposes the kernels' exp so its accuracy can be tested). */
export { expInPlace } from "./exptest";

/** A kernel that does nothing over its range: measures the thread pool's dispatch cost (bench). */
export function emptyRange(begin: i32, end: i32): void {}
