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

const runtimes: [string, string, string[]][] = ["ts", "wasm"].flatMap((backend): [string, string, string[]][] => [
  [`node (${backend})`, process.execPath, [script, fixture, backend]],
  [`deno (${backend})`, bin("deno"), ["run", "--allow-read", "--allow-env", "--no-prompt", script, fixture, backend]],
  [`bun (${backend})`, bin("bun"), [script, fixture, backend]],
]);

describe("runtimes (built package)", () => {
  beforeAll(() => {
    if (!existsSync(join(ROOT, "dist", "index.js"))) throw new Error("dist/ is missing: run `npm run build` (npm test does it first)");
  });
  it.each(runtimes)("%s runs a forward pass matching the reference", (_name, exe, args) => {
    const out = execFileSync(exe, args, { cwd: ROOT, encoding: "utf8", env: { ...process.env, NO_COLOR: "1" } });
    const { maxAbsDiff, n } = JSON.parse(out.trim().split("\n").pop()!);
    expect(n).toBe(24 * 512);
    expect(maxAbsDiff).toBeLessThan(1e-4);
  });
});
