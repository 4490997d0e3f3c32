// Where a --model argument points: a local checkpoint folder or a Hugging Face hub id (downloaded
// into the standard cache, or found there), with a default that works on a fresh clone.

import { defaultModel } from "../default-model.js";
import { resolveModelSource } from "../load.js";

/** The model used when --model is not given: the embedded default model (as loadModel() uses). */
export function defaultModelPath(): string {
  return defaultModel;
}

/** The local folder for a --model value (a folder, or a hub id such as facebook/MobileLLM-125M). */
export async function resolveModelArg(arg: string | undefined, options: { revision?: string; quiet?: boolean; signal?: AbortSignal } = {}): Promise<string> {
  const hub: { quiet?: boolean; signal?: AbortSignal } = {};
  if (options.quiet !== undefined) hub.quiet = options.quiet;
  if (options.signal) hub.signal = options.signal;
  return resolveModelSource(arg ?? defaultModelPath(), { ...(options.revision ? { revision: options.revision } : {}), hub });
}
