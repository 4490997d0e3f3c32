// Causal GQA attention for many queries at once (prefill and training), forward and backward,
// blocked four query rows at a time. ops.ts keeps the plain one-row kernels beside these: decode
// (one query) uses them, and they stay the readable statement of the same math.
//
// Why blocks of 4 rows: in the one-row kernels every load of a key or value row serves one query,
// and every 4 positions' scores end in a horizontal sum. Here the keys of one kv head are first
// copied transposed into scratch, kT[i][p] (Dh rows of positions), and the 4 queries interleaved,
// qI[i][j]. Then a tile of 4 queries × 8 positions is 8 f32x4 accumulators: per dimension i, two
// loads of kT (8 positions), four broadcasts of q[j][i], 16 multiply-adds, no horizontal sums.
// The probabilities are stored transposed too, wT[p][j] (the 4 queries' weights of position p),
// so out = Σ_p w[p]·v_p runs with the same tile: one value row load serves 4 queries.
//
// Blocks are the rows [4b, 4b + 4) of the call, whatever the thread split, and each row's sums run
// over its visible positions in increasing order, so every output bit is the same for every thread
// count. A row sees positions p ≤ pos0 + t; the positions the block's last row sees but an earlier
// row does not (at most 3) are added to that row only, so no row ever reads a value it may not see.
//
// Layout as in ops.ts: q/out [T][H][Dh], k/v [P][KV][Dh]; query head h reads kv head h / (H/KV).
// Head dims a multiple of 4 (the callers use ops.ts otherwise).

import { expPoly, expRound, hsum } from "./simd";

/**
 * e^x for 4 lanes with x ≤ 0 or −∞ (a score minus its row's maximum): exp4's algorithm and bits for
 * such x (simd.ts expRound, expPoly), without what only x > 0 needs: n ≥ −126, so 2^n is one shift
 * of t's low bits (two's complement n) into the exponent instead of two factors. x < −87.33654
 * gives 0, as exp4.
 */
// @ts-ignore: decorator
@inline function expNeg4(x: v128): v128 {
  const xc = f32x4.pmax(x, f32x4.splat(-87.33654));
  const t = expRound(xc);
  const pow2n = i32x4.shl(i32x4.add(t, i32x4.splat(127)), 23);
  return v128.andnot(f32x4.mul(expPoly(xc, t), pow2n), f32x4.lt(x, f32x4.splat(-87.33654)));
}

/** Query rows per block. */
// @ts-ignore: decorator
@inline const QB: i32 = 4;

/** Positions rounded up to the 8 of a score tile. */
// @ts-ignore: decorator
@inline function roundUp8(n: i32): i32 {
  return (n + 7) & ~7;
}

/**
 * Bytes of scratch each thread has for these kernels (at least; the backend gives every thread the
 * largest scratch any kernel asks for): the forward's transposed keys and tiles for contexts up to
 * 2272 positions at Dh = 64 (MobileLLM's head dim; 2048 is its context), the backward's for
 * sequences up to 608 tokens at Dh = 64. Longer ones take the one-row kernels of ops.ts.
 */
export const ATTENTION_SCRATCH_BYTES: i32 = 640 * 1024;

/**
 * Floats of scratch attentionBlocks needs for contexts of up to P positions: kT [Dh][P8], scores
 * [4][P8], weights wT [P8][4], qI [Dh][4] (P8 = P rounded up to 8).
 */
export function attentionBlocksScratchFloats(P: i32, Dh: i32): i32 {
  return (Dh + 8) * roundUp8(P) + 4 * Dh;
}

/**
 * kT[i][p] = rows[p·stride + i] for p < n, 0 for n ≤ p < n8 (n8 = n rounded up to 8): one kv head's
 * keys (or values) transposed, row length `ld` floats; Dh a multiple of 4.
 */
