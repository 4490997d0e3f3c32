// Perplexity, as MobileLLM's eval.py computes it for WikiText-2 (the algorithm GPTQ popularised):
//
//   ids      = tokenize("\n\n".join(test_split["text"]))          # once, with BOS
//   nsamples = len(ids) // seqlen                                  # the tail is dropped
//   for i in range(nsamples):
//       window = ids[i*seqlen : (i+1)*seqlen]                      # non-overlapping
//       loss_i = mean next-token cross-entropy of the window       # seqlen-1 predictions,
//                                                                  # from position 0, no carry-over
//       nll_i  = loss_i * seqlen
//   ppl = exp(sum(nll_i) / (nsamples * seqlen))
//
// `strict` instead divides the summed cross-entropy by the number of predictions actually made,
// nsamples * (seqlen - 1). Note that the two agree algebraically: nll_i = loss_i·seqlen and the
// division by nsamples·seqlen cancel the seqlen, leaving exp(mean_i loss_i) =
// exp(Σ CE / (nsamples·(seqlen-1))) in both cases. They differ only in floating-point rounding
// (eval.py also rounds each loss_i to float32; we keep float64 throughout). `strict` is offered
// so the formula matches what it claims, term by term; the published numbers use the first.
//
// Each window is fed through the model in chunks (model.feed with the logits callback), so the
// [seqlen, V] logits are never held at once: each chunk's rows are reduced to cross-entropy sums
// as they arrive. Between chunks the event loop runs, so an AbortSignal stops a long run promptly;
// the per-window losses can be saved after each window and a later run resumes from them.

import type { MobileLLM } from "../model/model.js";
import { yieldToEventLoop } from "../util/event-loop.js";
import { crossEntropy } from "./cross-entropy.js";
import type { ResumeStore } from "./resume.js";

export interface PerplexityOptions {
  /** Window length in tokens (eval.py: 2048, the models' context length). */
  seqlen?: number;
  /** Average over the nsamples·(seqlen−1) predictions instead of eval.py's nsamples·seqlen arithmetic. */
  strict?: boolean;
  /** Evaluate only the first N windows (a quick estimate). */
  limitWindows?: number;
  /** Stop between chunks when aborted (the promise rejects with the signal's reason). */
  signal?: AbortSignal;
  /** Holds the finished windows' losses (JSON): read on start (if present), rewritten after each window. */
  resume?: ResumeStore;
  /** Called after every chunk of tokens and every window (for progress displays). */
  onProgress?: (progress: PerplexityProgress) => void;
}

export interface PerplexityProgress {
  /** Windows finished so far (including resumed ones) and the number that will be evaluated. */
  done: number;
  total: number;
  /** Perplexity over the windows finished so far (NaN before the first). */
  ppl: number;
  /** Tokens fed in this process (resumed windows excluded), for a tokens/s rate. */
  tokensThisRun: number;
}

export interface PerplexityResult {
  ppl: number;
  seqlen: number;
  /** Windows evaluated (floor(streamLength / seqlen), or fewer with limitWindows). */
  nsamples: number;
  streamLength: number;
  /** Mean next-token cross-entropy (nats) of each window, over its seqlen−1 predictions. */
  windowLosses: number[];
  strict: boolean;
  /** Windows taken from the resume file rather than computed. */
  resumedWindows: number;
}

/** Perplexity from per-window mean losses, with eval.py's arithmetic or the strict one. */
export function perplexityFromLosses(windowLosses: number[], seqlen: number, strict = false): number {
  const n = windowLosses.length;
  if (strict) {
    let sumCE = 0; // total cross-entropy over every prediction made
    for (const loss of windowLosses) sumCE += loss * (seqlen - 1);
    return Math.exp(sumCE / (n * (seqlen - 1)));
  }
  let sumNll = 0;
  for (const loss of windowLosses) sumNll += loss * seqlen; // neg_log_likelihood = loss * seqlen
  return Math.exp(sumNll / (n * seqlen));
}

/**
 * Mean next-token cross-entropy of one window fed from position 0: the average over t = 0..T-2 of
 * -log p(window[t+1] | window[..t]). Feeds `chunk` tokens at a time (between chunks the event
 * loop runs and `signal` is checked).
 */
export async function windowLoss(
  model: MobileLLM,
  window: ArrayLike<number>,
  signal?: AbortSignal,
  onChunk?: (tokens: number) => void,
  chunk = 256,
): Promise<number> {
  const T = window.length,
    V = model.config.vocabSize;
  if (T < 2) throw new RangeError("a perplexity window needs at least 2 tokens");
  let sumCE = 0;
  model.reset();
  for (let a = 0; a < T; a += chunk) {
    signal?.throwIfAborted();
    const b = Math.min(T, a + chunk);
    const piece = Array.prototype.slice.call(window, a, b) as number[];
    model.feed(piece, (logitsTV, t0, Tc) => {
      for (let r = 0; r < Tc; r++) {
        const t = a + t0 + r; // position in the window; its logits predict window[t+1]
        if (t + 1 < T) sumCE += crossEntropy(logitsTV, r * V, V, window[t + 1]!);
      }
    });
    onChunk?.(b - a);
    if (b < T) await yieldToEventLoop();
  }
  return sumCE / (T - 1);
}

