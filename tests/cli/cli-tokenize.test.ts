// `mobilellm tokenize`: ids and pieces against SentencePiece's own encodings (the committed
// 300-piece fixture and its reference file; MobileLLM's tokenizer from ../shared when present).
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { cli } from "./cli-helpers.js";
import { FIXTURES, SHARED } from "../helpers.js";

const MODEL = join(FIXTURES, "tokenizer", "nofallback-bpe300.model");
const refs = readFileSync(join(FIXTURES, "tokenizer", "nofallback-bpe300.refs.jsonl"), "utf8")
  .trim()
  .split("\n")
  .map((l) => JSON.parse(l) as { text: string; ids: number[]; pieces: string[]; decoded: string })
  .filter((r) => r.ids.length > 0 && r.text.length > 0)
  .slice(0, 12);

describe("mobilellm tokenize (300-piece fixture)", () => {
  it.each(refs.map((r) => [JSON.stringify(r.text), r] as const))(
    "--text %s --no-bos --json gives SentencePiece's ids and pieces",
    async (_t, ref) => {
      const r = await cli(["tokenize", "-m", MODEL, "--text", ref.text, "--no-bos", "--json"]);
      expect(r.code).toBe(0);
      expect(JSON.parse(r.stdout)).toEqual({ ids: ref.ids, pieces: ref.pieces, count: ref.ids.length });
    },
  );

  it("prepends BOS by default and prints an id/piece table", async () => {
    const ref = refs.find((x) => x.text === "a")!;
    const r = await cli(["tokenize", "-m", MODEL, "--text", "a"]);
    expect(r.stdout).toBe(` 1  "<s>"\n${String(ref.ids[0]).padStart(2)}  ${JSON.stringify(ref.pieces[0])}\n2 tokens\n`);
  });

  it("--ids decodes", async () => {
    for (const ref of refs) {
      const r = await cli(["tokenize", "-m", MODEL, "--ids", ref.ids.join(","), "--json"]);
      expect(JSON.parse(r.stdout)).toEqual({ ids: ref.ids, pieces: ref.pieces, text: ref.decoded });
    }
  });

  it.each([
    [[], /exactly one of --text TEXT or --ids/],
    [["--text", "a", "--ids", "1"], /exactly one of --text TEXT or --ids/],
    [["--ids", "1,300"], /--ids: 300 is outside the vocabulary \[0, 300\)/],
    [["--ids", "a"], /--ids expects comma-separated non-negative integers/],
    [["--text", "a", "--bogus"], /Unknown option '--bogus'/],
  ])("bad input %j exits 2 with a hint", async (args, message) => {
    const r = await cli(["tokenize", "-m", MODEL, ...args]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).toContain("mobilellm tokenize --help");
  });
});

const LLAMA = join(SHARED, "tokenizer", "tokenizer.model");
if (!existsSync(LLAMA)) console.log(`cli-tokenize: MobileLLM tokenizer test skipped (${LLAMA} is absent)`);

describe.skipIf(!existsSync(LLAMA))("mobilellm tokenize (MobileLLM's tokenizer.model)", () => {
  it("matches the reference cases, with BOS as MobileLLM's tokenizer adds it", async () => {
    const cases = readFileSync(join(SHARED, "tokenizer", "cases.jsonl"), "utf8")
      .trim()
      .split("\n")
      .slice(0, 10)
      .map((l) => JSON.parse(l) as { text: string; ids: number[]; pieces: string[] });
    for (const c of cases) {
      const r = JSON.parse((await cli(["tokenize", "-m", LLAMA, "--text", c.text, "--json"])).stdout);
      expect(r.ids).toEqual([1, ...c.ids]);
      expect(r.pieces).toEqual(["<s>", ...c.pieces]);
    }
  });
});
