// resolveHubModel against a fake hub on 127.0.0.1 (tests/io/hub-fake.ts): cache layout identical to
// huggingface_hub, reuse without network, offline mode, resume, verification, errors, tokens.
import { existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync, mkdirSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  chooseModelFiles,
  HubError,
  hubCacheDir,
  isHubId,
  linkIntoSnapshot,
  lookupCachedSnapshot,
  repoFolderName,
  requestHeaders,
  resolveHubModel,
  shardsOfIndex,
  type HubProgressEvent,
} from "../../src/io/hub.js";
import { WEIGHT_FILES } from "../../src/io/checkpoint.js";
import { createProgressBar, formatProgress } from "../../src/util/progress.js";
import { gitBlobSha1, sha256, startFakeHub, type FakeFile, type FakeHub, type FakeRepo } from "./hub-fake.js";

const here = dirname(dirname(fileURLToPath(import.meta.url)));
const fixture = (f: string) => readFileSync(join(here, "fixtures", "tiny-gqa", f));

const C1 = "1111111111111111111111111111111111111111";
const C2 = "2222222222222222222222222222222222222222";
const C3 = "3333333333333333333333333333333333333333";

const config: FakeFile = { name: "config.json", data: fixture("config.json"), lfs: false };
const tokenizer: FakeFile = { name: "tokenizer.model", data: Buffer.from("\n\x0bfake sentencepiece model, not a real one\n"), lfs: false };
const safetensors: FakeFile = { name: "model.safetensors", data: fixture("model.safetensors"), lfs: true };
const bin: FakeFile = { name: "pytorch_model.bin", data: fixture("pytorch_model.bin"), lfs: true };
const readme: FakeFile = { name: "README.md", data: Buffer.from("# tiny\n"), lfs: false };

// A sharded checkpoint: an index naming two shards (contents are arbitrary bytes for the hub).
const shard1: FakeFile = { name: "pytorch_model-00001-of-00002.bin", data: fixture("pytorch_model.bin").subarray(0, 200_000), lfs: true };
const shard2: FakeFile = { name: "pytorch_model-00002-of-00002.bin", data: fixture("pytorch_model.bin").subarray(200_000), lfs: true };
const index: FakeFile = {
  name: "pytorch_model.bin.index.json",
  lfs: false,
  data: Buffer.from(
    JSON.stringify({
      metadata: { total_size: 1 },
      weight_map: { "a.weight": shard1.name, "b.weight": shard2.name, "c.weight": shard1.name },
    }),
  ),
};

function repos(): FakeRepo[] {
  return [
    { id: "tiny/gqa", refs: { main: C1, v1: C1 }, commits: { [C1]: [config, tokenizer, safetensors, bin, readme] } },
    { id: "tiny/sharded", refs: { main: C2 }, commits: { [C2]: [config, index, shard1, shard2] } },
    { id: "tiny/gated", refs: { main: C3 }, commits: { [C3]: [config, safetensors] }, token: "hf_secret" },
  ];
}

const tmpDirs: string[] = [];
function tempCache(): string {
  const d = mkdtempSync(join(tmpdir(), "hub-test-"));
  tmpDirs.push(d);
  return d;
}

/** Options every call uses: no progress bar, nothing from the real environment. */
const base = (hub: FakeHub, cacheDir: string) => ({ endpoint: hub.url, cacheDir, quiet: true, env: {} });
const noNetwork = (() => {
  throw new Error("network used");
}) as unknown as typeof fetch;

async function rejection(p: Promise<unknown>): Promise<HubError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(HubError);
    return e as HubError;
  }
  throw new Error("expected a rejection");
}

let hub: FakeHub;
beforeAll(async () => {
  hub = await startFakeHub(repos());
});
afterAll(async () => {
  await hub.close();
  for (const d of tmpDirs) rmSync(d, { recursive: true, force: true });
});

