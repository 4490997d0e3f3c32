// Runs under Node, Deno and Bun: import the built package, run a forward pass on a fixture,
// and print the largest difference from the PyTorch reference logits as JSON.
// Usage: <runtime> tests/runtime/forward.mjs <fixture folder> [backend] [threads]
// With threads, every kernel call is split across that many threads (minThreadWork 0).
import { loadModel, openSafetensors } from "../../dist/index.js";

const args = globalThis.Deno ? Deno.args : process.argv.slice(2);
const folder = args[0];
const backend = args[1] ?? "ts";
const threads = args[2] === undefined ? {} : { threads: Number(args[2]), minThreadWork: 0 };

async function tensor(name) {
  const f = await openSafetensors(`${folder}/expected.safetensors`);
  const t = f.tensors.get(name);
  const bytes = new Uint8Array(t.numel * (t.dtype === "I64" ? 8 : 4));
  await t.read(bytes);
  f.close();
  return t.dtype === "I64" ? Array.from(new BigInt64Array(bytes.buffer), Number) : new Float32Array(bytes.buffer);
}

const model = await loadModel(folder, { backend, ...threads });
const logits = model.forward(await tensor("input_ids"));
const want = await tensor("logits");
let maxAbsDiff = 0;
for (let i = 0; i < want.length; i++) maxAbsDiff = Math.max(maxAbsDiff, Math.abs(logits[i] - want[i]));
console.log(JSON.stringify({ maxAbsDiff, n: logits.length, threads: model.threads }));
await model.dispose();
