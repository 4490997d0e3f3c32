// Bad checkpoints must fail loudly, naming the file and the problem, and never load made-up values.
import fc from "fast-check";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { CheckpointError, encodeSafetensors, loadModel, openSafetensors, type FileDType } from "../../src/index.js";
import { readSafetensors } from "./pytorch-helpers.js";
import { FIXTURES } from "../helpers.js";

const tmp = mkdtempSync(join(tmpdir(), "mobilellm-st-"));
afterAll(() => {
  /* temp files are left for the OS; they are small */
});

const GQA = join(FIXTURES, "tiny-gqa");
const original = readFileSync(join(GQA, "model.safetensors"));

/** A copy of tiny-gqa whose model.safetensors is `bytes` (and config.json optionally replaced). */
function folderWith(name: string, bytes: Uint8Array, config?: string): string {
  const dir = join(tmp, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "model.safetensors"), bytes);
  if (config === undefined) copyFileSync(join(GQA, "config.json"), join(dir, "config.json"));
  else writeFileSync(join(dir, "config.json"), config);
  return dir;
}

function header(bytes: Uint8Array): { json: Record<string, any>; dataStart: number } {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  return { json: JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))), dataStart: 8 + n };
}

/** Rebuild the fixture file with a modified header (data section unchanged). */
function withHeader(edit: (json: Record<string, any>) => void): Uint8Array {
  const { json, dataStart } = header(original);
  edit(json);
  const text = new TextEncoder().encode(JSON.stringify(json));
  const len = new Uint8Array(8);
  new DataView(len.buffer).setBigUint64(0, BigInt(text.length), true);
  return Buffer.concat([len, text, original.subarray(dataStart)]);
}

/** Rebuild the fixture file without some tensors (a consistent, smaller file). */
function without(names: string[]): Uint8Array {
  const parts = [...readSafetensors(join(GQA, "model.safetensors"))]
    .filter(([name]) => !names.includes(name))
    .map(([name, t]) => ({ name, dtype: t.dtype as FileDType, shape: t.shape, bytes: t.bytes }));
  return Buffer.concat(encodeSafetensors(parts));
}

describe("safetensors reader", () => {
  it("round-trips through encodeSafetensors bit-exactly", async () => {
    const dir = folderWith("roundtrip", without([]));
    const a = await loadModel(GQA, { backend: "ts" });
    const b = await loadModel(dir, { backend: "ts" });
    expect(Buffer.from(b.weights.embedVD.data.buffer).equals(Buffer.from(a.weights.embedVD.data.buffer))).toBe(true);
  });

  const broken: [string, () => Uint8Array, RegExp][] = [
    ["a file shorter than the length prefix", () => original.subarray(0, 5), /only 5 bytes/],
    ["a truncated file", () => original.subarray(0, original.length - 1000), /runs past the end of the data/],
    ["a truncated header", () => original.subarray(0, 100), /header length \d+ runs past the end/],
    [
      "a header that is not JSON",
      () => {
        const b = Uint8Array.from(original);
        b[8] = 0x7b;
        b[9] = 0x7b;
        return b;
      },
      /not valid UTF-8 JSON/,
    ],
    [
      "an absurd header length",
      () => {
        const b = Uint8Array.from(original);
        b[7] = 0x7f;
        return b;
      },
      /implausible/,
    ],
    [
      "overlapping tensors",
      () =>
        withHeader((j) => {
          const names = Object.keys(j).filter((k) => k !== "__metadata__");
          const a = j[names[1]!],
            b = j[names[2]!];
          // make b the same size as a and start inside a
          const size = a.data_offsets[1] - a.data_offsets[0];
          b.shape = a.shape;
          b.dtype = a.dtype;
          b.data_offsets = [a.data_offsets[0] + 4, a.data_offsets[0] + 4 + size];
        }),
      /overlap/,
    ],
    [
      "offsets that disagree with the shape",
      () =>
        withHeader((j) => {
          j["model.norm.weight"].shape = [65];
        }),
      /needs 260/,
    ],
    [
      "offsets past the end",
      () =>
        withHeader((j) => {
          const t = j["model.norm.weight"];
          t.data_offsets = [t.data_offsets[0] + 1e7, t.data_offsets[1] + 1e7];
        }),
      /runs past the end of the data/,
    ],
    [
      "an unknown dtype",
      () =>
        withHeader((j) => {
          j["model.norm.weight"].dtype = "F8_E4M3";
        }),
      /unknown dtype "F8_E4M3"/,
    ],
    [
      "a non-integer shape",
      () =>
        withHeader((j) => {
          j["model.norm.weight"].shape = [64.5];
        }),
      /is not a list of non-negative integers/,
    ],
  ];
  it.each(broken)("rejects %s, naming the file", async (name, make, message) => {
    const dir = folderWith(name.replace(/\W+/g, "-"), make());
    const promise = loadModel(dir, { backend: "ts" });
    await Promise.all([
      expect(promise).rejects.toThrowError(message),
      expect(promise).rejects.toThrowError(new RegExp(`^${join(dir, "model.safetensors").replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}: `)),
      expect(promise).rejects.toBeInstanceOf(CheckpointError),
    ]);
  });

  it("never accepts a corrupt header silently (fast-check over random header edits)", async () => {
    const { json } = header(original);
    const names = Object.keys(json).filter((k) => k !== "__metadata__");
    const dataBytes = original.length - header(original).dataStart;
    let caughtByReader = 0,
      caughtByLoader = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...names),
        fc.oneof(
          fc.record({ field: fc.constant("data_offsets"), value: fc.tuple(fc.nat(dataBytes * 2), fc.nat(dataBytes * 2)) }),
          fc.record({ field: fc.constant("shape"), value: fc.array(fc.integer({ min: -2, max: 600 }), { maxLength: 3 }) }),
          fc.record({ field: fc.constant("dtype"), value: fc.constantFrom("F32", "F16", "I8", "X", "", "f32") }),
        ),
        async (name, { field, value }) => {
          const before = JSON.stringify(json[name][field]);
          if (JSON.stringify(value) === before) return; // not an edit
          const bytes = withHeader((j) => {
            j[name][field] = value;
          });
          const dir = folderWith("fuzz", bytes);
          let file: Awaited<ReturnType<typeof openSafetensors>> | undefined;
          try {
            file = await openSafetensors(join(dir, "model.safetensors"));
          } catch (e) {
            expect(e).toBeInstanceOf(CheckpointError);
            caughtByReader++;
            return;
          }
          // The header is self-consistent after the edit: then the model loader must catch it.
          file.close();
          await expect(loadModel(dir, { backend: "ts" }), `accepted ${name}.${field} = ${JSON.stringify(value)}`).rejects.toThrowError(
            /model\.safetensors: /,
          );
          caughtByLoader++;
        },
      ),
      { numRuns: 60 },
    );
    expect(caughtByReader + caughtByLoader).toBeGreaterThan(0);
  });
});

