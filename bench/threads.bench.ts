// Threads: the wasm kernels on 1 vs 2 threads (src/kernels/wasm/pool.ts), in one run:
//   * 125M-shape prefill of 128 tokens, f32 and f16 weights (random)
//   * 125M-shape decode step at KV 128, f16 and f32 weights
//   * pretraining tokens/s on bench/train.bench.ts's nano config and batch, 16×256 (one optimizer step)
//   * the pool's dispatch cost: an empty kernel through the pool
//   * where splitting starts to pay: decode matmuls of growing size, and the elementwise ops'
//     share of a prefill
// The 1- and 2-thread models live side by side and their runs are interleaved (1,2 then 2,1 ...),
// so a change in machine load hits both; each row gives the median and the min–max spread.
//
//   npm run bench:threads                 (prints the tables, writes the "Threads" section of BENCHMARKS.md)
//   npm run bench:threads -- --reps 9     (more repetitions; --no-write to only print)

import { arch, cpus, loadavg, platform } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { markdownTable, writeBenchmarksSection } from "./report.js";
import type { Weight } from "../src/kernels/kernels.js";
import {
  createWasmKernels as createKernelsAt,
  MIN_THREAD_WORK,
  type WasmKernelOptions,
  type WasmKernels,
} from "../src/kernels/wasm/index.js";
import { Mulberry32 } from "../src/util/rng.js";
import { PRESETS, type MobileLLMConfig } from "../src/model/config.js";
import { MobileLLM } from "../src/model/model.js";
import { randomWeights } from "../src/model/random-weights.js";
import { adamwStep, allocAdamW, clipGradNorm, decayGroups, ADAMW_DEFAULTS } from "../src/train/adamw.js";
import { initParams } from "../src/train/init.js";
import { trainBackward, trainForward, zeroGrads } from "../src/train/model.js";
import { allocTrainState } from "../src/train/state.js";

const argv = process.argv.slice(2);
const arg = (name: string, fallback: string) => (argv.includes(`--${name}`) ? argv[argv.indexOf(`--${name}`) + 1]! : fallback);
const REPS = Number(arg("reps", "5"));
const PROMPT = 128,
  DECODE_STEPS = 16;
const THREADS = [1, 2] as const;
const loadStart = loadavg()[0]!;
/** The compiled bench sits in bench/out/, away from build/: run from the repository root. */
const createWasmKernels = (o: WasmKernelOptions) =>
  createKernelsAt({ ...o, wasmUrl: pathToFileURL(join(process.cwd(), "build", "kernels-shared.wasm")) });

/** A measured quantity: samples per thread count, and the process's CPU time per wall time while measuring. */
interface Row {
  what: string;
  unit: string;
  samples: Map<number, number[]>;
  cpuPerWall: Map<number, number[]>;
  higherIsBetter: boolean;
}
const rows: Row[] = [];
function row(what: string, unit: string, higherIsBetter: boolean): Row {
  const r = {
    what,
    unit,
    samples: new Map<number, number[]>(THREADS.map((t) => [t, []])),
    cpuPerWall: new Map<number, number[]>(THREADS.map((t) => [t, []])),
    higherIsBetter,
  };
  rows.push(r);
  return r;
}
/** Run fn once with `threads`, recording `count` per second of wall time and the CPU it used per wall second. */
function timed(r: Row, threads: number, count: number, fn: () => void): void {
  const c0 = process.cpuUsage(),
    t0 = performance.now();
  fn();
  const wall = (performance.now() - t0) / 1000,
    cpu = process.cpuUsage(c0);
  r.samples.get(threads)!.push(count / wall);
  r.cpuPerWall.get(threads)!.push((cpu.user + cpu.system) / 1e6 / wall);
}
const median = (a: number[]) => [...a].sort((x, y) => x - y)[a.length >> 1]!;
const fmt = (x: number) => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));
/** Thread counts in alternating order per repetition: 1,2 then 2,1 ... */
const order = (rep: number) => (rep % 2 === 0 ? [...THREADS] : [...THREADS].reverse());
const log = (m: string) => process.stderr.write(m + "\n");

// ---- 125M-shape models with random weights ------------------------------------------------------

const config = PRESETS["125M"]!;

const promptIds = (() => {
  const g = new Mulberry32(2);
  return Array.from({ length: PROMPT }, (_, i) => (i === 0 ? 1 : 3 + Math.floor(g.next() * 31997)));
})();

