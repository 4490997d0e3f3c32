// Finding and opening the weights of a checkpoint folder.
//
// A Hugging Face MobileLLM folder holds config.json and the weights as model.safetensors and/or
// pytorch_model.bin (or sharded: *.index.json plus shards). We open the file the caller names, or
// the first complete one among the known names, and say which one we used and why. The folder is
// a ModelFolder (platform/folder.ts): a directory, a base URL, or a map of dropped files.

import type { ByteSource } from "../platform/byte-source.js";
import type { ModelFolder } from "../platform/folder.js";
import { readPytorchCheckpoint } from "./pytorch.js";
import { readSafetensors } from "./safetensors.js";
import { readShardedCheckpoint } from "./sharded.js";
import { CheckpointError, type TensorFile } from "./tensor-file.js";

/**
 * Weight file names we look for in a folder, in order of preference: the one list (the hub
 * download and cache checks use it too, so what is fetched is what loadModel tries, in its order).
 */
export const WEIGHT_FILES: readonly string[] = [
  "model.safetensors",
  "model.safetensors.index.json",
  "pytorch_model.bin",
  "pytorch_model.bin.index.json",
];

/** The reader for a weights file, by its name: *.safetensors, *.bin (torch.save zip), or a shard index. */
export function weightsFormat(name: string): "safetensors" | "pytorch" | "safetensors index" | "pytorch index" | null {
  if (name.endsWith(".safetensors")) return "safetensors";
  if (name.endsWith(".bin") || name.endsWith(".pt") || name.endsWith(".pth")) return "pytorch";
  if (name.endsWith(".safetensors.index.json")) return "safetensors index";
  if (name.endsWith(".bin.index.json")) return "pytorch index";
  return null;
}

/**
 * Read one weights file of `folder` by its name. A shard index opens its shards from the same
 * folder, next to the index.
 */
export async function readCheckpointFile(folder: ModelFolder, name: string, src?: ByteSource): Promise<TensorFile> {
  const format = weightsFormat(name);
  if (format === null)
    throw new CheckpointError(folder.nameOf(name), `unsupported weights file type (expected ${WEIGHT_FILES.join(", ")})`);
  const source = src ?? (await folder.open(name));
  if (source === null)
    throw new CheckpointError(
      folder.nameOf(name),
      "weights file not found (missing or not yet downloaded: check the name, or download it again)",
    );
  switch (format) {
    case "safetensors":
      return readSafetensors(source);
    case "pytorch":
      return readPytorchCheckpoint(source);
    default: {
      const dir = name.includes("/") ? name.slice(0, name.lastIndexOf("/") + 1) : "";
      const shardReader = format === "safetensors index" ? readSafetensors : readPytorchCheckpoint;
      return readShardedCheckpoint(source, async (shard) => {
        const s = await folder.open(dir + shard);
        if (s === null) {
          const kind = format === "safetensors index" ? "safetensors file" : "checkpoint";
          throw new CheckpointError(
            folder.nameOf(dir + shard),
            `${kind} not found (a shard named by ${name}; missing or not yet downloaded: download it again)`,
          );
        }
        return shardReader(s);
      });
    }
  }
}

export interface ChosenCheckpoint {
  file: TensorFile;
  /** Why this file was chosen, for the log. */
  reason: string;
}

/**
 * Open the weights of `folder`: `explicit` if given (a name inside the folder), else the first of
 * WEIGHT_FILES that exists and holds every tensor in `required` (or for which the function
 * `required` lists nothing missing: it can check sizes before naming tensors). A file that lacks
 * some is passed over for the next one, and the reason is reported; if none is complete, the
 * first file is handed back (the loader's check names what it lacks).
 */
export async function chooseCheckpointIn(
  folder: ModelFolder,
  required: readonly string[] | ((file: TensorFile) => string[]),
  explicit?: string,
): Promise<ChosenCheckpoint> {
  if (explicit) {
    return { file: await readCheckpointFile(folder, explicit), reason: `${explicit.slice(explicit.lastIndexOf("/") + 1)} (requested)` };
  }
  const present: [string, ByteSource][] = [];
  for (const name of WEIGHT_FILES) {
    const src = await folder.open(name);
    if (src) present.push([name, src]);
  }
  if (present.length === 0) {
    throw new CheckpointError(folder.name, `no weights found: expected one of ${WEIGHT_FILES.join(", ")} in this folder`);
  }
  const skipped: string[] = [];
  try {
    for (let i = 0; i < present.length; i++) {
      const [name, src] = present[i]!;
      const file = await readCheckpointFile(folder, name, src);
      present[i] = [name, null as unknown as ByteSource]; // now owned by `file`
      const missing = typeof required === "function" ? required(file) : required.filter((t) => !file.tensors.has(t));
      if (missing.length === 0) {
        return { file, reason: skipped.length ? `${name}; skipped ${skipped.join("; ")}` : name };
      }
      skipped.push(`${name}, which lacks "${missing[0]}"${missing.length > 1 ? ` and ${missing.length - 1} more` : ""}`);
      file.close();
    }
  } finally {
    for (const [, src] of present) src?.close?.();
  }
  // None is complete: hand back the preferred one; the loader's check names what it lacks.
  return { file: await readCheckpointFile(folder, present[0]![0]), reason: present[0]![0] };
}
