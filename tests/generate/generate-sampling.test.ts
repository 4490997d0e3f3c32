// The sampler: each filter on hand-made logits, their Hugging Face order, the repetition penalty
// math, reproducibility with a seed, and sampled frequencies against the softmax probabilities.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { applyRepetitionPenalty, kthLargest, Sampler, topPMinPFilter, type SamplingOptions } from "../../src/generate/sampling.js";
import { argmax } from "../../src/util/argmax.js";
import { Mulberry32 } from "../../src/util/rng.js";

const logitsOf = (probs: number[]) => Float32Array.from(probs, Math.log);
const support = (p: Float64Array) => [...p.keys()].filter((i) => p[i]! > 0);

/** Sample n times; counts per id. */
function counts(sampler: Sampler, logits: Float32Array, n: number, context: number[] = []): number[] {
  const c = new Array<number>(logits.length).fill(0);
  for (let i = 0; i < n; i++) c[sampler.sample(logits, context)]!++;
  return c;
}

/** Pearson's chi-square statistic of observed counts against probabilities (cells with p > 0). */
function chiSquare(observed: number[], probs: ArrayLike<number>): number {
  const n = observed.reduce((a, b) => a + b, 0);
  let x2 = 0;
  for (let i = 0; i < observed.length; i++) {
    if (probs[i]! === 0) {
      expect(observed[i]).toBe(0);
      continue;
    }
    const e = n * probs[i]!;
    x2 += (observed[i]! - e) ** 2 / e;
  }
  return x2;
}

/**
 * The reference pipeline, written the slow obvious way from the HF processors: penalty,
 * temperature, top-k by sorting, softmax, then top-p and min-p over the fully sorted list.
 */
function referenceDistribution(logits: number[], o: Required<Omit<SamplingOptions, "seed">>, context: number[]): number[] {
  const V = logits.length;
  const penalize = (v: number) => Math.fround(v > 0 ? v / o.repetitionPenalty : v * o.repetitionPenalty);
  const x = logits.map((v, i) => (context.includes(i) ? penalize(v) : v));
  if (o.temperature === 0 || o.topK === 1) {
    const best = x.indexOf(Math.max(...x));
    return x.map((_, i) => (i === best ? 1 : 0));
  }
  const y = x.map((v) => Math.fround(v * (1 / o.temperature)));
  if (o.topK > 0 && o.topK < V) {
    const kth = [...y].sort((a, b) => b - a)[o.topK - 1]!;
    for (let i = 0; i < V; i++) if (y[i]! < kth) y[i] = -Infinity;
  }
  const max = Math.max(...y);
  const e = y.map((v) => Math.exp(v - max));
  const sum = e.reduce((a, b) => a + b, 0);
  const p = e.map((v) => v / sum);
  const keep = new Set(topPMinPFilter(p, o.topP, o.minP)); // top-p and min-p by sorting everything
  const mass = [...keep].reduce((a, i) => a + p[i]!, 0);
  return p.map((v, i) => (keep.has(i) ? v / mass : 0));
}

describe("Mulberry32", () => {
  it("matches an independent implementation (Python, uint32 arithmetic)", () => {
    const seq = (seed: number) => {
      const r = new Mulberry32(seed);
      return Array.from({ length: 5 }, () => r.nextUint32());
    };
    expect(seq(0)).toEqual([1144304738, 1416247, 958946056, 627933444, 2007157716]);
    expect(seq(42)).toEqual([2581720956, 1925393290, 3661312704, 2876485805, 750819978]);
    expect(seq(0xffffffff)).toEqual([3850105811, 813802916, 3073704848, 4054706436, 3630262831]);
  });

  it("next() is in [0, 1)", () => {
    const r = new Mulberry32(7);
    for (let i = 0; i < 10000; i++) {
      const u = r.next();
      expect(u >= 0 && u < 1).toBe(true);
    }
  });
});

