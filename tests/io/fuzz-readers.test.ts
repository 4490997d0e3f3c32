// The short version of `npm run bench:fuzz` (bench/fuzz.mjs): seeded mutations of every reader's
// fixture (safetensors, PyTorch zip + pickle, GGUF, SentencePiece protobuf, config.json, including a
// config claiming millions of layers, a 1e8 context or a 2^24 vocabulary next to a 0.4 MB
// checkpoint), each in a child process with a hang watchdog. Every case loads or fails with the
// project's own error naming the file; none hangs; and no case (every input is under 1 MB) makes
// loadModel allocate more than 256 MB (ArrayBuffers plus wasm memory growth) before failing.
import { execFileSync } from "node:child_process";
import { resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { TESTS_DIR } from "../helpers.js";

describe("reader fuzz (short)", () => {
  it("zero raw errors, zero hangs, at most 256 MB allocated by any case of under 1 MB", () => {
    const out = execFileSync(process.execPath, ["bench/fuzz.mjs", "--quick", "--json", "--cases", "80"], {
      cwd: resolve(TESTS_DIR, ".."),
      encoding: "utf8",
      maxBuffer: 1 << 26,
    })
      .trim()
      .split("\n")
      .pop()!;
    const summary = JSON.parse(out) as {
      rows: {
        reader: string;
        cases: number;
        loaded: number;
        refused: number;
        raw: number;
        hangs: number;
        maxAllocatedMB: number;
        peakRssMB: number;
      }[];
      raw: string[];
      hangs: string[];
    };
    expect(summary.raw).toEqual([]);
    expect(summary.hangs).toEqual([]);
    for (const r of summary.rows) {
      expect(r.cases, r.reader).toBe(80);
      expect(r.loaded + r.refused, r.reader).toBe(80);
      expect(r.maxAllocatedMB, `${r.reader}: most allocated by one case`).toBeLessThan(256);
    }
    // the mutations reach past the first checks: some cases of each kind still load
    expect(summary.rows.find((r) => r.reader === "config")!.loaded).toBeGreaterThan(0);
    expect(summary.rows.map((r) => r.reader)).toContain("gguf");
  });
});