for (const dtype of ["f32", "f16"] as const) {
  const models = new Map<number, MobileLLM>();
  for (const t of THREADS) {
    const k = await createWasmKernels({ threads: t });
    const t0 = performance.now();
    models.set(t, new MobileLLM(config, k, randomWeights(config, k, { dtype }), { maxPositions: PROMPT + DECODE_STEPS + 1 }));
    log(`${dtype}, ${t} thread(s): weights ready in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }
  const prefill = row(`125M prefill, 128 tokens, ${dtype} weights`, "tok/s", true);
  const decode = row(`125M decode step at KV ${PROMPT}, ${dtype} weights`, "tok/s", true);
  for (const m of models.values()) {
    m.reset();
    m.feed(promptIds);
    m.truncate(PROMPT);
    m.feed([42]);
  } // warm-up
  for (let rep = 0; rep < REPS; rep++) {
    for (const t of order(rep)) {
      const m = models.get(t)!;
      m.reset();
      timed(prefill, t, PROMPT, () => m.feed(promptIds));
      timed(decode, t, DECODE_STEPS, () => {
        for (let s = 0; s < DECODE_STEPS; s++) {
          m.truncate(PROMPT);
          m.feed([42]);
        }
      });
    }
    log(`${dtype}: repetition ${rep + 1}/${REPS}`);
  }
  for (const m of models.values()) await m.dispose();
}

// ---- pretraining: bench/train.bench.ts's nano config and batch (issue 15's 16×256) ----------------

{
  const c: MobileLLMConfig = {
    vocabSize: 2048,
    hiddenSize: 128,
    intermediateSize: 344,
    numLayers: 8,
    numHeads: 4,
    numKvHeads: 2,
    headDim: 32,
    maxPositions: 512,
    rmsNormEps: 1e-5,
    ropeTheta: 10000,
    shareEmbedding: true,
    layerSharing: false,
    bosTokenId: 1,
    eosTokenId: 2,
  };
  const B = 16,
    T = 256;
  const runs = new Map<number, () => void>();
  const kernels: WasmKernels[] = [];
  for (const t of THREADS) {
    const k = await createWasmKernels({ threads: t });
    kernels.push(k);
    const s = allocTrainState(k, c, B, T);
    const rng = new Mulberry32(1);
    initParams(s.params, rng);
    for (let i = 0; i < s.idsN.length; i++) s.idsN[i] = rng.nextUint32() % c.vocabSize;
    const opt = allocAdamW(s.params.layout.total, k); // on the wasm kernels, as pretrain does
    const groups = decayGroups(s.params.layout);
    runs.set(t, () => {
      zeroGrads(s);
      trainForward(s);
      trainBackward(s);
      clipGradNorm(s.params.gradFlat, 1);
      adamwStep(s.params.flat, s.params.gradFlat, opt, ADAMW_DEFAULTS, 1e-3, groups, k);
    });
  }
  const train = row(`pretraining, nano config (D128 L8 V2048), B×T ${B}×${T}`, "tokens/s", true);
  for (const run of runs.values()) run(); // warm-up
  for (let rep = 0; rep < REPS; rep++) {
    for (const t of order(rep)) {
      timed(train, t, B * T, runs.get(t)!);
    }
  }
  for (const k of kernels) await k.dispose();
  log("training: done");
}

// ---- dispatch cost and where splitting pays ---------------------------------------------------

const k1 = await createWasmKernels({ threads: 1 });
const k2 = await createWasmKernels({ threads: 2, minThreadWork: 0 });
/**
 * µs per call of fn: the median of 5 timings, each of up to n calls or 100 ms, whichever ends
 * first (on a loaded machine a sleeping worker can take a scheduler time slice to wake).
 */
function usPerCall(fn: () => void, n: number): number {
  for (let i = 0; i < Math.min(n, 100); i++) fn();
  const s: number[] = [];
  for (let r = 0; r < 5; r++) {
    const t0 = performance.now();
    let calls = 0;
    while (calls < n && (calls & 63 || performance.now() - t0 < 100)) {
      fn();
      calls++;
    }
    s.push(((performance.now() - t0) * 1000) / calls);
  }
  return median(s);
}
const empty = row("empty kernel through the pool (dispatch + barrier)", "µs", false);
for (let rep = 0; rep < REPS; rep++) {
  for (const t of order(rep)) {
    const k = t === 1 ? k1 : k2;
    empty.samples.get(t)!.push(usPerCall(() => k.parallel("debugEmptyRange", [], { units: 2, align: 1, work: 1 }), 20000));
  }
}

const splitRows: string[][] = [
  ["decode matmul 1×I·I×O (f32)", "multiply-adds", "1 thread (µs)", "2 threads, always split (µs)", "× 1 thread"],
];
for (const [I, O] of [
  [64, 64],
  [128, 128],
  [128, 256],
  [256, 256],
  [256, 512],
  [576, 576],
  [576, 1536],
] as const) {
  const t1: number[] = [],
    t2: number[] = [];
  const setup = (k: WasmKernels) => {
    const x = k.allocF32(I).fill(0.5),
      y = k.allocF32(O),
      w: Weight = { dtype: "f32", shape: [O, I], data: k.allocF32(O * I).fill(0.25) };
    return () => k.matmul(y, x, w, 1, I, O);
  };
  const f1 = setup(k1),
    f2 = setup(k2);
  for (let rep = 0; rep < REPS; rep++) {
    t1.push(usPerCall(f1, 2000));
    t2.push(usPerCall(f2, 2000));
  }
  splitRows.push([`1×${I}·${I}×${O}`, String(I * O), fmt(median(t1)), fmt(median(t2)), (median(t1) / median(t2)).toFixed(2) + "×"]);
}

// the elementwise ops of one 128-token prefill of the 125M shape, on one thread
const c125 = config,
  Tp = PROMPT,
  D = c125.hiddenSize,
  F = c125.intermediateSize,
  L2 = c125.numLayers;
const a = k1.allocF32(Tp * F).fill(0.5),
  b = k1.allocF32(Tp * F).fill(0.25),
  wD = k1.allocF32(D).fill(1);
const elementwise = [
  { op: `siluMul ${Tp}×${F}`, perPrefill: L2, us: usPerCall(() => k1.siluMul(a, a, b, Tp * F), 200) },
  { op: `add (residual) ${Tp}×${D}`, perPrefill: 2 * L2, us: usPerCall(() => k1.add(a, b, Tp * D), 500) },
  { op: `rmsnorm ${Tp}×${D}`, perPrefill: 2 * L2 + 1, us: usPerCall(() => k1.rmsnorm(a, b, wD, Tp, D, 1e-5), 500) },
];
await k1.dispose();
await k2.dispose();

// ---- report ---------------------------------------------------------------------------------------

const loadEnd = loadavg()[0]!;
const header = [
  "measurement",
  "unit",
  ...THREADS.map((t) => `${t} thread${t > 1 ? "s" : ""}: median (min–max)`),
  "2 threads ÷ 1 thread",
  "CPU s per wall s, 1 / 2 threads",
];
const table = [
  header,
  ...rows.map((r) => {
    const cells = THREADS.map((t) => {
      const s = r.samples.get(t)!;
      return `${fmt(median(s))} (${fmt(Math.min(...s))}–${fmt(Math.max(...s))})`;
    });
    const m1 = median(r.samples.get(1)!),
      m2 = median(r.samples.get(2)!);
    const ratio = r.higherIsBetter ? m2 / m1 : m1 / m2;
    const cpu = r.cpuPerWall.get(1)!.length ? THREADS.map((t) => median(r.cpuPerWall.get(t)!).toFixed(2)).join(" / ") : "";
    return [r.what, r.unit, ...cells, r.what.startsWith("empty") ? "" : `${ratio.toFixed(2)}×`, cpu];
  }),
];
const prefillMs = (1000 * PROMPT) / median(rows[0]!.samples.get(1)!);
const elementwiseTable = [
  ["op (125M prefill, 128 tokens, 1 thread)", "µs per call", "calls per prefill", "ms per prefill", "share of the f32 prefill"],
  ...elementwise.map((e) => [
    e.op,
    fmt(e.us),
    String(e.perPrefill),
    fmt((e.us * e.perPrefill) / 1000),
    `${((100 * e.us * e.perPrefill) / 1000 / prefillMs).toFixed(1)}%`,
  ]),
];

const ratio = (i: number) => median(rows[i]!.samples.get(2)!) / median(rows[i]!.samples.get(1)!);
const met = (ok: boolean) => (ok ? "met" : "NOT met");
const decodeF16 = median(rows[3]!.samples.get(2)!),
  emptyUs = median(rows[5]!.samples.get(2)!);
const targets = [
  `- 125M prefill, 128 tokens: 2 threads ${ratio(0).toFixed(2)}× 1 thread with f32 weights, ${ratio(2).toFixed(2)}× with f16 ` +
    `(target ≥ 1.8×: ${met(ratio(0) >= 1.8 && ratio(2) >= 1.8)})`,
  `- 125M decode at KV 128, f16 weights: 2 threads ${ratio(3).toFixed(2)}× 1 thread (target ≥ 1.5×: ${met(ratio(3) >= 1.5)}); ` +
    `${fmt(decodeF16)} tok/s on 2 threads against llama.cpp's 83.8 tok/s (f16, 2 threads, measured earlier on this machine): ${met(decodeF16 > 83.8)}`,
  `- pretraining tokens/s: 2 threads ${ratio(4).toFixed(2)}× 1 thread (target ≥ 1.7×: ${met(ratio(4) >= 1.7)})`,
  `- empty kernel through the pool: ${fmt(emptyUs)} µs (target ≤ 5 µs: ${met(emptyUs <= 5)})`,
];
// Whether the second thread had a core of its own: the 2-thread rows' CPU seconds per wall second
// (the load average counts this bench's own two threads, and the rows before it, so it cannot tell).
const twoThreadCpu = Math.min(...rows.filter((r) => r.cpuPerWall.get(2)!.length > 0).map((r) => median(r.cpuPerWall.get(2)!)));
const loaded = twoThreadCpu < 1.8;

console.log(markdownTable(table));
console.log();
console.log(targets.join("\n"));
console.log();
console.log(markdownTable(splitRows));
console.log();
console.log(markdownTable(elementwiseTable));

if (!argv.includes("--no-write")) {
  const heading = "## Threads";
  const section = [
    heading,
    "",
    `Command: \`npm run bench:threads${REPS === 5 ? "" : ` -- --reps ${REPS}`}\`  `,
    `Machine: ${cpus()[0]?.model ?? "unknown CPU"}, ${cpus().length} cores, ${platform()}/${arch()}, Node ${process.version}; ` +
      `measured ${new Date().toISOString().slice(0, 10)}. 1-minute load average ${loadStart.toFixed(1)} at the start, ` +
      `${loadEnd.toFixed(1)} at the end.`,
    "",
    "The wasm kernels on 1 and 2 threads (2: the calling thread plus one worker on the same shared memory). " +
      "Random weights; the 1- and 2-thread models are alive side by side and measured in alternation " +
      `(${REPS} repetitions), so load changes hit both columns; median and min–max over the repetitions. ` +
      `Prefill: one 128-token feed from position 0. Decode: ${DECODE_STEPS} steps at position 128 (the cache truncated back ` +
      "before each). Pretraining: one optimizer step (forward, backward, clipping, AdamW) of bench/train.bench.ts's nano config and batch (16×256). " +
      "Outputs are bit-identical for every thread count (tests/kernels/threads.test.ts).",
    "",
    ...(loaded
      ? [
          `**Measured on a shared, loaded machine** (on 2 threads the process got only ${twoThreadCpu.toFixed(2)} CPU seconds per wall second: ` +
            "other work held a core). A second thread then seldom finds an idle core, so the 2-thread columns and ratios understate " +
            "what threads give on an idle machine; re-run `npm run bench:threads` on a quiet one for the real figures. The last " +
            "column shows it: the process's CPU seconds per wall second stay near 1 on 2 threads when the second thread got no core of its own.",
          "",
        ]
      : []),
    markdownTable(table),
    "",
    "Targets, checked in this run:",
    "",
    ...targets,
    "",
    `Where splitting starts to pay (the default MIN_THREAD_WORK = ${MIN_THREAD_WORK} multiply-adds per thread in ` +
      "src/kernels/wasm/index.ts): a decode matmul split across 2 threads however small it is, against 1 thread.",
    "",
    markdownTable(splitRows),
    "",
    "The elementwise and row-wise ops on one thread, as a share of a prefill. siluMul, add and rmsnorm (and training's " +
      "rope, siluMulBackward, crossEntropy, adamw) are split by elements or rows once a call's work passes MIN_THREAD_WORK " +
      "per thread (src/kernels/wasm/index.ts); decode's calls are smaller and stay on the calling thread.",
    "",
    markdownTable(elementwiseTable),
    "",
  ].join("\n");
  const path = writeBenchmarksSection(heading, section);
  log(`wrote the "${heading.slice(3)}" section of ${path}`);
}
