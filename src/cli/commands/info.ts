// mobilellm info: what a checkpoint is (config, size, files).

import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { chooseCheckpoint } from "../../io/checkpoint.js";
import { readConfig } from "../../load.js";
import { missingTensors } from "../../model/weights.js";
import { parameterCount, presetName } from "../../model/config.js";
import { defaultThreads, threadsUnavailable } from "../../kernels/wasm/threads.js";
import type { Command } from "../command.js";
import { LAYER_SHARING_ATTENTION_OPTION, layerSharingAttentionFlag, resolveModelArg } from "../model-arg.js";

export const info: Command = {
  name: "info",
  summary: "Print a checkpoint's config, parameter count, published size and files, and the kernel threads",
  usage: "[--model DIR] [--json]",
  options: {
    model: { type: "string", short: "m", value: "DIR", description: "checkpoint folder (config.json + weights)" },
    "layer-sharing-attention": LAYER_SHARING_ATTENTION_OPTION,
    quiet: { type: "boolean", short: "q", description: "no download progress on stderr" },
    json: { type: "boolean", description: "print one JSON object" },
  },
  async run(values, _positionals, { stdout, signal }) {
    const layerSharingAttention = layerSharingAttentionFlag(values);
    const folder = await resolveModelArg(values.model as string | undefined, { signal, quiet: values.quiet === true });
    const config = readConfig(folder, false);
    const files = readdirSync(folder).filter((f) => statSync(join(folder, f)).isFile())
      .map((f) => ({ name: f, bytes: statSync(join(folder, f)).size }));
    // Which weights file a load would use, and the dtypes stored in it.
    const { file, reason } = chooseCheckpoint(folder, (f) => missingTensors(f, config));
    const dtypes: Record<string, number> = {};
    for (const t of file.tensors.values()) dtypes[t.dtype] = (dtypes[t.dtype] ?? 0) + t.numel;
    file.close();
    const weights = { file: reason, format: file.format, dtypes };
    const lsAttention = config.layerSharing ? layerSharingAttention : null;
    // What the commands that compute would run on by default (their --threads).
    const unavailable = threadsUnavailable();
    const threads = unavailable === null ? await defaultThreads() : 1;
    const result = { folder, preset: presetName(config) ?? null, parameters: parameterCount(config), config, weights,
                     layerSharingAttention: lsAttention, files, threads };
    if (values.json) {
      stdout.write(JSON.stringify(result, null, 2) + "\n");
      return;
    }
    const c = config;
    stdout.write([
      `folder      ${folder}`,
      `size        ${result.preset ? `MobileLLM-${result.preset}` : "not a published size"}, ${(result.parameters / 1e6).toFixed(1)}M parameters`,
      `shape       ${c.numLayers} layers${c.layerSharing ? " (each run twice: layer sharing)" : ""}, dim ${c.hiddenSize}, ffn ${c.intermediateSize}, ` +
        `${c.numHeads} heads / ${c.numKvHeads} kv heads of ${c.headDim}`,
      `vocab       ${c.vocabSize}, context ${c.maxPositions}, rope theta ${c.ropeTheta}, ` +
        `${c.shareEmbedding ? "shared input/output embedding" : "separate lm_head"}`,
      `attention   ${lsAttention === null ? "n/a (no layer sharing)" : lsAttention === "separate"
        ? "separate: each run of a shared block attends over its own keys (--layer-sharing-attention reference-cache: as the published code with use_cache)"
        : "reference-cache: a shared block's second run attends over the first run's keys, as the published code with use_cache"}`,
      `weights     ${reason} (${file.format}; ${Object.entries(dtypes).map(([d, n]) => `${d} ${(n / 1e6).toFixed(2)}M`).join(", ")})`,
      `threads     ${threads} for the wasm kernels (the default of --threads${unavailable === null ? ": available parallelism" : `; ${unavailable}`})`,
      "files",
      ...files.map((f) => `  ${f.name.padEnd(28)} ${(f.bytes / 1e6).toFixed(2).padStart(10)} MB`),
      "",
    ].join("\n"));
  },
};
