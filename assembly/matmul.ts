// y = x·Wᵀ (F.linear without bias) for f32, f16 and bf16 weights W[O, I], and the two backward
// products used in training. Pointers are byte addresses into linear memory.
//
// Two algorithms, chosen by the number of tokens T:
//  * decode (T < 4): matrix-vector. Every weight is used once, so this is a streaming read of W:
//    4 rows at a time share each load of x, 8 independent f32x4 accumulators hide add latency.
//  * prefill (T >= 4): register-blocked matrix-matrix. W is copied 8 rows at a time (widened to
//    f32, transposed) into a small packed panel [kc][8]; a 4x8 micro-kernel then computes 4 tokens
//    × 8 outputs with 8 f32x4 accumulators (broadcast x[t,k], multiply by panel row k). Widening
//    cost is paid once per weight, not once per token.

import { hsum, hsum4 } from "./simd";
import { DT_F32, DT_F16, DT_BF16, f16x4Finite, f16x4Exact, f16TrackMax, f16NonFinite, f16ToF32, bf16ToF32, widenRow } from "./half";

/** Largest k-block of the packed panel; the panel is KC·8 f32 (16 KB) and fits in L1. */
// @ts-ignore: decorator
@inline const KC: i32 = 512;
/** Bytes of scratch `matmul` needs: the panel plus one widened row chunk of 8 rows. */
export const MATMUL_SCRATCH_BYTES: i32 = KC * 8 * 4 * 2;

/** Scalar weight element `e` of W as f32 (exact for every dtype). */
// @ts-ignore: decorator
@inline function wScalar(w: usize, e: usize, dtype: i32): f32 {
  if (dtype == DT_F32) return load<f32>(w + (e << 2));
  const bits = <u32>load<u16>(w + (e << 1));
  return dtype == DT_F16 ? f16ToF32(bits) : bf16ToF32(bits);
}

/** Σ_i x[i]·W[row, i] for one row (exact widening; used for row tails and non-finite rows). */
// @ts-ignore: decorator
@inline function dotRow(x: usize, w: usize, row: usize, I: i32, dtype: i32): f32 {
  const e0 = row * <usize>I;
  let a = f32x4.splat(0), b = f32x4.splat(0);
  let i = 0;
  for (; i + 8 <= I; i += 8) {
    const e = e0 + <usize>i;
    const x0 = v128.load(x + (<usize>i << 2)), x1 = v128.load(x + (<usize>i << 2), 16);
    let w0: v128, w1: v128;
    if (dtype == DT_F32) {
      w0 = v128.load(w + (e << 2)); w1 = v128.load(w + (e << 2), 16);
    } else if (dtype == DT_F16) {
      const h = v128.load(w + (e << 1));
      w0 = f16x4Exact(i32x4.extend_low_i16x8_u(h)); w1 = f16x4Exact(i32x4.extend_high_i16x8_u(h));
    } else {
      const h = v128.load(w + (e << 1));
      w0 = i32x4.shl(i32x4.extend_low_i16x8_u(h), 16); w1 = i32x4.shl(i32x4.extend_high_i16x8_u(h), 16);
    }
    a = f32x4.add(a, f32x4.mul(x0, w0));
    b = f32x4.add(b, f32x4.mul(x1, w1));
  }
  let s = hsum(f32x4.add(a, b));
  for (; i < I; i++) s += load<f32>(x + (<usize>i << 2)) * wScalar(w, e0 + <usize>i, dtype);
  return s;
}

