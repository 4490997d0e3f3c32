// IEEE 754 half precision (f16) and bfloat16 (bf16) <-> float32, exactly.
//
// Released MobileLLM checkpoints store fp16 weights. We keep them as 16-bit patterns and widen
// them when they are used. Widening is exact (every f16 and bf16 value is a float32 value);
// narrowing rounds to nearest, ties to even, as PyTorch's `.half()` and `.bfloat16()` do.

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** Widen one f16 bit pattern to a number (exact, including subnormals, ±Inf and NaN). */
export function f16BitsToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24; // zero or subnormal: mant · 2^-14 · 2^-10
  if (exp === 0x1f) return mant === 0 ? sign * Infinity : NaN;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** Widen one bf16 bit pattern: bf16 is the top half of a float32. */
export function bf16BitsToNumber(b: number): number {
  u32[0] = (b & 0xffff) << 16;
  return f32[0]!;
}

/** Round a number to the nearest f16 (ties to even) and return its bit pattern. */
export function numberToF16Bits(x: number): number {
  f32[0] = x; // first to float32, as torch does (float32 tensor -> half)
  const bits = u32[0]!;
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  let mant = bits & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 | (mant >>> 13) : 0); // Inf / NaN (quiet)
  const e = exp - 127 + 15; // re-biased exponent
  if (e >= 0x1f) return sign | 0x7c00; // overflow -> Inf
  if (e <= 0) {
    // subnormal half (or zero): shift the mantissa with its implicit 1 into place, round to even
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e; // 14..24
    const half = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    const round = rem > mid || (rem === mid && half & 1) ? 1 : 0;
    return sign | (half + round);
  }
  const half = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  const round = rem > 0x1000 || (rem === 0x1000 && half & 1) ? 1 : 0;
  return sign | (half + round); // a carry into the exponent is the correct rounding (up to Inf)
}

/** Round a number to the nearest bf16 (ties to even) and return its bit pattern. */
export function numberToBf16Bits(x: number): number {
  f32[0] = x;
  const bits = u32[0]!;
  if ((bits & 0x7f800000) === 0x7f800000 && bits & 0x7fffff) return ((bits >>> 16) | 0x40) & 0xffff; // NaN stays NaN
  const rounded = bits + 0x7fff + ((bits >>> 16) & 1);
  return (rounded >>> 16) & 0xffff;
}

/** All 65536 f16 values as float32: widening by table lookup is the fastest clear way in JS. */
export const F16_TABLE: Float32Array = (() => {
  const t = new Float32Array(65536);
  const bits = new Uint32Array(t.buffer);
  for (let h = 0; h < 65536; h++) {
    const nan = (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0;
    // NaN keeps its sign and payload (as hardware converters do); every other value is exact.
    if (nan) bits[h] = ((h & 0x8000) << 16) | 0x7f800000 | ((h & 0x3ff) << 13);
    else t[h] = f16BitsToNumber(h);
  }
  return t;
})();

/** All 65536 bf16 values as float32. */
export const BF16_TABLE: Float32Array = (() => {
  const t = new Float32Array(65536);
  const bits = new Uint32Array(t.buffer);
  for (let b = 0; b < 65536; b++) bits[b] = b << 16;
  return t;
})();
