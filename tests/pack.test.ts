// `npm pack` on a fresh clone ships a working package: the repository's HEAD is cloned into a
// temporary folder (no dist/, no build/), `npm pack` runs the prepack script (TypeScript and the
// WASM kernels), and a fresh consumer project installs the tarball offline (the package's one
// dependency packed from node_modules beside it) and imports "mobilellm" by name in Node, Deno and Bun,
// generating with the embedded default model; then Chromium loads it from the tarball's files
// through an import map, as the README shows. All must produce the ids of `mobilellm generate`.
//
// The clone borrows this checkout's node_modules (a symlink) instead of running `npm ci`: the
// point is that nothing BUILT leaks in, and installing the dev tools again would only cost time.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CHROMIUM, launchChromium, NO_CHROMIUM, REQUIRE_BROWSER } from "./chromium.js";
import { TESTS_DIR } from "./helpers.js";

const ROOT = join(TESTS_DIR, "..");
const bin = (name: string) => join(ROOT, "node_modules", ".bin", name);
const PROMPT = "ROMEO:",
  N = 20; // the prompt and length of the README example

const run = (exe: string, args: string[], cwd: string) =>
  execFileSync(exe, args, { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, NO_COLOR: "1" } });

/** The consumer's script: the package imported by name, greedy ids of the default model on one line of JSON. */
const CONSUMER = `import { generate, loadModel, loadTokenizer } from "mobilellm";
const model = await loadModel();
const tokenizer = await loadTokenizer();
const r = await generate(model, ${JSON.stringify(PROMPT)}, { tokenizer, maxNewTokens: ${N}, temperature: 0 }).result;
await model.dispose();
console.log(JSON.stringify({ ids: r.ids, text: r.text }));
`;

/**
 * The page: README.md's import-map example exactly as written (its one ```html block), served from
 * the consumer project; it appends the generated text (20 tokens, greedy by default) to the body.
 */
function readmePage(): string {
  const blocks = readFileSync(join(ROOT, "README.md"), "utf8")
    .split("```html\n")
    .slice(1)
    .map((b) => b.slice(0, b.indexOf("```")));
  if (blocks.length !== 1) throw new Error(`README.md should hold one html block (the import map example), found ${blocks.length}`);
  return `<!doctype html>\n${blocks[0]}`;
}

describe("npm pack on a fresh clone", () => {
  let work: string, consumer: string, files: string[];
  let reference: { ids: number[]; text: string };

  beforeAll(() => {
    if (!existsSync(join(ROOT, "dist", "cli", "main.js")))
      throw new Error("dist/ is missing: run `npm run build` (npm test does it first)");
    reference = JSON.parse(
      run(
        process.execPath,
        [join(ROOT, "dist", "cli", "main.js"), "generate", "--prompt", PROMPT, "--max-new-tokens", String(N), "--json"],
        ROOT,
      )
        .trim()
        .split("\n")[0]!,
    );
    work = mkdtempSync(join(tmpdir(), "mobilellm-pack-"));
    const clone = join(work, "clone");
    run("git", ["clone", "--quiet", "--no-hardlinks", ROOT, clone], work);
    expect(existsSync(join(clone, "dist"))).toBe(false);
    expect(existsSync(join(clone, "build"))).toBe(false);
    symlinkSync(join(ROOT, "node_modules"), join(clone, "node_modules"), "dir");
    const packed = JSON.parse(run("npm", ["pack", "--json", "--pack-destination", work], clone)) as {
      filename: string;
      files: { path: string }[];
    }[];
    files = packed[0]!.files.map((f) => f.path);
    consumer = join(work, "consumer");
    mkdirSync(consumer);
    writeFileSync(join(consumer, "package.json"), JSON.stringify({ name: "consumer", private: true, type: "module" }));
    // the package's dependencies, packed from this checkout's node_modules: the install needs no registry
    const deps = Object.keys(JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")).dependencies ?? {}).map((name) =>
      join(
        work,
        (
          JSON.parse(
            run("npm", ["pack", "--json", "--ignore-scripts", "--pack-destination", work, join(ROOT, "node_modules", name)], work),
          ) as { filename: string }[]
        )[0]!.filename,
      ),
    );
    run("npm", ["install", "--offline", "--no-audit", "--no-fund", join(work, packed[0]!.filename), ...deps], consumer);
    writeFileSync(join(consumer, "main.mjs"), CONSUMER);
    writeFileSync(join(consumer, "index.html"), readmePage());
  }, 480_000);

  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it("ships the built code, the WASM kernels, the default model, the sources its maps point at, and the LICENSE", () => {
    for (const f of [
      "dist/index.js",
      "dist/index.d.ts",
      "dist/browser.js",
      "dist/cli/main.js",
      "build/kernels.wasm",
      "build/kernels-shared.wasm",
      "models/shakespeare-2m/model.safetensors",
      "models/shakespeare-2m/tokenizer.model",
      "src/index.ts",
      "LICENSE",
      "README.md",
      "package.json",
    ]) {
      expect(files, f).toContain(f);
    }
    expect(files.filter((f) => f.startsWith("tests/") || f.startsWith("node_modules/"))).toEqual([]);
    // every source map names sources that ship
    const dist = join(consumer, "node_modules", "mobilellm", "dist");
    const maps = readdirSync(dist, { recursive: true, encoding: "utf8" }).filter((f) => f.endsWith(".js.map"));
    expect(maps.length).toBeGreaterThan(0);
    for (const map of maps) {
      for (const source of JSON.parse(readFileSync(join(dist, map), "utf8")).sources as string[]) {
        expect(existsSync(join(dist, dirname(map), source)), `${map} -> ${source}`).toBe(true);
      }
    }
  });

  it.each([
    ["node", () => [process.execPath, ["main.mjs"]] as const],
    ["deno", () => [bin("deno"), ["run", "--allow-read", "--allow-env", "--no-prompt", "main.mjs"]] as const],
    ["bun", () => [bin("bun"), ["main.mjs"]] as const],
  ])(
    "%s imports the installed package and generates the CLI's greedy ids",
    (_name, cmd) => {
      const [exe, args] = cmd();
      const out = JSON.parse(
        run(exe, [...args], consumer)
          .trim()
          .split("\n")
          .pop()!,
      );
      expect(out.ids).toEqual(reference.ids);
      expect(out.text).toBe(reference.text);
    },
    120_000,
  );

  it.skipIf(!CHROMIUM && !REQUIRE_BROWSER)(
    "Chromium runs the README's import-map page on the tarball's files: the same text",
    async () => {
      if (!CHROMIUM) throw new Error(NO_CHROMIUM);
      const { startServer } = (await import("../scripts/serve-web.mjs")) as {
        startServer(o: { root: string; isolation: boolean }): Promise<{ url: string; close(): Promise<void> }>;
      };
      const server = await startServer({ root: consumer, isolation: false });
      const browser = await launchChromium();
      try {
        const page = await browser.context.newPage();
        const errors: string[] = [];
        page.on("pageerror", (e) => errors.push(String(e)));
        await page.goto(`${server.url}/index.html`);
        await page
          .waitForFunction(() => document.body.textContent!.length > 0, null, { timeout: 60_000 })
          .catch(() => {
            throw new Error(`the page produced no text; its errors: ${errors.join("; ") || "none"}`);
          });
        expect(await page.evaluate(() => document.body.textContent)).toBe(reference.text);
      } finally {
        await browser.dispose();
        await server.close();
      }
    },
    120_000,
  );
});
