// pytorch_model.bin reader: the fixtures are bit-identical to model.fp16.safetensors, and crafted
// checkpoints exercise strides, storage offsets, dtypes, top-directory names and broken files.

import * as fs from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { openPytorchCheckpoint } from "../../src/io/files.js";
import { CheckpointError, type TensorFile } from "../../src/io/tensor-file.js";
import {
  f32Bytes,
  rejected,
  makeTempDir,
  readSafetensors,
  stateDictPickle,
  torchZip,
  writeTemp,
  writeZip,
  type TensorSpec,
} from "./pytorch-helpers.js";

const fixtures = path.join(path.dirname(path.dirname(fileURLToPath(import.meta.url))), "fixtures");
const tmp = makeTempDir();
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

async function readAll(f: TensorFile, name: string): Promise<Uint8Array> {
  const t = f.tensors.get(name)!;
  const dst = new Uint8Array(t.numel * (t.dtype === "F32" ? 4 : 2));
  await t.read(dst);
  return dst;
}

function f32(bytes: Uint8Array): number[] {
  return [...new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4)];
}

let counter = 0;
function checkpoint(
  tensors: TensorSpec[],
  storages: Map<string, Uint8Array>,
  opts: Parameters<typeof torchZip>[2] & { root?: "dict" | "ordered" } = {},
): string {
  return writeTemp(tmp, `crafted-${counter++}.bin`, torchZip(stateDictPickle(tensors, opts.root), storages, opts));
}

describe.each(["tiny-gqa", "tiny-ls", "tiny-mha-unshared"])("fixture %s/pytorch_model.bin", (model) => {
  it("has the same tensors, shapes, dtype and bits as model.fp16.safetensors", async () => {
    const ref = readSafetensors(path.join(fixtures, model, "model.fp16.safetensors"));
    const f = await openPytorchCheckpoint(path.join(fixtures, model, "pytorch_model.bin"));
    try {
      expect(f.format).toBe("pytorch");
      expect([...f.tensors.keys()].sort()).toEqual([...ref.keys()].sort());
      for (const [name, r] of ref) {
        const t = f.tensors.get(name)!;
        expect(t.name).toBe(name);
        expect(t.dtype).toBe("F16");
        expect(r.dtype).toBe("F16");
        expect(t.shape).toEqual(r.shape);
        expect(t.numel).toBe(r.shape.reduce((a, b) => a * b, 1));
        const dst = new Uint8Array(t.numel * 2);
        await t.read(dst);
        expect(Buffer.compare(dst, r.bytes), name).toBe(0);
      }
    } finally {
      f.close();
    }
  });
});

