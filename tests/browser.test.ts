// End to end in a real browser: Debian's Chromium, driven by playwright-core, against the demo
// (examples/web/) served by scripts/serve-web.mjs on 127.0.0.1 (a random port).
//  (a) the embedded default model, greedy: the page's token ids equal `mobilellm generate` in Node,
//      once cross-origin isolated (threaded kernels, shared memory) and once without isolation (no
//      SharedArrayBuffer: one thread, ordinary memory); a screenshot of each goes to test-results/.
//  (b) fixture models from a URL and from File objects give the fixtures' greedy ids.
//  (c) a 404 and a truncated weights file show a readable error on the page, in bounded time.
// Without Chromium the tests are skipped and say so; under CI=true a missing Chromium FAILS
// (.ci/run installs Debian's chromium), so CI never skips them.
import { execFileSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, truncateSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CHROMIUM, launchChromium, NO_CHROMIUM, REQUIRE_BROWSER } from "./chromium.js";
import { FIXTURES, TESTS_DIR } from "./helpers.js";

const ROOT = join(TESTS_DIR, "..");
const ARTIFACTS = join(ROOT, "test-results");
/** Longest a load or a generation may take before the test calls the worker hung. */
const BOUND_MS = 60_000;

type Server = { url: string; close(): Promise<void> };
const { startServer } = (await import("../scripts/serve-web.mjs")) as {
  startServer(o: { isolation?: boolean; port?: number; mounts?: Record<string, string> }): Promise<Server>;
};

if (!CHROMIUM) {
  if (REQUIRE_BROWSER) {
    it("Chromium is installed (on CI the browser tests must not be skipped)", () => {
      throw new Error(`${NO_CHROMIUM}: .ci/run installs it; CI must run the browser tests`);
    });
  } else {
    console.warn(`tests/browser.test.ts: SKIPPED: ${NO_CHROMIUM}`);
  }
}

interface Run {
  ids: number[];
  text: string;
  state: string;
  error: string;
  status: string;
  threads: string;
  memory: string;
}

/** Drive the demo: choose a source, Load, then (when it loaded) Generate greedily. */
async function runDemo(
  page: Page,
  base: string,
  o: {
    source: "default" | "url" | "files";
    url?: string;
    files?: string[];
    prompt: string;
    asIds?: boolean;
    maxNewTokens: number;
    screenshot?: string;
  },
): Promise<Run> {
  await page.goto(`${base}/examples/web/`);
  await page.check(`input[name=source][value=${o.source}]`);
  if (o.url) await page.fill("#url", o.url);
  if (o.files) await page.setInputFiles("#files", o.files);
  await page.click("#load");
  await page.waitForFunction(() => ["ready", "error"].includes(document.body.dataset.state!), null, { timeout: BOUND_MS });
  if ((await page.getAttribute("body", "data-state")) === "ready") {
    await page.fill("#prompt", o.prompt);
    if (o.asIds) await page.check("#as-ids");
    await page.fill("#max-new-tokens", String(o.maxNewTokens));
    await page.click("#generate");
    await page.waitForFunction(() => ["done", "error"].includes(document.body.dataset.state!), null, { timeout: BOUND_MS });
  }
  if (o.screenshot) {
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, o.screenshot), fullPage: true });
  }
  const text = async (sel: string) => (await page.textContent(sel)) ?? "";
  const idsText = await text("#ids");
  return {
    ids: idsText.trim() === "" ? [] : idsText.split(",").map(Number),
    text: await text("#output"),
    state: (await page.getAttribute("body", "data-state")) ?? "",
    error: (await page.isVisible("#error")) ? await text("#error") : "",
    status: await text("#status"),
    threads: (await page.getAttribute("body", "data-threads")) ?? "",
    memory: (await page.getAttribute("body", "data-memory")) ?? "",
  };
}

const fixtureJson = (name: string) =>
  JSON.parse(readFileSync(join(FIXTURES, name, "expected.json"), "utf8")) as { input_ids: number[]; greedy_ids: number[] };

