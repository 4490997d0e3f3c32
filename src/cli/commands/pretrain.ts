// mobilellm pretrain: train a MobileLLM from scratch with the seed's recipe (src/train/).

import { copyFileSync, existsSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { readRegularFile } from "../../platform/node.js";
import type { DType } from "../../kernels/kernels.js";
import { writeModelGguf } from "./convert.js";
import { hfProblem, parseConfig, PRESETS, type MobileLLMConfig } from "../../model/config.js";
import { exportModel } from "../../train/export.js";
import { readRunFile } from "../../train/checkpoint.js";
import { pretrain as runPretrain, RECIPE_DEFAULTS, type Recipe } from "../../train/trainer.js";
import { createProgress, formatDuration, type Progress } from "../../util/progress.js";
import { numberFlag, UsageError, type Command } from "../command.js";
import { BACKEND_OPTION, parseBackend, parseThreads, THREADS_OPTION } from "../kernel-args.js";

/** --config: a preset name ("125M", "350M-LS", ...) or a config.json file (or its folder). */
export function resolveConfigArg(arg: string): MobileLLMConfig {
  return readConfigArg(arg).config;
}

/** The config, and which of share_embedding / layer_sharing it sets itself (a preset sets both). */
export function readConfigArg(arg: string): { config: MobileLLMConfig; sets: Set<string> } {
  const preset = Object.hasOwn(PRESETS, arg) ? PRESETS[arg] : undefined;
  if (preset) return { config: { ...preset }, sets: new Set(SHARING_FLAGS.map((f) => f.key)) };
  const file = existsSync(arg) && statSync(arg).isDirectory() ? join(arg, "config.json") : arg;
  if (!existsSync(file)) throw new UsageError(`--config ${arg}: not a preset (${Object.keys(PRESETS).join(", ")}) and no such file`);
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder().decode(readRegularFile(file, "config.json", 1 << 20)));
  } catch (e) {
    throw new UsageError(
      `--config ${arg}: ${e instanceof SyntaxError ? `${file} is not valid JSON (${e.message})` : (e as Error).message}`,
    );
  }
  const sets = new Set(SHARING_FLAGS.map((f) => f.key).filter((key) => (json as Record<string, unknown>)[key] !== undefined));
  return { config: parseConfig(json, file), sets };
}

/**
 * The published training script's model flags (utils/process_args.py): both default to true and
 * are set on the config by pretrain.py. Here a config that sets the key itself wins (a flag that
 * contradicts it is an error); otherwise the flag, or its published default, decides.
 */
const SHARING_FLAGS = [
  { flag: "share-embedding", key: "share_embedding", field: "shareEmbedding" },
  { flag: "layer-sharing", key: "layer_sharing", field: "layerSharing" },
] as const;

export function applySharingFlags(values: Record<string, unknown>, config: MobileLLMConfig, sets: Set<string>, source: string): void {
  for (const { flag, key, field } of SHARING_FLAGS) {
    const raw = values[flag];
    if (raw !== undefined && raw !== "true" && raw !== "false")
      throw new UsageError(`--${flag} expects true or false, got ${JSON.stringify(raw)}`);
    if (sets.has(key)) {
      if (raw !== undefined && (raw === "true") !== config[field]) {
        throw new UsageError(
          `--${flag} ${String(raw)} contradicts ${source}, which sets ${key}: ${config[field]}; drop the flag or edit the config`,
        );
      }
      continue;
    }
    config[field] = raw === undefined ? true : raw === "true";
  }
}

