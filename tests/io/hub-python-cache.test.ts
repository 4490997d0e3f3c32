// Interop with Python's huggingface_hub: a cache it wrote (no .no_exist markers for files it never
// asked about) loads offline, and downloads use its lock files (.locks/models--owner--name/{etag}.lock).
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { blobLockPath, lookupCachedSnapshot, lookupLoadableSnapshot, resolveHubModel } from "../../src/io/hub.js";
import { defaultModel, loadModel } from "../../src/load.js";
import { startFakeHub, sha256, type FakeHub } from "./hub-fake.js";
import { writePythonCache, type PyCacheFile } from "./python-hf-cache.js";
import { HAS_BIN, mobilellm } from "../cli/bin-helpers.js";

const COMMIT = "0123456789abcdef0123456789abcdef01234567";
const REPO = "facebook/MobileLLM-tiny";
const file = (name: string, lfs: boolean): PyCacheFile => ({ name, data: readFileSync(join(defaultModel, name)), lfs });
const MODEL_FILES = [file("config.json", false), file("model.safetensors", true), file("tokenizer.model", true)];

const tmp = mkdtempSync(join(tmpdir(), "mobilellm-pycache-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe("a cache written by Python's huggingface_hub, offline", () => {
  const home = join(tmp, "hf-home"),
    cache = join(home, "hub");
  writePythonCache(cache, REPO, COMMIT, MODEL_FILES);

  it("is not complete for an online refresh (optional files unknown) but loadable offline", async () => {
    expect(lookupCachedSnapshot(cache, REPO).missing).toContain("generation_config.json");
    expect(lookupLoadableSnapshot(cache, REPO)).toEqual({
      commit: COMMIT,
      snapshotDir: join(cache, "models--facebook--MobileLLM-tiny", "snapshots", COMMIT),
      missing: [],
    });
    const noNetwork = (() => {
      throw new Error("network used");
    }) as unknown as typeof fetch;
    const snap = await resolveHubModel(REPO, { cacheDir: cache, env: { HF_HUB_OFFLINE: "1" }, fetch: noNetwork, quiet: true });
    const model = await loadModel(snap);
    expect(model.config.vocabSize).toBe(2048);
  });

  it("the built CLI generates from it with HF_HUB_OFFLINE=1", () => {
    if (!HAS_BIN) return;
    const r = mobilellm(["generate", "-m", REPO, "--prompt", "ROMEO:", "-n", "4", "--json"], {
      env: { HF_HOME: home, HF_HUB_OFFLINE: "1", HF_HUB_CACHE: "" },
    });
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).generated_tokens).toBe(4);
  });

  it("offline, a cache without what the model needs says what is missing", async () => {
    const partial = join(tmp, "partial");
    writePythonCache(partial, REPO, COMMIT, [file("config.json", false), file("model.safetensors", true)]);
    await expect(resolveHubModel(REPO, { cacheDir: partial, offline: true, quiet: true, env: {} })).rejects.toThrow(
      /missing tokenizer\.model/,
    );
    const noWeights = join(tmp, "no-weights");
    writePythonCache(noWeights, REPO, COMMIT, [file("config.json", false), file("tokenizer.model", true)]);
    await expect(resolveHubModel(REPO, { cacheDir: noWeights, offline: true, quiet: true, env: {} })).rejects.toThrow(
      /missing weights \(one of [a-z_.]+(, [a-z_.]+)*\)/,
    );
    // tokenizer.model recorded as absent (.no_exist, as we and huggingface_hub write it) is fine.
    mkdirSync(join(partial, "models--facebook--MobileLLM-tiny", ".no_exist", COMMIT), { recursive: true });
    writeFileSync(join(partial, "models--facebook--MobileLLM-tiny", ".no_exist", COMMIT, "tokenizer.model"), "");
    expect(lookupLoadableSnapshot(partial, REPO).missing).toEqual([]);
  });
});

describe("huggingface_hub's lock files", () => {
  let hub: FakeHub;
  const weights = MODEL_FILES[1]!;
  beforeAll(async () => {
    hub = await startFakeHub([{ id: REPO, refs: { main: COMMIT }, commits: { [COMMIT]: MODEL_FILES } }]);
  });
  afterAll(() => hub.close());
  const opts = (cacheDir: string) => ({ endpoint: hub.url, cacheDir, quiet: true, env: {}, files: ["model.safetensors"] });

  it("are at .locks/models--owner--name/{etag}.lock, and are where our downloads lock", async () => {
    const c = join(tmp, "locks1");
    const etag = sha256(weights.data);
    expect(blobLockPath(join(c, "models--facebook--MobileLLM-tiny"), etag)).toBe(
      join(c, ".locks", "models--facebook--MobileLLM-tiny", `${etag}.lock`),
    );
    // An empty lock left behind by a finished Python download does not hold us up.
    mkdirSync(join(c, ".locks", "models--facebook--MobileLLM-tiny"), { recursive: true });
    writeFileSync(join(c, ".locks", "models--facebook--MobileLLM-tiny", `${etag}.lock`), "");
    const snap = await resolveHubModel(REPO, opts(c));
    expect(readFileSync(join(snap, "model.safetensors")).equals(weights.data)).toBe(true);
    expect(readdirSync(join(c, "models--facebook--MobileLLM-tiny", "blobs"))).toEqual([etag]); // no lock among the blobs
  });

  it("wait while a Python download holds the lock (its .incomplete is being written)", async () => {
    const c = join(tmp, "locks2");
    const etag = sha256(weights.data);
    const lock = join(c, ".locks", "models--facebook--MobileLLM-tiny", `${etag}.lock`);
    const part = join(c, "models--facebook--MobileLLM-tiny", "blobs", `${etag}.incomplete`);
    mkdirSync(join(lock, ".."), { recursive: true });
    mkdirSync(join(part, ".."), { recursive: true });
    writeFileSync(lock, ""); // Python's filelock: an empty file, flock held
    writeFileSync(part, weights.data.subarray(0, 1000));
    let pythonDone = false;
    const writer = setInterval(() => {
      const now = new Date();
      utimesSync(part, now, now);
    }, 50);
    setTimeout(() => {
      // Python finishes: blob in place, .incomplete gone
      clearInterval(writer);
      writeFileSync(join(part, "..", etag), weights.data);
      rmSync(part);
      pythonDone = true;
    }, 500);
    const before = hub.log.length;
    const snap = await resolveHubModel(REPO, opts(c));
    expect(pythonDone).toBe(true);
    expect(readFileSync(join(snap, "model.safetensors")).equals(weights.data)).toBe(true);
    expect(hub.log.slice(before).filter((r) => r.method === "GET" && (r.server === "cdn" || r.path.includes("/resolve/"))).length).toBe(0); // no download: the blob Python wrote was used
    expect(existsSync(part)).toBe(false);
  });
});