/** Decode: y[o] = Σ_i x[i]·W[o,i] for one token. */
// @ts-ignore: decorator
@inline function matvec(y: usize, x: usize, w: usize, dtype: i32, I: i32, O: i32): void {
  const I8 = I & ~7;
  let o = 0;
  for (; o + 4 <= O; o += 4) {
    const e0 = <usize>o * <usize>I, e1 = e0 + <usize>I, e2 = e1 + <usize>I, e3 = e2 + <usize>I;
    // a_r: lanes 0..3 of each 8-wide step of row r, b_r: lanes 4..7 (8 independent chains)
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
    let b0 = f32x4.splat(0), b1 = f32x4.splat(0), b2 = f32x4.splat(0), b3 = f32x4.splat(0);
    let maxBits = i16x8.splat(0); // f16 only: detects Inf/NaN weights (exponent 31)
    for (let i = 0; i < I8; i += 8) {
      const xp = x + (<usize>i << 2);
      const x0 = v128.load(xp), x1 = v128.load(xp, 16);
      const ei = <usize>i;
      if (dtype == DT_F32) {
        a0 = f32x4.add(a0, f32x4.mul(v128.load(w + ((e0 + ei) << 2)), x0));
        b0 = f32x4.add(b0, f32x4.mul(v128.load(w + ((e0 + ei) << 2), 16), x1));
        a1 = f32x4.add(a1, f32x4.mul(v128.load(w + ((e1 + ei) << 2)), x0));
        b1 = f32x4.add(b1, f32x4.mul(v128.load(w + ((e1 + ei) << 2), 16), x1));
        a2 = f32x4.add(a2, f32x4.mul(v128.load(w + ((e2 + ei) << 2)), x0));
        b2 = f32x4.add(b2, f32x4.mul(v128.load(w + ((e2 + ei) << 2), 16), x1));
        a3 = f32x4.add(a3, f32x4.mul(v128.load(w + ((e3 + ei) << 2)), x0));
        b3 = f32x4.add(b3, f32x4.mul(v128.load(w + ((e3 + ei) << 2), 16), x1));
      } else if (dtype == DT_F16) {
        const h0 = v128.load(w + ((e0 + ei) << 1));
        const h1 = v128.load(w + ((e1 + ei) << 1));
        const h2 = v128.load(w + ((e2 + ei) << 1));
        const h3 = v128.load(w + ((e3 + ei) << 1));
        a0 = f32x4.add(a0, f32x4.mul(f16x4Finite(i32x4.extend_low_i16x8_s(h0)), x0));
        b0 = f32x4.add(b0, f32x4.mul(f16x4Finite(i32x4.extend_high_i16x8_s(h0)), x1));
        a1 = f32x4.add(a1, f32x4.mul(f16x4Finite(i32x4.extend_low_i16x8_s(h1)), x0));
        b1 = f32x4.add(b1, f32x4.mul(f16x4Finite(i32x4.extend_high_i16x8_s(h1)), x1));
        a2 = f32x4.add(a2, f32x4.mul(f16x4Finite(i32x4.extend_low_i16x8_s(h2)), x0));
        b2 = f32x4.add(b2, f32x4.mul(f16x4Finite(i32x4.extend_high_i16x8_s(h2)), x1));
        a3 = f32x4.add(a3, f32x4.mul(f16x4Finite(i32x4.extend_low_i16x8_s(h3)), x0));
        b3 = f32x4.add(b3, f32x4.mul(f16x4Finite(i32x4.extend_high_i16x8_s(h3)), x1));
        maxBits = f16TrackMax(f16TrackMax(maxBits, h0), h1);
        maxBits = f16TrackMax(f16TrackMax(maxBits, h2), h3);
      } else {
        // bf16 -> f32 is a shift into the top half of each lane
        const h0 = v128.load(w + ((e0 + ei) << 1));
        const h1 = v128.load(w + ((e1 + ei) << 1));
        const h2 = v128.load(w + ((e2 + ei) << 1));
        const h3 = v128.load(w + ((e3 + ei) << 1));
        a0 = f32x4.add(a0, f32x4.mul(i32x4.shl(i32x4.extend_low_i16x8_u(h0), 16), x0));
        b0 = f32x4.add(b0, f32x4.mul(i32x4.shl(i32x4.extend_high_i16x8_u(h0), 16), x1));
        a1 = f32x4.add(a1, f32x4.mul(i32x4.shl(i32x4.extend_low_i16x8_u(h1), 16), x0));
        b1 = f32x4.add(b1, f32x4.mul(i32x4.shl(i32x4.extend_high_i16x8_u(h1), 16), x1));
        a2 = f32x4.add(a2, f32x4.mul(i32x4.shl(i32x4.extend_low_i16x8_u(h2), 16), x0));
        b2 = f32x4.add(b2, f32x4.mul(i32x4.shl(i32x4.extend_high_i16x8_u(h2), 16), x1));
        a3 = f32x4.add(a3, f32x4.mul(i32x4.shl(i32x4.extend_low_i16x8_u(h3), 16), x0));
        b3 = f32x4.add(b3, f32x4.mul(i32x4.shl(i32x4.extend_high_i16x8_u(h3), 16), x1));
      }
    }
    let s = hsum4(f32x4.add(a0, b0), f32x4.add(a1, b1), f32x4.add(a2, b2), f32x4.add(a3, b3));
    if (I8 < I) { // scalar tail: the last I % 8 inputs
      let t0: f32 = 0, t1: f32 = 0, t2: f32 = 0, t3: f32 = 0;
      for (let i = I8; i < I; i++) {
        const xi = load<f32>(x + (<usize>i << 2));
        t0 += xi * wScalar(w, e0 + <usize>i, dtype);
        t1 += xi * wScalar(w, e1 + <usize>i, dtype);
        t2 += xi * wScalar(w, e2 + <usize>i, dtype);
        t3 += xi * wScalar(w, e3 + <usize>i, dtype);
      }
      s = f32x4.add(s, f32x4(t0, t1, t2, t3));
    }
    v128.store(y + (<usize>o << 2), s);
    if (dtype == DT_F16 && f16NonFinite(maxBits)) {
      // an Inf/NaN weight in these rows: the fast widening is wrong for it, redo them exactly
      for (let r = 0; r < 4; r++) store<f32>(y + (<usize>(o + r) << 2), dotRow(x, w, <usize>(o + r), I, dtype));
    }
  }
  for (; o < O; o++) store<f32>(y + (<usize>o << 2), dotRow(x, w, <usize>o, I, dtype));
}