describe.skipIf(!CHROMIUM)("the web demo in Chromium", () => {
  const PROMPT = "ROMEO:",
    N = 24;
  let browser: Awaited<ReturnType<typeof launchChromium>>;
  let isolated: Server, plain: Server;
  let scratch: string;
  let nodeRun: { ids: number[]; text: string };

  beforeAll(async () => {
    if (!existsSync(join(ROOT, "dist", "browser.js")))
      throw new Error("dist/browser.js is missing: run `npm run build` (npm test does it first)");
    // a folder with a truncated weights file, served beside the package
    scratch = mkdtempSync(join(tmpdir(), "mobilellm-web-"));
    mkdirSync(join(scratch, "truncated"));
    copyFileSync(join(FIXTURES, "tiny-gqa", "config.json"), join(scratch, "truncated", "config.json"));
    copyFileSync(join(FIXTURES, "tiny-gqa", "model.safetensors"), join(scratch, "truncated", "model.safetensors"));
    truncateSync(join(scratch, "truncated", "model.safetensors"), 40_000);
    const mounts = { "/scratch/": scratch };
    [isolated, plain, browser] = await Promise.all([
      startServer({ isolation: true, mounts }),
      startServer({ isolation: false, mounts }),
      launchChromium(),
    ]);
    // the reference: the CLI in Node, same prompt, greedy
    const out = execFileSync(
      process.execPath,
      [join(ROOT, "dist", "cli", "main.js"), "generate", "--prompt", PROMPT, "--max-new-tokens", String(N), "--json"],
      { cwd: ROOT, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] },
    );
    nodeRun = JSON.parse(out.trim().split("\n")[0]!);
  }, 120_000);

  afterAll(async () => {
    await browser?.dispose();
    await isolated?.close();
    await plain?.close();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  it("(a) cross-origin isolated: threaded, greedy ids equal `mobilellm generate` in Node token for token", async () => {
    const page = await browser.context.newPage();
    const r = await runDemo(page, isolated.url, {
      source: "default",
      prompt: PROMPT,
      maxNewTokens: N,
      screenshot: "web-demo-isolated.png",
    });
    expect(r.error).toBe("");
    expect(await page.evaluate(() => globalThis.crossOriginIsolated)).toBe(true);
    expect(r.memory).toBe("shared");
    expect(Number(r.threads)).toBe(await page.evaluate(() => navigator.hardwareConcurrency));
    expect(r.ids).toEqual(nodeRun.ids);
    expect(r.text).toBe(nodeRun.text);
    await page.close();
  }, 120_000);

  it("(a) without isolation: no SharedArrayBuffer, one thread, the same ids and text", async () => {
    const page = await browser.context.newPage();
    const r = await runDemo(page, plain.url, {
      source: "default",
      prompt: PROMPT,
      maxNewTokens: N,
      screenshot: "web-demo-not-isolated.png",
    });
    expect(r.error).toBe("");
    expect(await page.evaluate(() => typeof SharedArrayBuffer)).toBe("undefined");
    expect(r.memory).toBe("unshared");
    expect(r.threads).toBe("1");
    expect(r.ids).toEqual(nodeRun.ids);
    expect(r.text).toBe(nodeRun.text);
    await page.close();
  }, 120_000);

  it("(b) a fixture model from a URL gives the fixture's greedy ids", async () => {
    const page = await browser.context.newPage();
    const { input_ids, greedy_ids } = fixtureJson("tiny-mha-unshared");
    const r = await runDemo(page, plain.url, {
      source: "url",
      url: `${plain.url}/tests/fixtures/tiny-mha-unshared/`,
      prompt: input_ids.join(","),
      asIds: true,
      maxNewTokens: greedy_ids.length,
    });
    expect(r.error).toBe("");
    expect(r.ids).toEqual(greedy_ids);
    expect(Number(await page.getAttribute("body", "data-progress-events"))).toBeGreaterThan(0); // the progress bar moved
    await page.close();
  }, 120_000);

  it("(b) a fixture model from File objects (<input type=file>) gives the fixture's greedy ids", async () => {
    const page = await browser.context.newPage();
    const { input_ids, greedy_ids } = fixtureJson("tiny-ls");
    const dir = join(FIXTURES, "tiny-ls");
    const r = await runDemo(page, isolated.url, {
      source: "files",
      files: [join(dir, "config.json"), join(dir, "model.safetensors")],
      prompt: input_ids.join(","),
      asIds: true,
      maxNewTokens: greedy_ids.length,
    });
    expect(r.error).toBe("");
    expect(r.ids).toEqual(greedy_ids);
    await page.close();
  }, 120_000);

  it("Stop aborts a long generation: the page says so and keeps the tokens so far", async () => {
    const page = await browser.context.newPage();
    await page.goto(`${plain.url}/examples/web/`);
    await page.click("#load");
    await page.waitForFunction(() => ["ready", "error"].includes(document.body.dataset.state!), null, { timeout: BOUND_MS });
    await page.fill("#max-new-tokens", "480");
    await page.click("#generate");
    await page.waitForFunction(() => document.querySelector("#ids")!.textContent!.length > 0, null, { timeout: BOUND_MS });
    await page.click("#stop");
    await page.waitForFunction(() => ["done", "error"].includes(document.body.dataset.state!), null, { timeout: BOUND_MS });
    expect(await page.textContent("#status")).toBe("Stopped.");
    const n = (await page.textContent("#ids"))!.split(",").length;
    expect(n).toBeGreaterThan(0);
    expect(n).toBeLessThan(480);
    expect(await page.textContent("#stats")).toMatch(/\(abort\)/);
    await page.close();
  }, 120_000);

  it("(c) a 404 shows a readable error naming what is missing, and the page stays usable", async () => {
    const page = await browser.context.newPage();
    const r = await runDemo(page, plain.url, {
      source: "url",
      url: `${plain.url}/scratch/no-such-model/`,
      prompt: "1,2",
      asIds: true,
      maxNewTokens: 2,
    });
    expect(r.state).toBe("error");
    console.log(`404: the page says: ${r.error}`);
    expect(r.error).toMatch(/config\.json/);
    expect(r.error).toMatch(/404|not found/i);
    expect(await page.isEnabled("#load")).toBe(true);
    await page.close();
  }, 120_000);

  it("(c) a truncated weights file shows a readable error, not a hung worker", async () => {
    const page = await browser.context.newPage();
    const r = await runDemo(page, plain.url, {
      source: "url",
      url: `${plain.url}/scratch/truncated/`,
      prompt: "1,2",
      asIds: true,
      maxNewTokens: 2,
    });
    expect(r.state).toBe("error");
    console.log(`truncated: the page says: ${r.error}`);
    expect(r.error).toMatch(/model\.safetensors/);
    expect(r.error).toMatch(/truncated|ends|short|outside|bytes/i);
    await page.close();
  }, 120_000);
});
