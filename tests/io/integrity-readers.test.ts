// Ambiguous or hostile checkpoint files are errors naming the file, never a silent choice, a
// huge allocation or a blocked process (issue "Nothing lost, nothing hung").
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { CheckpointError, encodeSafetensors, loadModel, openSafetensors } from "../../src/index.js";
import { openPytorchCheckpoint } from "../../src/io/files.js";
import { fileSource } from "../../src/platform/node.js";
import { firstDuplicateKey } from "../../src/io/safetensors.js";
import { ZipReader } from "../../src/io/zip.js";
import { loadTokenizer } from "../../src/load.js";
import { FIXTURES } from "../helpers.js";
import { f32Bytes, rejected, stateDictPickle, torchZip, writeZip } from "./pytorch-helpers.js";

const tmp = mkdtempSync(join(tmpdir(), "mobilellm-integrity-"));
let n = 0;
const file = (bytes: Uint8Array, name = "model.safetensors"): string => {
  const dir = join(tmp, String(n++));
  mkdirSync(dir);
  writeFileSync(join(dir, name), bytes);
  return join(dir, name);
};

/** A safetensors file from a raw header object and data section. */
function rawSafetensors(header: Record<string, unknown> | string, data: Uint8Array): Uint8Array {
  const json = new TextEncoder().encode(typeof header === "string" ? header : JSON.stringify(header));
  const len = new Uint8Array(8);
  new DataView(len.buffer).setBigUint64(0, BigInt(json.length), true);
  return Buffer.concat([len, json, data]);
}

const refused = async (bytes: Uint8Array, pattern: RegExp) => {
  const path = file(bytes);
  const err = await rejected(openSafetensors(path));
  expect(err).toBeInstanceOf(CheckpointError);
  expect(err.message.startsWith(`${path}: `)).toBe(true);
  expect(err.message).toMatch(pattern);
};

describe("safetensors: ambiguous headers are refused", () => {
  it("a tensor name given twice (JSON.parse would keep the last)", async () => {
    const t = `{"dtype":"F32","shape":[1],"data_offsets":[0,4]}`;
    await refused(rawSafetensors(`{"a":${t},"a":${t.replace("0,4", "4,8")}}`, new Uint8Array(8)), /names "a" twice/);
    // also through escapes, and a field inside one entry
    await refused(rawSafetensors(`{"a":${t},"\\u0061":${t}}`, new Uint8Array(4)), /names "a" twice/);
    await refused(
      rawSafetensors(`{"a":{"dtype":"F32","dtype":"F16","shape":[1],"data_offsets":[0,4]}}`, new Uint8Array(4)),
      /names "dtype" twice/,
    );
    expect(firstDuplicateKey(`{"a":[{"x":1},{"x":2}],"b":"a\\"","c":{"a":1}}`)).toBeUndefined();
  });

  it("overlapping ranges anywhere, zero-size tensors included, and bytes owned by no tensor", async () => {
    const e = (b: number, end: number) => ({ dtype: "U8", shape: [end - b], data_offsets: [b, end] });
    // not neighbours after sorting: c lies inside a
    await refused(rawSafetensors({ a: e(0, 8), b: e(8, 16), c: e(2, 4) }, new Uint8Array(16)), /overlaps/);
    // a zero-size tensor inside another's bytes
    await refused(rawSafetensors({ a: e(0, 8), z: e(4, 4) }, new Uint8Array(8)), /overlaps/);
    // identical ranges
    await refused(rawSafetensors({ a: e(0, 8), b: e(0, 8) }, new Uint8Array(8)), /overlaps/);
    // a gap and trailing bytes
    await refused(rawSafetensors({ a: e(0, 4), b: e(6, 8) }, new Uint8Array(8)), /belong to no tensor/);
    await refused(rawSafetensors({ a: e(0, 4) }, new Uint8Array(8)), /trailing bytes/);
    // zero-size tensors at a boundary are fine
    const ok = await openSafetensors(file(rawSafetensors({ z0: e(0, 0), a: e(0, 4), z4: e(4, 4), b: e(4, 8) }, new Uint8Array(8))));
    expect([...ok.tensors.keys()]).toEqual(["z0", "a", "z4", "b"]);
    ok.close();
  });

  it("dtype names resolve only through the table's own keys", async () => {
    for (const dtype of ["toString", "__proto__", "constructor", "hasOwnProperty", "valueOf"]) {
      await refused(rawSafetensors({ a: { dtype, shape: [1], data_offsets: [0, 4] } }, new Uint8Array(4)), /unknown dtype/);
    }
  });
});

