// The checkpoint readers on files and folders of the local disk (Node, Deno, Bun): the path-taking
// names of the readers, which themselves read any ByteSource. Node-only (platform/node.ts).

import { dirname, join } from "node:path";
import { existsSync } from "node:fs";
import { dirFolder, fileSource } from "../platform/node.js";
import { chooseCheckpointIn, readCheckpointFile, type ChosenCheckpoint } from "./checkpoint.js";
import { readGguf, type GgufFile } from "./gguf.js";
import { readPytorchCheckpoint } from "./pytorch.js";
import { readSafetensors } from "./safetensors.js";
import { readShardedCheckpoint, type TensorFileOpener } from "./sharded.js";
import type { TensorFile } from "./tensor-file.js";

/** A safetensors file on disk. */
export async function openSafetensors(path: string): Promise<TensorFile> {
  return readSafetensors(fileSource(path, "safetensors file"));
}

/** A PyTorch zip checkpoint (pytorch_model.bin) on disk. */
export async function openPytorchCheckpoint(path: string): Promise<TensorFile> {
  return readPytorchCheckpoint(fileSource(path, "checkpoint"));
}

/** A GGUF file on disk. */
export async function openGguf(path: string): Promise<GgufFile> {
  return readGguf(fileSource(path, "GGUF file"));
}

/** A sharded checkpoint from its index file; `openShard` gets each shard's path (next to the index). */
export async function openShardedCheckpoint(indexPath: string, openShard: TensorFileOpener): Promise<TensorFile> {
  return readShardedCheckpoint(fileSource(indexPath, "shard index"), (shard) => openShard(join(dirname(indexPath), shard)));
}

/** One weights file by its path: *.safetensors, *.bin (torch.save zip), or a shard index. */
export async function openCheckpointFile(path: string): Promise<TensorFile> {
  const slash = Math.max(path.lastIndexOf("/"), path.lastIndexOf("\\"));
  return readCheckpointFile(dirFolder(slash < 0 ? "." : path.slice(0, slash) || "/"), path.slice(slash + 1));
}

/**
 * The weights of a folder on disk (see chooseCheckpointIn); `explicit` is a name inside the
 * folder or a path.
 */
export async function chooseCheckpoint(
  folder: string,
  required: readonly string[] | ((file: TensorFile) => string[]),
  explicit?: string,
): Promise<ChosenCheckpoint> {
  if (explicit && !existsSync(join(folder, explicit))) {
    const slash = Math.max(explicit.lastIndexOf("/"), explicit.lastIndexOf("\\"));
    return { file: await openCheckpointFile(explicit), reason: `${explicit.slice(slash + 1)} (requested)` };
  }
  return chooseCheckpointIn(dirFolder(folder), required, explicit);
}
