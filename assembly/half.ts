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
 * Fast widening of 8 f16 (one v128) into two f32x4: the even-indexed values (0, 2, 4, 6) and the
 * odd ones (1, 3, 5, 7), each exact for every FINITE f16 but 2^112 too small. Two instructions
 * per 4 values, no shuffles. Each 32-bit lane holds an (even, odd) pair: even in the low half,
 * odd in the high half. The f32 bit pattern  s 000 eeeee mmmmmmmmmm 0^13  (the f16's sign,
 * exponent and mantissa moved into place) is that f16's value · 2^-112, for normals and
 * subnormals alike, because f32's exponent bias exceeds f16's by 112:
 *   odd:  (lane >> 3, arithmetic) keeps the sign in bit 31 and copies it into bits 30..28;
 *         the mask clears those copies and the even value's bits shifted below bit 13.
 *   even: i32x4.dot_i16x8_s(lane, [2^13, 0]) is the even value, sign-extended, times 2^13:
 *         the same pattern with the sign copied into bits 31..28; the mask clears 30..28.
 * Inf/NaN (exponent 31) would come out as finite numbers, so only matrices checked to hold none
 * (f16AllFinite) take this path. Callers multiply x by 2^112 once instead of every weight.
 */
// @ts-ignore: decorator
@inline export function f16EvenBits(h8: v128): v128 {
  return v128.and(i32x4.dot_i16x8_s(h8, i32x4.splat(0x2000)), i32x4.splat(0x8fffffff));
}

// @ts-ignore: decorator
@inline export function f16OddBits(h8: v128): v128 {
  return v128.and(i32x4.shr_s(h8, 3), i32x4.splat(0x8fffe000));
}

/** bf16 is the top half of an f32: the even values shift up into place, the odd ones are masked. */
// @ts-ignore: decorator
@inline export function bf16EvenBits(h8: v128): v128 {
  return i32x4.shl(h8, 16);
}

// @ts-ignore: decorator
@inline export function bf16OddBits(h8: v128): v128 {
  return v128.and(h8, i32x4.splat(0xffff0000));
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
