// Error messages that point at the fix (built CLI as a child process), the UTF-8 offset finder
// against TextDecoder, and ppl's seqlen default on the 512-position default model.
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { defaultModel } from "../../src/load.js";
import { firstInvalidUtf8 } from "../../src/util/utf8.js";
import { HAS_BIN, mobilellm } from "./bin-helpers.js";

const tmp = mkdtempSync(join(tmpdir(), "mobilellm-errors-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe("firstInvalidUtf8", () => {
  it("is -1 exactly when TextDecoder accepts, on random bytes and on near-UTF-8 text", () => {
    const strict = new TextDecoder("utf-8", { fatal: true });
    const valid = (b: Uint8Array) => {
      try {
        strict.decode(b);
        return true;
      } catch {
        return false;
      }
    };
    const nearText = fc
      .array(fc.oneof(fc.integer({ min: 0, max: 0x7f }), fc.integer({ min: 0x80, max: 0xff })), { maxLength: 24 })
      .map((a) => Uint8Array.from(a));
    const encoded = fc
      .tuple(fc.string({ unit: "grapheme", maxLength: 12 }), fc.nat(40), fc.integer({ min: 0, max: 255 }))
      .map(([s, at, byte]) => {
        const b = new TextEncoder().encode(s);
        if (b.length) b[at % b.length] = byte;
        return b;
      });
    fc.assert(
      fc.property(fc.oneof(nearText, encoded, fc.uint8Array({ maxLength: 16 })), (b) => {
        const at = firstInvalidUtf8(b);
        expect(at === -1).toBe(valid(b));
        if (at >= 0) {
          expect(valid(b.subarray(0, at))).toBe(true); // everything before the offset is fine
        }
      }),
      { numRuns: 3000 },
    );
  });

  it("names the first bad sequence", () => {
    expect(firstInvalidUtf8(new TextEncoder().encode("héllo"))).toBe(-1);
    expect(firstInvalidUtf8(Uint8Array.from([0x61, 0x62, 0xff]))).toBe(2);
    expect(firstInvalidUtf8(Uint8Array.from([0x61, 0xc3]))).toBe(1); // truncated
    expect(firstInvalidUtf8(Uint8Array.from([0xc0, 0x80]))).toBe(0); // overlong
    expect(firstInvalidUtf8(Uint8Array.from([0x61, 0xed, 0xa0, 0x80]))).toBe(1); // surrogate
    expect(firstInvalidUtf8(Uint8Array.from([0xf4, 0x90, 0x80, 0x80]))).toBe(0); // > U+10FFFF
  });
});

describe.skipIf(!HAS_BIN)("error messages (built CLI)", () => {
  it("a folder with config.json but no weights says so before looking for a tokenizer", () => {
    const dir = join(tmp, "config-only");
    mkdirSync(dir);
    cpSync(join(defaultModel, "config.json"), join(dir, "config.json"));
    for (const args of [
      ["generate", "-m", dir, "--prompt", "hi"],
      ["ppl", "-m", dir, "--data", join(defaultModel, "README.md")],
    ]) {
      const r = mobilellm(args);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`${dir}: has config.json but no weights: expected one of model.safetensors`);
      expect(r.stderr).not.toMatch(/tokenizer/);
    }
  });

  it("-m on a training run folder points at its latest checkpoint-N", () => {
    const run = join(tmp, "runs", "a");
    for (const step of [100, 2000, 300]) cpSync(defaultModel, join(run, `checkpoint-${step}`), { recursive: true });
    writeFileSync(join(run, "loss.jsonl"), "");
    const r = mobilellm(["generate", "-m", run, "--prompt", "hi"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      `${run} is a training run folder, not a model; pass one of its checkpoints, e.g. the latest: ${join(run, "checkpoint-2000")}`,
    );
    expect(mobilellm(["generate", "-m", join(run, "checkpoint-2000"), "--prompt", "hi", "-n", "2"]).code).toBe(0);
  });

  it("non-UTF-8 text files are refused with the byte offset (ppl, prepare, train-tokenizer)", () => {
    const bad = join(tmp, "latin1.txt");
    writeFileSync(bad, Buffer.concat([Buffer.from("ROMEO: caf"), Buffer.from([0xe9]), Buffer.from(" au lait\n")]));
    const expectOffset = (r: { code: number | null; stderr: string }) => {
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(
        new RegExp(`${bad.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}: not valid UTF-8 (text )?at byte 10 \\(bytes e9 20 61 75\\)`),
      );
    };
    expectOffset(mobilellm(["ppl", "--data", bad]));
    expectOffset(mobilellm(["prepare", "--tokenizer", defaultModel, "--input", bad, "--out", join(tmp, "d"), "--seq-len", "4"]));
    expectOffset(mobilellm(["train-tokenizer", "--input", bad, "--vocab-size", "300", "--out", join(tmp, "t.model")]));
  });

  it("ppl on the 512-position default model uses seqlen 512 and says so; an explicit larger one is refused", () => {
    const r = mobilellm(["ppl", "--data", join(defaultModel, "README.md"), "--limit-windows", "1", "--json"]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).seqlen).toBe(512);
    expect(r.stderr).toContain("seqlen 512: the model's context (max_position_embeddings) is shorter than eval.py's 2048");
    const big = mobilellm(["ppl", "--data", join(defaultModel, "README.md"), "--seqlen", "2048"]);
    expect(big.code).toBe(2);
    expect(big.stderr).toContain("--seqlen 2048 exceeds the model's 512-position context");
  });
});
