// The browser's hub client (src/io/hub-browser.ts) against the fake hub on 127.0.0.1, with a
// small in-memory Cache Storage (Node 20 has no `caches`): download, checksums, a download that
// breaks off and resumes from the stored pieces, offline loads from the cache, the hub URL option.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HubError, loadModel, loadTokenizer, type CacheLike, type CacheStorageLike, type LoadProgress } from "../../src/browser.js";
import { resolveHubFolder } from "../../src/io/hub-browser.js";
import { defaultModel } from "../../src/load.js";
import { expected, expectedIds, FIXTURES, maxAbsDiff } from "../helpers.js";
import { gitBlobSha1, sha256, startFakeHub, type FakeHub } from "./hub-fake.js";

/** Cache Storage in memory: the part of the browser's CacheStorage/Cache the client uses. */
class MemoryCaches implements CacheStorageLike {
  readonly caches = new Map<string, Map<string, { body: ArrayBuffer; headers: [string, string][] }>>();
  async open(name: string): Promise<CacheLike> {
    let entries = this.caches.get(name);
    if (!entries) this.caches.set(name, (entries = new Map()));
    const store = entries;
    return {
      async match(key) {
        const e = store.get(key);
        return e && new Response(e.body.slice(0), { headers: e.headers });
      },
      async put(key, res) {
        store.set(key, { body: await res.arrayBuffer(), headers: [...res.headers] });
      },
      async delete(key) {
        return store.delete(key);
      },
    };
  }
  keys(name = "mobilellm-hub"): string[] {
    return [...(this.caches.get(name)?.keys() ?? [])];
  }
}

const COMMIT = "89abcdef0123456789abcdef0123456789abcdef";
const GQA = join(FIXTURES, "tiny-gqa");
const weights = readFileSync(join(GQA, "pytorch_model.bin"));
const ids = expectedIds("tiny-gqa", "input_ids");
const want = expected("tiny-gqa", "logits_fp16");
let hub: FakeHub;

beforeAll(async () => {
  hub = await startFakeHub(
    [
      {
        id: "facebook/MobileLLM-tiny",
        refs: { main: COMMIT },
        commits: {
          [COMMIT]: [
            { name: "config.json", data: readFileSync(join(GQA, "config.json")), lfs: false },
            { name: "pytorch_model.bin", data: weights, lfs: true },
            { name: "tokenizer.model", data: readFileSync(join(defaultModel, "tokenizer.model")), lfs: true },
            { name: "README.md", data: Buffer.from("# tiny\n"), lfs: false },
          ],
        },
      },
    ],
    { separateCdn: true },
  );
});
afterAll(async () => hub?.close());

