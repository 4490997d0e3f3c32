// loadModel("owner/name") end to end: download from a fake hub on 127.0.0.1 into a fresh cache,
// load the fixture weights, and get the reference logits; then again from the cache, offline.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadModel, type LoadProgress } from "../../src/index.js";
import { expected, expectedIds, FIXTURES, maxAbsDiff } from "../helpers.js";
import { startFakeHub, type FakeHub } from "./hub-fake.js";

const COMMIT = "0123456789abcdef0123456789abcdef01234567";
const dir = join(FIXTURES, "tiny-ls");
const file = (name: string, lfs: boolean) => ({ name, data: readFileSync(join(dir, name)), lfs });

let hub: FakeHub;
const cacheDir = mkdtempSync(join(tmpdir(), "mobilellm-hub-load-"));
beforeAll(async () => {
  hub = await startFakeHub([
    {
      id: "facebook/MobileLLM-tiny-LS",
      refs: { main: COMMIT },
      commits: { [COMMIT]: [file("config.json", false), file("pytorch_model.bin", true)] },
    },
  ]);
});
afterAll(async () => {
  await hub?.close();
  rmSync(cacheDir, { recursive: true, force: true });
});

describe("loadModel from a hub id", () => {
  it("downloads into the cache and matches the reference logits", async () => {
    const events: LoadProgress[] = [];
    const model = await loadModel("facebook/MobileLLM-tiny-LS", {
      backend: "ts",
      hub: { endpoint: hub.url, cacheDir, quiet: true, env: {} },
      onProgress: (e) => events.push(e),
    });
    expect(maxAbsDiff(model.forward(expectedIds("tiny-ls", "input_ids")), expected("tiny-ls", "logits_fp16"))).toBeLessThan(1e-4);
    // the same typed progress as every other source: the download, then the weights read
    const size = readFileSync(join(dir, "pytorch_model.bin")).length;
    expect(events.filter((e) => e.phase === "download" && e.file === "pytorch_model.bin").at(-1)).toEqual({
      phase: "download",
      file: "pytorch_model.bin",
      loaded: size,
      total: size,
    });
    expect(events.some((e) => e.phase === "load" && e.file.endsWith("pytorch_model.bin"))).toBe(true);
  });

  it("loads again from the cache with the server stopped and offline mode on", async () => {
    await hub.close();
    const model = await loadModel("facebook/MobileLLM-tiny-LS", {
      backend: "ts",
      hub: { cacheDir, quiet: true, env: { HF_HUB_OFFLINE: "1" } },
    });
    expect(model.config.layerSharing).toBe(true);
  });

  it("an id that is neither a folder nor a hub id is a clear error", async () => {
    await expect(loadModel("no-such-folder", { backend: "ts" })).rejects.toThrowError(/not a folder and not a hub id/);
  });
});
