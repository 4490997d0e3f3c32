// A project-made SentencePiece BPE model (tests/fixtures/tokenizer/) against reference encodings
// from the sentencepiece library, and against Debian's spm_encode when it is installed.
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { parseModelProto, PieceType, serializeModelProto, Tokenizer } from "../../src/tokenizer/index.js";
import { loadTokenizer } from "../../src/load.js";

const here = dirname(dirname(fileURLToPath(import.meta.url)));
const fixtures = join(here, "fixtures", "tokenizer");
const modelPath = join(fixtures, "shakespeare-bpe800.model");

interface Ref {
  text: string;
  ids: number[];
  pieces: string[];
  decoded: string;
}
const readRefs = (name: string): Ref[] =>
  readFileSync(join(fixtures, name), "utf8")
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => JSON.parse(l) as Ref);
const refs = readRefs("shakespeare-bpe800.refs.jsonl");

const haveSpm = spawnSync("spm_encode", ["--help"]).error === undefined;
if (!haveSpm)
  console.warn("tokenizer-fixture.test: spm_encode not installed (apt-get install sentencepiece); skipping the live comparison");

describe("project SentencePiece model shakespeare-bpe800", async () => {
  const tok = await loadTokenizer(modelPath);

  it("reads the model layout", () => {
    expect(tok.vocabSize).toBe(800);
    expect([tok.unkId, tok.bosId, tok.eosId, tok.padId]).toEqual([0, 1, 2, -1]);
    expect(tok.idToPiece(3)).toBe("<sep>");
    expect(tok.model.pieces[3]!.type).toBe(PieceType.USER_DEFINED);
    expect(tok.idToPiece(4)).toBe("<0x00>");
    expect(tok.model.trainerSpec.byteFallback).toBe(true);
    expect(tok.model.normalizerSpec.name).toBe("identity");
    expect(refs.length).toBe(42);
    expect(readRefs("nofallback-bpe300.refs.jsonl").length).toBe(42);
  });

  it("adds BOS/EOS and splits special-token strings like Hugging Face LlamaTokenizer", () => {
    const raw = (s: string) => tok.encode(s, { addBos: false, parseSpecial: false });
    expect(tok.encode("To be")).toEqual([1, ...raw("To be")]);
    expect(tok.encode("To be", { addEos: true })).toEqual([1, ...raw("To be"), 2]);
    // Each text segment between special tokens is encoded on its own (own dummy prefix).
    expect(tok.encode("To be<s>or not</s>", { addBos: false })).toEqual([...raw("To be"), 1, ...raw("or not"), 2]);
    expect(tok.encode("a <unk> b", { addBos: false })).toEqual([...raw("a "), 0, ...raw(" b")]);
    expect(tok.encode("<s></s>", { addBos: false })).toEqual([1, 2]);
  });
});

/** Exact agreement with the reference encodings (and live spm_encode) for one fixture model. */
function referenceTests(modelFile: string, refsFile: string): void {
  describe(`${modelFile} matches sentencepiece`, async () => {
    const modelPath = join(fixtures, modelFile);
    const refs = readRefs(refsFile);
    const tok = await loadTokenizer(modelPath);

    it("encodes and decodes every reference string exactly", () => {
      for (const r of refs) {
        const got = tok.encodeWithPieces(r.text, { addBos: false, parseSpecial: false });
        expect({ text: r.text, ids: got.ids }).toEqual({ text: r.text, ids: r.ids });
        expect(got.pieces).toEqual(r.pieces);
        expect(tok.decode(r.ids)).toBe(r.decoded);
        const stream = tok.createDecodeStream();
        expect(r.ids.map((id) => stream.push(id)).join("") + stream.flush()).toBe(r.decoded);
      }
    });

    it.skipIf(!haveSpm)("matches spm_encode on every single-line string", () => {
      const lines = refs.map((r) => r.text).filter((t) => !/[\n\r\0]/.test(t));
      const input = lines.join("\n") + "\n";
      const run = (format: string): string[] =>
        execFileSync("spm_encode", [`--model=${modelPath}`, `--output_format=${format}`], { input, encoding: "utf8" })
          .split("\n")
          .slice(0, lines.length);
      const ids = run("id");
      const pieces = run("piece");
      lines.forEach((text, k) => {
        const got = tok.encodeWithPieces(text, { addBos: false, parseSpecial: false });
        expect({ text, ids: got.ids.join(" ") }).toEqual({ text, ids: ids[k] });
        // spm_encode prints the covered text instead of "<unk>" for an unknown piece.
        if (!got.ids.includes(tok.unkId)) expect(got.pieces.join(" ")).toBe(pieces[k]);
      });
    });
  });
}

referenceTests("shakespeare-bpe800.model", "shakespeare-bpe800.refs.jsonl");
// Without byte fallback: unknown characters become <unk> (a run of them one <unk>), which
// decodes as " \u2047 ".
referenceTests("nofallback-bpe300.model", "nofallback-bpe300.refs.jsonl");

describe("UNUSED pieces are split back into the pieces that formed them", () => {
  // The fixture with some common pieces marked UNUSED (as a model can mark pieces it must never
  // emit). Expected pieces from spm_encode 0.1.97 on this exact model.
  const m = parseModelProto(new Uint8Array(readFileSync(modelPath)), modelPath);
  for (const piece of ["▁the", "he", "in", "▁t", "ou", "▁s", "ll", "oo", "▁and"]) {
    m.pieces.find((p) => p.piece === piece)!.type = PieceType.UNUSED;
  }
  const bytes = serializeModelProto(m);
  const tok = Tokenizer.fromBytes(bytes, "unused.model");

  it("matches sentencepiece", () => {
    const pieces = tok.encodePieces("the thin hello soon and", { addBos: false, parseSpecial: false });
    expect(pieces.join(" ")).toBe("▁ t h e ▁th i n ▁he l l o ▁so on ▁a nd");
  });

  it.skipIf(!haveSpm)("matches spm_encode on the reference strings", () => {
    const file = join(mkdtempSync(join(tmpdir(), "mobilellm-unused-")), "unused.model");
    writeFileSync(file, bytes);
    const lines = refs.map((r) => r.text).filter((t) => !/[\n\r\0]/.test(t));
    const ids = execFileSync("spm_encode", [`--model=${file}`, "--output_format=id"], {
      input: lines.join("\n") + "\n",
      encoding: "utf8",
    }).split("\n");
    lines.forEach((text, k) => {
      expect({ text, ids: tok.encode(text, { addBos: false, parseSpecial: false }).join(" ") }).toEqual({ text, ids: ids[k] });
    });
  });
});
