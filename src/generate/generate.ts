// Autoregressive generation with the KV cache: prefill the prompt, then decode one token at a time.
//
//   logits = model.feed(promptIds)          prefill: the whole prompt in batched chunks (matrix-
//                                            matrix work), filling every attention application's
//                                            KV cache slot for positions 0 .. P-1
//   repeat: id = sampler.sample(logits)      greedy or sampled (sampling.ts)
//           logits = model.feed([id])        decode: one position; attention reads the cache
//
// The cache lives in the model (src/model/state.ts): keys (already rotated) and values of every
// position for every attention *application*. With MobileLLM's immediate block-wise layer sharing
// ("-LS" models) each block runs twice in a row on different inputs, so the two runs have separate
// cache slots (2·L slots, not L); a decode step therefore costs what one position of the full
// re-run costs, and the cached logits equal a full `model.forward()` of the whole sequence.
// A model runs one generation at a time (generate() resets its cache; a second one is refused).
//
// Usage:
//   const gen = generate(model, "Once upon a time", { tokenizer, maxNewTokens: 64, temperature: 0.8, topP: 0.9, seed: 1 });
//   for await (const step of gen) process.stdout.write(step.text);   // streamed text
//   const { stopReason, decodeTokensPerSecond } = await gen.result;  // summary
// or, without streaming: `const { text } = await generate(model, ids, opts).result;` (awaiting
// `result` of a generation nobody iterates runs it to the end; so does `.complete()`).
//
// Default decoding (the same in the library and the CLI): when the model folder's
// generation_config.json sets `do_sample: true`, its temperature / top_k / top_p / min_p /
// repetition_penalty (with transformers' defaults for the ones it omits: temperature 1, top_k 50,
// top_p 1), as transformers' generate() does; otherwise greedy. Options given explicitly win.
//
// Context limit: the prompt plus maxNewTokens must fit the model's KV cache (max_position_embeddings,
// or loadModel's maxPositions); otherwise generate() throws before doing any work.

import type { MobileLLM } from "../model/model.js";
import { yieldToEventLoop } from "../util/event-loop.js";
import { createTextStream, type TextCodec } from "./detokenize.js";
import { checkSamplingOptions, Sampler, type SamplingOptions } from "./sampling.js";
import { StopStrings } from "./stop.js";

export type { TextCodec } from "./detokenize.js";

/** Generation settings, with the names Hugging Face `generate()` users know (camelCase). */
export interface GenerateOptions extends SamplingOptions {
  /** Tokens to generate at most (default 32). */
  maxNewTokens?: number;
  /** Stop when the generated text contains one of these (not included in the output text). Needs a tokenizer. */
  stop?: string | readonly string[];
  /** Stop after sampling this id (or any of these). Default: the config's eos_token_id; null: never. */
  eosTokenId?: number | readonly number[] | null;
  /** Abort between tokens; the result then has stopReason "abort". */
  signal?: AbortSignal;
  /** Needed for a text prompt, for step text and for stop strings; without it steps carry ids only. */
  tokenizer?: TextCodec;
  /** For a text prompt: prepend the BOS id (default true, as MobileLLM's tokenizer does). */
  addBos?: boolean;
}

/** One generated token. */
export interface GenerateStep {
  /** The sampled token id. */
  id: number;
  /** New text this token completes ("" while a character or a possible stop string is held back). */
  text: string;
  /** The vocabulary piece of `id`, when the tokenizer provides idToPiece. */
  piece?: string;
  /** All text emitted so far (generated text only, not the prompt). */
  runningText: string;
}

export type StopReason = "eos" | "stop" | "length" | "abort";