interface ResumeState {
  format: "mobilellm-ppl-resume/1";
  seqlen: number;
  streamLength: number;
  /** FNV-1a hash of the token ids, so a state file is never applied to a different stream. */
  idsHash: string;
  windowLosses: number[];
}

function hashIds(ids: ArrayLike<number>): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < ids.length; i++) {
    let x = ids[i]!;
    for (let k = 0; k < 4; k++) {
      h = Math.imul(h ^ (x & 0xff), 0x01000193);
      x >>>= 8;
    }
  }
  return (h >>> 0).toString(16).padStart(8, "0");
}

function readResume(store: ResumeStore, expect: Omit<ResumeState, "windowLosses">): number[] {
  const file = store.name;
  const text = store.read();
  if (text === undefined) return [];
  let s: ResumeState;
  try {
    s = JSON.parse(text) as ResumeState;
  } catch (e) {
    throw new Error(`${file}: resume file is not valid JSON (${(e as Error).message}); delete it to start over`);
  }
  if (s.format !== expect.format || !Array.isArray(s.windowLosses) || !s.windowLosses.every((x) => typeof x === "number")) {
    throw new Error(`${file}: not a perplexity resume file (format ${JSON.stringify(s.format)}); delete it or pass another path`);
  }
  if (s.seqlen !== expect.seqlen || s.streamLength !== expect.streamLength || s.idsHash !== expect.idsHash) {
    throw new Error(
      `${file}: resume file was written for another run (seqlen ${s.seqlen}, ${s.streamLength} tokens, hash ${s.idsHash}; ` +
        `this run: seqlen ${expect.seqlen}, ${expect.streamLength} tokens, hash ${expect.idsHash}); delete it or pass another path`,
    );
  }
  return s.windowLosses;
}

/** Perplexity of a token stream (ids[0] is normally BOS) with eval.py's windows. */
export async function perplexity(model: MobileLLM, ids: ArrayLike<number>, options: PerplexityOptions = {}): Promise<PerplexityResult> {
  const seqlen = options.seqlen ?? 2048;
  if (!(Number.isInteger(seqlen) && seqlen >= 2)) throw new RangeError(`seqlen must be an integer >= 2, got ${seqlen}`);
  if (seqlen > model.cache.maxP) {
    throw new RangeError(`seqlen ${seqlen} exceeds the model's ${model.cache.maxP}-position context; pass a smaller seqlen`);
  }
  const V = model.config.vocabSize;
  for (let i = 0; i < ids.length; i++) {
    if (!(Number.isInteger(ids[i]) && ids[i]! >= 0 && ids[i]! < V))
      throw new RangeError(`token id ${ids[i]} at index ${i} is outside the vocabulary [0, ${V})`);
  }
  const available = Math.floor(ids.length / seqlen);
  if (available === 0)
    throw new RangeError(`the stream has ${ids.length} tokens, fewer than one window of ${seqlen}; use a smaller seqlen`);
  const nsamples = Math.min(available, options.limitWindows ?? available);

  const header = { format: "mobilellm-ppl-resume/1" as const, seqlen, streamLength: ids.length, idsHash: hashIds(ids) };
  const windowLosses = options.resume ? readResume(options.resume, header).slice(0, nsamples) : [];
  const resumedWindows = windowLosses.length;
  let tokensThisRun = 0;
  const report = () =>
    options.onProgress?.({
      done: windowLosses.length,
      total: nsamples,
      tokensThisRun,
      ppl: windowLosses.length ? perplexityFromLosses(windowLosses, seqlen, options.strict) : NaN,
    });
  for (let i = windowLosses.length; i < nsamples; i++) {
    const window = Array.prototype.slice.call(ids, i * seqlen, (i + 1) * seqlen) as number[];
    windowLosses.push(
      await windowLoss(model, window, options.signal, (n) => {
        tokensThisRun += n;
        report();
      }),
    );
    options.resume?.write(JSON.stringify({ ...header, windowLosses }) + "\n");
    report();
    await yieldToEventLoop();
  }
  return {
    ppl: perplexityFromLosses(windowLosses, seqlen, options.strict),
    seqlen,
    nsamples,
    streamLength: ids.length,
    windowLosses,
    strict: Boolean(options.strict),
    resumedWindows,
  };
}
