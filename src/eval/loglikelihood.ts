// log p(continuation | context) for a causal LM, the primitive of lm-evaluation-harness's
// multiple-choice tasks:
//
//   loglikelihood = Σ_j log_softmax(logits[len(ctx) - 1 + j])[cont[j]]
//   is_greedy     = every cont[j] is the argmax of its row
//
// as if `context + continuation` were run through one forward pass. We use the KV cache instead:
// the context is fed once, the logits of its LAST position (which predict the first continuation
// token) are copied out, and for each choice the cache is truncated back to the context and only
// continuation[0 .. n-2] is fed (the last continuation token is never an input). Consecutive
// requests that share a context prefix (all choices of an item; winogrande's two contexts share
// the sentence up to the blank) reuse the cached prefix.

import type { MobileLLM } from "../model/model.js";
import { argmax } from "../util/argmax.js";
import { logSumExp } from "./cross-entropy.js";

export interface LoglikelihoodResult {
  loglikelihood: number;
  isGreedy: boolean;
  numTokens: number;
}

function commonPrefix(a: number[], b: number[]): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}

/** Scores continuations on one model. It assumes it is the only user of the model's KV cache while in use. */
export class LoglikelihoodScorer {
  /** The context whose positions are in the cache (followed by some continuation tokens). */
  private cachedContext: number[] = [];
  /** Copy of the logits at the context's last position: they predict the first continuation token. */
  private readonly contextLogitsV: Float32Array;

  constructor(readonly model: MobileLLM) {
    this.contextLogitsV = new Float32Array(model.config.vocabSize);
  }

  /** Score `continuation` after `context` (token ids). Left-truncates the context when both exceed the model's context length, like the harness. */
  score(context: number[], continuation: number[]): LoglikelihoodResult {
    const model = this.model,
      V = model.config.vocabSize,
      maxP = model.cache.maxP;
    if (continuation.length === 0) throw new RangeError("empty continuation: nothing to score");
    for (const id of [...context, ...continuation]) {
      if (!(Number.isInteger(id) && id >= 0 && id < V))
        throw new RangeError(`token id ${id} is outside the model's vocabulary [0, ${V}): do the tokenizer and the model match?`);
    }
    if (continuation.length > maxP)
      throw new RangeError(`continuation of ${continuation.length} tokens exceeds the model's ${maxP}-position context`);
    // The model sees (context + continuation)[-(maxP+1):][:-1]: keep the last maxP+1-len(cont) context tokens.
    const keep = maxP + 1 - continuation.length;
    const ctx = context.length > keep ? context.slice(context.length - keep) : context;
    if (ctx.length === 0) throw new RangeError("empty context: the first continuation token needs a preceding token (encode with BOS)");

    // (If something else used the model meanwhile, its cache no longer holds our context.)
    if (model.cache.length < this.cachedContext.length) this.cachedContext = [];
    const p = commonPrefix(this.cachedContext, ctx);
    if (p === ctx.length && p === this.cachedContext.length) {
      model.truncate(ctx.length); // same context: drop the previous choice, keep the saved logits
    } else {
      const start = Math.min(p, ctx.length - 1); // re-feed at least the last context token to get its logits
      if (start === 0) model.reset();
      else model.truncate(start);
      this.contextLogitsV.set(model.feed(ctx.slice(start)));
      this.cachedContext = ctx;
    }

    // First continuation token: predicted by the context's last position.
    let ll = this.contextLogitsV[continuation[0]!]! - logSumExp(this.contextLogitsV, 0, V);
    let greedy = argmax(this.contextLogitsV, V) === continuation[0];
    // The rest: feed continuation[0 .. n-2]; row r predicts continuation[r+1].
    if (continuation.length > 1) {
      model.feed(continuation.slice(0, -1), (logitsTV, t0, T) => {
        for (let r = 0; r < T; r++) {
          const target = continuation[t0 + r + 1]!;
          ll += logitsTV[r * V + target]! - logSumExp(logitsTV, r * V, V);
          if (argmax(logitsTV.subarray(r * V, r * V + V)) !== target) greedy = false;
        }
      });
    }
    return { loglikelihood: ll, isGreedy: greedy, numTokens: continuation.length };
  }
}