/** The summary of a finished generation. */
export interface GenerateResult {
  /** Generated ids, including a final EOS id or the id that completed a stop string. */
  ids: number[];
  /** The generated text: always the concatenation of every step's text. */
  text: string;
  promptTokens: number;
  generatedTokens: number;
  /** Prompt tokens per second of prefill (model forward and first sample). */
  prefillTokensPerSecond: number;
  /** Tokens per second of the decode steps (generatedTokens - 1 forwards; 0 if none). */
  decodeTokensPerSecond: number;
  prefillSeconds: number;
  decodeSeconds: number;
  stopReason: StopReason;
  /** The sampler's PRNG seed (pass it as `seed` to reproduce a sampled run). */
  seed: number;
  /** Threads the model's kernels ran on. */
  threads: number;
}

/** What generation needs from a model (MobileLLM has it). `generationDefaults`: see samplingDefaults. */
export type GenerationModel = Pick<MobileLLM, "config" | "cache" | "reset" | "feed"> & {
  generationDefaults?: SamplingOptions;
  readonly threads?: number;
};

/** Greedy: the default decoding when a model folder has no generation_config.json asking to sample. */
export const GREEDY: Readonly<SamplingOptions> = Object.freeze({ temperature: 0 });

/**
 * The default sampling options of a model folder's generation_config.json (parsed JSON, or
 * undefined when the folder has none): its sampling settings when it sets `do_sample: true`
 * (transformers' GenerationConfig defaults for the ones it leaves out: temperature 1, top_k 50,
 * top_p 1, min_p off), else greedy. A repetition_penalty applies either way, as in transformers.
 */
export function samplingDefaults(generationConfig: unknown, file = "generation_config.json"): SamplingOptions {
  if (generationConfig === undefined) return { ...GREEDY };
  if (typeof generationConfig !== "object" || generationConfig === null || Array.isArray(generationConfig)) {
    throw new TypeError(`${file}: expected a JSON object`);
  }
  const g = generationConfig as Record<string, unknown>;
  const num = (key: string): number | undefined => {
    const v = g[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== "number") throw new TypeError(`${file}: "${key}" must be a number, got ${JSON.stringify(v)}`);
    return v;
  };
  const o: SamplingOptions =
    g.do_sample === true ? { temperature: num("temperature") ?? 1, topK: num("top_k") ?? 50, topP: num("top_p") ?? 1 } : { ...GREEDY };
  const minP = num("min_p"),
    penalty = num("repetition_penalty");
  if (g.do_sample === true && minP !== undefined) o.minP = minP;
  if (penalty !== undefined) o.repetitionPenalty = penalty;
  try {
    checkSamplingOptions(o);
  } catch (e) {
    throw new RangeError(`${file}: ${(e as Error).message}`);
  }
  return o;
}

interface Plan {
  model: GenerationModel;
  promptIds: number[];
  maxNewTokens: number;
  eos: Set<number>;
  stops: string[];
  sampler: Sampler;
  signal: AbortSignal | undefined;
  tokenizer: TextCodec | undefined;
}

/**
 * Generate a continuation of `prompt` (text, with `options.tokenizer`, or token ids).
 * Validates everything (options, ids, context length) and throws before any work; the returned
 * Generation runs as it is iterated.
 */
export function generate(model: GenerationModel, prompt: string | ArrayLike<number>, options: GenerateOptions = {}): Generation {
  return new Generation(plan(model, prompt, options));
}

