// Zero-shot multiple-choice evaluation in the style of EleutherAI's lm-evaluation-harness.
//
// For every dataset row: the task builds one (context, continuation) request per choice
// (tasks/*.ts), each request is tokenized like the harness's `_encode_pair`, each continuation is
// scored by its summed token log-probabilities (loglikelihood.ts), and
//   acc      = [argmax_i ll_i == gold]
//   acc_norm = [argmax_i ll_i / len(choice_i) == gold]    (len in characters, as `len(str)` in Python)
// are averaged over the rows, with the standard error of the mean sqrt(var_{n-1}(x) / n).
//
// Tokenization (`_encode_pair`): trailing whitespace of the context moves to the front of the
// continuation; then whole = encode(context + continuation), ctx = encode(context), and the
// continuation tokens are whole[len(ctx):]. Encoding the pair together tokenizes the boundary the
// way the model saw such text in training (SentencePiece attaches the space to the next word:
// " yes" is one token "▁yes"), rather than encoding the continuation on its own.
// BOS: we prepend it (addBos, default true: MobileLLM was trained with BOS at the start of every
// sequence). Current lm-evaluation-harness versions do the same for MobileLLM: their HF backend
// leaves add_special_tokens to the tokenizer, and MobileLLM's (LlamaTokenizer) adds BOS. Older
// releases passed add_special_tokens=False for causal LMs unless add_bos_token=True; pass
// addBos: false (CLI --no-bos) to reproduce those.

import type { MobileLLM } from "../model/model.js";
import { argmax } from "../util/argmax.js";
import { yieldToEventLoop } from "../util/event-loop.js";
import type { ResumeStore } from "./resume.js";
import { DataError, type Row } from "./rows.js";
import { LoglikelihoodScorer } from "./loglikelihood.js";
import { rowFailer, type McItem, type McTask, type Metric } from "./tasks/task.js";

/** The part of a tokenizer the harness needs (the project's Tokenizer satisfies it). */
export interface EvalTokenizer {
  encode(text: string, opts?: { addBos?: boolean }): number[];
}

/** lm-evaluation-harness `_encode_pair`: token ids of a context and its continuation. */
export function encodePair(
  tok: EvalTokenizer,
  context: string,
  continuation: string,
  addBos = true,
): { context: number[]; continuation: number[] } {
  const spaces = context.length - context.trimEnd().length;
  if (spaces > 0) {
    continuation = context.slice(context.length - spaces) + continuation;
    context = context.slice(0, context.length - spaces);
  }
  const whole = tok.encode(context + continuation, { addBos });
  const ctx = tok.encode(context, { addBos });
  return { context: ctx, continuation: whole.slice(ctx.length) };
}

export interface ItemResult {
  /** Line of the row in its data file (1-based). */
  line: number;
  gold: number;
  /** Summed log-probability of each choice's continuation tokens. */
  loglikelihoods: number[];
  /** Whether each continuation is the model's greedy output. */
  isGreedy: boolean[];
  /** Characters of each choice string (the acc_norm divisor). */
  choiceLengths: number[];
  pred: number;
  predNorm: number;
}

export interface MetricValue {
  value: number;
  /** Sample standard error of the mean (NaN with fewer than 2 items). */
  stderr: number;
}

export interface TaskResult {
  task: string;
  file: string;
  n: number;
  acc: MetricValue;
  acc_norm: MetricValue;
  /** The metrics the harness reports for this task (both are always computed). */
  metrics: readonly Metric[];
  items: ItemResult[];
}

export interface EvaluateOptions {
  /** Evaluate only the first N rows. */
  limit?: number;
  /** Prepend BOS to contexts (default true, as current harness versions do for MobileLLM's tokenizer). */
  addBos?: boolean;
  signal?: AbortSignal;
  /** JSONL of finished items: read on start (if present), appended after each item. */
  resume?: ResumeStore;
  /** Called after each item (for progress displays). */
  onItem?: (done: number, item: ItemResult) => void;
}

