// mobilellm ppl: perplexity with MobileLLM's eval.py windows (non-overlapping seqlen windows,
// each from position 0), e.g. on the WikiText-2 test split.

import { basename, resolve } from "node:path";
import { readCorpusText, readIdsFile } from "../../eval/data.js";
import { perplexity } from "../../eval/perplexity.js";
import { compactNumber, ProgressLine } from "../../eval/progress.js";
import { loadTokenizer } from "../../tokenizer/index.js";
import { isGgufPath, loadModel, readConfig } from "../../load.js";
import { numberFlag, UsageError, type Command } from "../command.js";
import { dtypeFlag, DTYPE_OPTION, resolveModelArg } from "../model-arg.js";

export const ppl: Command = {
  name: "ppl",
  summary: "Perplexity of a text corpus (MobileLLM eval.py windows)",
  usage: "[--model DIR] (--data FILE | --ids FILE) [--seqlen N] [--strict] [--limit-windows N] [--resume FILE] [--dtype TYPE] [--json]",
  options: {
    model: { type: "string", short: "m", value: "DIR", description: "checkpoint folder" },
    data: { type: "string", value: "FILE", description: "corpus: .txt, .jsonl (text field per row) or .parquet (text column), rows joined with blank lines" },
    ids: { type: "string", value: "FILE", description: "JSON array of token ids instead of --data (no tokenization)" },
    tokenizer: { type: "string", value: "PATH", description: "tokenizer folder or tokenizer.model (default: the model folder)" },
    seqlen: { type: "string", value: "N", description: "window length in tokens", default: "2048" },
    strict: { type: "boolean", description: "average over the nsamples*(seqlen-1) predictions actually made" },
    "limit-windows": { type: "string", value: "N", description: "evaluate only the first N windows" },
    resume: { type: "string", value: "FILE", description: "save per-window losses here after each window; rerun to continue" },
    backend: { type: "string", value: "NAME", description: "kernel backend: wasm (SIMD) or ts (reference)", default: "wasm" },
    dtype: DTYPE_OPTION,
    json: { type: "boolean", description: "print one JSON object" },
  },
  details: [
    "Algorithm (MobileLLM eval.py): tokenize the whole corpus once with BOS, cut it into",
    "floor(n/seqlen) windows, average each window's next-token cross-entropy, and report",
    "exp(sum(loss_i*seqlen) / (nsamples*seqlen)). --strict divides by the predictions made,",
    "nsamples*(seqlen-1); the two agree up to rounding (see src/eval/perplexity.ts).",
    "",
    "Example: mobilellm ppl --model MobileLLM-125M --data wikitext-2-raw-v1/test-00000-of-00001.parquet",
  ].join("\n"),
  async run(values, _positionals, { stdout, stderr, signal }) {
    if ((values.data === undefined) === (values.ids === undefined)) throw new UsageError("give the corpus with --data FILE or token ids with --ids FILE (one of them)");
    const seqlen = numberFlag(values, "seqlen", { integer: true, min: 2 })!;
    const limitWindows = numberFlag(values, "limit-windows", { integer: true, min: 1 });
    const backend = values.backend as string;
    if (backend !== "ts" && backend !== "wasm") throw new UsageError(`--backend must be ts or wasm, got ${JSON.stringify(backend)}`);
    const dtype = dtypeFlag(values);
    const modelDir = await resolveModelArg(values.model as string | undefined, { signal });
    const maxP = isGgufPath(modelDir) ? Infinity : readConfig(modelDir, false).maxPositions; // a GGUF's context is checked at load
    if (seqlen > maxP) throw new UsageError(`--seqlen ${seqlen} exceeds the model's ${maxP}-position context (max_position_embeddings)`);

    let ids: number[];
    if (values.ids !== undefined) {
      ids = readIdsFile(values.ids as string);
    } else {
      const tokenizer = await loadTokenizer((values.tokenizer as string | undefined) ?? modelDir);
      ids = tokenizer.encode(await readCorpusText(values.data as string), { addBos: true });
    }
    const model = await loadModel(modelDir, { backend, dtype, maxPositions: seqlen, log: (m) => stderr.write(m + "\n") });

    const progress = new ProgressLine(stderr);
    const t0 = Date.now();
    const result = await perplexity(model, ids, {
      seqlen, strict: Boolean(values.strict), signal,
      ...(limitWindows !== undefined ? { limitWindows } : {}),
      ...(values.resume !== undefined ? { resumeFile: values.resume as string } : {}),
      onProgress: (p) => progress.update(
        `windows ${p.done}/${p.total}  ppl ${Number.isNaN(p.ppl) ? "-" : p.ppl.toFixed(3)}  ${compactNumber(p.tokensThisRun / ((Date.now() - t0) / 1000))} tok/s`),
    }).finally(() => progress.done());

    const source = (values.data ?? values.ids) as string;
    if (values.json) {
      stdout.write(JSON.stringify({ model: modelDir, data: source, ...result }) + "\n");
      return;
    }
    stdout.write([
      `| model | data | seqlen | windows | tokens | ppl${result.strict ? " (strict)" : ""} |`,
      "| --- | --- | --- | --- | --- | --- |",
      `| ${basename(resolve(modelDir))} | ${basename(source)} | ${seqlen} | ${result.nsamples} | ${result.streamLength} | ${result.ppl.toFixed(4)} |`,
      "",
    ].join("\n"));
  },
};
