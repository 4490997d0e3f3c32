// Choosing the next token from the model's logits: greedy, or sampling with temperature, top-k,
// top-p (nucleus), min-p and a repetition penalty, combined in the order Hugging Face
// transformers applies them in `generate(do_sample=True)`:
//
//   1. repetition penalty  every token already in the context (prompt + generated so far) has its
//                          logit divided by the penalty if positive, multiplied if negative
//                          (RepetitionPenaltyLogitsProcessor, CTRL paper §4.1; once per distinct id)
//   2. temperature         logits / T              (T = 0 means greedy: argmax after step 1)
//   3. top-k               keep logits >= the k-th largest (ties with it are kept, as in HF)
//   4. top-p               keep the smallest most-probable prefix whose probability mass >= p
//   5. min-p               keep tokens whose probability >= minP · (largest probability)
//   then renormalize what is left and draw one token with a seeded PRNG.
//
// Steps 4 and 5 both keep a prefix of the tokens sorted by probability (computed once, after
// top-k), so the kept set is the shorter of the two prefixes; at least one token is always kept.
// Only the few ids around the top-p boundary are ever sorted (see splitTopP); topPMinPFilter is
// the same step written the plain way, sorting everything.
//
// Per token nothing is allocated: the working copy of the logits, the probabilities and the
// candidate index list are buffers of size V planned in the constructor.

import { argmax } from "../util/argmax.js";
import type { SamplingOptions } from "../model/config.js";
import { Mulberry32 } from "../util/rng.js";

export type { SamplingOptions };

/** Throw a RangeError naming the first bad sampling option. */
export function checkSamplingOptions(o: SamplingOptions): void {
  const bad = (name: string, want: string, got: unknown): never => {
    throw new RangeError(`${name} must be ${want}, got ${JSON.stringify(got)}`);
  };
  const { temperature: t, topK: k, topP: p, minP: m, repetitionPenalty: r, seed: s } = o;
  if (t !== undefined && !(Number.isFinite(t) && t >= 0)) bad("temperature", "a number >= 0 (0 = greedy)", t);
  if (k !== undefined && !(Number.isInteger(k) && k >= 0)) bad("topK", "an integer >= 0 (0 = off)", k);
  if (p !== undefined && !(p > 0 && p <= 1)) bad("topP", "in (0, 1] (1 = off)", p);
  if (m !== undefined && !(m >= 0 && m <= 1)) bad("minP", "in [0, 1] (0 = off)", m);
  if (r !== undefined && !(Number.isFinite(r) && r > 0)) bad("repetitionPenalty", "a number > 0 (1 = off)", r);
  if (s !== undefined && !(Number.isInteger(s) && s >= 0 && s <= 0xffffffff)) bad("seed", "an integer in [0, 2^32)", s);
}

/**
 * Steps 4 and 5 the plain way: the readable reference for Sampler's filter, which finds the same
 * set without sorting the vocabulary (its threshold and bisection are tested against this).
 * Sort the ids with p > 0 by probability (ties: lower id first) and walk down the list, keeping
 * ids until the kept mass reaches topP (top-p, TopPLogitsWarper) or the next id's probability is
 * below minP · (the largest probability) (min-p, MinPLogitsWarper); the first id is always kept.
 * Returns the kept ids, most probable first.
 */
export function topPMinPFilter(pV: ArrayLike<number>, topP: number, minP: number): number[] {
  const order = Array.from({ length: pV.length }, (_, v) => v).filter((v) => pV[v]! > 0);
  order.sort((a, b) => pV[b]! - pV[a]! || a - b);
  const kept: number[] = [];
  let mass = 0;
  for (const v of order) {
    if (kept.length > 0 && ((topP < 1 && mass >= topP) || pV[v]! < minP * pV[order[0]!]!)) break;
    kept.push(v);
    mass += pV[v]!;
  }
  return kept;
}

