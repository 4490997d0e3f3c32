// The elementwise and row-wise operations of the forward pass: RMSNorm, rotary embedding,
// causal GQA attention, SwiGLU's silu(gate)·up, residual add, cross-entropy. Same math as
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
 * baseline the decode matvec (which reads W the same way) is measured against (one stream vs
 * four: BENCHMARKS.md, "Figures cited in the source").
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

/** The four dots x·r_j, r_j = rows + j·stride (j < 4), as one f32x4; Dh a multiple of 4. */
// @ts-ignore: decorator
@inline function dots4(x: usize, rows: usize, stride: usize, Dh: i32): v128 {
  const k0 = rows, k1 = k0 + stride, k2 = k1 + stride, k3 = k2 + stride;
  let s0 = f32x4.splat(0), s1 = f32x4.splat(0), s2 = f32x4.splat(0), s3 = f32x4.splat(0);
  for (let i = 0; i < Dh; i += 4) {
    const o = <usize>i << 2;
    const xv = v128.load(x + o);
    s0 = f32x4.add(s0, f32x4.mul(xv, v128.load(k0 + o)));
    s1 = f32x4.add(s1, f32x4.mul(xv, v128.load(k1 + o)));
    s2 = f32x4.add(s2, f32x4.mul(xv, v128.load(k2 + o)));
    s3 = f32x4.add(s3, f32x4.mul(xv, v128.load(k3 + o)));
  }
  return hsum4(s0, s1, s2, s3);
}

/** yTD[t,:] = xTD[t,:] / sqrt(mean(xTD[t,:]²) + eps) · wD  (y may alias x). */
export function rmsnorm(y: usize, x: usize, w: usize, T: i32, D: i32, eps: f32): void {
  rmsnormRows(y, x, w, T, D, eps, 0, T);
}

