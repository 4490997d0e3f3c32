// Perplexity throughput (tokens/s) on a MobileLLM-125M-shaped model with random weights
// (PRESETS["125M"]: 30 layers, D 576, 9 heads / 3 kv heads, F 1536, V 32000; f32 weights in memory).
// One eval.py window per iteration: reset, feed the window in chunks, reduce every row of logits
// to a cross-entropy. The ts backend is slow at this size, so the default window is 256 tokens
// instead of the paper's 2048 (attention cost grows with it, so 2048 is somewhat slower per token).
//
// Run: npx bun bench/eval.bench.ts          (SEQLEN=2048 BACKEND=wasm to change)

import { Bench } from "tinybench";
import { perplexity } from "../src/eval/perplexity.js";
import { createKernels, type BackendName } from "../src/kernels/index.js";
import type { Kernels, Weight } from "../src/kernels/kernels.js";
import { PRESETS } from "../src/model/config.js";
import { MobileLLM } from "../src/model/model.js";
import type { ModelWeights } from "../src/model/weights.js";

const SEQLEN = Number(process.env.SEQLEN ?? 256);
const BACKEND = (process.env.BACKEND ?? "ts") as BackendName;
const config = PRESETS["125M"]!;

/** mulberry32 + Box-Muller: deterministic N(0, 1) samples. */
function normal(seed: number): () => number {
  let a = seed >>> 0;
  const u = () => { a = (a + 0x6d2b79f5) >>> 0; let t = a; t = Math.imul(t ^ (t >>> 15), t | 1); t ^= t + Math.imul(t ^ (t >>> 7), t | 61); return ((t ^ (t >>> 14)) >>> 0) / 4294967296; };
  return () => Math.sqrt(-2 * Math.log(u() + 1e-12)) * Math.cos(2 * Math.PI * u());
}

function randomWeights(k: Kernels): ModelWeights {
  const rand = normal(1);
  const mat = (O: number, I: number): Weight => {
    const data = k.allocF32(O * I);
    for (let i = 0; i < data.length; i++) data[i] = 0.02 * rand();
    return { dtype: "f32", shape: [O, I], data };
  };
  const norm = (D: number) => k.allocF32(D).fill(1);
  const D = config.hiddenSize, F = config.intermediateSize, Q = config.numHeads * config.headDim, KV = config.numKvHeads * config.headDim;
  const embedVD = mat(config.vocabSize, D);
  return {
    embedVD, lmHeadVD: embedVD, finalNormD: norm(D),
    layers: Array.from({ length: config.numLayers }, () => ({
      inputNormD: norm(D), wqQD: mat(Q, D), wkKD: mat(KV, D), wvKD: mat(KV, D), woDQ: mat(D, Q),
      postNormD: norm(D), wGateFD: mat(F, D), wUpFD: mat(F, D), wDownDF: mat(D, F),
    })),
  };
}

const kernels = await createKernels(BACKEND);
const model = new MobileLLM(config, kernels, randomWeights(kernels), { maxPositions: SEQLEN });
const rand = normal(2);
const ids = Array.from({ length: SEQLEN }, (_, i) => (i === 0 ? 1 : 3 + Math.floor(Math.abs(rand() * 1e6)) % (config.vocabSize - 3)));

let ppl = 0;
const bench = new Bench({ iterations: 1, warmupIterations: 0, warmup: false, time: 0 });
bench.add(`ppl window, 125M, seqlen ${SEQLEN}, ${BACKEND}`, async () => {
  ppl = (await perplexity(model, ids, { seqlen: SEQLEN })).ppl;
});
await bench.run();

const rows = bench.tasks.map((t) => {
  const r = t.result as unknown as { latency?: { mean: number }; mean?: number };
  const ms = r.latency?.mean ?? r.mean ?? NaN;
  return { task: t.name, "s/window": (ms / 1000).toFixed(2), "tokens/s": (SEQLEN / (ms / 1000)).toFixed(1), ppl: ppl.toFixed(1) };
});
console.table(rows);