describe("crafted checkpoints", () => {
  const storage6 = f32Bytes([0, 1, 2, 3, 4, 5]);

  it("reads a contiguous tensor, from a plain dict or an OrderedDict with _metadata, any top directory", async () => {
    for (const root of ["dict", "ordered"] as const) {
      for (const topdir of ["archive", "pytorch_model", "weird name"]) {
        const p = checkpoint(
          [{ name: "w", storageType: "FloatStorage", key: "0", storageNumel: 6, offset: 0, shape: [2, 3], stride: [3, 1] }],
          new Map([["0", storage6]]),
          { root, topdir },
        );
        const f = await openPytorchCheckpoint(p);
        expect(f.tensors.get("w")!.dtype).toBe("F32");
        expect(f.tensors.get("w")!.shape).toEqual([2, 3]);
        expect(f32(await readAll(f, "w"))).toEqual([0, 1, 2, 3, 4, 5]);
        f.close();
      }
    }
  });

  it("gathers a non-contiguous (transposed) tensor", async () => {
    // storage holds A = [[0,1,2],[3,4,5]] row-major; the tensor is A^T: shape [3,2], stride [1,3]
    const p = checkpoint(
      [{ name: "wT", storageType: "FloatStorage", key: "0", storageNumel: 6, offset: 0, shape: [3, 2], stride: [1, 3] }],
      new Map([["0", storage6]]),
    );
    const f = await openPytorchCheckpoint(p);
    expect(f32(await readAll(f, "wT"))).toEqual([0, 3, 1, 4, 2, 5]);
    // element-wise path (aligned destination) and byte-wise path (unaligned destination) agree
    const unaligned = new Uint8Array(25).subarray(1);
    await f.tensors.get("wT")!.read(unaligned);
    expect(f32(unaligned.slice())).toEqual([0, 3, 1, 4, 2, 5]);
    f.close();
    // f16 and i64 elements (2-byte and 8-byte copies)
    const h = new Uint8Array([0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5]);
    const l = new Uint8Array(new BigInt64Array([0n, 1n, 2n, 3n, 4n, 5n]).buffer);
    const g = await openPytorchCheckpoint(
      checkpoint(
        [
          { name: "h", storageType: "HalfStorage", key: "h", storageNumel: 6, offset: 0, shape: [3, 2], stride: [1, 3] },
          { name: "l", storageType: "LongStorage", key: "l", storageNumel: 6, offset: 0, shape: [3, 2], stride: [1, 3] },
        ],
        new Map([
          ["h", h],
          ["l", l],
        ]),
      ),
    );
    expect([...(await readAll(g, "h"))]).toEqual([0, 0, 3, 3, 1, 1, 4, 4, 2, 2, 5, 5]);
    expect(g.tensors.get("l")!.dtype).toBe("I64");
    const l8 = new Uint8Array(48);
    await g.tensors.get("l")!.read(l8);
    expect([...new BigInt64Array(l8.buffer)]).toEqual([0n, 3n, 1n, 4n, 2n, 5n]);
    g.close();
  });

  it("honours storage_offset (contiguous and strided); refuses zero strides (expand) and self-overlapping views", async () => {
    const s10 = f32Bytes([10, 11, 12, 13, 14, 15, 16, 17, 18, 19]);
    const p = checkpoint(
      [
        { name: "slice", storageType: "FloatStorage", key: "a", storageNumel: 10, offset: 3, shape: [4], stride: [1] },
        { name: "everyOther", storageType: "FloatStorage", key: "a", storageNumel: 10, offset: 1, shape: [2, 2], stride: [4, 2] },
        { name: "scalar", storageType: "FloatStorage", key: "a", storageNumel: 10, offset: 9, shape: [], stride: [] },
      ],
      new Map([["a", s10]]),
    );
    const f = await openPytorchCheckpoint(p);
    expect(f32(await readAll(f, "slice"))).toEqual([13, 14, 15, 16]);
    expect(f32(await readAll(f, "everyOther"))).toEqual([11, 13, 15, 17]);
    expect(f.tensors.get("scalar")!.numel).toBe(1);
    // An expanded view (stride 0) or one whose rows overlap would turn a small storage into a huge tensor.
    for (const [shape, stride] of [
      [
        [2, 3],
        [0, 1],
      ],
      [
        [2, 2],
        [1, 1],
      ],
      [
        [1000000, 1],
        [0, 1],
      ],
    ]) {
      const bad = checkpoint(
        [{ name: "expanded", storageType: "FloatStorage", key: "a", storageNumel: 10, offset: 7, shape: shape!, stride: stride! }],
        new Map([["a", s10]]),
      );
      expect((await rejected((async () => openPytorchCheckpoint(bad))())).message).toMatch(/reads some storage elements more than once/);
    }
    expect(f32(await readAll(f, "scalar"))).toEqual([19]);
    f.close();
  });

  it("maps storage types to F16 / F32 / BF16 and unwraps nn.Parameter", async () => {
    const two = new Uint8Array([1, 2, 3, 4]);
    const p = checkpoint(
      [
        { name: "h", storageType: "HalfStorage", key: "h", storageNumel: 2, offset: 0, shape: [2], stride: [1] },
        { name: "b", storageType: "BFloat16Storage", key: "b", storageNumel: 2, offset: 0, shape: [2], stride: [1], parameter: true },
        { name: "f", storageType: "FloatStorage", key: "f", storageNumel: 1, offset: 0, shape: [1], stride: [1] },
      ],
      new Map([
        ["h", two],
        ["b", two],
        ["f", two],
      ]),
    );
    const f = await openPytorchCheckpoint(p);
    expect([f.tensors.get("h")!.dtype, f.tensors.get("b")!.dtype, f.tensors.get("f")!.dtype]).toEqual(["F16", "BF16", "F32"]);
    expect([...(await readAll(f, "b"))]).toEqual([1, 2, 3, 4]);
    f.close();
  });

  it("refuses a view that reaches past its storage: 'storage too small'", async () => {
    const p = checkpoint(
      [{ name: "big", storageType: "FloatStorage", key: "0", storageNumel: 6, offset: 1, shape: [2, 3], stride: [3, 1] }],
      new Map([["0", storage6]]),
    );
    await expect((async () => openPytorchCheckpoint(p))()).rejects.toThrow(/"big".*storage too small/);
  });

  it("refuses a storage record whose size disagrees with the pickle's numel", async () => {
    const p = checkpoint(
      [{ name: "w", storageType: "FloatStorage", key: "0", storageNumel: 8, offset: 0, shape: [6], stride: [1] }],
      new Map([["0", storage6]]),
    );
    await expect((async () => openPytorchCheckpoint(p))()).rejects.toThrow(/has 24 bytes but the pickle says 8 F32 elements/);
  });

  it("names a missing storage record", async () => {
    const p = checkpoint(
      [{ name: "w", storageType: "FloatStorage", key: "7", storageNumel: 6, offset: 0, shape: [6], stride: [1] }],
      new Map([["0", storage6]]),
    );
    await expect((async () => openPytorchCheckpoint(p))()).rejects.toThrow(/tensor "w": its storage record "archive\/data\/7" is missing/);
  });

  it("refuses a zip without data.pkl, big-endian storages, a non-dict root, and short destinations", async () => {
    const t: TensorSpec = { name: "w", storageType: "FloatStorage", key: "0", storageNumel: 6, offset: 0, shape: [6], stride: [1] };
    const noPkl = writeTemp(tmp, "nopkl.bin", torchZip(stateDictPickle([t]), new Map([["0", storage6]]), { topdir: "a/b" }));
    await expect((async () => openPytorchCheckpoint(noPkl))()).rejects.toThrow(/no <dir>\/data\.pkl/);
    const big = checkpoint([t], new Map([["0", storage6]]), { extra: [{ name: "archive/byteorder", data: Buffer.from("big") }] });
    await expect((async () => openPytorchCheckpoint(big))()).rejects.toThrow(/big-endian/);
    const little = checkpoint([t], new Map([["0", storage6]]), { extra: [{ name: "archive/byteorder", data: Buffer.from("little") }] });
    (await openPytorchCheckpoint(little)).close();
    const listRoot = writeTemp(tmp, "listroot.bin", torchZip(Uint8Array.from([0x80, 2, 0x5d, 0x2e]), new Map()));
    await expect((async () => openPytorchCheckpoint(listRoot))()).rejects.toThrow(/root is not a dict/);
    const f = await openPytorchCheckpoint(checkpoint([t], new Map([["0", storage6]])));
    await expect((async () => await f.tensors.get("w")!.read(new Uint8Array(8)))()).rejects.toThrow(
      /destination has 8 bytes, the tensor needs 24/,
    );
    f.close();
  });

  it("detects a corrupted storage byte by CRC when the tensor is read", async () => {
    const bytes = torchZip(
      stateDictPickle([{ name: "w", storageType: "FloatStorage", key: "0", storageNumel: 6, offset: 0, shape: [6], stride: [1] }]),
      new Map([["0", storage6]]),
    );
    const at = Buffer.from(bytes).indexOf(Buffer.from(storage6)) + 5;
    bytes[at] = bytes[at]! ^ 0x10;
    const f = await openPytorchCheckpoint(writeTemp(tmp, "badcrc.bin", bytes));
    const err = await (async () => {
      try {
        await readAll(f, "w");
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(CheckpointError);
    expect((err as Error).message).toMatch(/badcrc\.bin: zip entry "archive\/data\/0": CRC-32 mismatch/);
    f.close();
  });

  it("reads entries beyond 4 GiB (zip64 offsets) from a sparse file", async (ctx) => {
    // A zip may follow a prefix; here the prefix is a 5 GiB hole, so every local header, the
    // central directory and the zip64 records sit past 2^32 and only zip64 fields can locate them.
    const G = 5 * 2 ** 30;
    const file = path.join(tmp, "sparse.bin");
    // Probe first with a 256 MiB hole, so a filesystem without sparse files never writes 5 GiB.
    const probe = fs.openSync(file, "w");
    fs.writeSync(probe, new Uint8Array(1), 0, 1, 256 << 20);
    fs.closeSync(probe);
    const sparse = fs.statSync(file).blocks * 512 < 16 << 20;
    fs.rmSync(file);
    if (!sparse) {
      console.warn("skipping the >4 GiB zip64 test: this filesystem does not create sparse files");
      ctx.skip();
    }
    const fd = fs.openSync(file, "w");
    const zip = writeZip(
      [
        {
          name: "archive/data.pkl",
          data: stateDictPickle([
            { name: "wT", storageType: "FloatStorage", key: "0", storageNumel: 6, offset: 0, shape: [3, 2], stride: [1, 3] },
          ]),
        },
        { name: "archive/data/0", data: storage6 },
      ],
      { zip64: true, baseOffset: G },
    );
    fs.writeSync(fd, zip, 0, zip.length, G);
    fs.closeSync(fd);
    const f = await openPytorchCheckpoint(file);
    expect(f32(await readAll(f, "wT"))).toEqual([0, 3, 1, 4, 2, 5]);
    f.close();
    fs.rmSync(file);
  });

  it("reads a checkpoint written with zip64 records", async () => {
    const p = checkpoint(
      [{ name: "wT", storageType: "FloatStorage", key: "0", storageNumel: 6, offset: 0, shape: [3, 2], stride: [1, 3] }],
      new Map([["0", storage6]]),
      { zip64: true },
    );
    const f = await openPytorchCheckpoint(p);
    expect(f32(await readAll(f, "wT"))).toEqual([0, 3, 1, 4, 2, 5]);
    f.close();
  });
});
