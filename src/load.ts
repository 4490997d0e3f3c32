// loadModel: from a checkpoint folder to a runnable model.

import { existsSync, readFileSync, statSync } from "node:fs";
import { basename, join } from "node:path";
import { chooseCheckpoint } from "./io/checkpoint.js";
import { isHubId, resolveHubModel, type ResolveHubOptions } from "./io/hub.js";
import type { DType, Kernels } from "./kernels/kernels.js";
import { ggufAsCheckpoint, ggufConfig, openGguf } from "./io/gguf.js";
import type { TensorFile } from "./io/tensor-file.js";
import { createKernels, type BackendName } from "./kernels/index.js";
import { ConfigError, parseConfig, type MobileLLMConfig } from "./model/config.js";
import { MobileLLM } from "./model/model.js";
import { expectedTensors, loadWeights, type LoadWeightsOptions } from "./model/weights.js";

export interface LoadModelOptions {
  /** Kernel backend: "wasm" (SIMD, the default) or "ts" (the readable reference). */
  backend?: BackendName;
  /**
   * In-memory dtype of weight matrices: "auto" keeps the checkpoint's (default), f32/f16/bf16, or
   * q8_0/q4_0 (llama.cpp's 8-bit and 4-bit block formats), quantized while loading.
   */
  dtype?: DType | "auto";
  /**
   * With dtype q8_0/q4_0: the dtype of the embedding / output projection (f16, q8_0 or q4_0).
   * Default q8_0 for both (measured: see defaultEmbeddingDType, BENCHMARKS.md).
   */
  embeddingDType?: DType;
  /** A specific weights file inside the folder (default: chosen automatically). */
  weights?: string;
  /** KV cache capacity in positions (default: max_position_embeddings). */
  maxPositions?: number;
  /** Largest batched chunk of tokens (default 256). */
  maxChunk?: number;
  /** Reject unknown config.json keys (default true). */
  strictConfig?: boolean;
  /** Receives progress/info messages (which file was used and why). */
  log?: (message: string) => void;
  /** For a hub id: the revision (branch, tag or commit; default "main"). */
  revision?: string;
  /** For a hub id: download options (cache folder, token, endpoint, offline, quiet, signal...). */
  hub?: ResolveHubOptions;
}

/**
 * A local folder as is; a Hugging Face hub id ("facebook/MobileLLM-125M") is downloaded into the
 * standard cache (or found there) and its snapshot folder returned.
 */
export async function resolveModelSource(source: string, options: Pick<LoadModelOptions, "revision" | "hub"> = {}): Promise<string> {
  if (existsSync(source)) {
    if (isGgufPath(source)) return source;
    if (!statSync(source).isDirectory()) {
      throw new Error(`${source}: not a folder or a .gguf file; pass a checkpoint folder holding config.json and model.safetensors or pytorch_model.bin, or a GGUF file`);
    }
    return source;
  }
  if (isHubId(source)) {
    return resolveHubModel(source, { ...options.hub, ...(options.revision ? { revision: options.revision } : {}) });
  }
  throw new Error(`${source}: not a folder and not a hub id ("owner/name"); pass a checkpoint folder or e.g. facebook/MobileLLM-125M`);
}

/** Read and validate `folder/config.json`. */
export function readConfig(folder: string, strict = true, warn?: (m: string) => void): MobileLLMConfig {
  const file = join(folder, "config.json");
  if (!existsSync(file)) throw new ConfigError(file, "not found: a MobileLLM folder needs config.json beside its weights");
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, "utf8"));
  } catch (e) {
    throw new ConfigError(file, `not valid JSON (${(e as Error).message})`);
  }
  return parseConfig(json, file, warn ? { strict, warn } : { strict });
}

/** Whether `path` names a GGUF file (by its extension). */
export function isGgufPath(path: string): boolean {
  return path.toLowerCase().endsWith(".gguf") && existsSync(path) && statSync(path).isFile();
}

/**
 * Load a MobileLLM from a Hugging Face style folder (config.json + weights), a hub id, or a GGUF
 * file of the llama architecture (F32/F16/BF16/Q8_0/Q4_0 tensors; a layer-sharing model written
 * unrolled loads as the plain model of 2·L blocks it was written as).
 */
export async function loadModel(source: string, options: LoadModelOptions = {}): Promise<MobileLLM> {
  const folder = await resolveModelSource(source, options);
  let config: MobileLLMConfig, file: TensorFile;
  if (isGgufPath(folder)) {
    const gguf = openGguf(folder);
    try {
      config = ggufConfig(gguf);
      file = ggufAsCheckpoint(gguf, config);
    } catch (e) {
      gguf.close();
      throw e;
    }
    options.log?.(`weights: ${basename(folder)} (GGUF v${gguf.version})`);
  } else {
    config = readConfig(folder, options.strictConfig ?? true, options.log);
    const chosen = chooseCheckpoint(folder, [...expectedTensors(config).keys()], options.weights);
    file = chosen.file;
    options.log?.(`weights: ${chosen.reason}`);
  }
  let kernels: Kernels;
  try {
    kernels = await createKernels(options.backend ?? "wasm");
  } catch (e) {
    file.close();
    throw e;
  }
  try {
    const weightOptions: LoadWeightsOptions = {};
    if (options.log) weightOptions.log = options.log;
    if (options.embeddingDType !== undefined) weightOptions.embeddingDType = options.embeddingDType;
    const weights = loadWeights(file, config, options.dtype ?? "auto", kernels, weightOptions);
    const modelOptions: { maxPositions?: number; maxChunk?: number } = {};
    if (options.maxPositions !== undefined) modelOptions.maxPositions = options.maxPositions;
    if (options.maxChunk !== undefined) modelOptions.maxChunk = options.maxChunk;
    return new MobileLLM(config, kernels, weights, modelOptions);
  } finally {
    file.close();
  }
}
