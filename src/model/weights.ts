// The MobileLLM weights: names as in the Hugging Face checkpoints, shapes from the config, and
// loading them from a checkpoint into the backend's memory in the chosen storage dtype.

import type { Allocator, DType, Kernels, Weight } from "../kernels/kernels.js";
import { BF16_TABLE, F16_TABLE, numberToBf16Bits, numberToF16Bits } from "../kernels/half.js";
import { isQuantDType, QK, quantize, quantizedBytes, type QuantDType } from "../kernels/quant.js";
import { CheckpointError, type TensorEntry, type TensorFile } from "../io/tensor-file.js";
import { ffnTypeOf, type MobileLLMConfig } from "./config.js";

export interface LayerWeights {
  inputNormD: Float32Array; // input_layernorm.weight [D]
  wqQD: Weight; // self_attn.q_proj.weight [H·Dh, D]
  wkKD: Weight; // self_attn.k_proj.weight [KV·Dh, D]
  wvKD: Weight; // self_attn.v_proj.weight [KV·Dh, D]
  woDQ: Weight; // self_attn.o_proj.weight [D, H·Dh]
  postNormD: Float32Array; // post_attention_layernorm.weight [D]
  wGateFD?: Weight; // mlp.gate_proj.weight [F, D] (SwiGLU only: a ReLU FFN has none)
  wUpFD: Weight; // mlp.up_proj.weight [F, D]
  wDownDF: Weight; // mlp.down_proj.weight [D, F]
}

/** The Hugging Face name of each block tensor, after `model.layers.<i>.` (the one name table). */
export const LAYER_TENSOR_NAMES: Record<keyof LayerWeights, string> = {
  inputNormD: "input_layernorm.weight",
  wqQD: "self_attn.q_proj.weight",
  wkKD: "self_attn.k_proj.weight",
  wvKD: "self_attn.v_proj.weight",
  woDQ: "self_attn.o_proj.weight",
  postNormD: "post_attention_layernorm.weight",
  wGateFD: "mlp.gate_proj.weight",
  wUpFD: "mlp.up_proj.weight",
  wDownDF: "mlp.down_proj.weight",
};

/** The Hugging Face name of block `i`'s tensor `key`, e.g. "model.layers.3.self_attn.q_proj.weight". */
export function layerTensorName(i: number, key: keyof LayerWeights): string {
  return `model.layers.${i}.${LAYER_TENSOR_NAMES[key]}`;
}

/** The block tensors a config has (the ReLU FFN has no gate), as [key, name after `model.layers.<i>.`]. */
export function layerTensorNames(c: MobileLLMConfig): [keyof LayerWeights, string][] {
  const all = Object.entries(LAYER_TENSOR_NAMES) as [keyof LayerWeights, string][];
  return ffnTypeOf(c) === "relu" ? all.filter(([key]) => key !== "wGateFD") : all;
}

/** Gradients of one block (training): same names and shapes as LayerWeights, all f32. */
export type LayerGrads = { [K in keyof LayerWeights]: Float32Array };

export interface ModelWeights {
  embedVD: Weight; // model.embed_tokens.weight [V, D]
  layers: LayerWeights[]; // L distinct blocks
  finalNormD: Float32Array; // model.norm.weight [D]
  lmHeadVD: Weight; // lm_head.weight [V, D], or embedVD itself when share_embedding
}

/** Gradients of the whole model (training): the layout of ModelWeights, all f32. */
export interface ModelGrads {
  embedVD: Float32Array;
  layers: LayerGrads[];
  finalNormD: Float32Array;
  /** The embedding's own gradient when share_embedding (both uses accumulate into it). */
  lmHeadVD: Float32Array;
}

/** Every tensor a checkpoint must hold for this config, with its shape, in file order. */
export function expectedTensors(c: MobileLLMConfig): Map<string, number[]> {
  const D = c.hiddenSize,
    F = c.intermediateSize,
    Q = c.numHeads * c.headDim,
    K = c.numKvHeads * c.headDim;
  const layerShapes: Record<keyof LayerWeights, number[]> = {
    inputNormD: [D],
    wqQD: [Q, D],
    wkKD: [K, D],
    wvKD: [K, D],
    woDQ: [D, Q],
    postNormD: [D],
    wGateFD: [F, D],
    wUpFD: [F, D],
    wDownDF: [D, F],
  };
  const m = new Map<string, number[]>();
  m.set("model.embed_tokens.weight", [c.vocabSize, D]);
  for (let i = 0; i < c.numLayers; i++) {
    for (const [key] of layerTensorNames(c)) m.set(layerTensorName(i, key), layerShapes[key]);
  }
  m.set("model.norm.weight", [D]);
  if (!c.shareEmbedding) m.set("lm_head.weight", [c.vocabSize, D]);
  return m;
}

