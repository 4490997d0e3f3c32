// --backend NAME and --threads N: the same flags, defaults and checks on every command that computes.

import { BACKENDS, type BackendName } from "../kernels/index.js";
import type { OptionSpec } from "./command.js";
import { UsageError } from "./command.js";

export const BACKEND_OPTION: OptionSpec = {
  type: "string",
  value: "NAME",
  description: "kernel backend: wasm (SIMD) or ts (readable reference)",
  default: "wasm",
};

/** The --backend value, checked (undefined only when the option has no default and was not given). */
export function parseBackend(value: unknown): BackendName;
export function parseBackend(value: unknown, allowUndefined: true): BackendName | undefined;
export function parseBackend(value: unknown, allowUndefined = false): BackendName | undefined {
  if (value === undefined && allowUndefined) return undefined;
  if (!(BACKENDS as readonly unknown[]).includes(value)) {
    throw new UsageError(`--backend must be ${BACKENDS.join(" or ")}, got ${JSON.stringify(value)}`);
  }
  return value as BackendName;
}

export const THREADS_OPTION: OptionSpec = {
  type: "string",
  value: "N",
  description: "threads for the wasm kernels (default: every available core; 1 runs no worker threads); outputs are identical for any N",
};

/** The --threads value as loadModel/pretrain's `threads` option (undefined: the machine's default). */
export function parseThreads(value: unknown, backend: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!(Number.isInteger(n) && n >= 1 && n <= 64))
    throw new UsageError(`--threads expects an integer from 1 to 64, got ${JSON.stringify(value)}`);
  if (backend === "ts" && n !== 1) throw new UsageError(`the ts reference backend runs on one thread; --threads ${n} needs --backend wasm`);
  return n;
}