/** Copy W[o0 .. o0+nO, k0 .. k0+kc] widened and transposed into panel[k][8] (rows >= nO are 0). */
function packPanel(panel: usize, tmp: usize, w: usize, dtype: i32, I: i32, o0: i32, nO: i32, k0: i32, kc: i32): void {
  for (let r = 0; r < 8; r++) {
    const dst = panel + (<usize>r << 2);
    if (r >= nO) {
      for (let k = 0; k < kc; k++) store<f32>(dst + (<usize>k << 5), 0);
      continue;
    }
    const e = <usize>(o0 + r) * <usize>I + <usize>k0;
    let src = w + (e << 2);
    if (dtype != DT_F32) {
      widenRow(tmp, w + (e << 1), dtype, kc);
      src = tmp;
    }
    for (let k = 0; k < kc; k++) store<f32>(dst + (<usize>k << 5), load<f32>(src + (<usize>k << 2)));
  }
}

/** Store (or add into) the first n of 8 outputs c[0..8) = [v0 | v1]. */
// @ts-ignore: decorator
@inline function storeRow8(c: usize, v0: v128, v1: v128, n: i32, accumulate: bool): void {
  if (n == 8) {
    if (accumulate) { v0 = f32x4.add(v0, v128.load(c)); v1 = f32x4.add(v1, v128.load(c, 16)); }
    v128.store(c, v0); v128.store(c, v1, 16);
    return;
  }
  for (let j = 0; j < n; j++) {
    let v: f32;
    switch (j) {
      case 0: v = f32x4.extract_lane(v0, 0); break;
      case 1: v = f32x4.extract_lane(v0, 1); break;
      case 2: v = f32x4.extract_lane(v0, 2); break;
      case 3: v = f32x4.extract_lane(v0, 3); break;
      case 4: v = f32x4.extract_lane(v1, 0); break;
      case 5: v = f32x4.extract_lane(v1, 1); break;
      case 6: v = f32x4.extract_lane(v1, 2); break;
      default: v = f32x4.extract_lane(v1, 3);
    }
    const p = c + (<usize>j << 2);
    store<f32>(p, accumulate ? load<f32>(p) + v : v);
  }
}