describe("a hub id in the browser entry", () => {
  it("downloads into Cache Storage with progress, checks sha256 / git blob ids, and gives the reference logits", async () => {
    const caches = new MemoryCaches();
    const events: LoadProgress[] = [];
    const model = await loadModel("facebook/MobileLLM-tiny", {
      backend: "ts",
      hub: { endpoint: hub.url, caches },
      onProgress: (p) => events.push(p),
    });
    expect(maxAbsDiff(model.forward(ids), want)).toBeLessThan(1e-4);
    const done = events.filter((e) => e.phase === "download" && e.file === "pytorch_model.bin").at(-1);
    expect(done).toEqual({ phase: "download", file: "pytorch_model.bin", loaded: weights.length, total: weights.length });
    expect(events.some((e) => e.phase === "load")).toBe(true);
    // whole files only (no pieces left), README.md not fetched
    expect(
      caches
        .keys()
        .filter((k) => k.includes("/resolve/"))
        .map((k) => k.slice(k.lastIndexOf("/") + 1))
        .sort(),
    ).toEqual(["config.json", "pytorch_model.bin", "tokenizer.model"]);

    // again: no request at all reaches the hub or the CDN
    const before = hub.log.length;
    const again = await loadModel("facebook/MobileLLM-tiny", { backend: "ts", hub: { endpoint: hub.url, caches } });
    expect(again.forward(ids)).toEqual(model.forward(ids));
    expect(hub.log.length).toBe(before);
    const tok = await loadTokenizer("facebook/MobileLLM-tiny", { hub: { endpoint: hub.url, caches } });
    expect(tok.vocabSize).toBeGreaterThan(0);
  });

  it("a download that breaks off resumes from the stored pieces (within a load, and in the next load)", async () => {
    const caches = new MemoryCaches();
    const piece = 64 << 10;
    hub.dropAfter.set(sha256(weights), 3 * piece + 1000); // the first GET ends after 3 pieces and a bit
    hub.log.length = 0;
    await resolveHubFolder("facebook/MobileLLM-tiny", { endpoint: hub.url, caches, pieceBytes: piece });
    const ofWeights = () => hub.log.filter((l) => l.server === "cdn" && l.path.includes(sha256(weights)));
    expect(ofWeights().map((l) => l.range)).toEqual([undefined, `bytes=${3 * piece}-`]);

    // one attempt only: the load fails, keeping the pieces; the next load asks for the rest only
    const fresh = new MemoryCaches();
    hub.dropAfter.set(sha256(weights), 2 * piece + 5);
    const err = await resolveHubFolder("facebook/MobileLLM-tiny", {
      endpoint: hub.url,
      caches: fresh,
      pieceBytes: piece,
      attempts: 1,
    }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(HubError);
    expect((err as HubError).code).toBe("network");
    expect(fresh.keys().filter((k) => k.includes("pytorch_model.bin?part="))).toHaveLength(2);
    hub.log.length = 0;
    const folder = await resolveHubFolder("facebook/MobileLLM-tiny", { endpoint: hub.url, caches: fresh, pieceBytes: piece });
    expect(ofWeights().map((l) => l.range)).toEqual([`bytes=${2 * piece}-`]);
    // a connection that goes silent is dropped after timeoutMs and resumed
    const stalled = new MemoryCaches();
    hub.stallAfter.set(sha256(weights), piece + 10);
    hub.log.length = 0;
    await resolveHubFolder("facebook/MobileLLM-tiny", { endpoint: hub.url, caches: stalled, pieceBytes: piece, timeoutMs: 300 });
    expect(ofWeights().map((l) => l.range)).toEqual([undefined, `bytes=${piece}-`]);
    const model = await loadModel(
      { "config.json": new Blob([readFileSync(join(GQA, "config.json"))]), "pytorch_model.bin": await blobOf(folder, "pytorch_model.bin") },
      { backend: "ts" },
    );
    expect(maxAbsDiff(model.forward(ids), want)).toBeLessThan(1e-4);
    expect(fresh.keys().some((k) => k.includes("?part="))).toBe(false);
  });

  it("a corrupt download is refused by its sha256 and not kept; the next load downloads it anew", async () => {
    const caches = new MemoryCaches();
    hub.corrupt.add(sha256(weights));
    const err = await resolveHubFolder("facebook/MobileLLM-tiny", { endpoint: hub.url, caches }).catch((e: Error) => e);
    hub.corrupt.delete(sha256(weights));
    expect(err).toBeInstanceOf(HubError);
    expect((err as HubError).code).toBe("checksum");
    expect((err as Error).message).toMatch(
      /facebook\/MobileLLM-tiny\/pytorch_model\.bin: sha256 [0-9a-f]{64} differs from the hub's [0-9a-f]{64}/,
    );
    expect(caches.keys().some((k) => k.includes("pytorch_model.bin"))).toBe(false);
    await resolveHubFolder("facebook/MobileLLM-tiny", { endpoint: hub.url, caches });
    // a small (non-LFS) file is checked by its git blob id
    const config = readFileSync(join(GQA, "config.json"));
    hub.corrupt.add(gitBlobSha1(config));
    const small = await resolveHubFolder("facebook/MobileLLM-tiny", { endpoint: hub.url, caches: new MemoryCaches() }).catch(
      (e: Error) => e,
    );
    hub.corrupt.delete(gitBlobSha1(config));
    expect((small as Error).message).toMatch(/MobileLLM-tiny\/config\.json: git blob sha1 [0-9a-f]{40} differs/);
  });

  it("offline: from a complete cache, else a clear error; a listing that cannot be fetched falls back to the cache", async () => {
    const caches = new MemoryCaches();
    await expect(resolveHubFolder("facebook/MobileLLM-tiny", { endpoint: hub.url, caches, offline: true })).rejects.toThrow(
      /offline and not \(completely\) in the cache/,
    );
    await resolveHubFolder("facebook/MobileLLM-tiny", { endpoint: hub.url, caches });
    const before = hub.log.length;
    await resolveHubFolder("facebook/MobileLLM-tiny", { endpoint: hub.url, caches, offline: true });
    const noNetwork = (() => Promise.reject(new TypeError("fetch failed"))) as typeof fetch;
    await resolveHubFolder("facebook/MobileLLM-tiny", { endpoint: hub.url, caches, forceRefresh: true, fetch: noNetwork });
    expect(hub.log.length).toBe(before);
  });

  it("errors name the repo and file: unknown repo, a bad id, no Cache Storage", async () => {
    const caches = new MemoryCaches();
    await expect(loadModel("facebook/nope", { backend: "ts", hub: { endpoint: hub.url, caches } })).rejects.toThrow(
      /facebook\/nope: not found on http:\/\/127\.0\.0\.1:\d+ \(HTTP 404\)/,
    );
    await expect(resolveHubFolder("not an id", { caches })).rejects.toThrow(/not a hub repository id/);
    await expect(resolveHubFolder("facebook/MobileLLM-tiny", { endpoint: hub.url })).rejects.toThrow(/no Cache Storage/);
    await expect(loadModel("./models/x", { backend: "ts" })).rejects.toThrow(/not a model source in a browser/);
  });
});

async function blobOf(folder: Awaited<ReturnType<typeof resolveHubFolder>>, name: string): Promise<Blob> {
  const src = (await folder.open(name))!;
  const bytes = new Uint8Array(src.size);
  await src.read(0, bytes);
  return new Blob([bytes]);
}
