// The zip container reader: CRC-32, zip64 records, local vs central header lengths, and clear
// errors for truncated, corrupt and compressed archives.

import * as fs from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { crc32, crc32Update } from "../../src/io/zip.js";
import { CheckpointError } from "../../src/io/tensor-file.js";
import { makeTempDir, openZip, rejected, writeTemp, writeZip } from "./pytorch-helpers.js";

const fixtures = path.join(path.dirname(path.dirname(fileURLToPath(import.meta.url))), "fixtures");
const tmp = makeTempDir();
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

let counter = 0;
const temp = (bytes: Uint8Array) => writeTemp(tmp, `z-${counter++}.zip`, bytes);

describe("CRC-32", () => {
  it("matches zlib.crc32 reference values", () => {
    expect(crc32(Buffer.from("123456789"))).toBe(0xcbf43926); // the standard check value
    expect(crc32(new Uint8Array(0))).toBe(0);
    expect(crc32(Buffer.from("a"))).toBe(0xe8b7be43);
    const ramp = new Uint8Array(768).map((_, i) => i & 0xff);
    expect(crc32(ramp)).toBe(0xb0c0df2a); // python3 -c "zlib.crc32(bytes(range(256))*3)"
  });

  it("chains: crc(a ++ b) = update(crc(a), b), agreeing with a bitwise definition", () => {
    const bitwise = (b: Uint8Array) => {
      let c = 0xffffffff;
      for (const x of b) {
        c ^= x;
        for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      }
      return (c ^ 0xffffffff) >>> 0;
    };
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.uint8Array({ maxLength: 200 }), fc.nat(7), (a, b, skip) => {
        const ab = new Uint8Array([...a, ...b]);
        expect(crc32Update(crc32(a), b)).toBe(crc32(ab));
        expect(crc32(ab)).toBe(bitwise(ab));
        // views at any alignment (the word-at-a-time path starts after a byte-wise prologue)
        const view = ab.subarray(Math.min(skip, ab.length));
        expect(crc32(view)).toBe(bitwise(view.slice()));
      }),
      { numRuns: 200 },
    );
  });
});

describe("ZipReader", () => {
  const entries = [
    { name: "top/data.pkl", data: Buffer.from("pickle bytes") },
    {
      name: "top/data/0",
      data: new Uint8Array(1000).map((_, i) => (i * 7) & 0xff),
      localExtra: new Uint8Array([0x46, 0x42, 3, 0, 0x5a, 0x5a, 0x5a]),
    }, // torch-style "FB" padding
    { name: "top/version", data: Buffer.from("3\n") },
  ];

  for (const zip64 of [false, true]) {
    it(`lists entries and reads them (zip64 records: ${zip64}), local extra lengths differing from central`, async () => {
      const z = await openZip(temp(writeZip(entries, { zip64 })));
      expect([...z.entries.keys()]).toEqual(entries.map((e) => e.name));
      for (const e of entries) {
        const ze = z.entries.get(e.name)!;
        expect(ze.size).toBe(e.data.length);
        expect([...(await z.readEntry(ze))]).toEqual([...e.data]);
      }
      const part = new Uint8Array(10);
      await z.readRange(z.entries.get("top/data/0")!, 500, part);
      expect([...part]).toEqual([...entries[1]!.data.subarray(500, 510)]);
      z.close();
    });
  }

  it("reads the fixture checkpoint's directory (torch writes zip64 end records and 64-byte aligned data)", async () => {
    const z = await openZip(path.join(fixtures, "tiny-gqa", "pytorch_model.bin"));
    const data0 = z.entries.get("pytorch_model/data/0")!;
    expect(data0.size).toBe(512 * 64 * 2); // embed_tokens [V, H] in f16
    expect((await z.dataOffset(data0)) % 64).toBe(0);
    expect((await z.readEntry(z.entries.get("pytorch_model/version")!)).length).toBeGreaterThan(0);
    z.close();
  });

  it("refuses truncated files with a clear message naming the file", async () => {
    const full = new Uint8Array(fs.readFileSync(path.join(fixtures, "tiny-gqa", "pytorch_model.bin")));
    for (const keep of [0, 10, 21, 1000, full.length >> 1, full.length - 200, full.length - 23, full.length - 1]) {
      const file = temp(full.subarray(0, keep));
      const err = await rejected(
        (async () => {
          const z = await openZip(file);
          for (const e of z.entries.values()) await z.readEntry(e);
        })(),
      );
      expect(err).toBeInstanceOf(CheckpointError);
      expect(err.message.startsWith(`${file}: `)).toBe(true);
      expect(err.message).toMatch(/truncated|corrupt|not a zip/);
    }
  });

  it("detects a wrong CRC, naming the entry (whole and partial reads)", async () => {
    const bad = writeZip([{ name: "top/data/0", data: new Uint8Array(100).fill(1), crc: 0x12345678 }]);
    const file = temp(bad);
    const z = await openZip(file);
    const e = z.entries.get("top/data/0")!;
    await expect(z.readEntry(e)).rejects.toThrow(`${file}: zip entry "top/data/0": CRC-32 mismatch (stored 12345678, computed`);
    await expect(z.readRange(e, 10, new Uint8Array(4))).rejects.toThrow(/CRC-32 mismatch/);
    z.close();
  });

  it("refuses compressed entries (method != 0) when they are read", async () => {
    const file = temp(writeZip([{ name: "top/data.pkl", data: new Uint8Array(8), method: 8 }]));
    const z = await openZip(file);
    await expect(z.readEntry(z.entries.get("top/data.pkl")!)).rejects.toThrow(
      /zip entry "top\/data.pkl" is compressed \(method 8\); PyTorch checkpoints store entries uncompressed/,
    );
    z.close();
  });

  it("refuses bad signatures, duplicate names and legacy (pre-zip) torch files", async () => {
    const good = writeZip(entries);
    const badLocal = good.slice();
    badLocal[0] = 0; // local header signature of the first entry
    const z = await openZip(temp(badLocal));
    await expect(z.readEntry(z.entries.get("top/data.pkl")!)).rejects.toThrow(/zip entry "top\/data.pkl": bad local header signature/);
    z.close();

    const badCentral = good.slice();
    badCentral[Buffer.from(good).indexOf(Buffer.from([0x50, 0x4b, 1, 2]))] = 0;
    await expect(openZip(temp(badCentral))).rejects.toThrow(/central directory record 0 has a bad signature/);

    const dup = writeZip([entries[0]!, entries[0]!]);
    await expect(openZip(temp(dup))).rejects.toThrow(/appears twice/);

    const legacy = new Uint8Array([
      0x80, 2, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e, 0x80, 2, 0x4d, 0xe9, 0x03, 0x2e, 0, 0, 0, 0,
    ]);
    await expect(openZip(temp(legacy))).rejects.toThrow(/legacy \(torch < 1\.6, non-zip\) PyTorch file/);

    await expect(openZip(path.join(tmp, "does-not-exist.bin"))).rejects.toThrow(/does-not-exist\.bin: checkpoint not found/);
  });
});
