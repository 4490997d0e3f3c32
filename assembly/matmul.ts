// y = x·Wᵀ (F.linear without bias) for f32, f16 and bf16 weights W[O, I], and the two backward
// products used in training. Pointers are byte addresses into linear memory.
//
// Two algorithms, chosen by the number of tokens T:
//  * decode (T < 4): matrix-vector. Every weight is used once, so this is a read of W from
//    memory. Four output rows are computed per pass, one from each quarter of W: the weights are
//    read as four sequential streams, which the hardware prefetchers keep busier than one (the
//    measured stream rates: BENCHMARKS.md, "Figures cited in the source"), and every
//    load of x serves four rows. 16-bit weights are widened with integer SIMD on the fly
//    (half.ts); for f16 that widening, not memory, bounds the speed.
//  * prefill (T >= 4): register-blocked matrix-matrix. W is copied 8 rows at a time (widened to
//    f32, transposed) into a small packed panel [kc][8]; a 4x8 micro-kernel then computes 4 tokens
//    × 8 outputs with 8 f32x4 accumulators (broadcast x[t,k], multiply by panel row k). Widening
//    cost is paid once per weight, not once per token.

import { hsum } from "./simd";
import { DT_F32, DT_F16, DT_BF16, f16EvenBits, f16OddBits, bf16EvenBits, bf16OddBits, f16x4Exact, f16ToF32, bf16ToF32,
  widenRow } from "./half";

/** Largest k-block of the packed panel; the panel is KC·8 f32 (16 KB) and fits in L1. */
// @ts-ignore: decorator
@inline const KC: i32 = 512;
/** Floats of x per token block of the prefill path (128 KB: a block stays in L2 while W passes over it). */
// @ts-ignore: decorator
@inline const X_BLOCK_FLOATS: i32 = 32768;
/** Bytes of scratch `matmul` needs: the panel plus one widened row chunk of 8 rows (matmulBackwardW needs less). */
export const MATMUL_SCRATCH_BYTES: i32 = KC * 8 * 4 * 2;
/** Largest I for which the decode path's prepared copy of x fits in the scratch. */
// @ts-ignore: decorator
@inline const MAX_PREPARED_I: i32 = KC * 16;

/**
 * dtype code the caller passes for f16 weights it has checked to hold no Inf/NaN
 * (src/kernels/wasm/index.ts checks each matrix once). Only such matrices take the fast f16 decode
 * path, whose widening is exact for finite values only; others are widened exactly, all cases.
 */
// @ts-ignore: decorator
@inline export const DT_F16_FINITE: i32 = 3;
/**
 * 2^112 (f32 bits 0x77800000): the fast f16 widening (half.ts f16EvenBits/f16OddBits) shifts the
 * f16 bits into an f32's place without re-biasing the exponent, which leaves each value 2^-112 too
 * small; multiplying by this (exact, a power of two) restores it.
 */
// @ts-ignore: decorator
@inline const F16_FAST_SCALE: f32 = reinterpret<f32>(0x77800000);
/** Internal: the fast f16 path with x prepared unscaled (some |x| too large to pre-scale). */
// @ts-ignore: decorator
@inline const DT_F16_UNSCALED: i32 = 4;

/**
 * The decode path reads 8 weights at a time as one v128 of 16-bit values; the widening (half.ts)
 * gives the even-indexed weights (0, 2, 4, 6) as one f32x4 and the odd ones as another, so x is
 * prepared once per call in the same order: xq[8j .. 8j+8) = x[8j + (0, 2, 4, 6, 1, 3, 5, 7)],
 * times `scale`. The fast f16 widening leaves each weight 2^-112 too small; scaling x by 2^112
 * instead (exact, same products) removes a multiply from the inner loop. Returns false, having
 * prepared nothing, when scale ≠ 1 and some |x| >= 2^15 (x·2^112 would overflow; NaN too).
 */