describe("names and choices", () => {
  it("isHubId accepts owner/name and rejects paths and malformed ids", () => {
    expect(isHubId("facebook/MobileLLM-125M")).toBe(true);
    expect(isHubId("a_b/c.d-1")).toBe(true);
    for (const s of ["gpt2", "a/b/c", "./x", "/abs/x", "a/-b", "a/b-", "a--b/c", "a/b..c", "", "a/"]) expect(isHubId(s), s).toBe(false);
    expect(isHubId("tests/fixtures")).toBe(false); // an existing local folder wins
  });

  it("cache folder names and locations follow huggingface_hub", () => {
    expect(repoFolderName("facebook/MobileLLM-125M")).toBe("models--facebook--MobileLLM-125M");
    expect(hubCacheDir({ HF_HUB_CACHE: "/c/hub", HF_HOME: "/h" })).toBe("/c/hub");
    expect(hubCacheDir({ HF_HOME: "/h" })).toBe(join("/h", "hub"));
    expect(hubCacheDir({ XDG_CACHE_HOME: "/x" })).toBe(join("/x", "huggingface", "hub"));
    expect(hubCacheDir({}).endsWith(join(".cache", "huggingface", "hub"))).toBe(true);
  });

  it("chooseModelFiles takes config, optional files and every listed weight format", () => {
    expect(chooseModelFiles(["README.md", "model.safetensors", "config.json", "pytorch_model.bin", "tokenizer.model"])).toEqual([
      "config.json",
      "tokenizer.model",
      "model.safetensors",
      "pytorch_model.bin",
    ]);
    expect(chooseModelFiles(["config.json", "model.safetensors"])).toEqual(["config.json", "model.safetensors"]);
    // weights in the loader's order of preference (the one WEIGHT_FILES list, safetensors first)
    const all = ["pytorch_model.bin.index.json", "pytorch_model.bin", "model.safetensors.index.json", "model.safetensors", "config.json"];
    expect(chooseModelFiles(all).slice(1)).toEqual([...WEIGHT_FILES]);
    expect(WEIGHT_FILES[0]).toBe("model.safetensors"); // what loadModel prefers (checkpoint-choice.test.ts)
    expect(chooseModelFiles(["config.json", "generation_config.json", "pytorch_model.bin.index.json", "x.bin"])).toEqual([
      "config.json",
      "generation_config.json",
      "pytorch_model.bin.index.json",
    ]);
  });

  it("shardsOfIndex lists each shard once, next to its index", () => {
    expect(shardsOfIndex(index.data.toString())).toEqual([shard1.name, shard2.name]);
    expect(shardsOfIndex(index.data.toString(), "sub/pytorch_model.bin.index.json")).toEqual([`sub/${shard1.name}`, `sub/${shard2.name}`]);
    expect(() => shardsOfIndex("{}", "x.index.json")).toThrow(/x\.index\.json: no "weight_map"/);
  });

  it("requestHeaders sends the token only to the endpoint's own origin", () => {
    const ep = "https://huggingface.co";
    expect(requestHeaders(`${ep}/a/b/resolve/main/config.json`, ep, "tok").Authorization).toBe("Bearer tok");
    expect(requestHeaders("https://cdn-lfs.huggingface.co/x", ep, "tok").Authorization).toBeUndefined();
    expect(requestHeaders("http://huggingface.co/x", ep, "tok").Authorization).toBeUndefined(); // other scheme
    expect(requestHeaders("http://127.0.0.1:8001/x", "http://127.0.0.1:8000", "tok").Authorization).toBeUndefined(); // other port
    expect(requestHeaders(`${ep}/x`, ep, undefined).Authorization).toBeUndefined();
    expect(requestHeaders(`${ep}/x`, ep)["Accept-Encoding"]).toBe("identity");
  });

  it("formatProgress shows name, bar, percent, MB and rate", () => {
    const line = formatProgress({
      label: "model.safetensors",
      done: 5 * 1024 * 1024,
      total: 10 * 1024 * 1024,
      unit: "bytes",
      seconds: 2,
      barWidth: 10,
    });
    expect(line).toBe("model.safetensors  [#####.....]   50%  5.0/10.0 MB  2.5 MB/s");
    expect(formatProgress({ label: "eval", done: 30, unit: "tok", seconds: 3 })).toBe("eval  30 tok  10.0 tok/s");
  });

  it("createProgressBar draws on a TTY only", () => {
    const fake = (isTTY: boolean) => {
      const out: string[] = [];
      return {
        out,
        stream: {
          isTTY,
          write: (s: string) => {
            out.push(s);
            return true;
          },
        } as unknown as NodeJS.WriteStream,
      };
    };
    const tty = fake(true);
    const bar = createProgressBar({ label: "f.bin", total: 2 * 1024 * 1024, unit: "bytes", stream: tty.stream });
    bar.update(1024 * 1024);
    bar.update(2 * 1024 * 1024);
    bar.done();
    bar.done();
    expect(tty.out[0]).toMatch(/^\rf\.bin  \[#+\.+\]   50%  1\.0\/2\.0 MB/);
    expect(tty.out.length).toBeLessThanOrEqual(3); // redraws are throttled; done() draws once
    expect(tty.out.at(-1)).toMatch(/^\rf\.bin  \[#+\]  100%  2\.0\/2\.0 MB  .* MB\/s\x1b\[K\n$/);
    const pipe = fake(false);
    const quiet = createProgressBar({ label: "f.bin", total: 10, stream: pipe.stream });
    quiet.update(5);
    quiet.done();
    expect(pipe.out).toEqual([]);
  });

  it("linkIntoSnapshot copies when symlinks are not allowed", () => {
    const d = tempCache();
    mkdirSync(join(d, "blobs"));
    writeFileSync(join(d, "blobs", "abc"), "hello");
    const snap = join(d, "snapshots", C1, "f.txt");
    expect(
      linkIntoSnapshot(join(d, "blobs", "abc"), snap, () => {
        throw new Error("EPERM");
      }),
    ).toBe("copy");
    expect(lstatSync(snap).isSymbolicLink()).toBe(false);
    expect(readFileSync(snap, "utf8")).toBe("hello");
  });
});

describe("resolveHubModel against a fake hub", () => {
  let cache: string;

  it("downloads into blobs/snapshots/refs with relative symlinks, byte-identical", async () => {
    cache = tempCache();
    const events: HubProgressEvent[] = [];
    const before = hub.log.length;
    const snap = await resolveHubModel("tiny/gqa", { ...base(hub, cache), progress: (e) => events.push(e) });
    const storage = join(cache, "models--tiny--gqa");
    expect(snap).toBe(join(storage, "snapshots", C1));
    expect(readFileSync(join(storage, "refs", "main"), "utf8")).toBe(C1);
    expect(readdirSync(snap).sort()).toEqual(["config.json", "model.safetensors", "pytorch_model.bin", "tokenizer.model"]);
    for (const f of [config, tokenizer, safetensors, bin]) {
      const etag = f.lfs ? sha256(f.data) : gitBlobSha1(f.data);
      const p = join(snap, f.name);
      expect(lstatSync(p).isSymbolicLink()).toBe(true);
      expect(readlinkSync(p)).toBe(join("..", "..", "blobs", etag));
      expect(readFileSync(p).equals(f.data)).toBe(true);
    }
    expect(readdirSync(join(storage, "blobs")).some((b) => b.endsWith(".incomplete"))).toBe(false);
    // Candidates the repo lacks are recorded as absent, like huggingface_hub's .no_exist.
    expect(existsSync(join(storage, ".no_exist", C1, "generation_config.json"))).toBe(true);
    expect(existsSync(join(storage, ".no_exist", C1, "README.md"))).toBe(false);
    // LFS bytes came from the CDN after the 302; the README was never fetched.
    const reqs = hub.log.slice(before);
    expect(reqs.filter((r) => r.server === "cdn" && r.method === "GET").length).toBe(2);
    expect(reqs.some((r) => r.path.includes("README.md"))).toBe(false);
    const last = events.filter((e) => e.file === "model.safetensors").at(-1)!;
    expect(last.done).toBe(safetensors.data.length);
    expect(last.total).toBe(safetensors.data.length);
  });

  it("reuses a complete cache without any network, and fetches only what is missing", async () => {
    const snap = await resolveHubModel("tiny/gqa", { ...base(hub, cache), fetch: noNetwork });
    expect(snap).toBe(join(cache, "models--tiny--gqa", "snapshots", C1));
    // Same commit through another ref, and a commit sha directly: blobs are reused, no CDN download.
    const before = hub.log.length;
    expect(await resolveHubModel("tiny/gqa", { ...base(hub, cache), revision: "v1" })).toBe(snap);
    expect(readFileSync(join(cache, "models--tiny--gqa", "refs", "v1"), "utf8")).toBe(C1);
    expect(await resolveHubModel("tiny/gqa", { ...base(hub, cache), revision: C1, fetch: noNetwork })).toBe(snap);
    expect(hub.log.slice(before).filter((r) => r.server === "cdn").length).toBe(0);
    // A deleted snapshot entry is restored from its blob (HEAD only, no download).
    rmSync(join(snap, "pytorch_model.bin"));
    const before2 = hub.log.length;
    await resolveHubModel("tiny/gqa", { ...base(hub, cache) });
    expect(readFileSync(join(snap, "pytorch_model.bin")).equals(bin.data)).toBe(true);
    expect(hub.log.slice(before2).filter((r) => r.server === "cdn" && r.method === "GET").length).toBe(0);
  });

  it("a moved branch is only noticed with forceRefresh (the cache is trusted otherwise)", async () => {
    const c = tempCache();
    const C4 = "4444444444444444444444444444444444444444";
    const split = await startFakeHub(repos());
    try {
      const repo = split.repos.find((r) => r.id === "tiny/gqa")!;
      const old = await resolveHubModel("tiny/gqa", base(split, c));
      const config2: FakeFile = { name: "config.json", data: Buffer.from('{"changed": true}'), lfs: false };
      repo.commits[C4] = [config2, safetensors, bin];
      repo.refs.main = C4;
      expect(await resolveHubModel("tiny/gqa", base(split, c))).toBe(old);
      const fresh = await resolveHubModel("tiny/gqa", { ...base(split, c), forceRefresh: true });
      expect(fresh).toBe(join(c, "models--tiny--gqa", "snapshots", C4));
      expect(readFileSync(join(c, "models--tiny--gqa", "refs", "main"), "utf8")).toBe(C4);
      expect(readFileSync(join(fresh, "config.json"), "utf8")).toBe('{"changed": true}');
      expect(existsSync(join(c, "models--tiny--gqa", ".no_exist", C4, "tokenizer.model"))).toBe(true);
      // The weights are shared blobs: the new snapshot links the same files, nothing re-downloaded.
      expect(split.log.filter((r) => r.server === "cdn" && r.method === "GET").length).toBe(2);
    } finally {
      await split.close();
    }
  });

  it("offline mode resolves from the cache or says exactly what is missing", async () => {
    const env = { HF_HUB_OFFLINE: "1" };
    const snap = await resolveHubModel("tiny/gqa", { ...base(hub, cache), env, fetch: noNetwork, forceRefresh: true });
    expect(snap).toBe(join(cache, "models--tiny--gqa", "snapshots", C1));
    const miss = await rejection(resolveHubModel("tiny/sharded", { ...base(hub, cache), env, fetch: noNetwork }));
    expect(miss.code).toBe("offline");
    expect(miss.message).toMatch(/tiny\/sharded.*HF_HUB_OFFLINE.*missing refs\/main/);
    const missFile = await rejection(
      resolveHubModel("tiny/gqa", {
        ...base(hub, cache),
        offline: true,
        files: ["config.json", "generation_config.json"],
        fetch: noNetwork,
      }),
    );
    expect(missFile.message).toMatch(/missing generation_config\.json/);
    expect(lookupCachedSnapshot(cache, "tiny/gqa", "dev").missing).toEqual(["refs/dev"]);
  });

  it("a server that is gone gives a network error pointing at HF_HUB_OFFLINE", async () => {
    const gone = await startFakeHub(repos());
    const url = gone.url;
    await gone.close();
    const err = await rejection(resolveHubModel("tiny/gqa", { endpoint: url, cacheDir: tempCache(), quiet: true, env: {} }));
    expect(err.code).toBe("network");
    expect(err.message).toMatch(/tiny\/gqa.*HF_HUB_OFFLINE=1.*cache/);
  });

  it("resumes a dropped download with a Range request and verifies the result", async () => {
    const c = tempCache();
    hub.dropAfter.set(sha256(bin.data), 300_000);
    const before = hub.log.length;
    const snap = await resolveHubModel("tiny/gqa", { ...base(hub, c), files: ["config.json", "pytorch_model.bin"] });
    expect(readFileSync(join(snap, "pytorch_model.bin")).equals(bin.data)).toBe(true);
    const gets = hub.log.slice(before).filter((r) => r.server === "cdn" && r.method === "GET");
    expect(gets.length).toBe(2);
    expect(gets[0]!.range).toBeUndefined();
    const resumedAt = Number(/^bytes=(\d+)-$/.exec(gets[1]!.range ?? "")?.[1]);
    expect(resumedAt).toBeGreaterThan(0);
    expect(resumedAt).toBeLessThanOrEqual(300_000);
    expect(readdirSync(join(c, "models--tiny--gqa", "blobs")).sort()).toEqual([gitBlobSha1(config.data), sha256(bin.data)].sort());
  });

  it("gives up on a stalled connection after timeoutMs and resumes", async () => {
    const c = tempCache();
    hub.stallAfter.set(sha256(bin.data), 50_000);
    const before = hub.log.length;
    const snap = await resolveHubModel("tiny/gqa", { ...base(hub, c), files: ["pytorch_model.bin"], timeoutMs: 300 });
    expect(readFileSync(join(snap, "pytorch_model.bin")).equals(bin.data)).toBe(true);
    const gets = hub.log.slice(before).filter((r) => r.server === "cdn" && r.method === "GET");
    expect(gets.length).toBe(2);
    expect(gets[1]!.range).toMatch(/^bytes=[1-9]\d*-$/);
  });

  it("restarts from zero when the server ignores Range", async () => {
    const c = tempCache();
    hub.dropAfter.set(sha256(safetensors.data), 100_000);
    hub.ignoreRange = true;
    try {
      const snap = await resolveHubModel("tiny/gqa", { ...base(hub, c), files: ["model.safetensors"] });
      expect(readFileSync(join(snap, "model.safetensors")).equals(safetensors.data)).toBe(true);
    } finally {
      hub.ignoreRange = false;
    }
  });

  it("continues a part left by an interrupted run, and starts over if that part was bad", async () => {
    const blobs = (c: string) => join(c, "models--tiny--gqa", "blobs");
    const etag = sha256(bin.data);
    const good = tempCache();
    mkdirSync(blobs(good), { recursive: true });
    writeFileSync(join(blobs(good), `${etag}.incomplete`), bin.data.subarray(0, 1000));
    let before = hub.log.length;
    let snap = await resolveHubModel("tiny/gqa", { ...base(hub, good), files: ["pytorch_model.bin"] });
    expect(readFileSync(join(snap, "pytorch_model.bin")).equals(bin.data)).toBe(true);
    expect(
      hub.log
        .slice(before)
        .filter((r) => r.server === "cdn" && r.method === "GET")
        .map((r) => r.range),
    ).toEqual(["bytes=1000-"]);

    const bad = tempCache();
    mkdirSync(blobs(bad), { recursive: true });
    writeFileSync(join(blobs(bad), `${etag}.incomplete`), Buffer.alloc(1000, 7));
    before = hub.log.length;
    snap = await resolveHubModel("tiny/gqa", { ...base(hub, bad), files: ["pytorch_model.bin"] });
    expect(readFileSync(join(snap, "pytorch_model.bin")).equals(bin.data)).toBe(true);
    expect(
      hub.log
        .slice(before)
        .filter((r) => r.server === "cdn" && r.method === "GET")
        .map((r) => r.range),
    ).toEqual(["bytes=1000-", undefined]);
    expect(readdirSync(blobs(bad))).toEqual([etag]);
  });

  it("an abort leaves only a .incomplete part, which the next run resumes", async () => {
    const c = tempCache();
    const ac = new AbortController();
    const err = await resolveHubModel("tiny/gqa", {
      ...base(hub, c),
      files: ["model.safetensors"],
      signal: ac.signal,
      progress: (e) => {
        if (e.done > 0) ac.abort();
      },
    }).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(err?.name).toBe("AbortError");
    const storage = join(c, "models--tiny--gqa");
    const etag = sha256(safetensors.data);
    expect(readdirSync(join(storage, "blobs"))).toEqual([`${etag}.incomplete`]);
    expect(existsSync(join(storage, "snapshots", C1, "model.safetensors"))).toBe(false);
    const snap = await resolveHubModel("tiny/gqa", { ...base(hub, c), files: ["model.safetensors"] });
    expect(readFileSync(join(snap, "model.safetensors")).equals(safetensors.data)).toBe(true);
  });

  it("waits for another process's lock on a blob, and takes over a dead process's lock", async () => {
    const etag = sha256(bin.data);
    const c = tempCache();
    const locks = join(c, ".locks", "models--tiny--gqa"); // huggingface_hub's lock files
    mkdirSync(locks, { recursive: true });
    const lock = join(locks, `${etag}.lock`);
    writeFileSync(lock, `${process.pid}@${hostname()}`); // a live holder (this very process)
    let released = false;
    setTimeout(() => {
      released = true;
      rmSync(lock);
    }, 300);
    const snap = await resolveHubModel("tiny/gqa", { ...base(hub, c), files: ["pytorch_model.bin"] });
    expect(released).toBe(true);
    expect(readFileSync(join(snap, "pytorch_model.bin")).equals(bin.data)).toBe(true);
    expect(existsSync(lock)).toBe(false);

    const c2 = tempCache();
    const blobs2 = join(c2, "models--tiny--gqa", "blobs");
    mkdirSync(join(c2, ".locks", "models--tiny--gqa"), { recursive: true });
    writeFileSync(join(c2, ".locks", "models--tiny--gqa", `${etag}.lock`), `2147483646@${hostname()}`); // no such process
    const snap2 = await resolveHubModel("tiny/gqa", { ...base(hub, c2), files: ["pytorch_model.bin"] });
    expect(readFileSync(join(snap2, "pytorch_model.bin")).equals(bin.data)).toBe(true);
    expect(readdirSync(blobs2)).toEqual([etag]);
  });

  it("two concurrent calls on one cache both succeed and download each blob once", async () => {
    const c = tempCache();
    const before = hub.log.length;
    const [a, b] = await Promise.all([resolveHubModel("tiny/gqa", base(hub, c)), resolveHubModel("tiny/gqa", base(hub, c))]);
    expect(a).toBe(b);
    for (const f of [config, tokenizer, safetensors, bin]) expect(readFileSync(join(a, f.name)).equals(f.data)).toBe(true);
    expect(hub.log.slice(before).filter((r) => r.server === "cdn" && r.method === "GET").length).toBe(2);
  });

  it("rejects bytes whose sha256 is not the ETag and keeps no blob", async () => {
    const c = tempCache();
    hub.corrupt.add(sha256(safetensors.data));
    try {
      const err = await rejection(resolveHubModel("tiny/gqa", { ...base(hub, c), files: ["model.safetensors"] }));
      expect(err.code).toBe("checksum");
      expect(err.message).toMatch(/tiny\/gqa: model\.safetensors: sha256 mismatch/);
      const storage = join(c, "models--tiny--gqa");
      expect(readdirSync(join(storage, "blobs"))).toEqual([]);
      expect(existsSync(join(storage, "snapshots", C1, "model.safetensors"))).toBe(false);
    } finally {
      hub.corrupt.clear();
    }
    const snap = await resolveHubModel("tiny/gqa", { ...base(hub, c), files: ["model.safetensors"] });
    expect(readFileSync(join(snap, "model.safetensors")).equals(safetensors.data)).toBe(true);
  });

  it("fetches the shards a sharded index lists, and checks them in the cache", async () => {
    const c = tempCache();
    const snap = await resolveHubModel("tiny/sharded", base(hub, c));
    expect(readdirSync(snap).sort()).toEqual(["config.json", shard1.name, shard2.name, index.name].sort());
    expect(readFileSync(join(snap, shard2.name)).equals(shard2.data)).toBe(true);
    expect(lookupCachedSnapshot(c, "tiny/sharded").missing).toEqual([]);
    rmSync(join(snap, shard2.name));
    expect(lookupCachedSnapshot(c, "tiny/sharded").missing).toEqual([shard2.name]);
  });

  it("404s name the repo / file and say to check the id or revision", async () => {
    const noRepo = await rejection(resolveHubModel("tiny/nope", base(hub, tempCache())));
    expect(noRepo.code).toBe("not-found");
    expect(noRepo.message).toMatch(/tiny\/nope: repository or file not found.*check the id \/ revision/);
    const noRev = await rejection(resolveHubModel("tiny/gqa", { ...base(hub, tempCache()), revision: "dev" }));
    expect(noRev.message).toMatch(/revision "dev".*RevisionNotFound/);
    const noFile = await rejection(resolveHubModel("tiny/gqa", { ...base(hub, tempCache()), files: ["missing.bin"] }));
    expect(noFile.file).toBe("missing.bin");
    expect(noFile.message).toMatch(/tiny\/gqa: repository or file not found: missing\.bin/);
  });

  it("retries a 503 or 429 and then succeeds", async () => {
    hub.failNext.push(503, 429);
    try {
      const snap = await resolveHubModel("tiny/gqa", { ...base(hub, tempCache()), files: ["config.json"] });
      expect(readFileSync(join(snap, "config.json")).equals(config.data)).toBe(true);
      expect(hub.failNext).toEqual([]);
    } finally {
      hub.failNext.length = 0;
    }
  });

  it("a gated repo answers 401 without a token; with HF_TOKEN it downloads", async () => {
    const err = await rejection(resolveHubModel("tiny/gated", base(hub, tempCache())));
    expect(err.code).toBe("unauthorized");
    expect(err.message).toMatch(/tiny\/gated.*gated.*HF_TOKEN/);
    const before = hub.log.length;
    const snap = await resolveHubModel("tiny/gated", { ...base(hub, tempCache()), env: { HF_TOKEN: "hf_secret" } });
    expect(readFileSync(join(snap, "model.safetensors")).equals(safetensors.data)).toBe(true);
    const hubReqs = hub.log.slice(before).filter((r) => r.server === "hub");
    expect(hubReqs.length).toBeGreaterThan(0);
    expect(hubReqs.every((r) => r.authorization === "Bearer hf_secret")).toBe(true);
  });

  it("never sends the token to a CDN on another origin", async () => {
    const split = await startFakeHub(repos(), { separateCdn: true });
    try {
      const snap = await resolveHubModel("tiny/gated", { ...base(split, tempCache()), token: "hf_secret" });
      expect(readFileSync(join(snap, "model.safetensors")).equals(safetensors.data)).toBe(true);
      const cdn = split.log.filter((r) => r.server === "cdn");
      expect(cdn.length).toBe(1);
      expect(cdn[0]!.authorization).toBeUndefined();
      expect(split.log.filter((r) => r.server === "hub").every((r) => r.authorization === "Bearer hf_secret")).toBe(true);
    } finally {
      await split.close();
    }
  });

  it("refuses ids that are not owner/name and unsafe file names", async () => {
    expect((await rejection(resolveHubModel("not-an-id", base(hub, tempCache())))).code).toBe("invalid-id");
    expect((await rejection(resolveHubModel("tiny/gqa", { ...base(hub, tempCache()), files: ["../evil"] }))).message).toMatch(
      /unsafe name "\.\.\/evil"/,
    );
    expect((await rejection(resolveHubModel("tiny/gqa", { ...base(hub, tempCache()), revision: "../../x" }))).message).toMatch(
      /unsafe name/,
    );
  });
});
