// MobileLLM's tokenizer.model against reference encodings from the sentencepiece library.
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import type { Tokenizer } from "../../src/tokenizer/index.js";
import { loadTokenizer } from "../../src/load.js";

const here = dirname(dirname(fileURLToPath(import.meta.url)));
const sharedDir = join(here, "..", "..", "shared", "tokenizer");
const modelPath = join(sharedDir, "tokenizer.model");
const casesPath = join(sharedDir, "cases.jsonl");
const haveShared = existsSync(modelPath) && existsSync(casesPath);
if (!haveShared) {
  console.warn(`tokenizer.test: skipping MobileLLM tokenizer tests, ${modelPath} / cases.jsonl not found`);
}

interface Case {
  text: string;
  ids: number[];
  pieces: string[];
  decoded: string;
}

describe.skipIf(!haveShared)("MobileLLM tokenizer.model (LLaMA SentencePiece BPE)", () => {
  let tok: Tokenizer;
  const cases: Case[] = haveShared
    ? readFileSync(casesPath, "utf8")
        .split("\n")
        .filter((l) => l.trim() !== "")
        .map((l) => JSON.parse(l) as Case)
    : [];

  it("loads with the expected vocabulary and special ids", async () => {
    tok = await loadTokenizer(sharedDir); // a folder -> folder/tokenizer.model
    expect(tok.vocabSize).toBe(32000);
    expect([tok.unkId, tok.bosId, tok.eosId, tok.padId]).toEqual([0, 1, 2, -1]);
    expect(tok.idToPiece(3)).toBe("<0x00>");
    expect(tok.idToPiece(258)).toBe("<0xFF>");
    expect(tok.pieceToId("▁Hello")).toBe(15043);
    expect(tok.pieceToId("no such piece")).toBe(0);
    expect(cases.length).toBe(60);
  });

  it("encodes every reference case exactly (raw SentencePiece: no BOS, specials as text)", () => {
    for (const c of cases) {
      const { ids, pieces } = tok.encodeWithPieces(c.text, { addBos: false, parseSpecial: false });
      expect({ text: c.text, ids }).toEqual({ text: c.text, ids: c.ids });
      expect(pieces).toEqual(c.pieces);
    }
  });

  it("decodes every reference case exactly, one-shot and streaming", () => {
    for (const c of cases) {
      expect(tok.decode(c.ids)).toBe(c.decoded);
      const stream = tok.createDecodeStream();
      let streamed = "";
      for (const id of c.ids) streamed += stream.push(id);
      streamed += stream.flush();
      expect(streamed).toBe(c.decoded);
    }
  });

  it("breaks score ties leftmost, as sentencepiece (values from sentencepiece 0.1.97)", () => {
    // "aa" and "aaaa" pairs tie at several positions; leftmost-first gives ▁a aaaa aa.
    expect(tok.encodePieces("aaaaaaa", { addBos: false })).toEqual(["▁a", "aaaa", "aa"]);
    expect(tok.encode("     five", { addBos: false })).toEqual([418, 5320]);
  });

  it("encode() defaults to MobileLLM's Hugging Face setup: BOS, no EOS, special strings parsed", () => {
    expect(tok.encode("Hello world")).toEqual([1, 15043, 3186]);
    expect(tok.encode("Hello world", { addEos: true })).toEqual([1, 15043, 3186, 2]);
    // LlamaTokenizer (legacy): "<s>" becomes id 1 and the text after it gets its own "▁".
    expect(tok.encode("Hello<s>world")).toEqual([1, 15043, 1, 3186]);
    expect(tok.encode("<s>", { addBos: false, parseSpecial: false })).toEqual([529, 29879, 29958]);
    expect(tok.decode([1, 15043, 1, 3186, 2])).toBe("Hello world");
  });
});
