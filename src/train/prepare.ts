// From raw text to the seed's training-data layout (see data.ts), as the published data
// preparation does it: tokenize each input file as one document, end every document with EOS (no
// BOS unless asked for), concatenate, cut into lines of L + 1 ids (L next-token predictions each:
// 2049-id lines for the published L = 2048) and write one `{"token_ids": [...]}` line per sequence
// to `<out>/<node>/data.jsonl`. The last partial line is dropped (reported). A `prepare.json`
// beside it records what was done.
//
// Train/validation split (the convention of ../shared/data/README.md): the validation part of a
// file is its last `validationFraction` of the bytes, starting at the first newline after the mark.

import { copyFileSync, existsSync, mkdirSync, readFileSync, statSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { decodeUtf8File } from "../util/utf8.js";
import { writeTextAtomic } from "./checkpoint.js";

/** Anything that turns text into token ids (the project tokenizer, or `ByteTokenizer`). */
export interface TextTokenizer {
  /** The ids of `text`, without BOS or EOS. */
  encode(text: string): number[];
  bosId: number;
  eosId: number;
  vocabSize?: number;
}

/** UTF-8 bytes as tokens: id = byte + 3 (0 unk, 1 bos, 2 eos), vocabulary 259. For tests and experiments. */
export class ByteTokenizer implements TextTokenizer {
  readonly vocabSize = 259;
  readonly bosId = 1;
  readonly eosId = 2;
  encode(text: string): number[] {
    return Array.from(new TextEncoder().encode(text), (b) => b + 3);
  }
}

export type Split = "all" | "train" | "validation";

export interface PrepareOptions {
  inputs: string[];
  out: string;
  /** L: next-token predictions per line; each line holds L + 1 ids. */
  seqLen: number;
  /** Start every document with BOS too (default false: the published preparation has none). */
  bos?: boolean;
  split?: Split;
  /** Fraction of each file's bytes held out for validation (default 0.1). */
  validationFraction?: number;
  node?: string;
  /** Tokenizer file to copy beside the data (pretrain copies it into its checkpoints). */
  tokenizerFile?: string;
}

export interface PrepareResult {
  file: string;
  sequences: number;
  tokens: number;
  droppedTokens: number;
  bytes: number;
}

/** The part of `text` a split keeps: validation starts at the first newline after the fraction mark. */
export function splitText(text: string, split: Split, fraction: number): string {
  if (split === "all") return text;
  const bytes = Buffer.from(text, "utf8");
  const mark = Math.floor(bytes.length * (1 - fraction));
  let cut = bytes.indexOf(10, mark);
  cut = cut < 0 ? bytes.length : cut + 1;
  return (split === "train" ? bytes.subarray(0, cut) : bytes.subarray(cut)).toString("utf8");
}

export function prepare(tokenizer: TextTokenizer, o: PrepareOptions): PrepareResult {
  if (!(Number.isInteger(o.seqLen) && o.seqLen >= 1)) throw new Error(`--seq-len must be an integer >= 1, got ${o.seqLen}`);
  const T = o.seqLen + 1; // ids per line
  if (tokenizer.eosId < 0) throw new Error("the tokenizer has no EOS piece, which separates the documents");
  if (o.bos && tokenizer.bosId < 0) throw new Error("--bos: the tokenizer has no BOS piece");
  if (o.inputs.length === 0) throw new Error("no input files: pass --input FILE...");
  const ids: number[] = [];
  let bytes = 0;
  for (const file of o.inputs) {
    if (!existsSync(file) || !statSync(file).isFile()) throw new Error(`${file}: input text file not found`);
    const text = splitText(decodeUtf8File(readFileSync(file), file), o.split ?? "all", o.validationFraction ?? 0.1);
    bytes += Buffer.byteLength(text, "utf8");
    if (o.bos) ids.push(tokenizer.bosId);
    for (const id of tokenizer.encode(text)) ids.push(id);
    ids.push(tokenizer.eosId); // documents are separated by EOS
  }
  const sequences = Math.floor(ids.length / T);
  if (sequences === 0)
    throw new Error(`the inputs give ${ids.length} tokens, fewer than one line of ${T} (--seq-len ${o.seqLen} + 1); lower --seq-len`);
  const dir = join(o.out, o.node ?? "1");
  if (existsSync(o.out) && !statSync(o.out).isDirectory())
    throw new Error(`${o.out}: is a file; --out names the data folder (created if missing)`);
  mkdirSync(dir, { recursive: true });
  const lines: string[] = [];
  for (let i = 0; i < sequences; i++) lines.push(JSON.stringify({ token_ids: ids.slice(i * T, (i + 1) * T) }));
  const file = join(dir, "data.jsonl");
  writeTextAtomic(file, lines.join("\n") + "\n");
  if (o.tokenizerFile) copyFileSync(o.tokenizerFile, join(o.out, "tokenizer.model"));
  const result: PrepareResult = { file, sequences, tokens: sequences * T, droppedTokens: ids.length - sequences * T, bytes };
  writeTextAtomic(
    join(o.out, "prepare.json"),
    JSON.stringify(
      {
        inputs: o.inputs.map((f) => basename(f)),
        split: o.split ?? "all",
        validation_fraction: o.validationFraction ?? 0.1,
        seq_len: o.seqLen,
        line_length: T,
        bos: o.bos ?? false,
        eos_between_documents: true,
        vocab_size: tokenizer.vocabSize ?? null,
        tokenizer: o.tokenizerFile ? resolve(o.tokenizerFile) : null,
        sequences,
        tokens: result.tokens,
        dropped_tokens: result.droppedTokens,
        text_bytes: bytes,
      },
      null,
      2,
    ) + "\n",
  );
  return result;
}
