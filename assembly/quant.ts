// y = x·Wᵀ for block-quantized weights W[O, I] (q8_0 / q4_0, GGUF's block layout: see
// src/kernels/quant.ts), decode and prefill, for the output rows [o0, o1) only — so a pool of
// threads can split one product by rows; every row's result is the same however it is split.
//
// The activations are quantized first, per block of 32, to int8 (as llama.cpp does: q8_0 × q8_0):
// d_x = amax/127 kept in f32, q = x·(1/d_x) rounded to nearest, ties to even (f32x4.nearest — the
// rounding llama.cpp's x86/ARM activation quantizers use; src/kernels/quant.ts
// quantizeActivations is the reference and must match this bit for bit). Then each block's
// 32 products are summed EXACTLY in integers (|q_w·q_x| <= 127·127, 32 of them fit an i32): the
// int8 values are widened to i16 and multiplied pairwise with i32x4.dot_i16x8_s. Only the block
// sums are scaled, by d_w·d_x, and accumulated in f32.
//
//  * decode (T < 4): four output rows per pass, one from each quarter of [o0, o1) (four DRAM
//    streams, as matmul.ts does for f16), sharing the x loads; their four block sums are gathered
//    into one i32x4 so the four f16 scales are widened and applied with single vector operations,
//    and (q4_0) the offset 8 is taken out once for the four rows: Σ (n − 8)·x = Σ n·x − 8·Σx.
//  * prefill (T >= 4): four tokens per pass over one weight row: each weight block is widened
//    once and used for four tokens; the four token sums are gathered the same way.
//  * q4_0 matrices the wasm backend has rewritten into groups of four rows (DT_Q4_0X4, below):
//    the same per-row arithmetic without the gathering — the four rows' sums come out of the
//    multiplies lane by lane. The two kernels above stay for q8_0, for rows past the last group,
//    and as the plain version of the grouped ones.
//
// The x chunk (quantized values + f32 scales) lives in `scratch` (QMATMUL_SCRATCH_BYTES); longer
// inputs are processed in chunks of tokens, each token's row being independent.
//
// Relaxed SIMD (the second build, build/kernels-relaxed*.wasm, chosen at load where the runtime
// validates it and relaxedSimdSelfTest passes): the block dot is i32x4.relaxed_dot_i8x16_i7x16_add_s (x86 pmaddubsw + pmaddwd)
// on int8 x directly — no widening to i16. Its second operand must be 7-bit, so it is |x|, with x's
// sign moved onto the weight (w·x = (w·sign x)·|x|; |w| <= 127 so the negation is exact; |x| and
// the sign masks are stored by quantizeX, once per activation block rather than per row); q4_0
// weights enter as their nibbles 0..15 and the −8 offset is applied as −8·Σx (8·Σx kept with x).
// Pair sums stay below 2^15 (2·127·127), so nothing saturates: the integer block sums, and hence
// every output bit, are the same as the baseline build's.

/** matmul dtype codes of the block formats (after half.ts's DT_F32/DT_F16/DT_BF16 and matmul.ts's 3, 4). */
// @ts-ignore: decorator
@inline export const DT_Q8_0: i32 = 5;
// @ts-ignore: decorator
@inline export const DT_Q4_0: i32 = 6;

/** Values per block; bytes per q8_0 and q4_0 block. */
// @ts-ignore: decorator
@inline const QK: i32 = 32;
// @ts-ignore: decorator
@inline const Q8_BYTES: i32 = 34;
// @ts-ignore: decorator
@inline const Q4_BYTES: i32 = 18;

/** The relaxed-SIMD build (see above): x stored as |x| and sign masks (int8) instead of i16. */
// @ts-ignore: decorator
@inline const RELAXED: bool = ASC_FEATURE_RELAXED_SIMD;
/** Bytes of one block of quantized x (32 i16; relaxed: 32 |x| then 32 sign masks). */
// @ts-ignore: decorator
@inline const XB: i32 = 64;

/** Bytes of one token's quantized x: the blocks, then the q4_0 offset 8·Σx of each block as i32 (Q4_OFFSET_SHIFT). */
// @ts-ignore: decorator
@inline function xRowBytes(I: i32): i32 {
  return (I << 1) + ((I / QK) << 2);
}

/** Bytes of scratch matmulQuant needs: the quantized activations of a chunk of tokens. */
export const QMATMUL_SCRATCH_BYTES: i32 = 256 * 1024;

/** Integer [Σa, Σb, Σc, Σd] of four i32x4 (a 4x4 transpose folded into adds; exact). */
// @ts-ignore: decorator
@inline function hsum4i(a: v128, b: v128, c: v128, d: v128): v128 {
  const ab = i32x4.add(v128.shuffle<i32>(a, b, 0, 4, 1, 5), v128.shuffle<i32>(a, b, 2, 6, 3, 7));
  const cd = i32x4.add(v128.shuffle<i32>(c, d, 0, 4, 1, 5), v128.shuffle<i32>(c, d, 2, 6, 3, 7));
  return i32x4.add(v128.shuffle<i32>(ab, cd, 0, 1, 4, 5), v128.shuffle<i32>(ab, cd, 2, 3, 6, 7));
}

/**
 * Four finite f16 bit patterns, in the HIGH halves of i32 lanes (h << 16: loaded into the odd i16
 * lanes), to f32 (exact, subnormals too): the f16's sign, exponent and mantissa moved into place
 * read as an f32 that is the value · 2^-112; one multiply by 2^112 restores it. The arithmetic
 * shift by 3 moves exponent and mantissa into place and copies the sign into bits 28-30, which
 * the mask clears. Scales of blocks are finite (the loader checks).
 */