/**
 * Hugging Face repetition penalty, in place: for each distinct id in contextIds[0..n),
 * x = x > 0 ? x / penalty : x · penalty. `seenV` is [V] scratch, all zero on entry and on return.
 */
export function applyRepetitionPenalty(
  xV: Float32Array,
  contextIds: ArrayLike<number>,
  n: number,
  penalty: number,
  seenV: Uint8Array,
): void {
  for (let i = 0; i < n; i++) {
    const id = contextIds[i]!;
    if (seenV[id]) continue; // a token repeated in the context is penalized once
    seenV[id] = 1;
    const x = xV[id]!;
    xV[id] = x > 0 ? x / penalty : x * penalty;
  }
  for (let i = 0; i < n; i++) seenV[contextIds[i]!] = 0;
}

/**
 * The k-th largest value (k >= 1) of a[0..n), found by Hoare's quickselect with a median-of-three
 * pivot. Reorders `a` in place; O(n) on average.
 */
export function kthLargest(a: Float32Array, n: number, k: number): number {
  const target = k - 1; // position in descending order
  let lo = 0,
    hi = n - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    const x = a[lo]!,
      y = a[mid]!,
      z = a[hi]!;
    const pivot = x > y ? (y > z ? y : x > z ? z : x) : x > z ? x : y > z ? z : y;
    let i = lo,
      j = hi;
    while (i <= j) {
      // descending partition: a[lo..j] >= pivot >= a[i..hi]
      while (a[i]! > pivot) i++;
      while (a[j]! < pivot) j--;
      if (i <= j) {
        const tmp = a[i]!;
        a[i] = a[j]!;
        a[j] = tmp;
        i++;
        j--;
      }
    }
    if (target <= j) hi = j;
    else if (target >= i) lo = i;
    else return pivot; // j < target < i: everything between equals the pivot
  }
  return a[target]!;
}

/**
 * The sampler of one generation: settings, PRNG state and scratch buffers for a vocabulary of V.
 * `sample()` applies the pipeline described at the top of this file to a logits row.
 */
export class Sampler {
  readonly V: number;
  /** The PRNG seed in use (given, or drawn at random): pass it back to reproduce a run. */
  readonly seed: number;
  readonly temperature: number;
  readonly topK: number;
  readonly topP: number;
  readonly minP: number;
  readonly repetitionPenalty: number;
  private readonly rng: Mulberry32;
  private readonly xV: Float32Array; // working copy of the logits
  private readonly selectV: Float32Array; // scratch for the top-k quickselect
  private readonly probV: Float64Array; // probabilities after top-k (not renormalized after top-p/min-p)
  private readonly idxV: Int32Array; // candidate ids; the kept ones are idxV[0..kept)
  private readonly seenV: Uint8Array; // repetition-penalty marks
  private readonly byProbDesc: (a: number, b: number) => number;
  private keptMass = 0; // Σ probV over the kept candidates

  constructor(V: number, options: SamplingOptions = {}) {
    checkSamplingOptions(options);
    this.V = V;
    this.temperature = options.temperature ?? 1;
    this.topK = options.topK ?? 0;
    this.topP = options.topP ?? 1;
    this.minP = options.minP ?? 0;
    this.repetitionPenalty = options.repetitionPenalty ?? 1;
    this.seed = options.seed ?? Math.floor(Math.random() * 4294967296);
    this.rng = new Mulberry32(this.seed);
    this.xV = new Float32Array(V);
    this.selectV = new Float32Array(this.topK > 0 && this.topK < V ? V : 0);
    this.probV = new Float64Array(V);
    this.idxV = new Int32Array(V);
    this.seenV = new Uint8Array(V);
    const probV = this.probV;
    this.byProbDesc = (a, b) => probV[b]! - probV[a]! || a - b; // ties: lower id first (deterministic)
  }

  /** True when the settings reduce to argmax (temperature 0 or top-k 1). */
  get greedy(): boolean {
    return this.temperature === 0 || this.topK === 1;
  }

