// WebAssembly SIMD kernels (see src/kernels/kernels.ts for the interface they implement).
// Placeholder until the wasm backend lands: exports one trivial function so the build runs.
export function version(): i32 {
  return 0;
}