function prepareX(xq: usize, x: usize, I8: i32, scale: f32): bool {
  const k = f32x4.splat(scale);
  if (scale != 1) {
    let ok = i32x4.splat(-1);
    const limit = f32x4.splat(32768);
    for (let i = 0; i < I8; i += 4) ok = v128.and(ok, f32x4.lt(f32x4.abs(v128.load(x + (<usize>i << 2))), limit));
    if (!v128.all_true<i32>(ok)) return false;
  }
  for (let i = 0; i < I8; i += 8) {
    const a = v128.load(x + (<usize>i << 2)), b = v128.load(x + (<usize>i << 2), 16);
    v128.store(xq + (<usize>i << 2), f32x4.mul(v128.shuffle<f32>(a, b, 0, 2, 4, 6), k));
    v128.store(xq + (<usize>i << 2), f32x4.mul(v128.shuffle<f32>(a, b, 1, 3, 5, 7), k), 16);
  }
  return true;
}

/** Σ over 8 weights at wp of w·x, as an f32x4 of partial sums; xe, xo: x for the even, odd weights. */
// @ts-ignore: decorator
@inline function dot8(dtype: i32, wp: usize, xe: v128, xo: v128): v128 {
  if (dtype == DT_F32) { // x in natural order: xe = x[0..4), xo = x[4..8)
    return f32x4.add(f32x4.mul(v128.load(wp), xe), f32x4.mul(v128.load(wp, 16), xo));
  }
  const h = v128.load(wp);
  if (dtype == DT_BF16) return f32x4.add(f32x4.mul(bf16EvenBits(h), xe), f32x4.mul(bf16OddBits(h), xo));
  let even = f16EvenBits(h), odd = f16OddBits(h); // the values · 2^-112
  if (dtype == DT_F16_UNSCALED) {
    even = f32x4.mul(even, f32x4.splat(F16_FAST_SCALE));
    odd = f32x4.mul(odd, f32x4.splat(F16_FAST_SCALE));
  }
  return f32x4.add(f32x4.mul(even, xe), f32x4.mul(odd, xo));
}

/** x[i]·W[row, i] summed over the last columns i in [I8, I) (scalar, exact widening, natural x). */
// @ts-ignore: decorator
@inline function dotTail(dtype: i32, x: usize, wRow: usize, I8: i32, I: i32): f32 {
  let s: f32 = 0;
  for (let i = I8; i < I; i++) {
    const xi = load<f32>(x + (<usize>i << 2));
    if (dtype == DT_F32) s += xi * load<f32>(wRow + (<usize>i << 2));
    else if (dtype == DT_BF16) s += xi * bf16ToF32(<u32>load<u16>(wRow + (<usize>i << 1)));
    else s += xi * f16ToF32(<u32>load<u16>(wRow + (<usize>i << 1)));
  }
  return s;
}

/**
 * Decode: y[O] = W[O, I]·x[I]. xq is x prepared by prepareX (for f32 weights, x itself).
 * Rows o, o+Q, o+2Q, o+3Q (Q = floor(O/4)) are computed together, then the last O - 4Q rows one
 * at a time.
 */