function plan(model: GenerationModel, prompt: string | ArrayLike<number>, given: GenerateOptions): Plan {
  const c = model.config,
    V = c.vocabSize;
  // The model's defaults (generation_config.json, else greedy), overridden by every option given.
  const o: GenerateOptions = { ...(model.generationDefaults ?? GREEDY) };
  for (const [key, value] of Object.entries(given)) if (value !== undefined) (o as Record<string, unknown>)[key] = value;
  checkSamplingOptions(o);
  const maxNewTokens = o.maxNewTokens ?? 32;
  if (!(Number.isInteger(maxNewTokens) && maxNewTokens >= 1)) {
    throw new RangeError(`maxNewTokens must be an integer >= 1, got ${JSON.stringify(o.maxNewTokens)}`);
  }
  let promptIds: number[];
  if (typeof prompt === "string") {
    if (!o.tokenizer) throw new TypeError("a text prompt needs options.tokenizer (or pass token ids)");
    promptIds = o.tokenizer.encode(prompt, { addBos: o.addBos ?? true });
  } else {
    promptIds = Array.from(prompt);
  }
  if (promptIds.length === 0) throw new RangeError("the prompt is empty: give at least one token (e.g. the BOS id)");
  const badId = promptIds.findIndex((id) => !(Number.isInteger(id) && id >= 0 && id < V));
  if (badId >= 0) throw new RangeError(`prompt token ${badId} is ${promptIds[badId]}, outside the vocabulary [0, ${V})`);
  const capacity = model.cache.maxP;
  if (promptIds.length + maxNewTokens > capacity) {
    throw new RangeError(
      `the prompt (${promptIds.length} tokens) plus maxNewTokens (${maxNewTokens}) is ${promptIds.length + maxNewTokens} ` +
        `positions, more than the model's context of ${capacity} (max_position_embeddings or maxPositions); ` +
        `shorten the prompt or lower maxNewTokens`,
    );
  }
  const eosIds =
    o.eosTokenId === null
      ? []
      : o.eosTokenId === undefined
        ? [c.eosTokenId]
        : typeof o.eosTokenId === "number"
          ? [o.eosTokenId]
          : [...o.eosTokenId];
  const stops = o.stop === undefined ? [] : typeof o.stop === "string" ? [o.stop] : [...o.stop];
  if (stops.some((x) => typeof x !== "string" || x === "")) {
    throw new RangeError(`stop strings must be non-empty strings, got ${JSON.stringify(o.stop)} (an empty one would stop before any text)`);
  }
  if (stops.length > 0 && !o.tokenizer) throw new TypeError("stop strings need options.tokenizer to turn ids into text");
  return {
    model,
    promptIds,
    maxNewTokens,
    eos: new Set(eosIds),
    stops,
    sampler: new Sampler(V, o),
    signal: o.signal,
    tokenizer: o.tokenizer,
  };
}

/** Models with a generation in progress: the KV cache belongs to one generation at a time. */
const busy = new WeakSet<object>();

/**
 * A promise that tells its owner when somebody waits on it (`await`, `.then`, `.catch`), so that
 * awaiting a generation's result can start the generation. Derived promises are plain Promises.
 */
class ObservedPromise<T> extends Promise<T> {
  static override get [Symbol.species]() {
    return Promise;
  }
  onObserve: (() => void) | undefined;
  override then<A = T, B = never>(
    onFulfilled?: ((v: T) => A | PromiseLike<A>) | null,
    onRejected?: ((e: unknown) => B | PromiseLike<B>) | null,
  ): Promise<A | B> {
    this.onObserve?.();
    return super.then(onFulfilled, onRejected);
  }
}

/**
 * A running generation: iterate it (once) for the steps; `result` resolves with the summary when
 * it ends (also when the loop is left early: stopReason "abort"), and rejects if generation fails.
 * Awaiting `result` without iterating runs the generation to the end (steps are then not seen);
 * iterating and then awaiting `result` works as before.
 */
export class Generation implements AsyncIterable<GenerateStep> {
  readonly result: Promise<GenerateResult>;
  private resolve!: (r: GenerateResult) => void;
  private reject!: (e: unknown) => void;
  private started = false;
  private driveScheduled = false;
  private readonly plan: Plan;

  constructor(p: Plan) {
    this.plan = p;
    const result = new ObservedPromise<GenerateResult>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
    result.catch(() => {}); // the error also reaches the iterating loop; don't report it twice
    result.onObserve = () => this.driveUnlessIterated();
    this.result = result;
  }

  /**
   * Someone awaits `result`: unless a loop starts iterating first (say `Promise.all([gen.result,
   * loop()])`), run the generation to the end after the current turn of the event loop.
   */
  private driveUnlessIterated(): void {
    if (this.started || this.driveScheduled) return;
    this.driveScheduled = true;
    void yieldToEventLoop().then(async () => {
      if (this.started) return;
      try {
        for await (const _step of this);
      } catch {
        // already delivered as the rejection of `result`
      }
    });
  }

