// Resident memory of a loaded checkpoint: RSS growth of a fresh process from just before
// loadModel to just after, compared with the weights file size. Each measurement runs in its own
// child process so nothing else is on its heap.
// Usage: npm run bench:load-memory -- [presets...] [--dtypes f16,q8_0,q4_0]
// (default: 125M 1.5B, f16 as stored). q8_0/q4_0 quantize the fp16 file while loading.
import { execFileSync } from "node:child_process";
import { statSync } from "node:fs";
import { join } from "node:path";
import { writeRandomCheckpoint } from "./random-checkpoint.mjs";
import { updateBenchmarks } from "./out/bench/report.js";

if (process.argv[2] === "--child") {
  const [, , , dir, dtype, backend] = process.argv;
  const { loadModel } = await import("../dist/index.js");
  const { createKernels } = await import("../dist/kernels/index.js");
  await createKernels(backend); // module instantiation is not part of the checkpoint's cost
  globalThis.gc?.();
  const before = process.memoryUsage().rss;
  const t0 = performance.now();
  const model = await loadModel(dir, { backend, dtype });
  const seconds = (performance.now() - t0) / 1000;
  // let V8 finish freeing garbage array buffers (it sweeps them on a background thread after a
  // GC: the loader's one read buffer, as large as the largest tensor), then collect once more
  globalThis.gc?.();
  await new Promise((resolve) => setTimeout(resolve, 1000));
  globalThis.gc?.();
  const after = process.memoryUsage().rss;
  console.log(JSON.stringify({ before, after, seconds, dtype: model.weights.layers[0].wqQD.dtype }));
  process.exit(0);
}

const dtypesAt = process.argv.indexOf("--dtypes");
const dtypes = dtypesAt >= 0 ? process.argv[dtypesAt + 1].split(",") : ["f16"];
const positional = process.argv.slice(2).filter((a, i, all) => a !== "--dtypes" && all[i - 1] !== "--dtypes");
const presets = positional.length ? positional : ["125M", "1.5B"];
const backends = ["ts", "wasm"];
const rows = [];
for (const preset of presets) {
  const dir = join("bench", "out", `random-${preset}-f16`);
  const file = writeRandomCheckpoint(dir, preset, "f16");
  const fileBytes = statSync(file).size;
  for (const backend of backends)
    for (const dtype of dtypes) {
      let r;
      try {
        const out = execFileSync(
          process.execPath,
          ["--expose-gc", "--max-old-space-size=8192", "bench/load-memory.mjs", "--child", dir, dtype, backend],
          { encoding: "utf8" },
        );
        r = JSON.parse(out.trim().split("\n").pop());
      } catch (e) {
        rows.push(`| ${preset} | ${backend} | ${(fileBytes / 1e6).toFixed(0)} | failed: ${String(e.message).split("\n")[0]} | | | |`);
        continue;
      }
      const extra = r.after - r.before;
      rows.push(
        `| ${preset} | ${backend} | ${(fileBytes / 1e6).toFixed(0)} | ${r.dtype} | ${(extra / 1e6).toFixed(0)} | ${(extra / fileBytes).toFixed(2)}× | ${r.seconds.toFixed(1)} |`,
      );
      console.log(rows.at(-1));
    }
}
const table = [
  "| shape | backend | file MB (fp16) | resident dtype | extra RSS MB | RSS / file | load s |",
  "|---|---|---|---|---|---|---|",
  ...rows,
].join("\n");
console.log(table);
updateBenchmarks(
  dtypes.join() === "f16" ? "Checkpoint load memory" : `Checkpoint load memory (${dtypes.join(", ")})`,
  "npm run bench:load-memory" + (process.argv.length > 2 ? " -- " + process.argv.slice(2).join(" ") : ""),
  table,
  "RSS growth across `loadModel` in a fresh process (random fp16 weights, safetensors), measured after a GC and 1 s " +
    "for V8 to return freed array buffers. The KV cache and " +
    "activation buffers are reserved at load but their pages are only touched as positions are used, so they " +
    "are not resident here.",
);
