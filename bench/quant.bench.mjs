// Quantized weights: speed and quality in one run (npm run bench:quant).
//
//  1. Decode speed of a MobileLLM-125M-shaped model (random weights), one thread, wasm backend:
//     one decode step at KV length 128 for f16, q8_0 and q4_0 weights, each quantized format with
//     the embedding / output projection quantized too and kept f16. The models are measured
//     INTERLEAVED (round r times every model once), so load from other jobs on the machine hits
//     them alike; the table gives the median over rounds and the ratios the issue asks for.
//  2. Perplexity of the embedded default model (models/shakespeare-2m) on its validation text (the
//     last 10% of tiny Shakespeare, from the first newline after the 90% mark; ../shared/data) in
//     windows of 128 tokens: f32, f16 (as stored), q8_0, q4_0, with and without the embedding
//     quantized. Skipped with a message when the text is not there.
//
//  3. The same perplexity computed by llama.cpp (node-llama-cpp, when installed) from our exported
//     q8_0 and q4_0 GGUF files: same format, same function, so the two should agree within 0.1%.
//
//   npm run bench:quant -- [--rounds N] [--steps N] [--data tinyshakespeare.txt] [--skip-speed] [--write]
import { existsSync, readFileSync } from "node:fs";
import { loadavg } from "node:os";
import { createKernels } from "../dist/kernels/index.js";
import { PRESETS } from "../dist/model/config.js";
import { MobileLLM } from "../dist/model/model.js";
import { randomWeights } from "../dist/model/random-weights.js";
import { Mulberry32 } from "../dist/util/rng.js";
import { loadModel } from "../dist/load.js";
import { loadTokenizer } from "../dist/load.js";
import { perplexity } from "../dist/eval/perplexity.js";
import { updateBenchmarks } from "./out/bench/report.js";
import { getLlamaCpp, llamaPerplexity } from "./llamacpp.mjs";
import { ggufFromModel, writeGguf } from "../dist/io/gguf-write.js";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
};
const ROUNDS = Number(arg("rounds", "7"));
const STEPS = Number(arg("steps", "8"));
const DATA = arg("data", "../shared/data/tinyshakespeare.txt");
const PROMPT = 128;
const loadAtStart = loadavg()[0];
/** This process's CPU time in ms (user + system): on a machine shared with other jobs it counts
 * only the time the decode actually ran, so its ratios are steadier than wall-clock ones. */
const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

// ---- 1. decode speed ----------------------------------------------------------------------------

