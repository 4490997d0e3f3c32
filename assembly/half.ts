// f16 / bf16 -> f32 widening, scalar and 4 lanes at a time.
//
// SIMD128 has no half-precision instructions, so f16 is widened with integer bit manipulation.
// An f16 is  s eeeee mmmmmmmmmm  (bias 15); an f32 is  s eeeeeeee m(23)  (bias 127).
// Every f16 value is exactly representable as f32, so widening is exact; the results are
// bit-identical to src/kernels/half.ts F16_TABLE, including the sign and payload of NaNs.
// bf16 is simply the top half of an f32.

// @ts-ignore: decorator
@inline export const DT_F32: i32 = 0;
// @ts-ignore: decorator
@inline export const DT_F16: i32 = 1;
// @ts-ignore: decorator
@inline export const DT_BF16: i32 = 2;

/** One f16 bit pattern -> the f32 bit pattern of the same value (exact). */
// @ts-ignore: decorator
@inline export function f16BitsToF32Bits(h: u32): u32 {
  const sign = (h & 0x8000) << 16;
  const em = h & 0x7fff; // exponent and mantissa
  if (em >= 0x7c00) return sign | 0x7f800000 | ((em & 0x3ff) << 13); // Inf, NaN (payload kept)
  if (em >= 0x0400) return sign | ((em << 13) + 0x38000000); // normal: re-bias exponent by 127-15
  return sign | reinterpret<u32>(<f32>em * reinterpret<f32>(0x33800000)); // zero/subnormal: m·2^-24
}

// @ts-ignore: decorator
@inline export function f16ToF32(h: u32): f32 {
  return reinterpret<f32>(f16BitsToF32Bits(h));
}

// @ts-ignore: decorator
@inline export function bf16ToF32(b: u32): f32 {
  return reinterpret<f32>(b << 16);
}

/**
 * Exact widening of 4 f16 held zero-extended in the i32 lanes of `v` (all cases, branch-free):
 *   normal      (em << 13) + (127-15)<<23
 *   Inf/NaN     (em << 13) + (127-15)<<23 + (127-15)<<23   -> exponent 255, mantissa kept
 *   subnormal   float(em) · 2^-24   (computed by an exact int->float conversion)
 */
// @ts-ignore: decorator
@inline export function f16x4Exact(v: v128): v128 {
  const em = v128.and(v, i32x4.splat(0x7fff));
  const sign = i32x4.shl(v128.xor(v, em), 16);
  const rebias = i32x4.splat(0x38000000);
  let bits = i32x4.add(i32x4.shl(em, 13), rebias);
  const infNan = i32x4.gt_s(em, i32x4.splat(0x7bff));
  bits = i32x4.add(bits, v128.and(infNan, rebias));
  const sub = f32x4.mul(f32x4.convert_i32x4_s(em), f32x4.splat(reinterpret<f32>(0x33800000)));
  const isSub = i32x4.lt_s(em, i32x4.splat(0x0400));
  return v128.or(v128.bitselect(sub, bits, isSub), sign);
}

/**
 * Fast widening of 8 f16, exact for every FINITE f16, in three steps per 8 lanes:
 * the f32 bit pattern  s 000 eeeee mmmmmmmmmm 0^13  is assembled from two 16-bit halves,
 *   high half = (h >> 3 arithmetic) & 0x8fff   ->  s 000 eeeee mmmmmmm
 *   low half  = h << 13                        ->  mmm 0^13
 * interleaved into 32-bit lanes by the caller (i16x8.shuffle, lanes 0..3 and 4..7), which gives
 * the value's f32 with its exponent 112 too small, for normals and subnormals alike; one exact
 * multiply by 2^112 (`f16Finish`) fixes that. Inf/NaN come out as finite numbers >= 2^16, so
 * callers check for f16 exponent 31 separately (`f16TrackMax`) and recompute with the exact path.
 */
// @ts-ignore: decorator
@inline export function f16HighHalves(h8: v128): v128 {
  return v128.and(i16x8.shr_s(h8, 3), i16x8.splat(<i16>0x8fff));
}

// @ts-ignore: decorator
@inline export function f16LowHalves(h8: v128): v128 {
  return i16x8.shl(h8, 13);
}

// @ts-ignore: decorator
@inline export function f16Finish(bits: v128): v128 {
  return f32x4.mul(bits, f32x4.splat(reinterpret<f32>(0x77800000))); // · 2^112
}

/** Running max used to detect f16 Inf/NaN (exponent 31) cheaply: max over (h << 1) as u16. */
// @ts-ignore: decorator
@inline export function f16TrackMax(acc: v128, h8: v128): v128 {
  return i16x8.max_u(acc, i16x8.shl(h8, 1));
}

// @ts-ignore: decorator
@inline export function f16NonFinite(acc: v128): bool {
  return v128.any_true(i16x8.ge_u(acc, i16x8.splat(<i16>0xf800)));
}

/** Widen n values of any dtype starting at src into f32 at dst (exact; dst must not overlap src). */
export function widenRow(dst: usize, src: usize, dtype: i32, n: i32): void {
  let i = 0;
  if (dtype == DT_F32) {
    for (; i + 4 <= n; i += 4) v128.store(dst + (<usize>i << 2), v128.load(src + (<usize>i << 2)));
    for (; i < n; i++) store<f32>(dst + (<usize>i << 2), load<f32>(src + (<usize>i << 2)));
  } else if (dtype == DT_F16) {
    for (; i + 8 <= n; i += 8) {
      const h = v128.load(src + (<usize>i << 1));
      v128.store(dst + (<usize>i << 2), f16x4Exact(i32x4.extend_low_i16x8_u(h)));
      v128.store(dst + (<usize>i << 2), f16x4Exact(i32x4.extend_high_i16x8_u(h)), 16);
    }
    for (; i < n; i++) store<u32>(dst + (<usize>i << 2), f16BitsToF32Bits(<u32>load<u16>(src + (<usize>i << 1))));
  } else {
    for (; i + 8 <= n; i += 8) {
      const h = v128.load(src + (<usize>i << 1));
      v128.store(dst + (<usize>i << 2), i32x4.shl(i32x4.extend_low_i16x8_u(h), 16));
      v128.store(dst + (<usize>i << 2), i32x4.shl(i32x4.extend_high_i16x8_u(h), 16), 16);
    }
    for (; i < n; i++) store<u32>(dst + (<usize>i << 2), (<u32>load<u16>(src + (<usize>i << 1))) << 16);
  }
}
