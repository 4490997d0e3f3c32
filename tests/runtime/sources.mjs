// Run by tests/runtimes.test.ts in Node, Deno and Bun: the browser entry (dist/browser.js) loads
// tiny-gqa from a map of Blobs and from an http URL served by the test, and both give the
// reference logits. Prints {"blob": maxAbsDiff, "url": maxAbsDiff, "same": bool}.
// Usage: <runtime> tests/runtime/sources.mjs <fixture folder> <base URL of the same folder>
import { readFileSync } from "node:fs";
import { loadModel } from "../../dist/browser.js";
import { openSafetensors } from "../../dist/index.js";

const [folder, url] = process.argv.slice(-2);

async function tensor(name) {
  const f = await openSafetensors(`${folder}/expected.safetensors`);
  const t = f.tensors.get(name);
  const bytes = new Uint8Array(t.numel * (t.dtype === "I64" ? 8 : 4));
  await t.read(bytes);
  f.close();
  return t.dtype === "I64" ? Array.from(new BigInt64Array(bytes.buffer), Number) : new Float32Array(bytes.buffer);
}

const ids = await tensor("input_ids");
const want = await tensor("logits");
const diff = (a) => a.reduce((m, x, i) => Math.max(m, Math.abs(x - want[i])), 0);
const files = Object.fromEntries(["config.json", "model.safetensors"].map((f) => [f, new Blob([readFileSync(`${folder}/${f}`)])]));
const fromBlobs = await loadModel(files, { threads: 1 });
const fromUrl = await loadModel(url, { threads: 1 });
const a = fromBlobs.forward(ids),
  b = fromUrl.forward(ids);
console.log(JSON.stringify({ blob: diff(a), url: diff(b), same: a.every((x, i) => x === b[i]) }));
await fromBlobs.dispose();
await fromUrl.dispose();
