// The wasm kernels vs the TS reference: causal GQA attention and its backward. Tolerances and random data: wasm-helpers.ts.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ts, wasm, scoped, mulberry32, values, toWasm, expectClose, seed, logScale } from "./wasm-helpers.js";

describe("wasm backward (training) kernels vs TS reference", () => {
  // dS = P·(dP − Σ P·dP) cancels (exactly 0 in exact arithmetic when a row sees one position), so
  // the bound is relative to the size of the terms, B = T·max|dout|·(1 + Dh·max|v|·max|q,k|), too.
  it("attentionBackward: dq, dk, dv (|diff| <= 1e-4 · (1 + max score magnitude) · (max|reference| + B))", () => {
    fc.assert(
      // T past 16: the wasm kernel works through the query rows in blocks of up to 16
      fc.property(
        seed,
        fc.oneof(fc.integer({ min: 1, max: 13 }), fc.constantFrom(17, 33, 65)),
        fc.integer({ min: 1, max: 3 }),
        fc.integer({ min: 1, max: 3 }),
        fc.oneof(fc.constantFrom(1, 3, 4, 7, 16, 20, 64), fc.integer({ min: 1, max: 70 })),
        fc.integer({ min: -4, max: 0 }),
        (s, T, KV, group, Dh, lqk) =>
          scoped(() => {
            const rand = mulberry32(s);
            const H = KV * group,
              nq = T * H * Dh,
              nk = T * KV * Dh;
            const q = values(rand, nq, lqk),
              k = values(rand, nk, lqk),
              v = values(rand, nk, 0),
              dout = values(rand, nq, 0);
            const want = { dq: new Float32Array(nq), dk: new Float32Array(nk), dv: new Float32Array(nk) };
            ts.attentionBackward(want.dq, want.dk, want.dv, dout, q, k, v, T, H, KV, Dh, new Float32Array(2 * T));
            const got = { dq: wasm.allocF32(nq), dk: wasm.allocF32(nk), dv: wasm.allocF32(nk) };
            got.dq.fill(7);
            got.dk.fill(7);
            got.dv.fill(7); // overwritten, not accumulated
            wasm.attentionBackward(
              got.dq,
              got.dk,
              got.dv,
              toWasm(dout),
              toWasm(q),
              toWasm(k),
              toWasm(v),
              T,
              H,
              KV,
              Dh,
              wasm.allocF32(2 * T),
            );
            let maxScore = 0;
            for (let t = 0; t < T; t++)
              for (let h = 0; h < H; h++)
                for (let p = 0; p <= t; p++) {
                  let m = 0;
                  for (let i = 0; i < Dh; i++) m += Math.abs(q[(t * H + h) * Dh + i]! * k[(p * KV + Math.floor(h / group)) * Dh + i]!);
                  maxScore = Math.max(maxScore, m / Math.sqrt(Dh));
                }
            const maxAbs = (a: Float32Array) => a.reduce((m, b) => Math.max(m, Math.abs(b)), 0);
            const terms = T * maxAbs(dout) * (1 + Dh * maxAbs(v) * Math.max(maxAbs(q), maxAbs(k)));
            for (const name of ["dq", "dk", "dv"] as const) {
              const maxRef = maxAbs(want[name]);
              expectClose(
                got[name],
                want[name],
                () => 1e-4 * (1 + maxScore) * (maxRef + terms) + 1e-30,
                `attentionBackward ${name} T=${T} H=${H} KV=${KV} Dh=${Dh}`,
              );
            }
          }),
      ),
      { numRuns: 100 },
    );
  });
});

