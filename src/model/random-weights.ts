// Random weights of any MobileLLM shape, for tests and benchmarks (nothing in the library uses
// them): the one builder, so every test and bench measures the same kind of model.

import type { DType, Kernels, Weight } from "../kernels/kernels.js";
import { numberToBf16Bits, numberToF16Bits } from "../kernels/half.js";
import { quantize, quantizedBytes } from "../kernels/quant.js";
import { Mulberry32 } from "../util/rng.js";
import type { MobileLLMConfig } from "./config.js";
import type { LayerWeights, ModelWeights } from "./weights.js";

export interface RandomWeightsOptions {
  /** Storage dtype of the matrices (default f32); q8_0 / q4_0 are quantized row by row, as loadModel does. */
  dtype?: DType;
  /** Storage dtype of the embedding (default: `dtype`). */
  embeddingDType?: DType;
  /** PRNG seed (default 1): the same seed gives the same weights. */
  seed?: number;
}

/**
 * Random weights for `c` in backend memory: matrices uniform in ±scale/sqrt(in) (so activations
 * keep unit size through the layers; the embedding's rows have unit-ish size), norm weights
 * 1 ± 0.1. Deterministic for a seed; the values drawn do not depend on the storage dtype.
 */
export function randomWeights(c: MobileLLMConfig, k: Kernels, options: RandomWeightsOptions = {}): ModelWeights {
  const { dtype = "f32", embeddingDType = dtype, seed = 1 } = options;
  const rng = new Mulberry32(seed);
  const D = c.hiddenSize,
    F = c.intermediateSize,
    Q = c.numHeads * c.headDim,
    K = c.numKvHeads * c.headDim;
  const matrix = (rows: number, cols: number, scale: number, d: DType = dtype): Weight => {
    const a = scale / Math.sqrt(cols),
      rowV = new Float64Array(cols);
    const data =
      d === "f32"
        ? k.allocF32(rows * cols)
        : d === "f16" || d === "bf16"
          ? k.allocU16(rows * cols)
          : k.allocU8(quantizedBytes(d, rows * cols));
    const rowBytes = d === "q8_0" || d === "q4_0" ? quantizedBytes(d, cols) : 0;
    const toBits = d === "f16" ? numberToF16Bits : numberToBf16Bits;
    for (let r = 0; r < rows; r++) {
      for (let i = 0; i < cols; i++) rowV[i] = (2 * rng.next() - 1) * a;
      if (d === "q8_0" || d === "q4_0") quantize(d, data as Uint8Array, r * rowBytes, rowV, 0, cols);
      else if (d === "f32") data.set(rowV, r * cols);
      else for (let i = 0; i < cols; i++) data[r * cols + i] = toBits(rowV[i]!);
    }
    return { dtype: d, shape: [rows, cols], data };
  };
  const vector = (n: number): Float32Array => {
    const v = k.allocF32(n);
    for (let i = 0; i < n; i++) v[i] = 1 + 0.2 * (rng.next() - 0.5);
    return v;
  };
  const embedVD = matrix(c.vocabSize, D, Math.sqrt(D), embeddingDType);
  const layers: LayerWeights[] = [];
  for (let l = 0; l < c.numLayers; l++) {
    layers.push({
      inputNormD: vector(D),
      wqQD: matrix(Q, D, 2),
      wkKD: matrix(K, D, 2),
      wvKD: matrix(K, D, 1),
      woDQ: matrix(D, Q, 1),
      postNormD: vector(D),
      ...(c.ffnType === "relu" ? {} : { wGateFD: matrix(F, D, 1) }),
      wUpFD: matrix(F, D, 1),
      wDownDF: matrix(D, F, 1),
    });
  }
  const finalNormD = vector(D);
  const lmHeadVD = c.shareEmbedding ? embedVD : matrix(c.vocabSize, D, 2);
  return { embedVD, layers, finalNormD, lmHeadVD };
}
