// Loading a model or tokenizer from wherever its files are, in any runtime: the part of
// loadModel / loadTokenizer that both entries share (src/index.ts for Node, Deno and Bun;
// src/browser.ts for pages and workers). Each entry turns what the user passed (a path, a hub
// id, a URL, a map of files) into a ModelLocation, a folder or one GGUF file, and hands it here.

import { samplingDefaults } from "./generate/generate.js";
import type { SamplingOptions } from "./generate/sampling.js";
import { chooseCheckpointIn, WEIGHT_FILES } from "./io/checkpoint.js";
import { ggufAsCheckpoint, ggufConfig, ggufTokenizerModel, readGguf } from "./io/gguf.js";
import { CheckpointError, type TensorFile } from "./io/tensor-file.js";
import type { DType, Kernels } from "./kernels/kernels.js";
import { createKernels, type BackendName, type KernelOptions } from "./kernels/index.js";
import { ConfigError, parseConfig, type MobileLLMConfig } from "./model/config.js";
import { MobileLLM, type LayerSharingAttention, type ModelOptions } from "./model/model.js";
import { allocRunState, runStateProblem } from "./model/state.js";
import { allocWeights, checkTensors, logWeightDTypes, missingTensors, readWeights, type LoadWeightsOptions } from "./model/weights.js";
import { readWhole, watchedSource, type ByteSource } from "./platform/byte-source.js";
import { isModelFiles, mapFolder, type ModelFiles, type ModelFolder } from "./platform/folder.js";
import { isHttpUrl, openUrlRequired, urlFolder, type UrlOptions } from "./platform/url.js";
import { Tokenizer } from "./tokenizer/tokenizer.js";

/** Where a model's files are: a folder (config.json + weights + tokenizer.model) or one GGUF file. */
export type ModelLocation = { folder: ModelFolder; gguf?: undefined } | { gguf: ByteSource; folder?: undefined };

/** Reported while files download (a hub id) and while the weights are read (every source). */
export interface LoadProgress {
  /** "download": a hub file fetched into the cache; "load": a file's bytes read by the loader. */
  phase: "download" | "load";
  /** The file: a name, path or URL. */
  file: string;
  /** Bytes so far. */
  loaded: number;
  /** Bytes in all, when known. */
  total: number | undefined;
}

/** How to reach the files; shared by loadModel and loadTokenizer in every runtime. */
export interface SourceOptions {
  /** Called as files download and as the weights are read (see LoadProgress). */
  onProgress?: (p: LoadProgress) => void;
  /** Stops downloads and reads; the promise rejects with the signal's reason. */
  signal?: AbortSignal;
  /** fetch implementation for URLs and the hub (tests, proxies); default globalThis.fetch. */
  fetch?: typeof fetch;
  /** Extra headers for requests to a URL source (not the hub: see its token option). */
  headers?: Record<string, string>;
  /** A URL response that sends no data for this long is an error (default 30 s). */
  timeoutMs?: number;
}

export interface LoadModelCoreOptions extends SourceOptions {
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
}

/**
 * The sources every runtime understands: an http(s) URL (string or URL) of a model folder or of a
 * .gguf file, or a map of file names to Blob/bytes (a folder; a single *.gguf entry is that
 * GGUF). Anything else: null (the entry's own kinds: paths, hub ids).
 */
export async function resolvePortableSource(source: unknown, o: SourceOptions = {}): Promise<ModelLocation | null> {
  const url: UrlOptions = {};
  if (o.fetch) url.fetch = o.fetch;
  if (o.headers) url.headers = o.headers;
  if (o.signal) url.signal = o.signal;
  if (o.timeoutMs !== undefined) url.timeoutMs = o.timeoutMs;
  if (isHttpUrl(source)) {
    const u = new URL(String(source));
    if (u.pathname.toLowerCase().endsWith(".gguf")) return { gguf: await openUrlRequired(u, url) };
    return { folder: urlFolder(u, url) };
  }
  if (isModelFiles(source)) {
    const names = Object.keys(source);
    if (names.length === 1 && names[0]!.toLowerCase().endsWith(".gguf"))
      return { gguf: (await mapFolder(source).open(names[0]!)) as ByteSource };
    return { folder: mapFolder(source as ModelFiles) };
  }
  return null;
}

/** A folder whose files report their reads to onProgress and stop at the signal. */
function watchedFolder(folder: ModelFolder, o: SourceOptions): ModelFolder {
  if (!o.onProgress && !o.signal) return folder;
  return {
    ...folder,
    open: async (file) => {
      o.signal?.throwIfAborted();
      const src = await folder.open(file);
      return src && watched(src, o);
    },
  };
}

function watched(src: ByteSource, o: SourceOptions): ByteSource {
  const report = o.onProgress;
  return watchedSource(src, report && ((loaded) => report({ phase: "load", file: src.name, loaded, total: src.size })), o.signal);
}

/** Parse config.json's bytes (named `file` in errors). */
export function parseConfigBytes(bytes: Uint8Array, file: string, strict = true, warn?: (m: string) => void): MobileLLMConfig {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder().decode(bytes));
  } catch (e) {
    throw new ConfigError(file, `not valid JSON (${(e as Error).message})`);
  }
  return parseConfig(json, file, warn ? { strict, warn } : { strict });
}

