// Loading from anywhere: a model folder served over HTTP (with and without Range support), a
// .gguf URL, a map of Blobs/bytes, through both entries (src/index.ts and src/browser.ts). A local
// server on 127.0.0.1 serves the fixture folders; failures (404, a truncated file, a connection
// that breaks off) must give an error naming the file, never a hang.

import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as browser from "../../src/browser.js";
import { ggufFromModel, writeGguf } from "../../src/io/gguf-write.js";
import { CheckpointError, defaultModel, loadModel, loadTokenizer, type LoadProgress } from "../../src/index.js";
import { blobSource, memorySource } from "../../src/platform/byte-source.js";
import { openUrl } from "../../src/platform/url.js";
import { expected, expectedIds, FIXTURES, HAS_SHARED, maxAbsDiff, SHARED } from "../helpers.js";

/** The fixture folders as ../shared has them (a copy lives in tests/fixtures for clones without it). */
const ROOT = HAS_SHARED ? join(SHARED, "fixtures") : FIXTURES;
const GQA = join(ROOT, "tiny-gqa");
const tmp = mkdtempSync(join(tmpdir(), "mobilellm-sources-"));

interface Logged {
  path: string;
  range: string | undefined;
  status: number;
}
const log: Logged[] = [];
let base = "";
let server: ReturnType<typeof createServer>;

/**
 * /range/<dir>/<file>     the file, honouring `Range: bytes=a-b` (206) like any static server
 * /plain/<dir>/<file>     the whole file (200) whatever the Range header says
 * /short/<dir>/<file>     weights files: the first half, as if that were all of it (a truncated upload)
 * /broken/<dir>/<file>    weights files: the full length announced, half sent, then the connection dropped
 * /stall/<dir>/<file>     weights files: the full length announced, half sent, then silence (left open)
 * <dir>: "gqa" (the tiny-gqa fixture), "default" (the embedded default model), "written" (files this test writes)
 */
function handler(req: IncomingMessage, res: ServerResponse): void {
  const [, mode, dirName, ...rest] = decodeURIComponent(new URL(req.url!, "http://x").pathname).split("/");
  const dir = { gqa: GQA, default: defaultModel, written: tmp }[dirName ?? ""];
  const entry = { path: req.url!, range: req.headers.range, status: 404 };
  log.push(entry);
  let data: Buffer;
  try {
    if (!dir || rest.some((p) => p === "..")) throw new Error("no");
    data = readFileSync(join(dir, ...rest));
  } catch {
    res.writeHead(404).end("not found");
    return;
  }
  const weights = /\.(safetensors|bin|gguf)$/.test(rest.at(-1) ?? "");
  if (mode === "short" && weights) data = data.subarray(0, data.length >> 1);
  const m = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? "");
  if (mode === "range" && m) {
    const start = Number(m[1]),
      end = Math.min(m[2] ? Number(m[2]) : data.length - 1, data.length - 1);
    if (start >= data.length) {
      entry.status = 416;
      res.writeHead(416, { "Content-Range": `bytes */${data.length}` }).end();
      return;
    }
    entry.status = 206;
    res.writeHead(206, { "Content-Range": `bytes ${start}-${end}/${data.length}`, "Content-Length": String(end - start + 1) });
    res.end(data.subarray(start, end + 1));
    return;
  }
  entry.status = 200;
  res.writeHead(200, { "Content-Length": String(data.length) });
  if (mode === "broken" && weights) {
    res.write(data.subarray(0, data.length >> 1), () => res.socket?.destroy());
    return;
  }
  if (mode === "stall" && weights) {
    res.write(data.subarray(0, data.length >> 1)); // ...and never more (closed in afterAll)
    return;
  }
  res.end(data);
}

beforeAll(async () => {
  server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  rmSync(tmp, { recursive: true, force: true });
});

const ids = expectedIds("tiny-gqa", "input_ids");
let reference: Float32Array;
beforeAll(async () => {
  reference = (await loadModel(GQA, { backend: "ts" })).forward(ids);
  expect(maxAbsDiff(reference, expected("tiny-gqa", "logits"))).toBeLessThan(1e-4); // the folder load is right
});

const bytesOf = (file: string) => new Uint8Array(readFileSync(join(GQA, file)));

