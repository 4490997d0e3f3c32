// Training throughput: one optimizer step (forward, backward, gradient clipping, AdamW) on random
// tokens, per kernel backend, against PyTorch training the same model on the same machine in the
// same run, plus a per-operation profile of one step (where the time goes).
//
// "nano" is the 1.71M-parameter config of issue 15 (D128 L8 H4 KV2 F344 V2048, shared
// embedding, sequences of 256, batch 16). Its wasm runs on 1 and 2 threads are interleaved with
// PyTorch's (bench/pytorch-train.py, the same model written in PyTorch: fp32, AdamW) on 1 and 2
// threads, so machine load hits all of them alike; each row gives the median and the min–max.
// PyTorch runs with OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE removed from its environment (they may be
// set on this machine for the sake of old OpenBLAS builds, and slow a current one) and with
// Debian's OpenBLAS (libopenblas0-pthread) when installed; the table names the BLAS kernel it used.
// Without python3-torch the PyTorch rows are skipped with a message.
//
//   npm run bench:train              (prints the tables, writes the "Training throughput" section of BENCHMARKS.md)
//   npm run bench:train -- --reps 5  (more interleaved repetitions; --no-write to only print)
//   npm run bench:train -- --no-pytorch --no-write  (ours only: a quick look at 1 vs 2 threads)

import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { arch, cpus, loadavg, platform } from "node:os";
import { markdownTable, writeBenchmarksSection } from "./report.js";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { createTsKernels } from "../src/kernels/ts/index.js";
import { createWasmKernels, type WasmKernels } from "../src/kernels/wasm/index.js";
import type { BackendName } from "../src/kernels/index.js";
import type { Kernels } from "../src/kernels/kernels.js";
import { parameterCount, type MobileLLMConfig } from "../src/model/config.js";
import { adamwStep, allocAdamW, clipGradNorm, decayGroups, ADAMW_DEFAULTS } from "../src/train/adamw.js";
import { initParams } from "../src/train/init.js";
import { trainBackward, trainForward, zeroGrads } from "../src/train/model.js";
import { Mulberry32 } from "../src/util/rng.js";
import { allocTrainState } from "../src/train/state.js";

/** PyTorch's figures in issue 15 (measured on another machine): for reference only. */
const ISSUE_PYTORCH_1_THREAD = 3340,
  ISSUE_PYTORCH_2_THREADS = 5339;
const argv = process.argv.slice(2);
const REPS = argv.includes("--reps") ? Number(argv[argv.indexOf("--reps") + 1]) : 3;
const WRITE = !argv.includes("--no-write");
const NANO_B = 16,
  NANO_T = 256,
  NANO_STEPS = 2;
const loadStart = loadavg()[0]!;

function config(V: number, D: number, F: number, L: number, H: number, KV: number): MobileLLMConfig {
  return {
    vocabSize: V,
    hiddenSize: D,
    intermediateSize: F,
    numLayers: L,
    numHeads: H,
    numKvHeads: KV,
    headDim: D / H,
    maxPositions: 512,
    rmsNormEps: 1e-5,
    ropeTheta: 10000,
    shareEmbedding: true,
    layerSharing: false,
    bosTokenId: 1,
    eosTokenId: 2,
  };
}

const NANO = config(2048, 128, 344, 8, 4, 2);
const RUNS: { backend: BackendName; name: string; c: MobileLLMConfig; B: number; T: number; steps: number }[] = [
  { backend: "ts", name: "nano (D128 L8 V2048)", c: NANO, B: 2, T: 256, steps: 1 },
  { backend: "wasm", name: "tiny (D64 L4 V512)", c: config(512, 64, 172, 4, 8, 2), B: 4, T: 64, steps: 5 },
];

/** The backend's kernels with every call timed, accumulated per operation name. */
function profiled(k: Kernels, ms: Map<string, number>): Kernels {
  const wrapped = { ...k } as Record<string, unknown>;
  for (const [name, fn] of Object.entries(k)) {
    if (typeof fn !== "function" || name.startsWith("alloc") || name === "reserve") continue;
    wrapped[name] = (...args: unknown[]) => {
      const t = performance.now();
      const r = (fn as (...a: unknown[]) => unknown).apply(k, args);
      ms.set(name, (ms.get(name) ?? 0) + performance.now() - t);
      return r;
    };
  }
  return wrapped as unknown as Kernels;
}