/** `rmsnorm` for the rows [begin, end) only (one thread's share; rows are independent). */
export function rmsnormRows(y: usize, x: usize, w: usize, T: i32, D: i32, eps: f32, begin: i32, end: i32): void {
  for (let t = begin; t < end; t++) {
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

/**
 * Gradient of rmsnorm (r recomputed per row), g = dy·w:  dw += Σ_t dy·x·r,  dx += r·g − x·r³·mean(g·x).
 */
export function rmsnormBackward(dx: usize, dw: usize, dy: usize, x: usize, w: usize, T: i32, D: i32, eps: f32): void {
  for (let t = 0; t < T; t++) {
    const off = <usize>t * <usize>D << 2;
    const xt = x + off, dyt = dy + off, dxt = dx + off;
    const ss = dot(xt, xt, D);
    const r = <f32>(1.0 / Math.sqrt(<f64>ss / <f64>D + <f64>eps));
    let gxv = f32x4.splat(0);
    let i = 0;
    for (; i + 4 <= D; i += 4) {
      const o = <usize>i << 2;
      gxv = f32x4.add(gxv, f32x4.mul(f32x4.mul(v128.load(dyt + o), v128.load(w + o)), v128.load(xt + o)));
    }
    let gx = hsum(gxv);
    for (; i < D; i++) {
      const o = <usize>i << 2;
      gx += load<f32>(dyt + o) * load<f32>(w + o) * load<f32>(xt + o);
    }
    const c = r * r * r * gx / <f32>D;
    const rv = f32x4.splat(r), cv = f32x4.splat(c);
    i = 0;
    for (; i + 4 <= D; i += 4) {
      const o = <usize>i << 2;
      const xv = v128.load(xt + o), dyv = v128.load(dyt + o);
      v128.store(dw + o, f32x4.add(v128.load(dw + o), f32x4.mul(f32x4.mul(dyv, xv), rv)));
      v128.store(dxt + o, f32x4.add(v128.load(dxt + o),
        f32x4.sub(f32x4.mul(f32x4.mul(rv, dyv), v128.load(w + o)), f32x4.mul(cv, xv))));
    }
    for (; i < D; i++) {
      const o = <usize>i << 2;
      const xi = load<f32>(xt + o), dyi = load<f32>(dyt + o);
      store<f32>(dw + o, load<f32>(dw + o) + dyi * xi * r);
      store<f32>(dxt + o, load<f32>(dxt + o) + r * dyi * load<f32>(w + o) - c * xi);
    }
  }
}

/** Rotary embedding in place on xTHDh at positions pos0.., "rotate_half" pairing (i, i + Dh/2). */
export function rope(x: usize, T: i32, H: i32, Dh: i32, pos0: i32, cos: usize, sin: usize): void {
  rotate(x, T, H, Dh, pos0, cos, sin, 1, 0, T);
}

/** Gradient of rope, in place: the rotation by the opposite angle (sin → −sin). */
export function ropeBackward(x: usize, T: i32, H: i32, Dh: i32, pos0: i32, cos: usize, sin: usize): void {
  rotate(x, T, H, Dh, pos0, cos, sin, -1, 0, T);
}

/**
 * rope (sign 1) or ropeBackward (sign −1) for the tokens [begin, end) only (one thread's share;
 * every value is rotated on its own).
 */
export function rotateRows(x: usize, T: i32, H: i32, Dh: i32, pos0: i32, cos: usize, sin: usize, sign: f32,
                           begin: i32, end: i32): void {
  rotate(x, T, H, Dh, pos0, cos, sin, sign, begin, end);
}

// @ts-ignore: decorator
@inline function rotate(x: usize, T: i32, H: i32, Dh: i32, pos0: i32, cos: usize, sin: usize, sign: f32,
                        begin: i32, end: i32): void {
  const R = Dh >> 1;
  const rBytes = <usize>R << 2;
  const signv = f32x4.splat(sign);
  for (let t = begin; t < end; t++) {
    const c = cos + (<usize>(pos0 + t) * <usize>R << 2), s = sin + (<usize>(pos0 + t) * <usize>R << 2);
    for (let h = 0; h < H; h++) {
      const lo = x + (<usize>(t * H + h) * <usize>Dh << 2), hi = lo + rBytes;
      let i = 0;
      for (; i + 4 <= R; i += 4) {
        const o = <usize>i << 2;
        const cv = v128.load(c + o), sv = f32x4.mul(v128.load(s + o), signv);
        const a = v128.load(lo + o), b = v128.load(hi + o);
        v128.store(lo + o, f32x4.sub(f32x4.mul(a, cv), f32x4.mul(b, sv)));  // x[i]   = a·cos − b·sin
        v128.store(hi + o, f32x4.add(f32x4.mul(b, cv), f32x4.mul(a, sv)));  // x[i+R] = b·cos + a·sin
      }
      for (; i < R; i++) {
        const o = <usize>i << 2;
        const cv = load<f32>(c + o), sv = load<f32>(s + o) * sign;
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
  // pmax: one maxps (f32x4.max's NaN and signed-zero rules cost ~7 x86 instructions). A NaN x is
  // then skipped here, but the caller's e^(x − max) of it is NaN all the same; ±0 shift alike.
  for (; i + 4 <= n; i += 4) mv = f32x4.pmax(mv, v128.load(x + (<usize>i << 2)));
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

/**
 * Causal GQA attention (see Kernels.attention). For each new token t and query head h:
 *   scores[p] = q·k_p / sqrt(Dh) for p <= pos0+t, softmax, out = Σ_p scores[p]·v_p.
 * k and v rows of position p, kv head g live at ((p·KV + g)·Dh). One row at a time: decode runs
 * it; prefill and training take the blocked kernels of attention.ts where they apply.
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
          v128.store(scores + (<usize>p << 2), f32x4.mul(dots4(qh, kg + <usize>p * pStride, pStride, Dh), f32x4.splat(scaleQK)));
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

/** Gradient of siluMul: dgate = dout·up·σ(g)(1 + g(1 − σ(g))),  dup = dout·silu(g)  (overwrites both). */
export function siluMulBackward(dgate: usize, dup: usize, dout: usize, gate: usize, up: usize, n: i32): void {
  siluMulBackwardRange(dgate, dup, dout, gate, up, n, 0, n);
}

/** `siluMulBackward` for the elements [begin, end) only (one thread's share; as siluMulRange). */
export function siluMulBackwardRange(dgate: usize, dup: usize, dout: usize, gate: usize, up: usize, n: i32,
                                     begin: i32, end: i32): void {
  let i = begin;
  const one = f32x4.splat(1);
  for (; i + 4 <= end; i += 4) {
    const o = <usize>i << 2;
    const g = v128.load(gate + o), d = v128.load(dout + o);
    const sig = f32x4.div(one, f32x4.add(one, exp4(f32x4.neg(g))));
    const dsilu = f32x4.mul(sig, f32x4.add(one, f32x4.mul(g, f32x4.sub(one, sig))));
    v128.store(dgate + o, f32x4.mul(f32x4.mul(d, v128.load(up + o)), dsilu));
    v128.store(dup + o, f32x4.mul(d, f32x4.mul(g, sig)));
  }
  for (; i < end; i++) {
    const o = <usize>i << 2;
    const g = load<f32>(gate + o), d = load<f32>(dout + o);
    const sig: f32 = 1 / (1 + expScalar(-g));
    store<f32>(dgate + o, d * load<f32>(up + o) * sig * (1 + g * (1 - sig)));
    store<f32>(dup + o, d * g * sig);
  }
}

/** out = max(x, 0) over n values (the vanilla ReLU FFN; out may alias x). */
export function relu(out: usize, x: usize, n: i32): void {
  let i = 0;
  const zero = f32x4.splat(0);
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    const v = v128.load(x + o);
    v128.store(out + o, v128.bitselect(v, zero, f32x4.gt(v, zero)));
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    const v = load<f32>(x + o);
    store<f32>(out + o, v > 0 ? v : 0);
  }
}

/** Gradient of relu: dx = dout where x > 0, else 0 (overwrites dx; dx may alias dout). */
export function reluBackward(dx: usize, dout: usize, x: usize, n: i32): void {
  let i = 0;
  const zero = f32x4.splat(0);
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    v128.store(dx + o, v128.bitselect(v128.load(dout + o), zero, f32x4.gt(v128.load(x + o), zero)));
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    store<f32>(dx + o, load<f32>(x + o) > 0 ? load<f32>(dout + o) : 0);
  }
}

/** y += x over n values. */
export function add(y: usize, x: usize, n: i32): void {
  addRange(y, x, n, 0, n);
}

/** `add` for the elements [begin, end) only (one thread's share). */
export function addRange(y: usize, x: usize, n: i32, begin: i32, end: i32): void {
  let i = begin;
  for (; i + 4 <= end; i += 4) {
    const o = <usize>i << 2;
    v128.store(y + o, f32x4.add(v128.load(y + o), v128.load(x + o)));
  }
  for (; i < end; i++) {
    const o = <usize>i << 2;
    store<f32>(y + o, load<f32>(y + o) + load<f32>(x + o));
  }
}

/**
 * Gradient of attention for one sequence of T tokens from position 0, for the kv heads [g0, g1)
 * and their query heads (so the kv heads can be split across workers without changing a bit).
 * Overwrites dq of those query heads and dk, dv of those kv heads. Probabilities are recomputed
 * per query row; scratch holds 2·T floats (P, then dP). Layout as in `attention`.
 */
export function attentionBackward(dq: usize, dk: usize, dv: usize, dout: usize, q: usize, k: usize, v: usize,
                                  T: i32, H: i32, KV: i32, Dh: i32, scratch: usize, g0: i32, g1: i32): void {
  const group = H / KV;
  const scaleQK = <f32>(1.0 / Math.sqrt(<f64>Dh));
  const pStride = <usize>KV * <usize>Dh << 2;
  const dhBytes = <usize>Dh << 2;
  const pr = scratch, dp = scratch + (<usize>T << 2);
  for (let p = 0; p < T; p++) {
    for (let g = g0; g < g1; g++) {
      const o = <usize>p * pStride + (<usize>g * dhBytes);
      memory.fill(dk + o, 0, dhBytes);
      memory.fill(dv + o, 0, dhBytes);
    }
  }
  for (let t = 0; t < T; t++) {
    const P = t + 1;
    for (let h = g0 * group; h < g1 * group; h++) {
      const g = h / group;
      const qo = <usize>(t * H + h) * dhBytes;
      const qh = q + qo, doh = dout + qo, dqh = dq + qo;
      const kg = k + <usize>g * dhBytes, vg = v + <usize>g * dhBytes;
      const dkg = dk + <usize>g * dhBytes, dvg = dv + <usize>g * dhBytes;
      // P = softmax(q·kᵀ / sqrt(Dh)) over p ≤ t, and dP_p = dout·v_p
      for (let p = 0; p < P; p++) {
        store<f32>(pr + (<usize>p << 2), dot(qh, kg + <usize>p * pStride, Dh) * scaleQK);
        store<f32>(dp + (<usize>p << 2), dot(doh, vg + <usize>p * pStride, Dh));
      }
      const inv = <f32>1 / expShiftSum(pr, P, rowMax(pr, P));
      scale(pr, P, inv);
      const pdp = dot(pr, dp, P);
      memory.fill(dqh, 0, dhBytes);
      for (let p = 0; p < P; p++) {
        const pp = load<f32>(pr + (<usize>p << 2));
        const ds = pp * (load<f32>(dp + (<usize>p << 2)) - pdp) * scaleQK;
        const kp = kg + <usize>p * pStride, dkp = dkg + <usize>p * pStride, dvp = dvg + <usize>p * pStride;
        const dsv = f32x4.splat(ds), ppv = f32x4.splat(pp);
        let i = 0;
        for (; i + 4 <= Dh; i += 4) {
          const o = <usize>i << 2;
          v128.store(dqh + o, f32x4.add(v128.load(dqh + o), f32x4.mul(dsv, v128.load(kp + o))));   // dq += dS_p k_p
          v128.store(dkp + o, f32x4.add(v128.load(dkp + o), f32x4.mul(dsv, v128.load(qh + o))));   // dk_p += dS_p q
          v128.store(dvp + o, f32x4.add(v128.load(dvp + o), f32x4.mul(ppv, v128.load(doh + o))));  // dv_p += P_p dout
        }
        for (; i < Dh; i++) {
          const o = <usize>i << 2;
          store<f32>(dqh + o, load<f32>(dqh + o) + ds * load<f32>(kp + o));
          store<f32>(dkp + o, load<f32>(dkp + o) + ds * load<f32>(qh + o));
          store<f32>(dvp + o, load<f32>(dvp + o) + pp * load<f32>(doh + o));
        }
      }
    }
  }
}

/**
 * attentionBackward, blocked over R query rows at a time: each dk_p, dv_p is read and written
 * once per R rows instead of once per row and head, dq stays in registers, and the scores and
 * dP_p = dout·v_p are computed four positions at a time (the scores as the forward sums them). R
 * does not change a bit: every sum runs in the same order whatever R is. For the KV groups [g0, g1) (the thread pool's range entry
 * point, scratch last). scratch: 2·(H/KV)·R·T floats, probabilities P then dS = P(dP − P·dP)/sqrt(Dh)
 * of the group's heads, [head][row][position].
 */
export function attentionBackwardBlocked(dq: usize, dk: usize, dv: usize, dout: usize, q: usize, k: usize, v: usize,
                                         T: i32, H: i32, KV: i32, Dh: i32, R: i32, g0: i32, g1: i32, scratch: usize): void {
  const group = H / KV;
  const scaleQK = <f32>(1.0 / Math.sqrt(<f64>Dh));
  const pStride = <usize>KV * <usize>Dh << 2, qStride = <usize>H * <usize>Dh << 2;
  const dhBytes = <usize>Dh << 2, rowBytes = <usize>T << 2;
  const prAll = scratch, dsAll = scratch + <usize>(group * R) * rowBytes;
  for (let g = g0; g < g1; g++) {
    for (let p = 0; p < T; p++) {
      const o = <usize>p * pStride + <usize>g * dhBytes;
      memory.fill(dk + o, 0, dhBytes);
      memory.fill(dv + o, 0, dhBytes);
    }
    const kg = k + <usize>g * dhBytes, vg = v + <usize>g * dhBytes;
    const dkg = dk + <usize>g * dhBytes, dvg = dv + <usize>g * dhBytes;
    for (let t0 = 0; t0 < T; t0 += R) {
      const nR = min(R, T - t0);
      // 1. per row and head: P = softmax(q·kᵀ / sqrt(Dh)) over p ≤ t, dP_p = dout·v_p, dS; then dq = Σ_p dS_p k_p
      for (let r = 0; r < nR; r++) {
        const t = t0 + r, P = t + 1;
        for (let hh = 0; hh < group; hh++) {
          const qo = <usize>t * qStride + <usize>(g * group + hh) * dhBytes;
          const qh = q + qo, doh = dout + qo;
          const pr = prAll + <usize>(hh * R + r) * rowBytes, ds = dsAll + <usize>(hh * R + r) * rowBytes;
          let p = 0;
          if ((Dh & 3) == 0) { // four positions at a time, the scores summed as the forward sums them
            for (; p + 4 <= P; p += 4) {
              const o = <usize>p * pStride;
              v128.store(pr + (<usize>p << 2), f32x4.mul(dots4(qh, kg + o, pStride, Dh), f32x4.splat(scaleQK)));
              v128.store(ds + (<usize>p << 2), dots4(doh, vg + o, pStride, Dh));
            }
          }
          for (; p < P; p++) {
            store<f32>(pr + (<usize>p << 2), dot(qh, kg + <usize>p * pStride, Dh) * scaleQK);
            store<f32>(ds + (<usize>p << 2), dot(doh, vg + <usize>p * pStride, Dh));
          }
          const inv = <f32>1 / expShiftSum(pr, P, rowMax(pr, P));
          scale(pr, P, inv);
          const pdp = dot(pr, ds, P);
          const pdpv = f32x4.splat(pdp), sv = f32x4.splat(scaleQK);
          for (p = 0; p + 4 <= P; p += 4) {
            const o = <usize>p << 2;
            v128.store(ds + o, f32x4.mul(f32x4.mul(v128.load(pr + o), f32x4.sub(v128.load(ds + o), pdpv)), sv));
          }
          for (; p < P; p++) {
            const o = <usize>p << 2;
            store<f32>(ds + o, load<f32>(pr + o) * (load<f32>(ds + o) - pdp) * scaleQK);
          }
          weightedRows(dq + qo, ds, kg, pStride, P, Dh);
        }
      }
      // 2. dk_p += Σ_(t, h) dS[h, t, p] q[t, h],  dv_p += Σ_(t, h) P[h, t, p] dout[t, h], rows t ≥ p in order
      const tEnd = t0 + nR;
      for (let p = 0; p < tEnd; p++) {
        const rFirst = max(0, p - t0);
        const dkp = dkg + <usize>p * pStride, dvp = dvg + <usize>p * pStride;
        let i = 0;
        for (; i + 8 <= Dh; i += 8) {
          const io = <usize>i << 2;
          let k0 = v128.load(dkp + io), k1 = v128.load(dkp + io, 16), v0 = v128.load(dvp + io), v1 = v128.load(dvp + io, 16);
          for (let r = rFirst; r < nR; r++) {
            const rowQ = <usize>(t0 + r) * qStride + <usize>(g * group) * dhBytes + io;
            for (let hh = 0; hh < group; hh++) {
              const so = <usize>(hh * R + r) * rowBytes + (<usize>p << 2);
              const dsv = v128.load32_splat(dsAll + so), ppv = v128.load32_splat(prAll + so);
              const qp = q + rowQ + <usize>hh * dhBytes, dp = dout + rowQ + <usize>hh * dhBytes;
              k0 = f32x4.add(k0, f32x4.mul(dsv, v128.load(qp))); k1 = f32x4.add(k1, f32x4.mul(dsv, v128.load(qp, 16)));
              v0 = f32x4.add(v0, f32x4.mul(ppv, v128.load(dp))); v1 = f32x4.add(v1, f32x4.mul(ppv, v128.load(dp, 16)));
            }
          }
          v128.store(dkp + io, k0); v128.store(dkp + io, k1, 16); v128.store(dvp + io, v0); v128.store(dvp + io, v1, 16);
        }
        for (; i + 4 <= Dh; i += 4) {
          const io = <usize>i << 2;
          let k0 = v128.load(dkp + io), v0 = v128.load(dvp + io);
          for (let r = rFirst; r < nR; r++) {
            const rowQ = <usize>(t0 + r) * qStride + <usize>(g * group) * dhBytes + io;
            for (let hh = 0; hh < group; hh++) {
              const so = <usize>(hh * R + r) * rowBytes + (<usize>p << 2);
              k0 = f32x4.add(k0, f32x4.mul(v128.load32_splat(dsAll + so), v128.load(q + rowQ + <usize>hh * dhBytes)));
              v0 = f32x4.add(v0, f32x4.mul(v128.load32_splat(prAll + so), v128.load(dout + rowQ + <usize>hh * dhBytes)));
            }
          }
          v128.store(dkp + io, k0); v128.store(dvp + io, v0);
        }
        for (; i < Dh; i++) {
          const io = <usize>i << 2;
          let kd = load<f32>(dkp + io), vd = load<f32>(dvp + io);
          for (let r = rFirst; r < nR; r++) {
            const rowQ = <usize>(t0 + r) * qStride + <usize>(g * group) * dhBytes + io;
            for (let hh = 0; hh < group; hh++) {
              const so = <usize>(hh * R + r) * rowBytes + (<usize>p << 2);
              kd += load<f32>(dsAll + so) * load<f32>(q + rowQ + <usize>hh * dhBytes);
              vd += load<f32>(prAll + so) * load<f32>(dout + rowQ + <usize>hh * dhBytes);
            }
          }
          store<f32>(dkp + io, kd); store<f32>(dvp + io, vd);
        }
      }
    }
  }
}

/** out[0..Dh) = Σ_(p < P) w[p]·rows[p·stride ..], summed in p order, 8 dims at a time in registers. */
// @ts-ignore: decorator
@inline function weightedRows(out: usize, w: usize, rows: usize, stride: usize, P: i32, Dh: i32): void {
  let i = 0;
  for (; i + 8 <= Dh; i += 8) {
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0);
    let rp = rows + (<usize>i << 2);
    for (let p = 0; p < P; p++) {
      const wv = v128.load32_splat(w + (<usize>p << 2));
      a0 = f32x4.add(a0, f32x4.mul(wv, v128.load(rp))); a1 = f32x4.add(a1, f32x4.mul(wv, v128.load(rp, 16)));
      rp += stride;
    }
    v128.store(out + (<usize>i << 2), a0); v128.store(out + (<usize>i << 2), a1, 16);
  }
  for (; i + 4 <= Dh; i += 4) {
    let a0 = f32x4.splat(0);
    let rp = rows + (<usize>i << 2);
    for (let p = 0; p < P; p++) {
      a0 = f32x4.add(a0, f32x4.mul(v128.load32_splat(w + (<usize>p << 2)), v128.load(rp)));
      rp += stride;
    }
    v128.store(out + (<usize>i << 2), a0);
  }
  for (; i < Dh; i++) {
    let a: f32 = 0;
    let rp = rows + (<usize>i << 2);
    for (let p = 0; p < P; p++) {
      a += load<f32>(w + (<usize>p << 2)) * load<f32>(rp);
      rp += stride;
    }
    store<f32>(out + (<usize>i << 2), a);
  }
}

/**
 * attentionBackward over the KV groups [g0, g1) with its scratch last: the thread pool's range
 * entry point (a group's query heads, keys and values are its own, so groups split bit-exactly).
 */
export function attentionBackwardGroups(dq: usize, dk: usize, dv: usize, dout: usize, q: usize, k: usize, v: usize,
                                        T: i32, H: i32, KV: i32, Dh: i32, g0: i32, g1: i32, scratch: usize): void {
  attentionBackward(dq, dk, dv, dout, q, k, v, T, H, KV, Dh, scratch, g0, g1);
}

/**
 * Cross-entropy of one row of V logits against `target` (< 0: none): the row becomes softmax(row)
 * and the result is logsumexp(row) − row[target] (0 without a target).
 */
export function crossEntropyRow(x: usize, V: i32, target: i32): f64 {
  const m = rowMax(x, V);
  const z = target >= 0 ? load<f32>(x + (<usize>target << 2)) : <f32>0;
  const sum = expShiftSum(x, V, m);
  scale(x, V, <f32>1 / sum);
  return target >= 0 ? Math.log(<f64>sum) + <f64>m - <f64>z : 0;
}

/**
 * crossEntropyRow over the rows [begin, end) of xTV (one thread's share): targets[t] (i32) is row
 * t's target, and losses[t] (f64) receives its loss; the caller sums them in row order.
 */
export function crossEntropyRows(x: usize, V: i32, targets: usize, losses: usize, begin: i32, end: i32): void {
  for (let t = begin; t < end; t++) {
    store<f64>(losses + (<usize>t << 3),
      crossEntropyRow(x + (<usize>t * <usize>V << 2), V, load<i32>(targets + (<usize>t << 2))));
  }
}

/** crossEntropyBackwardRow over the rows [begin, end) of xTV, targets as in crossEntropyRows. */
export function crossEntropyBackwardRows(x: usize, V: i32, targets: usize, s: f32, begin: i32, end: i32): void {
  for (let t = begin; t < end; t++) {
    crossEntropyBackwardRow(x + (<usize>t * <usize>V << 2), V, load<i32>(targets + (<usize>t << 2)), s);
  }
}

/** Gradient of crossEntropyRow times s, in place on the probabilities: (p − onehot(target))·s; no target → 0. */
export function crossEntropyBackwardRow(x: usize, V: i32, target: i32, s: f32): void {
  if (target < 0) {
    memory.fill(x, 0, <usize>V << 2);
    return;
  }
  scale(x, V, s);
  const pt = x + (<usize>target << 2);
  store<f32>(pt, load<f32>(pt) - s);
}

/**
 * torch.optim.AdamW on n parameters (see Kernels.adamw): float64 per element, the same operations
 * in the same order as the TypeScript reference, so both give identical bits. The bias corrections
 * bc1 = 1 − β1ᵗ, bc2 = 1 − β2ᵗ come from the caller (JavaScript's pow, as the reference uses).
 */
export function adamw(w: usize, g: usize, m: usize, v: usize, n: i32, lr: f64, beta1: f64, beta2: f64, eps: f64,
                      weightDecay: f64, bc1: f64, bc2: f64): void {
  adamwRange(w, g, m, v, n, lr, beta1, beta2, eps, weightDecay, bc1, bc2, 0, n);
}

/** `adamw` for the parameters [begin, end) only (one thread's share; every parameter is updated alone). */
export function adamwRange(w: usize, g: usize, m: usize, v: usize, n: i32, lr: f64, beta1: f64, beta2: f64, eps: f64,
                           weightDecay: f64, bc1: f64, bc2: f64, begin: i32, end: i32): void {
  const stepSize = lr / bc1, bc2Sqrt = Math.sqrt(bc2), decay = 1 - lr * weightDecay;
  // Four parameters per pass as two f64x2 halves: the same float64 operations in the same order as
  // the scalar loop below (IEEE f64 arithmetic and sqrt are exact-rounded lane by lane), so the
  // same bits, with the conversions and the division done two at a time.
  const b1 = f64x2.splat(beta1), c1 = f64x2.splat(1 - beta1), b2 = f64x2.splat(beta2), c2 = f64x2.splat(1 - beta2);
  const dec = f64x2.splat(decay), step = f64x2.splat(stepSize), s2 = f64x2.splat(bc2Sqrt), ep = f64x2.splat(eps);
  let i = begin;
  for (; i + 4 <= end; i += 4) {
    const o = <usize>i << 2;
    const g4 = v128.load(g + o), m4 = v128.load(m + o), v4 = v128.load(v + o), w4 = v128.load(w + o);
    let mOut = f32x4.splat(0), vOut = f32x4.splat(0), wOut = f32x4.splat(0);
    for (let half = 0; half < 2; half++) {
      // lanes 0-1, then 2-3 moved down
      const gh = f64x2.promote_low_f32x4(half == 0 ? g4 : v128.shuffle<f32>(g4, g4, 2, 3, 0, 1));
      const mh = f64x2.promote_low_f32x4(half == 0 ? m4 : v128.shuffle<f32>(m4, m4, 2, 3, 0, 1));
      const vh = f64x2.promote_low_f32x4(half == 0 ? v4 : v128.shuffle<f32>(v4, v4, 2, 3, 0, 1));
      const wh = f64x2.promote_low_f32x4(half == 0 ? w4 : v128.shuffle<f32>(w4, w4, 2, 3, 0, 1));
      const mi = f32x4.demote_f64x2_zero(f64x2.add(f64x2.mul(b1, mh), f64x2.mul(c1, gh)));
      const vi = f32x4.demote_f64x2_zero(f64x2.add(f64x2.mul(b2, vh), f64x2.mul(f64x2.mul(c2, gh), gh)));
      const den = f64x2.add(f64x2.div(f64x2.sqrt(f64x2.promote_low_f32x4(vi)), s2), ep);
      const wi = f32x4.demote_f64x2_zero(f64x2.sub(f64x2.mul(wh, dec), f64x2.div(f64x2.mul(step, f64x2.promote_low_f32x4(mi)), den)));
      if (half == 0) {
        mOut = mi; vOut = vi; wOut = wi;
      } else {
        mOut = v128.shuffle<f32>(mOut, mi, 0, 1, 4, 5); vOut = v128.shuffle<f32>(vOut, vi, 0, 1, 4, 5);
        wOut = v128.shuffle<f32>(wOut, wi, 0, 1, 4, 5);
      }
    }
    v128.store(m + o, mOut);
    v128.store(v + o, vOut);
    v128.store(w + o, wOut);
  }
  for (; i < end; i++) {
    const o = <usize>i << 2;
    const gi = <f64>load<f32>(g + o);
    const mi = <f32>(beta1 * <f64>load<f32>(m + o) + (1 - beta1) * gi);
    const vi = <f32>(beta2 * <f64>load<f32>(v + o) + (1 - beta2) * gi * gi);
    store<f32>(m + o, mi);
    store<f32>(v + o, vi);
    store<f32>(w + o, <f32>(<f64>load<f32>(w + o) * decay - (stepSize * <f64>mi) / (Math.sqrt(<f64>vi) / bc2Sqrt + eps)));
  }
}
