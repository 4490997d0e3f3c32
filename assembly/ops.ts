// The elementwise and row-wise operations of the forward pass: RMSNorm, rotary embedding,
// causal GQA attention, SwiGLU's silu(gate)·up, residual add, softmax. Same math as
// src/kernels/ts/index.ts; each loop does 4 lanes at a time with a scalar tail.

import { hsum, hsum4, exp4, expScalar } from "./simd";

/**
 * Σ x[i] over n f32, read as one sequential stream: a streaming-read baseline for the bench
 * (4 accumulators, 16 values per step).
 */
export function sumF32(x: usize, n: i32): f32 {
  let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
  let i = 0;
  for (; i + 16 <= n; i += 16) {
    const p = x + (<usize>i << 2);
    a0 = f32x4.add(a0, v128.load(p)); a1 = f32x4.add(a1, v128.load(p, 16));
    a2 = f32x4.add(a2, v128.load(p, 32)); a3 = f32x4.add(a3, v128.load(p, 48));
  }
  let s = hsum(f32x4.add(f32x4.add(a0, a1), f32x4.add(a2, a3)));
  for (; i < n; i++) s += load<f32>(x + (<usize>i << 2));
  return s;
}

/**
 * Σ x[i] over n f32, read as four sequential streams, one per quarter of x: the streaming-read
 * baseline the decode matvec (which reads W the same way) is measured against. On the bench
 * machine four streams read DRAM about 1.6× faster than one.
 */
export function sumF32Quarters(x: usize, n: i32): f32 {
  const q = (n >> 2) & ~7; // values per quarter, a multiple of 8
  const qb = <usize>q << 2;
  let a = f32x4.splat(0), b = f32x4.splat(0), c = f32x4.splat(0), d = f32x4.splat(0);
  const end = x + qb;
  for (let p = x; p < end; p += 32) {
    a = f32x4.add(a, f32x4.add(v128.load(p), v128.load(p, 16)));
    b = f32x4.add(b, f32x4.add(v128.load(p + qb), v128.load(p + qb, 16)));
    c = f32x4.add(c, f32x4.add(v128.load(p + 2 * qb), v128.load(p + 2 * qb, 16)));
    d = f32x4.add(d, f32x4.add(v128.load(p + 3 * qb), v128.load(p + 3 * qb, 16)));
  }
  let s = hsum(f32x4.add(f32x4.add(a, b), f32x4.add(c, d)));
  for (let i = 4 * q; i < n; i++) s += load<f32>(x + (<usize>i << 2));
  return s;
}

/** Σ a[i]·b[i] over n f32 (4 independent accumulators). */
// @ts-ignore: decorator
@inline function dot(a: usize, b: usize, n: i32): f32 {
  let s0 = f32x4.splat(0), s1 = f32x4.splat(0);
  let i = 0;
  for (; i + 8 <= n; i += 8) {
    const o = <usize>i << 2;
    s0 = f32x4.add(s0, f32x4.mul(v128.load(a + o), v128.load(b + o)));
    s1 = f32x4.add(s1, f32x4.mul(v128.load(a + o, 16), v128.load(b + o, 16)));
  }
  if (i + 4 <= n) {
    const o = <usize>i << 2;
    s0 = f32x4.add(s0, f32x4.mul(v128.load(a + o), v128.load(b + o)));
    i += 4;
  }
  let s = hsum(f32x4.add(s0, s1));
  for (; i < n; i++) s += load<f32>(a + (<usize>i << 2)) * load<f32>(b + (<usize>i << 2));
  return s;
}

/** yTD[t,:] = xTD[t,:] / sqrt(mean(xTD[t,:]²) + eps) · wD  (y may alias x). */
export function rmsnorm(y: usize, x: usize, w: usize, T: i32, D: i32, eps: f32): void {
  for (let t = 0; t < T; t++) {
    const xt = x + (<usize>t * <usize>D << 2), yt = y + (<usize>t * <usize>D << 2);
    const ss = dot(xt, xt, D);
    const scale = <f32>(1.0 / Math.sqrt(<f64>ss / <f64>D + <f64>eps));
    const sv = f32x4.splat(scale);
    let i = 0;
    for (; i + 4 <= D; i += 4) {
      const o = <usize>i << 2;
      v128.store(yt + o, f32x4.mul(f32x4.mul(v128.load(xt + o), sv), v128.load(w + o)));
    }
    for (; i < D; i++) {
      const o = <usize>i << 2;
      store<f32>(yt + o, load<f32>(xt + o) * scale * load<f32>(w + o));
    }
  }
}

