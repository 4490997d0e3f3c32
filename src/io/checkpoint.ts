// Finding and opening the weights of a checkpoint folder.
//
// A Hugging Face MobileLLM folder holds config.json and the weights as model.safetensors and/or
// pytorch_model.bin (or sharded: *.index.json plus shards). We open the file the caller names, or
// the first complete one among the known names, and say which one we used and why.

import { existsSync } from "node:fs";
import { basename, join } from "node:path";
import { openPytorchCheckpoint } from "./pytorch.js";
import { openSafetensors } from "./safetensors.js";
import { openShardedCheckpoint } from "./sharded.js";
import { CheckpointError, type TensorFile } from "./tensor-file.js";

/**
 * Weight file names we look for in a folder, in order of preference: the one list (the hub
 * download and cache checks use it too, so what is fetched is what loadModel tries, in its order).
 */
export const WEIGHT_FILES: readonly string[] = ["model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json"];

/** Open one weights file by its name: *.safetensors, *.bin (torch.save zip), or a shard index. */
export function openCheckpointFile(path: string): TensorFile {
  const name = basename(path);
  if (name.endsWith(".safetensors")) return openSafetensors(path);
  if (name.endsWith(".bin") || name.endsWith(".pt") || name.endsWith(".pth")) return openPytorchCheckpoint(path);
  if (name.endsWith(".safetensors.index.json")) return openShardedCheckpoint(path, openSafetensors);
  if (name.endsWith(".bin.index.json")) return openShardedCheckpoint(path, openPytorchCheckpoint);
  throw new CheckpointError(path, `unsupported weights file type (expected ${WEIGHT_FILES.join(", ")})`);
}

export interface ChosenCheckpoint {
  file: TensorFile;
  /** Why this file was chosen, for the log. */
  reason: string;
}

/**
 * Open the weights of `folder`: `explicit` if given (a name inside the folder or a path), else the
 * first of WEIGHT_FILES that exists and holds every tensor in `required` (or for which the function
 * `required` lists nothing missing: it can check sizes before naming tensors). A file that lacks some is
 * passed over for the next one, and the reason is reported; if none is complete, the first file's
 * own error is thrown (it names the missing tensor).
 */
export function chooseCheckpoint(folder: string, required: readonly string[] | ((file: TensorFile) => string[]), explicit?: string): ChosenCheckpoint {
  if (explicit) {
    const path = existsSync(join(folder, explicit)) ? join(folder, explicit) : explicit;
    return { file: openCheckpointFile(path), reason: `${basename(path)} (requested)` };
  }
  const present = WEIGHT_FILES.filter((f) => existsSync(join(folder, f)));
  if (present.length === 0) {
    throw new CheckpointError(folder, `no weights found: expected one of ${WEIGHT_FILES.join(", ")} in this folder`);
  }
  const skipped: string[] = [];
  for (const name of present) {
    const file = openCheckpointFile(join(folder, name));
    const missing = typeof required === "function" ? required(file) : required.filter((t) => !file.tensors.has(t));
    if (missing.length === 0) {
      return { file, reason: skipped.length ? `${name}; skipped ${skipped.join("; ")}` : name };
    }
    skipped.push(`${name}, which lacks "${missing[0]}"${missing.length > 1 ? ` and ${missing.length - 1} more` : ""}`);
    file.close();
  }
  // None is complete: hand back the preferred one; the loader's check names what it lacks.
  return { file: openCheckpointFile(join(folder, present[0]!)), reason: present[0]! };
}