describe("filters on hand-made logits", () => {
  const probs = [0.05, 0.5, 0.1, 0.2, 0.15]; // sorted: 1 (0.5), 3 (0.2), 4 (0.15), 2 (0.1), 0 (0.05)
  const logits = logitsOf(probs);

  it("plain sampling is the softmax", () => {
    const p = new Sampler(5, { seed: 1 }).distribution(logits);
    p.forEach((v, i) => expect(v).toBeCloseTo(probs[i]!, 6));
  });

  it("top-k keeps the k best, and ties with the k-th", () => {
    expect(support(new Sampler(5, { topK: 2 }).distribution(logits))).toEqual([1, 3]);
    expect(support(new Sampler(5, { topK: 4 }).distribution(logits))).toEqual([1, 2, 3, 4]);
    const tied = Float32Array.of(1, 3, 2, 2, 0);
    expect(support(new Sampler(5, { topK: 2 }).distribution(tied))).toEqual([1, 2, 3]); // HF keeps ties
  });

  it("top-p keeps the smallest prefix with mass >= p", () => {
    expect(support(new Sampler(5, { topP: 0.5 }).distribution(logits))).toEqual([1]);
    expect(support(new Sampler(5, { topP: 0.69 }).distribution(logits))).toEqual([1, 3]);
    expect(support(new Sampler(5, { topP: 0.71 }).distribution(logits))).toEqual([1, 3, 4]);
    expect(support(new Sampler(5, { topP: 0.96 }).distribution(logits))).toEqual([0, 1, 2, 3, 4]);
    const p = new Sampler(5, { topP: 0.69 }).distribution(logits);
    expect(p[1]).toBeCloseTo(0.5 / 0.7, 6); // renormalized
    expect(p[3]).toBeCloseTo(0.2 / 0.7, 6);
  });

  it("min-p keeps tokens with p >= minP · max p", () => {
    expect(support(new Sampler(5, { minP: 0.25 }).distribution(logits))).toEqual([1, 3, 4]); // >= 0.125
    expect(support(new Sampler(5, { minP: 0.41 }).distribution(logits))).toEqual([1]); // >= 0.205
    expect(support(new Sampler(5, { minP: 0.05 }).distribution(logits))).toEqual([0, 1, 2, 3, 4]);
  });

  it("applies top-k before top-p (HF order): top-p sees the renormalized top-k mass", () => {
    // After top-k 3: 0.5, 0.2, 0.15 → 0.588, 0.235, 0.176; the first two reach 0.75. Top-p on the
    // full distribution would need all three (0.5 + 0.2 < 0.75).
    expect(support(new Sampler(5, { topK: 3, topP: 0.75 }).distribution(logits))).toEqual([1, 3]);
    expect(support(new Sampler(5, { topP: 0.75 }).distribution(logits))).toEqual([1, 3, 4]);
  });

  it("temperature sharpens or flattens the softmax", () => {
    const p = new Sampler(5, { temperature: 0.5 }).distribution(logits);
    const sq = probs.map((q) => q * q),
      z = sq.reduce((a, b) => a + b, 0);
    p.forEach((v, i) => expect(v).toBeCloseTo(sq[i]! / z, 6));
  });

  it("temperature 0 is greedy, and a temperature near 0 samples the argmax", () => {
    const x = Float32Array.of(0.3, 1.2, -4, 1.15, 0.9);
    const greedy = new Sampler(5, { temperature: 0, seed: 5 });
    const cold = new Sampler(5, { temperature: 1e-3, seed: 5 });
    for (let i = 0; i < 200; i++) {
      expect(greedy.sample(x)).toBe(1);
      expect(cold.sample(x)).toBe(1);
    }
    expect(argmax(x)).toBe(1);
  });

  it("repetition penalty divides positive and multiplies negative logits of context tokens, once each", () => {
    const x = Float32Array.of(2, -1, 0.5, 3, -2);
    const seen = new Uint8Array(5);
    applyRepetitionPenalty(x, [0, 1, 1, 0], 4, 2, seen);
    expect(Array.from(x)).toEqual([1, -2, 0.5, 3, -2]);
    expect(Array.from(seen)).toEqual([0, 0, 0, 0, 0]); // scratch left clean
    // Through the sampler: greedy switches away from the penalized best token.
    const s = new Sampler(5, { temperature: 0, repetitionPenalty: 1.6 });
    expect(s.sample(Float32Array.of(0, 3, 2, 0, 0), [1])).toBe(2); // 3 / 1.6 < 2
    expect(s.sample(Float32Array.of(0, 3, 2, 0, 0), [4, 4])).toBe(1);
    const p = new Sampler(3, { repetitionPenalty: 2 }).distribution(Float32Array.of(2, -1, 1), [0, 1]);
    const e = [Math.exp(1), Math.exp(-2), Math.exp(1)],
      z = e[0]! + e[1]! + e[2]!;
    p.forEach((v, i) => expect(v).toBeCloseTo(e[i]! / z, 6));
  });
});

