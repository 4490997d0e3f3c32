// Fuzzing the pytorch_model.bin reader: random mutations of a real fixture must either load
// (every tensor read) or fail with a CheckpointError that names the file — never hang, never crash
// with an internal error. Two levels: raw bytes of the zip (mostly caught by the zip structure
// and the CRCs), and bytes of data.pkl re-zipped with valid CRCs (reaches the unpickler).

import * as fs from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { openPytorchCheckpoint } from "../../src/io/files.js";
import { CheckpointError, FILE_DTYPE_BYTES } from "../../src/io/tensor-file.js";
import { makeTempDir, openZip, writeTemp, writeZip, type ZipInput } from "./pytorch-helpers.js";

const fixture = path.join(path.dirname(path.dirname(fileURLToPath(import.meta.url))), "fixtures", "tiny-mha-unshared", "pytorch_model.bin");
const original = new Uint8Array(fs.readFileSync(fixture));
const tmp = makeTempDir();
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** The fixture's records, to re-zip with a mutated data.pkl. */
const records: ZipInput[] = await (async () => {
  const z = await openZip(fixture);
  const out: ZipInput[] = [];
  for (const e of z.entries.values()) out.push({ name: e.name, data: await z.readEntry(e) });
  z.close();
  return out;
})();
const pickleIndex = records.findIndex((r) => r.name.endsWith("/data.pkl"));

type Mutation =
  | { kind: "flip"; at: number; bit: number }
  | { kind: "set"; at: number; bytes: Uint8Array }
  | { kind: "truncate"; at: number }
  | { kind: "insert"; at: number; bytes: Uint8Array };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant("flip" as const), at: fc.nat(), bit: fc.nat(7) }),
  fc.record({ kind: fc.constant("set" as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }) }),
  fc.record({ kind: fc.constant("truncate" as const), at: fc.nat() }),
  fc.record({ kind: fc.constant("insert" as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }) }),
);

/** Apply mutations; positions are taken modulo the length, half of them aimed at the last 2 KB (the directory). */
function mutate(src: Uint8Array, ms: Mutation[], tailBias: boolean): Uint8Array {
  let b = src.slice();
  for (const m of ms) {
    const n = Math.max(1, b.length);
    const at = tailBias ? Math.max(0, n - 1 - (m.at % Math.min(n, 2048))) : m.at % n;
    if (m.kind === "flip") b[at] = (b[at] ?? 0) ^ (1 << m.bit);
    else if (m.kind === "set") b.set(m.bytes.subarray(0, Math.max(0, b.length - at)), at);
    else if (m.kind === "truncate") b = b.slice(0, at);
    else {
      const grown = new Uint8Array(b.length + m.bytes.length);
      grown.set(b.subarray(0, at));
      grown.set(m.bytes, at);
      grown.set(b.subarray(at), at + m.bytes.length);
      b = grown;
    }
  }
  return b;
}

let counter = 0;
/** Open and read every tensor; return "ok" or the error. */
async function load(bytes: Uint8Array): Promise<{ file: string; result: "ok" | Error }> {
  const file = writeTemp(tmp, `fuzz-${counter++ % 4}.bin`, bytes);
  try {
    const f = await openPytorchCheckpoint(file);
    try {
      for (const t of f.tensors.values()) {
        const n = t.numel * FILE_DTYPE_BYTES[t.dtype];
        if (n > 64 << 20) continue; // a mutated expand (stride 0) view can be huge but valid
        await t.read(new Uint8Array(n));
      }
    } finally {
      f.close();
    }
    return { file, result: "ok" };
  } catch (e) {
    return { file, result: e as Error };
  }
}

function expectCleanOutcome({ file, result }: { file: string; result: "ok" | Error }): void {
  if (result === "ok") return;
  if (!(result instanceof CheckpointError)) throw new Error(`internal error instead of a CheckpointError: ${result.stack ?? result}`);
  expect(result.message).toContain(file);
  expect(result.message.length).toBeGreaterThan(file.length + 10);
}

describe("fuzz: mutated pytorch_model.bin", () => {
  it("the unmutated fixture loads", async () => {
    expect((await load(original)).result).toBe("ok");
    expect((await load(writeZip(records))).result).toBe("ok");
  });

  it("raw byte mutations of the zip: loads or throws a CheckpointError naming the file", async () => {
    let failures = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(mutation, { minLength: 1, maxLength: 3 }), fc.boolean(), async (ms, tail) => {
        const out = await load(mutate(original, ms, tail));
        if (out.result !== "ok") failures++;
        expectCleanOutcome(out);
      }),
      { numRuns: 200, seed: 1234 },
    );
    expect(failures).toBeGreaterThan(50); // the mutations do break files
  });

  it("mutations of data.pkl inside a valid zip: loads or throws a CheckpointError naming the file", async () => {
    let failures = 0;
    const pkl = records[pickleIndex]!.data;
    await fc.assert(
      fc.asyncProperty(fc.array(mutation, { minLength: 1, maxLength: 3 }), async (ms) => {
        const rec = records.slice();
        rec[pickleIndex] = { name: rec[pickleIndex]!.name, data: mutate(pkl, ms, false) };
        const out = await load(writeZip(rec));
        if (out.result !== "ok") failures++;
        expectCleanOutcome(out);
      }),
      { numRuns: 200, seed: 5678 },
    );
    expect(failures).toBeGreaterThan(50);
  });
});
