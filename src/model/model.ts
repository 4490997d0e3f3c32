// The MobileLLM model: embedding → L decoder blocks (each applied twice with layer sharing, in the
// config's order: immediate, repeat_all or reverse) →
// final RMSNorm → output projection through the shared embedding.
//
// MobileLLM §2.2: for sub-billion models, depth matters more than width ("deep and thin": 30
// layers at width 576 for 125M), sharing the input and output embeddings saves 16M parameters
// (11.8% of 125M) for a 0.2-point accuracy loss that the saved budget more than buys back, and
// §2.3 immediate block-wise weight sharing (the "-LS" models) runs every block twice in a row:
// more depth at no parameter cost, and the repeated block's weights are still in cache.

import type { Kernels, Weight } from "../kernels/kernels.js";
import type { KVSlot } from "./attention.js";
import { blockForward } from "./block.js";
import { layerSharingOrderOf, type MobileLLMConfig, type SamplingOptions } from "./config.js";
import { fillRopeTables, type RopeTables } from "./rotary.js";
import { allocRunState, blockOf, numApplications, runStateProblem, type Activations, type KVCache, type RunState } from "./state.js";
import { layerTensorName, layerTensorNames, weightBytes, type ModelGrads, type ModelWeights } from "./weights.js";

/** logitsTV = lm_head(norm(hTD)) for T rows (xnTD receives norm(h)); the lm_head is the embedding when shared. */
export function outputForward(
  k: Kernels,
  c: MobileLLMConfig,
  w: ModelWeights,
  hTD: Float32Array,
  xnTD: Float32Array,
  logitsTV: Float32Array,
  T: number,
): void {
  k.rmsnorm(xnTD, hTD, w.finalNormD, T, c.hiddenSize, c.rmsNormEps); // model.norm
  k.matmul(logitsTV, xnTD, w.lmHeadVD, T, c.hiddenSize, c.vocabSize); // lm_head
}

/** Backward of outputForward: overwrites dhTD with d hTD (dxnTD is scratch); g accumulates. */
export function outputBackward(
  k: Kernels,
  c: MobileLLMConfig,
  w: ModelWeights,
  g: ModelGrads,
  dLogitsTV: Float32Array,
  hTD: Float32Array,
  xnTD: Float32Array,
  dxnTD: Float32Array,
  dhTD: Float32Array,
  T: number,
): void {
  const D = c.hiddenSize,
    V = c.vocabSize;
  k.matmulBackwardW(g.lmHeadVD, dLogitsTV, xnTD, T, D, V); // d lm_head (= d embed_tokens when shared)
  k.matmulBackwardX(dxnTD, dLogitsTV, w.lmHeadVD, T, D, V); // d norm(h)
  dhTD.fill(0, 0, T * D);
  k.rmsnormBackward(dhTD, g.finalNormD, dxnTD, hTD, w.finalNormD, T, D, c.rmsNormEps);
}

/**
 * How the second application of a shared block (layer sharing, "-LS" models) attends:
 *   "separate"         over its own keys and values (one KV cache slot per application). The
 *                      mathematically intended model; equals the published modeling_llama.py
 *                      with use_cache=False. The default.
 *   "reference-cache"  over the FIRST application's keys and values, as the published code does
 *                      in one forward with use_cache=True (its default): both applications write
 *                      the same cache entry (layer_idx), the second one's keys land after the
 *                      first one's, and SDPA's causal mask is top-left aligned when query and key
 *                      lengths differ, so query t sees the first application's keys 0..t. Decoding
 *                      with our cache keeps that rule at every position, so cached generation
 *                      equals one forward over the whole text. (The published code itself, fed
 *                      ONE token with no cache, attends over both applications' keys; that
 *                      degenerate case is not reproduced.)
 * Models without layer sharing are the same under both.
 */
export type LayerSharingAttention = "separate" | "reference-cache";
export const LAYER_SHARING_ATTENTION: readonly LayerSharingAttention[] = ["separate", "reference-cache"];

export interface ModelOptions {
  /** Layer-sharing attention mode (default "separate"); see LayerSharingAttention. */
  layerSharingAttention?: LayerSharingAttention;
  /** KV cache capacity in positions (default: the config's max_position_embeddings). */
  maxPositions?: number;
  /** Largest number of tokens processed in one batched chunk (default 256). */
  maxChunk?: number;
}

