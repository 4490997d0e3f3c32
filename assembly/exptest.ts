import { exp4, expScalar } from "./simd";

/** x[i] = e^x[i] in place with the kernels' vectorized exp (for the accuracy test). */
export function expInPlace(x: usize, n: i32): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) v128.store(x + (<usize>i << 2), exp4(v128.load(x + (<usize>i << 2))));
  for (; i < n; i++) store<f32>(x + (<usize>i << 2), expScalar(load<f32>(x + (<usize>i << 2))));
}