  [Symbol.asyncIterator](): AsyncIterator<GenerateStep> {
    if (this.started) throw new Error("a Generation can be iterated only once");
    this.started = true;
    return this.run();
  }

  /** Run to the end (if nobody iterates yet) and return the summary. */
  async complete(): Promise<GenerateResult> {
    if (!this.started) for await (const _step of this);
    return this.result;
  }

  private async *run(): AsyncGenerator<GenerateStep, void> {
    const { model, promptIds, maxNewTokens, eos, sampler, signal, tokenizer } = this.plan;
    const P = promptIds.length;
    const contextIds = new Int32Array(P + maxNewTokens); // prompt + generated, for the repetition penalty
    contextIds.set(promptIds);
    const oneId = new Int32Array(1);
    const ids: number[] = [];
    let decoder: ReturnType<typeof createTextStream> | null;
    let stops: StopStrings | null;
    try {
      decoder = tokenizer ? createTextStream(tokenizer, promptIds) : null;
      stops = this.plan.stops.length ? new StopStrings(this.plan.stops) : null;
    } catch (e) {
      this.reject(e);
      throw e;
    }
    let runningText = "";
    let stopReason: StopReason | null = null;
    let prefillSeconds = 0,
      decodeSeconds = 0;
    const finish = (reason: StopReason) => {
      this.resolve({
        ids,
        text: runningText,
        promptTokens: P,
        generatedTokens: ids.length,
        prefillTokensPerSecond: prefillSeconds > 0 ? P / prefillSeconds : 0,
        decodeTokensPerSecond: decodeSeconds > 0 ? (ids.length - 1) / decodeSeconds : 0,
        prefillSeconds,
        decodeSeconds,
        stopReason: reason,
        seed: sampler.seed,
        threads: model.threads ?? 1,
      });
    };
    if (busy.has(model)) {
      const e = new Error("this model is already running a generation (its KV cache is in use); finish or leave that loop first");
      this.reject(e);
      throw e;
    }
    busy.add(model);
    try {
      if (signal?.aborted) {
        stopReason = "abort";
        return;
      }
      let t = performance.now();
      model.reset();
      let logits = model.feed(promptIds); // prefill
      for (let i = 0; i < maxNewTokens; i++) {
        let id: number;
        try {
          id = sampler.sample(logits, contextIds, P + i);
        } catch (e) {
          throw new RangeError(`generation step ${i + 1} (position ${P + i}): ${(e as Error).message}`);
        }
        const now = performance.now();
        if (i === 0) prefillSeconds = (now - t) / 1000;
        else decodeSeconds += (now - t) / 1000;
        contextIds[P + i] = id;
        ids.push(id);

        const isEos = eos.has(id);
        const last = isEos || i === maxNewTokens - 1;
        let text = "";
        if (decoder) {
          if (!isEos) text = decoder.push(id); // EOS has no text
          if (last) text += decoder.flush(); // an unfinished character at the very end
          if (stops) {
            const s = stops.push(text);
            text = s.text;
            if (s.stopped) stopReason = "stop";
            else if (last) text += stops.flush();
          }
        }
        runningText += text;
        if (stopReason === null && last) stopReason = isEos ? "eos" : "length";
        const step: GenerateStep = { id, text, runningText };
        const piece = tokenizer?.idToPiece?.(id);
        if (piece !== undefined) step.piece = piece;
        yield step;
        if (stopReason !== null) return;

        await yieldToEventLoop();
        if (signal?.aborted) {
          stopReason = "abort";
          return;
        }
        t = performance.now();
        oneId[0] = id;
        logits = model.feed(oneId); // decode one position
      }
    } catch (e) {
      stopReason = "abort";
      this.reject(e);
      throw e;
    } finally {
      busy.delete(model);
      // Also reached when the consumer leaves the loop early (stopReason still null): an abort.
      finish(stopReason ?? "abort");
    }
  }
}