function setup(k: Kernels, c: MobileLLMConfig, B: number, T: number) {
  const s = allocTrainState(k, c, B, T);
  const rng = new Mulberry32(1);
  initParams(s.params, rng);
  for (let i = 0; i < s.idsN.length; i++) s.idsN[i] = rng.nextUint32() % c.vocabSize;
  const opt = allocAdamW(s.params.layout.total, k);
  const groups = decayGroups(s.params.layout);
  const step = (other: Map<string, number>) => {
    zeroGrads(s);
    trainForward(s);
    trainBackward(s);
    const t = performance.now();
    clipGradNorm(s.params.gradFlat, 1);
    other.set("clipGradNorm (JS)", (other.get("clipGradNorm (JS)") ?? 0) + performance.now() - t);
    adamwStep(s.params.flat, s.params.gradFlat, opt, ADAMW_DEFAULTS, 1e-3, groups, k);
  };
  return step;
}

// ---- nano: ours on 1 and 2 threads, interleaved with PyTorch on 1 and 2 threads ----------------

/** Where Debian's OpenBLAS puts its BLAS (libopenblas0-pthread); PyTorch loads libblas.so.3 from there first. */
const OPENBLAS_DIR = "/usr/lib/x86_64-linux-gnu/openblas-pthread";
/** Debian's python3 (python3-torch is installed for it), else whichever python3 is first on PATH. */
const PYTHON = existsSync("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
/** null when PyTorch can run here, else why not. */
const pytorchMissing = (() => {
  if (argv.includes("--no-pytorch")) return "--no-pytorch";
  const r = spawnSync(PYTHON, ["-c", "import torch"], { encoding: "utf8" });
  return r.status === 0 ? null : (r.error?.message ?? r.stderr.trim().split("\n").at(-1) ?? "python3 -c 'import torch' failed");
})();
if (pytorchMissing && pytorchMissing !== "--no-pytorch")
  console.log(`PyTorch rows skipped: ${pytorchMissing} (install it: apt-get install -y python3-torch libopenblas0-pthread)`);
/**
 * PyTorch's variants: OpenBLAS's own choice of kernel, and where the CPU has AVX-512 and OpenBLAS
 * chose something else (an OpenBLAS older than the CPU falls back to a generic SSE3 kernel,
 * "Prescott"), its AVX-512 kernel forced with OPENBLAS_CORETYPE=SkylakeX: the peer issue 15 means.
 */
const avx512 = existsSync("/proc/cpuinfo") && / avx512f /.test(readFileSync("/proc/cpuinfo", "utf8"));
const pytorchBlas = new Map<string, string>();

/** One PyTorch run of NANO_STEPS timed steps in a child process (its own warm-up); tokens/s. */
function pytorchRun(threads: number, coretype?: string): number {
  const env: NodeJS.ProcessEnv = { ...process.env, OMP_NUM_THREADS: String(threads), OPENBLAS_NUM_THREADS: String(threads) };
  delete env.OPENBLAS_CORETYPE; // set on some machines for old OpenBLAS builds; they slow a current one
  delete env.OPENBLAS_L2_SIZE;
  if (coretype) env.OPENBLAS_CORETYPE = coretype;
  if (existsSync(OPENBLAS_DIR)) env.LD_LIBRARY_PATH = [OPENBLAS_DIR, env.LD_LIBRARY_PATH].filter(Boolean).join(":");
  const r = spawnSync(
    PYTHON,
    [
      join("bench", "pytorch-train.py"),
      JSON.stringify(NANO),
      "--threads",
      String(threads),
      "--batch",
      String(NANO_B),
      "--seq",
      String(NANO_T),
      "--steps",
      String(NANO_STEPS),
    ],
    { encoding: "utf8", env },
  );
  if (r.status !== 0) throw new Error(`bench/pytorch-train.py failed (exit ${r.status}):\n${r.stderr}`);
  const out = JSON.parse(r.stdout.trim().split("\n").at(-1)!) as { tokensPerSecond: number; blas: string };
  pytorchBlas.set(coretype ?? "auto", out.blas.replace(/ \(.*\)$/, ""));
  return out.tokensPerSecond;
}

const THREADS = [1, 2] as const;
const nanoSteps = new Map<number, (other: Map<string, number>) => void>();
const nanoKernels: WasmKernels[] = [];
for (const t of THREADS) {
  const k = await createWasmKernels({ threads: t, wasmUrl: pathToFileURL(join(process.cwd(), "build/kernels-shared.wasm")) });
  nanoKernels.push(k);
  const step = setup(k, NANO, NANO_B, NANO_T);
  step(new Map()); // warm-up
  nanoSteps.set(t, step);
}
/** Whether to add the forced AVX-512 PyTorch variant (decided by the first automatic run). */
const forceAvx512 = () => avx512 && !/SkylakeX|SapphireRapids|Cooperlake/.test(pytorchBlas.get("auto") ?? "");
const samples = new Map<string, number[]>();
const sample = (name: string, tps: number) => {
  samples.set(name, [...(samples.get(name) ?? []), tps]);
  console.log(`${name}: ${tps.toFixed(0)} tokens/s`);
};
for (let rep = 0; rep < REPS; rep++) {
  // 1,2 then 2,1 ...: each pair sees the same load on average
  for (const t of rep % 2 === 0 ? THREADS : [...THREADS].reverse()) {
    const t0 = performance.now();
    for (let i = 0; i < NANO_STEPS; i++) nanoSteps.get(t)!(new Map());
    sample(`wasm ${t}`, (NANO_STEPS * NANO_B * NANO_T) / ((performance.now() - t0) / 1000));
    if (!pytorchMissing) {
      sample(`pytorch ${t}`, pytorchRun(t));
      if (forceAvx512()) sample(`pytorch-avx512 ${t}`, pytorchRun(t, "SkylakeX"));
    }
  }
}
const median = (a: number[]) => [...a].sort((x, y) => x - y)[a.length >> 1]!;
const spread = (a: number[]) => `${Math.min(...a).toFixed(0)}–${Math.max(...a).toFixed(0)}`;
const nanoRows: string[][] = [["threads", "who", "tokens/s (median)", "min–max", "ours / this", "goal (vs PyTorch)"]];
for (const t of THREADS) {
  const ours = samples.get(`wasm ${t}`)!;
  nanoRows.push([String(t), "ours (wasm)", median(ours).toFixed(0), spread(ours), "", t === 1 ? "≥ 0.5×" : "≥ 0.6×"]);
  for (const [key, who] of [
    ["pytorch", "PyTorch, OpenBLAS kernel auto"],
    ["pytorch-avx512", "PyTorch, OpenBLAS SkylakeX (AVX-512) forced"],
  ]) {
    const torch = samples.get(`${key} ${t}`);
    if (!torch) continue;
    nanoRows.push([String(t), who!, median(torch).toFixed(0), spread(torch), `${(median(ours) / median(torch)).toFixed(2)}×`, ""]);
  }
}
const oursScaling = median(samples.get("wasm 2")!) / median(samples.get("wasm 1")!);
console.table(nanoRows);

// three more steps on each thread count through timed kernels: where the time goes. The fastest
// of the three is shown (one step is one sample: a slow moment of this shared machine would
// otherwise stretch every row of it).
const PROFILE_STEPS = 3;
const profiles = new Map<number, { rows: string[][]; total: number }>();
for (const [i, t] of THREADS.entries()) {
  const stepTimes = new Map<string, number>();
  const pstep = setup(profiled(nanoKernels[i]!, stepTimes), NANO, NANO_B, NANO_T);
  let times = new Map<string, number>(),
    total = Infinity;
  for (let r = 0; r < PROFILE_STEPS; r++) {
    stepTimes.clear();
    const t0 = performance.now();
    pstep(stepTimes);
    const stepTotal = performance.now() - t0;
    if (stepTotal < total) [times, total] = [new Map(stepTimes), stepTotal];
  }
  let listed = 0;
  const rows = [...times.entries()]
    .sort((a, b) => b[1] - a[1])
    .map(([op, v]) => {
      listed += v;
      return [op, v.toFixed(1), `${((100 * v) / total).toFixed(1)}%`];
    });
  rows.push(["other (JS glue, views, copies)", (total - listed).toFixed(1), `${((100 * (total - listed)) / total).toFixed(1)}%`]);
  rows.push(["total", total.toFixed(1), "100%"]);
  profiles.set(t, { rows, total });
}
for (const k of nanoKernels) await k.dispose();
// the two profiles side by side, in the 1-thread order
const p1 = profiles.get(1)!,
  p2 = profiles.get(2)!;
const p2ms = new Map(p2.rows.map((r) => [r[0]!, r]));
const profileRows = p1.rows.map((r) => [r[0]!, r[1]!, r[2]!, p2ms.get(r[0]!)?.[1] ?? "", p2ms.get(r[0]!)?.[2] ?? ""]);

// ---- the other backends and shapes, one thread -----------------------------------------------------

const rows: Record<string, string>[] = [];
for (const run of RUNS) {
  const { backend, name, c, B, T } = run;
  // a fresh backend per run, on one thread; bench/out/ is not where the default module path
  // points, so name the module: the shared-memory build
  const k =
    backend === "ts"
      ? createTsKernels()
      : await createWasmKernels({ threads: 1, wasmUrl: pathToFileURL(join(process.cwd(), "build/kernels-shared.wasm")) });
  const step = setup(k, c, B, T);
  const ignore = new Map<string, number>();
  step(ignore); // warm-up
  const t0 = performance.now();
  for (let i = 0; i < run.steps; i++) step(ignore);
  const ms = (performance.now() - t0) / run.steps;
  const params = parameterCount(c),
    tps = (B * T) / (ms / 1000);
  rows.push({
    backend,
    model: name,
    params: `${(params / 1e6).toFixed(2)}M`,
    "batch B×T": `${B}×${T}`,
    "ms/step": ms.toFixed(0),
    "tokens/s": tps.toFixed(0),
    "GFLOP/s (6·P·tok/s)": ((6 * params * tps) / 1e9).toFixed(2),
  });
  console.log(rows.at(-1));
}
console.table(rows);
console.table(profileRows);

const load = Math.max(loadStart, loadavg()[0]!);
const heading = "## Training throughput";
const cols = Object.keys(rows[0] ?? {});
const nanoParams = parameterCount(NANO);
const section = [
  heading,
  "",
  `Command: \`npm run bench:train\` (${REPS} interleaved repetitions)  `,
  `Machine: ${cpus()[0]?.model ?? "unknown CPU"}, ${cpus().length} cores, ${platform()}/${arch()}; ` +
    `1-minute load average ${loadStart.toFixed(1)} at the start of the run, ${loadavg()[0]!.toFixed(1)} at the end; ` +
    `${new Date().toISOString().slice(0, 10)}.`,
  // the load average counts this bench's own threads (and PyTorch's), so only more than the cores means other work
  ...(load > cpus().length
    ? [
        "",
        `**Taken under load** (load average above the ${cpus().length} cores: other work competed for them): a lower bound for both sides; re-run on a quiet machine.`,
      ]
    : []),
  "",
  `The nano config (D128 L8 H4 KV2 F344 V2048, ${(nanoParams / 1e6).toFixed(2)}M parameters, shared embedding), batch ` +
    `${NANO_B}×${NANO_T}: one optimizer step (forward, backward, gradient clipping, AdamW) on random tokens, ` +
    `${NANO_STEPS} steps per sample after a warm-up. Ours and PyTorch (bench/pytorch-train.py: the same model in ` +
    "PyTorch, fp32, AdamW) alternate within each repetition; median and min–max over the repetitions.",
  pytorchMissing
    ? `PyTorch: skipped (${pytorchMissing}).`
    : `PyTorch: ${spawnSync(PYTHON, ["-c", "import torch; print(torch.__version__)"], { encoding: "utf8" }).stdout.trim()}, ` +
      `BLAS: ${[...pytorchBlas.values()].join("; ")} (OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset for it, ` +
      "or OPENBLAS_CORETYPE=SkylakeX where OpenBLAS's own choice is not its AVX-512 kernel on an AVX-512 CPU).",
  `For comparison, issue 15's PyTorch figures from another machine: ${ISSUE_PYTORCH_1_THREAD.toLocaleString("en")} tokens/s on 1 thread, ` +
    `${ISSUE_PYTORCH_2_THREADS.toLocaleString("en")} on 2.`,
  "",
  markdownTable(nanoRows),
  "",
  `Ours, 2 threads / 1 thread: ${oursScaling.toFixed(2)}× (issue 12 asks ≥ 1.7×; bench:threads measures it on a smaller batch too).`,
  "",
  "Other backends and shapes, one thread (GFLOP/s is the usual 6 × parameters × tokens/s estimate; attention's T² work not counted):",
  "",
  markdownTable([cols, ...rows.map((r) => cols.map((col) => r[col]!))]),
  "",
  "Where the time of one nano step goes (wasm backend, each kernel call timed, the fastest of 3 profiled steps; matmul* are the",
  "forward and the two backward matmuls, attention* includes the T² score work):",
  "",
  markdownTable([["operation", "ms, 1 thread", "share", "ms, 2 threads", "share "], ...profileRows]),
  "",
].join("\n");
if (WRITE) writeBenchmarksSection(heading, section);