// @ts-ignore: decorator
@inline function transposeRows(kT: usize, ld: i32, rows: usize, stride: usize, n: i32, Dh: i32): void {
  const ldBytes = <usize>ld << 2;
  let p = 0;
  for (; p + 4 <= n; p += 4) { // 4 positions × 4 dims at a time: a 4x4 transpose in registers
    const r0 = rows + <usize>p * stride, r1 = r0 + stride, r2 = r1 + stride, r3 = r2 + stride;
    let dst = kT + (<usize>p << 2);
    for (let i = 0; i < Dh; i += 4) {
      const o = <usize>i << 2;
      const a = v128.load(r0 + o), b = v128.load(r1 + o), c = v128.load(r2 + o), d = v128.load(r3 + o);
      const t0 = v128.shuffle<f32>(a, b, 0, 4, 1, 5), t1 = v128.shuffle<f32>(a, b, 2, 6, 3, 7);
      const t2 = v128.shuffle<f32>(c, d, 0, 4, 1, 5), t3 = v128.shuffle<f32>(c, d, 2, 6, 3, 7);
      v128.store(dst, v128.shuffle<f32>(t0, t2, 0, 1, 4, 5));
      v128.store(dst + ldBytes, v128.shuffle<f32>(t0, t2, 2, 3, 6, 7));
      v128.store(dst + 2 * ldBytes, v128.shuffle<f32>(t1, t3, 0, 1, 4, 5));
      v128.store(dst + 3 * ldBytes, v128.shuffle<f32>(t1, t3, 2, 3, 6, 7));
      dst += 4 * ldBytes;
    }
  }
  for (; p < n; p++) {
    const src = rows + <usize>p * stride;
    let dst = kT + (<usize>p << 2);
    for (let i = 0; i < Dh; i++) {
      store<f32>(dst, load<f32>(src + (<usize>i << 2)));
      dst += ldBytes;
    }
  }
  const n8 = roundUp8(n);
  for (let i = 0; i < Dh; i++) {
    for (let q = n; q < n8; q++) store<f32>(kT + <usize>i * ldBytes + (<usize>q << 2), 0);
  }
}

/**
 * xI[i][j] = x[t0 + j][h][i] for the block's rows j < nr, 0 for the missing rows (j ≥ nr):
 * the 4 rows interleaved, one f32x4 per dimension.
 */
// @ts-ignore: decorator
@inline function interleave4(xI: usize, x: usize, rowStride: usize, nr: i32, Dh: i32): void {
  for (let i = 0; i < Dh; i++) {
    const o = <usize>i << 2;
    const a = nr > 0 ? load<f32>(x + o) : <f32>0;
    const b = nr > 1 ? load<f32>(x + rowStride + o) : <f32>0;
    const c = nr > 2 ? load<f32>(x + 2 * rowStride + o) : <f32>0;
    const d = nr > 3 ? load<f32>(x + 3 * rowStride + o) : <f32>0;
    v128.store(xI + (<usize>i << 4), f32x4(a, b, c, d));
  }
}

/**
 * s[j][p] = Σ_i xI[i][j]·kT[i][p] for the 4 rows j and positions p < P8 (a multiple of 8), each sum
 * in i order: tiles of 4 rows × 8 positions in 8 accumulators. s rows are `ld` floats apart, as kT's.
 */