// @ts-ignore: decorator
@inline function matvec(dtype: i32, y: usize, x: usize, xq: usize, w: usize, I: i32, O: i32): void {
  const I8 = I & ~7;
  const rowBytes = <usize>I << (dtype == DT_F32 ? 2 : 1);
  const step: usize = dtype == DT_F32 ? 32 : 16; // bytes of 8 weights
  const xqEnd = xq + (<usize>I8 << 2);
  const Q = O >> 2;
  const quarter = <usize>Q * rowBytes;
  for (let o = 0; o < Q; o++) {
    let w0 = w + <usize>o * rowBytes, w1 = w0 + quarter, w2 = w1 + quarter, w3 = w2 + quarter;
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
    for (let xp = xq; xp < xqEnd; xp += 32) {
      const xe = v128.load(xp), xo = v128.load(xp, 16);
      a0 = f32x4.add(a0, dot8(dtype, w0, xe, xo));
      a1 = f32x4.add(a1, dot8(dtype, w1, xe, xo));
      a2 = f32x4.add(a2, dot8(dtype, w2, xe, xo));
      a3 = f32x4.add(a3, dot8(dtype, w3, xe, xo));
      w0 += step; w1 += step; w2 += step; w3 += step;
    }
    const r0 = w + <usize>o * rowBytes;
    store<f32>(y + (<usize>o << 2), hsum(a0) + dotTail(dtype, x, r0, I8, I));
    store<f32>(y + (<usize>(o + Q) << 2), hsum(a1) + dotTail(dtype, x, r0 + quarter, I8, I));
    store<f32>(y + (<usize>(o + 2 * Q) << 2), hsum(a2) + dotTail(dtype, x, r0 + 2 * quarter, I8, I));
    store<f32>(y + (<usize>(o + 3 * Q) << 2), hsum(a3) + dotTail(dtype, x, r0 + 3 * quarter, I8, I));
  }
  for (let o = 4 * Q; o < O; o++) {
    const r = w + <usize>o * rowBytes;
    let a = f32x4.splat(0), wp = r;
    for (let xp = xq; xp < xqEnd; xp += 32) {
      a = f32x4.add(a, dot8(dtype, wp, v128.load(xp), v128.load(xp, 16)));
      wp += step;
    }
    store<f32>(y + (<usize>o << 2), hsum(a) + dotTail(dtype, x, r, I8, I));
  }
}

/** Σ_i x[i]·W[row, i] for one f16 row, widened exactly in all cases (matrices holding Inf/NaN). */
function dotRowF16Exact(x: usize, wRow: usize, I: i32): f32 {
  let a = f32x4.splat(0), b = f32x4.splat(0);
  let i = 0;
  for (; i + 8 <= I; i += 8) {
    const h = v128.load(wRow + (<usize>i << 1));
    a = f32x4.add(a, f32x4.mul(v128.load(x + (<usize>i << 2)), f16x4Exact(i32x4.extend_low_i16x8_u(h))));
    b = f32x4.add(b, f32x4.mul(v128.load(x + (<usize>i << 2), 16), f16x4Exact(i32x4.extend_high_i16x8_u(h))));
  }
  return hsum(f32x4.add(a, b)) + dotTail(DT_F16, x, wRow, i, I);
}

/** Decode for one token: y[O] = W·x with W of `dtype`; `scratch` holds the prepared x. */
function matvecAny(y: usize, x: usize, w: usize, dtype: i32, I: i32, O: i32, scratch: usize): void {
  const I8 = I & ~7;
  if (dtype == DT_F32) {
    matvec(DT_F32, y, x, x, w, I, O);
  } else if (I8 > MAX_PREPARED_I) { // x's prepared copy would not fit in the scratch (never in MobileLLM)
    for (let o = 0; o < O; o++) {
      const r = w + (<usize>o * <usize>I << 1);
      store<f32>(y + (<usize>o << 2), dtype == DT_BF16 ? dotTail(DT_BF16, x, r, 0, I) : dotRowF16Exact(x, r, I));
    }
  } else if (dtype == DT_BF16) {
    prepareX(scratch, x, I8, 1);
    matvec(DT_BF16, y, x, scratch, w, I, O);
  } else if (dtype == DT_F16_FINITE && prepareX(scratch, x, I8, F16_FAST_SCALE)) { // x · 2^112
    matvec(DT_F16_FINITE, y, x, scratch, w, I, O);
  } else if (dtype == DT_F16_FINITE) { // some |x| too large to pre-scale
    prepareX(scratch, x, I8, 1);
    matvec(DT_F16_UNSCALED, y, x, scratch, w, I, O);
  } else { // f16 that may hold Inf/NaN: the exact widening
    for (let o = 0; o < O; o++) store<f32>(y + (<usize>o << 2), dotRowF16Exact(x, w + (<usize>o * <usize>I << 1), I));
  }
}