/** Rotary embedding in place on xTHDh at positions pos0.., "rotate_half" pairing (i, i + Dh/2). */
export function rope(x: usize, T: i32, H: i32, Dh: i32, pos0: i32, cos: usize, sin: usize): void {
  const R = Dh >> 1;
  const rBytes = <usize>R << 2;
  for (let t = 0; t < T; t++) {
    const c = cos + (<usize>(pos0 + t) * <usize>R << 2), s = sin + (<usize>(pos0 + t) * <usize>R << 2);
    for (let h = 0; h < H; h++) {
      const lo = x + (<usize>(t * H + h) * <usize>Dh << 2), hi = lo + rBytes;
      let i = 0;
      for (; i + 4 <= R; i += 4) {
        const o = <usize>i << 2;
        const cv = v128.load(c + o), sv = v128.load(s + o);
        const a = v128.load(lo + o), b = v128.load(hi + o);
        v128.store(lo + o, f32x4.sub(f32x4.mul(a, cv), f32x4.mul(b, sv)));  // x[i]   = a·cos − b·sin
        v128.store(hi + o, f32x4.add(f32x4.mul(b, cv), f32x4.mul(a, sv)));  // x[i+R] = b·cos + a·sin
      }
      for (; i < R; i++) {
        const o = <usize>i << 2;
        const cv = load<f32>(c + o), sv = load<f32>(s + o);
        const a = load<f32>(lo + o), b = load<f32>(hi + o);
        store<f32>(lo + o, a * cv - b * sv);
        store<f32>(hi + o, b * cv + a * sv);
      }
    }
  }
}

/** In place: x[i] = e^(x[i] − max), returns Σ of the new values. */
// @ts-ignore: decorator
@inline function expShiftSum(x: usize, n: i32, max: f32): f32 {
  const m = f32x4.splat(max);
  let sv = f32x4.splat(0);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const p = x + (<usize>i << 2);
    const e = exp4(f32x4.sub(v128.load(p), m));
    v128.store(p, e);
    sv = f32x4.add(sv, e);
  }
  let s = hsum(sv);
  for (; i < n; i++) {
    const p = x + (<usize>i << 2);
    const e = expScalar(load<f32>(p) - max);
    store<f32>(p, e);
    s += e;
  }
  return s;
}

// @ts-ignore: decorator
@inline function rowMax(x: usize, n: i32): f32 {
  let mv = f32x4.splat(-Infinity);
  let i = 0;
  for (; i + 4 <= n; i += 4) mv = f32x4.max(mv, v128.load(x + (<usize>i << 2)));
  let m = max(max(f32x4.extract_lane(mv, 0), f32x4.extract_lane(mv, 1)), max(f32x4.extract_lane(mv, 2), f32x4.extract_lane(mv, 3)));
  for (; i < n; i++) m = max(m, load<f32>(x + (<usize>i << 2)));
  return m;
}

/** x[i] *= s for n values. */
// @ts-ignore: decorator
@inline function scale(x: usize, n: i32, s: f32): void {
  const sv = f32x4.splat(s);
  let i = 0;
  for (; i + 4 <= n; i += 4) v128.store(x + (<usize>i << 2), f32x4.mul(v128.load(x + (<usize>i << 2)), sv));
  for (; i < n; i++) store<f32>(x + (<usize>i << 2), load<f32>(x + (<usize>i << 2)) * s);
}

/** In-place softmax of each of the R rows of xRC. */
export function softmax(x: usize, R: i32, C: i32): void {
  for (let r = 0; r < R; r++) {
    const row = x + (<usize>r * <usize>C << 2);
    const sum = expShiftSum(row, C, rowMax(row, C));
    scale(row, C, <f32>1 / sum);
  }
}

/**
 * Causal GQA attention (see Kernels.attention). For each new token t and query head h:
 *   scores[p] = q·k_p / sqrt(Dh) for p <= pos0+t, softmax, out = Σ_p scores[p]·v_p.
 * k and v rows of position p, kv head g live at ((p·KV + g)·Dh).
 */
export function attention(out: usize, q: usize, k: usize, v: usize, T: i32, pos0: i32, H: i32, KV: i32, Dh: i32, scores: usize): void {
  attentionHeads(out, q, k, v, T, pos0, H, KV, Dh, 0, H, scores);
}

/**
 * `attention` for the query heads [hBegin, hEnd) only (one thread's share; heads are independent,
 * so any split is bit-identical). `scores` is this thread's scratch of pos0 + T floats.
 */