// @ts-ignore: decorator
@inline function dotsTile(s: usize, xI: usize, kT: usize, ld: i32, P8: i32, Dh: i32): void {
  const ldBytes = <usize>ld << 2;
  for (let p = 0; p < P8; p += 8) {
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0), b0 = f32x4.splat(0), b1 = f32x4.splat(0);
    let c0 = f32x4.splat(0), c1 = f32x4.splat(0), d0 = f32x4.splat(0), d1 = f32x4.splat(0);
    let kp = kT + (<usize>p << 2), xp = xI;
    const xEnd = xI + (<usize>Dh << 4);
    for (; xp < xEnd; xp += 16) {
      const k0 = v128.load(kp), k1 = v128.load(kp, 16);
      let x = v128.load32_splat(xp);
      a0 = f32x4.add(a0, f32x4.mul(x, k0)); a1 = f32x4.add(a1, f32x4.mul(x, k1));
      x = v128.load32_splat(xp, 4);
      b0 = f32x4.add(b0, f32x4.mul(x, k0)); b1 = f32x4.add(b1, f32x4.mul(x, k1));
      x = v128.load32_splat(xp, 8);
      c0 = f32x4.add(c0, f32x4.mul(x, k0)); c1 = f32x4.add(c1, f32x4.mul(x, k1));
      x = v128.load32_splat(xp, 12);
      d0 = f32x4.add(d0, f32x4.mul(x, k0)); d1 = f32x4.add(d1, f32x4.mul(x, k1));
      kp += ldBytes;
    }
    const sp = s + (<usize>p << 2);
    v128.store(sp, a0); v128.store(sp, a1, 16);
    v128.store(sp + ldBytes, b0); v128.store(sp + ldBytes, b1, 16);
    v128.store(sp + 2 * ldBytes, c0); v128.store(sp + 2 * ldBytes, c1, 16);
    v128.store(sp + 3 * ldBytes, d0); v128.store(sp + 3 * ldBytes, d1, 16);
  }
}

/**
 * Each row j of s (4 rows of `ld` floats): s[j][p] ·= scale for p < vis + j, −∞ for vis + j ≤ p < P8
 * (the causal mask: row j sees vis + j positions); returns the 4 rows' maxima as one f32x4.
 */
// @ts-ignore: decorator
@inline function scaleMaskMax(s: usize, ld: i32, vis: i32, P8: i32, scale: f32): v128 {
  const sv = f32x4.splat(scale), ninf = f32x4.splat(-Infinity);
  const full = vis & ~3; // positions every row sees, in whole f32x4s
  let m0 = ninf, m1 = ninf, m2 = ninf, m3 = ninf;
  for (let j = 0; j < QB; j++) {
    const row = s + <usize>j * (<usize>ld << 2);
    let m = ninf;
    let p = 0;
    for (; p < full; p += 4) {
      const x = f32x4.mul(v128.load(row + (<usize>p << 2)), sv);
      v128.store(row + (<usize>p << 2), x);
      m = f32x4.pmax(m, x);
    }
    const seen = i32x4.splat(vis + j);
    for (; p < P8; p += 4) {
      const idx = i32x4.add(i32x4.splat(p), i32x4(0, 1, 2, 3));
      const x = v128.bitselect(f32x4.mul(v128.load(row + (<usize>p << 2)), sv), ninf, i32x4.lt_s(idx, seen));
      v128.store(row + (<usize>p << 2), x);
      m = f32x4.pmax(m, x);
    }
    if (j == 0) m0 = m; else if (j == 1) m1 = m; else if (j == 2) m2 = m; else m3 = m;
  }
  // lane j = max of row j
  const t0 = f32x4.max(v128.shuffle<f32>(m0, m1, 0, 4, 1, 5), v128.shuffle<f32>(m0, m1, 2, 6, 3, 7));
  const t1 = f32x4.max(v128.shuffle<f32>(m2, m3, 0, 4, 1, 5), v128.shuffle<f32>(m2, m3, 2, 6, 3, 7));
  return f32x4.max(v128.shuffle<f32>(t0, t1, 0, 1, 4, 5), v128.shuffle<f32>(t0, t1, 2, 3, 6, 7));
}

/** out[p] = rows of s (4 rows `ld` floats apart) transposed, 4 positions at a time, for p < P8. */
// @ts-ignore: decorator
@inline function transpose4(out: usize, s: usize, ld: i32, P8: i32): void {
  const ldBytes = <usize>ld << 2;
  for (let p = 0; p < P8; p += 4) {
    const sp = s + (<usize>p << 2);
    const r0 = v128.load(sp), r1 = v128.load(sp + ldBytes), r2 = v128.load(sp + 2 * ldBytes), r3 = v128.load(sp + 3 * ldBytes);
    const t0 = v128.shuffle<f32>(r0, r1, 0, 4, 1, 5), t1 = v128.shuffle<f32>(r0, r1, 2, 6, 3, 7);
    const t2 = v128.shuffle<f32>(r2, r3, 0, 4, 1, 5), t3 = v128.shuffle<f32>(r2, r3, 2, 6, 3, 7);
    const op = out + (<usize>p << 4);
    v128.store(op, v128.shuffle<f32>(t0, t2, 0, 1, 4, 5)); v128.store(op, v128.shuffle<f32>(t0, t2, 2, 3, 6, 7), 16);
    v128.store(op, v128.shuffle<f32>(t1, t3, 0, 1, 4, 5), 32); v128.store(op, v128.shuffle<f32>(t1, t3, 2, 3, 6, 7), 48);
  }
}

