// Sharded checkpoints: large models are split into several files plus an index,
// `pytorch_model.bin.index.json` or `model.safetensors.index.json`:
//
//   {"metadata": {"total_size": ...}, "weight_map": {"model.norm.weight": "model-00002-of-00002.safetensors", ...}}
//
// We open every shard once (with the opener for its format, passed in), check that each name
// in weight_map really is in the shard the index points to, and present one merged table.

import { readWhole, type ByteSource } from "../platform/byte-source.js";
import { CheckpointError, type TensorEntry, type TensorFile } from "./tensor-file.js";

/** Opens one checkpoint file (e.g. a shard, by its name next to the index). */
export type TensorFileOpener = (path: string) => TensorFile | Promise<TensorFile>;

/**
 * Read a sharded checkpoint from its index JSON. `openShard` opens one shard, given its name as
 * written in the index (a plain relative name, checked here; the caller resolves it next to the
 * index). The result's tensors are exactly the names in weight_map; close() closes every shard.
 */
export async function readShardedCheckpoint(indexSource: ByteSource, openShard: TensorFileOpener): Promise<TensorFile> {
  const indexPath = indexSource.name;
  let index: unknown;
  try {
    index = JSON.parse(new TextDecoder().decode(await readWhole(indexSource, "shard index")));
  } catch (e) {
    if (e instanceof CheckpointError) throw e;
    throw new CheckpointError(indexPath, `cannot read the shard index as JSON: ${(e as Error).message}`);
  } finally {
    indexSource.close?.();
  }
  const weightMap = (index as { weight_map?: unknown } | null)?.weight_map;
  if (typeof weightMap !== "object" || weightMap === null || Array.isArray(weightMap)) {
    throw new CheckpointError(indexPath, `no "weight_map" object: expected {"metadata": ..., "weight_map": {tensor name: shard file}}`);
  }
  const entries = Object.entries(weightMap as Record<string, unknown>);
  for (const [name, shard] of entries) {
    // Shards are files next to the index: plain relative names only.
    if (
      typeof shard !== "string" ||
      shard === "" ||
      shard.includes("\0") ||
      shard.length > 255 ||
      /^([\\/]|[A-Za-z]:)/.test(shard) ||
      shard.split(/[\\/]/).includes("..")
    ) {
      throw new CheckpointError(indexPath, `weight_map["${name}"] = ${JSON.stringify(shard)} is not a shard file name next to the index`);
    }
  }

  const shards = new Map<string, TensorFile>(); // shard file name -> opened file, each opened once
  const closeAll = () => {
    for (const f of shards.values()) f.close();
  };
  try {
    const tensors = new Map<string, TensorEntry>();
    for (const [name, shard] of entries as [string, string][]) {
      let file = shards.get(shard);
      if (!file) {
        file = await openShard(shard);
        shards.set(shard, file);
      }
      const entry = file.tensors.get(name);
      if (!entry) throw new CheckpointError(indexPath, `weight_map says "${name}" is in ${shard}, but that shard has no such tensor`);
      tensors.set(name, entry);
    }
    const formats = [...new Set([...shards.values()].map((f) => f.format))];
    return { path: indexPath, format: `sharded ${formats.join("+") || "(empty)"}`, tensors, close: closeAll };
  } catch (e) {
    closeAll();
    throw e;
  }
}
