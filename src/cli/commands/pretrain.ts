// mobilellm pretrain: train a MobileLLM from scratch with the seed's recipe (src/train/).

import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import type { DType } from "../../kernels/kernels.js";
import { writeModelGguf } from "./convert.js";
import { parseConfig, PRESETS, type MobileLLMConfig } from "../../model/config.js";
import { exportModel } from "../../train/export.js";
import { pretrain as runPretrain, RECIPE_DEFAULTS, type Recipe } from "../../train/trainer.js";
import { numberFlag, UsageError, type Command } from "../command.js";

/** --config: a preset name ("125M", "350M-LS", ...) or a config.json file (or its folder). */
export function resolveConfigArg(arg: string): MobileLLMConfig {
  const preset = PRESETS[arg];
  if (preset) return { ...preset };
  const file = existsSync(arg) && statSync(arg).isDirectory() ? join(arg, "config.json") : arg;
  if (!existsSync(file)) throw new UsageError(`--config ${arg}: not a preset (${Object.keys(PRESETS).join(", ")}) and no such file`);
  return parseConfig(JSON.parse(readFileSync(file, "utf8")), file);
}

function duration(s: number): string {
  if (!Number.isFinite(s)) return "?";
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = Math.floor(s % 60);
  return h ? `${h}h${String(m).padStart(2, "0")}m` : m ? `${m}m${String(sec).padStart(2, "0")}s` : `${sec}s`;
}

