// The BPE trainer: the tokenizer.model it writes is well formed, round-trips text, and encodes
// identically in this project's Tokenizer and in Debian's spm_encode (when installed).
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import {
  ModelType,
  PieceType,
  Tokenizer,
  parseModelProto,
  serializeModelProto,
  trainBpeModel,
  trainBpeTokenizer,
} from "../../src/tokenizer/index.js";

const here = dirname(dirname(fileURLToPath(import.meta.url)));
const shakespearePath = join(here, "..", "..", "shared", "data", "tinyshakespeare.txt");
const haveShakespeare = existsSync(shakespearePath);
const haveSpm = spawnSync("spm_encode", ["--help"]).error === undefined;
if (!haveSpm) console.warn("tokenizer-train.test: spm_encode not installed (apt-get install sentencepiece); skipping the cross-check");
if (!haveShakespeare) console.warn(`tokenizer-train.test: ${shakespearePath} not found; skipping the 1 MB training test`);

// A small training text written for this test: English with repeats, numbers, indentation,
// accents, Cyrillic, CJK and emoji.
const lines = [
  "the cat sat on the mat, and the dog sat on the log.",
  "then the cat and the dog ran to the barn in 1999 and 2024.",
  "    indented code: return value + 42;",
  "Ça va? Très bien, merci. Élan, café, naïve.",
  "Привет, как дела? Хорошо, спасибо.",
  "東京と大阪は日本の都市です。東京は大きい。",
  "party time 🎉🎉 rocket 🚀 and more 🎉",
  "the theme of the thesis: there, then, thereafter, the other thing.",
];
const corpus = Array.from({ length: 30 }, (_, k) => lines.map((l) => (k % 3 === 0 ? l.toUpperCase() : l)).join("\n")).join("\n");
const samples = [...lines, "", " ", "unseen words: xylophone quartz 7", "tabs\tand\r\ncarriage", "<s> not special </s>", "🎉 ▁ 東京"];

function checkWithSpm(modelBytes: Uint8Array, texts: string[]): void {
  const dir = mkdtempSync(join(tmpdir(), "mobilellm-train-"));
  const file = join(dir, "tokenizer.model");
  writeFileSync(file, modelBytes);
  const single = texts.filter((t) => !/[\n\r\0]/.test(t)); // spm_encode reads one line per input
  const out = execFileSync("spm_encode", [`--model=${file}`, "--output_format=id"], { input: single.join("\n") + "\n", encoding: "utf8" });
  const ref = out.split("\n");
  const tok = Tokenizer.fromBytes(modelBytes, file);
  single.forEach((t, i) => {
    expect({ t, ids: tok.encode(t, { addBos: false, parseSpecial: false }).join(" ") }).toEqual({ t, ids: ref[i] });
  });
}

describe("trainBpeTokenizer", () => {
  const V = 600;
  const bytes = trainBpeTokenizer(corpus, { vocabSize: V });
  const tok = Tokenizer.fromBytes(bytes, "trained.model");

  it("writes a SentencePiece BPE model with the MobileLLM layout", () => {
    const m = parseModelProto(bytes, "trained.model");
    expect(m.trainerSpec.modelType).toBe(ModelType.BPE);
    expect(m.trainerSpec.byteFallback).toBe(true);
    expect(m.trainerSpec.splitDigits).toBe(true);
    expect(m.normalizerSpec).toMatchObject({
      name: "identity",
      addDummyPrefix: true,
      removeExtraWhitespaces: false,
      escapeWhitespaces: true,
    });
    expect(tok.vocabSize).toBe(V);
    expect(m.trainerSpec.vocabSize).toBe(V);
    expect(m.pieces.slice(0, 3).map((p) => [p.piece, p.type])).toEqual([
      ["<unk>", PieceType.UNKNOWN],
      ["<s>", PieceType.CONTROL],
      ["</s>", PieceType.CONTROL],
    ]);
    expect(m.pieces[3 + 0x41]).toEqual({ piece: "<0x41>", score: 0, type: PieceType.BYTE });
    // Scores fall strictly after the byte pieces: -k for the k-th merge, then the characters.
    const normal = m.pieces.slice(259);
    normal.forEach((p, k) => expect(p.score).toBe(-k));
    // Reading and writing again gives the same bytes.
    expect(serializeModelProto(m)).toEqual(bytes);
  });

  it("learns pieces that obey the trainer rules", () => {
    const model = trainBpeModel(corpus, { vocabSize: V });
    const pieces = model.pieces.filter((p) => p.type === PieceType.NORMAL).map((p) => p.piece);
    expect(pieces).toContain("▁the");
    for (const p of pieces) {
      const chars = Array.from(p);
      if (chars.length > 1) expect(p).not.toMatch(/[0-9]/); // split_digits
      if (!/^▁+$/.test(p)) expect(p.slice(1)).not.toContain("▁"); // '▁' only leads a piece
      expect(chars.length).toBeLessThanOrEqual(16);
      expect(/\p{Script=Latin}/u.test(p) && /\p{Script=Cyrillic}/u.test(p)).toBe(false); // one script
    }
    expect(new Set(model.pieces.map((p) => p.piece)).size).toBe(model.pieces.length);
  });

  it("round-trips text, including characters it never saw", () => {
    // (a literal "▁" is a space once escaped, so it decodes as one)
    for (const s of [...samples, corpus]) expect(tok.decode(tok.encode(s, { parseSpecial: false }))).toBe(s.replaceAll("▁", " "));
    // Merges were learned: the corpus takes far fewer tokens than characters.
    expect(tok.encode(corpus).length).toBeLessThan(corpus.length / 2.5);
  });

  it("rejects a vocabulary too small for the characters", () => {
    expect(() => trainBpeTokenizer(corpus, { vocabSize: 260 })).toThrow(/too small/);
    expect(() => trainBpeTokenizer(corpus, { vocabSize: 100 })).toThrow(/vocabSize must be/);
  });

  it("gives the same model from an iterable of chunks cut mid-line", () => {
    function* chunks(): Generator<string> {
      for (let i = 0; i < corpus.length; i += 77) yield corpus.slice(i, i + 77);
    }
    expect(trainBpeTokenizer(chunks(), { vocabSize: V })).toEqual(bytes);
  });

  it("stops early, with a smaller model, when no pair is left to merge", () => {
    const m = trainBpeModel("abab abab", { vocabSize: 5000 });
    expect(m.pieces.length).toBeLessThan(5000);
    expect(m.trainerSpec.vocabSize).toBe(m.pieces.length);
    expect(m.pieces.map((p) => p.piece)).toContain("▁abab");
  });

  it.skipIf(!haveSpm)("encodes exactly like spm_encode with the same model", () => {
    checkWithSpm(bytes, samples);
  });

  it.skipIf(!haveShakespeare)("trains on 1 MB of tiny Shakespeare; spm_encode agrees (when installed)", () => {
    const text = readFileSync(shakespearePath, "utf8");
    const model = trainBpeTokenizer(text, { vocabSize: 2000 });
    const t = Tokenizer.fromBytes(model, "shakespeare-2000.model");
    expect(t.vocabSize).toBe(2000);
    const tail = text.slice(-20000);
    expect(t.decode(t.encode(tail))).toBe(tail);
    if (haveSpm)
      checkWithSpm(
        model,
        tail
          .split("\n")
          .filter((l) => l !== "")
          .slice(0, 300),
      );
  });
});