describe("wasm forward kernels vs TS reference", () => {
  it("causal GQA attention (|diff| <= 1e-5 · (1 + max score magnitude) · max|v|)", () => {
    fc.assert(
      fc.property(
        seed,
        fc.integer({ min: 1, max: 5 }),
        fc.integer({ min: 0, max: 70 }),
        fc.integer({ min: 1, max: 3 }),
        fc.integer({ min: 1, max: 3 }),
        fc.oneof(fc.constantFrom(1, 3, 4, 7, 16, 20, 64), fc.integer({ min: 1, max: 70 })),
        fc.integer({ min: -3, max: 1 }),
        logScale,
        (s, T, pos0, KV, group, Dh, lqk, lv) =>
          scoped(() => {
            const rand = mulberry32(s);
            const H = KV * group,
              P = pos0 + T,
              maxP = P + 2;
            const q = values(rand, T * H * Dh, lqk);
            const k = values(rand, maxP * KV * Dh, lqk);
            const v = values(rand, maxP * KV * Dh, lv);
            const want = new Float32Array(T * H * Dh);
            ts.attention(want, q, k, v, T, pos0, H, KV, Dh, new Float32Array(P));
            const got = wasm.allocF32(T * H * Dh);
            wasm.attention(got, toWasm(q), toWasm(k), toWasm(v), T, pos0, H, KV, Dh, wasm.allocF32(P));
            let maxV = 0,
              maxScore = 0;
            for (const a of v) maxV = Math.max(maxV, Math.abs(a));
            for (let t = 0; t < T; t++)
              for (let h = 0; h < H; h++)
                for (let p = 0; p < P; p++) {
                  let m = 0;
                  for (let i = 0; i < Dh; i++) m += Math.abs(q[(t * H + h) * Dh + i]! * k[(p * KV + Math.floor(h / group)) * Dh + i]!);
                  maxScore = Math.max(maxScore, m / Math.sqrt(Dh));
                }
            expectClose(got, want, () => 1e-5 * (1 + maxScore) * maxV + 1e-35, `attention T=${T} pos0=${pos0} H=${H} KV=${KV} Dh=${Dh}`);
          }),
      ),
      { numRuns: 120 },
    );
  });
});

