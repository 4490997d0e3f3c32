// mobilellm ppl: perplexity with MobileLLM's eval.py windows (non-overlapping seqlen windows,
// each from position 0), e.g. on the WikiText-2 test split.

import { basename, resolve } from "node:path";
import { readCorpusText, readIdsFile } from "../../eval/data.js";
import { perplexity } from "../../eval/files.js";
import { createProgress } from "../../util/progress.js";
import { loadTokenizer } from "../../load.js";
import { checkModelFolder, isGgufPath, loadModel } from "../../load.js";
import { numberFlag, UsageError, type Command } from "../command.js";
import { LOAD_OPTIONS, loadFlags, resolveModelArg } from "../model-arg.js";

/** MobileLLM eval.py's window length. */
const DEFAULT_SEQLEN = 2048;

export const ppl: Command = {
  name: "ppl",
  summary: "Perplexity of a text corpus (MobileLLM eval.py windows)",
  usage: "[--model DIR] (--data FILE | --ids FILE) [--seqlen N] [--strict] [--limit-windows N] [--resume FILE] [--dtype TYPE] [--json]",
  options: {
    model: { type: "string", short: "m", value: "DIR", description: "checkpoint folder" },
    data: {
      type: "string",
      value: "FILE",
      description: "corpus: .txt, .jsonl (text field per row) or .parquet (text column), rows joined with blank lines",
    },
    ids: { type: "string", value: "FILE", description: "JSON array of token ids instead of --data (no tokenization)" },
    tokenizer: { type: "string", value: "PATH", description: "tokenizer folder or tokenizer.model (default: the model folder)" },
    seqlen: {
      type: "string",
      value: "N",
      description: "window length in tokens (default: 2048 as in eval.py, or the model's context when smaller)",
    },
    strict: { type: "boolean", description: "average over the nsamples*(seqlen-1) predictions actually made" },
    "limit-windows": { type: "string", value: "N", description: "evaluate only the first N windows" },
    resume: { type: "string", value: "FILE", description: "save per-window losses here after each window; rerun to continue" },
    ...LOAD_OPTIONS,
    quiet: { type: "boolean", short: "q", description: "no progress on stderr (by default a bar on a terminal, else a line every 10 s)" },
    json: { type: "boolean", description: "print one JSON object" },
  },
  details: [
    "Algorithm (MobileLLM eval.py): tokenize the whole corpus once with BOS, cut it into",
    "floor(n/seqlen) windows, average each window's next-token cross-entropy, and report",
    "exp(sum(loss_i*seqlen) / (nsamples*seqlen)). --strict divides by the predictions made,",
    "nsamples*(seqlen-1); the two agree up to rounding (see src/eval/perplexity.ts).",
    "",
    "Examples (WikiText-2's test split, the wikitext-2-raw-v1 parquet file from the Hugging Face hub):",
    "  mobilellm ppl --data wikitext-2-raw-v1/test-00000-of-00001.parquet",
    "  mobilellm ppl -m facebook/MobileLLM-125M --data wikitext-2-raw-v1/test-00000-of-00001.parquet --resume ppl-125M.json",
  ].join("\n"),
  async run(values, _positionals, { stdout, stderr, signal }) {
    if ((values.data === undefined) === (values.ids === undefined))
      throw new UsageError("give the corpus with --data FILE or token ids with --ids FILE (one of them)");
    const givenSeqlen = numberFlag(values, "seqlen", { integer: true, min: 2 });
    const limitWindows = numberFlag(values, "limit-windows", { integer: true, min: 1 });
    const load = loadFlags(values);
    const modelDir = await resolveModelArg(values.model as string | undefined, { signal, quiet: values.quiet === true });
    const maxP = isGgufPath(modelDir) ? Infinity : (await checkModelFolder(modelDir)).maxPositions; // a GGUF's context is checked at load
    if (givenSeqlen !== undefined && givenSeqlen > maxP) {
      throw new UsageError(`--seqlen ${givenSeqlen} exceeds the model's ${maxP}-position context (max_position_embeddings)`);
    }
    const seqlen = givenSeqlen ?? Math.min(DEFAULT_SEQLEN, maxP);
    if (givenSeqlen === undefined && seqlen < DEFAULT_SEQLEN) {
      stderr.write(
        `seqlen ${seqlen}: the model's context (max_position_embeddings) is shorter than eval.py's ${DEFAULT_SEQLEN}; ` +
          `perplexities at different seqlen are not comparable\n`,
      );
    }

    let ids: number[];
    if (values.ids !== undefined) {
      ids = readIdsFile(values.ids as string);
    } else {
      const tokenizer = await loadTokenizer((values.tokenizer as string | undefined) ?? modelDir);
      ids = tokenizer.encode(await readCorpusText(values.data as string), { addBos: true });
    }
    await using model = await loadModel(modelDir, { ...load, maxPositions: seqlen, log: (m) => stderr.write(m + "\n") });

    // Progress counts this run's tokens (resumed windows are done already); the detail has the windows.
    let progress: ReturnType<typeof createProgress> | undefined;
    let windowsDone = 0,
      windowsTotal = 0;
    const resumeFile = values.resume as string | undefined;
    let result: Awaited<ReturnType<typeof perplexity>>;
    try {
      result = await perplexity(model, ids, {
        seqlen,
        strict: Boolean(values.strict),
        signal,
        ...(limitWindows !== undefined ? { limitWindows } : {}),
        ...(resumeFile !== undefined ? { resumeFile } : {}),
        onProgress: (p) => {
          windowsDone = p.done;
          windowsTotal = p.total;
          const resumed = p.done - Math.floor(p.tokensThisRun / seqlen); // windows taken from the resume file
          progress ??= createProgress({
            label: "ppl",
            total: (p.total - resumed) * seqlen,
            unit: "tok",
            stream: stderr,
            quiet: values.quiet === true,
          });
          progress.update(p.tokensThisRun, `windows ${p.done}/${p.total}  ppl ${Number.isNaN(p.ppl) ? "-" : p.ppl.toFixed(3)}`);
        },
      });
    } catch (e) {
      progress?.done();
      if (signal.aborted) {
        stderr.write(
          resumeFile !== undefined
            ? `interrupted: ${windowsDone} of ${windowsTotal} windows are saved in ${resumeFile}; run the same command again to continue from there\n`
            : `interrupted after ${windowsDone} of ${windowsTotal} windows; nothing was saved. Add --resume FILE to keep finished windows across runs\n`,
        );
      }
      throw e;
    }
    progress?.done();

    const source = (values.data ?? values.ids) as string;
    if (values.json) {
      stdout.write(JSON.stringify({ model: modelDir, data: source, ...result }) + "\n");
      return;
    }
    stdout.write(
      [
        `| model | data | seqlen | windows | tokens | ppl${result.strict ? " (strict)" : ""} |`,
        "| --- | --- | --- | --- | --- | --- |",
        `| ${basename(resolve(modelDir))} | ${basename(source)} | ${seqlen} | ${result.nsamples} | ${result.streamLength} | ${result.ppl.toFixed(4)} |`,
        "",
      ].join("\n"),
    );
  },
};