/**
 * wT[p] = e^(s[·][p] − max) for p < P8, transposed (lane j: row j); returns Σ_p wT[p] (lane j: row
 * j's sum, in p order). Masked scores (−∞) give exactly 0. transpose4 fused with the exponentials
 * (a separate pass over wT measured 3-6% slower forward).
 */
// @ts-ignore: decorator
@inline function expTransposed(wT: usize, s: usize, ld: i32, P8: i32, maxv: v128): v128 {
  const ldBytes = <usize>ld << 2;
  let sum = f32x4.splat(0);
  for (let p = 0; p < P8; p += 4) {
    const sp = s + (<usize>p << 2);
    const r0 = v128.load(sp), r1 = v128.load(sp + ldBytes), r2 = v128.load(sp + 2 * ldBytes), r3 = v128.load(sp + 3 * ldBytes);
    const t0 = v128.shuffle<f32>(r0, r1, 0, 4, 1, 5), t1 = v128.shuffle<f32>(r0, r1, 2, 6, 3, 7);
    const t2 = v128.shuffle<f32>(r2, r3, 0, 4, 1, 5), t3 = v128.shuffle<f32>(r2, r3, 2, 6, 3, 7);
    const e0 = expNeg4(f32x4.sub(v128.shuffle<f32>(t0, t2, 0, 1, 4, 5), maxv));
    const e1 = expNeg4(f32x4.sub(v128.shuffle<f32>(t0, t2, 2, 3, 6, 7), maxv));
    const e2 = expNeg4(f32x4.sub(v128.shuffle<f32>(t1, t3, 0, 1, 4, 5), maxv));
    const e3 = expNeg4(f32x4.sub(v128.shuffle<f32>(t1, t3, 2, 3, 6, 7), maxv));
    sum = f32x4.add(f32x4.add(f32x4.add(f32x4.add(sum, e0), e1), e2), e3);
    const wp = wT + (<usize>p << 4);
    v128.store(wp, e0); v128.store(wp, e1, 16); v128.store(wp, e2, 32); v128.store(wp, e3, 48);
  }
  return sum;
}

/**
 * out[j] = (Σ_p wT[p][j]·rows_p)·mul[j] for the block's rows j < nr (rows_p = rows + p·stride, Dh
 * values; out rows `outStride` bytes apart). Row j sums positions p < vis + j: positions below
 * `vis` in one pass of 4-row × 8-dim tiles (one row load serves 4 queries), then the (at most 3)
 * positions only the later rows see, to those rows alone.
 */
