// y = x·Wᵀ (F.linear without bias) for f32, f16 and bf16 weights W[O, I], and the two backward
// products used in training. Pointers are byte addresses into linear memory.
//
// Two algorithms, chosen by the number of tokens T:
//  * decode (T < 4): matrix-vector. Every weight is used once, so this is a streaming read of W,
//    done one row at a time so W is a single sequential stream (x, a few KB, stays in L1).
//    f16 weights are widened with integer SIMD on the fly (see half.ts); that widening, not
//    memory, bounds f16 decode speed when W is cache-resident.
//  * prefill (T >= 4): register-blocked matrix-matrix. W is copied 8 rows at a time (widened to
//    f32, transposed) into a small packed panel [kc][8]; a 4x8 micro-kernel then computes 4 tokens
//    × 8 outputs with 8 f32x4 accumulators (broadcast x[t,k], multiply by panel row k). Widening
//    cost is paid once per weight, not once per token.

import { hsum } from "./simd";
import { DT_F32, DT_F16, DT_BF16, f16HighHalves, f16LowHalves, f16Finish, f16x4Exact, f16TrackMax, f16NonFinite, f16ToF32, bf16ToF32, widenRow } from "./half";

/** Largest k-block of the packed panel; the panel is KC·8 f32 (16 KB) and fits in L1. */
// @ts-ignore: decorator
@inline const KC: i32 = 512;
/** Bytes of scratch `matmul` needs: the panel plus one widened row chunk of 8 rows. */
export const MATMUL_SCRATCH_BYTES: i32 = KC * 8 * 4 * 2;

/**
 * Internal dtype of the f16 matvec when x was pre-multiplied by 2^112: the fast f16 widening
 * leaves each weight 2^112 too small, and x·2^112 · w·2^-112 is the same product (exactly the
 * same f32 rounding), so the per-weight "· 2^112" disappears from the inner loop.
 */
// @ts-ignore: decorator
@inline const DT_F16_XSCALED: i32 = 3;

/** xs = x · 2^112 if every |x| < 2^15 (so xs stays finite, and exact); returns false otherwise. */
function scaleBy2p112(xs: usize, x: usize, n: i32): bool {
  const limit = f32x4.splat(32768);
  const k = f32x4.splat(reinterpret<f32>(0x77800000));
  let ok = i32x4.splat(-1);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const v = v128.load(x + (<usize>i << 2));
    ok = v128.and(ok, f32x4.lt(f32x4.abs(v), limit)); // false for NaN too
    v128.store(xs + (<usize>i << 2), f32x4.mul(v, k));
  }
  let allOk = v128.all_true<i32>(ok);
  for (; i < n; i++) {
    const v = load<f32>(x + (<usize>i << 2));
    allOk = allOk && abs(v) < 32768;
    store<f32>(xs + (<usize>i << 2), v * reinterpret<f32>(0x77800000));
  }
  return allOk;
}

/** f32 lanes of fast-widened f16 bits: · 2^112, unless x was pre-scaled instead. */
// @ts-ignore: decorator
@inline function f16Lanes(bits: v128, dtype: i32): v128 {
  return dtype == DT_F16_XSCALED ? bits : f16Finish(bits);
}

/** Σ_i x[i]·W[row, i] for one f16 row with the exact widening (for rows holding Inf/NaN). */
function dotRowF16Exact(x: usize, w: usize, row: usize, I: i32): f32 {
  const wRow = w + ((row * <usize>I) << 1);
  let a = f32x4.splat(0), b = f32x4.splat(0);
  let i = 0;
  for (; i + 8 <= I; i += 8) {
    const h = v128.load(wRow + (<usize>i << 1));
    a = f32x4.add(a, f32x4.mul(v128.load(x + (<usize>i << 2)), f16x4Exact(i32x4.extend_low_i16x8_u(h))));
    b = f32x4.add(b, f32x4.mul(v128.load(x + (<usize>i << 2), 16), f16x4Exact(i32x4.extend_high_i16x8_u(h))));
  }
  let s = hsum(f32x4.add(a, b));
  for (; i < I; i++) s += load<f32>(x + (<usize>i << 2)) * f16ToF32(<u32>load<u16>(wRow + (<usize>i << 1)));
  return s;
}

/**
 * Decode with f32 weights: one row at a time, so W is read as a single sequential stream (like
 * the streaming baseline); x (a few KB) stays in L1. 16 weights per step, 4 accumulators.
 */