/**
 * Micro-kernel: C[r, 0:8] (+)= Σ_k A[r, k]·B[k, 0:8] for r = 0..3, with byte strides
 * (A row, A k-step, B k-step; C row). B must have 8 readable columns; nC <= 8 are stored.
 */
function kernel4x8(c: usize, cRow: usize, a: usize, aRow: usize, aK: usize, b: usize, bK: usize,
                   K: i32, nC: i32, accumulate: bool): void {
  let c00 = f32x4.splat(0), c01 = f32x4.splat(0), c10 = f32x4.splat(0), c11 = f32x4.splat(0);
  let c20 = f32x4.splat(0), c21 = f32x4.splat(0), c30 = f32x4.splat(0), c31 = f32x4.splat(0);
  let a0 = a, a1 = a + aRow, a2 = a + 2 * aRow, a3 = a + 3 * aRow, bp = b;
  for (let k = 0; k < K; k++) {
    const b0 = v128.load(bp), b1 = v128.load(bp, 16);
    let s = v128.load32_splat(a0);
    c00 = f32x4.add(c00, f32x4.mul(s, b0)); c01 = f32x4.add(c01, f32x4.mul(s, b1));
    s = v128.load32_splat(a1);
    c10 = f32x4.add(c10, f32x4.mul(s, b0)); c11 = f32x4.add(c11, f32x4.mul(s, b1));
    s = v128.load32_splat(a2);
    c20 = f32x4.add(c20, f32x4.mul(s, b0)); c21 = f32x4.add(c21, f32x4.mul(s, b1));
    s = v128.load32_splat(a3);
    c30 = f32x4.add(c30, f32x4.mul(s, b0)); c31 = f32x4.add(c31, f32x4.mul(s, b1));
    a0 += aK; a1 += aK; a2 += aK; a3 += aK; bp += bK;
  }
  storeRow8(c, c00, c01, nC, accumulate);
  storeRow8(c + cRow, c10, c11, nC, accumulate);
  storeRow8(c + 2 * cRow, c20, c21, nC, accumulate);
  storeRow8(c + 3 * cRow, c30, c31, nC, accumulate);
}

