// Where a --model argument points: a local checkpoint folder (or, later, a hub id), with a
// default that works on a fresh clone.

import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

/** The model used when --model is not given. */
export function defaultModelPath(): string {
  // Until the embedded default model exists, the tiny fixture model stands in (random weights).
  return fileURLToPath(new URL("../../tests/fixtures/tiny-gqa", import.meta.url));
}

export function resolveModelArg(arg: string | undefined): string {
  const path = arg ?? defaultModelPath();
  if (!existsSync(path)) throw new Error(`model "${path}" not found: pass --model with a folder holding config.json and weights`);
  return path;
}