// assembly/attention.ts, called directly (the backend routes T > 1 with Dh a multiple of 4 to it
// when its scratch fits): blocks of 4 query rows, so T around multiples of 4 and odd T exercise
// the partial last block, and Dh % 8 == 4 the 4-dim tail. Same tolerances as above.
describe("blocked attention kernels (assembly/attention.ts) vs TS reference", () => {
  const T = fc.oneof(fc.constantFrom(1, 3, 5, 7, 13, 63, 65), fc.integer({ min: 1, max: 70 }));
  const Dh = fc.integer({ min: 1, max: 16 }).map((n) => 4 * n);
  // H query heads 1..9 and KV kv heads dividing H (1..9; group = H / KV)
  const headsKV = fc
    .integer({ min: 1, max: 9 })
    .chain((H) =>
      fc.constantFrom(...Array.from({ length: H }, (_, i) => i + 1).filter((kv) => H % kv === 0)).map((KV) => [KV, H / KV] as const),
    );
  const maxScoreOf = (q: Float32Array, k: Float32Array, T: number, pos0: number, H: number, KV: number, Dh: number) => {
    let maxScore = 0;
    for (let t = 0; t < T; t++)
      for (let h = 0; h < H; h++)
        for (let p = 0; p <= pos0 + t; p++) {
          let m = 0;
          for (let i = 0; i < Dh; i++) m += Math.abs(q[(t * H + h) * Dh + i]! * k[(p * KV + Math.floor(h / (H / KV))) * Dh + i]!);
          maxScore = Math.max(maxScore, m / Math.sqrt(Dh));
        }
    return maxScore;
  };
  const maxAbs = (a: Float32Array) => a.reduce((m, b) => Math.max(m, Math.abs(b)), 0);

  it("attentionBlocks (|diff| <= 1e-5 · (1 + max score magnitude) · max|v|)", () => {
    fc.assert(
      fc.property(
        seed,
        T,
        fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 40 })),
        headsKV,
        Dh,
        fc.integer({ min: -3, max: 1 }),
        logScale,
        (s, T, pos0, [KV, group], Dh, lqk, lv) =>
          scoped(() => {
            const rand = mulberry32(s);
            const H = KV * group,
              P = pos0 + T;
            const q = values(rand, T * H * Dh, lqk),
              k = values(rand, P * KV * Dh, lqk),
              v = values(rand, P * KV * Dh, lv);
            const want = new Float32Array(T * H * Dh);
            ts.attention(want, q, k, v, T, pos0, H, KV, Dh, new Float32Array(P));
            const got = wasm.allocF32(T * H * Dh);
            const scratch = wasm.allocF32(wasm.exports.attentionBlocksScratchFloats(P, Dh));
            const units = KV * Math.ceil(Math.ceil(T / 4) / 2) * group;
            const [o, qp, kp, vp] = [got, toWasm(q), toWasm(k), toWasm(v)].map((a) => a.byteOffset) as [number, number, number, number];
            // in two ranges of units, as two threads would run them
            const cut = Math.floor(units / 2);
            wasm.exports.attentionBlocks(o, qp, kp, vp, T, pos0, H, KV, Dh, 0, cut, scratch.byteOffset);
            wasm.exports.attentionBlocks(o, qp, kp, vp, T, pos0, H, KV, Dh, cut, units, scratch.byteOffset);
            const tol = 1e-5 * (1 + maxScoreOf(q, k, T, pos0, H, KV, Dh)) * maxAbs(v) + 1e-35;
            expectClose(got, want, () => tol, `attentionBlocks T=${T} pos0=${pos0} H=${H} KV=${KV} Dh=${Dh}`);
          }),
      ),
      { numRuns: 120 },
    );
  });

  it("attentionBackwardBlocks: dq, dk, dv (|diff| <= 1e-5 · (1 + max score magnitude) · magnitude of the summed terms)", () => {
    fc.assert(
      fc.property(seed, T, headsKV, Dh, fc.integer({ min: -4, max: 0 }), (s, T, [KV, group], Dh, lqk) =>
        scoped(() => {
          const rand = mulberry32(s);
          const H = KV * group,
            nq = T * H * Dh,
            nk = T * KV * Dh;
          const q = values(rand, nq, lqk),
            k = values(rand, nk, lqk),
            v = values(rand, nk, 0),
            dout = values(rand, nq, 0);
          const want = { dq: new Float32Array(nq), dk: new Float32Array(nk), dv: new Float32Array(nk) };
          ts.attentionBackward(want.dq, want.dk, want.dv, dout, q, k, v, T, H, KV, Dh, new Float32Array(2 * T));
          const got = { dq: wasm.allocF32(nq).fill(7), dk: wasm.allocF32(nk).fill(7), dv: wasm.allocF32(nk).fill(7) };
          const scratch = wasm.allocF32(wasm.exports.attentionBackwardBlocksScratchFloats(T, Dh));
          const ptrs = [got.dq, got.dk, got.dv, toWasm(dout), toWasm(q), toWasm(k), toWasm(v)].map((a) => a.byteOffset);
          // kv group by kv group, as the threads would run them
          for (let g = 0; g < KV; g++)
            (wasm.exports.attentionBackwardBlocks as (...a: number[]) => void)(...ptrs, T, H, KV, Dh, g, g + 1, scratch.byteOffset);
          // per element, the magnitude of the terms of its sums (float64): with P the
          // probabilities, |dS|_p = P_p·(|dP|_p + Σ P·|dP|)/sqrt(Dh), |dP|_p = Σ_i |dout_i·v_p,i|:
          // dq ~ Σ_p |dS|_p·|k_p|, dk_p ~ Σ_(t,h) |dS|·|q|, dv_p ~ Σ_(t,h) P·|dout|
          const mag = { dq: new Float64Array(nq), dk: new Float64Array(nk), dv: new Float64Array(nk) };
          for (let t = 0; t < T; t++)
            for (let h = 0; h < H; h++) {
              const g = Math.floor(h / group),
                qo = (t * H + h) * Dh;
              const sc: number[] = [],
                adp: number[] = [];
              for (let p = 0; p <= t; p++) {
                let d = 0,
                  a = 0;
                for (let i = 0; i < Dh; i++) {
                  d += q[qo + i]! * k[(p * KV + g) * Dh + i]!;
                  a += Math.abs(dout[qo + i]! * v[(p * KV + g) * Dh + i]!);
                }
                sc.push(d / Math.sqrt(Dh));
                adp.push(a);
              }
              const m = Math.max(...sc),
                e = sc.map((x) => Math.exp(x - m)),
                z = e.reduce((a, b) => a + b, 0),
                P = e.map((x) => x / z);
              const pdp = P.reduce((a, x, p) => a + x * adp[p]!, 0);
              for (let p = 0; p <= t; p++) {
                const ds = (P[p]! * (adp[p]! + pdp)) / Math.sqrt(Dh),
                  ko = (p * KV + g) * Dh;
                for (let i = 0; i < Dh; i++) {
                  mag.dq[qo + i]! += ds * Math.abs(k[ko + i]!);
                  mag.dk[ko + i]! += ds * Math.abs(q[qo + i]!);
                  mag.dv[ko + i]! += P[p]! * Math.abs(dout[qo + i]!);
                }
              }
            }
          const maxScore = maxScoreOf(q, k, T, 0, H, KV, Dh);
          for (const name of ["dq", "dk", "dv"] as const) {
            const tol = (i: number) => 1e-5 * (1 + maxScore) * mag[name][i]! + 1e-30;
            expectClose(got[name], want[name], tol, `attentionBackwardBlocks ${name} T=${T} H=${H} KV=${KV} Dh=${Dh}`);
          }
        }),
      ),
      { numRuns: 100 },
    );
  });
});

