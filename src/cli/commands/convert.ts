// mobilellm convert: write a checkpoint as a GGUF file (llama architecture) for llama.cpp, ollama
// and node-llama-cpp, optionally quantized to q8_0 / q4_0 on the way.

import { basename, resolve } from "node:path";
import { ggufFromModel, writeGguf } from "../../io/gguf-write.js";
import { loadModel } from "../../load.js";
import { loadTokenizer } from "../../load.js";
import type { DType } from "../../kernels/kernels.js";
import { UsageError, type Command } from "../command.js";
import { dtypeFlag, resolveModelArg } from "../model-arg.js";

export const convert: Command = {
  name: "convert",
  summary: "Write a checkpoint as GGUF (llama.cpp / ollama), in f16, bf16, f32, q8_0 or q4_0",
  usage: "--to gguf [--dtype f16|bf16|f32|q8_0|q4_0] [--model DIR] --output FILE",
  options: {
    model: { type: "string", short: "m", value: "DIR", description: "checkpoint folder (config.json, weights, tokenizer.model) or hub id" },
    to: { type: "string", value: "FORMAT", description: "output format: gguf" },
    output: { type: "string", short: "o", value: "FILE", description: "the file to write (replaced atomically)" },
    dtype: {
      type: "string",
      value: "TYPE",
      default: "f16",
      description: "weights in the file: f16, bf16, f32, q8_0 or q4_0 (llama.cpp's Q8_0 / Q4_0 bytes)",
    },
  },
  details: [
    "Examples:",
    "  mobilellm convert --to gguf -o shakespeare-q8_0.gguf --dtype q8_0",
    "  mobilellm convert --to gguf -m facebook/MobileLLM-125M -o MobileLLM-125M-q4_0.gguf --dtype q4_0",
    "",
    "Matrices whose rows are not a multiple of 32 stay f16 in q8_0/q4_0 files (as llama.cpp's",
    "quantizer does); the embedding (output projection) of a q4_0 file is q8_0 (see BENCHMARKS.md).",
    "Layer-sharing (-LS) models are written with every block repeated: 2·L blocks, the same function.",
  ].join("\n"),

  async run(values, _positionals, { stderr, signal }) {
    if (values.to !== "gguf") throw new UsageError(`--to must be gguf, got ${JSON.stringify(values.to ?? "")}`);
    if (values.output === undefined) throw new UsageError("give the file to write with --output FILE (-o)");
    const dtype = dtypeFlag(values);
    if (dtype === "auto") throw new UsageError("--dtype must be f16, bf16, f32, q8_0 or q4_0 for convert");
    const folder = await resolveModelArg(values.model as string | undefined, { signal });
    await writeModelGguf(folder, values.output as string, dtype, (m) => stderr.write(m + "\n"));
  },
};

/** Load the checkpoint `folder` in `dtype` and write it with its tokenizer as the GGUF file `output`. */
export async function writeModelGguf(folder: string, output: string, dtype: DType, log: (m: string) => void, name?: string): Promise<void> {
  const tokenizer = await loadTokenizer(folder);
  // the readable backend: plain JavaScript memory, no wasm32 size limit; one position of KV cache
  const model = await loadModel(folder, { backend: "ts", dtype, maxPositions: 1, maxChunk: 1, log });
  const { metadata, tensors } = ggufFromModel(model, tokenizer, name ?? basename(resolve(folder)));
  writeGguf(output, metadata, tensors);
  const blocks = model.config.layerSharing
    ? ` (${model.config.numLayers} shared blocks written unrolled as ${2 * model.config.numLayers})`
    : "";
  log(`wrote ${output}: GGUF v3, llama, ${dtype}${blocks}, ${tensors.length} tensors`);
}
