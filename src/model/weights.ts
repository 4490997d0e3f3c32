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

/** Tensors some exporters add that carry no information for us (recomputed from the config). */
const IGNORABLE = /(^|\.)rotary_emb\.inv_freq$/;

/**
 * Check that `file` holds exactly the tensors the config needs, with the right shapes and float
 * dtypes. Throws a CheckpointError naming the first problem; never fills in missing values.
 */
export function checkTensors(file: TensorFile, c: MobileLLMConfig): void {
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
  return { dtype, shape: t.shape, data };
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
