// Training throughput: one optimizer step (forward + backward + clip + AdamW) on random data for
// two small MobileLLM shapes, per kernel backend. Reports tokens/s and the achieved GFLOP/s by
// the usual estimate 6 × parameters × tokens/s (2 for the forward matmuls, 4 for the backward;
// attention's T² work is not counted).
// Run: npx bun bench/train.bench.ts     (prints the table and writes the "Training throughput"
// section of BENCHMARKS.md)

import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { arch, cpus, loadavg, platform } from "node:os";
import { Bench } from "tinybench";
import { markdownTable, replaceSection } from "./report.js";
import { BACKENDS, createKernels } from "../src/kernels/index.js";
import { parameterCount, type MobileLLMConfig } from "../src/model/config.js";
import { adamwStep, allocAdamW, clipGradNorm, ADAMW_DEFAULTS } from "../src/train/adamw.js";
import { initParams } from "../src/train/init.js";
import { trainBackward, trainForward, zeroGrads } from "../src/train/model.js";
import { Rng } from "../src/train/rng.js";
import { allocTrainState } from "../src/train/state.js";

function config(V: number, D: number, F: number, L: number, H: number, KV: number): MobileLLMConfig {
  return {
    vocabSize: V, hiddenSize: D, intermediateSize: F, numLayers: L, numHeads: H, numKvHeads: KV, headDim: D / H,
    maxPositions: 512, rmsNormEps: 1e-5, ropeTheta: 10000, shareEmbedding: true, layerSharing: false, bosTokenId: 1, eosTokenId: 2,
  };
}

const SHAPES = [
  { name: "tiny (D64 L4 V512)", c: config(512, 64, 172, 4, 8, 2), B: 4, T: 64 },
  { name: "small (D128 L8 V2048)", c: config(2048, 128, 344, 8, 4, 2), B: 4, T: 128 },
];

const rows: Record<string, string>[] = [];
for (const backend of BACKENDS) {
  for (const { name, c, B, T } of SHAPES) {
    let k;
    try {
      k = await createKernels(backend, { threads: 1 }); // a fresh backend per shape: wasm memory is reserved once per instance
    } catch (e) {
      console.log(`backend ${backend}: skipped (${(e as Error).message})`);
      break;
    }
    if (!k.matmulBackwardX) {
      console.log(`backend ${backend}: skipped (no matmul backward kernels)`);
      break;
    }
    const s = allocTrainState(k, c, B, T);
    const rng = new Rng(1);
    initParams(s.params, rng);
    for (let i = 0; i < s.idsN.length; i++) s.idsN[i] = rng.nextU32() % c.vocabSize;
    const opt = allocAdamW(s.params.layout.total);
    const bench = new Bench({ iterations: 4, warmupIterations: 1, time: 0 });
    bench.add(name, () => {
      zeroGrads(s);
      trainForward(s);
      trainBackward(s);
      clipGradNorm(s.params.gradFlat, 1);
      adamwStep(s.params.flat, s.params.gradFlat, opt, ADAMW_DEFAULTS, 1e-3);
    });
    await bench.run();
    const ms = (bench.tasks[0]!.result as { latency?: { mean: number } }).latency?.mean ?? NaN;
    const params = parameterCount(c), tps = (B * T) / (ms / 1000);
    rows.push({
      backend, model: name, params: `${(params / 1e6).toFixed(2)}M`, "batch B×T": `${B}×${T}`,
      "ms/step": ms.toFixed(0), "tokens/s": tps.toFixed(0), "GFLOP/s (6·P·tok/s)": ((6 * params * tps) / 1e9).toFixed(2),
    });
  }
}
console.table(rows);

const heading = "## Training throughput";
const cols = Object.keys(rows[0] ?? {});
const section = [
  heading,
  "",
  "Command: `npx bun bench/train.bench.ts`  ",
  `Machine: ${cpus()[0]?.model ?? "unknown CPU"}, ${cpus().length} cores, ${platform()}/${arch()}; ` +
    `load average ${loadavg()[0]!.toFixed(1)} while measuring; ${new Date().toISOString().slice(0, 10)}.`,
  "",
  "One optimizer step (forward, backward, gradient clipping, AdamW) on random tokens; one thread.",
  "GFLOP/s is the usual 6 × parameters × tokens/s estimate (attention's T² work not counted).",
  "",
  markdownTable([cols, ...rows.map((r) => cols.map((c) => r[c]!))]),
  "",
].join("\n");
const path = "BENCHMARKS.md";
writeFileSync(path, replaceSection(existsSync(path) ? readFileSync(path, "utf8") : "# Benchmarks\n", heading, section));