// @ts-ignore: decorator
@inline function weightedSum4(out: usize, outStride: usize, nr: i32, wT: usize, rows: usize, stride: usize, vis: i32,
                              Dh: i32, mul: v128): void {
  let i = 0;
  for (; i + 8 <= Dh; i += 8) {
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0), b0 = f32x4.splat(0), b1 = f32x4.splat(0);
    let c0 = f32x4.splat(0), c1 = f32x4.splat(0), d0 = f32x4.splat(0), d1 = f32x4.splat(0);
    let rp = rows + (<usize>i << 2), wp = wT;
    const wEnd = wT + (<usize>vis << 4);
    for (; wp < wEnd; wp += 16) {
      const v0 = v128.load(rp), v1 = v128.load(rp, 16);
      let w = v128.load32_splat(wp);
      a0 = f32x4.add(a0, f32x4.mul(w, v0)); a1 = f32x4.add(a1, f32x4.mul(w, v1));
      w = v128.load32_splat(wp, 4);
      b0 = f32x4.add(b0, f32x4.mul(w, v0)); b1 = f32x4.add(b1, f32x4.mul(w, v1));
      w = v128.load32_splat(wp, 8);
      c0 = f32x4.add(c0, f32x4.mul(w, v0)); c1 = f32x4.add(c1, f32x4.mul(w, v1));
      w = v128.load32_splat(wp, 12);
      d0 = f32x4.add(d0, f32x4.mul(w, v0)); d1 = f32x4.add(d1, f32x4.mul(w, v1));
      rp += stride;
    }
    // the positions vis .. vis+2: row j sees vis + j of them
    for (let p = vis; p < vis + nr - 1; p++) {
      const v0 = v128.load(rp), v1 = v128.load(rp, 16), wq = wT + (<usize>p << 4);
      const j = p - vis; // rows j+1.. see it
      if (j < 1) { const w = v128.load32_splat(wq, 4); b0 = f32x4.add(b0, f32x4.mul(w, v0)); b1 = f32x4.add(b1, f32x4.mul(w, v1)); }
      if (j < 2) { const w = v128.load32_splat(wq, 8); c0 = f32x4.add(c0, f32x4.mul(w, v0)); c1 = f32x4.add(c1, f32x4.mul(w, v1)); }
      const w = v128.load32_splat(wq, 12); d0 = f32x4.add(d0, f32x4.mul(w, v0)); d1 = f32x4.add(d1, f32x4.mul(w, v1));
      rp += stride;
    }
    const op = out + (<usize>i << 2);
    let m = f32x4.splat(f32x4.extract_lane(mul, 0));
    v128.store(op, f32x4.mul(a0, m)); v128.store(op, f32x4.mul(a1, m), 16);
    if (nr > 1) {
      m = f32x4.splat(f32x4.extract_lane(mul, 1));
      v128.store(op + outStride, f32x4.mul(b0, m)); v128.store(op + outStride, f32x4.mul(b1, m), 16);
    }
    if (nr > 2) {
      m = f32x4.splat(f32x4.extract_lane(mul, 2));
      v128.store(op + 2 * outStride, f32x4.mul(c0, m)); v128.store(op + 2 * outStride, f32x4.mul(c1, m), 16);
    }
    if (nr > 3) {
      m = f32x4.splat(f32x4.extract_lane(mul, 3));
      v128.store(op + 3 * outStride, f32x4.mul(d0, m)); v128.store(op + 3 * outStride, f32x4.mul(d1, m), 16);
    }
  }
  if (i < Dh) { // Dh % 8 == 4: the last 4 dims
    let a0 = f32x4.splat(0), b0 = f32x4.splat(0), c0 = f32x4.splat(0), d0 = f32x4.splat(0);
    let rp = rows + (<usize>i << 2), wp = wT;
    const wEnd = wT + (<usize>vis << 4);
    for (; wp < wEnd; wp += 16) {
      const v0 = v128.load(rp);
      a0 = f32x4.add(a0, f32x4.mul(v128.load32_splat(wp), v0));
      b0 = f32x4.add(b0, f32x4.mul(v128.load32_splat(wp, 4), v0));
      c0 = f32x4.add(c0, f32x4.mul(v128.load32_splat(wp, 8), v0));
      d0 = f32x4.add(d0, f32x4.mul(v128.load32_splat(wp, 12), v0));
      rp += stride;
    }
    for (let p = vis; p < vis + nr - 1; p++) {
      const v0 = v128.load(rp), wq = wT + (<usize>p << 4);
      const j = p - vis;
      if (j < 1) b0 = f32x4.add(b0, f32x4.mul(v128.load32_splat(wq, 4), v0));
      if (j < 2) c0 = f32x4.add(c0, f32x4.mul(v128.load32_splat(wq, 8), v0));
      d0 = f32x4.add(d0, f32x4.mul(v128.load32_splat(wq, 12), v0));
      rp += stride;
    }
    const op = out + (<usize>i << 2);
    v128.store(op, f32x4.mul(a0, f32x4.splat(f32x4.extract_lane(mul, 0))));
    if (nr > 1) v128.store(op + outStride, f32x4.mul(b0, f32x4.splat(f32x4.extract_lane(mul, 1))));
    if (nr > 2) v128.store(op + 2 * outStride, f32x4.mul(c0, f32x4.splat(f32x4.extract_lane(mul, 2))));
    if (nr > 3) v128.store(op + 3 * outStride, f32x4.mul(d0, f32x4.splat(f32x4.extract_lane(mul, 3))));
  }
}