  /**
   * Choose the next token from logitsV [V], given the context ids contextIds[0..n) (prompt and
   * generated tokens, for the repetition penalty). Deterministic for a given seed and call sequence.
   */
  sample(logitsV: Float32Array, contextIds: ArrayLike<number> = [], n: number = contextIds.length): number {
    const kept = this.filter(logitsV, contextIds, n);
    if (kept === 1) return this.idxV[0]!;
    const r = this.rng.next() * this.keptMass;
    let cum = 0;
    for (let i = 0; i < kept; i++) {
      const id = this.idxV[i]!;
      cum += this.probV[id]!;
      if (r < cum) return id;
    }
    return this.idxV[kept - 1]!; // r landed in the rounding slack of the last one
  }

  /** The final distribution `sample()` draws from, as a new [V] array (for tests and inspection). */
  distribution(logitsV: Float32Array, contextIds: ArrayLike<number> = [], n: number = contextIds.length): Float64Array {
    const kept = this.filter(logitsV, contextIds, n);
    const pV = new Float64Array(this.V);
    if (kept === 1) {
      pV[this.idxV[0]!] = 1;
      return pV;
    }
    for (let i = 0; i < kept; i++) pV[this.idxV[i]!] = this.probV[this.idxV[i]!]! / this.keptMass;
    return pV;
  }

  /** Steps 1-5: leaves the kept ids in idxV[0..kept), their probabilities in probV; returns kept. */
  private filter(logitsV: Float32Array, contextIds: ArrayLike<number>, n: number): number {
    const V = this.V,
      xV = this.xV,
      probV = this.probV,
      idxV = this.idxV;
    if (logitsV.length < V) throw new RangeError(`logits have ${logitsV.length} entries, the sampler expects V = ${V}`);
    xV.set(logitsV.length === V ? logitsV : logitsV.subarray(0, V));
    // NaN or +Inf logits have no argmax and no softmax: choosing "token 0" (or nothing) from them
    // would be a silent wrong answer. (-Inf is a masked token, which is fine.)
    for (let v = 0; v < V; v++) {
      const x = xV[v]!;
      if (x !== x || x === Infinity) {
        throw new RangeError(
          `the logits hold ${x} (token id ${v}): the model produced non-finite values, so no token can be chosen; ` +
            `check the weights (a checkpoint saved after training diverged?)`,
        );
      }
    }

    // 1. repetition penalty
    if (this.repetitionPenalty !== 1) applyRepetitionPenalty(xV, contextIds, n, this.repetitionPenalty, this.seenV);

    // 2. temperature (0: greedy)
    if (this.greedy) {
      idxV[0] = argmax(xV, V);
      if (xV[idxV[0]]! === -Infinity) throw new RangeError("every token's logit is -Infinity: nothing can be chosen");
      return 1;
    }
    if (this.temperature !== 1) {
      const invT = 1 / this.temperature;
      for (let v = 0; v < V; v++) xV[v] = xV[v]! * invT;
    }

    // 3. top-k: drop everything below the k-th largest logit
    if (this.topK > 0 && this.topK < V) {
      this.selectV.set(xV);
      const kth = kthLargest(this.selectV, V, this.topK);
      for (let v = 0; v < V; v++) if (xV[v]! < kth) xV[v] = -Infinity;
    }

    // softmax of what is left (masked logits get probability 0)
    let max = -Infinity;
    for (let v = 0; v < V; v++) if (xV[v]! > max) max = xV[v]!;
    let sum = 0;
    for (let v = 0; v < V; v++) {
      const e = Math.exp(xV[v]! - max);
      probV[v] = e;
      sum += e;
    }
    if (!(sum >= 1 && sum < Infinity)) {
      // exp(0) = 1 is in the sum unless the scaled logits overflowed or all are masked
      throw new RangeError(
        max === -Infinity
          ? "every token's logit is -Infinity: nothing can be sampled"
          : `temperature ${this.temperature} scales these logits out of range (softmax overflows); use a larger temperature, or 0 for greedy`,
      );
    }
    const pMax = 1 / sum; // the largest probability: exp(0) / sum
    for (let v = 0; v < V; v++) probV[v] = probV[v]! / sum;

    if (this.topP >= 1 && this.minP <= 0) {
      // plain sampling over every token left
      let kept = 0;
      for (let v = 0; v < V; v++) if (probV[v]! > 0) idxV[kept++] = v;
      this.keptMass = 1;
      return kept;
    }

    // 4 + 5. Both keep a prefix of the ids sorted by probability:
    //  - min-p keeps exactly the ids with p >= minP·pMax: that is a filter, no sorting needed;
    //  - top-p: the ids with p < (1 - topP)/V hold less than V·(1 - topP)/V = 1 - topP in total,
    //    so the ids with p >= (1 - topP)/V already hold more than topP: the prefix ends among them.
    const minPThreshold = this.minP * pMax;
    const threshold = Math.max(this.topP < 1 ? (1 - this.topP) / V : 0, minPThreshold);
    let candidates = 0;
    for (let v = 0; v < V; v++) if (probV[v]! > 0 && probV[v]! >= threshold) idxV[candidates++] = v;
    if (this.topP >= 1) {
      // min-p only
      this.keptMass = 0;
      for (let i = 0; i < candidates; i++) this.keptMass += probV[idxV[i]!]!;
      return candidates;
    }
    // Top-p: idxV[0..sure) are certainly in the prefix (unsorted, mass sureMass); the prefix ends
    // in the band idxV[sure..candidates), the only part that needs sorting.
    const { sure, sureMass, end } = this.splitTopP(candidates, threshold, pMax);
    idxV.subarray(sure, end).sort(this.byProbDesc);
    let kept = sure,
      mass = sureMass;
    while (kept < end && (kept === 0 || mass < this.topP)) {
      // always keep at least one
      mass += probV[idxV[kept]!]!;
      kept++;
    }
    this.keptMass = mass;
    return kept;
  }

