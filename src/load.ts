// loadModel / loadTokenizer for Node, Deno and Bun: a folder or .gguf path, a hub id (downloaded
// into the Hugging Face cache on disk), an http(s) URL, or a map of files. The loading itself is
// load-core.ts, shared with the browser entry (src/browser.ts).

import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { defaultModel } from "./default-model.js";
import type { SamplingOptions } from "./generate/sampling.js";
import { samplingDefaults } from "./generate/generate.js";
import { isHubId, resolveHubModel, type ResolveHubOptions } from "./io/hub.js";
import {
  checkModelAt,
  loadModelAt,
  loadTokenizerAt,
  parseConfigBytes,
  parseGenerationDefaults,
  resolvePortableSource,
  type LoadModelCoreOptions,
  type ModelLocation,
  type SourceOptions,
} from "./load-core.js";
import { ConfigError, type MobileLLMConfig } from "./model/config.js";
import type { MobileLLM } from "./model/model.js";
import type { ModelFiles } from "./platform/folder.js";
import { dirFolder, fileSource, readRegularFile } from "./platform/node.js";
import type { Tokenizer } from "./tokenizer/tokenizer.js";

export type { LoadProgress, SourceOptions, ModelLocation } from "./load-core.js";

export interface LoadModelOptions extends LoadModelCoreOptions {
  /** For a hub id: the revision (branch, tag or commit; default "main"). */
  revision?: string;
  /** For a hub id: download options (cache folder, token, endpoint, offline, quiet, signal...). */
  hub?: ResolveHubOptions;
}

/**
 * What loadModel and loadTokenizer take in Node, Deno and Bun: a folder or .gguf path (or file:
 * URL), a hub id ("facebook/MobileLLM-125M"), an http(s) URL (string or URL) of a model folder or
 * of a .gguf file, or a map of file names to Blob/Uint8Array/ArrayBuffer ({ "config.json": ..., ... }).
 */
export type ModelSource = string | URL | ModelFiles;

/**
 * A local folder as is; a Hugging Face hub id ("facebook/MobileLLM-125M") is downloaded into the
 * standard cache (or found there) and its snapshot folder returned.
 */
export async function resolveModelSource(source: string, options: Pick<LoadModelOptions, "revision" | "hub"> = {}): Promise<string> {
  if (existsSync(source)) {
    if (isGgufPath(source)) return source;
    if (!statSync(source).isDirectory()) {
      throw new Error(
        `${source}: not a folder or a .gguf file; pass a checkpoint folder holding config.json and model.safetensors or pytorch_model.bin, or a GGUF file`,
      );
    }
    return source;
  }
  if (isHubId(source)) {
    return resolveHubModel(source, { ...options.hub, ...(options.revision ? { revision: options.revision } : {}) });
  }
  throw new Error(`${source}: not a folder and not a hub id ("owner/name"); pass a checkpoint folder or e.g. facebook/MobileLLM-125M`);
}

/** The hub options of a load, with its onProgress and signal passed on. */
function hubOptions(options: LoadModelOptions & SourceOptions): Pick<LoadModelOptions, "revision" | "hub"> {
  const hub: ResolveHubOptions = { ...options.hub };
  if (options.signal && !hub.signal) hub.signal = options.signal;
  if (options.fetch && !hub.fetch) hub.fetch = options.fetch;
  const report = options.onProgress,
    own = hub.progress;
  if (report)
    hub.progress = (e) => {
      own?.(e);
      report({ phase: "download", file: e.file, loaded: e.done, total: e.total });
    };
  return { hub, ...(options.revision ? { revision: options.revision } : {}) };
}

/** Where the files of `source` are (see ModelSource); hub ids are downloaded first. */
export async function locateModel(source: ModelSource, options: LoadModelOptions = {}): Promise<ModelLocation> {
  if (source instanceof URL && source.protocol === "file:") source = fileURLToPath(source);
  if (typeof source === "string" && !/^https?:\/\//i.test(source)) {
    const path = await resolveModelSource(source, hubOptions(options));
    if (isGgufPath(path)) return { gguf: fileSource(path, "GGUF file") };
    if (!existsSync(join(path, "config.json"))) readConfig(path); // throws the error that says what the folder is
    return { folder: dirFolder(path) };
  }
  const where = await resolvePortableSource(source, options);
  if (where === null)
    throw new Error(
      `${String(source)}: not a model source; pass a folder or .gguf path, a hub id, an http(s) URL, or a map of file names to Blob/bytes`,
    );
  return where;
}

/** The checkpoint-N folders of a `mobilellm pretrain` run folder, latest first (empty otherwise). */
export function runCheckpoints(folder: string): string[] {
  let names: string[];
  try {
    names = readdirSync(folder);
  } catch {
    return [];
  }
  return names
    .filter((n) => /^checkpoint-\d+$/.test(n) && existsSync(join(folder, n, "config.json")))
    .sort((a, b) => Number(b.slice(11)) - Number(a.slice(11)));
}

