// mobilellm generate: continue a prompt, streaming the text to stdout as it is produced.
// Decoding defaults to the model folder's generation_config.json when it sets do_sample (as
// transformers does), else greedy; the same rule as generate() in the library.

import { existsSync } from "node:fs";
import { join } from "node:path";
import { generate as runGeneration, type GenerateOptions, type TextCodec } from "../../generate/generate.js";
import { HubError, isHubId } from "../../io/hub.js";
import { checkModelFolder, isGgufPath, loadModel, readConfig } from "../../load.js";
import { loadTokenizer } from "../../load.js";
import { idsFlag, numberFlag, unescapeFlag, UsageError, type Command } from "../command.js";
import { LOAD_OPTIONS, loadFlags, resolveModelArg } from "../model-arg.js";

/** The folder's SentencePiece tokenizer.model (a GGUF's own tokenizer), or null when it has none (then: ids only). */
async function loadCodec(folder: string): Promise<TextCodec | null> {
  if (isGgufPath(folder)) return loadTokenizer(folder);
  return existsSync(join(folder, "tokenizer.model")) ? loadTokenizer(folder) : null;
}

export const generate: Command = {
  name: "generate",
  summary: "Continue a prompt with the model, streaming the text",
  usage:
    "[--model DIR] (--prompt TEXT | --ids 1,2,3) [--max-new-tokens N] [--temperature T] [--top-k K] [--top-p P] " +
    "[--min-p P] [--repetition-penalty R] [--seed S] [--stop STR]... [--backend ts|wasm] [--threads N] [--dtype auto|f32|f16|bf16|q8_0|q4_0] [--json]",
  options: {
    model: { type: "string", short: "m", value: "DIR", description: "checkpoint folder (config.json, weights, tokenizer.model) or hub id" },
    prompt: { type: "string", short: "p", value: "TEXT", description: "prompt text (needs the folder's tokenizer; BOS is prepended)" },
    ids: { type: "string", value: "IDS", description: "prompt as comma-separated token ids, instead of --prompt" },
    "max-new-tokens": { type: "string", short: "n", value: "N", description: "tokens to generate at most", default: "32" },
    temperature: { type: "string", short: "t", value: "T", description: "sampling temperature; 0 = greedy (default: see Decoding below)" },
    "top-k": { type: "string", value: "K", description: "sample from the K most likely tokens (0 = off)" },
    "top-p": { type: "string", value: "P", description: "nucleus sampling: smallest set with probability >= P (1 = off)" },
    "min-p": { type: "string", value: "P", description: "drop tokens below P times the top probability (0 = off)" },
    "repetition-penalty": { type: "string", value: "R", description: "penalize tokens already in the context (1 = off)" },
    seed: { type: "string", short: "s", value: "S", description: "sampling seed, an integer (default: random, printed with the stats)" },
    stop: {
      type: "string",
      value: "STR",
      description: "stop when the text contains STR (repeatable; not printed; \\n \\t \\xHH \\uHHHH escapes)",
      multiple: true,
    },
    ...LOAD_OPTIONS,
    quiet: { type: "boolean", short: "q", description: "no download progress on stderr" },
    json: { type: "boolean", description: "print one JSON object at the end instead of streaming" },
  },
  details: [
    "Decoding: flags not given take the model folder's generation_config.json when it sets",
    "do_sample: true (its temperature, top_k, top_p; transformers' defaults 1, 50, 1 for missing ones),",
    "as transformers does; otherwise greedy. generate() in the library follows the same rule.",
    "",
    "Examples:",
    '  mobilellm generate --prompt "ROMEO:" -n 20',
    "  mobilellm generate --ids 1,450,1024 --temperature 0.8 --top-p 0.9 --seed 42 --json",
    '  mobilellm generate --model facebook/MobileLLM-125M --prompt "The capital of France is" -n 20',
    '  mobilellm generate --prompt "ROMEO:" --dtype q8_0',
    "",
    "Text goes to stdout as it is produced (token ids when the folder has no tokenizer); prompt and",
    "speed statistics go to stderr. Ctrl-C stops after the current token.",
  ].join("\n"),

  async run(values, _positionals, { stdout, stderr, signal }) {
    // Check every flag before loading anything.
    if (values.ids !== undefined && values.prompt !== undefined) throw new UsageError("give either --prompt or --ids, not both");
    if (values.ids === undefined && values.prompt === undefined) throw new UsageError("give the prompt with --prompt TEXT or --ids 1,2,3");
    const promptIds = values.ids !== undefined ? idsFlag(values.ids as string) : null;
    const load = loadFlags(values);
    const options: GenerateOptions = {
      maxNewTokens: numberFlag(values, "max-new-tokens", { integer: true, min: 1 })!,
      signal,
    };
    const temperature = numberFlag(values, "temperature", { min: 0 });
    if (temperature !== undefined) options.temperature = temperature;
    const topK = numberFlag(values, "top-k", { integer: true, min: 0 });
    const topP = numberFlag(values, "top-p", { min: 0 });
    const minP = numberFlag(values, "min-p", { min: 0, max: 1 });
    const repetitionPenalty = numberFlag(values, "repetition-penalty", {});
    const seed = numberFlag(values, "seed", { integer: true, min: 0, max: 0xffffffff, hint: "leave --seed out for a random seed" });
    if (topP !== undefined && !(topP > 0 && topP <= 1))
      throw new UsageError(`--top-p expects a number in (0, 1], got ${JSON.stringify(values["top-p"])}`);
    if (repetitionPenalty !== undefined && !(repetitionPenalty > 0)) {
      throw new UsageError(
        `--repetition-penalty expects a number > 0 (1 = off, 1.1-1.3 is typical), got ${JSON.stringify(values["repetition-penalty"])}`,
      );
    }
    if (topK !== undefined) options.topK = topK;
    if (topP !== undefined) options.topP = topP;
    if (minP !== undefined) options.minP = minP;
    if (repetitionPenalty !== undefined) options.repetitionPenalty = repetitionPenalty;
    if (seed !== undefined) options.seed = seed;
    const stops = ((values.stop as string[] | undefined) ?? []).map((s) => unescapeFlag(s, "stop"));
    if (stops.some((s) => s === "")) throw new UsageError("--stop needs a non-empty string");

    const N = options.maxNewTokens!;
    const modelArg = values.model as string | undefined,
      quiet = values.quiet === true;
    if (modelArg !== undefined && isHubId(modelArg)) {
      // A hub model: check the prompt against its context before downloading the weights
      // (config.json and tokenizer.model are small, and come first).
      const context = readConfig(await resolveModelArg(modelArg, { signal, quiet, files: ["config.json"] }), false).maxPositions;
      let P = promptIds?.length;
      if (P === undefined) {
        try {
          const codec = await loadCodec(await resolveModelArg(modelArg, { signal, quiet, files: ["tokenizer.model"] }));
          P = codec?.encode(values.prompt as string, { addBos: true }).length;
        } catch (e) {
          if (!(e instanceof HubError && e.code === "not-found")) throw e; // no tokenizer: the check below says so
        }
      }
      if (P !== undefined) checkContext(P, N, context);
    }
    const folder = await resolveModelArg(modelArg, { signal, quiet });
    await checkModelFolder(folder); // config and weights before the tokenizer: the error names what is missing
    const codec = await loadCodec(folder);
    if (!codec && promptIds === null) {
      throw new UsageError(`${folder} has no tokenizer.model, so --prompt text cannot be encoded; give token ids with --ids 1,2,3`);
    }
    if (!codec && stops.length > 0) throw new UsageError("--stop needs a tokenizer to see text; this model folder has no tokenizer.model");
    if (codec) options.tokenizer = codec;
    if (stops.length > 0) options.stop = stops;

    await using model = await loadModel(folder, { ...load, log: (m) => stderr.write(m + "\n") });
    const ids = promptIds ?? codec!.encode(values.prompt as string, { addBos: true });
    checkContext(ids.length, N, model.cache.maxP);
    let gen: ReturnType<typeof runGeneration>;
    try {
      gen = runGeneration(model, ids, options);
    } catch (e) {
      throw new UsageError((e as Error).message); // e.g. an id outside the vocabulary
    }
    let first = true;
    for await (const step of gen) {
      if (values.json) continue;
      if (codec) stdout.write(step.text);
      else stdout.write(`${first ? "" : ","}${step.id}`);
      first = false;
    }
    const r = await gen.result;
    if (values.json) {
      stdout.write(
        JSON.stringify({
          ids: r.ids,
          text: r.text,
          prompt_tokens: r.promptTokens,
          generated_tokens: r.generatedTokens,
          prefill_tokens_per_s: round(r.prefillTokensPerSecond),
          decode_tokens_per_s: round(r.decodeTokensPerSecond),
          stop_reason: r.stopReason,
          seed: r.seed,
          threads: r.threads,
        }) + "\n",
      );
    } else {
      stdout.write("\n");
    }
    const t = options.temperature ?? model.generationDefaults.temperature ?? 1,
      k = options.topK ?? model.generationDefaults.topK;
    const sampling = t === 0 || k === 1 ? "greedy" : `sampled, seed ${r.seed}`;
    stderr.write(
      `[${r.promptTokens} prompt tokens at ${r.prefillTokensPerSecond.toFixed(1)} tok/s; ` +
        `${r.generatedTokens} generated at ${r.decodeTokensPerSecond.toFixed(1)} tok/s (${sampling}, ${model.kernels.name} backend, ${r.threads} thread${r.threads === 1 ? "" : "s"}); ` +
        `stopped: ${r.stopReason}]\n`,
    );
  },
};

/** The prompt (P tokens) and N new tokens must fit the model's context. */
function checkContext(P: number, N: number, context: number): void {
  if (P + N > context) {
    throw new UsageError(
      `the prompt (${P} tokens) plus --max-new-tokens ${N} needs ${P + N} positions, ` +
        `more than the model's context of ${context}; shorten the prompt or lower --max-new-tokens`,
    );
  }
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}