// @ts-ignore: decorator
@inline function f16x4HighFinite(h16: v128): v128 {
  const bits = v128.and(i32x4.shr_s(h16, 3), v128.load(F16_CONSTS));
  return f32x4.mul(bits, v128.load(F16_CONSTS, 16));
}
/** f16x4HighFinite's two constants in memory: loaded in the loop rather than rebuilt by the engine each pass. */
const F16_CONSTS = memory.data<u32>([0x8fffffff, 0x8fffffff, 0x8fffffff, 0x8fffffff, 0x77800000, 0x77800000, 0x77800000, 0x77800000], 16);

/**
 * q4_0 block sums Σ (n − 8)·x from blockDot's sums of four rows or tokens (`raw`, one per lane)
 * and the matching offsets (`off`), exact. Baseline build: raw = 256·Σ n·x (blockDot) and
 * off = 256·8·Σx (quantizeX stores it so scaled), so subtract and shift the exact multiple of 256
 * back down; relaxed build: raw = Σ n·x and off = 8·Σx.
 */
// @ts-ignore: decorator
@inline function q4Sums(raw: v128, off: v128): v128 {
  if (RELAXED) return i32x4.sub(raw, off);
  return i32x4.shr_s(i32x4.sub(raw, off), 8);
}

/** The same for one row and token (scalars). */
// @ts-ignore: decorator
@inline function q4Sum(raw: i32, off: i32): i32 {
  return RELAXED ? raw - off : (raw - off) >> 8;
}

/** What quantizeX stores after a token's blocks, per block: the q4_0 offset 8·Σx, scaled by 256 in
 * the baseline build to match blockDot's scaled sums (|256·8·Σx| <= 2^11·32·127 < 2^23). */
// @ts-ignore: decorator
@inline const Q4_OFFSET_SHIFT: i32 = RELAXED ? 3 : 11;

/** One finite f16 to f32 (same trick, scalar). */
// @ts-ignore: decorator
@inline function f16Finite(h: u32): f32 {
  return reinterpret<f32>(((h & 0x7fff) << 13) | ((h & 0x8000) << 16)) * reinterpret<f32>(0x77800000);
}

/**
 * Quantize x[T, I] (I a multiple of 32) per block: xq[t, i] as i16 (relaxed build: int8), then the
 * q4_0 offset 8·Σx per block (row stride xRowBytes(I)), and dx[b·T + t] = amax/127 (f32; token-minor so four
 * tokens' scales are one v128 load). For q4_0 weights (baseline build) each block's x is stored
 * in the order, and at the scale, in which blockDot finds its nibbles in i16 lanes:
 * 256·(x0,x2..x14) | x1,x3..x15 | 16·(x16,x18..x30) | 256·(x17,x19..x31).
 */
function quantizeX(xq: usize, dx: usize, x: usize, T: i32, I: i32, dtype: i32): void {
  const B = I / QK;
  for (let t = 0; t < T; t++) {
    for (let b = 0; b < B; b++) {
      const xp = x + ((<usize>t * <usize>I + <usize>(b * QK)) << 2);
      let m = f32x4.abs(v128.load(xp));
      for (let j = 16; j < 128; j += 16) m = f32x4.max(m, f32x4.abs(v128.load(xp + j)));
      m = f32x4.max(m, v128.shuffle<f32>(m, m, 2, 3, 0, 1));
      const amax = max(f32x4.extract_lane(m, 0), f32x4.extract_lane(m, 1)); // NaN propagates
      const d: f32 = amax / 127;
      let id: f32 = d != 0 ? <f32>1 / d : 0;
      if (id == Infinity) id = 0; // amax < ~2^-121: the block quantizes to 0
      store<f32>(dx + ((<usize>b * <usize>T + <usize>t) << 2), d);
      const ids = f32x4.splat(id);
      const row = xq + <usize>t * <usize>xRowBytes(I);
      const qp = row + <usize>(b * XB);
      // round to nearest even, then exact conversion (NaN -> 0; |values| <= 127): x0..7, x8..15, ...
      let sum = i32x4.splat(0);
      let lo = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(xp), ids)));
      let hi = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(xp, 16), ids)));
      sum = i32x4.add(sum, i32x4.add(lo, hi));
      const n0 = i16x8.narrow_i32x4_s(lo, hi);
      lo = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(xp, 32), ids)));
      hi = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(xp, 48), ids)));
      sum = i32x4.add(sum, i32x4.add(lo, hi));
      const n1 = i16x8.narrow_i32x4_s(lo, hi);
      lo = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(xp, 64), ids)));
      hi = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(xp, 80), ids)));
      sum = i32x4.add(sum, i32x4.add(lo, hi));
      const n2 = i16x8.narrow_i32x4_s(lo, hi);
      lo = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(xp, 96), ids)));
      hi = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(xp, 112), ids)));
      sum = i32x4.add(sum, i32x4.add(lo, hi));
      const n3 = i16x8.narrow_i32x4_s(lo, hi);
      if (RELAXED) { // |x| and -1 where x < 0, once here rather than for every row (blockDot)
        const q0 = i8x16.narrow_i16x8_s(n0, n1), q1 = i8x16.narrow_i16x8_s(n2, n3);
        v128.store(qp, i8x16.abs(q0));
        v128.store(qp, i8x16.abs(q1), 16);
        v128.store(qp, i8x16.shr_s(q0, 7), 32);
        v128.store(qp, i8x16.shr_s(q1, 7), 48);
      } else if (dtype == DT_Q4_0) { // scaled by 256, 1, 16, 256 to match blockDot's masked nibbles (|256·x| <= 32512)
        v128.store(qp, i16x8.shl(v128.shuffle<i16>(n0, n1, 0, 2, 4, 6, 8, 10, 12, 14), 8));
        v128.store(qp, v128.shuffle<i16>(n0, n1, 1, 3, 5, 7, 9, 11, 13, 15), 16);
        v128.store(qp, i16x8.shl(v128.shuffle<i16>(n2, n3, 0, 2, 4, 6, 8, 10, 12, 14), 4), 32);
        v128.store(qp, i16x8.shl(v128.shuffle<i16>(n2, n3, 1, 3, 5, 7, 9, 11, 13, 15), 8), 48);
      } else {
        v128.store(qp, n0); v128.store(qp, n1, 16); v128.store(qp, n2, 32); v128.store(qp, n3, 48);
      }
      const h = i32x4.add(sum, v128.shuffle<i32>(sum, sum, 2, 3, 0, 1));
      store<i32>(row + <usize>(B * XB) + (<usize>b << 2), (i32x4.extract_lane(h, 0) + i32x4.extract_lane(h, 1)) << Q4_OFFSET_SHIFT);
    }
  }
}

