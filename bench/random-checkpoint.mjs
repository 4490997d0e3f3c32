// Writes a MobileLLM-shaped checkpoint folder with random weights (config.json + model.safetensors)
// for benchmarks. Tensors are generated and written one at a time, so memory stays small even for
// the 1.5B shape. Usage (after `npm run build`):
//   node bench/random-checkpoint.mjs <preset: 125M|350M|600M|1B|1.5B> <f32|f16> <out folder>
import { closeSync, existsSync, mkdirSync, openSync, renameSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { configToJson, Mulberry32, PRESETS } from "../dist/index.js";
import { expectedTensors } from "../dist/model/weights.js";
import { numberToBf16Bits, numberToF16Bits } from "../dist/kernels/half.js";

/** Normal samples (Box-Muller) from the project's seeded Mulberry32 generator. */
function rng(seed) {
  const g = new Mulberry32(seed);
  return () => Math.sqrt(-2 * Math.log(g.next() + 1e-12)) * Math.cos(2 * Math.PI * g.next());
}

export function writeRandomCheckpoint(dir, presetName, dtype = "f16", seed = 1) {
  const config = PRESETS[presetName];
  if (!config) throw new Error(`unknown preset ${presetName}`);
  mkdirSync(dir, { recursive: true });
  const file = join(dir, "model.safetensors");
  writeFileSync(
    join(dir, "config.json"),
    JSON.stringify({ ...configToJson(config), torch_dtype: dtype === "f32" ? "float32" : "float16" }, null, 2),
  );
  if (existsSync(file)) return file;
  const fileDType = { f32: "F32", f16: "F16", bf16: "BF16" }[dtype];
  const size = dtype === "f32" ? 4 : 2;
  const shapes = [...expectedTensors(config)];
  const header = { __metadata__: { format: "pt" } };
  let offset = 0;
  for (const [name, shape] of shapes) {
    const bytes = shape.reduce((a, b) => a * b, 1) * size;
    header[name] = { dtype: fileDType, shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const headerBytes = new Uint8Array(Math.ceil(json.length / 8) * 8).fill(0x20);
  headerBytes.set(json);
  const len = new Uint8Array(8);
  new DataView(len.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
  const fd = openSync(file + ".tmp", "w");
  writeSync(fd, len);
  writeSync(fd, headerBytes);
  const normal = rng(seed);
  const chunk = 1 << 20;
  for (const [, shape] of shapes) {
    const n = shape.reduce((a, b) => a * b, 1);
    const isNorm = shape.length === 1;
    for (let start = 0; start < n; start += chunk) {
      const m = Math.min(chunk, n - start);
      const out = dtype === "f32" ? new Float32Array(m) : new Uint16Array(m);
      for (let i = 0; i < m; i++) {
        const x = isNorm ? 1 + 0.1 * normal() : 0.02 * normal();
        out[i] = dtype === "f32" ? x : dtype === "f16" ? numberToF16Bits(x) : numberToBf16Bits(x);
      }
      writeSync(fd, new Uint8Array(out.buffer));
    }
  }
  closeSync(fd);
  renameSync(file + ".tmp", file); // last, so an interrupted run never leaves a half file behind
  return file;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [preset = "125M", dtype = "f16", out = `bench/out/random-${preset}-${dtype}`] = process.argv.slice(2);
  const file = writeRandomCheckpoint(out, preset, dtype);
  console.log(`wrote ${file}`);
}
