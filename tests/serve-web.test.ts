// scripts/serve-web.mjs (`npm run web`): MIME types, byte ranges, the isolation headers, and the
// errors a model reader meets (404, a range past the end), over real HTTP on 127.0.0.1.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

type Server = { url: string; close(): Promise<void> };
const { startServer, parseRange, mimeType } = (await import("../scripts/serve-web.mjs")) as {
  startServer(o: { root?: string; isolation?: boolean; mounts?: Record<string, string> }): Promise<Server>;
  parseRange(h: string | undefined, size: number): { start: number; end: number } | null | "unsatisfiable";
  mimeType(path: string): string;
};

describe("serve-web", () => {
  let dir: string, isolated: Server, plain: Server;
  const bytes = Uint8Array.from({ length: 1000 }, (_, i) => i & 255);

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "mobilellm-serve-"));
    writeFileSync(join(dir, "w.safetensors"), bytes);
    writeFileSync(join(dir, "index.html"), "<p>hi</p>");
    [isolated, plain] = await Promise.all([
      startServer({ root: dir }),
      startServer({ root: dir, isolation: false, mounts: { "/m/": dir } }),
    ]);
  });
  afterAll(async () => {
    await isolated?.close();
    await plain?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("names .wasm, .js, .json and model files with the types browsers require", () => {
    expect(mimeType("build/kernels.wasm")).toBe("application/wasm");
    expect(mimeType("dist/browser.js")).toMatch(/^text\/javascript/);
    expect(mimeType("config.json")).toMatch(/^application\/json/);
    expect(mimeType("model.safetensors")).toBe("application/octet-stream");
  });

  it("parses byte ranges as RFC 9110 says (first-last, open-ended, suffix; past the end is unsatisfiable)", () => {
    expect(parseRange("bytes=0-9", 100)).toEqual({ start: 0, end: 9 });
    expect(parseRange("bytes=90-", 100)).toEqual({ start: 90, end: 99 });
    expect(parseRange("bytes=90-500", 100)).toEqual({ start: 90, end: 99 });
    expect(parseRange("bytes=-10", 100)).toEqual({ start: 90, end: 99 });
    expect(parseRange("bytes=100-", 100)).toBe("unsatisfiable");
    expect(parseRange(undefined, 100)).toBeNull();
    expect(parseRange("bytes=0-1,5-6", 100)).toBeNull(); // multi-range: the whole file
  });

  it("serves ranges (206 + Content-Range) and whole files, with COOP/COEP unless --no-isolation", async () => {
    const r = await fetch(`${isolated.url}/w.safetensors`, { headers: { Range: "bytes=10-19" } });
    expect(r.status).toBe(206);
    expect(r.headers.get("content-range")).toBe("bytes 10-19/1000");
    expect([...new Uint8Array(await r.arrayBuffer())]).toEqual([...bytes.subarray(10, 20)]);
    expect(r.headers.get("cross-origin-opener-policy")).toBe("same-origin");
    expect(r.headers.get("cross-origin-embedder-policy")).toBe("require-corp");
    const whole = await fetch(`${plain.url}/m/w.safetensors`);
    expect(whole.status).toBe(200);
    expect(whole.headers.get("accept-ranges")).toBe("bytes");
    expect((await whole.arrayBuffer()).byteLength).toBe(1000);
    expect(whole.headers.get("cross-origin-opener-policy")).toBeNull();
    const page = await fetch(`${plain.url}/`);
    expect(await page.text()).toBe("<p>hi</p>");
  });

  it("answers 404, 416 and refuses paths outside the folder", async () => {
    const missing = await fetch(`${plain.url}/nope/config.json`);
    expect(missing.status).toBe(404);
    expect(await missing.text()).toMatch(/not found: \/nope\/config\.json/);
    const past = await fetch(`${plain.url}/w.safetensors`, { headers: { Range: "bytes=5000-" } });
    expect(past.status).toBe(416);
    expect(past.headers.get("content-range")).toBe("bytes */1000");
    const outside = await fetch(`${plain.url}/%2e%2e/%2e%2e/etc/passwd`);
    expect([403, 404]).toContain(outside.status);
  });
});