/**
 * Whether `file` can possibly hold the weights `c` describes, checked in time proportional to the
 * file's table, before any list or buffer of the config's size is built: a config.json claiming a
 * million layers beside a small checkpoint fails here at once. (A few missing tensors pass, so the
 * name-by-name check can name them; every shape is then checked before anything is allocated.)
 */
export function configSizeProblem(file: TensorFile, c: MobileLLMConfig): string | undefined {
  const tensors = layerTensorNames(c).length * c.numLayers + 2 + (c.shareEmbedding ? 0 : 1);
  if (tensors > file.tensors.size + 64) {
    return (
      `config.json describes ${c.numLayers} layers (${tensors} tensors), but the weights hold only ${file.tensors.size} tensors; ` +
      `the config does not belong to these weights`
    );
  }
  return undefined;
}

/** The required tensors `file` lacks for `c` (one entry with the size problem if it cannot fit). */
export function missingTensors(file: TensorFile, c: MobileLLMConfig): string[] {
  const problem = configSizeProblem(file, c);
  if (problem !== undefined) return [problem];
  return [...expectedTensors(c).keys()].filter((name) => !file.tensors.has(name));
}

/** Tensors some exporters add that carry no information for us (recomputed from the config). */
const IGNORABLE = /(^|\.)rotary_emb\.inv_freq$/;

/**
 * Check that `file` holds exactly the tensors the config needs, with the right shapes and float
 * dtypes. Throws a CheckpointError naming the first problem; never fills in missing values.
 */
export function checkTensors(file: TensorFile, c: MobileLLMConfig): void {
  const problem = configSizeProblem(file, c);
  if (problem !== undefined) throw new CheckpointError(file.path, problem);
  const expected = expectedTensors(c);
  for (const [name, shape] of expected) {
    const t = file.tensors.get(name);
    if (!t) {
      let hint = "the checkpoint does not match its config.json, or is incomplete";
      if (name === "model.embed_tokens.weight" && file.format === "safetensors") {
        hint =
          "the model.safetensors that the Hugging Face hub converted for MobileLLM lacks the embedding; " +
          "use the repository's pytorch_model.bin, which is complete";
      }
      throw new CheckpointError(file.path, `missing required tensor "${name}" (${hint})`);
    }
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      throw new CheckpointError(t.file, `tensor "${name}" has shape [${t.shape}], but config.json implies [${shape}]`);
    }
    if (t.dtype !== "F32" && t.dtype !== "F16" && t.dtype !== "BF16") {
      throw new CheckpointError(t.file, `tensor "${name}" has dtype ${t.dtype}; weights must be F32, F16 or BF16`);
    }
  }
  for (const name of file.tensors.keys()) {
    if (expected.has(name) || IGNORABLE.test(name)) continue;
    if (name === "lm_head.weight" && c.shareEmbedding) {
      throw new CheckpointError(file.path, `holds "lm_head.weight" but config.json says share_embedding: true; fix the config`);
    }
    throw new CheckpointError(file.path, `unexpected tensor "${name}": the checkpoint does not match its config.json`);
  }
}

/** The storage dtype a file dtype maps to when the caller asks for "auto" (keep what the file has). */
export function autoDType(t: TensorEntry): DType {
  if (t.blocks) return t.blocks.dtype;
  return t.dtype === "F16" ? "f16" : t.dtype === "BF16" ? "bf16" : "f32";
}

/** Backend memory for tensor `t` stored as `dtype` (declared in a memory plan; filled by readWeight). */
export function allocWeight(a: Allocator, t: TensorEntry, dtype: DType): Weight {
  const n = t.numel;
  const data = isQuantDType(dtype) ? a.allocU8(quantizedBytes(dtype, n)) : dtype === "f32" ? a.allocF32(n) : a.allocU16(n);
  return { dtype, shape: t.shape, data };
}

