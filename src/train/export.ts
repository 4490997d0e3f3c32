// Export a training checkpoint as a release-style model folder: config.json, model.safetensors in
// the chosen dtype (f16 halves the size; round to nearest even), tokenizer.model when present.
// No optimizer state: the folder is for inference (loadModel, generate).

import { copyFileSync, existsSync, mkdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { numberToBf16Bits, numberToF16Bits } from "../kernels/half.js";
import { openSafetensors } from "../io/files.js";
import { encodeSafetensors } from "../io/safetensors.js";
import type { FileDType } from "../io/tensor-file.js";
import { configToJson, hfProblem, type MobileLLMConfig } from "../model/config.js";
import { writeFileAtomic, writeTextAtomic } from "./checkpoint.js";

export async function exportModel(
  checkpointDir: string,
  outDir: string,
  c: MobileLLMConfig,
  dtype: "f32" | "f16" | "bf16" = "f16",
  options: { projectKeys?: boolean } = {},
): Promise<void> {
  // The folder is a Hugging Face release folder: refuse a model that Hugging Face's code would run
  // differently (unless the folder is only for this project, e.g. on the way to a GGUF file).
  const problem = hfProblem(c);
  if (problem !== undefined && !options.projectKeys) {
    throw new Error(
      `cannot export ${checkpointDir} as a Hugging Face model folder: ${problem}. ` +
        `The checkpoint folder itself (config.json with this project's keys) loads with this project's loadModel and generate`,
    );
  }
  const file = await openSafetensors(join(checkpointDir, "model.safetensors"));
  const tensors: { name: string; dtype: FileDType; shape: number[]; bytes: Uint8Array }[] = [];
  try {
    for (const t of file.tensors.values()) {
      if (t.dtype !== "F32") throw new Error(`${file.path}: tensor ${t.name} is ${t.dtype}; a training checkpoint holds F32`);
      const f32 = new Float32Array(t.numel);
      await t.read(new Uint8Array(f32.buffer));
      if (dtype === "f32") {
        tensors.push({ name: t.name, dtype: "F32", shape: t.shape, bytes: new Uint8Array(f32.buffer) });
        continue;
      }
      const toBits = dtype === "f16" ? numberToF16Bits : numberToBf16Bits;
      const bits = new Uint16Array(t.numel);
      for (let i = 0; i < t.numel; i++) bits[i] = toBits(f32[i]!);
      tensors.push({ name: t.name, dtype: dtype === "f16" ? "F16" : "BF16", shape: t.shape, bytes: new Uint8Array(bits.buffer) });
    }
  } finally {
    file.close();
  }
  if (existsSync(outDir) && !statSync(outDir).isDirectory())
    throw new Error(`${outDir}: is a file; the export goes into a model folder (created if missing)`);
  mkdirSync(outDir, { recursive: true });
  writeTextAtomic(
    join(outDir, "config.json"),
    JSON.stringify({ ...configToJson(c), torch_dtype: dtype === "f16" ? "float16" : dtype === "bf16" ? "bfloat16" : "float32" }, null, 2) +
      "\n",
  );
  writeFileAtomic(join(outDir, "model.safetensors"), encodeSafetensors(tensors));
  if (existsSync(join(checkpointDir, "tokenizer.model")))
    copyFileSync(join(checkpointDir, "tokenizer.model"), join(outDir, "tokenizer.model"));
}
