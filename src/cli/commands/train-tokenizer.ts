// mobilellm train-tokenizer: learn a BPE vocabulary from text and write a SentencePiece
// tokenizer.model (byte fallback, MobileLLM's normalization), loadable here and by sentencepiece.

import { existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { Tokenizer } from "../../tokenizer/tokenizer.js";
import { trainBpeTokenizer } from "../../tokenizer/train.js";
import { splitText } from "../../train/prepare.js";
import { decodeUtf8File } from "../../util/utf8.js";
import { numberFlag, UsageError, type Command } from "../command.js";

export const trainTokenizer: Command = {
  name: "train-tokenizer",
  summary: "Train a SentencePiece-compatible BPE tokenizer.model on text files",
  usage: "--input FILE... --vocab-size N --out FILE [--split all|train] [--validation-fraction F] [--force]",
  options: {
    input: { type: "string", value: "FILE", multiple: true, description: "text file(s); repeat --input, or list files after it" },
    "vocab-size": { type: "string", value: "N", description: "pieces in the model, including <unk> <s> </s> and the 256 byte pieces" },
    out: { type: "string", value: "FILE", description: "where to write tokenizer.model" },
    split: { type: "string", value: "NAME", description: "all, or train (each file without its last validation fraction)", default: "all" },
    "validation-fraction": { type: "string", value: "F", description: "fraction of each file held out when --split train", default: "0.1" },
    force: { type: "boolean", description: "overwrite an existing output file" },
  },
  details: [
    "The model is BPE with byte fallback and MobileLLM's normalization (identity normalizer, dummy-prefix",
    "space, whitespace as U+2581, split digits). Lines are the training units.",
    "",
    "Example:",
    "  mobilellm train-tokenizer --input corpus.txt --split train --vocab-size 2048 --out tok/tokenizer.model",
  ].join("\n"),
  async run(values, positionals, { stderr }) {
    const inputs = [...((values.input as string[] | undefined) ?? []), ...positionals];
    if (inputs.length === 0) throw new UsageError("give the text with --input FILE...");
    const vocabSize = numberFlag(values, "vocab-size", { integer: true, min: 260 });
    if (vocabSize === undefined) throw new UsageError("give the vocabulary size with --vocab-size N (at least 260)");
    const out = values.out as string | undefined;
    if (out === undefined) throw new UsageError("give the output file with --out FILE");
    if (existsSync(out) && !values.force) throw new Error(`${out} already exists; pass --force to overwrite it`);
    const split = values.split as string;
    if (split !== "all" && split !== "train") throw new UsageError(`--split must be all or train, got ${JSON.stringify(split)}`);
    const fraction = numberFlag(values, "validation-fraction", { min: 0, max: 1 })!;

    const texts = inputs.map((file) => {
      if (!existsSync(file) || !statSync(file).isFile()) throw new Error(`${file}: input text file not found`);
      return splitText(decodeUtf8File(readFileSync(file), file), split, fraction);
    });
    const t0 = performance.now();
    const model = trainBpeTokenizer(texts, { vocabSize });
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out + ".tmp", model);
    renameSync(out + ".tmp", out); // never leave a half-written model behind
    const bytes = texts.reduce((n, t) => n + Buffer.byteLength(t, "utf8"), 0);
    const pieces = Tokenizer.fromBytes(model, out).vocabSize; // smaller than asked when the text ran out of pairs
    const short = pieces < vocabSize ? ` (the text ran out of pairs to merge before ${vocabSize})` : "";
    stderr.write(
      `${out}: ${pieces}-piece BPE tokenizer${short} from ${bytes} bytes of text in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`,
    );
  },
};
