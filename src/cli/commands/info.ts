// mobilellm info: what a checkpoint is (config, size, files).

import { readdirSync, statSync } from "node:fs";
import { basename, join } from "node:path";
import { ggufAsCheckpoint, ggufConfig } from "../../io/gguf.js";
import { chooseCheckpoint, openGguf } from "../../io/files.js";
import { isGgufPath, readConfig } from "../../load.js";
import { defaultEmbeddingDType, expectedTensors, missingTensors, storageDType } from "../../model/weights.js";
import { isQuantDType, quantizedBytes } from "../../kernels/quant.js";
import { parameterCount, presetName } from "../../model/config.js";
import { defaultThreads, threadsUnavailable } from "../../kernels/wasm/threads.js";
import type { Command } from "../command.js";
import { dtypeFlag, DTYPE_OPTION, LAYER_SHARING_ATTENTION_OPTION, layerSharingAttentionFlag, resolveModelArg } from "../model-arg.js";

export const info: Command = {
  name: "info",
  summary: "Print a checkpoint's config, parameter count, published size and files, and the kernel threads",
  usage: "[--model DIR] [--dtype TYPE] [--json]",
  options: {
    model: { type: "string", short: "m", value: "DIR", description: "checkpoint folder (config.json + weights) or GGUF file" },
    dtype: {
      ...DTYPE_OPTION,
      description: "also say how large the weights are in memory when loaded as TYPE (" + DTYPE_OPTION.description + ")",
    },
    "layer-sharing-attention": LAYER_SHARING_ATTENTION_OPTION,
    quiet: { type: "boolean", short: "q", description: "no download progress on stderr" },
    json: { type: "boolean", description: "print one JSON object" },
  },
  details: "Example: mobilellm info --dtype q4_0",
  async run(values, _positionals, { stdout, signal }) {
    const dtype = dtypeFlag(values);
    const layerSharingAttention = layerSharingAttentionFlag(values);
    const folder = await resolveModelArg(values.model as string | undefined, { signal, quiet: values.quiet === true });
    // A GGUF file holds config and weights; a folder, config.json and the weights file a load would use.
    const gguf = isGgufPath(folder) ? await openGguf(folder) : null;
    const config = gguf ? ggufConfig(gguf) : readConfig(folder, false);
    const files = gguf
      ? [{ name: basename(folder), bytes: statSync(folder).size }]
      : readdirSync(folder)
          .filter((f) => statSync(join(folder, f)).isFile())
          .map((f) => ({ name: f, bytes: statSync(join(folder, f)).size }));
    const { file, reason } = gguf
      ? { file: ggufAsCheckpoint(gguf, config), reason: `${basename(folder)} (GGUF v${gguf.version})` }
      : await chooseCheckpoint(folder, (f) => missingTensors(f, config));
    const dtypes: Record<string, number> = {};
    // What a load with --dtype keeps in memory: bytes per storage dtype (as loadWeights decides).
    const resident: Record<string, number> = {};
    const expected = expectedTensors(config);
    for (const t of file.tensors.values()) {
      const stored = t.blocks ? t.blocks.dtype.toUpperCase() : t.dtype;
      dtypes[stored] = (dtypes[stored] ?? 0) + t.numel;
      if (!expected.has(t.name)) continue;
      const isEmbedding = t.name === "model.embed_tokens.weight" || t.name === "lm_head.weight";
      const d = storageDType(t, dtype, isEmbedding, defaultEmbeddingDType(dtype));
      resident[d] = (resident[d] ?? 0) + (isQuantDType(d) ? quantizedBytes(d, t.numel) : t.numel * (d === "f32" ? 4 : 2));
    }
    file.close();
    const weights = { file: reason, format: file.format, dtypes, loadedAs: dtype, residentBytes: resident };
    const lsAttention = config.layerSharing ? layerSharingAttention : null;
    // What the commands that compute would run on by default (their --threads).
    const unavailable = threadsUnavailable();
    const threads = unavailable === null ? await defaultThreads() : 1;
    const result = {
      folder,
      preset: presetName(config) ?? null,
      parameters: parameterCount(config),
      config,
      weights,
      layerSharingAttention: lsAttention,
      files,
      threads,
    };
    if (values.json) {
      stdout.write(JSON.stringify(result, null, 2) + "\n");
      return;
    }
    const c = config;
    stdout.write(
      [
        `folder      ${folder}`,
        `size        ${result.preset ? `MobileLLM-${result.preset}` : "not a published size"}, ${(result.parameters / 1e6).toFixed(1)}M parameters`,
        `shape       ${c.numLayers} layers${c.layerSharing ? ` (each run twice: layer sharing, ${c.layerSharingOrder ?? "immediate"})` : ""}, dim ${c.hiddenSize}, ` +
          `ffn ${c.ffnType === "relu" ? "relu " : ""}${c.intermediateSize}, ` +
          `${c.numHeads} heads / ${c.numKvHeads} kv heads of ${c.headDim}`,
        `vocab       ${c.vocabSize}, context ${c.maxPositions}, rope theta ${c.ropeTheta}, ` +
          `${c.shareEmbedding ? "shared input/output embedding" : "separate lm_head"}`,
        `attention   ${
          lsAttention === null
            ? "n/a (no layer sharing)"
            : lsAttention === "separate"
              ? "separate: each run of a shared block attends over its own keys (--layer-sharing-attention reference-cache: as the published code with use_cache)"
              : "reference-cache: a shared block's second run attends over the first run's keys, as the published code with use_cache"
        }`,
        `weights     ${reason} (${file.format}; ${Object.entries(dtypes)
          .map(([d, n]) => `${d} ${(n / 1e6).toFixed(2)}M`)
          .join(", ")})`,
        `in memory   as ${dtype}: ${(Object.values(resident).reduce((a, b) => a + b, 0) / 1e6).toFixed(2)} MB ` +
          `(${Object.entries(resident)
            .map(([d, n]) => `${d} ${(n / 1e6).toFixed(2)} MB`)
            .join(", ")})`,
        `threads     ${threads} for the wasm kernels (the default of --threads${unavailable === null ? ": available parallelism" : `; ${unavailable}`})`,
        "files",
        ...files.map((f) => `  ${f.name.padEnd(28)} ${(f.bytes / 1e6).toFixed(2).padStart(10)} MB`),
        "",
      ].join("\n"),
    );
  },
};