function matvecF32(y: usize, x: usize, w: usize, I: i32, O: i32): void {
  const I16 = I & ~15;
  const rowBytes = <usize>I << 2;
  const xEnd = x + (<usize>I16 << 2);
  let wp = w;
  for (let o = 0; o < O; o++) {
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
    let p = wp;
    for (let xp = x; xp < xEnd; xp += 64) {
      a0 = f32x4.add(a0, f32x4.mul(v128.load(p), v128.load(xp)));
      a1 = f32x4.add(a1, f32x4.mul(v128.load(p, 16), v128.load(xp, 16)));
      a2 = f32x4.add(a2, f32x4.mul(v128.load(p, 32), v128.load(xp, 32)));
      a3 = f32x4.add(a3, f32x4.mul(v128.load(p, 48), v128.load(xp, 48)));
      p += 64;
    }
    let s = hsum(f32x4.add(f32x4.add(a0, a1), f32x4.add(a2, a3)));
    for (let i = I16; i < I; i++) s += load<f32>(x + (<usize>i << 2)) * load<f32>(wp + (<usize>i << 2));
    store<f32>(y + (<usize>o << 2), s);
    wp += rowBytes;
  }
}

/**
 * Decode with f16 weights, one row at a time (W read as one sequential stream). `xs` is x·2^112
 * (see DT_F16_XSCALED) or x itself (then each widened weight is multiplied by 2^112).
 */
// @ts-ignore: decorator
@inline function matvecF16(y: usize, x: usize, xs: usize, w: usize, I: i32, O: i32, dtype: i32): void {
  const I8 = I & ~7;
  const rowBytes = <usize>I << 1;
  const xsEnd = xs + (<usize>I8 << 2);
  let wp = w;
  for (let o = 0; o < O; o++) {
    let a = f32x4.splat(0), b = f32x4.splat(0);
    let maxBits = i16x8.splat(0);
    let p = wp;
    for (let xp = xs; xp < xsEnd; xp += 32) {
      const h = v128.load(p);
      const hi = f16HighHalves(h), lo = f16LowHalves(h);
      a = f32x4.add(a, f32x4.mul(f16Lanes(i16x8.shuffle(lo, hi, 0, 8, 1, 9, 2, 10, 3, 11), dtype), v128.load(xp)));
      b = f32x4.add(b, f32x4.mul(f16Lanes(i16x8.shuffle(lo, hi, 4, 12, 5, 13, 6, 14, 7, 15), dtype), v128.load(xp, 16)));
      maxBits = f16TrackMax(maxBits, h);
      p += 16;
    }
    let s = hsum(f32x4.add(a, b));
    for (let i = I8; i < I; i++) s += load<f32>(x + (<usize>i << 2)) * f16ToF32(<u32>load<u16>(wp + (<usize>i << 1)));
    // an Inf/NaN weight in this row: the fast widening is wrong for it, redo the row exactly
    if (f16NonFinite(maxBits)) s = dotRowF16Exact(x, w, <usize>o, I);
    store<f32>(y + (<usize>o << 2), s);
    wp += rowBytes;
  }
}

/** Decode with bf16 weights, one row at a time: bf16 -> f32 is an interleave with zero halves. */
function matvecBF16(y: usize, x: usize, w: usize, I: i32, O: i32): void {
  const I8 = I & ~7;
  const rowBytes = <usize>I << 1;
  const xEnd = x + (<usize>I8 << 2);
  const z = i16x8.splat(0);
  let wp = w;
  for (let o = 0; o < O; o++) {
    let a = f32x4.splat(0), b = f32x4.splat(0);
    let p = wp;
    for (let xp = x; xp < xEnd; xp += 32) {
      const h = v128.load(p);
      a = f32x4.add(a, f32x4.mul(i16x8.shuffle(z, h, 0, 8, 1, 9, 2, 10, 3, 11), v128.load(xp)));
      b = f32x4.add(b, f32x4.mul(i16x8.shuffle(z, h, 4, 12, 5, 13, 6, 14, 7, 15), v128.load(xp, 16)));
      p += 16;
    }
    let s = hsum(f32x4.add(a, b));
    for (let i = I8; i < I; i++) s += load<f32>(x + (<usize>i << 2)) * bf16ToF32(<u32>load<u16>(wp + (<usize>i << 1)));
    store<f32>(y + (<usize>o << 2), s);
    wp += rowBytes;
  }
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
      if (dtype == DT_F32) matvecF32(yt, xt, w, I, O);
      else if (dtype == DT_BF16) matvecBF16(yt, xt, w, I, O);
      else if (I <= KC * 16 && scaleBy2p112(scratch, xt, I)) matvecF16(yt, xt, scratch, w, I, O, DT_F16_XSCALED);
      else matvecF16(yt, xt, xt, w, I, O, DT_F16);
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
        kernel4x8(y + <usize>t * yRow + (<usize>o0 << 2), yRow, x + <usize>t * xRow + (<usize>k0 << 2), xRow, 4,
                  panel, 32, kc, nO, accumulate);
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
