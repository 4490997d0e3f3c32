// Property tests (fast-check) for the tokenizer, and clear errors for bad tokenizer.model files.
import { mkdtempSync, readFileSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { plainBpeEncoder } from "../../src/tokenizer/bpe-plain.js";
import { normalize } from "../../src/tokenizer/normalizer.js";
import { parseModelProto, serializeModelProto, Tokenizer } from "../../src/tokenizer/index.js";
import { loadTokenizer } from "../../src/load.js";

const here = dirname(dirname(fileURLToPath(import.meta.url)));
const fixturePath = join(here, "fixtures", "tokenizer", "shakespeare-bpe800.model");
const mobilellmPath = join(here, "..", "..", "shared", "tokenizer", "tokenizer.model");
const models: [string, string][] = [["shakespeare-bpe800 (project fixture)", fixturePath]];
if (existsSync(mobilellmPath)) models.push(["MobileLLM tokenizer.model", mobilellmPath]);
else console.warn(`tokenizer-props.test: ${mobilellmPath} not found; property tests run on the fixture model only`);

// Characters that stress the tokenizer: any code point, lone surrogates, controls, whitespace
// kinds, U+2581, digits, and text-like ASCII.
const unit = fc.oneof(
  { arbitrary: fc.string({ unit: "binary", minLength: 1, maxLength: 1 }), weight: 4 },
  { arbitrary: fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c)), weight: 1 },
  { arbitrary: fc.integer({ min: 0, max: 0x1f }).map((c) => String.fromCharCode(c)), weight: 1 },
  { arbitrary: fc.constantFrom(" ", "  ", "\n", "\t", "\r\n", "\u00a0", "\u2581", "\u3000", "\ufeff"), weight: 2 },
  { arbitrary: fc.constantFrom("the", " and", "ing", "Hello", "0", "42", "é", "中文", "😀", "👩‍💻", "<s>", "</s>"), weight: 3 },
);
const text = fc.oneof(
  fc.array(unit, { maxLength: 60 }).map((a) => a.join("")),
  fc.string({ unit: "binary", maxLength: 200 }),
  // long runs of one character
  fc.tuple(fc.oneof(unit, fc.constant("a")), fc.integer({ min: 1, max: 3000 })).map(([c, n]) => c.repeat(n)),
);

/** What decode(encode(s)) must give for these models: identity normalization of s. */
const normalized = (s: string): string =>
  s.replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, "\uFFFD").replaceAll("\u2581", " ");

for (const [label, path] of models) {
  describe(`properties: ${label}`, () => {
    const tok = Tokenizer.fromBytes(new Uint8Array(readFileSync(path)), path);

    it("decode(encode(s)) is the normalized s; ids are in the vocabulary", () => {
      fc.assert(
        fc.property(text, (s) => {
          const ids = tok.encode(s, { parseSpecial: false }); // BOS first, decodes to ""
          expect(ids[0]).toBe(tok.bosId);
          expect(ids.every((id) => Number.isInteger(id) && id >= 0 && id < tok.vocabSize)).toBe(true);
          expect(tok.decode(ids)).toBe(normalized(s));
        }),
        { numRuns: 300 },
      );
    });

    it("encode never throws, with or without special-token parsing", () => {
      fc.assert(
        fc.property(text, fc.boolean(), fc.boolean(), (s, parseSpecial, addEos) => {
          const ids = tok.encode(s, { parseSpecial, addEos });
          expect(ids.every((id) => id >= 0 && id < tok.vocabSize)).toBe(true);
        }),
        { numRuns: 200 },
      );
    });

    it("streaming decode equals decode for any id sequence", () => {
      const V = tok.vocabSize;
      const id = fc.oneof(fc.integer({ min: 0, max: V - 1 }), fc.integer({ min: 0, max: 300 }));
      fc.assert(
        fc.property(fc.array(id, { maxLength: 40 }), (ids) => {
          const stream = tok.createDecodeStream();
          let streamed = "";
          for (const i of ids) streamed += stream.push(i);
          streamed += stream.flush();
          expect(streamed).toBe(tok.decode(ids));
        }),
        { numRuns: 500 },
      );
    });

    it("streaming holds back an unfinished UTF-8 character until it is complete", () => {
      const ids = tok.encode("😀", { addBos: false, parseSpecial: false }); // byte fallback or a piece
      const stream = tok.createDecodeStream();
      const parts = ids.map((i) => stream.push(i));
      expect(parts.join("") + stream.flush()).toBe("😀");
      for (const p of parts) expect(p).not.toContain("\uFFFD");
    });
  });
}

