// Training parameters, llm.c style: every weight of the model lives in ONE contiguous f32 buffer
// (the "master weights"), and the named tensors are views into it. The gradients use the same
// layout in a second buffer, so AdamW, gradient clipping and zeroing are single flat loops.
//
// The views are handed to the forward pass as ordinary `ModelWeights` (dtype f32), so the trained
// parameters can be run by `MobileLLM` (generate, evaluate) without copying.

import type { Allocator, Weight } from "../kernels/kernels.js";
import type { MobileLLMConfig } from "../model/config.js";
import { BF16_TABLE, F16_TABLE } from "../kernels/half.js";
import type { TensorFile } from "../io/tensor-file.js";
import {
  checkTensors,
  expectedTensors,
  layerTensorName,
  layerTensorNames,
  type LayerGrads,
  type LayerWeights,
  type ModelGrads,
  type ModelWeights,
} from "../model/weights.js";

/** One named tensor of the flat buffer: elements [offset, offset + size). */
export interface ParamTensor {
  name: string; // Hugging Face name, e.g. "model.layers.0.mlp.up_proj.weight"
  shape: number[];
  offset: number;
  size: number;
}

/** Where every tensor sits in the flat buffer, in checkpoint order. */
export interface ParamLayout {
  tensors: ParamTensor[];
  byName: Map<string, ParamTensor>;
  total: number; // number of f32 elements
}

export function paramLayout(c: MobileLLMConfig): ParamLayout {
  const tensors: ParamTensor[] = [];
  const byName = new Map<string, ParamTensor>();
  let offset = 0;
  for (const [name, shape] of expectedTensors(c)) {
    const size = shape.reduce((a, b) => a * b, 1);
    const t = { name, shape, offset, size };
    tensors.push(t);
    byName.set(name, t);
    offset += size;
  }
  return { tensors, byName, total: offset };
}

function view(flat: Float32Array, layout: ParamLayout, name: string): Float32Array {
  const t = layout.byName.get(name);
  if (!t) throw new Error(`internal: no parameter named ${name}`);
  return flat.subarray(t.offset, t.offset + t.size);
}

/** Named gradient views (or any same-layout buffer: Adam moments) into `flat`. */
export function viewGrads(flat: Float32Array, layout: ParamLayout, c: MobileLLMConfig): ModelGrads {
  const layers: LayerGrads[] = [];
  for (let i = 0; i < c.numLayers; i++) {
    const l = {} as LayerGrads;
    for (const [key] of layerTensorNames(c)) l[key] = view(flat, layout, layerTensorName(i, key));
    layers.push(l);
  }
  const embedVD = view(flat, layout, "model.embed_tokens.weight");
  return {
    embedVD,
    layers,
    finalNormD: view(flat, layout, "model.norm.weight"),
    lmHeadVD: c.shareEmbedding ? embedVD : view(flat, layout, "lm_head.weight"),
  };
}

/** The same views as f32 `Weight`s, ready for the forward pass and for `MobileLLM`. */
export function viewWeights(flat: Float32Array, layout: ParamLayout, c: MobileLLMConfig): ModelWeights {
  const g = viewGrads(flat, layout, c);
  const w = (data: Float32Array, name: string): Weight => ({ dtype: "f32", shape: layout.byName.get(name)!.shape, data });
  const layers: LayerWeights[] = g.layers.map((l, i) => {
    const out = {} as Record<keyof LayerWeights, Weight | Float32Array>;
    for (const [key] of layerTensorNames(c)) {
      const data = l[key]!;
      out[key] = key.endsWith("NormD") ? data : w(data, layerTensorName(i, key));
    }
    return out as unknown as LayerWeights;
  });
  const embedVD = w(g.embedVD, "model.embed_tokens.weight");
  return {
    embedVD,
    layers,
    finalNormD: g.finalNormD,
    lmHeadVD: c.shareEmbedding ? embedVD : w(g.lmHeadVD, "lm_head.weight"),
  };
}

/** Parameters and gradients of a model being trained, both in backend memory. */
export interface TrainParams {
  layout: ParamLayout;
  flat: Float32Array; // master weights, f32
  gradFlat: Float32Array; // d loss / d weights, same layout
  weights: ModelWeights; // named views of `flat`
  grads: ModelGrads; // named views of `gradFlat`
}

/** Parameters and gradients in backend memory (declared in a memory plan where memory cannot grow: state.ts). */
export function allocTrainParams(k: Allocator, c: MobileLLMConfig): TrainParams {
  const layout = paramLayout(c);
  const flat = k.allocF32(layout.total);
  const gradFlat = k.allocF32(layout.total);
  return { layout, flat, gradFlat, weights: viewWeights(flat, layout, c), grads: viewGrads(gradFlat, layout, c) };
}

/**
 * Fill the master weights from a checkpoint (any float dtype: F16/BF16 are widened exactly).
 * The file must hold exactly the tensors of the config (checked, with a message naming the file).
 */
export async function readParams(params: TrainParams, file: TensorFile, c: MobileLLMConfig): Promise<void> {
  checkTensors(file, c);
  for (const t of params.layout.tensors) {
    const e = file.tensors.get(t.name)!;
    const dst = params.flat.subarray(t.offset, t.offset + t.size);
    if (e.dtype === "F32") {
      await e.read(new Uint8Array(dst.buffer, dst.byteOffset, dst.byteLength));
      continue;
    }
    const bits = new Uint16Array(t.size);
    await e.read(new Uint8Array(bits.buffer));
    const table = e.dtype === "F16" ? F16_TABLE : BF16_TABLE;
    for (let i = 0; i < t.size; i++) dst[i] = table[bits[i]!]!;
  }
}
