// Hub downloads are verified and bounded: non-LFS files against their git blob id, a response that
// announces no length never cached unverified, never more bytes than announced, an overall
// deadline besides the idle timeout, and file-system trouble as HubErrors that say what to do.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, afterEach, beforeEach, describe, expect, it } from "vitest";
import { HubError, repoFolderName, resolveHubModel } from "../../src/io/hub.js";
import { cli } from "../cli/cli-helpers.js";
import { gitBlobSha1, sha256, startFakeHub, type FakeFile, type FakeHub } from "./hub-fake.js";

const here = dirname(dirname(fileURLToPath(import.meta.url)));
const fixture = (f: string) => readFileSync(join(here, "fixtures", "tiny-gqa", f));
const C1 = "1111111111111111111111111111111111111111";
const config: FakeFile = { name: "config.json", data: fixture("config.json"), lfs: false };
const weights: FakeFile = { name: "model.safetensors", data: fixture("model.safetensors"), lfs: true };
const tokenizer: FakeFile = {
  name: "tokenizer.model",
  data: readFileSync(join(here, "fixtures", "tokenizer", "nofallback-bpe300.model")),
  lfs: false,
};

let hub: FakeHub;
const dirs: string[] = [];
const cache = () => {
  const d = mkdtempSync(join(tmpdir(), "hub-integrity-"));
  dirs.push(d);
  return d;
};
beforeEach(async () => {
  const nulIndex: FakeFile = {
    name: "model.safetensors.index.json",
    lfs: false,
    data: Buffer.from(JSON.stringify({ weight_map: { "a.weight": "model-a\u0000b.safetensors" } })),
  };
  hub = await startFakeHub([
    { id: "tiny/gqa", refs: { main: C1 }, commits: { [C1]: [config, tokenizer, weights] } },
    { id: "tiny/nul", refs: { main: C1 }, commits: { [C1]: [config, nulIndex] } },
  ]);
});
afterEach(async () => hub.close());
afterAll(() => {
  /* temp caches are small */
});

const opts = (cacheDir: string) => ({ endpoint: hub.url, cacheDir, quiet: true, env: {}, timeoutMs: 2000 });
async function rejection(p: Promise<unknown>): Promise<HubError> {
  const e = await p.then(
    () => null,
    (x: unknown) => x,
  );
  expect(e).toBeInstanceOf(HubError);
  return e as HubError;
}
const blobs = (c: string) => {
  const d = join(c, repoFolderName("tiny/gqa"), "blobs");
  return existsSync(d) ? readdirSync(d) : [];
};

describe("hub download integrity", () => {
  it("a non-LFS file whose bytes do not match its git blob id (same length) is refused and not cached", async () => {
    hub.corrupt.add(gitBlobSha1(config.data));
    const c = cache();
    const e = await rejection(resolveHubModel("tiny/gqa", { ...opts(c), files: ["config.json"] }));
    expect(e.code).toBe("checksum");
    expect(e.message).toMatch(/config\.json: git blob sha1 mismatch \(expected [0-9a-f]{40}/);
    expect(blobs(c).filter((b) => !b.endsWith(".lock"))).toEqual([]);
  });

  it("a response without any length that ends early is never cached", async () => {
    const key = gitBlobSha1(config.data);
    hub.noLength.add(key);
    hub.dropAfter.set(key, 100);
    const c = cache();
    // the cut is caught by the blob id; the retry (whole file, still without length) then succeeds
    const snap = await resolveHubModel("tiny/gqa", { ...opts(c), files: ["config.json"] });
    expect(readFileSync(join(snap, "config.json")).equals(config.data)).toBe(true);
    // without a checksum ETag as well, nothing can tell a cut file from a whole one: refused
    hub.etag.set("config.json", "not-a-digest");
    const e = await rejection(resolveHubModel("tiny/gqa", { ...opts(cache()), files: ["config.json"] }));
    expect(e.message).toMatch(/announced neither a size nor a checksum ETag .* refusing to cache it/);
  });

  it("a server sending more than it announced is cut off at the announced size", async () => {
    hub.oversize.set(sha256(weights.data), 50_000_000);
    const c = cache();
    const e = await rejection(resolveHubModel("tiny/gqa", { ...opts(c), files: ["model.safetensors"] }));
    expect(e.code).toBe("size");
    expect(e.message).toMatch(new RegExp(`model\\.safetensors: the server sent more than the ${weights.data.length} bytes it announced`));
    expect(blobs(c).filter((b) => !b.endsWith(".lock"))).toEqual([]); // no .incomplete holding 50 MB either
  });

  it("a trickling server meets the overall deadline although it never idles", async () => {
    hub.trickle.set(sha256(weights.data), 20);
    const e = await rejection(resolveHubModel("tiny/gqa", { ...opts(cache()), files: ["model.safetensors"], deadlineMs: 600 }));
    expect(e.code).toBe("network");
    expect(e.message).toMatch(/did not finish by its deadline/);
  });

  it("an over-long or path-like ETag is refused before it names a file", async () => {
    for (const etag of ["a".repeat(5000), "../../x", "a/b"]) {
      hub.etag.set("config.json", etag);
      const e = await rejection(resolveHubModel("tiny/gqa", { ...opts(cache()), files: ["config.json"] }));
      expect(e.message).toMatch(/config\.json: the hub's ETag .* cannot name a cache file/);
    }
  });

  it("a shard name with a NUL byte in a downloaded index is refused as unsafe, not a raw TypeError", async () => {
    const e = await rejection(resolveHubModel("tiny/nul", opts(cache())));
    expect(e.code).toBe("bad-response");
    expect(e.message).toMatch(/refusing unsafe name "model-a\u0000b\.safetensors"/);
  });

  it("a cache path that is a file becomes a HubError naming it", async () => {
    const c = cache();
    writeFileSync(join(c, repoFolderName("tiny/gqa")), "in the way");
    const e = await rejection(resolveHubModel("tiny/gqa", { ...opts(c), files: ["config.json"] }));
    expect(e.code).toBe("cache");
    expect(e.message).toMatch(/cannot write the download cache at .*models--tiny--gqa.*a file or folder is in the way.*HF_HUB_CACHE/);
    mkdirSync(join(c, "ok"));
  });

  it("generate refuses a prompt longer than the context before downloading the weights", async () => {
    const c = cache();
    const prevCache = process.env.HF_HUB_CACHE,
      prevEndpoint = process.env.HF_ENDPOINT;
    process.env.HF_HUB_CACHE = c;
    process.env.HF_ENDPOINT = hub.url;
    try {
      const ids = Array.from({ length: 250 }, () => 5).join(","); // tiny-gqa's context is 256
      const r = await cli(["generate", "-m", "tiny/gqa", "--ids", ids, "-n", "10"]);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(
        /the prompt \(250 tokens\) plus --max-new-tokens 10 needs 260 positions, more than the model's context of 256/,
      );
      const long = await cli(["generate", "-m", "tiny/gqa", "--prompt", "word ".repeat(400), "-n", "4"]);
      expect(long.code).toBe(2);
      expect(long.stderr).toMatch(/more than the model's context of 256/);
      expect(hub.log.filter((l) => l.server === "cdn" || l.path.includes("model.safetensors"))).toEqual([]);
    } finally {
      if (prevCache === undefined) delete process.env.HF_HUB_CACHE;
      else process.env.HF_HUB_CACHE = prevCache;
      if (prevEndpoint === undefined) delete process.env.HF_ENDPOINT;
      else process.env.HF_ENDPOINT = prevEndpoint;
    }
  });
});
