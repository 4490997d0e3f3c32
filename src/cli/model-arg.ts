// Where a --model argument points: a local checkpoint folder or a Hugging Face hub id (downloaded
// into the standard cache, or found there), with a default that works on a fresh clone.

import { fileURLToPath } from "node:url";
import type { DType } from "../kernels/kernels.js";
import { resolveModelSource } from "../load.js";
import { UsageError } from "./command.js";

/** The model used when --model is not given. */
export function defaultModelPath(): string {
  // The embedded default model: a 2.1M-parameter MobileLLM trained on tiny Shakespeare by this
  // project's own commands (models/shakespeare-2m/README.md is its model card).
  return fileURLToPath(new URL("../../models/shakespeare-2m", import.meta.url));
}

/** The local folder for a --model value (a folder, or a hub id such as facebook/MobileLLM-125M). */
export async function resolveModelArg(arg: string | undefined, options: { revision?: string; quiet?: boolean; signal?: AbortSignal } = {}): Promise<string> {
  const hub: { quiet?: boolean; signal?: AbortSignal } = {};
  if (options.quiet !== undefined) hub.quiet = options.quiet;
  if (options.signal) hub.signal = options.signal;
  return resolveModelSource(arg ?? defaultModelPath(), { ...(options.revision ? { revision: options.revision } : {}), hub });
}

/** The --dtype option every command that loads a model shares (same values as loadModel's dtype). */
export const DTYPE_OPTION = {
  type: "string", value: "TYPE", default: "auto",
  description: "weights in memory: auto (as stored), f32, f16, bf16, or q8_0 / q4_0 (8-/4-bit blocks, quantized while loading)",
} as const;

const DTYPES = ["auto", "f32", "f16", "bf16", "q8_0", "q4_0"] as const;

/** The validated --dtype value. */
export function dtypeFlag(values: Record<string, unknown>): DType | "auto" {
  const d = (values.dtype as string | undefined) ?? "auto";
  if (!(DTYPES as readonly string[]).includes(d)) throw new UsageError(`--dtype must be one of ${DTYPES.join(", ")}, got ${JSON.stringify(d)}`);
  return d as DType | "auto";
}
