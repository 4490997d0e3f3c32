// mobilellm for browsers and Web Workers (and any runtime without a file system): the same API as
// src/index.ts minus what needs Node (paths, the hub cache on disk, the CLI, training, dataset
// files). Models and tokenizers load from an http(s) URL of a model folder or .gguf file, a hub
// id (downloaded with fetch and kept in the Cache Storage API), or a map of file names to
// Blob/File/bytes (drag-and-drop, <input type=file>). Compiled to dist/browser.js; nothing it
// imports reaches a `node:` module (tests/browser-imports.test.ts checks).

import { isRepoIdSyntax } from "./io/hub-files.js";
import { resolveHubFolder, type BrowserHubOptions } from "./io/hub-browser.js";
import {
  loadModelAt,
  loadTokenizerAt,
  resolvePortableSource,
  type LoadModelCoreOptions,
  type ModelLocation,
  type SourceOptions,
} from "./load-core.js";
import type { MobileLLM } from "./model/model.js";
import type { ModelFiles } from "./platform/folder.js";
import { isHttpUrl } from "./platform/url.js";
import type { Tokenizer } from "./tokenizer/tokenizer.js";

/** Name of the embedded default model (models/<name>/ in the package). */
export const DEFAULT_MODEL_NAME = "shakespeare-2m";

/**
 * URL of the embedded default model's folder: models/shakespeare-2m/ beside dist/ in the package,
 * so a page that serves the package (or a bundler that copies it) finds it.
 */
export function defaultModelUrl(): URL {
  return new URL(`../models/${DEFAULT_MODEL_NAME}/`, import.meta.url);
}

/**
 * What loadModel and loadTokenizer take in a browser: an http(s) URL (string or URL) of a model
 * folder or of a .gguf file, a hub id ("facebook/MobileLLM-125M"), or a map of file names to
 * Blob/File/Uint8Array/ArrayBuffer ({ "config.json": file1, "model.safetensors": file2, ... }).
 */
export type ModelSource = string | URL | ModelFiles;

export interface LoadModelOptions extends LoadModelCoreOptions {
  /** For a hub id: the revision (branch, tag or commit; default "main"). */
  revision?: string;
  /** For a hub id: hub URL (mirrors), token, offline, cache name... (see BrowserHubOptions). */
  hub?: BrowserHubOptions;
}

export type LoadTokenizerOptions = SourceOptions & Pick<LoadModelOptions, "revision" | "hub">;

/** Where the files of `source` are; a hub id is downloaded into the Cache Storage first. */
export async function locateModel(source: ModelSource, options: LoadTokenizerOptions = {}, files?: string[]): Promise<ModelLocation> {
  const where = await resolvePortableSource(source, options);
  if (where) return where;
  if (typeof source === "string" && !isHttpUrl(source) && isRepoIdSyntax(source)) {
    const hub: BrowserHubOptions = { ...options.hub };
    if (options.revision) hub.revision = options.revision;
    if (options.signal && !hub.signal) hub.signal = options.signal;
    if (options.fetch && !hub.fetch) hub.fetch = options.fetch;
    if (files && !hub.files) hub.files = files;
    const report = options.onProgress,
      own = hub.progress;
    if (report)
      hub.progress = (e) => {
        own?.(e);
        report({ phase: "download", file: e.file, loaded: e.done, total: e.total });
      };
    return { folder: await resolveHubFolder(source, hub) };
  }
  throw new Error(
    `${typeof source === "string" ? source : Object.prototype.toString.call(source)}: not a model source in a browser; pass an ` +
      `http(s) URL of a model folder or .gguf file (a path relative to the page: new URL(path, location.href)), a hub id "owner/name", ` +
      "or a map of file names to Blob/bytes",
  );
}

/**
 * Load a MobileLLM from a model folder URL, a .gguf URL, a hub id, or a map of files; without a
 * source, the embedded default model (defaultModelUrl()).
 */
export async function loadModel(source: ModelSource = defaultModelUrl(), options: LoadModelOptions = {}): Promise<MobileLLM> {
  return loadModelAt(await locateModel(source, options), options);
}

/** Load the SentencePiece tokenizer of a model source (tokenizer.model, or a GGUF's metadata). */
export async function loadTokenizer(source: ModelSource = defaultModelUrl(), options: LoadTokenizerOptions = {}): Promise<Tokenizer> {
  return loadTokenizerAt(await locateModel(source, options, ["config.json", "tokenizer.model"]), options);
}

export {
  loadModelAt,
  loadTokenizerAt,
  resolvePortableSource,
  type LoadProgress,
  type SourceOptions,
  type ModelLocation,
} from "./load-core.js";
export { resolveHubFolder, type BrowserHubOptions, type CacheLike, type CacheStorageLike } from "./io/hub-browser.js";
export { HubError, isRepoIdSyntax, DEFAULT_ENDPOINT, type HubProgressEvent, type HubErrorCode } from "./io/hub-files.js";
export {
  memorySource,
  blobSource,
  bytesSource,
  readBytes,
  type ByteSource,
  type FileBytes,
} from "./platform/byte-source.js";
export { mapFolder, type ModelFolder, type ModelFiles } from "./platform/folder.js";
export { openUrl, urlFolder, type UrlOptions } from "./platform/url.js";
export { MobileLLM, LAYER_SHARING_ATTENTION, type ModelOptions, type LogitsCallback, type LayerSharingAttention } from "./model/model.js";
export {
  parseConfig,
  parameterCount,
  presetName,
  configToJson,
  PRESETS,
  ConfigError,
  type MobileLLMConfig,
} from "./model/config.js";
export type { DType, Weight, Kernels } from "./kernels/kernels.js";
export { createKernels, BACKENDS, type BackendName } from "./kernels/index.js";
export { createTsKernels } from "./kernels/ts/index.js";
export { readSafetensors, encodeSafetensors } from "./io/safetensors.js";
export { readPytorchCheckpoint } from "./io/pytorch.js";
export { readShardedCheckpoint, type TensorFileOpener } from "./io/sharded.js";
export { readGguf } from "./io/gguf.js";
export { UnsafePickleError } from "./io/pickle.js";
export { chooseCheckpointIn, readCheckpointFile, WEIGHT_FILES } from "./io/checkpoint.js";
export { CheckpointError, type TensorFile, type TensorEntry, type FileDType } from "./io/tensor-file.js";
export { Tokenizer, DecodeStream, trainBpeTokenizer, type EncodeOptions, type TrainBpeOptions } from "./tokenizer/index.js";
export { LoglikelihoodScorer, type LoglikelihoodResult } from "./eval/loglikelihood.js";
export { perplexity, perplexityFromLosses, type PerplexityOptions, type PerplexityResult } from "./eval/perplexity.js";
export { evaluateRows, encodePair, type EvalTokenizer, type TaskResult, type ItemResult } from "./eval/harness.js";
export type { ResumeStore } from "./eval/resume.js";
export { DataError, type Row } from "./eval/rows.js";
export { TASKS, findTask, type McTask } from "./eval/tasks/index.js";
export * from "./generate/index.js";