/** Read and validate the folder's config.json. */
export async function readConfigIn(folder: ModelFolder, strict = true, warn?: (m: string) => void): Promise<MobileLLMConfig> {
  const file = folder.nameOf("config.json");
  const src = await folder.open("config.json");
  if (src === null) throw new ConfigError(file, "not found: a MobileLLM folder needs config.json beside its weights");
  try {
    return parseConfigBytes(await readWhole(src, "config.json", 1 << 20), file, strict, warn);
  } finally {
    src.close?.();
  }
}

/** generation_config.json's bytes (named `file`) as generate()'s defaults (see samplingDefaults). */
export function parseGenerationDefaults(bytes: Uint8Array, file: string): SamplingOptions {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder().decode(bytes));
  } catch (e) {
    throw new Error(`${file}: not valid JSON (${(e as Error).message}); fix or remove it`);
  }
  return samplingDefaults(json, file);
}

/** The folder's default decoding: generation_config.json's when it has one, else greedy. */
export async function readGenerationDefaultsIn(folder: ModelFolder): Promise<SamplingOptions> {
  const src = await folder.open("generation_config.json");
  if (src === null) return samplingDefaults(undefined);
  try {
    return parseGenerationDefaults(await readWhole(src, "generation_config.json", 1 << 20), src.name);
  } finally {
    src.close?.();
  }
}

/** Load the model at `where` (see loadModel in src/index.ts and src/browser.ts for the sources). */
export async function loadModelAt(where: ModelLocation, options: LoadModelCoreOptions = {}): Promise<MobileLLM> {
  let config: MobileLLMConfig, file: TensorFile, reason: string, configFile: string;
  if (where.gguf) {
    const gguf = await readGguf(watched(where.gguf, options));
    try {
      config = ggufConfig(gguf);
      file = ggufAsCheckpoint(gguf, config);
    } catch (e) {
      gguf.close();
      throw e;
    }
    reason = `${gguf.path.slice(gguf.path.lastIndexOf("/") + 1)} (GGUF v${gguf.version})`;
    configFile = gguf.path;
  } else {
    const folder = watchedFolder(where.folder, options);
    config = await readConfigIn(folder, options.strictConfig ?? true, options.log);
    configFile = folder.nameOf("config.json");
    ({ file, reason } = await chooseCheckpointIn(folder, (f) => missingTensors(f, config), options.weights));
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
    if (problem !== undefined) throw new ConfigError(configFile, problem);
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
      weights: allocWeights(a, file, config, dtype, weightOptions),
      state: allocRunState(a, config, maxT, maxP),
    }));
    await readWeights(file, config, weights);
    const modelOptions: ModelOptions = {};
    if (options.layerSharingAttention !== undefined) modelOptions.layerSharingAttention = options.layerSharingAttention;
    if (options.maxPositions !== undefined) modelOptions.maxPositions = options.maxPositions;
    if (options.maxChunk !== undefined) modelOptions.maxChunk = options.maxChunk;
    const model = new MobileLLM(config, kernels, weights, modelOptions, state);
    // a GGUF file has no generation_config.json
    model.generationDefaults = where.gguf ? samplingDefaults(undefined) : await readGenerationDefaultsIn(where.folder);
    return model;
  } catch (e) {
    await kernels?.dispose?.(); // no workers left behind by a failed load
    throw e;
  } finally {
    file.close();
  }
}

function kernelOptions(o: LoadModelCoreOptions): KernelOptions {
  const k: KernelOptions = {};
  if (o.threads !== undefined) k.threads = o.threads;
  if (o.minThreadWork !== undefined) k.minThreadWork = o.minThreadWork;
  if (o.shared !== undefined) k.shared = o.shared;
  if (o.log) k.log = o.log;
  return k;
}

/**
 * Check that `folder` is a loadable model folder (config.json and a weights file) before anything
 * else is read from it (say its tokenizer), so the error names what is really missing; returns
 * its config.
 */
export async function checkModelAt(where: ModelLocation): Promise<MobileLLMConfig> {
  if (where.gguf) {
    // config and weights in one file
    const gguf = await readGguf(where.gguf);
    try {
      return ggufConfig(gguf);
    } finally {
      gguf.close();
    }
  }
  const config = await readConfigIn(where.folder, false);
  for (const f of WEIGHT_FILES) {
    const src = await where.folder.open(f);
    if (src) {
      src.close?.();
      return config;
    }
  }
  throw new CheckpointError(
    where.folder.name,
    `has config.json but no weights: expected one of ${WEIGHT_FILES.join(", ")}; ` +
      `copy or download the weights file into this folder (an exported run: \`mobilellm pretrain ... --export DIR\`)`,
  );
}

/** The tokenizer at `where`: a GGUF's tokenizer.ggml.* metadata, or the folder's tokenizer.model. */
export async function loadTokenizerAt(where: ModelLocation | { tokenizer: ByteSource }, o: SourceOptions = {}): Promise<Tokenizer> {
  if ("tokenizer" in where) {
    try {
      // never larger than any real tokenizer
      return Tokenizer.fromBytes(await readWhole(watched(where.tokenizer, o), "tokenizer.model", 1 << 30), where.tokenizer.name);
    } finally {
      where.tokenizer.close?.();
    }
  }
  if (where.gguf) {
    const g = await readGguf(where.gguf);
    try {
      return new Tokenizer(ggufTokenizerModel(g), g.path);
    } finally {
      g.close();
    }
  }
  const src = await where.folder.open("tokenizer.model");
  if (src === null)
    throw new Error(`${where.folder.nameOf("tokenizer.model")}: not found; the folder ${where.folder.name} has no tokenizer.model`);
  return loadTokenizerAt({ tokenizer: src }, o);
}
