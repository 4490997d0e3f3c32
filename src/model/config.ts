// MobileLLM configuration: the architecture hyper-parameters, read from a checkpoint's config.json.
//
// The paper's sub-billion models are "deep and thin" (30-54 layers at hidden size 576-1600), use
// grouped-query attention (3-6 key/value heads), SwiGLU feed-forward blocks, and share the input
// embedding with the output projection. The "-LS" variants repeat each block twice in a row with
// the same weights (immediate block-wise layer sharing).
//
// Two keys of this project's own describe the variants the paper's design study compares (§2.2.1
// vanilla ReLU feed-forward network; §2.3 repeat-all-over and reverse layer sharing); see
// `mobilellm ablate`. They are written to config.json only when not the default, and no Hugging
// Face code can run them: hfProblem() says why, and the exports refuse such a model.

/** Feed-forward network: SwiGLU (three matrices: gate, up, down) or vanilla ReLU (two: up, down). */
export type FfnType = "swiglu" | "relu";
export const FFN_TYPES: readonly FfnType[] = ["swiglu", "relu"];

/**
 * Order of the 2·L block applications with layer sharing (paper §2.3, Fig. 6):
 *   "immediate"   1 1 2 2 3 3 ...     each block twice in a row (the published -LS models)
 *   "repeat_all"  1 2 3 ... 1 2 3 ... the whole stack twice
 *   "reverse"     1 2 3 ... 3 2 1     the stack, then the stack reversed
 */
export type LayerSharingOrder = "immediate" | "repeat_all" | "reverse";
export const LAYER_SHARING_ORDERS: readonly LayerSharingOrder[] = ["immediate", "repeat_all", "reverse"];

export interface MobileLLMConfig {
  /** V: vocabulary size (32000 for the released models: the LLaMA SentencePiece vocabulary). */
  vocabSize: number;
  /** D: hidden size, the width of the residual stream. */
  hiddenSize: number;
  /** F: feed-forward inner size (SwiGLU's, or the ReLU network's with ffnType "relu"). */
  intermediateSize: number;
  /** L: number of distinct transformer blocks (weights). */
  numLayers: number;
  /** H: query heads. */
  numHeads: number;
  /** KV: key/value heads (grouped-query attention: H / KV query heads share one). */
  numKvHeads: number;
  /** Dh: per-head size (D / H for every released model). */
  headDim: number;
  /** Context length the model was trained for (2048). */
  maxPositions: number;
  /** RMSNorm epsilon. */
  rmsNormEps: number;
  /** Rotary embedding base. */
  ropeTheta: number;
  /** Output projection reuses the input embedding matrix (no lm_head.weight). */
  shareEmbedding: boolean;
  /** Immediate block-wise layer sharing: every block runs twice in a row. */
  layerSharing: boolean;
  /** Feed-forward network (config.json `ffn_type`, this project's key); absent means "swiglu". */
  ffnType?: FfnType;
  /** With layerSharing, the order of the applications (config.json `layer_sharing_order`, this project's key); absent means "immediate". */
  layerSharingOrder?: LayerSharingOrder;
  bosTokenId: number;
  eosTokenId: number;
}

/** The five published sizes (Table 9 of the paper; Hugging Face facebook/MobileLLM-*). */
function preset(L: number, H: number, KV: number, D: number, F: number): MobileLLMConfig {
  return {
    vocabSize: 32000,
    hiddenSize: D,
    intermediateSize: F,
    numLayers: L,
    numHeads: H,
    numKvHeads: KV,
    headDim: D / H,
    maxPositions: 2048,
    rmsNormEps: 1e-5,
    ropeTheta: 10000,
    shareEmbedding: true,
    layerSharing: false,
    bosTokenId: 1,
    eosTokenId: 2,
  };
}

export const PRESETS: Record<string, MobileLLMConfig> = {
  "125M": preset(30, 9, 3, 576, 1536),
  "350M": preset(32, 15, 5, 960, 2560),
  "600M": preset(40, 18, 6, 1152, 3072),
  "1B": preset(54, 20, 5, 1280, 3584),
  "1.5B": preset(54, 25, 5, 1600, 4352),
};
for (const name of Object.keys(PRESETS)) PRESETS[`${name}-LS`] = { ...PRESETS[name]!, layerSharing: true };