/**
 * Read one tensor into its backend memory `w` (allocWeight), converting to `w.dtype` when it
 * differs from the file. Same dtype: a single read straight into the destination. Different: read
 * into a temporary of the file's size, then widen (exact), round to nearest even, or quantize row
 * by row into q8_0/q4_0 blocks (llama.cpp's reference rules; the row's length must be a multiple of 32).
 */
export async function readWeight(t: TensorEntry, w: Weight, scratch?: Uint8Array): Promise<Weight> {
  const n = t.numel,
    dtype = w.dtype;
  if (t.blocks && t.blocks.dtype === dtype) {
    // quantized in the file already: the blocks as they are
    await t.blocks.read(w.data as Uint8Array);
    return w;
  }
  const fileDType = t.dtype === "F16" ? "f16" : t.dtype === "BF16" ? "bf16" : "f32";
  if (isQuantDType(dtype)) return await readQuantized(t, w as Weight & { dtype: QuantDType; data: Uint8Array }, scratch);
  const data = w.data as Float32Array | Uint16Array;
  const dst = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (fileDType === dtype) {
    await t.read(dst);
    checkFinite(t, data, dtype);
    return w;
  }
  const src = await readRaw(t, scratch);
  const srcTable = fileDType === "f16" ? F16_TABLE : fileDType === "bf16" ? BF16_TABLE : null;
  const toBits = dtype === "f16" ? numberToF16Bits : numberToBf16Bits;
  for (let i = 0; i < n; i++) {
    const x = srcTable ? srcTable[src[i]!]! : src[i]!;
    data[i] = dtype === "f32" ? x : toBits(x);
  }
  checkFinite(t, data, dtype); // also catches f32 values beyond the f16 range, which round to Inf
  return w;
}

/**
 * The index of the first NaN or ±Inf in `data` (f32 values, or f16/bf16 bits), or -1. Weights are
 * checked where they enter: a checkpoint written after training diverged must not quietly produce
 * NaN logits (which greedy decoding would turn into token 0).
 */
export function firstNonFinite(data: Float32Array | Uint16Array, dtype: DType): number {
  if (dtype === "f32") {
    for (let i = 0; i < data.length; i++) if (data[i]! - data[i]! !== 0) return i; // NaN - NaN, Inf - Inf are NaN
    return -1;
  }
  const exponent = dtype === "f16" ? 0x7c00 : 0x7f80; // all exponent bits set: Inf or NaN
  for (let i = 0; i < data.length; i++) if ((data[i]! & exponent) === exponent) return i;
  return -1;
}

function checkFinite(t: TensorEntry, data: Float32Array | Uint16Array, dtype: DType): void {
  const i = firstNonFinite(data, dtype);
  if (i >= 0) {
    throw new CheckpointError(
      t.file,
      `tensor "${t.name}" holds a non-finite value (NaN or Inf) at element ${i}` +
        `${dtype !== autoDType(t) ? ` after conversion to ${dtype}` : ""}: the checkpoint is corrupt or was saved after training diverged; use an earlier checkpoint`,
    );
  }
}

/**
 * The tensor's values as stored: Float32Array (F32) or Uint16Array of raw f16/bf16 bits, read into
 * `scratch` when it is large enough (one buffer reused for every tensor of a load, so the
 * temporaries do not fragment the heap: resident memory after the load is the model's).
 */
async function readRaw(t: TensorEntry, scratch?: Uint8Array): Promise<Float32Array | Uint16Array> {
  const fileDType = t.dtype === "F16" ? "f16" : t.dtype === "BF16" ? "bf16" : "f32";
  const bytes = t.numel * (fileDType === "f32" ? 4 : 2);
  const raw = scratch && scratch.length >= bytes ? scratch.subarray(0, bytes) : new Uint8Array(bytes);
  await t.read(raw);
  return fileDType === "f32" ? new Float32Array(raw.buffer, raw.byteOffset, t.numel) : new Uint16Array(raw.buffer, raw.byteOffset, t.numel);
}