export function attentionHeads(out: usize, q: usize, k: usize, v: usize, T: i32, pos0: i32, H: i32, KV: i32, Dh: i32,
                               hBegin: i32, hEnd: i32, scores: usize): void {
  const group = H / KV;
  const scaleQK = <f32>(1.0 / Math.sqrt(<f64>Dh));
  const pStride = <usize>KV * <usize>Dh << 2; // bytes from one position to the next in the cache
  for (let t = 0; t < T; t++) {
    const P = pos0 + t + 1;
    for (let h = hBegin; h < hEnd; h++) {
      const g = h / group;
      const qh = q + (<usize>(t * H + h) * <usize>Dh << 2);
      const kg = k + (<usize>g * <usize>Dh << 2), vg = v + (<usize>g * <usize>Dh << 2);
      // scores = q·Kᵀ / sqrt(Dh), four positions at a time
      let p = 0;
      if ((Dh & 3) == 0) {
        for (; p + 4 <= P; p += 4) {
          const k0 = kg + <usize>p * pStride, k1 = k0 + pStride, k2 = k1 + pStride, k3 = k2 + pStride;
          let s0 = f32x4.splat(0), s1 = f32x4.splat(0), s2 = f32x4.splat(0), s3 = f32x4.splat(0);
          for (let i = 0; i < Dh; i += 4) {
            const o = <usize>i << 2;
            const qv = v128.load(qh + o);
            s0 = f32x4.add(s0, f32x4.mul(qv, v128.load(k0 + o)));
            s1 = f32x4.add(s1, f32x4.mul(qv, v128.load(k1 + o)));
            s2 = f32x4.add(s2, f32x4.mul(qv, v128.load(k2 + o)));
            s3 = f32x4.add(s3, f32x4.mul(qv, v128.load(k3 + o)));
          }
          v128.store(scores + (<usize>p << 2), f32x4.mul(hsum4(s0, s1, s2, s3), f32x4.splat(scaleQK)));
        }
      }
      for (; p < P; p++) store<f32>(scores + (<usize>p << 2), dot(qh, kg + <usize>p * pStride, Dh) * scaleQK);
      // softmax over the P visible positions (normalization folded into the output below)
      const inv = <f32>1 / expShiftSum(scores, P, rowMax(scores, P));
      // out = Σ_p e_p·v_p / Σ e, 16 output dims at a time held in registers
      const oh = out + (<usize>(t * H + h) * <usize>Dh << 2);
      let i = 0;
      for (; i + 16 <= Dh; i += 16) {
        let o0 = f32x4.splat(0), o1 = f32x4.splat(0), o2 = f32x4.splat(0), o3 = f32x4.splat(0);
        let vp = vg + (<usize>i << 2);
        for (let j = 0; j < P; j++) {
          const e = v128.load32_splat(scores + (<usize>j << 2));
          o0 = f32x4.add(o0, f32x4.mul(e, v128.load(vp))); o1 = f32x4.add(o1, f32x4.mul(e, v128.load(vp, 16)));
          o2 = f32x4.add(o2, f32x4.mul(e, v128.load(vp, 32))); o3 = f32x4.add(o3, f32x4.mul(e, v128.load(vp, 48)));
          vp += pStride;
        }
        const iv = f32x4.splat(inv);
        const op = oh + (<usize>i << 2);
        v128.store(op, f32x4.mul(o0, iv)); v128.store(op, f32x4.mul(o1, iv), 16);
        v128.store(op, f32x4.mul(o2, iv), 32); v128.store(op, f32x4.mul(o3, iv), 48);
      }
      for (; i + 4 <= Dh; i += 4) {
        let o0 = f32x4.splat(0);
        let vp = vg + (<usize>i << 2);
        for (let j = 0; j < P; j++) {
          o0 = f32x4.add(o0, f32x4.mul(v128.load32_splat(scores + (<usize>j << 2)), v128.load(vp)));
          vp += pStride;
        }
        v128.store(oh + (<usize>i << 2), f32x4.mul(o0, f32x4.splat(inv)));
      }
      for (; i < Dh; i++) {
        let o: f32 = 0;
        let vp = vg + (<usize>i << 2);
        for (let j = 0; j < P; j++) {
          o += load<f32>(scores + (<usize>j << 2)) * load<f32>(vp);
          vp += pStride;
        }
        store<f32>(oh + (<usize>i << 2), o * inv);
      }
    }
  }
}

/** out = silu(gate)·up = gate / (1 + e^−gate) · up  (out may alias gate). */
export function siluMul(out: usize, gate: usize, up: usize, n: i32): void {
  siluMulRange(out, gate, up, n, 0, n);
}

/**
 * `siluMul` for the elements [begin, end) of the n only (one thread's share). Every element is
 * computed alone, the same way in the SIMD body and the scalar tail, so any split is bit-identical.
 */
export function siluMulRange(out: usize, gate: usize, up: usize, n: i32, begin: i32, end: i32): void {
  let i = begin;
  const one = f32x4.splat(1);
  for (; i + 4 <= end; i += 4) {
    const o = <usize>i << 2;
    const g = v128.load(gate + o);
    const sig = f32x4.div(g, f32x4.add(one, exp4(f32x4.neg(g))));
    v128.store(out + o, f32x4.mul(sig, v128.load(up + o)));
  }
  for (; i < end; i++) {
    const o = <usize>i << 2;
    const g = load<f32>(gate + o);
    store<f32>(out + o, g / (1 + expScalar(-g)) * load<f32>(up + o));
  }
}

/** y += x over n values. */
export function add(y: usize, x: usize, n: i32): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    v128.store(y + o, f32x4.add(v128.load(y + o), v128.load(x + o)));
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    store<f32>(y + o, load<f32>(y + o) + load<f32>(x + o));
  }
}