/** Parameter count (weights stored once: layer sharing and the shared embedding add none). */
export function parameterCount(c: MobileLLMConfig): number {
  const D = c.hiddenSize,
    F = c.intermediateSize,
    qDim = c.numHeads * c.headDim,
    kvDim = c.numKvHeads * c.headDim;
  const attention = D * qDim + 2 * D * kvDim + qDim * D; // q, k, v, o projections
  const mlp = (ffnTypeOf(c) === "relu" ? 2 : 3) * D * F; // (gate,) up, down
  const norms = 2 * D;
  const embedding = c.vocabSize * D;
  const lmHead = c.shareEmbedding ? 0 : c.vocabSize * D;
  return c.numLayers * (attention + mlp + norms) + embedding + D + lmHead;
}

/** The config's feed-forward network ("swiglu" unless it says otherwise). */
export function ffnTypeOf(c: MobileLLMConfig): FfnType {
  return c.ffnType ?? "swiglu";
}

/** The config's layer-sharing order ("immediate" unless it says otherwise; meaningful with layerSharing). */
export function layerSharingOrderOf(c: MobileLLMConfig): LayerSharingOrder {
  return c.layerSharingOrder ?? "immediate";
}

/**
 * Why a Hugging Face MobileLLM/Llama checkpoint (and the llama.cpp GGUF written from one) cannot
 * express this config, or undefined: their MLP is always SwiGLU (three matrices), and their layer
 * sharing is always immediate. (A GGUF unrolls the shared blocks, so it can hold any order; see
 * ggufProblem.)
 */
export function hfProblem(c: MobileLLMConfig): string | undefined {
  if (ffnTypeOf(c) !== "swiglu")
    return `ffn_type "${ffnTypeOf(c)}" (a two-matrix ReLU feed-forward network) has no Hugging Face MobileLLM/Llama equivalent, whose MLP is always SwiGLU`;
  if (c.layerSharing && layerSharingOrderOf(c) !== "immediate") {
    return `layer_sharing_order "${layerSharingOrderOf(c)}" has no Hugging Face MobileLLM equivalent, whose layer sharing is always immediate (each block twice in a row)`;
  }
  return undefined;
}

/** Which published size a config is, if any (e.g. "125M", "350M-LS"). */
export function presetName(c: MobileLLMConfig): string | undefined {
  for (const [name, p] of Object.entries(PRESETS)) {
    if (
      p.vocabSize === c.vocabSize &&
      p.hiddenSize === c.hiddenSize &&
      p.intermediateSize === c.intermediateSize &&
      p.numLayers === c.numLayers &&
      p.numHeads === c.numHeads &&
      p.numKvHeads === c.numKvHeads &&
      p.layerSharing === c.layerSharing &&
      p.shareEmbedding === c.shareEmbedding &&
      ffnTypeOf(c) === "swiglu" &&
      (!c.layerSharing || layerSharingOrderOf(c) === "immediate")
    )
      return name;
  }
  return undefined;
}

/**
 * Every config.json key this loader knows: the ones read below, plus bookkeeping and training-only
 * keys that change nothing here. Any other key is an error (or a warning with strict: false).
 */
const KNOWN_KEYS = new Set([
  "_name_or_path",
  "architectures",
  "auto_map",
  "transformers_version",
  "torch_dtype",
  "use_cache",
  "initializer_range",
  "pretraining_tp",
  "attention_dropout",
  "pad_token_id",
  "tie_word_embeddings",
  "hidden_act",
  "attention_bias",
  "mlp_bias",
  "rope_scaling",
  "model_type",
  "head_dim",
  "vocab_size",
  "hidden_size",
  "intermediate_size",
  "num_hidden_layers",
  "num_attention_heads",
  "num_key_value_heads",
  "max_position_embeddings",
  "rms_norm_eps",
  "rope_theta",
  "share_embedding",
  "layer_sharing",
  "bos_token_id",
  "eos_token_id",
  "dtype",
  "ffn_type",
  "layer_sharing_order", // this project's keys (see FfnType, LayerSharingOrder)
]);

export class ConfigError extends Error {
  constructor(
    readonly file: string,
    message: string,
  ) {
    super(`${file}: ${message}`);
    this.name = "ConfigError";
  }
}