// The largest contexts the per-thread scratch (ATTENTION_SCRATCH_BYTES) holds for the blocked
// kernels at Dh = 64, and one position past them (the one-row kernels then): a scratch overrun
// would overwrite the inputs, allocated after it, and show here.
describe("blocked attention at the edge of its scratch", () => {
  const maxAbs = (a: Float32Array) => a.reduce((m, b) => Math.max(m, Math.abs(b)), 0);
  for (const P of [2272, 2273])
    it(`forward, 8 queries at the end of a context of ${P}, H=9 KV=3 Dh=64 (|diff| <= 1e-5 · (1 + max score magnitude) · max|v|)`, () =>
      scoped(() => {
        const rand = mulberry32(P);
        const T = 8,
          H = 9,
          KV = 3,
          Dh = 64,
          pos0 = P - T;
        expect(wasm.exports.attentionBlocksScratchFloats(P, Dh) * 4 <= (wasm.exports.ATTENTION_SCRATCH_BYTES.value as number)).toBe(
          P === 2272,
        );
        const q = values(rand, T * H * Dh, -3),
          k = values(rand, P * KV * Dh, -3),
          v = values(rand, P * KV * Dh, 0);
        const want = new Float32Array(T * H * Dh);
        ts.attention(want, q, k, v, T, pos0, H, KV, Dh, new Float32Array(P));
        const got = wasm.allocF32(T * H * Dh);
        wasm.attention(got, toWasm(q), toWasm(k), toWasm(v), T, pos0, H, KV, Dh, wasm.allocF32(P));
        // the largest score magnitude Σ|q·k|/sqrt(Dh), as in the properties above
        let maxScore = 0;
        for (let t = 0; t < T; t++)
          for (let h = 0; h < H; h++)
            for (let p = 0; p <= pos0 + t; p++) {
              let m = 0;
              for (let i = 0; i < Dh; i++) m += Math.abs(q[(t * H + h) * Dh + i]! * k[(p * KV + Math.floor(h / 3)) * Dh + i]!);
              maxScore = Math.max(maxScore, m / 8);
            }
        const tol = 1e-5 * (1 + maxScore) * maxAbs(v) + 1e-35;
        expectClose(got, want, () => tol, `attention P=${P}`);
      }));

  it("backward at T=608, H=2 KV=1 Dh=64, the blocked kernel's largest at Dh=64 (|diff| <= 1e-5 · (1 + 8) · T·2·Dh·max|dout|·max|v|·max|q,k|)", () =>
    scoped(() => {
      const rand = mulberry32(608);
      const T = 608,
        H = 2,
        KV = 1,
        Dh = 64;
      expect(wasm.exports.attentionBackwardBlocksScratchFloats(T, Dh) * 4).toBeLessThanOrEqual(
        wasm.exports.ATTENTION_SCRATCH_BYTES.value as number,
      );
      expect(wasm.exports.attentionBackwardBlocksScratchFloats(T + 8, Dh) * 4).toBeGreaterThan(
        wasm.exports.ATTENTION_SCRATCH_BYTES.value as number,
      );
      const nq = T * H * Dh,
        nk = T * KV * Dh;
      const q = values(rand, nq, -4),
        k = values(rand, nk, -4),
        v = values(rand, nk, 0),
        dout = values(rand, nq, 0);
      const want = { dq: new Float32Array(nq), dk: new Float32Array(nk), dv: new Float32Array(nk) };
      ts.attentionBackward(want.dq, want.dk, want.dv, dout, q, k, v, T, H, KV, Dh, new Float32Array(2 * T));
      const got = { dq: wasm.allocF32(nq), dk: wasm.allocF32(nk), dv: wasm.allocF32(nk) };
      wasm.attentionBackward(got.dq, got.dk, got.dv, toWasm(dout), toWasm(q), toWasm(k), toWasm(v), T, H, KV, Dh, wasm.allocF32(2 * T));
      // |q|, |k| <= 2^4 · 2^-4 = 1, so every score is at most 64/8 = 8 in magnitude; |dS|_p <= P_p·2·max|dP|/8
      // and Σ_p P_p = 1, so each gradient sums terms of magnitude <= T · 2 · Dh · max|dout|·max|v| · max|q,k|
      const terms = T * 2 * Dh * maxAbs(dout) * maxAbs(v) * Math.max(maxAbs(q), maxAbs(k));
      for (const name of ["dq", "dk", "dv"] as const)
        expectClose(got[name], want[name], () => 1e-5 * (1 + 8) * terms, `attentionBackward ${name} T=${T}`);
    }));
});
