// Debug exports: hooks for tests and benches only (src/kernels never calls them). They are
// exported from index.ts under names starting with "debug", so the module's interface says so.

import { exp4, expScalar } from "./simd";

/** x[i] = e^x[i] in place with the kernels' vectorized exp (for the accuracy test). */
export function debugExpInPlace(x: usize, n: i32): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) v128.store(x + (<usize>i << 2), exp4(v128.load(x + (<usize>i << 2))));
  for (; i < n; i++) store<f32>(x + (<usize>i << 2), expScalar(load<f32>(x + (<usize>i << 2))));
}

/** A kernel that does nothing over its range: measures the thread pool's dispatch cost (bench:threads). */
export function debugEmptyRange(begin: i32, end: i32): void {}
