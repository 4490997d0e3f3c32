// The built package (dist/) imports and runs a forward pass in Node, Deno and Bun.
// Deno and Bun come from the npm registry as dev dependencies. `npm test` builds dist/ first.
import { execFile, execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
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

// The browser entry in the same three runtimes: a map of Blobs, and a folder URL served here.
describe("runtimes: the browser entry loads from Blobs and a URL", () => {
  let base = "";
  const server = createServer((req, res) => {
    const name = decodeURIComponent(new URL(req.url!, "http://x").pathname).slice(1);
    if (!["config.json", "model.safetensors", "generation_config.json"].includes(name) || !existsSync(join(fixture, name)))
      return void res.writeHead(404).end();
    const data = readFileSync(join(fixture, name));
    const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? "");
    if (!m) return void res.writeHead(200, { "Content-Length": String(data.length) }).end(data);
    const end = Math.min(Number(m[2]), data.length - 1);
    res.writeHead(206, { "Content-Range": `bytes ${m[1]}-${end}/${data.length}` }).end(data.subarray(Number(m[1]), end + 1));
  });
  beforeAll(async () => {
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  });
  afterAll(() => new Promise((resolve) => server.close(resolve)));

  const sources = join("tests", "runtime", "sources.mjs");
  it.each([
    ["node", process.execPath, [] as string[]],
    ["deno", bin("deno"), ["run", "--allow-read", "--allow-env", "--allow-net=127.0.0.1", "--no-prompt"]],
    ["bun", bin("bun"), []],
  ])("%s", async (_name, exe, flags) => {
    // asynchronously: the server answering the runtime's requests lives in this process
    const out = await new Promise<string>((resolve, reject) =>
      execFile(
        exe,
        [...flags, sources, fixture, base],
        { cwd: ROOT, encoding: "utf8", env: { ...process.env, NO_COLOR: "1" } },
        (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout)),
      ),
    );
    const r = JSON.parse(out.trim().split("\n").pop()!);
    expect(r.blob).toBeLessThan(1e-4);
    expect(r.url).toBeLessThan(1e-4);
    expect(r.same).toBe(true);
  });
});