/**
 * The 32 weights of one block dotted with the activations of the block at xp: Σ w·x as an i32x4
 * of partial sums (exact). Baseline: weights widened to four i16x8 (elements 0-7, 8-15, 16-23,
 * 24-31) against i16 x. Relaxed: int8 dots (see the file comment). For q4_0 the offset 8 is left
 * out (both builds) and applied once per four rows by q4Sums.
 */
// @ts-ignore: decorator
@inline function blockDot(dtype: i32, wp: usize, xp: usize): v128 {
  if (RELAXED) {
    const x0 = v128.load(xp), x1 = v128.load(xp, 16); // |x|
    const m0 = v128.load(xp, 32), m1 = v128.load(xp, 48); // -1 where x < 0
    let w0: v128, w1: v128;
    if (dtype == DT_Q8_0) {
      w0 = v128.load(wp, 2); w1 = v128.load(wp, 18);
    } else { // the nibbles 0..15 (Σ (n − 8)·x = Σ n·x − 8·Σx: q4Sums)
      const p = v128.load(wp, 2);
      w0 = v128.and(p, i8x16.splat(15)); w1 = i8x16.shr_u(p, 4);
    }
    w0 = i8x16.sub(v128.xor(w0, m0), m0); w1 = i8x16.sub(v128.xor(w1, m1), m1); // w·sign(x)
    return i32x4.relaxed_dot_i8x16_i7x16_add_s(w1, x1, i32x4.relaxed_dot_i8x16_i7x16_add_s(w0, x0, i32x4.splat(0)));
  }
  if (dtype == DT_Q4_0) {
    // each i16 lane k of the 16 bytes holds the nibbles of elements 2k (bits 0-3), 2k+16 (4-7),
    // 2k+1 (8-11) and 2k+17 (12-15). Three masks and one shift isolate them without moving them
    // down: as n, 16·n, 256·n and n; x is stored scaled by 256, 16, 1 and 256 to match (quantizeX),
    // so every product is 256·n·x and the sum is 256·Σ n·x (exact: |256·Σ n·x| <= 256·32·15·127 <
    // 2^24). The caller subtracts the offset, 256·8·Σx, and divides by 256 (an exact shift) once
    // per block for four rows or tokens (q4Block).
    const p = v128.load(wp, 2);
    let s = i32x4.dot_i16x8_s(v128.and(p, i16x8.splat(0x000f)), v128.load(xp));
    s = i32x4.add(s, i32x4.dot_i16x8_s(v128.and(p, i16x8.splat(0x0f00)), v128.load(xp, 16)));
    s = i32x4.add(s, i32x4.dot_i16x8_s(v128.and(p, i16x8.splat(0x00f0)), v128.load(xp, 32)));
    return i32x4.add(s, i32x4.dot_i16x8_s(i16x8.shr_u(p, 12), v128.load(xp, 48)));
  }
  const a = v128.load(wp, 2), b = v128.load(wp, 18);
  let s = i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(a), v128.load(xp));
  s = i32x4.add(s, i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(a), v128.load(xp, 16)));
  s = i32x4.add(s, i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(b), v128.load(xp, 32)));
  return i32x4.add(s, i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(b), v128.load(xp, 48)));
}

/**
 * Σ_b (Σ_j q_w·q_x)·(d_w[b]·d_x[b]) of one row and one token, accumulated block by block in f32.
 * Every path (four-row decode, four-token prefill, this one for tails) does exactly these f32
 * operations per row, so a row's result does not depend on which path or thread computed it.
 */
// @ts-ignore: decorator
@inline function rowDot(dtype: i32, w: usize, xq: usize, dx: usize, dxStride: usize, B: i32, bytes: i32): f32 {
  const xs = xq + <usize>(B * XB); // the q4_0 offsets of the blocks, after them
  let acc: f32 = 0;
  for (let b = 0; b < B; b++) {
    const wp = w + <usize>(b * bytes);
    const p = blockDot(dtype, wp, xq + <usize>(b * XB));
    const h = i32x4.add(p, v128.shuffle<i32>(p, p, 2, 3, 0, 1));
    let isum = i32x4.extract_lane(h, 0) + i32x4.extract_lane(h, 1);
    if (dtype == DT_Q4_0) isum = q4Sum(isum, load<i32>(xs + (<usize>b << 2)));
    acc += <f32>isum * (f16Finite(<u32>load<u16>(wp)) * load<f32>(dx + <usize>b * dxStride));
  }
  return acc;
}

