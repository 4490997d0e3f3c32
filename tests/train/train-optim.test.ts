// The optimizer pieces of the recipe against hand-computed torch / Hugging Face values.
import { describe, expect, it } from "vitest";
import { adamwStep, allocAdamW, clipGradNorm, cosineLr, ADAMW_DEFAULTS } from "../../src/train/adamw.js";
import { Mulberry32 } from "../../src/util/rng.js";

describe("optimizer recipe", () => {
  it("cosine schedule with linear warmup (HF get_cosine_schedule_with_warmup, floor 0.1x)", () => {
    const peak = 5e-4;
    expect(cosineLr(0, peak, 10, 110)).toBe(0); // HF: the first step runs at lr 0
    expect(cosineLr(5, peak, 10, 110)).toBeCloseTo(2.5e-4, 15);
    expect(cosineLr(10, peak, 10, 110)).toBeCloseTo(peak, 15);
    expect(cosineLr(60, peak, 10, 110)).toBeCloseTo(peak * (0.1 + 0.9 * 0.5), 15); // half-way down the cosine
    expect(cosineLr(110, peak, 10, 110)).toBeCloseTo(0.1 * peak, 15);
    expect(cosineLr(500, peak, 10, 110)).toBeCloseTo(0.1 * peak, 15);
    expect(cosineLr(0, peak, 0, 100)).toBe(peak);
  });

  it("clip_grad_norm_: scales by max_norm / (norm + 1e-6) only when above max_norm", () => {
    const g = new Float32Array([3, 4]);
    expect(clipGradNorm(g, 1)).toBe(5);
    expect(g[0]).toBeCloseTo(3 / (5 + 1e-6), 7);
    expect(g[1]).toBeCloseTo(4 / (5 + 1e-6), 7);
    const h = new Float32Array([0.3, 0.4]);
    clipGradNorm(h, 1);
    expect(Array.from(h)).toEqual([Math.fround(0.3), Math.fround(0.4)]);
  });

  it("AdamW over two steps equals torch.optim.AdamW's formulas", () => {
    const o = ADAMW_DEFAULTS,
      lr = 1e-3;
    const w = new Float32Array([0.5, -0.25]),
      s = allocAdamW(2);
    const g1 = [0.1, -0.02],
      g2 = [-0.05, 0.03];
    adamwStep(w, new Float32Array(g1), s, o, lr);
    adamwStep(w, new Float32Array(g2), s, o, lr);
    for (let i = 0; i < 2; i++) {
      let p = [0.5, -0.25][i]!,
        m = 0,
        v = 0;
      for (const [t, g] of [
        [1, g1[i]!],
        [2, g2[i]!],
      ] as const) {
        const gf = Math.fround(g);
        p *= 1 - lr * o.weightDecay;
        m = o.beta1 * m + (1 - o.beta1) * gf;
        v = o.beta2 * v + (1 - o.beta2) * gf * gf;
        p -= ((lr / (1 - o.beta1 ** t)) * m) / (Math.sqrt(v) / Math.sqrt(1 - o.beta2 ** t) + o.eps);
      }
      expect(Math.abs(w[i]! - p)).toBeLessThan(1e-7);
    }
    expect(s.step).toBe(2);
  });

  it("the RNG is reproducible from its saved state, and normal() has mean 0 and variance 1", () => {
    const a = new Mulberry32(42);
    for (let i = 0; i < 10; i++) a.nextUint32();
    const b = new Mulberry32(7);
    b.setState(a.getState());
    expect(Array.from({ length: 5 }, () => a.nextUint32())).toEqual(Array.from({ length: 5 }, () => b.nextUint32()));
    let s1 = 0,
      s2 = 0;
    const n = 20000;
    for (let i = 0; i < n; i++) {
      const x = a.normal();
      s1 += x;
      s2 += x * x;
    }
    expect(Math.abs(s1 / n)).toBeLessThan(0.03);
    expect(Math.abs(s2 / n - 1)).toBeLessThan(0.05);
  });
});