describe("bad tokenizer.model files", () => {
  const good = new Uint8Array(readFileSync(fixturePath));
  const dir = mkdtempSync(join(tmpdir(), "mobilellm-tok-"));

  it("truncated files give an error naming the file", () => {
    const name = "models/truncated/tokenizer.model";
    for (let len = 0; len < good.length; len += len < 64 ? 1 : 37) {
      expect(() => Tokenizer.fromBytes(good.subarray(0, len), name)).toThrow(name);
    }
  });

  it("a corrupted byte either still parses or gives an error naming the file", () => {
    const name = "corrupt.model";
    fc.assert(
      fc.property(fc.integer({ min: 0, max: good.length - 1 }), fc.integer({ min: 0, max: 255 }), (pos, byte) => {
        const bad = good.slice();
        bad[pos] = byte;
        try {
          Tokenizer.fromBytes(bad, name); // a changed score or letter can still be a valid model
        } catch (e) {
          expect((e as Error).message).toContain(name);
        }
      }),
      { numRuns: 300 },
    );
    expect(() => Tokenizer.fromBytes(new TextEncoder().encode("this is not a protobuf file at all"), name)).toThrow(name);
  });

  it("loadTokenizer names the path for a truncated file, a missing file and a folder without a model", async () => {
    const file = join(dir, "tokenizer.model");
    writeFileSync(file, good.subarray(0, 5000));
    await expect(loadTokenizer(file)).rejects.toThrow(file);
    await expect(loadTokenizer(dir)).rejects.toThrow(/truncated or corrupt/);
    await expect(loadTokenizer(join(dir, "nope.model"))).rejects.toThrow("nope.model");
    const empty = mkdtempSync(join(tmpdir(), "mobilellm-tok-empty-"));
    await expect(loadTokenizer(empty)).rejects.toThrow(/has no tokenizer.model/);
  });

  it("models this project cannot run faithfully are refused with the reason", () => {
    const base = () => parseModelProto(good, "x.model");
    const noByte = base();
    noByte.pieces = noByte.pieces.filter((p) => p.piece !== "<0x41>");
    expect(() => Tokenizer.fromBytes(serializeModelProto(noByte), "nobyte.model")).toThrow(
      /nobyte.model: byte_fallback is on but the byte piece <0x41> is missing/,
    );
    const unigram = base();
    unigram.trainerSpec.modelType = 1;
    expect(() => Tokenizer.fromBytes(serializeModelProto(unigram), "uni.model")).toThrow(
      /uni.model: unsupported SentencePiece model type UNIGRAM/,
    );
    const nfkc = base();
    nfkc.normalizerSpec.name = "nmt_nfkc";
    nfkc.normalizerSpec.precompiledCharsmap = new Uint8Array([1, 2, 3]);
    expect(() => Tokenizer.fromBytes(serializeModelProto(nfkc), "nfkc.model")).toThrow(/nfkc.model: unsupported normalizer "nmt_nfkc"/);
  });

  it("out-of-range ids are rejected with a clear error", () => {
    const tok = Tokenizer.fromBytes(good, "fixture.model");
    expect(() => tok.decode([800])).toThrow(/token id 800 is out of range/);
    expect(() => tok.createDecodeStream().push(-1)).toThrow(/out of range/);
    expect(() => tok.idToPiece(1.5)).toThrow(/out of range/);
  });
});

describe("the BPE encoder (word chunks, cache, pair table, heap) equals the plain one (fast-check)", () => {
  const nofallback = join(here, "fixtures", "tokenizer", "nofallback-bpe300.model");
  const shortText = fc.oneof(
    fc.array(unit, { maxLength: 60 }).map((a) => a.join("")),
    fc.string({ unit: "binary", maxLength: 120 }),
    fc
      .array(fc.constantFrom("the ", "and", "thee", "thou ", "art", "\n", "ROMEO:", "  ", "eee", "sss", "ooo", "!!!!", "lll", "   "), {
        maxLength: 30,
      })
      .map((a) => a.join("")),
  );
  for (const [label, path] of [...models, ["nofallback-bpe300 (no byte fallback)", nofallback] as [string, string]]) {
    it(label, () => {
      const tok = Tokenizer.fromBytes(new Uint8Array(readFileSync(path)), path);
      const encodePlain = plainBpeEncoder(tok.model);
      fc.assert(
        fc.property(shortText, (s) => {
          const plain = encodePlain(normalize(s, tok.model.normalizerSpec, false));
          expect(tok.encode(s, { addBos: false, parseSpecial: false })).toEqual(plain);
        }),
        { numRuns: 300, seed: 5150 },
      );
    });
  }
});