/** Decode, one token: y[o] for o in [o0, o1), four rows per pass from the four quarters of the range. */
// @ts-ignore: decorator
@inline function matvecQ(dtype: i32, y: usize, xq: usize, dx: usize, dxStride: usize, w: usize, B: i32, o0: i32, o1: i32): void {
  const bytes = dtype == DT_Q8_0 ? Q8_BYTES : Q4_BYTES;
  const rowBytes = <usize>(B * bytes);
  const Q = (o1 - o0) >> 2;
  const quarter = <usize>Q * rowBytes;
  const xsum = xq + <usize>(B * XB); // the q4_0 offsets of the blocks, after them
  for (let o = o0; o < o0 + Q; o++) {
    // pointers stepped block by block (the engine does not strength-reduce b·bytes)
    let wp = w + <usize>o * rowBytes, xp = xq, xs = xsum, dp = dx;
    const wEnd = wp + rowBytes;
    let acc = f32x4.splat(0); // rows o, o+Q, o+2Q, o+3Q
    while (wp < wEnd) {
      const w1 = wp + quarter, w2 = w1 + quarter, w3 = w2 + quarter;
      let isum = hsum4i(blockDot(dtype, wp, xp), blockDot(dtype, w1, xp), blockDot(dtype, w2, xp), blockDot(dtype, w3, xp));
      if (dtype == DT_Q4_0) isum = q4Sums(isum, v128.load32_splat(xs));
      let h = v128.load16_lane(wp, i32x4.splat(0), 1); // the four rows' f16 scales, << 16
      h = v128.load16_lane(w1, h, 3);
      h = v128.load16_lane(w2, h, 5);
      h = v128.load16_lane(w3, h, 7);
      const s = f32x4.mul(f16x4HighFinite(h), v128.load32_splat(dp));
      acc = f32x4.add(acc, f32x4.mul(f32x4.convert_i32x4_s(isum), s));
      wp += <usize>bytes; xp += <usize>XB; xs += 4; dp += dxStride;
    }
    store<f32>(y + (<usize>o << 2), f32x4.extract_lane(acc, 0));
    store<f32>(y + (<usize>(o + Q) << 2), f32x4.extract_lane(acc, 1));
    store<f32>(y + (<usize>(o + 2 * Q) << 2), f32x4.extract_lane(acc, 2));
    store<f32>(y + (<usize>(o + 3 * Q) << 2), f32x4.extract_lane(acc, 3));
  }
  for (let o = o0 + 4 * Q; o < o1; o++) {
    store<f32>(y + (<usize>o << 2), rowDot(dtype, w + <usize>o * rowBytes, xq, dx, dxStride, B, bytes));
  }
}

/** Prefill: four tokens (rows of xq at stride xRow, scales dx[b·dxT + t]) against rows [o0, o1). */
// @ts-ignore: decorator
@inline function matmul4Q(dtype: i32, y: usize, yRow: usize, xq: usize, xRow: usize, dx: usize, dxT: usize,
                          w: usize, B: i32, o0: i32, o1: i32): void {
  const bytes = dtype == DT_Q8_0 ? Q8_BYTES : Q4_BYTES;
  const rowBytes = <usize>(B * bytes);
  for (let o = o0; o < o1; o++) {
    const wr = w + <usize>o * rowBytes;
    let acc = f32x4.splat(0); // tokens 0..3
    for (let b = 0; b < B; b++) {
      const wp = wr + <usize>(b * bytes), xp = xq + <usize>(b * XB);
      if (RELAXED || dtype == DT_Q4_0) { // cheap unpacking (relaxed: none): one block dot per token
        let isum = hsum4i(blockDot(dtype, wp, xp), blockDot(dtype, wp, xp + xRow),
                          blockDot(dtype, wp, xp + 2 * xRow), blockDot(dtype, wp, xp + 3 * xRow));
        if (dtype == DT_Q4_0) { // the four tokens' offsets
          const xs = xq + <usize>(B * XB) + (<usize>b << 2);
          let xsum = v128.load32_lane(xs, i32x4.splat(0), 0);
          xsum = v128.load32_lane(xs + xRow, xsum, 1);
          xsum = v128.load32_lane(xs + 2 * xRow, xsum, 2);
          isum = q4Sums(isum, v128.load32_lane(xs + 3 * xRow, xsum, 3));
        }
        const s = f32x4.mul(v128.load(dx + ((<usize>b * dxT) << 2)), f32x4.splat(f16Finite(<u32>load<u16>(wp))));
        acc = f32x4.add(acc, f32x4.mul(f32x4.convert_i32x4_s(isum), s));
        continue;
      }
      const a = v128.load(wp, 2), c = v128.load(wp, 18); // q8_0: widened once, used for four tokens
      const w0 = i16x8.extend_low_i8x16_s(a), w1 = i16x8.extend_high_i8x16_s(a);
      const w2 = i16x8.extend_low_i8x16_s(c), w3 = i16x8.extend_high_i8x16_s(c);
      let p0 = i32x4.add(i32x4.dot_i16x8_s(w0, v128.load(xp)), i32x4.dot_i16x8_s(w1, v128.load(xp, 16)));
      p0 = i32x4.add(p0, i32x4.add(i32x4.dot_i16x8_s(w2, v128.load(xp, 32)), i32x4.dot_i16x8_s(w3, v128.load(xp, 48))));
      let xt = xp + xRow;
      let p1 = i32x4.add(i32x4.dot_i16x8_s(w0, v128.load(xt)), i32x4.dot_i16x8_s(w1, v128.load(xt, 16)));
      p1 = i32x4.add(p1, i32x4.add(i32x4.dot_i16x8_s(w2, v128.load(xt, 32)), i32x4.dot_i16x8_s(w3, v128.load(xt, 48))));
      xt += xRow;
      let p2 = i32x4.add(i32x4.dot_i16x8_s(w0, v128.load(xt)), i32x4.dot_i16x8_s(w1, v128.load(xt, 16)));
      p2 = i32x4.add(p2, i32x4.add(i32x4.dot_i16x8_s(w2, v128.load(xt, 32)), i32x4.dot_i16x8_s(w3, v128.load(xt, 48))));
      xt += xRow;
      let p3 = i32x4.add(i32x4.dot_i16x8_s(w0, v128.load(xt)), i32x4.dot_i16x8_s(w1, v128.load(xt, 16)));
      p3 = i32x4.add(p3, i32x4.add(i32x4.dot_i16x8_s(w2, v128.load(xt, 32)), i32x4.dot_i16x8_s(w3, v128.load(xt, 48))));
      const s = f32x4.mul(v128.load(dx + ((<usize>b * dxT) << 2)), f32x4.splat(f16Finite(<u32>load<u16>(wp))));
      acc = f32x4.add(acc, f32x4.mul(f32x4.convert_i32x4_s(hsum4i(p0, p1, p2, p3)), s));
    }
    store<f32>(y + (<usize>o << 2), f32x4.extract_lane(acc, 0));
    store<f32>(y + yRow + (<usize>o << 2), f32x4.extract_lane(acc, 1));
    store<f32>(y + 2 * yRow + (<usize>o << 2), f32x4.extract_lane(acc, 2));
    store<f32>(y + 3 * yRow + (<usize>o << 2), f32x4.extract_lane(acc, 3));
  }
}