export const pretrain: Command = {
  name: "pretrain",
  summary: "Pretrain a MobileLLM on tokenized JSONL data (AdamW, warmup + cosine, gradient clipping, checkpoints)",
  usage: "--config PRESET|config.json --data BASEPATH --out DIR [--steps N] [--batch-size B] [--seq-len L] [--resume] ...",
  options: {
    config: { type: "string", value: "PRESET|FILE", description: "model preset (125M, 350M, ..., -LS variants) or config.json" },
    data: { type: "string", value: "BASEPATH", description: 'training data: BASEPATH/<node>/*.jsonl with {"token_ids": [...]} lines' },
    out: { type: "string", value: "DIR", description: "run folder: checkpoints, loss.jsonl, loss.svg" },
    steps: { type: "string", value: "N", description: "optimizer steps (default: 1000)" },
    "batch-size": { type: "string", value: "B", description: "sequences per micro-batch (default: 8)" },
    "seq-len": {
      type: "string",
      value: "L",
      description: "next-token predictions per sequence (default: from the data, whose lines hold L+1 ids)",
    },
    "layer-sharing": {
      type: "string",
      value: "BOOL",
      description: "immediate block-wise layer sharing when the config does not say (default: true, as the published trainer)",
    },
    "share-embedding": {
      type: "string",
      value: "BOOL",
      description: "share input and output embedding when the config does not say (default: true)",
    },
    lr: { type: "string", value: "LR", description: `peak learning rate (default: ${RECIPE_DEFAULTS.lr})` },
    warmup: { type: "string", value: "N", description: "linear warmup steps (default: min(1000, steps/10))" },
    "min-lr-ratio": { type: "string", value: "R", description: "cosine floor as a fraction of the peak (default: 0.1)" },
    "weight-decay": { type: "string", value: "WD", description: `decoupled weight decay (default: ${RECIPE_DEFAULTS.weightDecay})` },
    "grad-accum": { type: "string", value: "N", description: "micro-batches per optimizer step (default: 1)" },
    "save-every": { type: "string", value: "N", description: "checkpoint every N steps (and at the end) (default: 100)" },
    seed: { type: "string", value: "S", description: "weight initialisation seed (default: 0)" },
    backend: {
      type: "string",
      value: BACKEND_OPTION.value!,
      description: `${BACKEND_OPTION.description} (default: wasm, or the run's own with --resume)`,
    },
    threads: THREADS_OPTION,
    tokenizer: {
      type: "string",
      value: "FILE",
      description: "tokenizer.model to copy into checkpoints (default: BASEPATH/tokenizer.model if present)",
    },
    "eval-data": { type: "string", value: "BASEPATH", description: "validation data: its loss is computed at every checkpoint" },
    "eval-sequences": { type: "string", value: "N", description: "at most N validation sequences" },
    export: {
      type: "string",
      value: "DIR",
      description:
        "afterwards, write the final model (config.json, model.safetensors, tokenizer.model) to DIR, or as one GGUF file to FILE.gguf",
    },
    "export-dtype": {
      type: "string",
      value: "DT",
      description: "dtype of the exported weights: f16, bf16 or f32 (a .gguf export also q8_0 or q4_0)",
      default: "f16",
    },
    resume: { type: "boolean", description: "continue the run in --out from its latest checkpoint (bit-exact)" },
    force: { type: "boolean", description: "discard a previous run in --out and start over" },
    strict: { type: "boolean", description: "stop at a malformed JSONL line instead of skipping it" },
    node: { type: "string", value: "NAME", description: "data node folder (default: 1)" },
    "world-size": { type: "string", value: "N", description: "data sharding: line i goes to rank i % N (default: 1)" },
    rank: { type: "string", value: "R", description: "data sharding rank (default: 0)" },
    quiet: { type: "boolean", short: "q", description: "no progress on stderr (by default a bar on a terminal, else a line every 10 s)" },
  },
  details: [
    "Recipe (facebookresearch/MobileLLM pretrain.sh): AdamW lr 5e-4, betas 0.9/0.95, eps 1e-8, weight decay",
    "0.1 (not on RMSNorm weights, as the Hugging Face Trainer), gradient clipping at global norm 1.0, linear",
    "warmup then cosine decay to 0.1x the peak. Data lines are used as they are: lines of L+1 token ids give",
    "L predictions each (`prepare --seq-len L` writes them); all lines must have one length.",
    "layer_sharing and share_embedding come from the config when it sets them, else from the flags, whose",
    "defaults are the published training script's (true): a Llama-form config.json trains with both.",
    "With --resume, flags not given (including --data, --tokenizer, --save-every, --eval-data) are taken",
    "from the run's run.json. Ctrl-C (or SIGTERM) finishes the current step, writes a checkpoint and exits;",
    "--resume continues bit-exactly.",
    "",
    "Example (the embedded default model's shape, trained from scratch on your corpus.txt with a",
    "tokenizer from `mobilellm train-tokenizer` in tok/; a real run wants thousands of steps):",
    "  mobilellm prepare --tokenizer tok/ --input corpus.txt --out data --seq-len 128",
    "  mobilellm pretrain --config models/shakespeare-2m/config.json --data data --out runs/a --steps 4 --batch-size 2",
    "  mobilellm pretrain --data data --out runs/a --resume --steps 6",
  ].join("\n"),
  async run(values, _positionals, { stderr, signal }) {
    if (values.out === undefined) throw new UsageError("give the run folder with --out DIR");
    const out = values.out as string;
    if (existsSync(out) && !statSync(out).isDirectory())
      throw new UsageError(`--out ${out}: is a file; --out names the run folder (created if missing)`);
    // On --resume, the run's own settings are the defaults (run.json, validated field by field).
    const runFile = join(out, "run.json");
    const prev = values.resume && existsSync(runFile) ? readRunFile(runFile) : null;
    const opts = prev?.options;
    const data = (values.data as string | undefined) ?? prev?.data;
    if (data === undefined) throw new UsageError("give the training data with --data BASEPATH");
    const backend = parseBackend(values.backend ?? prev?.backend ?? "wasm");
    const given = (name: string) => values[name] !== undefined;
    const DEFAULTS: Record<string, string> = {
      steps: "1000",
      "batch-size": "8",
      lr: String(RECIPE_DEFAULTS.lr),
      "min-lr-ratio": "0.1",
      "weight-decay": String(RECIPE_DEFAULTS.weightDecay),
      "grad-accum": "1",
      seed: "0",
    };

    let config: MobileLLMConfig;
    if (values.config !== undefined) {
      const { config: c, sets } = readConfigArg(values.config as string);
      applySharingFlags(values, c, sets, `--config ${values.config as string}`);
      config = c;
    } else if (prev) {
      config = { ...prev.config };
      applySharingFlags(values, config, new Set(SHARING_FLAGS.map((f) => f.key)), runFile);
    } else {
      throw new UsageError("give the model with --config PRESET|config.json");
    }

    const num = (name: string, key: keyof Recipe, opts: { integer?: boolean; min?: number; max?: number }) =>
      prev && !given(name) ? prev.recipe[key] : numberFlag({ [name]: values[name] ?? DEFAULTS[name] }, name, opts)!;
    const steps = num("steps", "steps", { integer: true, min: 1 });
    const recipe: Omit<Recipe, "seqLen"> & { seqLen?: number } = {
      ...RECIPE_DEFAULTS,
      steps,
      batchSize: num("batch-size", "batchSize", { integer: true, min: 1 }),
      ...(given("seq-len") || prev ? { seqLen: num("seq-len", "seqLen", { integer: true, min: 1 }) } : {}),
      gradAccum: num("grad-accum", "gradAccum", { integer: true, min: 1 }),
      lr: num("lr", "lr", { min: 0 }),
      warmup:
        values.warmup !== undefined || prev ? num("warmup", "warmup", { integer: true, min: 0 }) : Math.min(1000, Math.floor(steps / 10)),
      minLrRatio: num("min-lr-ratio", "minLrRatio", { min: 0, max: 1 }),
      weightDecay: num("weight-decay", "weightDecay", { min: 0 }),
      seed: num("seed", "seed", { integer: true, min: 0 }),
    };
    const exportDType = values["export-dtype"] as string;
    const exportGguf = typeof values.export === "string" && values.export.toLowerCase().endsWith(".gguf");
    // Refuse an export the model cannot have before training, not after (a GGUF unrolls any sharing order, not a ReLU FFN).
    const exportProblem =
      values.export === undefined
        ? undefined
        : exportGguf
          ? config.ffnType === "relu"
            ? 'llama.cpp\'s llama architecture has no ReLU feed-forward network (ffn_type "relu")'
            : undefined
          : hfProblem(config);
    if (exportProblem !== undefined) {
      throw new UsageError(
        `--export ${values.export as string}: ${exportProblem}; train without --export and use the checkpoint folders (loadModel reads them)`,
      );
    }
    if (
      exportGguf &&
      exportDType !== "q8_0" &&
      exportDType !== "q4_0" &&
      exportDType !== "f16" &&
      exportDType !== "bf16" &&
      exportDType !== "f32"
    ) {
      throw new UsageError(`--export-dtype must be f16, bf16, f32, q8_0 or q4_0 for a .gguf export, got ${JSON.stringify(exportDType)}`);
    }
    if (!exportGguf && exportDType !== "f16" && exportDType !== "bf16" && exportDType !== "f32")
      throw new UsageError(`--export-dtype must be f16, bf16 or f32, got ${JSON.stringify(exportDType)}`);
    const tokenizer =
      (values.tokenizer as string | undefined) ??
      opts?.tokenizer ??
      (existsSync(join(data, "tokenizer.model")) ? join(data, "tokenizer.model") : undefined);
    if (exportGguf && !tokenizer)
      throw new UsageError("a .gguf export carries the tokenizer: give --tokenizer tokenizer.model (the data folder has none)");
    const evalSequences = numberFlag(values, "eval-sequences", { integer: true, min: 1 }) ?? opts?.evalSequences;
    const evalData = (values["eval-data"] as string | undefined) ?? opts?.evalData;
    const flag = (name: string, fallback: number | undefined, def: string) =>
      numberFlag({ [name]: values[name] ?? (fallback !== undefined ? String(fallback) : def) }, name, {
        integer: true,
        min: name === "rank" ? 0 : 1,
      })!;

    const threads = parseThreads(values.threads, backend);
    // Progress counts this run's steps (a resumed run starts past 0); the detail has loss and lr.
    let progress: Progress | undefined,
      firstStep = 0;
    const logLine = (m: string) => (progress ? progress.log(m) : stderr.write(`${m}\n`));
    const res = await runPretrain({
      config,
      recipe,
      data,
      out,
      backend,
      ...(threads !== undefined ? { threads } : {}),
      saveEvery: flag("save-every", opts?.saveEvery || undefined, "100"),
      resume: values.resume === true,
      force: values.force === true,
      dataOptions: {
        node: (values.node as string | undefined) ?? opts?.node ?? "1",
        strict: values.strict === true || opts?.strict === true,
        worldSize: flag("world-size", opts?.worldSize, "1"),
        rank: flag("rank", opts?.rank, "0"),
      },
      ...(tokenizer ? { tokenizer } : {}),
      ...(evalData !== undefined ? { evalData } : {}),
      ...(evalSequences !== undefined ? { evalSequences } : {}),
      signal,
      log: logLine,
      onStep: (r, info) => {
        if (!progress) {
          firstStep = r.step - 1;
          progress = createProgress({
            label: "pretrain",
            total: info.totalSteps - firstStep,
            unit: "steps",
            stream: stderr,
            quiet: values.quiet === true,
            alwaysFinalLine: true,
            timeLeft: false,
          });
        }
        // The trainer's ETA (from tokens/s) is the time left.
        progress.update(
          r.step - firstStep,
          `step ${r.step}/${info.totalSteps}  loss ${r.loss.toFixed(4)}  lr ${r.lr.toExponential(2)}  ` +
            `${Math.round(info.tokensPerSecond)} tok/s  ETA ${formatDuration(info.etaSeconds)}`,
        );
      },
    });
    progress?.done();
    stderr.write(
      `${res.checkpoint}: step ${res.step}, last loss ${res.records.at(-1)?.loss.toFixed(4) ?? "-"}` +
        `${res.valLoss !== undefined ? `, validation loss ${res.valLoss.toFixed(4)}` : ""}, ${Math.round(res.tokensPerSecond)} tok/s\n`,
    );
    if (values.export !== undefined && res.checkpoint && res.stopped !== "aborted" && exportGguf) {
      // the f32 weights as a model folder first (lossless), then quantized/rounded into the GGUF
      const tmp = mkdtempSync(join(dirname(resolve(values.export as string)), ".export-"));
      try {
        await exportModel(res.checkpoint, tmp, config, "f32", { projectKeys: true }); // read back by writeModelGguf only
        if (!existsSync(join(tmp, "tokenizer.model"))) copyFileSync(tokenizer!, join(tmp, "tokenizer.model"));
        await writeModelGguf(tmp, values.export as string, exportDType as DType, (m) => stderr.write(m + "\n"), basename(out));
      } finally {
        rmSync(tmp, { recursive: true, force: true });
      }
    } else if (values.export !== undefined && res.checkpoint && res.stopped !== "aborted") {
      await exportModel(res.checkpoint, values.export as string, config, exportDType as "f16" | "bf16" | "f32");
      stderr.write(`exported ${res.checkpoint} as ${exportDType} to ${values.export as string}\n`);
    }
  },
};