/** Called with the logits of every token of a chunk: logitsTV is [T, V], for tokens t0 .. t0+T-1 of the call. */
export type LogitsCallback = (logitsTV: Float32Array, t0: number, T: number) => void;

export class MobileLLM {
  readonly config: MobileLLMConfig;
  readonly kernels: Kernels;
  readonly weights: ModelWeights;
  /** The model's KV cache; `cache.length` is the number of positions processed since reset(). */
  readonly cache: KVCache;
  /**
   * Decoding used by generate() for options not given: from the folder's generation_config.json
   * when it sets do_sample (loadModel fills this in; see samplingDefaults), else greedy.
   */
  generationDefaults: SamplingOptions = { temperature: 0 };
  private readonly act: Activations;
  private readonly rope: RopeTables;
  private readonly idsT: Int32Array;
  /** See LayerSharingAttention. */
  readonly layerSharingAttention: LayerSharingAttention;
  private readonly attendTo: (KVSlot | undefined)[];

  /**
   * `state`: the run state, when it was planned together with the weights (loadModel does, so that
   * memory that cannot grow once buffers exist holds both); by default it is allocated here.
   */
  constructor(config: MobileLLMConfig, kernels: Kernels, weights: ModelWeights, options: ModelOptions = {}, state?: RunState) {
    this.config = config;
    this.layerSharingAttention = options.layerSharingAttention ?? "separate";
    if (!LAYER_SHARING_ATTENTION.includes(this.layerSharingAttention)) {
      throw new RangeError(
        `layerSharingAttention must be "separate" or "reference-cache", got ${JSON.stringify(options.layerSharingAttention)}`,
      );
    }
    if (this.layerSharingAttention === "reference-cache" && config.layerSharing && layerSharingOrderOf(config) !== "immediate") {
      throw new RangeError(
        `layerSharingAttention "reference-cache" reproduces the published code's immediate layer sharing; ` +
          `this model's layer_sharing_order is "${layerSharingOrderOf(config)}": use "separate"`,
      );
    }
    this.kernels = kernels;
    this.weights = weights;
    const maxP = options.maxPositions ?? config.maxPositions;
    const maxT = Math.max(1, Math.min(options.maxChunk ?? 256, maxP));
    if (!(Number.isSafeInteger(maxP) && maxP >= 1)) throw new RangeError(`maxPositions must be a positive integer, got ${maxP}`);
    const problem = runStateProblem(config, maxT, maxP, weightBytes(weights), options.maxPositions !== undefined);
    if (problem !== undefined) throw new RangeError(problem);
    const s = state ?? kernels.allocate((a) => allocRunState(a, config, maxT, maxP));
    if (s.act.maxT !== maxT || s.cache.maxP !== maxP) {
      throw new RangeError(
        `the run state given holds chunks of ${s.act.maxT} tokens and ${s.cache.maxP} positions; ` +
          `the options ask for ${maxT} and ${maxP}`,
      );
    }
    this.act = s.act;
    this.cache = s.cache;
    this.rope = s.rope;
    fillRopeTables(this.rope, maxP, config.headDim, config.ropeTheta);
    this.idsT = new Int32Array(maxT);
    // Per application, the cache slot its attention reads when it is not its own (kvSlotOf), made
    // once here so that a decode step allocates nothing.
    this.attendTo = Array.from({ length: numApplications(config) }, (_, a) => {
      const s = this.kvSlotOf(a);
      return s === a ? undefined : { kPKVDh: this.cache.kPKVDh[s]!, vPKVDh: this.cache.vPKVDh[s]! };
    });
  }

  /** Threads the kernels run on. */
  get threads(): number {
    return this.kernels.threads ?? 1;
  }

  /**
   * End the kernels' worker threads (the wasm backend's pool). The model must not be used
   * afterwards; load it again instead. Also `await using model = await loadModel(...)`.
   */
  async dispose(): Promise<void> {
    await this.kernels.dispose?.();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.dispose();
  }

  /** Forget all cached positions (the next token is at position 0). */
  reset(): void {
    this.cache.length = 0;
  }

