// `mobilellm train-tokenizer`, and generation from the embedded default model without --model.
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadTokenizer } from "../../src/load.js";
import { cli } from "./cli-helpers.js";

const tmp = mkdtempSync(join(tmpdir(), "mobilellm-train-tok-"));
// A small corpus written here (no external data): a few repeated English sentences with digits.
const corpus =
  Array.from({ length: 200 }, (_, i) => `Line ${i}: the quick brown fox jumps over the lazy dog, and the dog sleeps in the sun.`).join(
    "\n",
  ) + "\n";
writeFileSync(join(tmp, "corpus.txt"), corpus);

describe("mobilellm train-tokenizer", () => {
  it("writes a tokenizer.model that loads and round-trips, holding out the validation split", async () => {
    const out = join(tmp, "tok", "tokenizer.model");
    const r = await cli(["train-tokenizer", "--input", join(tmp, "corpus.txt"), "--vocab-size", "400", "--split", "train", "--out", out]);
    expect(r.code).toBe(0);
    const heldOut = corpus.length - corpus.indexOf("\n", Math.floor(corpus.length * 0.9)) - 1;
    const tok = await loadTokenizer(out);
    // this small corpus runs out of pairs before 400 pieces; the message says how many it made
    expect(tok.vocabSize).toBeGreaterThan(300);
    expect(tok.vocabSize).toBeLessThanOrEqual(400);
    expect(r.stderr).toContain(`${tok.vocabSize}-piece BPE tokenizer`);
    expect(r.stderr).toContain(`from ${corpus.length - heldOut} bytes`);
    const text = "the quick brown fox 42";
    const ids = tok.encode(text);
    expect(ids[0]).toBe(1); // BOS
    expect(tok.idToPiece(ids[1]!)).toBe("\u2581the"); // whole words were learnt
    expect(ids.length).toBeLessThan(10);
    expect(tok.decode(ids)).toBe(text);
  });

  it("refuses to overwrite without --force, and rejects bad values with exit 2", async () => {
    const out = join(tmp, "existing.model");
    writeFileSync(out, "keep me");
    await expect(cli(["train-tokenizer", "--input", join(tmp, "corpus.txt"), "--vocab-size", "300", "--out", out])).rejects.toThrowError(
      /existing\.model already exists; pass --force/,
    );
    expect(readFileSync(out, "utf8")).toBe("keep me");
    const bad = await cli(["train-tokenizer", "--input", join(tmp, "corpus.txt"), "--vocab-size", "100", "--out", join(tmp, "x.model")]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--vocab-size expects an integer >= 260/);
    expect(existsSync(join(tmp, "x.model"))).toBe(false);
  });
});

describe("the embedded default model", () => {
  it("generates text without --model, reproducibly with a seed", async () => {
    const args = ["generate", "--prompt", "ROMEO:", "-n", "20", "--temperature", "0.8", "--top-k", "40", "--seed", "1", "--json"];
    const a = JSON.parse((await cli(args)).stdout),
      b = JSON.parse((await cli(args)).stdout);
    expect(a.generated_tokens).toBe(20);
    expect(a.text.length).toBeGreaterThan(20);
    expect(a.ids).toEqual(b.ids);
  });
});