/** Quantize a [rows, I] tensor row by row: peak extra memory is the file's copy of this one tensor. */
async function readQuantized(t: TensorEntry, w: Weight & { dtype: QuantDType; data: Uint8Array }, scratch?: Uint8Array): Promise<Weight> {
  const I = t.shape[t.shape.length - 1]!,
    rows = t.numel / I,
    dtype = w.dtype,
    data = w.data;
  const src = await readRaw(t, scratch);
  const table = t.dtype === "F16" ? F16_TABLE : t.dtype === "BF16" ? BF16_TABLE : null;
  const row = new Float32Array(I);
  const rowBytes = quantizedBytes(dtype, I);
  for (let r = 0; r < rows; r++) {
    if (table) for (let i = 0; i < I; i++) row[i] = table[src[r * I + i]!]!;
    else row.set((src as Float32Array).subarray(r * I, (r + 1) * I));
    quantize(dtype, data, r * rowBytes, row, 0, I, `${t.file}: tensor "${t.name}" row ${r}`);
  }
  return w;
}

/** Options of loadWeights beyond the dtype. */
export interface LoadWeightsOptions {
  /**
   * With a q8_0/q4_0 dtype: the dtype of the embedding (and the output projection it doubles as,
   * or lm_head): f16, q8_0 or q4_0. Default: defaultEmbeddingDType(dtype).
   */
  embeddingDType?: DType;
  /** Receives notes, e.g. which matrices stay f16 because their rows are not a multiple of 32. */
  log?: (message: string) => void;
}

/**
 * The embedding / output projection dtype of a quantized load, as measured (BENCHMARKS.md,
 * "Quantized weights"): q8_0 — it costs nothing measurable in perplexity (+0.012% vs f32 on the
 * default model with every matrix q8_0) and decodes faster than an f16 one. For q4_0 loads too:
 * a 4-bit output projection costs +0.44% perplexity against +0.01% for 8-bit, so the embedding
 * stays q8_0 (llama.cpp likewise keeps the output layer at higher precision in its 4-bit files).
 */
export function defaultEmbeddingDType(dtype: DType | "auto"): DType | "auto" {
  return isQuantDType(dtype) ? "q8_0" : dtype;
}

/** The storage dtype of one tensor for a requested `dtype` (norm vectors are always f32). */
export function storageDType(t: TensorEntry, dtype: DType | "auto", isEmbedding: boolean, embeddingDType: DType | "auto"): DType {
  if (t.shape.length === 1) return "f32";
  if (dtype === "auto") return autoDType(t);
  if (!isQuantDType(dtype)) return dtype;
  const want = isEmbedding && embeddingDType !== "auto" ? embeddingDType : dtype;
  if (!isQuantDType(want)) return want;
  return t.shape[t.shape.length - 1]! % QK === 0 ? want : "f16"; // llama.cpp's fallback for short rows
}

/**
 * The storage dtype of every tensor of a load, for a requested `dtype` ("auto" = as stored;
 * q8_0/q4_0 quantize while loading), norm vectors always f32.
 */
function weightTargets(dtype: DType | "auto", options: LoadWeightsOptions): (t: TensorEntry) => DType {
  const embeddingDType = options.embeddingDType ?? defaultEmbeddingDType(dtype);
  return (t) => storageDType(t, dtype, t.name === "model.embed_tokens.weight" || t.name === "lm_head.weight", embeddingDType);
}

/**
 * Declare the backend memory of every weight (a memory plan: `kernels.allocate(a => allocWeights(a, ...))`,
 * together with the run state, see loadModel); readWeights fills it. The file's tensors must have been
 * checked (checkTensors).
 */
export function allocWeights(
  a: Allocator,
  file: TensorFile,
  c: MobileLLMConfig,
  dtype: DType | "auto",
  options: LoadWeightsOptions = {},
): ModelWeights {
  const target = weightTargets(dtype, options);
  const entry = (name: string) => file.tensors.get(name)!;
  const matrix = (name: string) => allocWeight(a, entry(name), target(entry(name)));
  const embedVD = matrix("model.embed_tokens.weight");
  const layers: LayerWeights[] = [];
  for (let i = 0; i < c.numLayers; i++) {
    const l = {} as Record<keyof LayerWeights, Weight | Float32Array>;
    for (const [key] of layerTensorNames(c)) {
      const full = layerTensorName(i, key);
      l[key] = entry(full).shape.length === 1 ? a.allocF32(entry(full).numel) : matrix(full);
    }
    layers.push(l as unknown as LayerWeights);
  }
  const finalNormD = a.allocF32(entry("model.norm.weight").numel);
  const lmHeadVD = c.shareEmbedding ? embedVD : matrix("lm_head.weight");
  return { embedVD, layers, finalNormD, lmHeadVD };
}