// ---- q4_0 with four rows interleaved (DT_Q4_0X4): the wasm backend's decode layout ----
//
// repackQ4x4 rewrites each group of four consecutive rows (o = 4g..4g+3) of a q4_0 matrix in place,
// in the bytes those rows occupied (B blocks of 4·18 = 72 bytes). Block b of the group:
//
//   bytes  0..7   d0 d1 d2 d3                          the four rows' f16 scales
//   bytes  8..23  r0[0..3]   r1[0..3]   r2[0..3]   r3[0..3]    chunk 0: row k's nibble bytes 0..3
//   bytes 24..39  r0[4..7]   r1[4..7]   r2[4..7]   r3[4..7]    chunk 1
//   bytes 40..55  r0[8..11]  ...                               chunk 2
//   bytes 56..71  r0[12..15] ...                               chunk 3
//
// (a 4x4 transpose of the rows' 32-bit words). So i32 lane k of a chunk belongs to row k. Its two
// i16 lanes hold the nibbles of elements 4c+m (bits 0-3), 4c+16+m (4-7), 4c+1+m (8-11) and
// 4c+17+m (12-15), m = 0 and 2; blockDot's masks isolate one nibble position, and ONE pair of x
// broadcast to all lanes (v128.load32_splat from quantizeX's q4_0 layout, unchanged) completes it:
//
//   chunk c & 0x000f      | row 0: n(4c)  n(4c+2) | row 1: n(4c)  n(4c+2) | row 2 ... | row 3 ... |
//   x pair (splat)        | 256·x(4c)  256·x(4c+2) | 256·x(4c)  256·x(4c+2) | ...                 |
//   i32x4.dot_i16x8_s  -> | row 0's two products   | row 1's                | row 2's   | row 3's   |
//
// Sixteen such products make the four rows' block sums, lane by lane: no horizontal sum, the four
// scales one 8-byte load, one weight stream per group. Rows past the last multiple of 4 stay in
// the plain layout and take the plain path (matvecQ4 / matmul4Q4 / rowDot). Every row still does
// rowDot's f32 operations in block order, so the bits equal the plain kernels'. Relaxed build: the
// same chunks as int8 (low nibbles: elements 4c..4c+3, high: 4c+16..4c+19) against four |x| of
// the relaxed x layout broadcast, the signs moved onto the weights as blockDot does.

/** dtype code of a q4_0 matrix repacked by repackQ4x4 (the wasm backend's "q4_0x4" layout, src/kernels/quant.ts Q4_0X4). */
// @ts-ignore: decorator
@inline export const DT_Q4_0X4: i32 = 7;
/** Bytes of one block of a group of four rows. */
// @ts-ignore: decorator
@inline const Q4X4_BYTES: i32 = 4 * Q4_BYTES;

/** One chunk (16 bytes of nibbles, 8 elements of each of 4 rows) against the x pairs at xc: Σ n·x per row (scaled as blockDot). */
// @ts-ignore: decorator
@inline function chunkDot4(s: v128, p: v128, xc: usize, first: bool = false): v128 {
  if (RELAXED) { // bytes 4c..4c+3 of a row: elements 4c..4c+3 (low nibbles) and 4c+16.. (high)
    let w0 = v128.and(p, i8x16.splat(15)), w1 = i8x16.shr_u(p, 4);
    const m0 = v128.load32_splat(xc, 32), m1 = v128.load32_splat(xc, 48); // -1 where x < 0
    w0 = i8x16.sub(v128.xor(w0, m0), m0); w1 = i8x16.sub(v128.xor(w1, m1), m1);
    s = first ? i32x4.relaxed_dot_i8x16_i7x16_add_s(w0, v128.load32_splat(xc), i32x4.splat(0))
              : i32x4.relaxed_dot_i8x16_i7x16_add_s(w0, v128.load32_splat(xc), s);
    return i32x4.relaxed_dot_i8x16_i7x16_add_s(w1, v128.load32_splat(xc, 16), s);
  }
  const s0 = i32x4.dot_i16x8_s(v128.and(p, v128.load(Q4_MASKS)), v128.load32_splat(xc));
  s = first ? s0 : i32x4.add(s, s0);
  s = i32x4.add(s, i32x4.dot_i16x8_s(v128.and(p, v128.load(Q4_MASKS, 16)), v128.load32_splat(xc, 16)));
  s = i32x4.add(s, i32x4.dot_i16x8_s(v128.and(p, v128.load(Q4_MASKS, 32)), v128.load32_splat(xc, 32)));
  return i32x4.add(s, i32x4.dot_i16x8_s(i16x8.shr_u(p, 12), v128.load32_splat(xc, 48)));
}
/** chunkDot4's masks in memory (0x000f, 0x0f00, 0x00f0 per i16 lane): loaded rather than rebuilt each pass. */
const Q4_MASKS = memory.data<u16>([0x000f, 0x000f, 0x000f, 0x000f, 0x000f, 0x000f, 0x000f, 0x000f,
  0x0f00, 0x0f00, 0x0f00, 0x0f00, 0x0f00, 0x0f00, 0x0f00, 0x0f00,
  0x00f0, 0x00f0, 0x00f0, 0x00f0, 0x00f0, 0x00f0, 0x00f0, 0x00f0], 16);