/** Read and validate `folder/config.json`. */
export function readConfig(folder: string, strict = true, warn?: (m: string) => void): MobileLLMConfig {
  const file = join(folder, "config.json");
  if (!existsSync(file)) {
    const checkpoints = runCheckpoints(folder);
    if (checkpoints.length > 0) {
      throw new ConfigError(
        file,
        `not found: ${folder} is a training run folder, not a model; pass one of its checkpoints, ` +
          `e.g. the latest: ${join(folder, checkpoints[0]!)}${checkpoints.length > 1 ? ` (also: ${checkpoints.slice(1, 4).join(", ")}${checkpoints.length > 4 ? ", ..." : ""})` : ""}`,
      );
    }
    throw new ConfigError(file, "not found: a MobileLLM folder needs config.json beside its weights");
  }
  return parseConfigBytes(readRegularFile(file, "config.json", 1 << 20), file, strict, warn);
}

/**
 * Check that `folder` is a loadable model folder (config.json and a weights file) or GGUF file
 * before anything else is read from it (say its tokenizer), so the error names what is really
 * missing; returns its config.
 */
export async function checkModelFolder(folder: string): Promise<MobileLLMConfig> {
  if (isGgufPath(folder)) return checkModelAt({ gguf: fileSource(folder, "GGUF file") });
  readConfig(folder, false); // its own errors (a run folder, a missing config) first
  return checkModelAt({ folder: dirFolder(folder) });
}

/**
 * The folder's default decoding for generate(): generation_config.json's sampling settings when
 * it sets do_sample, else greedy (see samplingDefaults).
 */
export function readGenerationDefaults(folder: string): SamplingOptions {
  const file = join(folder, "generation_config.json");
  if (!existsSync(file)) return samplingDefaults(undefined);
  return parseGenerationDefaults(readRegularFile(file, "generation_config.json", 1 << 20), file);
}

export { defaultModel };

/** Whether `path` names a GGUF file (by its extension). */
export function isGgufPath(path: string): boolean {
  return path.toLowerCase().endsWith(".gguf") && existsSync(path) && statSync(path).isFile();
}

/**
 * Load a MobileLLM from a Hugging Face style folder (config.json + weights), a hub id, an http(s)
 * URL of a folder or .gguf file, a map of files, or a GGUF file of the llama architecture
 * (F32/F16/BF16/Q8_0/Q4_0 tensors; a layer-sharing model written unrolled loads as the plain
 * model of 2·L blocks it was written as); without a source, the embedded default model
 * (`defaultModel`), as the CLI does without --model.
 */
export async function loadModel(source: ModelSource = defaultModel, options: LoadModelOptions = {}): Promise<MobileLLM> {
  return loadModelAt(await locateModel(source, options), options);
}

export interface LoadTokenizerOptions extends SourceOptions {
  /** For a hub id: the revision (branch, tag or commit; default "main"). */
  revision?: string;
  /** For a hub id: download options (see ResolveHubOptions). */
  hub?: ResolveHubOptions;
}

/**
 * Load a SentencePiece tokenizer: a tokenizer.model file, a model folder containing one, a GGUF
 * file (its tokenizer.ggml.* metadata), or any ModelSource (hub id, URL, map of files); without
 * an argument, the embedded default model's tokenizer (`defaultModel`).
 */
export async function loadTokenizer(source: ModelSource = defaultModel, options: LoadTokenizerOptions = {}): Promise<Tokenizer> {
  if (source instanceof URL && source.protocol === "file:") source = fileURLToPath(source);
  if (typeof source === "string" && !/^https?:\/\//i.test(source) && !isHubId(source)) {
    let info: ReturnType<typeof statSync>;
    try {
      info = statSync(source);
    } catch {
      throw new Error(`${source}: no such file or folder; pass a tokenizer.model file or a folder containing one`);
    }
    if (info.isDirectory()) {
      if (!existsSync(join(source, "tokenizer.model")))
        throw new Error(`${join(source, "tokenizer.model")}: not found; the folder ${source} has no tokenizer.model`);
      return loadTokenizerAt({ tokenizer: fileSource(join(source, "tokenizer.model"), "tokenizer.model") }, options);
    }
    if (source.toLowerCase().endsWith(".gguf")) return loadTokenizerAt({ gguf: fileSource(source, "GGUF file") }, options);
    return loadTokenizerAt({ tokenizer: fileSource(source, "tokenizer.model") }, options); // a regular file only
  }
  if (typeof source === "string" && isHubId(source)) {
    const hub = hubOptions(options);
    hub.hub = { files: ["config.json", "tokenizer.model"], ...hub.hub };
    return loadTokenizerAt({ folder: dirFolder(await resolveModelSource(source, hub)) }, options);
  }
  return loadTokenizerAt(await locateModel(source, options), options);
}
