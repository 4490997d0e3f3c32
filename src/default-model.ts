// The embedded default model: a 2.1M-parameter MobileLLM trained on tiny Shakespeare by this
// project's own commands (models/shakespeare-2m/README.md is its model card). It ships in the
// package, so `loadModel()`, `loadTokenizer()` and every CLI command work on a fresh install.

import { fileURLToPath } from "node:url";

/** Folder of the embedded default model (config.json, model.safetensors, tokenizer.model). */
export const defaultModel: string = fileURLToPath(new URL("../models/shakespeare-2m", import.meta.url));