/** One block of a group of four rows at wp against the x block at xp: the rows' exact q4_0 sums Σ (n − 8)·x, one per lane. */
// @ts-ignore: decorator
@inline function groupSums(wp: usize, xp: usize, xs: usize): v128 {
  let s = chunkDot4(i32x4.splat(0), v128.load(wp, 8), xp, true);
  s = chunkDot4(s, v128.load(wp, 24), xp + 4);
  s = chunkDot4(s, v128.load(wp, 40), xp + 8);
  s = chunkDot4(s, v128.load(wp, 56), xp + 12);
  return q4Sums(s, v128.load32_splat(xs));
}

/** The four f16 scales at wp (a group's block) as f32. */
// @ts-ignore: decorator
@inline function groupScales(wp: usize): v128 {
  return f16x4HighFinite(v128.shuffle<i16>(i16x8.splat(0), v128.load64_zero(wp), 0, 8, 1, 9, 2, 10, 3, 11));
}

/** One block of a group at wp added into the group's f32 accumulator (rowDot's f32 operations, per lane). */
// @ts-ignore: decorator
@inline function groupBlock(acc: v128, wp: usize, xp: usize, xs: usize, dp: usize): v128 {
  const s = f32x4.mul(groupScales(wp), v128.load32_splat(dp));
  return f32x4.add(acc, f32x4.mul(f32x4.convert_i32x4_s(groupSums(wp, xp, xs)), s));
}

/**
 * Decode over repacked groups: y[o..o+3] for the groups of rows [o0, o1) (both multiples of 4).
 * Eight groups per pass, one from each eighth of the range, block by block: eight memory streams
 * sharing the x loads (from memory one stream took 1.6× as long as four, and four took ~3% longer
 * than eight in the whole decode step: BENCHMARKS.md, Figures cited in the source).
 */
// @ts-ignore: decorator
@noinline function matvecQ4x4(y: usize, xq: usize, dx: usize, dxStride: usize, w: usize, B: i32, o0: i32, o1: i32): void {
  const groupBytes = <usize>(B * Q4X4_BYTES);
  const xsum = xq + <usize>(B * XB); // the q4_0 offsets of the blocks, after them
  const g0 = o0 >> 2, G = (o1 - o0) >> 2, E = G >> 3;
  const eighth = <usize>E * groupBytes;
  for (let g = g0; g < g0 + E; g++) {
    let wp = w + <usize>g * groupBytes, xp = xq, xs = xsum, dp = dx;
    const wEnd = wp + groupBytes;
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0); // groups g, g+E, .., g+7E
    let a4 = f32x4.splat(0), a5 = f32x4.splat(0), a6 = f32x4.splat(0), a7 = f32x4.splat(0);
    while (wp < wEnd) {
      a0 = groupBlock(a0, wp, xp, xs, dp);
      a1 = groupBlock(a1, wp + eighth, xp, xs, dp);
      a2 = groupBlock(a2, wp + 2 * eighth, xp, xs, dp);
      a3 = groupBlock(a3, wp + 3 * eighth, xp, xs, dp);
      a4 = groupBlock(a4, wp + 4 * eighth, xp, xs, dp);
      a5 = groupBlock(a5, wp + 5 * eighth, xp, xs, dp);
      a6 = groupBlock(a6, wp + 6 * eighth, xp, xs, dp);
      a7 = groupBlock(a7, wp + 7 * eighth, xp, xs, dp);
      wp += <usize>Q4X4_BYTES; xp += <usize>XB; xs += 4; dp += dxStride;
    }
    const yo = y + (<usize>g << 4), ye = <usize>E << 4;
    v128.store(yo, a0); v128.store(yo + ye, a1); v128.store(yo + 2 * ye, a2); v128.store(yo + 3 * ye, a3);
    v128.store(yo + 4 * ye, a4); v128.store(yo + 5 * ye, a5); v128.store(yo + 6 * ye, a6); v128.store(yo + 7 * ye, a7);
  }
  for (let g = g0 + 8 * E; g < g0 + G; g++) { // the last G mod 8 groups, one at a time
    let wp = w + <usize>g * groupBytes, xp = xq, xs = xsum, dp = dx;
    const wEnd = wp + groupBytes;
    let acc = f32x4.splat(0);
    while (wp < wEnd) {
      acc = groupBlock(acc, wp, xp, xs, dp);
      wp += <usize>Q4X4_BYTES; xp += <usize>XB; xs += 4; dp += dxStride;
    }
    v128.store(y + (<usize>g << 4), acc);
  }
}