/** The forward micro-kernel with A k-step 4 bytes and the packed panel (B k-step 32 bytes), unrolled by 2. */
function kernel4x8Packed(c: usize, cRow: usize, a: usize, aRow: usize, panel: usize, K: i32, nC: i32, accumulate: bool): void {
  let c00 = f32x4.splat(0), c01 = f32x4.splat(0), c10 = f32x4.splat(0), c11 = f32x4.splat(0);
  let c20 = f32x4.splat(0), c21 = f32x4.splat(0), c30 = f32x4.splat(0), c31 = f32x4.splat(0);
  let a0 = a, a1 = a + aRow, a2 = a + 2 * aRow, a3 = a + 3 * aRow, bp = panel;
  const end = a + (<usize>(K & ~1) << 2);
  while (a0 < end) {
    let b0 = v128.load(bp), b1 = v128.load(bp, 16);
    let s = v128.load32_splat(a0);
    c00 = f32x4.add(c00, f32x4.mul(s, b0)); c01 = f32x4.add(c01, f32x4.mul(s, b1));
    s = v128.load32_splat(a1);
    c10 = f32x4.add(c10, f32x4.mul(s, b0)); c11 = f32x4.add(c11, f32x4.mul(s, b1));
    s = v128.load32_splat(a2);
    c20 = f32x4.add(c20, f32x4.mul(s, b0)); c21 = f32x4.add(c21, f32x4.mul(s, b1));
    s = v128.load32_splat(a3);
    c30 = f32x4.add(c30, f32x4.mul(s, b0)); c31 = f32x4.add(c31, f32x4.mul(s, b1));
    b0 = v128.load(bp, 32); b1 = v128.load(bp, 48);
    s = v128.load32_splat(a0, 4);
    c00 = f32x4.add(c00, f32x4.mul(s, b0)); c01 = f32x4.add(c01, f32x4.mul(s, b1));
    s = v128.load32_splat(a1, 4);
    c10 = f32x4.add(c10, f32x4.mul(s, b0)); c11 = f32x4.add(c11, f32x4.mul(s, b1));
    s = v128.load32_splat(a2, 4);
    c20 = f32x4.add(c20, f32x4.mul(s, b0)); c21 = f32x4.add(c21, f32x4.mul(s, b1));
    s = v128.load32_splat(a3, 4);
    c30 = f32x4.add(c30, f32x4.mul(s, b0)); c31 = f32x4.add(c31, f32x4.mul(s, b1));
    a0 += 8; a1 += 8; a2 += 8; a3 += 8; bp += 64;
  }
  if (K & 1) {
    const b0 = v128.load(bp), b1 = v128.load(bp, 16);
    let s = v128.load32_splat(a0);
    c00 = f32x4.add(c00, f32x4.mul(s, b0)); c01 = f32x4.add(c01, f32x4.mul(s, b1));
    s = v128.load32_splat(a1);
    c10 = f32x4.add(c10, f32x4.mul(s, b0)); c11 = f32x4.add(c11, f32x4.mul(s, b1));
    s = v128.load32_splat(a2);
    c20 = f32x4.add(c20, f32x4.mul(s, b0)); c21 = f32x4.add(c21, f32x4.mul(s, b1));
    s = v128.load32_splat(a3);
    c30 = f32x4.add(c30, f32x4.mul(s, b0)); c31 = f32x4.add(c31, f32x4.mul(s, b1));
  }
  storeRow8(c, c00, c01, nC, accumulate);
  storeRow8(c + cRow, c10, c11, nC, accumulate);
  storeRow8(c + 2 * cRow, c20, c21, nC, accumulate);
  storeRow8(c + 3 * cRow, c30, c31, nC, accumulate);
}

/** One row of the micro-kernel (row tails): C[0:8] (+)= Σ_k A[k]·B[k, 0:8]. */
function kernel1x8(c: usize, a: usize, aK: usize, b: usize, bK: usize, K: i32, nC: i32, accumulate: bool): void {
  let c0 = f32x4.splat(0), c1 = f32x4.splat(0), d0 = f32x4.splat(0), d1 = f32x4.splat(0);
  let ap = a, bp = b, k = 0;
  for (; k + 2 <= K; k += 2) {
    let s = v128.load32_splat(ap);
    c0 = f32x4.add(c0, f32x4.mul(s, v128.load(bp))); c1 = f32x4.add(c1, f32x4.mul(s, v128.load(bp, 16)));
    s = v128.load32_splat(ap + aK);
    d0 = f32x4.add(d0, f32x4.mul(s, v128.load(bp + bK))); d1 = f32x4.add(d1, f32x4.mul(s, v128.load(bp + bK, 16)));
    ap += 2 * aK; bp += 2 * bK;
  }
  if (k < K) {
    const s = v128.load32_splat(ap);
    c0 = f32x4.add(c0, f32x4.mul(s, v128.load(bp))); c1 = f32x4.add(c1, f32x4.mul(s, v128.load(bp, 16)));
  }
  storeRow8(c, f32x4.add(c0, d0), f32x4.add(c1, d1), nC, accumulate);
}