  /** Drop cached positions beyond `length` (e.g. to score several continuations of one prefix). */
  truncate(length: number): void {
    if (!(length >= 0 && length <= this.cache.length))
      throw new RangeError(`cannot truncate a cache of ${this.cache.length} positions to ${length}`);
    this.cache.length = length;
  }

  /** The block that application `a` uses (see blockOf in state.ts: the layer-sharing order). */
  blockOf(a: number): number {
    return blockOf(this.config, a);
  }

  /** The KV cache slot application `a` attends over: its own, or with "reference-cache" the first
   *  application's of its shared block (immediate sharing only: the published code has no other). */
  kvSlotOf(a: number): number {
    return this.config.layerSharing && this.layerSharingAttention === "reference-cache" ? a & ~1 : a;
  }

  /**
   * Feed `ids` at positions cache.length, cache.length+1, ..., extending the KV cache. The prompt is
   * processed in batched chunks (matrix-matrix work); a single id is one decode step.
   * With `onLogits`, the logits of every token are computed and handed over chunk by chunk;
   * otherwise only the last token's. Returns the last token's logits [V] (a view, valid until the
   * next call).
   */
  feed(ids: ArrayLike<number>, onLogits?: LogitsCallback): Float32Array {
    const c = this.config,
      k = this.kernels,
      act = this.act,
      cache = this.cache;
    const N = ids.length,
      D = c.hiddenSize,
      V = c.vocabSize;
    if (N === 0) throw new RangeError("feed() needs at least one token id");
    if (cache.length + N > cache.maxP) {
      throw new RangeError(
        `context overflow: ${cache.length} cached + ${N} new tokens exceed the ${cache.maxP}-position context ` +
          `(max_position_embeddings); shorten the input or reset()`,
      );
    }
    let last = act.logitsTV.subarray(0, V);
    for (let t0 = 0; t0 < N; t0 += act.maxT) {
      const T = Math.min(act.maxT, N - t0);
      const pos0 = cache.length;
      for (let t = 0; t < T; t++) this.idsT[t] = ids[t0 + t]!;
      k.embedding(act.xTD, this.weights.embedVD, this.idsT, T, D); // h = embed_tokens(ids)
      for (let a = 0; a < numApplications(c); a++) {
        blockForward(
          k,
          c,
          this.weights.layers[blockOf(c, a)]!,
          act.block,
          cache.kPKVDh[a]!,
          cache.vPKVDh[a]!,
          this.rope,
          1,
          T,
          pos0,
          this.attendTo[a],
        );
      }
      cache.length += T;
      if (onLogits) {
        this.project(act.xTD, act.xnTD, act.logitsTV, T);
        onLogits(act.logitsTV.subarray(0, T * V), t0, T);
        last = act.logitsTV.subarray((T - 1) * V, T * V);
      } else if (t0 + T === N) {
        this.project(act.xTD.subarray((T - 1) * D, T * D), act.xnTD, act.logitsTV, 1);
        last = act.logitsTV.subarray(0, V);
      }
    }
    return last;
  }

  /** logits = lm_head(norm(h)) for T rows of h; the lm_head is the embedding when shared. */
  private project(hTD: Float32Array, xnTD: Float32Array, logitsTV: Float32Array, T: number): void {
    outputForward(this.kernels, this.config, this.weights, hTD, xnTD, logitsTV, T);
  }

  /** Logits for every position of `ids` from position 0, row-major [T, V] (a new array). */
  forward(ids: ArrayLike<number>): Float32Array {
    const V = this.config.vocabSize;
    const logitsTV = new Float32Array(ids.length * V);
    this.reset();
    this.feed(ids, (chunkTV, t0) => logitsTV.set(chunkTV, t0 * V));
    return logitsTV;
  }

  /** The weight tensors in Hugging Face naming, e.g. for saving a checkpoint. */
  namedWeights(): Map<string, Weight | Float32Array> {
    const w = this.weights,
      m = new Map<string, Weight | Float32Array>();
    m.set("model.embed_tokens.weight", w.embedVD);
    w.layers.forEach((l, i) => {
      for (const [key] of layerTensorNames(this.config)) m.set(layerTensorName(i, key), l[key]!);
    });
    m.set("model.norm.weight", w.finalNormD);
    if (!this.config.shareEmbedding) m.set("lm_head.weight", w.lmHeadVD);
    return m;
  }
}