/** Prefill over repacked groups: four tokens (as matmul4Q) against the groups of rows [o0, o1) (multiples of 4). */
// @ts-ignore: decorator
@noinline function matmul4Q4x4(y: usize, yRow: usize, xq: usize, xRow: usize, dx: usize, dxT: usize,
                               w: usize, B: i32, o0: i32, o1: i32): void {
  const groupBytes = <usize>(B * Q4X4_BYTES);
  const xsum = xq + <usize>(B * XB);
  for (let o = o0; o < o1; o += 4) {
    const wg = w + <usize>(o >> 2) * groupBytes;
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0); // tokens 0..3, rows o..o+3
    for (let b = 0; b < B; b++) {
      const wp = wg + <usize>(b * Q4X4_BYTES), xp = xq + <usize>(b * XB), xs = xsum + (<usize>b << 2);
      const d = groupScales(wp), dp = dx + ((<usize>b * dxT) << 2);
      a0 = f32x4.add(a0, f32x4.mul(f32x4.convert_i32x4_s(groupSums(wp, xp, xs)), f32x4.mul(d, v128.load32_splat(dp))));
      a1 = f32x4.add(a1, f32x4.mul(f32x4.convert_i32x4_s(groupSums(wp, xp + xRow, xs + xRow)), f32x4.mul(d, v128.load32_splat(dp, 4))));
      a2 = f32x4.add(a2, f32x4.mul(f32x4.convert_i32x4_s(groupSums(wp, xp + 2 * xRow, xs + 2 * xRow)), f32x4.mul(d, v128.load32_splat(dp, 8))));
      a3 = f32x4.add(a3, f32x4.mul(f32x4.convert_i32x4_s(groupSums(wp, xp + 3 * xRow, xs + 3 * xRow)), f32x4.mul(d, v128.load32_splat(dp, 12))));
    }
    const yo = y + (<usize>o << 2);
    v128.store(yo, a0); v128.store(yo + yRow, a1); v128.store(yo + 2 * yRow, a2); v128.store(yo + 3 * yRow, a3);
  }
}

/**
 * Rewrite the q4_0 matrix w [O, I] in place into the DT_Q4_0X4 layout (rows 0 .. O&~3; the rest
 * stay as they are), one group of four rows at a time through `scratch` (4 rows' bytes).
 */
export function repackQ4x4(w: usize, O: i32, I: i32, scratch: usize): void {
  const B = I / QK, rowBytes = <usize>(B * Q4_BYTES);
  for (let o = 0; o + 4 <= O; o += 4) {
    const g = w + <usize>o * rowBytes;
    memory.copy(scratch, g, rowBytes << 2);
    for (let b = 0; b < B; b++) {
      const dst = g + <usize>(b * Q4X4_BYTES);
      for (let k = 0; k < 4; k++) {
        const src = scratch + <usize>k * rowBytes + <usize>(b * Q4_BYTES);
        store<u16>(dst + (<usize>k << 1), load<u16>(src));
        for (let c = 0; c < 4; c++) store<u32>(dst + 8 + <usize>(c * 16 + k * 4), load<u32>(src + 2 + <usize>(c * 4)));
      }
    }
  }
}

// One function per format, so that each is compiled for its constant dtype (inlined into one
// function with a runtime dtype, the optimizer kept a dtype test in the innermost loop).
// @ts-ignore: decorator
@noinline function matvecQ8(y: usize, xq: usize, dx: usize, dxStride: usize, w: usize, B: i32, o0: i32, o1: i32): void {
  matvecQ(DT_Q8_0, y, xq, dx, dxStride, w, B, o0, o1);
}
// @ts-ignore: decorator
@noinline function matvecQ4(y: usize, xq: usize, dx: usize, dxStride: usize, w: usize, B: i32, o0: i32, o1: i32): void {
  matvecQ(DT_Q4_0, y, xq, dx, dxStride, w, B, o0, o1);
}
// @ts-ignore: decorator
@noinline function matmul4Q8(y: usize, yRow: usize, xq: usize, xRow: usize, dx: usize, dxT: usize, w: usize, B: i32, o0: i32, o1: i32): void {
  matmul4Q(DT_Q8_0, y, yRow, xq, xRow, dx, dxT, w, B, o0, o1);
}
// @ts-ignore: decorator
@noinline function matmul4Q4(y: usize, yRow: usize, xq: usize, xRow: usize, dx: usize, dxT: usize, w: usize, B: i32, o0: i32, o1: i32): void {
  matmul4Q(DT_Q4_0, y, yRow, xq, xRow, dx, dxT, w, B, o0, o1);
}

/**
 * yTO[t, o] = Σ_i xTI[t, i]·W[o, i] for o in [o0, o1), W [O, I] in q8_0/q4_0 blocks (I a multiple
 * of 32; the caller checks), or q4_0 repacked by repackQ4x4 (DT_Q4_0X4: then o0 is a multiple of
 * 4, and the rows from O&~3 on are plain q4_0). `scratch` holds QMATMUL_SCRATCH_BYTES (16-byte aligned).
 */