describe("pytorch zip + pickle: declared sizes and storage types", () => {
  it("a compressed entry declaring gigabytes is refused before anything is allocated", async () => {
    const zip = writeZip([{ name: "a/data.pkl", data: new Uint8Array(16), method: 8 }]);
    const cd = Buffer.from(zip).indexOf(Buffer.from([0x50, 0x4b, 1, 2]));
    new DataView(zip.buffer, zip.byteOffset).setUint32(cd + 24, 0xfffffff0, true); // uncompressed size
    const path = file(zip, "pytorch_model.bin");
    expect((await rejected(ZipReader.open(fileSource(path, "checkpoint")))).message).toMatch(
      /declares 4294967280 bytes from 16 compressed ones/,
    );
    // a stored entry whose sizes disagree
    const stored = writeZip([{ name: "a/data.pkl", data: new Uint8Array(16) }]);
    const cd2 = Buffer.from(stored).indexOf(Buffer.from([0x50, 0x4b, 1, 2]));
    new DataView(stored.buffer, stored.byteOffset).setUint32(cd2 + 24, 1 << 30, true);
    expect((await rejected(ZipReader.open(fileSource(file(stored, "pytorch_model.bin"), "checkpoint")))).message).toMatch(
      /is stored but declares 1073741824 bytes in 16/,
    );
  });

  it("a storage type named like an Object.prototype member is not a storage", async () => {
    for (const storageType of ["toString", "__proto__", "constructor"]) {
      const pkl = stateDictPickle([{ name: "w", storageType, key: "0", storageNumel: 1, offset: 0, shape: [1], stride: [1] }]);
      const err = await rejected(openPytorchCheckpoint(file(torchZip(pkl, new Map([["0", f32Bytes([1])]])), "pytorch_model.bin")));
      expect(err).toBeInstanceOf(CheckpointError);
    }
  });

  it("one storage reused by many views cannot inflate a small file", async () => {
    const storage = f32Bytes(Array.from({ length: 64 }, (_, i) => i));
    const views = Array.from({ length: 40 }, (_, i) => ({
      name: `w${i}`,
      storageType: "FloatStorage",
      key: "0",
      storageNumel: 64,
      offset: 0,
      shape: [8, 8],
      stride: [8, 1],
    }));
    const err = await rejected(
      openPytorchCheckpoint(file(torchZip(stateDictPickle(views), new Map([["0", storage]])), "pytorch_model.bin")),
    );
    expect(err.message).toMatch(/views add up to 10240 bytes from 256 bytes of storage/);
    // tied weights (two names, one storage) stay fine
    const tied = await openPytorchCheckpoint(
      file(torchZip(stateDictPickle(views.slice(0, 2)), new Map([["0", storage]])), "pytorch_model.bin"),
    );
    expect(tied.tensors.size).toBe(2);
    tied.close();
  });
});

describe("file-system surprises become CheckpointErrors naming the file", () => {
  it("a FIFO named model.safetensors is refused instead of blocking forever", async () => {
    const dir = join(tmp, "fifo");
    mkdirSync(dir);
    copyFileSync(join(FIXTURES, "tiny-gqa", "config.json"), join(dir, "config.json"));
    execFileSync("mkfifo", [join(dir, "model.safetensors")]);
    const err = await rejected(openSafetensors(join(dir, "model.safetensors")));
    expect(err.message).toMatch(/model\.safetensors: is not a regular file/);
    await expect(loadModel(dir, { backend: "ts" })).rejects.toThrow(/model\.safetensors: is not a regular file/);
    execFileSync("mkfifo", [join(dir, "pytorch_model.bin")]);
    expect((await rejected(openPytorchCheckpoint(join(dir, "pytorch_model.bin")))).message).toMatch(/is not a regular file/);
    execFileSync("mkfifo", [join(dir, "tokenizer.model")]);
    await expect(loadTokenizer(dir)).rejects.toThrow(/tokenizer\.model: is not a regular file/);
    const cfgDir = join(tmp, "fifo-config");
    mkdirSync(cfgDir);
    execFileSync("mkfifo", [join(cfgDir, "config.json")]);
    await expect(loadModel(cfgDir, { backend: "ts" })).rejects.toThrow(/config\.json: is not a regular file/);
  });

  it("a directory where a weights file should be, a missing shard, a NUL in a shard name", async () => {
    const dir = join(tmp, "dirs");
    mkdirSync(join(dir, "model.safetensors"), { recursive: true });
    copyFileSync(join(FIXTURES, "tiny-gqa", "config.json"), join(dir, "config.json"));
    await expect(loadModel(dir, { backend: "ts" })).rejects.toThrow(/model\.safetensors: is a directory/);

    const sharded = join(tmp, "sharded");
    mkdirSync(sharded);
    copyFileSync(join(FIXTURES, "tiny-gqa", "config.json"), join(sharded, "config.json"));
    const src = await openSafetensors(join(FIXTURES, "tiny-gqa", "model.safetensors"));
    const map: Record<string, string> = {};
    for (const name of src.tensors.keys()) map[name] = "model-00001-of-00001.safetensors";
    src.close();
    writeFileSync(join(sharded, "model.safetensors.index.json"), JSON.stringify({ weight_map: map }));
    await expect(loadModel(sharded, { backend: "ts" })).rejects.toThrow(/model-00001-of-00001\.safetensors: safetensors file not found/);
    const first = Object.keys(map)[0]!;
    writeFileSync(join(sharded, "model.safetensors.index.json"), JSON.stringify({ weight_map: { ...map, [first]: "a\0b.safetensors" } }));
    const err = await loadModel(sharded, { backend: "ts" }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(CheckpointError);
    expect((err as Error).message).toMatch(/model\.safetensors\.index\.json: weight_map.*is not a shard file name/);
  });

  it("a round trip through encodeSafetensors still reads (the tiling rule matches the writer)", async () => {
    const bytes = Buffer.concat(
      encodeSafetensors([
        { name: "a", dtype: "F32", shape: [2], bytes: f32Bytes([1, 2]) },
        { name: "empty", dtype: "F32", shape: [0], bytes: new Uint8Array(0) },
        { name: "b", dtype: "F32", shape: [1], bytes: f32Bytes([3]) },
      ]),
    );
    const f = await openSafetensors(file(bytes));
    expect(f.tensors.size).toBe(3);
    f.close();
    expect(readFileSync(join(FIXTURES, "tiny-gqa", "model.safetensors")).length).toBeGreaterThan(0);
  });
});
