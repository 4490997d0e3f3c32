// The MobileLLM weights: names as in the Hugging Face checkpoints, shapes from the config, and
// loading them from a checkpoint into the backend's memory in the chosen storage dtype.

import type { DType, Kernels, Weight } from "../kernels/kernels.js";
import { BF16_TABLE, F16_TABLE, numberToBf16Bits, numberToF16Bits } from "../kernels/half.js";
import { CheckpointError, type TensorEntry, type TensorFile } from "../io/tensor-file.js";
import type { MobileLLMConfig } from "./config.js";

export interface LayerWeights {
  inputNormD: Float32Array;      // input_layernorm.weight [D]
  wqQD: Weight;                  // self_attn.q_proj.weight [H·Dh, D]
  wkKD: Weight;                  // self_attn.k_proj.weight [KV·Dh, D]
  wvKD: Weight;                  // self_attn.v_proj.weight [KV·Dh, D]
  woDQ: Weight;                  // self_attn.o_proj.weight [D, H·Dh]
  postNormD: Float32Array;       // post_attention_layernorm.weight [D]
  wGateFD: Weight;               // mlp.gate_proj.weight [F, D]
  wUpFD: Weight;                 // mlp.up_proj.weight [F, D]
  wDownDF: Weight;               // mlp.down_proj.weight [D, F]
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

/** Gradients of one block (training): same names and shapes as LayerWeights, all f32. */
export type LayerGrads = Record<keyof LayerWeights, Float32Array>;

export interface ModelWeights {
  embedVD: Weight;               // model.embed_tokens.weight [V, D]
  layers: LayerWeights[];        // L distinct blocks
  finalNormD: Float32Array;      // model.norm.weight [D]
  lmHeadVD: Weight;              // lm_head.weight [V, D], or embedVD itself when share_embedding
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
  const D = c.hiddenSize, F = c.intermediateSize, Q = c.numHeads * c.headDim, K = c.numKvHeads * c.headDim;
  const layerShapes: Record<keyof LayerWeights, number[]> = {
    inputNormD: [D], wqQD: [Q, D], wkKD: [K, D], wvKD: [K, D], woDQ: [D, Q],
    postNormD: [D], wGateFD: [F, D], wUpFD: [F, D], wDownDF: [D, F],
  };
  const m = new Map<string, number[]>();
  m.set("model.embed_tokens.weight", [c.vocabSize, D]);
  for (let i = 0; i < c.numLayers; i++) {
    for (const [key, name] of Object.entries(LAYER_TENSOR_NAMES)) {
      m.set(`model.layers.${i}.${name}`, layerShapes[key as keyof LayerWeights]);
    }
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
  const tensors = 9 * c.numLayers + 2 + (c.shareEmbedding ? 0 : 1);
  if (tensors > file.tensors.size + 64) {
    return `config.json describes ${c.numLayers} layers (${tensors} tensors), but the weights hold only ${file.tensors.size} tensors; ` +
           `the config does not belong to these weights`;
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
        hint = "the model.safetensors that the Hugging Face hub converted for MobileLLM lacks the embedding; " +
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
  return t.dtype === "F16" ? "f16" : t.dtype === "BF16" ? "bf16" : "f32";
}

/**
 * Read one tensor into newly allocated backend memory, converting to `dtype` when it differs from
 * the file. Same dtype: a single read straight into the destination. Different: read into a
 * temporary of the file's size, then widen (exact) or round to nearest even.
 */
export function readWeight(t: TensorEntry, dtype: DType, k: Kernels): Weight {
  const n = t.numel;
  const fileDType = autoDType(t);
  const data = dtype === "f32" ? k.allocF32(n) : k.allocU16(n);
  const dst = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (fileDType === dtype) {
    t.read(dst);
    checkFinite(t, data, dtype);
    return { dtype, shape: t.shape, data };
  }
  const raw = new Uint8Array(n * (fileDType === "f32" ? 4 : 2));
  t.read(raw);
  const src: Float32Array | Uint16Array = fileDType === "f32" ? new Float32Array(raw.buffer) : new Uint16Array(raw.buffer);
  const srcTable = fileDType === "f16" ? F16_TABLE : fileDType === "bf16" ? BF16_TABLE : null;
  const toBits = dtype === "f16" ? numberToF16Bits : numberToBf16Bits;
  for (let i = 0; i < n; i++) {
    const x = srcTable ? srcTable[src[i]!]! : src[i]!;
    data[i] = dtype === "f32" ? x : toBits(x);
  }
  checkFinite(t, data, dtype); // also catches f32 values beyond the f16 range, which round to Inf
  return { dtype, shape: t.shape, data };
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
    throw new CheckpointError(t.file, `tensor "${t.name}" holds a non-finite value (NaN or Inf) at element ${i}` +
      `${dtype !== autoDType(t) ? ` after conversion to ${dtype}` : ""}: the checkpoint is corrupt or was saved after training diverged; use an earlier checkpoint`);
  }
}

/** Load all weights (matrices in `dtype`, or "auto" = as stored; norm vectors always f32). */
export function loadWeights(file: TensorFile, c: MobileLLMConfig, dtype: DType | "auto", k: Kernels): ModelWeights {
  checkTensors(file, c);
  const entry = (name: string) => file.tensors.get(name)!;
  const matrix = (name: string) => readWeight(entry(name), dtype === "auto" ? autoDType(entry(name)) : dtype, k);
  const vector = (name: string) => readWeight(entry(name), "f32", k).data as Float32Array;

  // One reservation for everything, so the wasm memory grows once.
  let bytes = 0;
  for (const t of file.tensors.values()) {
    const isVector = t.shape.length === 1;
    const target = isVector ? "f32" : dtype === "auto" ? autoDType(t) : dtype;
    bytes += t.numel * (target === "f32" ? 4 : 2) + 16;
  }
  k.reserve(bytes);

  const embedVD = matrix("model.embed_tokens.weight");
  const layers: LayerWeights[] = [];
  for (let i = 0; i < c.numLayers; i++) {
    const l = {} as Record<keyof LayerWeights, Weight | Float32Array>;
    for (const [key, name] of Object.entries(LAYER_TENSOR_NAMES)) {
      const full = `model.layers.${i}.${name}`;
      l[key as keyof LayerWeights] = entry(full).shape.length === 1 ? vector(full) : matrix(full);
    }
    layers.push(l as unknown as LayerWeights);
  }
  const finalNormD = vector("model.norm.weight");
  const lmHeadVD = c.shareEmbedding ? embedVD : matrix("lm_head.weight");
  return { embedVD, layers, finalNormD, lmHeadVD };
}

/** Bytes the loaded weights occupy (the shared lm_head counted once). */
export function weightBytes(w: ModelWeights): number {
  let bytes = w.embedVD.data.byteLength + w.finalNormD.byteLength + (w.lmHeadVD === w.embedVD ? 0 : w.lmHeadVD.data.byteLength);
  for (const l of w.layers) {
    bytes += l.inputNormD.byteLength + l.postNormD.byteLength;
    for (const m of [l.wqQD, l.wkKD, l.wvKD, l.woDQ, l.wGateFD, l.wUpFD, l.wDownDF]) bytes += m.data.byteLength;
  }
  return bytes;
}
