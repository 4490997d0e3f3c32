// WebAssembly SIMD kernels for MobileLLM (see src/kernels/kernels.ts for the interface they
// implement and src/kernels/wasm/ for the TypeScript side). Every argument is a byte address in
// the imported linear memory or a size; nothing here allocates (runtime "stub", no GC).

export { widenRow } from "./half";
export { matmul, matmulRows, matmulBackwardX, matmulBackwardXCols, matmulBackwardW, matmulBackwardWRows, f16AllFinite,
  MATMUL_SCRATCH_BYTES, matmulTokens, matmulBackwardXTokens } from "./matmul";
export {
  rmsnorm, rmsnormBackward, rope, ropeBackward, attention, attentionHeads, attentionBackward, attentionBackwardGroups,
  attentionBackwardBlocked, siluMul, siluMulRange, siluMulBackward, relu, reluBackward, add, crossEntropyRow, crossEntropyBackwardRow,
  adamw, rmsnormRows, rotateRows, siluMulBackwardRange, addRange, crossEntropyRows, crossEntropyBackwardRows, adamwRange,
} from "./ops";
export { attentionBlocks, attentionBlocksScratchFloats, ATTENTION_SCRATCH_BYTES, attentionBackwardBlocks, attentionBackwardBlocksScratchFloats } from "./attention";
export { matmulQuant, dequantizeRow, dequantizeRowQ4x4, repackQ4x4, relaxedSimdSelfTest, QMATMUL_SCRATCH_BYTES } from "./quant";

/** First free byte after the module's static data: the TypeScript arena starts here. */
export function heapBase(): usize {
  return __heap_base;
}

// Debug exports, for tests and benches only (src/kernels/wasm/debug.ts): the streaming-read
// baselines of bench:kernels, the kernels' f32 exp (its accuracy test) and an empty range kernel
// (bench:threads' dispatch cost).
export { sumF32 as debugSumF32, sumF32Quarters as debugSumF32Quarters } from "./ops";
export { debugExpInPlace, debugEmptyRange } from "./debug";