export const pretrain: Command = {
  name: "pretrain",
  summary: "Pretrain a MobileLLM on tokenized JSONL data (AdamW, warmup + cosine, gradient clipping, checkpoints)",
  usage: "--config PRESET|config.json --data BASEPATH --out DIR [--steps N] [--batch-size B] [--seq-len L] [--resume] ...",
  options: {
    config: { type: "string", value: "PRESET|FILE", description: "model preset (125M, 350M, ..., -LS variants) or config.json" },
    data: { type: "string", value: "BASEPATH", description: "training data: BASEPATH/<node>/*.jsonl with {\"token_ids\": [...]} lines" },
    out: { type: "string", value: "DIR", description: "run folder: checkpoints, loss.jsonl, loss.svg" },
    steps: { type: "string", value: "N", description: "optimizer steps (default: 1000)" },
    "batch-size": { type: "string", value: "B", description: "sequences per micro-batch (default: 8)" },
    "seq-len": { type: "string", value: "L", description: "tokens per sequence (default: 256)" },
    lr: { type: "string", value: "LR", description: `peak learning rate (default: ${RECIPE_DEFAULTS.lr})` },
    warmup: { type: "string", value: "N", description: "linear warmup steps (default: min(1000, steps/10))" },
    "min-lr-ratio": { type: "string", value: "R", description: "cosine floor as a fraction of the peak (default: 0.1)" },
    "weight-decay": { type: "string", value: "WD", description: `decoupled weight decay (default: ${RECIPE_DEFAULTS.weightDecay})` },
    "grad-accum": { type: "string", value: "N", description: "micro-batches per optimizer step (default: 1)" },
    "save-every": { type: "string", value: "N", description: "checkpoint every N steps (and at the end)", default: "100" },
    seed: { type: "string", value: "S", description: "weight initialisation seed (default: 0)" },
    backend: { type: "string", value: "NAME", description: "kernel backend: wasm or ts (default: wasm, or the run's own with --resume)" },
    tokenizer: { type: "string", value: "FILE", description: "tokenizer.model to copy into checkpoints (default: BASEPATH/tokenizer.model if present)" },
    "eval-data": { type: "string", value: "BASEPATH", description: "validation data: its loss is computed at every checkpoint" },
    "eval-sequences": { type: "string", value: "N", description: "at most N validation sequences" },
    export: { type: "string", value: "DIR", description: "afterwards, write the final model (config.json, model.safetensors, tokenizer.model) to DIR, or as one GGUF file to FILE.gguf" },
    "export-dtype": { type: "string", value: "DT", description: "dtype of the exported weights: f16, bf16 or f32 (a .gguf export also q8_0 or q4_0)", default: "f16" },
    resume: { type: "boolean", description: "continue the run in --out from its latest checkpoint (bit-exact)" },
    force: { type: "boolean", description: "discard a previous run in --out and start over" },
    strict: { type: "boolean", description: "stop at a malformed JSONL line instead of skipping it" },
    node: { type: "string", value: "NAME", description: "data node folder", default: "1" },
    "world-size": { type: "string", value: "N", description: "data sharding: line i goes to rank i % N", default: "1" },
    rank: { type: "string", value: "R", description: "data sharding rank", default: "0" },
  },
  details: [
    "Recipe (facebookresearch/MobileLLM pretrain.sh): AdamW lr 5e-4, betas 0.9/0.95, eps 1e-8, weight decay",
    "0.1, gradient clipping at global norm 1.0, linear warmup then cosine decay to 0.1x the peak.",
    "With --resume, flags not given are taken from the run's run.json.",
    "",
    "Example:",
    "  mobilellm prepare --tokenizer tok/ --input corpus.txt --out data --seq-len 256",
    "  mobilellm pretrain --config my-config.json --data data --out runs/a --steps 2000 --batch-size 8 --seq-len 256",
  ].join("\n"),
  async run(values, _positionals, { stderr, signal }) {
    if (values.data === undefined) throw new UsageError("give the training data with --data BASEPATH");
    if (values.out === undefined) throw new UsageError("give the run folder with --out DIR");
    const out = values.out as string, data = values.data as string;
    const runFileForBackend = join(out, "run.json");
    const backend = (values.backend as string | undefined) ??
      (values.resume && existsSync(runFileForBackend) ? (JSON.parse(readFileSync(runFileForBackend, "utf8")) as { backend?: string }).backend ?? "wasm" : "wasm");
    if (backend !== "ts" && backend !== "wasm") throw new UsageError(`--backend must be ts or wasm, got ${JSON.stringify(backend)}`);
    const given = (name: string) => values[name] !== undefined;
    const DEFAULTS: Record<string, string> = {
      steps: "1000", "batch-size": "8", "seq-len": "256", lr: String(RECIPE_DEFAULTS.lr), "min-lr-ratio": "0.1",
      "weight-decay": String(RECIPE_DEFAULTS.weightDecay), "grad-accum": "1", seed: "0",
    };

    // On --resume, the run's own settings are the defaults.
    const runFile = join(out, "run.json");
    const prev = values.resume && existsSync(runFile)
      ? (JSON.parse(readFileSync(runFile, "utf8")) as { config: unknown; recipe: Recipe })
      : null;
    let config: MobileLLMConfig;
    if (values.config !== undefined) config = resolveConfigArg(values.config as string);
    else if (prev) config = parseConfig(prev.config, runFile);
    else throw new UsageError("give the model with --config PRESET|config.json");

    const num = (name: string, key: keyof Recipe, opts: { integer?: boolean; min?: number; max?: number }) =>
      prev && !given(name) ? prev.recipe[key] : numberFlag({ [name]: values[name] ?? DEFAULTS[name] }, name, opts)!;
    const steps = num("steps", "steps", { integer: true, min: 1 });
    const recipe: Recipe = {
      ...RECIPE_DEFAULTS,
      steps,
      batchSize: num("batch-size", "batchSize", { integer: true, min: 1 }),
      seqLen: num("seq-len", "seqLen", { integer: true, min: 2 }),
      gradAccum: num("grad-accum", "gradAccum", { integer: true, min: 1 }),
      lr: num("lr", "lr", { min: 0 }),
      warmup: values.warmup !== undefined || prev ? num("warmup", "warmup", { integer: true, min: 0 }) : Math.min(1000, Math.floor(steps / 10)),
      minLrRatio: num("min-lr-ratio", "minLrRatio", { min: 0, max: 1 }),
      weightDecay: num("weight-decay", "weightDecay", { min: 0 }),
      seed: num("seed", "seed", { integer: true, min: 0 }),
    };
    const exportDType = values["export-dtype"] as string;
    const exportGguf = typeof values.export === "string" && values.export.toLowerCase().endsWith(".gguf");
    if (exportGguf && exportDType !== "q8_0" && exportDType !== "q4_0" && exportDType !== "f16" && exportDType !== "bf16" && exportDType !== "f32") {
      throw new UsageError(`--export-dtype must be f16, bf16, f32, q8_0 or q4_0 for a .gguf export, got ${JSON.stringify(exportDType)}`);
    }
    if (!exportGguf && exportDType !== "f16" && exportDType !== "bf16" && exportDType !== "f32") throw new UsageError(`--export-dtype must be f16, bf16 or f32, got ${JSON.stringify(exportDType)}`);
    const tokenizer = (values.tokenizer as string | undefined) ?? (existsSync(join(data, "tokenizer.model")) ? join(data, "tokenizer.model") : undefined);
    if (exportGguf && !tokenizer) throw new UsageError("a .gguf export carries the tokenizer: give --tokenizer tokenizer.model (the data folder has none)");
    const evalSequences = numberFlag(values, "eval-sequences", { integer: true, min: 1 });

    const tty = (stderr as NodeJS.WriteStream).isTTY === true;
    let lastPrint = 0;
    const res = await runPretrain({
      config, recipe, data, out, backend,
      saveEvery: numberFlag(values, "save-every", { integer: true, min: 1 })!,
      resume: values.resume === true, force: values.force === true,
      dataOptions: {
        node: values.node as string, strict: values.strict === true,
        worldSize: numberFlag(values, "world-size", { integer: true, min: 1 })!, rank: numberFlag(values, "rank", { integer: true, min: 0 })!,
      },
      ...(tokenizer ? { tokenizer } : {}),
      ...(values["eval-data"] !== undefined ? { evalData: values["eval-data"] as string } : {}),
      ...(evalSequences !== undefined ? { evalSequences } : {}),
      signal,
      log: (m) => stderr.write(`${tty ? "\r\x1b[K" : ""}${m}\n`),
      onStep: (r, info) => {
        const now = performance.now();
        if (!tty && r.step !== info.totalSteps && now - lastPrint < 10_000) return; // a line every 10 s when logging to a file
        lastPrint = now;
        const line = `step ${r.step}/${info.totalSteps}  loss ${r.loss.toFixed(4)}  lr ${r.lr.toExponential(2)}  ` +
                     `${Math.round(info.tokensPerSecond)} tok/s  ETA ${duration(info.etaSeconds)}`;
        stderr.write(tty ? `\r\x1b[K${line}` : `${line}\n`);
      },
    });
    if (tty) stderr.write("\n");
    stderr.write(`${res.checkpoint}: step ${res.step}, last loss ${res.records.at(-1)?.loss.toFixed(4) ?? "-"}` +
                 `${res.valLoss !== undefined ? `, validation loss ${res.valLoss.toFixed(4)}` : ""}, ${Math.round(res.tokensPerSecond)} tok/s\n`);
    if (values.export !== undefined && res.checkpoint && exportGguf) {
      // the f32 weights as a model folder first (lossless), then quantized/rounded into the GGUF
      const tmp = mkdtempSync(join(dirname(resolve(values.export as string)), ".export-"));
      try {
        exportModel(res.checkpoint, tmp, config, "f32");
        if (!existsSync(join(tmp, "tokenizer.model"))) copyFileSync(tokenizer!, join(tmp, "tokenizer.model"));
        await writeModelGguf(tmp, values.export as string, exportDType as DType, (m) => stderr.write(m + "\n"), basename(out));
      } finally {
        rmSync(tmp, { recursive: true, force: true });
      }
    } else if (values.export !== undefined && res.checkpoint) {
      exportModel(res.checkpoint, values.export as string, config, exportDType as "f16" | "bf16" | "f32");
      stderr.write(`exported ${res.checkpoint} as ${exportDType} to ${values.export as string}\n`);
    }
  },
};