/** yTO = xTI · Wᵀ with W [O, I] of `dtype`; `scratch` holds MATMUL_SCRATCH_BYTES (16-byte aligned). */
export function matmul(y: usize, x: usize, w: usize, dtype: i32, T: i32, I: i32, O: i32, scratch: usize): void {
  if (T < 4) {
    for (let t = 0; t < T; t++) {
      const yt = y + (<usize>t * <usize>O << 2), xt = x + (<usize>t * <usize>I << 2);
      if (dtype == DT_F32) matvec(yt, xt, w, DT_F32, I, O);
      else if (dtype == DT_F16) matvec(yt, xt, w, DT_F16, I, O);
      else matvec(yt, xt, w, DT_BF16, I, O);
    }
    return;
  }
  const panel = scratch, tmp = scratch + (<usize>KC << 5);
  const nK = (I + KC - 1) / KC;
  const kcFull = (I + nK - 1) / nK; // split I evenly into nK blocks
  const xRow = <usize>I << 2, yRow = <usize>O << 2;
  for (let o0 = 0; o0 < O; o0 += 8) {
    const nO = min(8, O - o0);
    for (let k0 = 0; k0 < I; k0 += kcFull) {
      const kc = min(kcFull, I - k0);
      packPanel(panel, tmp, w, dtype, I, o0, nO, k0, kc);
      const accumulate = k0 > 0;
      let t = 0;
      for (; t + 4 <= T; t += 4) {
        kernel4x8Packed(y + <usize>t * yRow + (<usize>o0 << 2), yRow, x + <usize>t * xRow + (<usize>k0 << 2), xRow,
                        panel, kc, nO, accumulate);
      }
      for (; t < T; t++) {
        kernel1x8(y + <usize>t * yRow + (<usize>o0 << 2), x + <usize>t * xRow + (<usize>k0 << 2), 4, panel, 32,
                  kc, nO, accumulate);
      }
    }
  }
}

/** Backward of y = x·Wᵀ for the input: dX[T,I] = dY[T,O]·W[O,I] (f32 W). */
export function matmulBackwardX(dX: usize, dY: usize, w: usize, T: i32, I: i32, O: i32): void {
  const xRow = <usize>I << 2, yRow = <usize>O << 2;
  const I8 = I & ~7;
  for (let i0 = 0; i0 < I8; i0 += 8) {
    let t = 0;
    for (; t + 4 <= T; t += 4) {
      kernel4x8(dX + <usize>t * xRow + (<usize>i0 << 2), xRow, dY + <usize>t * yRow, yRow, 4,
                w + (<usize>i0 << 2), xRow, O, 8, false);
    }
    for (; t < T; t++) kernel1x8(dX + <usize>t * xRow + (<usize>i0 << 2), dY + <usize>t * yRow, 4, w + (<usize>i0 << 2), xRow, O, 8, false);
  }
  for (let t = 0; t < T; t++) { // column tail: the last I % 8 inputs
    for (let i = I8; i < I; i++) {
      let s: f32 = 0;
      for (let o = 0; o < O; o++) s += load<f32>(dY + <usize>t * yRow + (<usize>o << 2)) * load<f32>(w + <usize>o * xRow + (<usize>i << 2));
      store<f32>(dX + <usize>t * xRow + (<usize>i << 2), s);
    }
  }
}

/** Backward of y = x·Wᵀ for the weight: dW[O,I] += dY[T,O]ᵀ·X[T,I] (accumulates, llm.c style). */
export function matmulBackwardW(dW: usize, dY: usize, x: usize, T: i32, I: i32, O: i32): void {
  const xRow = <usize>I << 2, yRow = <usize>O << 2;
  const I8 = I & ~7;
  for (let i0 = 0; i0 < I8; i0 += 8) {
    let o = 0;
    for (; o + 4 <= O; o += 4) {
      // rows of A are outputs o (A[o, t] = dY[t, o]): row step 4 bytes, k step one dY row
      kernel4x8(dW + <usize>o * xRow + (<usize>i0 << 2), xRow, dY + (<usize>o << 2), 4, yRow,
                x + (<usize>i0 << 2), xRow, T, 8, true);
    }
    for (; o < O; o++) kernel1x8(dW + <usize>o * xRow + (<usize>i0 << 2), dY + (<usize>o << 2), yRow, x + (<usize>i0 << 2), xRow, T, 8, true);
  }
  for (let o = 0; o < O; o++) { // column tail
    for (let i = I8; i < I; i++) {
      let s: f32 = 0;
      for (let t = 0; t < T; t++) s += load<f32>(dY + <usize>t * yRow + (<usize>o << 2)) * load<f32>(x + <usize>t * xRow + (<usize>i << 2));
      const p = dW + <usize>o * xRow + (<usize>i << 2);
      store<f32>(p, load<f32>(p) + s);
    }
  }
}