/** Mean and its standard error, sqrt(Σ(x - mean)² / (n - 1)) / sqrt(n), as the harness's mean_stderr. */
export function meanStderr(xs: number[]): MetricValue {
  const n = xs.length;
  if (n === 0) return { value: NaN, stderr: NaN };
  const mean = xs.reduce((a, b) => a + b, 0) / n;
  if (n < 2) return { value: mean, stderr: NaN };
  const ss = xs.reduce((a, x) => a + (x - mean) * (x - mean), 0);
  return { value: mean, stderr: Math.sqrt(ss / (n - 1)) / Math.sqrt(n) };
}

/** Score every request of an item and pick the acc / acc_norm predictions. */
export function scoreItem(scorer: LoglikelihoodScorer, tok: EvalTokenizer, item: McItem, line: number, addBos = true): ItemResult {
  const loglikelihoods: number[] = [],
    isGreedy: boolean[] = [];
  for (const req of item.requests) {
    const { context, continuation } = encodePair(tok, req.context, req.continuation, addBos);
    const r = scorer.score(context, continuation);
    loglikelihoods.push(r.loglikelihood);
    isGreedy.push(r.isGreedy);
  }
  const choiceLengths = item.choices.map((c) => [...c].length); // Python len(): code points
  return {
    line,
    gold: item.gold,
    loglikelihoods,
    isGreedy,
    choiceLengths,
    pred: argmax(loglikelihoods),
    predNorm: argmax(loglikelihoods.map((ll, i) => ll / choiceLengths[i]!)),
  };
}

function readResume(store: ResumeStore, task: string): Map<number, ItemResult> {
  const done = new Map<number, ItemResult>();
  const file = store.name;
  const text = store.read();
  if (text === undefined) return done;
  text.split("\n").forEach((text, i) => {
    if (text.trim() === "") return;
    let rec: ItemResult & { task: string };
    try {
      rec = JSON.parse(text) as ItemResult & { task: string };
    } catch (e) {
      throw new DataError(file, i + 1, `resume file line is not valid JSON (${(e as Error).message}); delete the file to start over`);
    }
    if (rec.task === task) done.set(rec.line, rec);
  });
  return done;
}

/**
 * Evaluate one task on rows in the dataset's own field layout (`file` names their source in
 * results and errors). Node reads them from a .jsonl/.parquet file: evaluateTask in eval/files.ts.
 */
export async function evaluateRows(
  model: MobileLLM,
  tok: EvalTokenizer,
  task: McTask,
  rows: AsyncIterable<Row>,
  file: string,
  options: EvaluateOptions = {},
): Promise<TaskResult> {
  const scorer = new LoglikelihoodScorer(model);
  const addBos = options.addBos ?? true;
  const resumed = options.resume ? readResume(options.resume, task.name) : new Map<number, ItemResult>();
  const items: ItemResult[] = [];
  for await (const { row, line } of rows) {
    if (options.limit !== undefined && items.length >= options.limit) break;
    options.signal?.throwIfAborted();
    const item = task.toItem(row, rowFailer(file, line));
    let result = resumed.get(line);
    if (result) {
      if (result.gold !== item.gold || result.loglikelihoods.length !== item.requests.length) {
        throw new DataError(
          options.resume!.name,
          undefined,
          `resume record for ${task.name} line ${line} does not match ${file}; delete the resume file to start over`,
        );
      }
    } else {
      result = scoreItem(scorer, tok, item, line, addBos);
      options.resume?.append(JSON.stringify({ task: task.name, ...result }) + "\n");
      await yieldToEventLoop();
    }
    items.push(result);
    options.onItem?.(items.length, result);
  }
  return {
    task: task.name,
    file,
    n: items.length,
    acc: meanStderr(items.map((r) => (r.pred === r.gold ? 1 : 0))),
    acc_norm: meanStderr(items.map((r) => (r.predNorm === r.gold ? 1 : 0))),
    metrics: task.metrics,
    items,
  };
}