/** 1 if the n f16 values at p hold no Inf or NaN (exponent bits all ones), else 0. */
export function f16AllFinite(p: usize, n: i32): i32 {
  // as unsigned 16-bit numbers the negative Inf/NaN patterns are the largest (>= 0xfc00); as
  // signed ones the positive Inf/NaN patterns are (>= 0x7c00)
  let maxU = i16x8.splat(0), maxS = i16x8.splat(0);
  let i = 0;
  for (; i + 8 <= n; i += 8) {
    const h = v128.load(p + (<usize>i << 1));
    maxU = i16x8.max_u(maxU, h); maxS = i16x8.max_s(maxS, h);
  }
  if (v128.any_true(v128.or(i16x8.ge_u(maxU, i16x8.splat(<i16>0xfc00)), i16x8.ge_s(maxS, i16x8.splat(<i16>0x7c00))))) return 0;
  for (; i < n; i++) if ((<u32>load<u16>(p + (<usize>i << 1)) & 0x7c00) == 0x7c00) return 0;
  return 1;
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

/**
 * yTO = xTI · Wᵀ with W [O, I] of `dtype` (DT_F32, DT_F16, DT_BF16, or DT_F16_FINITE for f16
 * checked by f16AllFinite); `scratch` holds MATMUL_SCRATCH_BYTES (16-byte aligned).
 */
export function matmul(y: usize, x: usize, w: usize, dtype: i32, T: i32, I: i32, O: i32, scratch: usize): void {
  matmulRows(y, x, w, dtype, T, I, O, 0, O, scratch);
}

/**
 * `matmul` restricted to the output rows (columns of y) [oBegin, oEnd): what one thread computes
 * (src/kernels/wasm/pool.ts). Every y[t, o] is the same sum in the same order whatever the range,
 * so any split of O across threads gives bit-identical results. Each thread needs its own scratch.
 */
export function matmulRows(y: usize, x: usize, w: usize, dtype: i32, T: i32, I: i32, O: i32,
                           oBegin: i32, oEnd: i32, scratch: usize): void {
  if (I <= 0) { // empty sums
    for (let t = 0; t < T; t++) memory.fill(y + ((<usize>t * <usize>O + <usize>oBegin) << 2), 0, <usize>(oEnd - oBegin) << 2);
    return;
  }
  if (T < 4) { // decode: rows [oBegin, oEnd) of W are a matrix of their own
    const wRows = w + (<usize>oBegin * <usize>I << (dtype == DT_F32 ? 2 : 1));
    for (let t = 0; t < T; t++) {
      matvecAny(y + ((<usize>t * <usize>O + <usize>oBegin) << 2), x + (<usize>t * <usize>I << 2), wRows, dtype, I,
                oEnd - oBegin, scratch);
    }
    return;
  }
  matmulPrefill(y, x, w, dtype, T, I, O, oBegin, oEnd, scratch);
}

/** The prefill path of matmulRows (any T >= 1 here: a token range of a call with T >= 4 may hold fewer). */
function matmulPrefill(y: usize, x: usize, w: usize, dtype: i32, T: i32, I: i32, O: i32, oBegin: i32, oEnd: i32,
                       scratch: usize): void {
  if (dtype == DT_F16_FINITE) dtype = DT_F16;
  const panel = scratch, tmp = scratch + (<usize>KC << 5);
  const nK = (I + KC - 1) / KC;
  const kcFull = (I + nK - 1) / nK; // split I evenly into nK blocks
  const xRow = <usize>I << 2, yRow = <usize>O << 2;
  // f32 weights: tokens in blocks of about 128 KB of x, so that the block stays in cache while
  // every panel of W passes over it (the panels are copied again per block: a small cost beside
  // the products; 16-bit weights would be widened again, so they keep one block).
  const TB = dtype == DT_F32 ? max(4, (X_BLOCK_FLOATS / I) & ~3) : T;
  for (let tb0 = 0; tb0 < T; tb0 += TB) {
    const tbEnd = min(T, tb0 + TB);
    for (let o0 = oBegin; o0 < oEnd; o0 += 8) {
      const nO = min(8, oEnd - o0);
      for (let k0 = 0; k0 < I; k0 += kcFull) {
        const kc = min(kcFull, I - k0);
        packPanel(panel, tmp, w, dtype, I, o0, nO, k0, kc);
        const accumulate = k0 > 0;
        let t = tb0;
        for (; t + 4 <= tbEnd; t += 4) {
          kernel4x8(y + <usize>t * yRow + (<usize>o0 << 2), yRow, x + <usize>t * xRow + (<usize>k0 << 2), xRow, 4,
                    panel, 32, kc, nO, accumulate);
        }
        for (; t < tbEnd; t++) {
          kernel1x8(y + <usize>t * yRow + (<usize>o0 << 2), x + <usize>t * xRow + (<usize>k0 << 2), 4, panel, 32,
                    kc, nO, accumulate);
        }
      }
    }
  }
}

/**
 * `matmul` (prefill path, T >= 4 in the whole call) restricted to the tokens [tBegin, tEnd): the
 * split for training's long batches (src/kernels/wasm/index.ts), where every thread then reads
 * only its own rows of x and writes only its own rows of y (split by outputs, each thread would
 * read all of x and write a few floats of every row of y, cache lines shared with the other
 * threads). tBegin must be a multiple of 4 and tEnd a multiple of 4 or T: then every token goes
 * through the micro-kernel (4 tokens, or the 1-token tail) it takes in the whole call, with the
 * same k blocks, so results are bit-identical to it. Each thread needs its own scratch.
 */
export function matmulTokens(y: usize, x: usize, w: usize, dtype: i32, T: i32, I: i32, O: i32,
                             tBegin: i32, tEnd: i32, scratch: usize): void {
  if (T < 4 || I <= 0) { // the whole call would not take the prefill path: one range only (the caller's guard)
    if (tBegin == 0 && tEnd == T) matmulRows(y, x, w, dtype, T, I, O, 0, O, scratch);
    else unreachable();
    return;
  }
  matmulPrefill(y + (<usize>tBegin * <usize>O << 2), x + (<usize>tBegin * <usize>I << 2), w, dtype, tEnd - tBegin, I, O,
                0, O, scratch);
}

/** Backward of y = x·Wᵀ for the input: dX[T,I] = dY[T,O]·W[O,I] (f32 W). */
export function matmulBackwardX(dX: usize, dY: usize, w: usize, T: i32, I: i32, O: i32): void {
  matmulBackwardXCols(dX, dY, w, T, I, O, 0, I);
}

/**
 * matmulBackwardX for the input columns [iBegin, iEnd) only (one thread's share). iBegin must be
 * a multiple of 8 and iEnd a multiple of 8 or I: then every column is computed by the same code
 * (8-wide blocks below I & ~7, the scalar tail above) as in the whole call, so results are
 * bit-identical to it.
 */
export function matmulBackwardXCols(dX: usize, dY: usize, w: usize, T: i32, I: i32, O: i32, iBegin: i32, iEnd: i32): void {
  const xRow = <usize>I << 2, yRow = <usize>O << 2;
  const I8 = min(I & ~7, iEnd);
  // tokens outside, columns inside: four rows of dY (O floats each) stay in cache while every
  // column block of the range uses them (W, O·I floats, is the smaller operand in training)
  let t = 0;
  for (; t + 4 <= T; t += 4) {
    for (let i0 = iBegin; i0 < I8; i0 += 8) {
      kernel4x8(dX + <usize>t * xRow + (<usize>i0 << 2), xRow, dY + <usize>t * yRow, yRow, 4,
                w + (<usize>i0 << 2), xRow, O, 8, false);
    }
  }
  for (; t < T; t++) {
    for (let i0 = iBegin; i0 < I8; i0 += 8) {
      kernel1x8(dX + <usize>t * xRow + (<usize>i0 << 2), dY + <usize>t * yRow, 4, w + (<usize>i0 << 2), xRow, O, 8, false);
    }
  }
  for (let t = 0; t < T; t++) { // column tail: the last I % 8 inputs
    for (let i = max(I & ~7, iBegin); i < iEnd; i++) {
      let s: f32 = 0;
      for (let o = 0; o < O; o++) s += load<f32>(dY + <usize>t * yRow + (<usize>o << 2)) * load<f32>(w + <usize>o * xRow + (<usize>i << 2));
      store<f32>(dX + <usize>t * xRow + (<usize>i << 2), s);
    }
  }
}

/**
 * matmulBackwardX for the tokens [tBegin, tEnd) only (training's split: each thread reads its own
 * rows of dY and writes its own rows of dX). tBegin must be a multiple of 4 and tEnd a multiple
 * of 4 or T: then every row goes through the kernel (4 rows, or the 1-row tail) it takes in the
 * whole call, so results are bit-identical to it.
 */
export function matmulBackwardXTokens(dX: usize, dY: usize, w: usize, T: i32, I: i32, O: i32, tBegin: i32, tEnd: i32): void {
  matmulBackwardXCols(dX + (<usize>tBegin * <usize>I << 2), dY + (<usize>tBegin * <usize>O << 2), w, tEnd - tBegin, I, O, 0, I);
}

/**
 * Rows of dY and x per pass of matmulBackwardW. The sums run down T; over a training batch (T = B·seq,
 * thousands) the rows would fall out of cache before they are reused, so T is cut into blocks
 * whose partial sums are added into dW one block after another (the same order on every thread count).
 */
// @ts-ignore: decorator
@inline const BACKWARD_W_ROWS: i32 = 64;

/** Backward of y = x·Wᵀ for the weight: dW[O,I] += dY[T,O]ᵀ·X[T,I] (accumulates, llm.c style). */
export function matmulBackwardW(dW: usize, dY: usize, x: usize, T: i32, I: i32, O: i32, scratch: usize): void {
  matmulBackwardWRows(dW, dY, x, T, I, O, 0, O, scratch);
}

/**
 * matmulBackwardW for the weight rows [oBegin, oEnd) only (one thread's share, with its scratch).
 * oBegin must be a multiple of 4 and oEnd a multiple of 4 or O, so rows go through the 4-row and
 * 1-row kernels exactly as in the whole call (bit-identical results). For each block of T rows,
 * the 4 columns of dY that four weight rows need are first copied side by side into the scratch
 * ([t][4], 1 KB): read in place they sit one dY row apart, and with O a power of two those rows
 * all fall into the same few cache sets.
 */
export function matmulBackwardWRows(dW: usize, dY: usize, x: usize, T: i32, I: i32, O: i32, oBegin: i32, oEnd: i32,
                                    scratch: usize): void {
  const xRow = <usize>I << 2, yRow = <usize>O << 2;
  const I8 = I & ~7;
  for (let t0 = 0; t0 < T; t0 += BACKWARD_W_ROWS) {
    const tb = min(BACKWARD_W_ROWS, T - t0);
    const dYb = dY + <usize>t0 * yRow, xb = x + <usize>t0 * xRow;
    let o = oBegin;
    for (; o + 4 <= oEnd; o += 4) {
      for (let t = 0; t < tb; t++) v128.store(scratch + (<usize>t << 4), v128.load(dYb + <usize>t * yRow + (<usize>o << 2)));
      // rows of A are outputs o..o+3 (A[o, t] = dY[t, o]): row step 4 bytes, k step 16
      for (let i0 = 0; i0 < I8; i0 += 8) {
        kernel4x8(dW + <usize>o * xRow + (<usize>i0 << 2), xRow, scratch, 4, 16, xb + (<usize>i0 << 2), xRow, tb, 8, true);
      }
    }
    for (; o < oEnd; o++) {
      for (let i0 = 0; i0 < I8; i0 += 8) {
        kernel1x8(dW + <usize>o * xRow + (<usize>i0 << 2), dYb + (<usize>o << 2), yRow, xb + (<usize>i0 << 2), xRow, tb, 8, true);
      }
    }
    for (let o = oBegin; o < oEnd; o++) { // column tail
      for (let i = I8; i < I; i++) {
        let s: f32 = 0;
        for (let t = 0; t < tb; t++) s += load<f32>(dYb + <usize>t * yRow + (<usize>o << 2)) * load<f32>(xb + <usize>t * xRow + (<usize>i << 2));
        const p = dW + <usize>o * xRow + (<usize>i << 2);
        store<f32>(p, load<f32>(p) + s);
      }
    }
  }
}
