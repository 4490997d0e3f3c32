// Test helpers: reading the fixtures' reference tensors.
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { readSafetensors } from "./io/pytorch-helpers.js";

export const TESTS_DIR = dirname(fileURLToPath(import.meta.url));
export const FIXTURES = join(TESTS_DIR, "fixtures");
export const FIXTURE_NAMES = ["tiny-gqa", "tiny-ls", "tiny-mha-unshared"] as const;
/** ../shared beside the repo (present for developers and CI, absent in a user's clone). */
export const SHARED = resolve(TESTS_DIR, "..", "..", "shared");
export const HAS_SHARED = existsSync(SHARED);

/**
 * Read one tensor of a safetensors file as numbers (F32 -> Float32Array, I64 -> number[]), with
 * the tests' own minimal parser (pytorch-helpers.ts), synchronously.
 */
export function readTensor(path: string, name: string): Float32Array | number[] {
  const t = readSafetensors(path).get(name);
  if (!t) throw new Error(`${path} has no tensor ${name}`);
  const bytes = t.bytes.slice(); // aligned copy
  if (t.dtype === "I64") return Array.from(new BigInt64Array(bytes.buffer), Number);
  if (t.dtype === "F32") return new Float32Array(bytes.buffer);
  throw new Error(`unsupported dtype ${t.dtype}`);
}

export function expected(fixture: string, name: string): Float32Array {
  return readTensor(join(FIXTURES, fixture, "expected.safetensors"), name) as Float32Array;
}

export function expectedIds(fixture: string, name: string): number[] {
  return readTensor(join(FIXTURES, fixture, "expected.safetensors"), name) as number[];
}

/** Largest |a[i] - b[i]|. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    if (!(d <= m)) m = Number.isNaN(d) ? Infinity : d;
  }
  return m;
}
