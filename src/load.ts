// loadModel: from a checkpoint folder to a runnable model.

import { existsSync, readdirSync, statSync } from "node:fs";
import { basename, join } from "node:path";
import { defaultModel } from "./default-model.js";
import { samplingDefaults } from "./generate/generate.js";
import type { SamplingOptions } from "./generate/sampling.js";
import { chooseCheckpoint, WEIGHT_FILES } from "./io/checkpoint.js";
import { ggufAsCheckpoint, ggufConfig, openGguf } from "./io/gguf.js";
import { CheckpointError, readRegularFile, type TensorFile } from "./io/tensor-file.js";
import { isHubId, resolveHubModel, type ResolveHubOptions } from "./io/hub.js";
import type { DType, Kernels } from "./kernels/kernels.js";
import { createKernels, type BackendName, type KernelOptions } from "./kernels/index.js";
import { ConfigError, parseConfig, type MobileLLMConfig } from "./model/config.js";
import { MobileLLM, type LayerSharingAttention, type ModelOptions } from "./model/model.js";
import { allocRunState, runStateProblem } from "./model/state.js";
import { allocWeights, checkTensors, logWeightDTypes, missingTensors, readWeights, type LoadWeightsOptions } from "./model/weights.js";

export interface LoadModelOptions {
  /** Kernel backend: "wasm" (SIMD, the default) or "ts" (the readable reference). */
  backend?: BackendName;
  /**
   * Threads for the wasm kernels (default: the machine's available parallelism; 1 runs no
   * workers). Outputs are bit-identical for every count. End the workers with `model.dispose()`
   * (or `await using`); an idle model never keeps the process alive.
   */
  threads?: number;
  /** Least multiply-adds per thread for a kernel call to be split (default measured; 0 splits every call). */
  minThreadWork?: number;
  /**
   * wasm: a shared memory (the default where SharedArrayBuffer exists; threads need it), or false:
   * an ordinary memory on one thread, as on a web page that is not cross-origin isolated.
   */
  shared?: boolean;
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
  /** Layer-sharing models: "separate" (default) or "reference-cache" (the published code's
   *  use_cache forward); see LayerSharingAttention in model/model.ts. */
  layerSharingAttention?: LayerSharingAttention;
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

/** The checkpoint-N folders of a `mobilellm pretrain` run folder, latest first (empty otherwise). */
export function runCheckpoints(folder: string): string[] {
  let names: string[];
  try {
    names = readdirSync(folder);
  } catch {
    return [];
  }
  return names.filter((n) => /^checkpoint-\d+$/.test(n) && existsSync(join(folder, n, "config.json")))
    .sort((a, b) => Number(b.slice(11)) - Number(a.slice(11)));
}

/** Read and validate `folder/config.json`. */
export function readConfig(folder: string, strict = true, warn?: (m: string) => void): MobileLLMConfig {
  const file = join(folder, "config.json");
  if (!existsSync(file)) {
    const checkpoints = runCheckpoints(folder);
    if (checkpoints.length > 0) {
      throw new ConfigError(file, `not found: ${folder} is a training run folder, not a model; pass one of its checkpoints, ` +
        `e.g. the latest: ${join(folder, checkpoints[0]!)}${checkpoints.length > 1 ? ` (also: ${checkpoints.slice(1, 4).join(", ")}${checkpoints.length > 4 ? ", ..." : ""})` : ""}`);
    }
    throw new ConfigError(file, "not found: a MobileLLM folder needs config.json beside its weights");
  }
  const text = new TextDecoder().decode(readRegularFile(file, "config.json", 1 << 20));
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(file, `not valid JSON (${(e as Error).message})`);
  }
  return parseConfig(json, file, warn ? { strict, warn } : { strict });
}

/**
 * Check that `folder` is a loadable model folder (config.json and a weights file) or GGUF file
 * before anything else is read from it (say its tokenizer), so the error names what is really
 * missing; returns its config.
 */
export function checkModelFolder(folder: string): MobileLLMConfig {
  if (isGgufPath(folder)) { // config and weights in one file
    const gguf = openGguf(folder);
    try {
      return ggufConfig(gguf);
    } finally {
      gguf.close();
    }
  }
  const config = readConfig(folder, false);
  if (!WEIGHT_FILES.some((f) => existsSync(join(folder, f)))) {
    throw new CheckpointError(folder, `has config.json but no weights: expected one of ${WEIGHT_FILES.join(", ")}; ` +
      `copy or download the weights file into this folder (an exported run: \`mobilellm pretrain ... --export DIR\`)`);
  }
  return config;
}

/**
 * The folder's default decoding for generate(): generation_config.json's sampling settings when
 * it sets do_sample, else greedy (see samplingDefaults).
 */
