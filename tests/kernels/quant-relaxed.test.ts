// The relaxed-SIMD build (int8 dots, assembly/quant.ts) gives the same bits as the baseline build
// and the TS reference for q8_0/q4_0 matmuls. Node 20 has relaxed SIMD only behind
// --experimental-wasm-relaxed-simd, and that implementation returns wrong relaxed dot products,
// so the loader's self-test must reject it there; Deno and Bun (dev dependencies, as in
// runtimes.test.ts) run the relaxed build, and tests/quant/relaxed-check.mjs compares it there.
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { createWasmKernels } from "../../src/kernels/wasm/index.js";
import { TESTS_DIR } from "../helpers.js";

const ROOT = join(TESTS_DIR, "..");
const bin = (name: string) => join(ROOT, "node_modules", ".bin", name);
const script = join("tests", "quant", "relaxed-check.mjs");
const built = existsSync(join(ROOT, "dist", "kernels", "wasm", "index.js"));

describe("relaxed-SIMD kernels", () => {
  it.skipIf(!built).each([
    ["deno", bin("deno"), ["run", "--allow-read", "--allow-env", "--no-prompt", script]],
    ["bun", bin("bun"), [script]],
  ] as const)(
    "%s: the relaxed build agrees bit for bit with the baseline build and the TS reference (300 random shapes)",
    (_name, exe, args) => {
      const out = execFileSync(exe, [...args], { cwd: ROOT, encoding: "utf8", env: { ...process.env, NO_COLOR: "1" } });
      expect(JSON.parse(out.trim().split("\n").pop()!)).toMatchObject({ relaxedSimd: true, baseline: true, cases: 300, mismatches: 0 });
    },
  );

  it.skipIf(!built)("node 20 with --experimental-wasm-relaxed-simd: the self-test rejects its relaxed dot, the baseline runs", () => {
    const out = execFileSync(process.execPath, ["--experimental-wasm-relaxed-simd", script], { cwd: ROOT, encoding: "utf8" });
    const r = JSON.parse(out.trim().split("\n").pop()!);
    expect(r.mismatches).toBe(0);
    if (process.versions.node.startsWith("20.")) expect(r.relaxedSimd).toBe(false);
  });

  it("relaxedSimd: false forces the baseline; relaxedSimd: true is an error where the runtime cannot run it", async () => {
    expect((await createWasmKernels({ relaxedSimd: false })).relaxedSimd).toBe(false);
    if (!(await createWasmKernels()).relaxedSimd) {
      await expect(createWasmKernels({ relaxedSimd: true })).rejects.toThrow(/relaxedSimd: true, but this runtime/);
    }
  });
});
