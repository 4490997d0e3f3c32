// Generation speed of a MobileLLM-125M-shaped model (PRESETS["125M"], random weights): prefill of
// a 128-token prompt and decode steps with the KV cache, per backend and weight dtype.
//
//   npm run bench:generate -- [--backends ts,wasm] [--dtypes f32,f16] [--decode N] [--threads N] [--write]
//
// Rows: tinybench timings of one prefill (128 tokens from position 0) and of one decode step at
// position 128 (the cache is truncated back to 128 before each step), then an end-to-end
// generate() call (128-token prompt, N greedy tokens) whose summary gives prefill/decode tok/s
// over positions 128 .. 128+N. N is 128, except 16 on the slow ts reference backend (one prefill
// there takes about a minute); --decode N overrides both. --write records the table in BENCHMARKS.md.
import { Bench } from "tinybench";
import { createKernels } from "../dist/kernels/index.js";
import { PRESETS } from "../dist/model/config.js";
import { MobileLLM } from "../dist/model/model.js";
import { randomWeights } from "../dist/model/random-weights.js";
import { generate } from "../dist/generate/generate.js";
import { Mulberry32 } from "../dist/util/rng.js";
import { loadavg } from "node:os";
import { updateBenchmarks } from "./out/bench/report.js";

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
};
const backends = arg("backends", "ts,wasm").split(",");
const dtypes = arg("dtypes", "f32,f16").split(",");
const decodeArg = arg("decode", undefined);
const threads = Number(arg("threads", "1")); // wasm kernel threads (bench/threads.bench.ts compares 1 and 2)
const PROMPT = 128;

const config = PRESETS["125M"];
const rng = new Mulberry32(2);
const promptIds = Array.from({ length: PROMPT }, (_, i) => (i === 0 ? 1 : 3 + Math.floor(rng.next() * 31997)));
const rows = [];
const loadAtStart = loadavg()[0];
for (const backend of backends) {
  let kernels;
  try {
    kernels = await createKernels(backend, { threads: backend === "ts" ? 1 : threads });
  } catch (e) {
    console.error(`skipping backend ${backend}: ${e.message}`);
    continue;
  }
  for (const dtype of dtypes) {
    if (rows.length > 0) kernels = await createKernels(backend, { threads: backend === "ts" ? 1 : threads }); // fresh memory per model
    const t0 = performance.now();
    const weights = randomWeights(config, kernels, { dtype });
    const slow = backend === "ts";
    const decodeTokens = decodeArg !== undefined ? Number(decodeArg) : slow ? 16 : 128;
    const model = new MobileLLM(config, kernels, weights, { maxPositions: PROMPT + decodeTokens + 1 });
    console.error(`${backend} ${dtype}: weights ready in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

    const prefill = new Bench({ iterations: slow ? 1 : 3, warmupIterations: slow ? 0 : 1, time: 0, warmupTime: 0 });
    prefill.add("prefill", () => {
      model.reset();
      model.feed(promptIds);
    });
    await prefill.run();
    const decode = new Bench({ iterations: slow ? 4 : 16, warmupIterations: 1, time: 0, warmupTime: 0 });
    decode.add("decode", () => {
      model.truncate(PROMPT);
      model.feed([42]);
    });
    await decode.run(); // the cache holds the prompt from the prefill task
    const ms = (b) => b.tasks[0].result.latency.mean;

    const r = await generate(model, promptIds, { maxNewTokens: decodeTokens, temperature: 0, eosTokenId: null }).complete();
    rows.push({
      backend,
      dtype,
      threads: model.threads,
      prefillMs: ms(prefill),
      decodeMs: ms(decode),
      decodeTokens,
      prefillTps: r.prefillTokensPerSecond,
      decodeTps: r.decodeTokensPerSecond,
    });
    console.error(`${backend} ${dtype}: done`);
  }
}

const table = [
  `| backend | threads | weights | prefill ${PROMPT} tokens (ms) | prefill tok/s | decode step at pos ${PROMPT} (ms) | generate(): prefill tok/s | generate(): new tokens | generate(): decode tok/s |`,
  "|---|---|---|---|---|---|---|---|---|",
  ...rows.map(
    (r) =>
      `| ${r.backend} | ${r.threads} | ${r.dtype} | ${r.prefillMs.toFixed(0)} | ${(PROMPT / (r.prefillMs / 1000)).toFixed(1)} | ` +
      `${r.decodeMs.toFixed(1)} | ${r.prefillTps.toFixed(1)} | ${r.decodeTokens} | ${r.decodeTps.toFixed(2)} |`,
  ),
].join("\n");
console.log(table);
if (process.argv.includes("--write")) {
  const args = process.argv
    .slice(2)
    .filter((a) => a !== "--write")
    .join(" ");
  updateBenchmarks(
    "Generation (MobileLLM-125M shape)",
    `npm run bench:generate${args ? " -- " + args : ""}`,
    table,
    `Random weights, ${PROMPT}-token prompt, greedy; threads as in the table (see Threads for 1 vs 2). tinybench columns: prefill mean of 3 runs after 1 warm-up ` +
      "(ts: 1 run), decode step mean of 16 (ts: 4) after 1 warm-up; generate() columns: one call's summary. " +
      `1-minute load average at the start: ${loadAtStart.toFixed(1)} (other jobs on the machine slow every column).`,
  );
}