export function readGenerationDefaults(folder: string): SamplingOptions {
  const file = join(folder, "generation_config.json");
  if (!existsSync(file)) return samplingDefaults(undefined);
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder().decode(readRegularFile(file, "generation_config.json", 1 << 20)));
  } catch (e) {
    if (!(e instanceof SyntaxError)) throw e;
    throw new Error(`${file}: not valid JSON (${(e as Error).message}); fix or remove it`);
  }
  return samplingDefaults(json, file);
}

export { defaultModel };

/** Whether `path` names a GGUF file (by its extension). */
export function isGgufPath(path: string): boolean {
  return path.toLowerCase().endsWith(".gguf") && existsSync(path) && statSync(path).isFile();
}

/**
 * Load a MobileLLM from a Hugging Face style folder (config.json + weights), a hub id, or a GGUF
 * file of the llama architecture (F32/F16/BF16/Q8_0/Q4_0 tensors; a layer-sharing model written
 * unrolled loads as the plain model of 2·L blocks it was written as); without a source, the
 * embedded default model (`defaultModel`), as the CLI does without --model.
 */
export async function loadModel(source: string = defaultModel, options: LoadModelOptions = {}): Promise<MobileLLM> {
  const folder = await resolveModelSource(source, options);
  const isGguf = isGgufPath(folder);
  let config: MobileLLMConfig, file: TensorFile, reason: string;
  if (isGguf) {
    const gguf = openGguf(folder);
    try {
      config = ggufConfig(gguf);
      file = ggufAsCheckpoint(gguf, config);
    } catch (e) {
      gguf.close();
      throw e;
    }
    reason = `${basename(folder)} (GGUF v${gguf.version})`;
  } else {
    config = readConfig(folder, options.strictConfig ?? true, options.log);
    ({ file, reason } = chooseCheckpoint(folder, (f) => missingTensors(f, config), options.weights));
  }
  let kernels: Kernels | undefined;
  try {
    // Names and shapes first (so a vocabulary that is not the embedding's is named as such), then the
    // run state, whose size depends on config.json alone, against the weights: all before allocating.
    checkTensors(file, config);
    let fileBytes = 0;
    for (const t of file.tensors.values()) fileBytes += t.numel * (t.dtype === "F32" ? 4 : 2);
    const maxP = options.maxPositions ?? config.maxPositions;
    const maxT = Math.max(1, Math.min(options.maxChunk ?? 256, maxP));
    const problem = runStateProblem(config, maxT, maxP, fileBytes, options.maxPositions !== undefined);
    if (problem !== undefined) throw new ConfigError(isGguf ? folder : join(folder, "config.json"), problem);
    kernels = await createKernels(options.backend ?? "wasm", kernelOptions(options));
    options.log?.(`weights: ${reason}`);
    const weightOptions: LoadWeightsOptions = {};
    if (options.log) weightOptions.log = options.log;
    if (options.embeddingDType !== undefined) weightOptions.embeddingDType = options.embeddingDType;
    // One memory plan for the weights and the run state, allocated at once: wasm memory without
    // SharedArrayBuffer (a page that is not cross-origin isolated) cannot grow once buffers exist.
    const dtype = options.dtype ?? "auto";
    logWeightDTypes(file, config, dtype, weightOptions);
    const { weights, state } = kernels.allocate((a) => ({
      weights: allocWeights(a, file, config, dtype, weightOptions), state: allocRunState(a, config, maxT, maxP),
    }));
    readWeights(file, config, weights);
    const modelOptions: ModelOptions = {};
    if (options.layerSharingAttention !== undefined) modelOptions.layerSharingAttention = options.layerSharingAttention;
    if (options.maxPositions !== undefined) modelOptions.maxPositions = options.maxPositions;
    if (options.maxChunk !== undefined) modelOptions.maxChunk = options.maxChunk;
    const model = new MobileLLM(config, kernels, weights, modelOptions, state);
    model.generationDefaults = isGguf ? samplingDefaults(undefined) : readGenerationDefaults(folder); // a GGUF file has no generation_config.json
    return model;
  } catch (e) {
    await kernels?.dispose?.(); // no workers left behind by a failed load
    throw e;
  } finally {
    file.close();
  }
}

function kernelOptions(o: LoadModelOptions): KernelOptions {
  const k: KernelOptions = {};
  if (o.threads !== undefined) k.threads = o.threads;
  if (o.minThreadWork !== undefined) k.minThreadWork = o.minThreadWork;
  if (o.shared !== undefined) k.shared = o.shared;
  if (o.log) k.log = o.log;
  return k;
}