/**
 * Causal GQA attention (Kernels.attention) for T > 1 queries, as blocks of 4 rows: the work units
 * [uBegin, uEnd) of KV·pairs·(H/KV), pairs = ceil(ceil(T/4) / 2). Unit u is kv head g, block pair
 * b, query head h of g (in that order, g slowest): the blocks b and nb − 1 − b (nb = ceil(T/4)), so
 * every unit holds about the same causal work (early rows see few positions, late rows many) and
 * an even split of the units is an even split of the work. scratch: attentionBlocksScratchFloats
 * floats for P = pos0 + T (16-byte aligned).
 */
export function attentionBlocks(out: usize, q: usize, k: usize, v: usize, T: i32, pos0: i32, H: i32, KV: i32, Dh: i32,
                                uBegin: i32, uEnd: i32, scratch: usize): void {
  const group = H / KV, nb = (T + QB - 1) / QB, pairs = (nb + 1) >> 1;
  const ld = roundUp8(pos0 + T); // kT and score rows
  const kT = scratch, s = kT + (<usize>Dh * <usize>ld << 2), wT = s + (<usize>ld << 4), qI = wT + (<usize>ld << 4);
  const scaleQK = <f32>(1.0 / Math.sqrt(<f64>Dh));
  const pStride = <usize>KV * <usize>Dh << 2, qStride = <usize>H * <usize>Dh << 2, dhBytes = <usize>Dh << 2;
  let gBuilt = -1;
  for (let u = uBegin; u < uEnd; u++) {
    const g = u / (pairs * group), r = u % (pairs * group), pair = r / group, h = g * group + r % group;
    if (g != gBuilt) { // this range's first unit of g has its longest block: keys up to there
      transposeRows(kT, ld, k + <usize>g * dhBytes, pStride, pos0 + min(T, QB * (nb - pair)), Dh);
      gBuilt = g;
    }
    for (let side = 0; side < 2; side++) {
      const b = side == 0 ? pair : nb - 1 - pair;
      if (side == 1 && b == pair) break;
      const t0 = b * QB, nr = min(QB, T - t0);
      const vis = pos0 + t0 + 1; // positions row 0 of the block sees; row j sees vis + j
      const P8 = roundUp8(vis + nr - 1);
      const qo = <usize>t0 * qStride + <usize>h * dhBytes;
      interleave4(qI, q + qo, qStride, nr, Dh);
      dotsTile(s, qI, kT, ld, P8, Dh);                  // scores = q·kᵀ
      const maxv = scaleMaskMax(s, ld, vis, P8, scaleQK); // / sqrt(Dh), causal mask
      const sum = expTransposed(wT, s, ld, P8, maxv);    // softmax numerators, transposed
      // out = Σ_p e_p·v_p / Σ_p e_p
      weightedSum4(out + qo, qStride, nr, wT, v + <usize>g * dhBytes, pStride, vis, Dh, f32x4.div(f32x4.splat(1), sum));
    }
  }
}

/**
 * Floats of scratch attentionBackwardBlocks needs for T positions of head dim Dh: kT, vT, dkT,
 * dvT [Dh][T8], scores and dP [4][T8] each, dS transposed [T8][4], qI and doI [Dh][4].
 */