describe("a model folder over HTTP", () => {
  it("with Range support: the same logits as the folder, and the weights read in ranges (never the whole file)", async () => {
    log.length = 0;
    const events: LoadProgress[] = [];
    const model = await loadModel(`${base}/range/gqa/`, { backend: "ts", onProgress: (p) => events.push(p) });
    expect(model.forward(ids)).toEqual(reference);
    const weights = log.filter((l) => l.path.endsWith("/model.safetensors"));
    expect(weights.length).toBeGreaterThan(1);
    expect(weights.every((l) => l.range !== undefined && l.status === 206)).toBe(true);
    // progress: the weights file read to its end, through the same callback as every other source
    const last = events.filter((e) => e.file.endsWith("model.safetensors")).at(-1)!;
    expect(last).toMatchObject({ phase: "load", total: statSync(join(GQA, "model.safetensors")).size });
    expect(last.loaded).toBeGreaterThan(0.99 * last.total!);
  });

  it("without Range support: one whole download per file, the same logits", async () => {
    log.length = 0;
    const model = await loadModel(new URL(`${base}/plain/gqa`), { backend: "ts" }); // a URL object; no final "/"
    expect(model.forward(ids)).toEqual(reference);
    expect(log.filter((l) => l.path.endsWith("/model.safetensors")).length).toBe(1);
  });

  it("pytorch_model.bin over HTTP (the weights file chosen by name) and through the browser entry", async () => {
    const model = await browser.loadModel(`${base}/range/gqa/`, { backend: "ts", weights: "pytorch_model.bin" });
    expect(maxAbsDiff(model.forward(ids), expected("tiny-gqa", "logits_fp16"))).toBeLessThan(1e-4);
  });

  it("a 404 names the URL; a missing folder says config.json is not found", async () => {
    await expect(loadModel(`${base}/range/nope/`, { backend: "ts" })).rejects.toThrow(`${base}/range/nope/config.json: not found`);
    await expect(loadModel(`${base}/range/gqa/model.gguf`, { backend: "ts" })).rejects.toThrow(`${base}/range/gqa/model.gguf: HTTP 404`);
    await expect(loadTokenizer(`${base}/range/gqa/`)).rejects.toThrow(`${base}/range/gqa/tokenizer.model: not found`);
  });

  it("a truncated file is a readable error naming it (ranged and whole downloads), not a hang", async () => {
    for (const mode of ["short", "broken"]) {
      const err = await loadModel(`${base}/${mode}/gqa/`, { backend: "ts", weights: "model.safetensors" }).catch((e: Error) => e);
      expect(err, mode).toBeInstanceOf(CheckpointError);
      expect((err as Error).message, mode).toContain(`${base}/${mode}/gqa/model.safetensors: `);
      expect((err as Error).message, mode).toMatch(mode === "short" ? /truncated/ : /broke off|sent \d+ of/);
    }
    // a server that stops sending but keeps the connection open: an error after timeoutMs
    const stalled = await loadModel(`${base}/stall/gqa/`, { backend: "ts", weights: "model.safetensors", timeoutMs: 300 }).catch(
      (e: Error) => e,
    );
    expect((stalled as Error).message).toMatch(
      new RegExp(
        `^${base}/stall/gqa/model\\.safetensors: the download of the file broke off after \\d+ of \\d+ bytes \\(no data for 0\\.3 s`,
      ),
    );
    // the weights alone cut short: the safetensors reader's own check, with the URL
    const src = await openUrl(`${base}/short/gqa/model.safetensors`);
    expect(src!.size).toBe(statSync(join(GQA, "model.safetensors")).size >> 1);
  });

  it("a range read past the end of a URL source is refused before any request", async () => {
    const src = (await openUrl(`${base}/range/gqa/config.json`))!;
    await expect(src.read(src.size - 2, new Uint8Array(4), "the end")).rejects.toThrow(/file ends inside the end/);
  });
});

