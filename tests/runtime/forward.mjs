// Runs under Node, Deno and Bun: import the built package, run a forward pass on a fixture,
// and print the largest difference from the PyTorch reference logits as JSON.
// Usage: <runtime> tests/runtime/forward.mjs <fixture folder> [backend]
import { loadModel, openSafetensors } from "../../dist/index.js";

const folder = (globalThis.Deno ? Deno.args : process.argv.slice(2))[0];
const backend = (globalThis.Deno ? Deno.args : process.argv.slice(2))[1] ?? "ts";

function tensor(name) {
  const f = openSafetensors(`${folder}/expected.safetensors`);
  const t = f.tensors.get(name);
  const bytes = new Uint8Array(t.numel * (t.dtype === "I64" ? 8 : 4));
  t.read(bytes);
  f.close();
  return t.dtype === "I64" ? Array.from(new BigInt64Array(bytes.buffer), Number) : new Float32Array(bytes.buffer);
}

const model = await loadModel(folder, { backend });
const logits = model.forward(tensor("input_ids"));
const want = tensor("logits");
let maxAbsDiff = 0;
for (let i = 0; i < want.length; i++) maxAbsDiff = Math.max(maxAbsDiff, Math.abs(logits[i] - want[i]));
console.log(JSON.stringify({ maxAbsDiff, n: logits.length }));
