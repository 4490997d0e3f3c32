// Where a --model argument points: a local checkpoint folder or a Hugging Face hub id (downloaded
// into the standard cache, or found there), with a default that works on a fresh clone.

import type { DType } from "../kernels/kernels.js";
import { defaultModel } from "../default-model.js";
import { resolveModelSource } from "../load.js";
import { LAYER_SHARING_ATTENTION, type LayerSharingAttention } from "../model/model.js";
import type { BackendName } from "../kernels/index.js";
import { UsageError, type OptionSpec } from "./command.js";
import { BACKEND_OPTION, parseBackend, parseThreads, THREADS_OPTION } from "./kernel-args.js";

/** The model used when --model is not given: the embedded default model (as loadModel() uses). */
export function defaultModelPath(): string {
  return defaultModel;
}

/** The local folder for a --model value (a folder, or a hub id such as facebook/MobileLLM-125M). */
export async function resolveModelArg(
  arg: string | undefined,
  options: { revision?: string; quiet?: boolean; signal?: AbortSignal; files?: string[] } = {},
): Promise<string> {
  const hub: { quiet?: boolean; signal?: AbortSignal; files?: string[] } = {};
  if (options.quiet !== undefined) hub.quiet = options.quiet;
  if (options.signal) hub.signal = options.signal;
  if (options.files) hub.files = options.files; // only these files of a hub repo (e.g. config.json before the weights)
  return resolveModelSource(arg ?? defaultModelPath(), { ...(options.revision ? { revision: options.revision } : {}), hub });
}

/** --layer-sharing-attention, for the commands that run a model (see LayerSharingAttention). */
export const LAYER_SHARING_ATTENTION_OPTION: OptionSpec = {
  type: "string",
  value: "MODE",
  default: "separate",
  description:
    "-LS models: separate (each run of a shared block attends over its own keys) or " +
    "reference-cache (as the published code with use_cache: the second run attends over the first run's keys)",
};

export function layerSharingAttentionFlag(values: Record<string, unknown>): LayerSharingAttention {
  const mode = values["layer-sharing-attention"] ?? "separate";
  if (!LAYER_SHARING_ATTENTION.includes(mode as LayerSharingAttention)) {
    throw new UsageError(`--layer-sharing-attention must be ${LAYER_SHARING_ATTENTION.join(" or ")}, got ${JSON.stringify(mode)}`);
  }
  return mode as LayerSharingAttention;
}

/** The --dtype option every command that loads a model shares (same values as loadModel's dtype). */
export const DTYPE_OPTION = {
  type: "string",
  value: "TYPE",
  default: "auto",
  description: "weights in memory: auto (as stored), f32, f16, bf16, or q8_0 / q4_0 (8-/4-bit blocks, quantized while loading)",
} as const;

const DTYPES = ["auto", "f32", "f16", "bf16", "q8_0", "q4_0"] as const;

/** The validated --dtype value. */
export function dtypeFlag(values: Record<string, unknown>): DType | "auto" {
  const d = (values.dtype as string | undefined) ?? "auto";
  if (!(DTYPES as readonly string[]).includes(d))
    throw new UsageError(`--dtype must be one of ${DTYPES.join(", ")}, got ${JSON.stringify(d)}`);
  return d as DType | "auto";
}

/** The options of every command that loads a model and runs it: --backend, --threads, --dtype, --layer-sharing-attention. */
export const LOAD_OPTIONS = {
  backend: BACKEND_OPTION,
  threads: THREADS_OPTION,
  dtype: DTYPE_OPTION,
  "layer-sharing-attention": LAYER_SHARING_ATTENTION_OPTION,
} as const;

/** Those flags, checked, as loadModel options (threads left out when not given: the machine's default). */
export function loadFlags(values: Record<string, unknown>): {
  backend: BackendName;
  dtype: DType | "auto";
  layerSharingAttention: LayerSharingAttention;
  threads?: number;
} {
  const backend = parseBackend(values.backend),
    threads = parseThreads(values.threads, backend);
  return {
    backend,
    dtype: dtypeFlag(values),
    layerSharingAttention: layerSharingAttentionFlag(values),
    ...(threads !== undefined ? { threads } : {}),
  };
}
