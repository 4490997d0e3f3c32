// Perplexity throughput (tokens/s) on a MobileLLM-125M-shaped model with random weights
// (PRESETS["125M"]: 30 layers, D 576, 9 heads / 3 kv heads, F 1536, V 32000; f32 weights in memory).
// One iteration = one eval.py window: reset, feed the window in chunks, reduce every row of logits
// to a cross-entropy (src/eval/perplexity.ts). Single thread; one untimed 64-token warm-up window first.
//
// The ts reference backend is slow at this size (~3 tokens/s: one 2048-token window takes ~11
// minutes), so by default it is measured on a 256-token window; wasm on 256 and on the paper's 2048.
// Attention grows with the window, so 2048 costs somewhat more per token than 256.
//
// Run from the repository root:
//   npm run bench:eval
//   (add `-- --ts-2048` to also time the ts backend on a full 2048-token window)
// Prints a table and rewrites the "## Perplexity" section of BENCHMARKS.md (other sections are kept).

import { Mulberry32 } from "../src/util/rng.js";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { Bench } from "tinybench";
import { perplexity } from "../src/eval/perplexity.js";
import type { Kernels } from "../src/kernels/kernels.js";
import { createTsKernels } from "../src/kernels/ts/index.js";
import { createWasmKernels } from "../src/kernels/wasm/index.js";
import { PRESETS } from "../src/model/config.js";
import { MobileLLM } from "../src/model/model.js";
import { randomWeights } from "../src/model/random-weights.js";
import { markdownTable, writeBenchmarksSection } from "./report.js";

const config = PRESETS["125M"]!;
const root = process.cwd();

/** Box-Muller over the project's seeded Mulberry32: deterministic N(0, 1) samples. */
function normal(seed: number): () => number {
  const g = new Mulberry32(seed);
  return () => Math.sqrt(-2 * Math.log(g.next() + 1e-12)) * Math.cos(2 * Math.PI * g.next());
}

async function kernelsFor(backend: "ts" | "wasm"): Promise<Kernels> {
  if (backend === "ts") return createTsKernels();
  // bench/out/ is not where the default module path points, so name the module.
  const shared = typeof SharedArrayBuffer !== "undefined";
  return createWasmKernels({
    threads: 1,
    wasmUrl: pathToFileURL(path.join(root, shared ? "build/kernels-shared.wasm" : "build/kernels.wasm")),
  });
}

const runs: { backend: "ts" | "wasm"; seqlen: number }[] = [
  { backend: "wasm", seqlen: 256 },
  { backend: "wasm", seqlen: 2048 },
  { backend: "ts", seqlen: 256 },
  ...(process.argv.includes("--ts-2048") ? [{ backend: "ts" as const, seqlen: 2048 }] : []),
];

const rows: string[][] = [["backend", "window (tokens)", "s / window", "tokens/s", "ppl (random weights)"]];
for (const { backend, seqlen } of runs) {
  const kernels = await kernelsFor(backend);
  const model = new MobileLLM(config, kernels, randomWeights(config, kernels), { maxPositions: seqlen });
  const rand = normal(2);
  const ids = Array.from({ length: seqlen }, (_, i) => (i === 0 ? 1 : 3 + (Math.floor(Math.abs(rand()) * 1e6) % (config.vocabSize - 3))));
  await perplexity(model, ids.slice(0, 64), { seqlen: 64 }); // warm-up (untimed): lets the JIT / wasm tier-up settle
  let ppl = NaN;
  const bench = new Bench({ iterations: 1, warmupIterations: 0, warmup: false, time: 0 });
  bench.add(`${backend} ${seqlen}`, async () => {
    ppl = (await perplexity(model, ids, { seqlen })).ppl;
  });
  await bench.run();
  const r = bench.tasks[0]!.result as unknown as { latency?: { mean: number }; mean?: number };
  const seconds = (r.latency?.mean ?? r.mean ?? NaN) / 1000;
  rows.push([backend, String(seqlen), seconds.toFixed(2), (seqlen / seconds).toFixed(1), ppl.toFixed(1)]);
  console.log(rows.at(-1)!.join("  "));
}

const md = markdownTable(rows);
console.log(md);
const cpu = os.cpus()[0]?.model ?? "unknown CPU";
const section = [
  "## Perplexity",
  "",
  `Measured by \`bench/eval.bench.ts\` on ${new Date().toISOString().slice(0, 10)}: ${cpu}, ${os.cpus().length} cores, ` +
    `Node ${process.version}, single thread. Run: \`npm run bench:eval\`.`,
  "",
  "One MobileLLM `eval.py` window (`mobilellm ppl`: chunked forward from position 0, float64 cross-entropy " +
    "of every row) on a MobileLLM-125M-shaped model with random f32 weights. The ts reference backend is " +
    "timed on a 256-token window (a 2048-token window takes it about 11 minutes). A full run takes " +
    "floor(tokens / 2048) times the s / window of the 2048 row.",
  "",
  md,
  "",
].join("\n");
const file = writeBenchmarksSection("## Perplexity", section);
console.log(`wrote the "## Perplexity" section of ${file}`);
