// Where a --model argument points: a local checkpoint folder or a Hugging Face hub id (downloaded
// into the standard cache, or found there), with a default that works on a fresh clone.

import { fileURLToPath } from "node:url";
import { resolveModelSource } from "../load.js";

/** The model used when --model is not given. */
export function defaultModelPath(): string {
  // The embedded default model: a 2.1M-parameter MobileLLM trained on tiny Shakespeare by this
  // project's own commands (models/shakespeare-2m/README.md is its model card).
  return fileURLToPath(new URL("../../models/shakespeare-2m", import.meta.url));
}

/** The local folder for a --model value (a folder, or a hub id such as facebook/MobileLLM-125M). */
export async function resolveModelArg(arg: string | undefined,
  options: { revision?: string; quiet?: boolean; signal?: AbortSignal; files?: string[] } = {}): Promise<string> {
  const hub: { quiet?: boolean; signal?: AbortSignal; files?: string[] } = {};
  if (options.quiet !== undefined) hub.quiet = options.quiet;
  if (options.signal) hub.signal = options.signal;
  if (options.files) hub.files = options.files; // only these files of a hub repo (e.g. config.json before the weights)
  return resolveModelSource(arg ?? defaultModelPath(), { ...(options.revision ? { revision: options.revision } : {}), hub });
}