export interface ParseConfigOptions {
  /** Reject keys this loader does not know (default true): an unknown key may change the math. */
  strict?: boolean;
  /** Called with a message for each unknown key when strict is false. */
  warn?: (message: string) => void;
}

/**
 * Read a config.json object in either published form:
 * - the Hugging Face release (`model_type: "mobilellm"`, `share_embedding`, `layer_sharing`, `head_dim`);
 * - the GitHub training repo's Llama form (`model_type: "llama"`, no `share_embedding`: it defaults
 *   to true, as the training scripts always share the embedding).
 */
export function parseConfig(json: unknown, file = "config.json", options: ParseConfigOptions = {}): MobileLLMConfig {
  const fail = (msg: string): never => {
    throw new ConfigError(file, msg);
  };
  if (typeof json !== "object" || json === null || Array.isArray(json)) fail("expected a JSON object");
  const o = json as Record<string, unknown>;

  const modelType = o.model_type;
  if (modelType !== "mobilellm" && modelType !== "llama") {
    fail(`model_type is ${JSON.stringify(modelType)}; expected "mobilellm" (Hugging Face release) or "llama" (MobileLLM training repo)`);
  }
  for (const key of Object.keys(o)) {
    if (KNOWN_KEYS.has(key)) continue;
    const msg = `unknown key "${key}": this loader does not know how it changes the model`;
    if (options.strict ?? true) fail(`${msg} (remove it, or load with strictConfig: false to ignore it)`);
    options.warn?.(`${file}: ${msg}; ignored`);
  }

  const int = (key: string, fallback?: number): number => {
    const v = o[key] ?? fallback;
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v <= 0)
      fail(`"${key}" must be a positive integer, got ${JSON.stringify(o[key])}`);
    return v as number;
  };
  const num = (key: string, fallback: number): number => {
    const v = o[key] ?? fallback;
    if (typeof v !== "number" || !Number.isFinite(v) || v <= 0) fail(`"${key}" must be a positive number, got ${JSON.stringify(o[key])}`);
    return v as number;
  };
  const bool = (key: string, fallback: boolean): boolean => {
    const v = o[key] ?? fallback;
    if (typeof v !== "boolean") fail(`"${key}" must be true or false, got ${JSON.stringify(o[key])}`);
    return v as boolean;
  };

  // A token id is an integer >= 0 (checked against vocab_size below); absent or null takes the default.
  const tokenId = (key: string, fallback: number): number => {
    const v = o[key];
    if (v === undefined || v === null) return fallback;
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0)
      fail(`"${key}" must be a token id (an integer >= 0), got ${JSON.stringify(v)}`);
    return v as number;
  };

  const oneOf = <T extends string>(key: string, values: readonly T[], fallback: T): T => {
    const v = o[key] ?? fallback;
    if (!values.includes(v as T))
      fail(`"${key}" must be ${values.map((x) => JSON.stringify(x)).join(" or ")}, got ${JSON.stringify(o[key])}`);
    return v as T;
  };
  const ffnType = oneOf("ffn_type", FFN_TYPES, "swiglu");
  const layerSharingOrder = oneOf("layer_sharing_order", LAYER_SHARING_ORDERS, "immediate");

  // Features MobileLLM never uses: refuse them rather than compute something else silently.
  const act = ffnType === "relu" ? "relu" : "silu";
  if ((o.hidden_act ?? act) !== act)
    fail(`hidden_act ${JSON.stringify(o.hidden_act)} is not supported with ffn_type "${ffnType}" (it uses "${act}")`);
  if (o.rope_scaling != null) fail("rope_scaling is not supported (MobileLLM uses plain rotary embeddings: rope_scaling null)");
  if (o.attention_bias === true) fail("attention_bias: true is not supported (MobileLLM has no biases)");
  if (o.mlp_bias === true) fail("mlp_bias: true is not supported (MobileLLM has no biases)");

  const hiddenSize = int("hidden_size");
  const numHeads = int("num_attention_heads");
  const numKvHeads = int("num_key_value_heads", numHeads);
  if (hiddenSize % numHeads !== 0 && o.head_dim === undefined) {
    fail(`num_attention_heads (${numHeads}) does not divide hidden_size (${hiddenSize}) and no head_dim is given`);
  }
  const headDim = int("head_dim", hiddenSize / numHeads);
  if (numHeads % numKvHeads !== 0) fail(`num_key_value_heads (${numKvHeads}) must divide num_attention_heads (${numHeads})`);
  if (headDim % 2 !== 0) fail(`head_dim (${headDim}) must be even for rotary embeddings`);

  const config: MobileLLMConfig = {
    vocabSize: int("vocab_size"),
    hiddenSize,
    intermediateSize: int("intermediate_size"),
    numLayers: int("num_hidden_layers"),
    numHeads,
    numKvHeads,
    headDim,
    maxPositions: int("max_position_embeddings", 2048),
    rmsNormEps: num("rms_norm_eps", 1e-5),
    ropeTheta: num("rope_theta", 10000),
    shareEmbedding: bool("share_embedding", true),
    layerSharing: bool("layer_sharing", false),
    bosTokenId: tokenId("bos_token_id", 1),
    eosTokenId: tokenId("eos_token_id", 2),
  };
  // The project's variant keys are set only when not the default, so a release config parses to
  // exactly the preset it is.
  if (ffnType !== "swiglu") config.ffnType = ffnType;
  if (layerSharingOrder !== "immediate") {
    if (!config.layerSharing)
      fail(`layer_sharing_order "${layerSharingOrder}" needs layer_sharing: true (without sharing there is no order to choose)`);
    config.layerSharingOrder = layerSharingOrder;
  }
  if (config.bosTokenId >= config.vocabSize || config.eosTokenId >= config.vocabSize) {
    fail(`bos_token_id/eos_token_id (${config.bosTokenId}/${config.eosTokenId}) outside vocab_size ${config.vocabSize}`);
  }
  return config;
}

