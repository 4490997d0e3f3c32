// mobilellm prepare: raw text → token-id sequences in the layout `mobilellm pretrain` reads.

import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { loadTokenizer } from "../../load.js";
import { ByteTokenizer, prepare as prepareData, type Split, type TextTokenizer } from "../../train/prepare.js";
import { numberFlag, UsageError, type Command } from "../command.js";

/** `--tokenizer`: "bytes", or a tokenizer.model file / a folder holding one. */
export async function loadTextTokenizer(arg: string): Promise<{ tokenizer: TextTokenizer; file?: string }> {
  if (arg === "bytes") return { tokenizer: new ByteTokenizer() };
  if (!existsSync(arg)) throw new Error(`${arg}: tokenizer not found; pass a tokenizer.model file, a folder holding one, or "bytes"`);
  const file = statSync(arg).isDirectory() ? join(arg, "tokenizer.model") : arg;
  const tok = await loadTokenizer(arg);
  return {
    tokenizer: { encode: (text) => tok.encode(text, { addBos: false }), bosId: tok.bosId, eosId: tok.eosId, vocabSize: tok.vocabSize },
    file,
  };
}

export const prepare: Command = {
  name: "prepare",
  summary: 'Tokenize text files into training lines of L+1 ids (<out>/1/data.jsonl, {"token_ids": [...]} per line)',
  usage: "--tokenizer DIR|FILE|bytes --input FILE... --out BASEPATH --seq-len L [--split all|train|validation] [--bos]",
  options: {
    tokenizer: { type: "string", value: "DIR|FILE", description: 'tokenizer.model (or its folder), or "bytes" for UTF-8 byte tokens' },
    input: { type: "string", value: "FILE", multiple: true, description: "text file(s); repeat --input, or list files after it" },
    out: { type: "string", value: "BASEPATH", description: "output base path (data goes to BASEPATH/<node>/data.jsonl)" },
    "seq-len": { type: "string", value: "L", description: "next-token predictions per line: each line holds L+1 ids (published: 2048)" },
    bos: { type: "boolean", description: "also start every document with BOS (the published preparation does not)" },
    split: { type: "string", value: "NAME", description: "all, train (first 90% of each file) or validation (last 10%)", default: "all" },
    "validation-fraction": { type: "string", value: "F", description: "fraction of each file held out as validation", default: "0.1" },
    node: { type: "string", value: "NAME", description: "node folder under BASEPATH", default: "1" },
  },
  details: [
    "As the published data preparation: each input file is tokenized as one document that ends with EOS",
    "(and starts with BOS only with --bos); the ids of all files are concatenated and cut into lines of",
    "exactly L+1 ids, L next-token predictions each; the remainder is dropped. The validation split",
    "starts at the first newline after the (1 - F) mark of each file's bytes.",
    "",
    "Example:",
    "  mobilellm prepare --tokenizer tok/ --input corpus.txt --out data/train --seq-len 256 --split train",
  ].join("\n"),
  async run(values, positionals, { stderr }) {
    const inputs = [...((values.input as string[] | undefined) ?? []), ...positionals];
    if (values.tokenizer === undefined) throw new UsageError("give the tokenizer with --tokenizer DIR|FILE|bytes");
    if (inputs.length === 0) throw new UsageError("give the text with --input FILE...");
    if (values.out === undefined) throw new UsageError("give the output base path with --out BASEPATH");
    const seqLen = numberFlag(values, "seq-len", { integer: true, min: 1 });
    if (seqLen === undefined) throw new UsageError("give the sequence length with --seq-len L");
    const split = values.split as string;
    if (split !== "all" && split !== "train" && split !== "validation")
      throw new UsageError(`--split must be all, train or validation, got ${JSON.stringify(split)}`);
    const fraction = numberFlag(values, "validation-fraction", { min: 0, max: 1 })!;
    const { tokenizer, file } = await loadTextTokenizer(values.tokenizer as string);
    const r = prepareData(tokenizer, {
      inputs,
      out: values.out as string,
      seqLen,
      bos: values.bos === true,
      split: split as Split,
      validationFraction: fraction,
      node: values.node as string,
      ...(file ? { tokenizerFile: file } : {}),
    });
    stderr.write(
      `${r.file}: ${r.sequences} lines of ${seqLen + 1} tokens (${seqLen} predictions each; ${r.tokens} tokens from ${r.bytes} bytes of text, ` +
        `${(r.bytes / Math.max(1, r.tokens + r.droppedTokens)).toFixed(2)} bytes/token; ${r.droppedTokens} trailing tokens dropped)\n`,
    );
  },
};
