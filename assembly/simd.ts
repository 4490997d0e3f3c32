// Small SIMD helpers shared by the kernels: horizontal sums and a vectorized exp.

/** a0 + a1 + a2 + a3 of one f32x4. */
// @ts-ignore: decorator
@inline export function hsum(a: v128): f32 {
  const s = f32x4.add(a, v128.shuffle<f32>(a, a, 2, 3, 0, 1));
  return f32x4.extract_lane(s, 0) + f32x4.extract_lane(s, 1);
}

/** [Σa, Σb, Σc, Σd]: four horizontal sums at once (a 4x4 transpose folded into adds). */
// @ts-ignore: decorator
@inline export function hsum4(a: v128, b: v128, c: v128, d: v128): v128 {
  const ab = f32x4.add(v128.shuffle<f32>(a, b, 0, 4, 1, 5), v128.shuffle<f32>(a, b, 2, 6, 3, 7)); // a02 b02 a13 b13
  const cd = f32x4.add(v128.shuffle<f32>(c, d, 0, 4, 1, 5), v128.shuffle<f32>(c, d, 2, 6, 3, 7));
  return f32x4.add(v128.shuffle<f32>(ab, cd, 0, 1, 4, 5), v128.shuffle<f32>(ab, cd, 2, 3, 6, 7));
}

/**
 * The two halves of e^x shared by exp4 and the attention kernels' expNeg4 (Cephes expf scheme),
 * for x already clamped to [-87.34, 88.73]: x = n·ln2 + r with |r| <= ln2/2.
 * expRound: t = x·log2 e + 1.5·2^23. Adding 1.5·2^23 rounds to an integer (ties to even, as
 * f32x4.nearest) and leaves n in t's low mantissa bits: n = t − 1.5·2^23 exactly, and
 * t's bits − 0x4b400000 = n as an integer (|n| <= 128), with no float-to-int conversion.
 */
// @ts-ignore: decorator
@inline export function expRound(xc: v128): v128 {
  return f32x4.add(f32x4.mul(xc, f32x4.splat(1.44269504088896341)), f32x4.splat(12582912.0));
}

/** e^r ≈ 1 + r + r²·p(r), p a degree-5 polynomial, for r = xc − n·ln2 with n from t = expRound(xc). */
// @ts-ignore: decorator
@inline export function expPoly(xc: v128, t: v128): v128 {
  const n = f32x4.sub(t, f32x4.splat(12582912.0));
  // r = x - n·ln2, with ln2 split in two so n·C1 is exact
  let r = f32x4.sub(xc, f32x4.mul(n, f32x4.splat(0.693359375)));
  r = f32x4.sub(r, f32x4.mul(n, f32x4.splat(-2.12194440e-4)));
  let p = f32x4.splat(1.9875691500e-4);
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(1.3981999507e-3));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(8.3334519073e-3));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(4.1665795894e-2));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(1.6666665459e-1));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(5.0000001201e-1));
  return f32x4.add(f32x4.add(f32x4.mul(p, f32x4.mul(r, r)), r), f32x4.splat(1.0));
}

/**
 * e^x for 4 lanes: expRound and expPoly, then 2^n built in the exponent bits. Error below 1 ulp of
 * the exact e^x over [-87.3, 88.7] (measured max 0.97 ulp, mean 0.27 ulp, i.e. relative error <
 * 1.2e-7; tests/kernels/wasm-exp-and-sums.test.ts checks <= 2 ulp against Math.exp rounded to f32).
 * x < -87.336 gives 0 (no subnormal results), x > 88.7228 gives +Inf, NaN gives NaN (through er).
 */
// @ts-ignore: decorator
@inline export function exp4(x: v128): v128 {
  // pmin/pmax (one minps/maxps each; wasm's min/max order NaNs and signed zeros in ~7 instructions
  // on x86). Against these constants they give the same results, a NaN x passing through as NaN.
  const xc = f32x4.pmax(f32x4.pmin(x, f32x4.splat(88.72283)), f32x4.splat(-87.33654));
  const t = expRound(xc);
  const er = expPoly(xc, t);
  // 2^n as 2^a · 2^b with a = n >> 1, b = n - a: both stay normal for n in [-126, 128]
  const ni = i32x4.sub(t, i32x4.splat(0x4b400000));
  const a = i32x4.shr_s(ni, 1);
  const pow2a = i32x4.shl(i32x4.add(a, i32x4.splat(127)), 23);
  const pow2b = i32x4.shl(i32x4.add(i32x4.sub(ni, a), i32x4.splat(127)), 23);
  let y = f32x4.mul(f32x4.mul(er, pow2a), pow2b);
  y = v128.andnot(y, f32x4.lt(x, f32x4.splat(-87.33654))); // underflow -> +0
  y = v128.bitselect(f32x4.splat(Infinity), y, f32x4.gt(x, f32x4.splat(88.72283)));
  return y;
}

/** Scalar e^x with the same algorithm (for tails), so every element gets identical rounding. */
// @ts-ignore: decorator
@inline export function expScalar(x: f32): f32 {
  return f32x4.extract_lane(exp4(f32x4.splat(x)), 0);
}