  /**
   * Bisect the top-p boundary among the candidates idxV[0..n) (all with p >= lo), so that a flat
   * distribution does not mean sorting most of the vocabulary. For a threshold τ, let M(τ) be the
   * mass of the ids with p >= τ:
   *  - M(τ) < topP: all of them are in the prefix (it needs more mass) — they become "sure";
   *  - M(τ) >= topP: the prefix lies within them (a shorter prefix holds less than topP) — the
   *    others are dropped.
   * A 1e-9 margin keeps the decisions independent of summation order. Returns the ids reordered
   * as [sure | band] and the band's end.
   */
  private splitTopP(n: number, lo: number, pMax: number): { sure: number; sureMass: number; end: number } {
    const probV = this.probV,
      idxV = this.idxV;
    let hi = 2 * pMax; // M(hi) = 0: nothing above it
    for (let iter = 0; iter < 40; iter++) {
      let band = 0;
      for (let i = 0; i < n; i++) if (probV[idxV[i]!]! < hi) band++;
      if (band <= 64) break;
      const tau = 0.5 * (lo + hi);
      let mass = 0;
      for (let i = 0; i < n; i++) if (probV[idxV[i]!]! >= tau) mass += probV[idxV[i]!]!;
      if (mass < this.topP - 1e-9) {
        hi = tau;
      } else if (mass >= this.topP + 1e-9) {
        let kept = 0;
        for (let i = 0; i < n; i++) if (probV[idxV[i]!]! >= tau) idxV[kept++] = idxV[i]!;
        n = kept;
        lo = tau;
      } else {
        break; // M(τ) is within rounding of topP: let the sorted walk decide
      }
    }
    // Move the sure ids (p >= hi) to the front.
    let sure = 0,
      sureMass = 0;
    for (let i = 0; i < n; i++) {
      const id = idxV[i]!;
      if (probV[id]! >= hi) {
        idxV[i] = idxV[sure]!;
        idxV[sure++] = id;
        sureMass += probV[id]!;
      }
    }
    return { sure, sureMass, end: n };
  }
}