describe("model loader", () => {
  it("a missing embedding points to pytorch_model.bin (the hub's converted safetensors defect)", async () => {
    const dir = folderWith("no-embed", without(["model.embed_tokens.weight"]));
    await expect(loadModel(dir, { backend: "ts" })).rejects.toThrowError(
      /missing required tensor "model.embed_tokens.weight".*pytorch_model\.bin/,
    );
  });

  it("any missing tensor is named", async () => {
    const dir = folderWith("no-down", without(["model.layers.2.mlp.down_proj.weight"]));
    await expect(loadModel(dir, { backend: "ts" })).rejects.toThrowError(/missing required tensor "model.layers.2.mlp.down_proj.weight"/);
  });

  it("a tensor of the wrong shape for the config is named with both shapes", async () => {
    const config = JSON.parse(readFileSync(join(GQA, "config.json"), "utf8"));
    const dir = folderWith("wrong-shape", original, JSON.stringify({ ...config, intermediate_size: 128 }));
    await expect(loadModel(dir, { backend: "ts" })).rejects.toThrowError(
      /tensor "model.layers.0.mlp.gate_proj.weight" has shape \[172,64\], but config.json implies \[128,64\]/,
    );
  });

  it("a tensor the config does not expect is an error (checkpoint and config disagree)", async () => {
    const config = JSON.parse(readFileSync(join(GQA, "config.json"), "utf8"));
    const dir = folderWith("fewer-layers", original, JSON.stringify({ ...config, num_hidden_layers: 3 }));
    await expect(loadModel(dir, { backend: "ts" })).rejects.toThrowError(/unexpected tensor "model.layers.3/);
  });

  it("a non-JSON config.json is named", async () => {
    const dir = folderWith("bad-json", original, "{ hidden_size: 64 ");
    await expect(loadModel(dir, { backend: "ts" })).rejects.toThrowError(/config\.json: not valid JSON/);
  });

  it("an inconsistent config.json is named", async () => {
    const config = JSON.parse(readFileSync(join(GQA, "config.json"), "utf8"));
    const dir = folderWith("bad-heads", original, JSON.stringify({ ...config, num_attention_heads: 7, head_dim: undefined }));
    await expect(loadModel(dir, { backend: "ts" })).rejects.toThrowError(
      /config\.json: num_attention_heads \(7\) does not divide hidden_size \(64\)/,
    );
  });

  it("a folder without config.json or weights says what is missing", async () => {
    const empty = join(tmp, "empty");
    mkdirSync(empty, { recursive: true });
    await expect(loadModel(empty, { backend: "ts" })).rejects.toThrowError(/config\.json: not found/);
    writeFileSync(join(empty, "config.json"), readFileSync(join(GQA, "config.json")));
    await expect(loadModel(empty, { backend: "ts" })).rejects.toThrowError(/no weights found/);
    await expect(loadModel(join(tmp, "nope"), { backend: "ts" })).rejects.toThrowError(/not a folder/);
  });

  it("a token id outside the vocabulary is a clear error", async () => {
    const model = await loadModel(GQA, { backend: "ts" });
    expect(() => model.forward([1, 512])).toThrowError(/token id 512 .* outside the vocabulary/);
  });

  it("input longer than the context is a clear error, not garbage", async () => {
    const model = await loadModel(GQA, { backend: "ts" });
    expect(() => model.forward(new Array(257).fill(5))).toThrowError(/context overflow: .*256-position context/);
  });
});
