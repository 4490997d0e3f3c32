// Sharded checkpoints: an index JSON + shard files, opened once each and merged.

import * as fs from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { openPytorchCheckpoint, openShardedCheckpoint } from "../../src/io/files.js";
import type { FileDType, TensorEntry, TensorFile } from "../../src/io/tensor-file.js";
import { makeTempDir, readSafetensors, stateDictPickle, torchZip, writeTemp, type TensorSpec } from "./pytorch-helpers.js";

const fixtures = path.join(path.dirname(path.dirname(fileURLToPath(import.meta.url))), "fixtures");
const tmp = makeTempDir();
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const ref = readSafetensors(path.join(fixtures, "tiny-gqa", "model.fp16.safetensors"));
const names = [...ref.keys()];
const shardOf = (i: number) => (i % 2 === 0 ? "pytorch_model-00001-of-00002.bin" : "pytorch_model-00002-of-00002.bin");

// Two pytorch shards of tiny-gqa's fp16 weights (alternating tensors) and their index.
const shardNames: Record<string, string[]> = {};
names.forEach((n, i) => (shardNames[shardOf(i)] ??= []).push(n));
for (const [shard, ns] of Object.entries(shardNames)) {
  const specs: TensorSpec[] = [];
  const storages = new Map<string, Uint8Array>();
  ns.forEach((n, k) => {
    const r = ref.get(n)!;
    const strides = r.shape.map((_, d) => r.shape.slice(d + 1).reduce((a, b) => a * b, 1));
    specs.push({
      name: n,
      storageType: "HalfStorage",
      key: String(k),
      storageNumel: r.bytes.length / 2,
      offset: 0,
      shape: r.shape,
      stride: strides,
    });
    storages.set(String(k), r.bytes);
  });
  writeTemp(tmp, shard, torchZip(stateDictPickle(specs), storages));
}
const weightMap = Object.fromEntries(names.map((n, i) => [n, shardOf(i)]));
const indexPath = writeTemp(
  tmp,
  "pytorch_model.bin.index.json",
  Buffer.from(JSON.stringify({ metadata: { total_size: 1 }, weight_map: weightMap })),
);

/** A fake safetensors opener (the real one lives in safetensors.ts): counts opens and closes. */
function fakeSafetensorsOpener(log: { opened: string[]; closed: string[] }) {
  return (p: string): TensorFile => {
    log.opened.push(path.basename(p));
    const t = readSafetensors(path.join(fixtures, "tiny-gqa", "model.fp16.safetensors"));
    const tensors = new Map<string, TensorEntry>();
    for (const [name, r] of t) {
      tensors.set(name, {
        name,
        dtype: r.dtype as FileDType,
        shape: r.shape,
        numel: r.bytes.length / 2,
        file: p,
        read: async (dst) => dst.set(r.bytes),
      });
    }
    return { path: p, format: "safetensors", tensors, close: () => log.closed.push(path.basename(p)) };
  };
}

describe("openShardedCheckpoint", () => {
  it("merges pytorch shards: every tensor bit-identical to model.fp16.safetensors", async () => {
    const f = await openShardedCheckpoint(indexPath, openPytorchCheckpoint);
    expect(f.format).toBe("sharded pytorch");
    expect([...f.tensors.keys()].sort()).toEqual([...names].sort());
    for (const [name, r] of ref) {
      const t = f.tensors.get(name)!;
      expect(t.shape).toEqual(r.shape);
      expect(t.file).toBe(path.join(tmp, shardOf(names.indexOf(name))));
      const dst = new Uint8Array(t.numel * 2);
      await t.read(dst);
      expect(Buffer.compare(dst, r.bytes), name).toBe(0);
    }
    f.close();
  });

  it("opens each shard once (safetensors index, fake opener) and closes them all", async () => {
    const log = { opened: [] as string[], closed: [] as string[] };
    const idx = writeTemp(
      tmp,
      "model.safetensors.index.json",
      Buffer.from(
        JSON.stringify({
          metadata: {},
          weight_map: Object.fromEntries(names.map((n, i) => [n, i % 3 === 0 ? "a.safetensors" : "b.safetensors"])),
        }),
      ),
    );
    const f = await openShardedCheckpoint(idx, fakeSafetensorsOpener(log));
    expect(log.opened).toEqual(["a.safetensors", "b.safetensors"]);
    expect(f.format).toBe("sharded safetensors");
    expect(f.tensors.size).toBe(names.length);
    f.close();
    expect(log.closed.sort()).toEqual(["a.safetensors", "b.safetensors"]);
  });

  it("names a tensor missing from its shard, and closes what it opened", async () => {
    const log = { opened: [] as string[], closed: [] as string[] };
    const idx = writeTemp(
      tmp,
      "missing.index.json",
      Buffer.from(JSON.stringify({ weight_map: { "model.norm.weight": "a.safetensors", "model.nope.weight": "b.safetensors" } })),
    );
    await expect(openShardedCheckpoint(idx, fakeSafetensorsOpener(log))).rejects.toThrow(
      `${idx}: weight_map says "model.nope.weight" is in b.safetensors, but that shard has no such tensor`,
    );
    expect(log.closed.sort()).toEqual(["a.safetensors", "b.safetensors"]);
  });

  it("refuses malformed indexes and shard paths outside the index directory", async () => {
    const log = { opened: [] as string[], closed: [] as string[] };
    const bad = (name: string, text: string) => writeTemp(tmp, name, Buffer.from(text));
    await expect(openShardedCheckpoint(bad("notjson.json", "{"), fakeSafetensorsOpener(log))).rejects.toThrow(
      /cannot read the shard index as JSON/,
    );
    await expect(openShardedCheckpoint(bad("nomap.json", `{"metadata":{}}`), fakeSafetensorsOpener(log))).rejects.toThrow(
      /no "weight_map" object/,
    );
    await expect(
      openShardedCheckpoint(bad("escape.json", `{"weight_map":{"w":"../../etc/passwd"}}`), fakeSafetensorsOpener(log)),
    ).rejects.toThrow(/is not a shard file name next to the index/);
    await expect(openShardedCheckpoint(bad("abs.json", `{"weight_map":{"w":"/etc/passwd"}}`), fakeSafetensorsOpener(log))).rejects.toThrow(
      /is not a shard file name/,
    );
    await expect(openShardedCheckpoint(bad("num.json", `{"weight_map":{"w":3}}`), fakeSafetensorsOpener(log))).rejects.toThrow(
      /is not a shard file name/,
    );
    expect(log.opened).toEqual([]);
  });
});