export function attentionBackwardBlocksScratchFloats(T: i32, Dh: i32): i32 {
  return (4 * Dh + 12) * roundUp8(T) + 8 * Dh;
}

/**
 * accT[i][p] += Σ_j xI[i][j]·w[j][p] for p < P8 (w: 4 rows `ld` floats apart; accT rows `ld` floats
 * apart): the block's 4 rows' contribution to a transposed gradient (dkT from dS and q, dvT from P
 * and dout), in row order j; tiles of 8 positions whose 4 weight rows stay in registers over i.
 */
// @ts-ignore: decorator
@inline function accumulateTransposed(accT: usize, xI: usize, w: usize, ld: i32, P8: i32, Dh: i32): void {
  const ldBytes = <usize>ld << 2;
  for (let p = 0; p < P8; p += 8) {
    const wp = w + (<usize>p << 2);
    const w00 = v128.load(wp), w01 = v128.load(wp, 16), w10 = v128.load(wp + ldBytes), w11 = v128.load(wp + ldBytes, 16);
    const w20 = v128.load(wp + 2 * ldBytes), w21 = v128.load(wp + 2 * ldBytes, 16);
    const w30 = v128.load(wp + 3 * ldBytes), w31 = v128.load(wp + 3 * ldBytes, 16);
    let ap = accT + (<usize>p << 2), xp = xI;
    const xEnd = xI + (<usize>Dh << 4);
    for (; xp < xEnd; xp += 16) {
      let a0 = v128.load(ap), a1 = v128.load(ap, 16);
      let x = v128.load32_splat(xp);
      a0 = f32x4.add(a0, f32x4.mul(x, w00)); a1 = f32x4.add(a1, f32x4.mul(x, w01));
      x = v128.load32_splat(xp, 4);
      a0 = f32x4.add(a0, f32x4.mul(x, w10)); a1 = f32x4.add(a1, f32x4.mul(x, w11));
      x = v128.load32_splat(xp, 8);
      a0 = f32x4.add(a0, f32x4.mul(x, w20)); a1 = f32x4.add(a1, f32x4.mul(x, w21));
      x = v128.load32_splat(xp, 12);
      a0 = f32x4.add(a0, f32x4.mul(x, w30)); a1 = f32x4.add(a1, f32x4.mul(x, w31));
      v128.store(ap, a0); v128.store(ap, a1, 16);
      ap += ldBytes;
    }
  }
}

/**
 * Gradient of attention (Kernels.attentionBackward) for one sequence of T > 1 tokens from position
 * 0, in blocks of 4 query rows, for the kv heads [g0, g1) and their query heads (the thread pool's
 * range entry point: a group's query heads write only its own dk, dv). Per block and query head,
 * as in ops.ts attentionBackward: P = softmax(q·kᵀ/sqrt(Dh)), dP = dout·vᵀ (both as 4 × 8 tiles
 * over the transposed keys and values), dS = P·(dP − Σ P·dP)/sqrt(Dh), dq = dS·K (one key row
 * load serves 4 rows), and dkᵀ += qᵀ·dS, dvᵀ += doutᵀ·P accumulate transposed in scratch over the
 * blocks (rows in order, then heads), written out once per group. scratch:
 * attentionBackwardBlocksScratchFloats(T, Dh) floats (16-byte aligned).
 */