/** The config.json object for a config (Hugging Face release form), for writing checkpoints. */
export function configToJson(c: MobileLLMConfig): Record<string, unknown> {
  return {
    architectures: ["MobileLLMForCausalLM"],
    model_type: "mobilellm",
    vocab_size: c.vocabSize,
    hidden_size: c.hiddenSize,
    intermediate_size: c.intermediateSize,
    num_hidden_layers: c.numLayers,
    num_attention_heads: c.numHeads,
    num_key_value_heads: c.numKvHeads,
    head_dim: c.headDim,
    max_position_embeddings: c.maxPositions,
    rms_norm_eps: c.rmsNormEps,
    rope_theta: c.ropeTheta,
    rope_scaling: null,
    share_embedding: c.shareEmbedding,
    layer_sharing: c.layerSharing,
    tie_word_embeddings: false,
    hidden_act: ffnTypeOf(c) === "relu" ? "relu" : "silu",
    attention_bias: false,
    mlp_bias: false,
    bos_token_id: c.bosTokenId,
    eos_token_id: c.eosTokenId,
    // this project's variant keys, only when not the default (see hfProblem)
    ...(ffnTypeOf(c) !== "swiglu" ? { ffn_type: ffnTypeOf(c) } : {}),
    ...(c.layerSharing && layerSharingOrderOf(c) !== "immediate" ? { layer_sharing_order: layerSharingOrderOf(c) } : {}),
  };
}

/**
 * Sampling settings, named as in Hugging Face's GenerationConfig (camelCase). A model carries the
 * defaults from its generation_config.json (MobileLLM.generationDefaults); src/generate applies them.
 */
export interface SamplingOptions {
  /** Softmax temperature; 0 = greedy (argmax). Default 1 here; generate() defaults to the model's generation_config.json, else 0. */
  temperature?: number;
  /** Keep only the k most likely tokens (ties with the k-th kept); 0 = off. Default 0. */
  topK?: number;
  /** Nucleus sampling: keep the smallest set of most likely tokens with mass >= topP; 1 = off. Default 1. */
  topP?: number;
  /** Keep tokens with probability >= minP · max probability; 0 = off. Default 0. */
  minP?: number;
  /** > 1 discourages tokens already in the context, < 1 encourages them; 1 = off. Default 1. */
  repetitionPenalty?: number;
  /** PRNG seed (uint32). Default: a random seed (reported by `Sampler.seed`). */
  seed?: number;
}