describe("a map of files (drag-and-drop, <input type=file>)", () => {
  it("Blob, Uint8Array and ArrayBuffer values give the same logits as the folder", async () => {
    const config = bytesOf("config.json");
    const weights = bytesOf("model.safetensors");
    for (const files of [
      { "config.json": new Blob([config]), "model.safetensors": new Blob([weights]) },
      { "config.json": config, "model.safetensors": weights },
      { "config.json": config.slice().buffer, "model.safetensors": weights.slice().buffer },
    ]) {
      expect((await loadModel(files, { backend: "ts" })).forward(ids)).toEqual(reference);
    }
    // only pytorch_model.bin, through the browser entry
    const model = await browser.loadModel(
      { "config.json": new Blob([config]), "pytorch_model.bin": new Blob([bytesOf("pytorch_model.bin")]) },
      { backend: "ts" },
    );
    expect(maxAbsDiff(model.forward(ids), expected("tiny-gqa", "logits_fp16"))).toBeLessThan(1e-4);
  });

  it("a sharded checkpoint: the index and its shards from the map (and a missing shard named)", async () => {
    const header = readFileSync(join(GQA, "model.safetensors"));
    const tensors = Object.keys(JSON.parse(header.subarray(8, 8 + Number(header.readBigUInt64LE(0))).toString())).filter(
      (n) => n !== "__metadata__",
    );
    const index = new TextEncoder().encode(
      JSON.stringify({ weight_map: Object.fromEntries(tensors.map((n) => [n, "shards/pytorch_model-00001-of-00001.bin"])) }),
    );
    const files = {
      "config.json": bytesOf("config.json"),
      "pytorch_model.bin.index.json": index,
      "shards/pytorch_model-00001-of-00001.bin": new Blob([bytesOf("pytorch_model.bin")]),
    };
    expect(maxAbsDiff((await browser.loadModel(files, { backend: "ts" })).forward(ids), expected("tiny-gqa", "logits_fp16"))).toBeLessThan(
      1e-4,
    );
    const { "shards/pytorch_model-00001-of-00001.bin": _, ...missing } = files;
    await expect(loadModel(missing, { backend: "ts" })).rejects.toThrow(
      /^shards\/pytorch_model-00001-of-00001\.bin: checkpoint not found \(a shard named by pytorch_model\.bin\.index\.json/,
    );
  });

  it("a truncated Blob and a map without config.json are errors naming the file", async () => {
    const weights = bytesOf("model.safetensors");
    await expect(
      loadModel({ "config.json": bytesOf("config.json"), "model.safetensors": new Blob([weights.subarray(0, 5000)]) }, { backend: "ts" }),
    ).rejects.toThrow(/^model\.safetensors: .*truncated/);
    await expect(loadModel({ "model.safetensors": weights }, { backend: "ts" })).rejects.toThrow(/^config\.json: not found/);
  });

  it("blob and memory sources refuse reads outside their bytes", async () => {
    await expect(blobSource(new Blob([new Uint8Array(8)]), "a.bin").read(6, new Uint8Array(4))).rejects.toThrow(
      /^a\.bin: file ends inside data \(bytes 6\.\.10 of 8/,
    );
    await expect(memorySource(new Uint8Array(8), "b.bin").read(-1, new Uint8Array(1))).rejects.toThrow(/^b\.bin: /);
  });
});

describe("GGUF and the tokenizer from a URL", () => {
  let gguf: string;
  beforeAll(async () => {
    const model = await loadModel(defaultModel, { backend: "ts" });
    const tok = await loadTokenizer(defaultModel);
    const { metadata, tensors } = ggufFromModel(model, tok);
    gguf = join(tmp, "model.gguf");
    writeGguf(gguf, metadata, tensors);
  });

  it("a .gguf URL loads like the .gguf path; its tokenizer too", async () => {
    const prompt = [1, 40, 7, 300, 12];
    const fromPath = (await loadModel(gguf, { backend: "ts" })).forward(prompt);
    for (const mode of ["range", "plain"]) {
      expect((await loadModel(`${base}/${mode}/written/model.gguf`, { backend: "ts" })).forward(prompt), mode).toEqual(fromPath);
    }
    expect((await browser.loadModel({ "model.gguf": new Blob([readFileSync(gguf)]) }, { backend: "ts" })).forward(prompt)).toEqual(
      fromPath,
    );
    const tok = await loadTokenizer(`${base}/range/written/model.gguf`);
    expect(tok.encode("To be, or not to be")).toEqual((await loadTokenizer(gguf)).encode("To be, or not to be"));
  });

  it("the default model folder over HTTP through the browser entry: model and tokenizer as from disk", async () => {
    const url = `${base}/range/default/`;
    const tok = await browser.loadTokenizer(url);
    const want = await loadTokenizer(defaultModel);
    expect(tok.encode("ROMEO:")).toEqual(want.encode("ROMEO:"));
    const prompt = want.encode("ROMEO:", { addBos: true });
    expect((await browser.loadModel(url, { backend: "ts" })).forward(prompt)).toEqual(
      (await loadModel(defaultModel, { backend: "ts" })).forward(prompt),
    );
  });

  it("the browser entry's default model is models/<name>/ beside dist/ (and src/); Node loads that file: URL", async () => {
    expect(fileURLToPath(browser.defaultModelUrl())).toBe(join(defaultModel, "/"));
    const prompt = [1, 40, 7];
    expect((await loadModel(browser.defaultModelUrl(), { backend: "ts" })).forward(prompt)).toEqual(
      (await loadModel(undefined, { backend: "ts" })).forward(prompt),
    );
    expect((await loadTokenizer(browser.defaultModelUrl())).encode("ROMEO:")).toEqual((await loadTokenizer()).encode("ROMEO:"));
  });
});

describe("the signal", () => {
  it("an aborted load rejects with the signal's reason", async () => {
    const controller = new AbortController();
    controller.abort(new Error("stopped by the user"));
    await expect(loadModel(`${base}/range/gqa/`, { backend: "ts", signal: controller.signal })).rejects.toThrow("stopped by the user");
    await expect(loadModel(GQA, { backend: "ts", signal: controller.signal })).rejects.toThrow("stopped by the user");
  });
});