export function matmulQuant(y: usize, x: usize, w: usize, dtype: i32, T: i32, I: i32, O: i32, o0: i32, o1: i32,
                            scratch: usize): void {
  const B = I / QK;
  const perToken = xRowBytes(I) + (B << 2);
  let TC = QMATMUL_SCRATCH_BYTES / perToken; // tokens per chunk: a multiple of 4 when possible
  if (TC >= 4) TC &= ~3;
  TC = min(T, max(1, TC));
  const xRow = <usize>xRowBytes(I), yRow = <usize>O << 2;
  // repacked: the groups [o0, og), then the plain rows [op, o1)
  const grouped = dtype == DT_Q4_0X4;
  if (grouped) dtype = DT_Q4_0; // x is quantized as for q4_0
  const og = grouped ? min(o1, O & ~3) : o0, op = grouped ? max(o0, O & ~3) : o0;
  for (let t0 = 0; t0 < T; t0 += TC) {
    const n = min(TC, T - t0);
    const xq = scratch, dx = scratch + <usize>n * xRow;
    quantizeX(xq, dx, x + ((<usize>t0 * <usize>I) << 2), n, I, dtype);
    const yc = y + <usize>t0 * yRow;
    if (T < 4) {
      for (let t = 0; t < n; t++) {
        const yt = yc + <usize>t * yRow, xt = xq + <usize>t * xRow, dt = dx + (<usize>t << 2), dxStride = <usize>n << 2;
        if (dtype == DT_Q8_0) matvecQ8(yt, xt, dt, dxStride, w, B, o0, o1);
        else {
          if (og > o0) matvecQ4x4(yt, xt, dt, dxStride, w, B, o0, og);
          matvecQ4(yt, xt, dt, dxStride, w, B, op, o1);
        }
      }
      continue;
    }
    let t = 0;
    for (; t + 4 <= n; t += 4) {
      const yt = yc + <usize>t * yRow, xt = xq + <usize>t * xRow, dt = dx + (<usize>t << 2);
      if (dtype == DT_Q8_0) matmul4Q8(yt, yRow, xt, xRow, dt, <usize>n, w, B, o0, o1);
      else {
        if (og > o0) matmul4Q4x4(yt, yRow, xt, xRow, dt, <usize>n, w, B, o0, og);
        matmul4Q4(yt, yRow, xt, xRow, dt, <usize>n, w, B, op, o1);
      }
    }
    for (; t < n; t++) { // token tail: one row at a time (repacked groups: the decode kernel)
      const rowBytes = <usize>(B * (dtype == DT_Q8_0 ? Q8_BYTES : Q4_BYTES));
      if (og > o0) matvecQ4x4(yc + <usize>t * yRow, xq + <usize>t * xRow, dx + (<usize>t << 2), <usize>n << 2, w, B, o0, og);
      for (let o = op; o < o1; o++) {
        const v = dtype == DT_Q8_0
          ? rowDot(DT_Q8_0, w + <usize>o * rowBytes, xq + <usize>t * xRow, dx + (<usize>t << 2), <usize>n << 2, B, Q8_BYTES)
          : rowDot(DT_Q4_0, w + <usize>o * rowBytes, xq + <usize>t * xRow, dx + (<usize>t << 2), <usize>n << 2, B, Q4_BYTES);
        store<f32>(yc + <usize>t * yRow + (<usize>o << 2), v);
      }
    }
  }
}

/** out[0..32) = d·q of one block: q's 32 int8 values as a (elements 0-15) and c (16-31). */
// @ts-ignore: decorator
@inline function dequantizeBlock(out: usize, d: v128, a: v128, c: v128): void {
  const a0 = i16x8.extend_low_i8x16_s(a), a1 = i16x8.extend_high_i8x16_s(a);
  const c0 = i16x8.extend_low_i8x16_s(c), c1 = i16x8.extend_high_i8x16_s(c);
  v128.store(out, f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(a0)), d));
  v128.store(out, f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(a0)), d), 16);
  v128.store(out, f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(a1)), d), 32);
  v128.store(out, f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(a1)), d), 48);
  v128.store(out, f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(c0)), d), 64);
  v128.store(out, f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(c0)), d), 80);
  v128.store(out, f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(c1)), d), 96);
  v128.store(out, f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(c1)), d), 112);
}

/** q4_0's 16 nibble bytes as int8 values: elements 0-15 (low nibbles) and 16-31 (high), minus 8. */
// @ts-ignore: decorator
@inline function dequantizeQ4(out: usize, d: v128, p: v128): void {
  dequantizeBlock(out, d, i8x16.sub(v128.and(p, i8x16.splat(15)), i8x16.splat(8)), i8x16.sub(i8x16.shr_u(p, 4), i8x16.splat(8)));
}

/** dst[0..n) = the values of the q8_0/q4_0 blocks at src, d·q as f32 (embedding rows). */
export function dequantizeRow(dst: usize, src: usize, dtype: i32, n: i32): void {
  const bytes = dtype == DT_Q8_0 ? Q8_BYTES : Q4_BYTES;
  for (let b = 0; b < n / QK; b++) {
    const wp = src + <usize>(b * bytes), out = dst + (<usize>(b * QK) << 2);
    const d = f32x4.splat(f16Finite(<u32>load<u16>(wp)));
    if (dtype == DT_Q8_0) dequantizeBlock(out, d, v128.load(wp, 2), v128.load(wp, 18));
    else dequantizeQ4(out, d, v128.load(wp, 2));
  }
}

/** dst[0..n) = row k (0..3) of the repacked group of four q4_0 rows at group (DT_Q4_0X4), as dequantizeRow. */
export function dequantizeRowQ4x4(dst: usize, group: usize, k: i32, n: i32): void {
  for (let b = 0; b < n / QK; b++) {
    const wp = group + <usize>(b * Q4X4_BYTES), out = dst + (<usize>(b * QK) << 2);
    const d = f32x4.splat(f16Finite(<u32>load<u16>(wp + (<usize>k << 1))));
    const q = wp + 8 + (<usize>k << 2); // row k's 4 bytes of each chunk
    let p = v128.load32_zero(q);
    p = v128.load32_lane(q + 16, p, 1);
    p = v128.load32_lane(q + 32, p, 2);
    dequantizeQ4(out, d, v128.load32_lane(q + 48, p, 3));
  }
}

/**
 * 1 if this build's relaxed dot computes what the relaxed-SIMD spec says (or this is the baseline
 * build), else 0. Node 20's experimental relaxed SIMD (--experimental-wasm-relaxed-simd) validates
 * the relaxed build but returns twice the dot product; the loader then falls back to the baseline.
 */
export function relaxedSimdSelfTest(): i32 {
  if (!RELAXED) return 1;
  const r = i32x4.relaxed_dot_i8x16_i7x16_add_s(i8x16.splat(-5), i8x16.splat(3), i32x4.splat(7));
  return i32x4.extract_lane(r, 0) == 4 * -15 + 7 ? 1 : 0;
}