export function attentionBackwardBlocks(dq: usize, dk: usize, dv: usize, dout: usize, q: usize, k: usize, v: usize,
                                        T: i32, H: i32, KV: i32, Dh: i32, g0: i32, g1: i32, scratch: usize): void {
  const group = H / KV, nb = (T + QB - 1) / QB;
  const ld = roundUp8(T), plane = <usize>Dh * <usize>ld << 2;
  const kT = scratch, vT = kT + plane, dkT = vT + plane, dvT = dkT + plane;
  const s = dvT + plane, dp = s + (<usize>ld << 4), dsT = dp + (<usize>ld << 4), qI = dsT + (<usize>ld << 4);
  const doI = qI + (<usize>Dh << 4);
  const ldBytes = <usize>ld << 2;
  const scaleQK = <f32>(1.0 / Math.sqrt(<f64>Dh));
  const pStride = <usize>KV * <usize>Dh << 2, qStride = <usize>H * <usize>Dh << 2, dhBytes = <usize>Dh << 2;
  for (let g = g0; g < g1; g++) {
    const kg = k + <usize>g * dhBytes;
    transposeRows(kT, ld, kg, pStride, T, Dh);
    transposeRows(vT, ld, v + <usize>g * dhBytes, pStride, T, Dh);
    memory.fill(dkT, 0, plane * 2); // dkT, dvT
    for (let b = 0; b < nb; b++) {
      const t0 = b * QB, nr = min(QB, T - t0);
      const vis = t0 + 1, P8 = roundUp8(vis + nr - 1);
      for (let h = g * group; h < (g + 1) * group; h++) {
        const qo = <usize>t0 * qStride + <usize>h * dhBytes;
        interleave4(qI, q + qo, qStride, nr, Dh);
        interleave4(doI, dout + qo, qStride, nr, Dh);
        dotsTile(s, qI, kT, ld, P8, Dh);  // scores = q·kᵀ
        dotsTile(dp, doI, vT, ld, P8, Dh); // dP = dout·vᵀ
        const maxv = scaleMaskMax(s, ld, vis, P8, scaleQK);
        // per row j: P = e^(s − max) / Σ e (in place in s), Σ_p P·dP, then dS = P·(dP − Σ P·dP)/sqrt(Dh) in place in dp
        for (let j = 0; j < QB; j++) {
          const row = s + <usize>j * ldBytes, drow = dp + <usize>j * ldBytes;
          const m = f32x4.splat(j == 0 ? f32x4.extract_lane(maxv, 0) : j == 1 ? f32x4.extract_lane(maxv, 1)
            : j == 2 ? f32x4.extract_lane(maxv, 2) : f32x4.extract_lane(maxv, 3));
          let sum = f32x4.splat(0);
          for (let p = 0; p < P8; p += 4) {
            const e = expNeg4(f32x4.sub(v128.load(row + (<usize>p << 2)), m));
            v128.store(row + (<usize>p << 2), e);
            sum = f32x4.add(sum, e);
          }
          const inv = f32x4.div(f32x4.splat(1), f32x4.splat(hsum(sum)));
          let pdp = f32x4.splat(0);
          for (let p = 0; p < P8; p += 4) {
            const pr = f32x4.mul(v128.load(row + (<usize>p << 2)), inv);
            v128.store(row + (<usize>p << 2), pr);
            pdp = f32x4.add(pdp, f32x4.mul(pr, v128.load(drow + (<usize>p << 2))));
          }
          const pdpv = f32x4.splat(hsum(pdp)), sv = f32x4.splat(scaleQK);
          for (let p = 0; p < P8; p += 4) {
            const o = <usize>p << 2;
            v128.store(drow + o, f32x4.mul(f32x4.mul(v128.load(row + o), f32x4.sub(v128.load(drow + o), pdpv)), sv));
          }
        }
        transpose4(dsT, dp, ld, P8);
        weightedSum4(dq + qo, qStride, nr, dsT, kg, pStride, vis, Dh, f32x4.splat(1)); // dq = dS·K
        accumulateTransposed(dkT, qI, dp, ld, P8, Dh);  // dkᵀ += qᵀ·dS
        accumulateTransposed(dvT, doI, s, ld, P8, Dh);  // dvᵀ += doutᵀ·P
      }
    }
    // dk, dv rows of g from their transposes
    for (let p = 0; p < T; p++) {
      const o = <usize>p * pStride + <usize>g * dhBytes;
      for (let i = 0; i < Dh; i++) {
        const c = <usize>i * ldBytes + (<usize>p << 2);
        store<f32>(dk + o + (<usize>i << 2), load<f32>(dkT + c));
        store<f32>(dv + o + (<usize>i << 2), load<f32>(dvT + c));
      }
    }
  }
}
