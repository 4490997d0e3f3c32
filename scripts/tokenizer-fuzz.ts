// Differential fuzzing of src/tokenizer against the reference sentencepiece library.
//   node --import ./scripts/ts-loader.mjs scripts/tokenizer-fuzz.ts path/to/tokenizer.model [count] [seed]
// Needs /usr/bin/python3 with python3-sentencepiece (Debian). Prints every mismatch.
import { spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { loadTokenizer } from "../src/tokenizer/index.js";

const [modelPath = "tokenizer.model", countArg = "2000", seedArg = "1"] = process.argv.slice(2);
const tok = await loadTokenizer(modelPath);
let seed = Number(seedArg) >>> 0;
const rand = (n: number): number => {
  seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
  return seed % n;
};

// Alphabet mixing what matters: spaces, whitespace kinds, digits, ASCII, accents, CJK, emoji, ▁.
const alphabet = [
  " ",
  " ",
  " ",
  "\n",
  "\t",
  "\r",
  "\u00a0",
  "\u3000",
  "\u2581",
  "0",
  "7",
  "e",
  "t",
  "a",
  "h",
  "s",
  "T",
  "<",
  ">",
  "/",
  "s>",
  "<s>",
  "</s>",
  "<unk>",
  ".",
  ",",
  "'",
  "é",
  "e\u0301",
  "ß",
  "Ж",
  "ω",
  "中",
  "文",
  "日本",
  "한",
  "ไ",
  "ह",
  "ع",
  "😀",
  "👩‍💻",
  "🇫🇷",
  "\u0000",
  "\u007f",
  "\ufeff",
  "ﬁ",
  "Ａ",
  "the ",
  " and",
  "ing",
  "tion",
  "Hello",
  " world",
  "12",
  "  ",
  "...",
  "\uD800",
  "\uDC00",
];
const texts: string[] = [];
const count = Number(countArg);
for (let k = 0; k < count; k++) {
  let s = "";
  const n = rand(25);
  for (let i = 0; i < n; i++) {
    if (rand(10) === 0) s += String.fromCodePoint(rand(0x3000) + 1);
    else s += alphabet[rand(alphabet.length)];
  }
  texts.push(s);
}
const idSeqs: number[][] = [];
for (let k = 0; k < count; k++) {
  const seq: number[] = [];
  const n = rand(8);
  for (let i = 0; i < n; i++) {
    const r = rand(4);
    seq.push(r === 0 ? rand(tok.vocabSize) : r === 1 ? 3 + 0x80 + rand(0x80) : r === 2 ? rand(3) : rand(300));
  }
  idSeqs.push(seq);
}

// The reference library gets UTF-8, so lone surrogates arrive as U+FFFD: send them that way.
const wellFormed = (s: string): string => Buffer.from(s, "utf8").toString("utf8");
const input =
  texts.map((t) => JSON.stringify({ encode: wellFormed(t) })).join("\n") +
  "\n" +
  idSeqs.map((ids) => JSON.stringify({ decode: ids })).join("\n") +
  "\n";
const oracle = join(dirname(fileURLToPath(import.meta.url)), "spm-oracle.py");
const res = spawnSync("/usr/bin/python3", [oracle, modelPath], { input, maxBuffer: 1 << 28, encoding: "utf8" });
if (res.status !== 0) throw new Error(`oracle failed: ${res.stderr}`);
const answers = res.stdout
  .trim()
  .split("\n")
  .map((l) => JSON.parse(l));

let bad = 0;
texts.forEach((t, k) => {
  const want = answers[k].ids as number[];
  const got = tok.encode(t, { addBos: false, parseSpecial: false });
  if (JSON.stringify(got) !== JSON.stringify(want)) {
    bad++;
    console.log("ENCODE", JSON.stringify(t), "\n  want", want.join(" "), "\n  got ", got.join(" "));
  }
});
idSeqs.forEach((ids, k) => {
  const want = answers[texts.length + k].text as string;
  const got = tok.decode(ids);
  const stream = tok.createDecodeStream();
  const streamed = ids.map((id) => stream.push(id)).join("") + stream.flush();
  if (got !== want || streamed !== want) {
    bad++;
    console.log("DECODE", ids.join(" "), "\n  want", JSON.stringify(want), "\n  got ", JSON.stringify(got), JSON.stringify(streamed));
  }
});
console.log(`${texts.length} encodes, ${idSeqs.length} decodes, ${bad} mismatches`);
process.exitCode = bad === 0 ? 0 : 1;