describe("the optimized pipeline equals the reference pipeline (fast-check)", () => {
  it("on random logits and settings", () => {
    const settings = fc.record({
      logits: fc.array(fc.float({ min: -8, max: 8, noNaN: true }), { minLength: 1, maxLength: 300 }),
      temperature: fc.constantFrom(0, 0.3, 0.7, 1, 1.5),
      topK: fc.nat({ max: 40 }),
      topP: fc.constantFrom(1, 0.95, 0.9, 0.5, 0.1),
      minP: fc.constantFrom(0, 0.01, 0.05, 0.3),
      repetitionPenalty: fc.constantFrom(1, 1.3, 0.8),
      context: fc.array(fc.nat({ max: 299 }), { maxLength: 20 }),
    });
    fc.assert(
      fc.property(settings, (s) => {
        const V = s.logits.length;
        const context = s.context.filter((id) => id < V);
        const { logits, context: _c, ...o } = s;
        const got = new Sampler(V, o).distribution(Float32Array.from(logits), context);
        const want = referenceDistribution(Array.from(Float32Array.from(logits)), o, context);
        // Same float operations in the same order: the same kept set and probabilities.
        expect(Math.max(...want.map((w, i) => Math.abs(w - got[i]!)))).toBeLessThan(1e-12);
      }),
      { numRuns: 400, seed: 424242 },
    );
  });

  it("top-p's bisection keeps the set the plain sort-based filter keeps, on large flat vocabularies (fast-check)", () => {
    // Logits in a narrow range over thousands of ids: far more than 64 candidates, so splitTopP
    // bisects before sorting its band.
    const settings = fc.record({
      V: fc.integer({ min: 65, max: 5000 }),
      seed: fc.nat(),
      spread: fc.constantFrom(0.01, 0.5, 2, 6),
      topP: fc.constantFrom(0.99, 0.95, 0.9, 0.5, 0.2, 0.01),
      minP: fc.constantFrom(0, 0, 0.001, 0.2),
      ties: fc.boolean(),
    });
    fc.assert(
      fc.property(settings, ({ V, seed, spread, topP, minP, ties }) => {
        const g = new Mulberry32(seed);
        const logits = Float32Array.from({ length: V }, () => (ties ? Math.floor(g.next() * 8) / 8 : g.next()) * spread);
        const got = new Sampler(V, { topP, minP, seed: 1 }).distribution(logits);
        const want = referenceDistribution(Array.from(logits), { temperature: 1, topK: 0, topP, minP, repetitionPenalty: 1 }, []);
        expect(support(got)).toEqual(support(Float64Array.from(want)));
        expect(Math.max(...want.map((w, i) => Math.abs(w - got[i]!)))).toBeLessThan(1e-12);
      }),
      { numRuns: 150, seed: 1818 },
    );
  });

  it("kthLargest agrees with sorting", () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: -5, max: 5 }), { minLength: 1, maxLength: 60 }), fc.nat(), (xs, k0) => {
        const k = 1 + (k0 % xs.length);
        const a = Float32Array.from(xs);
        expect(kthLargest(a, a.length, k)).toBe([...xs].sort((p, q) => q - p)[k - 1]);
      }),
      { numRuns: 500, seed: 7 },
    );
  });
});

describe("reproducibility and frequencies", () => {
  const logits = Float32Array.of(1.5, 0.2, -0.7, 2.1, 0.9, -2, 0);

  it("the same seed gives the same samples; another seed does not", () => {
    const run = (seed: number) => {
      const s = new Sampler(7, { seed, temperature: 0.9, topP: 0.95 });
      return Array.from({ length: 64 }, () => s.sample(logits));
    };
    expect(run(123)).toEqual(run(123));
    expect(run(123)).not.toEqual(run(124));
    expect(new Sampler(7, { seed: 99 }).seed).toBe(99);
  });

  it("sampled frequencies follow the softmax (chi-square, fixed seed)", () => {
    // df = 6: the 0.1% critical value is 22.46; a sampler that skips or shifts mass fails by far.
    const s = new Sampler(7, { seed: 2024 });
    const n = 70000;
    const x2 = chiSquare(counts(s, logits, n), s.distribution(logits));
    expect(x2).toBeLessThan(22.46);
    // The check has teeth: the same counts against a slightly different temperature fail.
    const off = new Sampler(7, { temperature: 1.1 }).distribution(logits);
    expect(chiSquare(counts(new Sampler(7, { seed: 2024 }), logits, n), off)).toBeGreaterThan(100);
  });

  it("with top-k, top-p and min-p the frequencies follow the renormalized kept mass", () => {
    for (const o of [{ topK: 3 }, { topP: 0.8 }, { minP: 0.2 }, { topK: 4, topP: 0.9, temperature: 0.8 }]) {
      const s = new Sampler(7, { seed: 77, ...o });
      const p = s.distribution(logits);
      const c = counts(s, logits, 40000);
      const kept = support(p).length;
      // df = kept - 1 <= 6: 0.1% critical value at most 22.46
      expect(chiSquare(c, p), JSON.stringify(o)).toBeLessThan(22.46);
      expect(c.filter((v) => v > 0).length).toBe(kept); // and nothing outside the kept set
    }
  });

  it("top-k never emits a token outside the k best on a large vocabulary", () => {
    const V = 1000,
      rng = new Mulberry32(3);
    const x = Float32Array.from({ length: V }, () => rng.next() * 4);
    const best = new Set([...x.keys()].sort((a, b) => x[b]! - x[a]!).slice(0, 10));
    const s = new Sampler(V, { topK: 10, seed: 1 });
    for (let i = 0; i < 3000; i++) expect(best.has(s.sample(x))).toBe(true);
  });
});
