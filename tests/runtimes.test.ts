// The built package (dist/) imports and runs a forward pass in Node, Deno and Bun.
// Deno and Bun come from the npm registry as dev dependencies. `npm test` builds dist/ first.
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { FIXTURES, TESTS_DIR } from "./helpers.js";

const ROOT = join(TESTS_DIR, "..");
const bin = (name: string) => join(ROOT, "node_modules", ".bin", name);
const script = join("tests", "runtime", "forward.mjs");
const fixture = join(FIXTURES, "tiny-gqa");

// [backend, threads]: "wasm, 3" splits every kernel call across 3 threads (node:worker_threads workers)
const setups = [["ts"], ["wasm", "1"], ["wasm", "3"]];
const runtimes: [string, string, string[]][] = setups.flatMap((setup): [string, string, string[]][] => [
  [`node (${setup.join(", ")})`, process.execPath, [script, fixture, ...setup]],
  [`deno (${setup.join(", ")})`, bin("deno"), ["run", "--allow-read", "--allow-env", "--no-prompt", script, fixture, ...setup]],
  [`bun (${setup.join(", ")})`, bin("bun"), [script, fixture, ...setup]],
]);

describe("runtimes (built package)", () => {
  beforeAll(() => {
    if (!existsSync(join(ROOT, "dist", "index.js"))) throw new Error("dist/ is missing: run `npm run build` (npm test does it first)");
  });
  it.each(runtimes)("%s runs a forward pass matching the reference", (_name, exe, args) => {
    const out = execFileSync(exe, args, { cwd: ROOT, encoding: "utf8", env: { ...process.env, NO_COLOR: "1" } });
    const { maxAbsDiff, n, threads } = JSON.parse(out.trim().split("\n").pop()!);
    expect(n).toBe(24 * 512);
    if (args.at(-1) === "3") expect(threads).toBe(3);
    expect(maxAbsDiff).toBeLessThan(1e-4);
  });
});
