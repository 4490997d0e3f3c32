// GGUF in and out without llama.cpp: our files load back computing exactly what was written (every
// fixture, f32/f16/q8_0/q4_0; the layer-sharing one as its unrolled plain model), the tokenizer
// comes back from the metadata, and every malformed header gets an error naming the problem.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ggufFromModel, writeGguf, type GgufValue } from "../../src/io/gguf-write.js";
import { openGguf } from "../../src/io/files.js";
import { dequantize, isGroupedQ4 } from "../../src/kernels/quant.js";
import { loadModel } from "../../src/index.js";
import { Tokenizer } from "../../src/tokenizer/index.js";
import { loadTokenizer } from "../../src/load.js";
import { defaultNormalizerSpec, defaultTrainerSpec, ModelType, PieceType, type SentencePiece } from "../../src/tokenizer/proto.js";
import { expectedIds, FIXTURE_NAMES, FIXTURES, maxAbsDiff, TESTS_DIR } from "../helpers.js";

const DEFAULT_MODEL = join(TESTS_DIR, "..", "models", "shakespeare-2m");
const dir = mkdtempSync(join(tmpdir(), "mobilellm-gguf-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function tinyTokenizer(V: number): Tokenizer {
  const pieces: SentencePiece[] = [
    { piece: "<unk>", score: 0, type: PieceType.UNKNOWN },
    { piece: "<s>", score: 0, type: PieceType.CONTROL },
    { piece: "</s>", score: 0, type: PieceType.CONTROL },
  ];
  for (let i = 0; pieces.length < V; i++) pieces.push({ piece: `\u2581t${i}`, score: -i, type: PieceType.NORMAL });
  return new Tokenizer(
    {
      pieces,
      trainerSpec: { ...defaultTrainerSpec(), modelType: ModelType.BPE, vocabSize: V },
      normalizerSpec: { ...defaultNormalizerSpec(), name: "identity" },
    },
    "tiny",
  );
}

describe.each(FIXTURE_NAMES)("%s written as GGUF and read back", (fixture) => {
  const folder = join(FIXTURES, fixture);
  const ids = expectedIds(fixture, "input_ids");
  it.each(["f32", "f16", "q8_0", "q4_0"] as const)("%s: same weights, same logits (bit for bit)", async (dtype) => {
    const ours = await loadModel(folder, { dtype });
    const { metadata, tensors } = ggufFromModel(ours, tinyTokenizer(ours.config.vocabSize));
    const file = join(dir, `${fixture}-${dtype}.gguf`);
    writeGguf(file, metadata, tensors);
    const back = await loadModel(file);
    expect(back.config.layerSharing).toBe(false);
    expect(back.config.numLayers).toBe(ours.config.layerSharing ? 2 * ours.config.numLayers : ours.config.numLayers);
    expect(back.weights.layers[0]!.wqQD.dtype).toBe(ours.weights.layers[0]!.wqQD.dtype);
    expect(back.weights.embedVD.dtype).toBe(ours.weights.embedVD.dtype);
    expect(maxAbsDiff(back.forward(ids), ours.forward(ids))).toBe(0);
  });
});

describe("GGUF loads in another dtype, and the tokenizer", () => {
  it("an f16 GGUF quantized at load equals the folder quantized at load; a q8_0 GGUF widens to f32", async () => {
    const ids = [1, 827, 2010, 13, 2015, 260];
    const f16 = await loadModel(DEFAULT_MODEL);
    const tok = await loadTokenizer(DEFAULT_MODEL);
    const file = join(dir, "sh-f16.gguf");
    writeGguf(file, ggufFromModel(f16, tok).metadata, ggufFromModel(f16, tok).tensors);
    for (const dtype of ["q8_0", "q4_0"] as const) {
      expect(maxAbsDiff((await loadModel(file, { dtype })).forward(ids), (await loadModel(DEFAULT_MODEL, { dtype })).forward(ids))).toBe(0);
    }
    const q8 = await loadModel(DEFAULT_MODEL, { dtype: "q8_0" });
    const q8file = join(dir, "sh-q8.gguf");
    const g = ggufFromModel(q8, tok);
    writeGguf(q8file, g.metadata, g.tensors);
    const widened = await loadModel(q8file, { dtype: "f32" });
    expect(widened.weights.layers[0]!.wqQD.dtype).toBe("f32");
    // the widened weights are the q8_0 blocks' values exactly
    for (const [w, q] of [
      [widened.weights.layers[3]!.wkKD, q8.weights.layers[3]!.wkKD],
      [widened.weights.embedVD, q8.weights.embedVD],
    ] as const) {
      const expectValues = new Float32Array(w.data.length);
      dequantize("q8_0", expectValues, q.data as Uint8Array, 0, expectValues.length);
      expect(maxAbsDiff(w.data as Float32Array, expectValues)).toBe(0);
    }
  });

  it("a q4_0 model that has run (the wasm backend regrouped its matrices) writes GGUF's plain Q4_0 blocks", async () => {
    const ids = [1, 827, 2010, 13, 2015, 260];
    const tok = await loadTokenizer(DEFAULT_MODEL);
    const ran = await loadModel(DEFAULT_MODEL, { dtype: "q4_0", embeddingDType: "q4_0" });
    const logits = ran.forward(ids).slice();
    expect(isGroupedQ4(ran.weights.layers[0]!.wqQD)).toBe(true); // in groups of four rows (src/kernels/quant.ts Q4_0X4)
    expect(isGroupedQ4(ran.weights.embedVD)).toBe(true); // the shared lm_head
    const fresh = ggufFromModel(await loadModel(DEFAULT_MODEL, { dtype: "q4_0", embeddingDType: "q4_0" }), tok);
    const g = ggufFromModel(ran, tok);
    expect(g.tensors.map((t) => t.name)).toEqual(fresh.tensors.map((t) => t.name));
    g.tensors.forEach((t, i) => expect(Buffer.from(t.data).equals(Buffer.from(fresh.tensors[i]!.data)), t.name).toBe(true));
    const file = join(dir, "sh-q4-ran.gguf");
    writeGguf(file, g.metadata, g.tensors);
    expect(maxAbsDiff((await loadModel(file)).forward(ids), logits)).toBe(0);
    expect(maxAbsDiff(ran.forward(ids), logits)).toBe(0); // and it runs on, regrouped
    expect(isGroupedQ4(ran.weights.layers[0]!.wqQD)).toBe(true);
  });

  it("loadTokenizer(model.gguf) encodes like tokenizer.model", async () => {
    const tok = await loadTokenizer(DEFAULT_MODEL);
    const m = await loadModel(DEFAULT_MODEL);
    const file = join(dir, "sh-tok.gguf");
    const g = ggufFromModel(m, tok);
    writeGguf(file, g.metadata, g.tensors);
    const back = await loadTokenizer(file);
    const text = "First Citizen:\nBefore we proceed any further, hear me speak.\n\n  All:  Speak, speak. ¿Qué? 日本 \u{1F600}";
    expect(back.encode(text, { addBos: true })).toEqual(tok.encode(text, { addBos: true }));
    expect([back.bosId, back.eosId, back.unkId, back.vocabSize]).toEqual([tok.bosId, tok.eosId, tok.unkId, tok.vocabSize]);
  });
});

// ---- malformed headers ------------------------------------------------------------------------------

/** A minimal independent GGUF encoder for crafting broken files. */
function ggufBytes(opts: {
  magic?: string;
  version?: number;
  kv?: [string, number, (b: Bytes) => void][];
  tensors?: { name: string; dims: number[]; type: number; offset: number }[];
  data?: number;
}): Uint8Array {
  const b = new Bytes();
  b.raw(new TextEncoder().encode(opts.magic ?? "GGUF"));
  b.u32(opts.version ?? 3);
  b.u64(opts.tensors?.length ?? 0);
  b.u64(opts.kv?.length ?? 0);
  for (const [k, type, write] of opts.kv ?? []) {
    b.str(k);
    b.u32(type);
    write(b);
  }
  for (const t of opts.tensors ?? []) {
    b.str(t.name);
    b.u32(t.dims.length);
    t.dims.forEach((d) => b.u64(d));
    b.u32(t.type);
    b.u64(t.offset);
  }
  while (b.length % 32) b.u8(0);
  for (let i = 0; i < (opts.data ?? 0); i++) b.u8(0);
  return b.done();
}
class Bytes {
  private a: number[] = [];
  get length() {
    return this.a.length;
  }
  u8(v: number) {
    this.a.push(v & 255);
  }
  u32(v: number) {
    for (let i = 0; i < 4; i++) this.u8(v >>> (8 * i));
  }
  u64(v: number) {
    this.u32(v % 2 ** 32);
    this.u32(Math.floor(v / 2 ** 32));
  }
  raw(x: Uint8Array) {
    x.forEach((v) => this.u8(v));
  }
  str(s: string) {
    const e = new TextEncoder().encode(s);
    this.u64(e.length);
    this.raw(e);
  }
  done() {
    return Uint8Array.from(this.a);
  }
}
const str = (s: string) => (b: Bytes) => b.str(s);
const u32 = (v: number) => (b: Bytes) => b.u32(v);

describe("GGUF header validation", () => {
  const cases: [string, Uint8Array, RegExp][] = [
    ["bad magic", ggufBytes({ magic: "GGML" }), /not a GGUF file/],
    ["version 1", ggufBytes({ version: 1 }), /GGUF version 1 is not supported/],
    ["truncated header", ggufBytes({ kv: [["general.architecture", 8, str("llama")]] }).slice(0, 30), /file ends inside/],
    [
      "duplicate key",
      ggufBytes({
        kv: [
          ["a", 4, u32(1)],
          ["a", 4, u32(2)],
        ],
      }),
      /"a" appears twice/,
    ],
    ["unknown value type", ggufBytes({ kv: [["a", 99, u32(1)]] }), /unknown value type 99/],
    ["bool holding 2", ggufBytes({ kv: [["a", 7, (b) => b.u8(2)]] }), /bool holding 2/],
    [
      "invalid UTF-8 key",
      (() => {
        const x = ggufBytes({ kv: [["ab", 4, u32(1)]] });
        x[32] = 0xff;
        return x;
      })(),
      /not valid UTF-8/,
    ],
    ["alignment not a power of two", ggufBytes({ kv: [["general.alignment", 4, u32(24)]] }), /power of two/],
    [
      "unsupported tensor type names it",
      ggufBytes({ tensors: [{ name: "w", dims: [32, 2], type: 12, offset: 0 }], data: 512 }),
      /type Q4_K/,
    ],
    ["zero dimension", ggufBytes({ tensors: [{ name: "w", dims: [0], type: 0, offset: 0 }] }), /dimension 0 of size 0/],
    ["five dimensions", ggufBytes({ tensors: [{ name: "w", dims: [1, 1, 1, 1, 1], type: 0, offset: 0 }] }), /5 dimensions/],
    [
      "misaligned offset",
      ggufBytes({ tensors: [{ name: "w", dims: [4], type: 0, offset: 4 }], data: 64 }),
      /not a multiple of the alignment/,
    ],
    ["tensor past the end", ggufBytes({ tensors: [{ name: "w", dims: [64], type: 0, offset: 0 }], data: 16 }), /runs past the end/],
    [
      "overlapping tensors",
      ggufBytes({
        tensors: [
          { name: "a", dims: [16], type: 0, offset: 0 },
          { name: "b", dims: [16], type: 0, offset: 32 },
        ],
        data: 128,
      }),
      /overlap/,
    ],
    [
      "Q8_0 rows not a multiple of 32",
      ggufBytes({ tensors: [{ name: "w", dims: [16], type: 8, offset: 0 }], data: 64 }),
      /not a multiple of 32/,
    ],
  ];
  it.each(cases)("%s", async (_name, bytes, message) => {
    const file = join(dir, "bad.gguf");
    writeFileSync(file, bytes);
    await expect(openGguf(file).then((g) => g.close())).rejects.toThrow(message);
    await expect(openGguf(file).then((g) => g.close())).rejects.toThrow(/bad\.gguf: /); // the error names the file
  });

  it("another architecture is an error naming it; so is another tokenizer model", async () => {
    const file = join(dir, "gpt2.gguf");
    writeFileSync(
      file,
      ggufBytes({
        kv: [
          ["general.architecture", 8, str("gpt2")],
          ["tokenizer.ggml.model", 8, str("gpt2")],
        ],
      }),
    );
    await expect(loadModel(file)).rejects.toThrow(/architecture "gpt2" is not supported/);
    await expect(loadTokenizer(file)).rejects.toThrow(/tokenizer model "gpt2" is not supported/);
  });

  it("a llama GGUF missing a metadata field or a tensor says which", async () => {
    const m = await loadModel(join(FIXTURES, "tiny-gqa"));
    const { metadata, tensors } = ggufFromModel(m, tinyTokenizer(512));
    const drop = (key: string) => new Map([...metadata].filter(([k]) => k !== key)) as Map<string, GgufValue>;
    const f1 = join(dir, "nometa.gguf");
    writeGguf(f1, drop("llama.feed_forward_length"), tensors);
    await expect(loadModel(f1)).rejects.toThrow(/"llama.feed_forward_length" is missing/);
    const f2 = join(dir, "notensor.gguf");
    writeGguf(
      f2,
      metadata,
      tensors.filter((t) => t.name !== "blk.1.ffn_up.weight"),
    );
    await expect(loadModel(f2)).rejects.toThrow(/missing required tensor "model.layers.1.mlp.up_proj.weight"/);
    expect(readFileSync(f2).length).toBeGreaterThan(0);
  });
});

describe("mobilellm convert --to gguf, and the CLI on a GGUF", () => {
  it("convert writes a q8_0 GGUF that generate reads (same ids as --dtype q8_0 on the folder); bad flags exit 2", async () => {
    const { cli } = await import("../cli/cli-helpers.js");
    const out = join(dir, "cli-q8.gguf");
    const w = await cli(["convert", "--to", "gguf", "--dtype", "q8_0", "-o", out]);
    expect(w.code).toBe(0);
    expect(w.stderr).toMatch(/wrote .*cli-q8\.gguf: GGUF v3, llama, q8_0, 92 tensors/);
    const fromGguf = await cli(["generate", "-m", out, "--prompt", "ROMEO:", "-n", "12", "--json"]);
    const fromFolder = await cli(["generate", "--prompt", "ROMEO:", "-n", "12", "--json", "--dtype", "q8_0"]);
    expect(fromGguf.code).toBe(0);
    expect(JSON.parse(fromGguf.stdout).ids).toEqual(JSON.parse(fromFolder.stdout).ids);
    const info = await cli(["info", "-m", out, "--dtype", "q4_0"]);
    expect(info.code).toBe(0);
    expect(info.stdout).toMatch(/weights {5}cli-q8\.gguf \(GGUF v3\) \(gguf; Q8_0 [\d.]+M, F32 [\d.]+M\)/);
    expect(info.stdout).toMatch(/in memory {3}as q4_0: /);
    expect((await cli(["convert", "--to", "onnx", "-o", out])).code).toBe(2);
    expect((await cli(["convert", "--to", "gguf"])).stderr).toMatch(/--output FILE/);
    expect((await cli(["convert", "--to", "gguf", "--dtype", "q3_k", "-o", out])).stderr).toMatch(/--dtype must be one of/);
  });
});