/** Every tensor of `w` with its checkpoint name (the shared lm_head once, as the embedding). */
function namedWeights(c: MobileLLMConfig, w: ModelWeights): [string, Weight | Float32Array][] {
  const named: [string, Weight | Float32Array][] = [["model.embed_tokens.weight", w.embedVD]];
  w.layers.forEach((l, i) => {
    for (const [key] of layerTensorNames(c)) named.push([layerTensorName(i, key), l[key]!]);
  });
  named.push(["model.norm.weight", w.finalNormD]);
  if (!c.shareEmbedding) named.push(["lm_head.weight", w.lmHeadVD]);
  return named;
}

/** Fill the weights declared by allocWeights from the file, converting dtypes on the way. */
export async function readWeights(file: TensorFile, c: MobileLLMConfig, w: ModelWeights): Promise<void> {
  const named = namedWeights(c, w).map(([name, x]) => {
    const t = file.tensors.get(name)!;
    return [t, x instanceof Float32Array ? ({ dtype: "f32", shape: t.shape, data: x } as Weight) : x] as const;
  });
  // one read buffer for every tensor that is converted on the way (at least 32 MiB, so the
  // allocator maps it separately and returns it to the system when the load is done)
  let scratchBytes = 0;
  for (const [t, x] of named) {
    if (t.shape.length > 1 && x.dtype !== autoDType(t)) scratchBytes = Math.max(scratchBytes, t.numel * (t.dtype === "F32" ? 4 : 2));
  }
  const scratch = scratchBytes > 0 ? new Uint8Array(Math.max(scratchBytes, 33 << 20)) : undefined;
  for (const [t, x] of named) await readWeight(t, x, t.shape.length > 1 ? scratch : undefined);
}

/** Say which matrices a quantized load keeps in f16, and the embedding's dtype. */
export function logWeightDTypes(file: TensorFile, c: MobileLLMConfig, dtype: DType | "auto", options: LoadWeightsOptions = {}): void {
  if (!options.log || !isQuantDType(dtype)) return;
  const target = weightTargets(dtype, options);
  const embeddingDType = options.embeddingDType ?? defaultEmbeddingDType(dtype);
  const isEmbedding = (name: string) => name === "model.embed_tokens.weight" || name === "lm_head.weight";
  const kept: string[] = [];
  for (const t of file.tensors.values()) {
    if (IGNORABLE.test(t.name)) continue;
    if (t.shape.length > 1 && target(t) === "f16" && !(isEmbedding(t.name) && embeddingDType === "f16")) kept.push(t.name);
  }
  if (kept.length > 0) {
    options.log(
      `${dtype}: ${kept.length} matri${kept.length === 1 ? "x stays" : "ces stay"} f16 because ${kept.length === 1 ? "its rows are" : "their rows are"} ` +
        `not a multiple of ${QK} long: ${kept.join(", ")}`,
    );
  }
  if (embeddingDType !== dtype) {
    options.log(
      `${dtype}: the embedding${c.shareEmbedding ? " (shared output projection)" : " and lm_head"} ${c.shareEmbedding ? "is" : "are"} ${embeddingDType}`,
    );
  }
}

/**
 * Load all weights: matrices in `dtype` ("auto" = as stored; q8_0/q4_0 quantize while loading,
 * tensor by tensor), norm vectors always f32, all allocated at once. (loadModel plans the weights
 * together with the run state instead: see there.)
 */
export async function loadWeights(
  file: TensorFile,
  c: MobileLLMConfig,
  dtype: DType | "auto",
  k: Kernels,
  options: LoadWeightsOptions = {},
): Promise<ModelWeights> {
  checkTensors(file, c);
  logWeightDTypes(file, c, dtype, options);
  const w = k.allocate((a) => allocWeights(a, file, c, dtype, options));
  await readWeights(file, c, w);
  return w;
}

/** Bytes the loaded weights occupy (the shared lm_head counted once). */
export function weightBytes(w: ModelWeights): number {
  let bytes = w.embedVD.data.byteLength + w.finalNormD.byteLength + (w.lmHeadVD === w.embedVD ? 0 : w.lmHeadVD.data.byteLength);
  for (const l of w.layers) {
    bytes += l.inputNormD.byteLength + l.postNormD.byteLength;
    for (const m of [l.wqQD, l.wkKD, l.wvKD, l.woDQ, l.wGateFD, l.wUpFD, l.wDownDF]) bytes += m?.data.byteLength ?? 0;
  }
  return bytes;
}