const config = PRESETS["125M"];
const skipSpeed = process.argv.includes("--skip-speed");
// Run with bun or deno (`npm run bench:quant -- --runtime bun`) to measure the relaxed-SIMD build; its table is recorded separately.
const runtime = typeof Bun !== "undefined" ? "Bun" : typeof Deno !== "undefined" ? "Deno" : "Node";
const relaxed = (await createKernels("wasm", { threads: 1 })).relaxedSimd;
const variants = [
  { name: "f16", dtype: "f16", emb: "f16" },
  { name: "q8_0", dtype: "q8_0", emb: "q8_0" },
  { name: "q8_0, f16 embedding", dtype: "q8_0", emb: "f16" },
  { name: "q4_0 (q8_0 embedding: the default)", dtype: "q4_0", emb: "q8_0" },
  { name: "q4_0, q4_0 embedding", dtype: "q4_0", emb: "q4_0" },
  { name: "q4_0, f16 embedding", dtype: "q4_0", emb: "f16" },
];
const rng = new Mulberry32(2);
const promptIds = Array.from({ length: PROMPT }, (_, i) => (i === 0 ? 1 : 3 + Math.floor(rng.next() * 31997)));
for (const v of skipSpeed ? [] : variants) {
  // one thread: the bars are for one thread (bench:threads compares thread counts)
  const kernels = await createKernels("wasm", { threads: 1 });
  const t0 = performance.now();
  v.model = new MobileLLM(config, kernels, randomWeights(config, kernels, { dtype: v.dtype, embeddingDType: v.emb }), {
    maxPositions: PROMPT + 2,
  });
  v.model.feed(promptIds); // KV cache holds 128 positions
  v.weightBytes = [
    v.model.weights.embedVD,
    ...v.model.weights.layers.flatMap((l) => [l.wqQD, l.wkKD, l.wvKD, l.woDQ, l.wGateFD, l.wUpFD, l.wDownDF]),
  ].reduce((s, w) => s + w.data.byteLength, 0);
  v.times = [];
  v.cpuTimes = [];
  console.error(`${v.name}: ready in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}
for (let r = 0; r < (skipSpeed ? 0 : ROUNDS); r++) {
  for (const v of variants) {
    v.model.truncate(PROMPT);
    v.model.feed([42]); // warm-up step
    const t0 = performance.now(),
      c0 = cpuMs();
    for (let s = 0; s < STEPS; s++) {
      v.model.truncate(PROMPT);
      v.model.feed([42]);
    }
    v.times.push((performance.now() - t0) / STEPS);
    v.cpuTimes.push((cpuMs() - c0) / STEPS);
  }
  console.error(`round ${r + 1}/${ROUNDS}: ${variants.map((v) => `${v.name} ${(1000 / v.times.at(-1)).toFixed(1)}`).join(", ")} tok/s`);
}
const median = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];
for (const v of variants) v.tps = skipSpeed ? NaN : 1000 / median(v.times);
for (const v of variants) v.cpuTps = skipSpeed ? NaN : 1000 / median(v.cpuTimes);
const byName = Object.fromEntries(variants.map((v) => [v.name, v]));
/** The q8_0 model with the same embedding dtype (else the default q8_0), for the q4_0 vs q8_0 ratio. */
const q8Peer = (v) => variants.find((p) => p.dtype === "q8_0" && p.emb === v.emb) ?? byName.q8_0;
const speedTable = [
  "| weights | weight MB read per token | decode step at KV 128 (ms, median) | tok/s (slowest–fastest round) | vs f16 | vs q8_0 (same embedding) | tok/s by CPU time | vs q8_0 by CPU time |",
  "|---|---|---|---|---|---|---|---|",
  ...(skipSpeed ? [] : variants).map(
    (v) =>
      `| ${v.name} | ${(v.weightBytes / 1e6).toFixed(0)} | ${median(v.times).toFixed(2)} | ${v.tps.toFixed(1)} (${(1000 / Math.max(...v.times)).toFixed(1)}–${(1000 / Math.min(...v.times)).toFixed(1)}) | ` +
      `${(v.tps / byName.f16.tps).toFixed(2)}× | ${(v.tps / q8Peer(v).tps).toFixed(2)}× | ${v.cpuTps.toFixed(1)} | ${(v.cpuTps / q8Peer(v).cpuTps).toFixed(2)}× |`,
  ),
].join("\n");
if (!skipSpeed) console.log(speedTable);
for (const v of variants) v.model = null; // let the memories go

// ---- 2. perplexity of the default model -------------------------------------------------------------

let pplTable = null;
if (!existsSync(DATA)) {
  console.error(`perplexity skipped: ${DATA} not found (pass --data path/to/tinyshakespeare.txt)`);
} else {
  const text = readFileSync(DATA, "utf8");
  const cut = text.indexOf("\n", Math.floor(text.length * 0.9)) + 1;
  const tok = await loadTokenizer("models/shakespeare-2m");
  const ids = tok.encode(text.slice(cut), { addBos: true });
  const rows = [];
  const cases = [
    { name: "f32", dtype: "f32" },
    { name: "f16 (as stored)", dtype: "auto" },
    { name: "q8_0", dtype: "q8_0", emb: "q8_0" },
    { name: "q8_0, f16 embedding", dtype: "q8_0", emb: "f16" },
    { name: "q4_0 (q8_0 embedding: the default)", dtype: "q4_0", emb: "q8_0" },
    { name: "q4_0, q4_0 embedding", dtype: "q4_0", emb: "q4_0" },
    { name: "q4_0, f16 embedding", dtype: "q4_0", emb: "f16" },
  ];
  let f32ppl = NaN;
  for (const c of cases) {
    const opts = { dtype: c.dtype, maxPositions: 128 };
    if (c.emb !== undefined) opts.embeddingDType = c.emb;
    const model = await loadModel("models/shakespeare-2m", { ...opts, threads: 1 });
    const r = await perplexity(model, ids, { seqlen: 128 });
    if (c.dtype === "f32") f32ppl = r.ppl;
    rows.push(`| ${c.name} | ${r.ppl.toFixed(4)} | ${(100 * (r.ppl / f32ppl - 1)).toFixed(3)}% |`);
    console.error(`ppl ${c.name}: ${r.ppl.toFixed(4)}`);
  }
  // 3. llama.cpp on our GGUF exports of the same model
  const found = await getLlamaCpp();
  if (!found.llama) {
    console.error(`llama.cpp comparison skipped: ${found.error}`);
  } else {
    const tmp = mkdtempSync(join(tmpdir(), "mobilellm-bench-"));
    try {
      for (const dtype of ["q8_0", "q4_0"]) {
        const ours = await loadModel("models/shakespeare-2m", { dtype, maxPositions: 128, threads: 1 });
        const file = join(tmp, `shakespeare-2m-${dtype}.gguf`);
        const g = ggufFromModel(ours, tok);
        writeGguf(file, g.metadata, g.tensors);
        const mine = (await perplexity(ours, ids, { seqlen: 128 })).ppl;
        const theirs = await llamaPerplexity(found.llama, file, ids, 128);
        rows.push(
          `| ${dtype}: llama.cpp (node-llama-cpp) on our exported GGUF | ${theirs.toFixed(4)} | ${(100 * (theirs / f32ppl - 1)).toFixed(3)}% (vs ours: ${(100 * (theirs / mine - 1)).toFixed(3)}%) |`,
        );
        console.error(`llama.cpp ${dtype}: ${theirs.toFixed(4)} (ours ${mine.toFixed(4)})`);
      }
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  }
  pplTable = [`| weights | perplexity (${ids.length} tokens, windows of 128) | vs f32 |`, "|---|---|---|", ...rows].join("\n");
  console.log(pplTable);
}

if (process.argv.includes("--write")) {
  const args = process.argv
    .slice(2)
    .filter((a) => a !== "--write")
    .join(" ");
  const title =
    "Quantized weights: decode speed (MobileLLM-125M shape)" + (runtime === "Node" ? "" : `, ${runtime}${relaxed ? ", relaxed SIMD" : ""}`);
  if (!skipSpeed)
    updateBenchmarks(
      title,
      runtime === "Node"
        ? `npm run bench:quant${args ? " -- " + args : ""}`
        : `npm run bench:quant -- --runtime ${runtime.toLowerCase()} ${args}`.trim(),
      speedTable,
      `Random weights; wasm backend, one thread; one decode step with 128 positions in the KV cache, median of ${ROUNDS} ` +
        `rounds of ${STEPS} steps, the six models interleaved within each round; tok/s from wall-clock time and, in the last two ` +
        "columns, from this process's CPU time (what the step cost when it ran; on a quiet machine the two agree). 1-minute load average at the start: " +
        `${loadAtStart.toFixed(1)} — the machine was shared with other jobs, so absolute figures are low and noisy; the ratios, ` +
        "measured side by side, are the comparison. " +
        (relaxed
          ? `${runtime} runs the relaxed-SIMD build (int8 dot products).`
          : `${runtime} runs the baseline SIMD128 build (Node 20 has no usable relaxed SIMD).`),
    );
  if (pplTable) {
    updateBenchmarks(
      "Quantized weights: perplexity of the default model",
      `npm run bench:quant${args ? " -- " + args : ""}`,
      pplTable,
      "models/shakespeare-2m on the validation split of tiny Shakespeare (last 10%, from the first newline after the 90% mark), " +
        "tokenized with BOS, non-overlapping windows of 128 tokens (mobilellm ppl --seqlen 128).",
    );
  }
}
