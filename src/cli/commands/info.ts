// mobilellm info: what a checkpoint is (config, size, files).

import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { readConfig } from "../../load.js";
import { parameterCount, presetName } from "../../model/config.js";
import type { Command } from "../command.js";
import { resolveModelArg } from "../model-arg.js";

export const info: Command = {
  name: "info",
  summary: "Print a checkpoint's config, parameter count, published size and files",
  usage: "[--model DIR] [--json]",
  options: {
    model: { type: "string", short: "m", value: "DIR", description: "checkpoint folder (config.json + weights)" },
    json: { type: "boolean", description: "print one JSON object" },
  },
  async run(values, _positionals, { stdout }) {
    const folder = resolveModelArg(values.model as string | undefined);
    const config = readConfig(folder, false);
    const files = readdirSync(folder).filter((f) => statSync(join(folder, f)).isFile())
      .map((f) => ({ name: f, bytes: statSync(join(folder, f)).size }));
    const result = { folder, preset: presetName(config) ?? null, parameters: parameterCount(config), config, files };
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
      "files",
      ...files.map((f) => `  ${f.name.padEnd(28)} ${(f.bytes / 1e6).toFixed(2).padStart(10)} MB`),
      "",
    ].join("\n"));
  },
};
