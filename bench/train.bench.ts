// Training throughput: one optimizer step (forward, backward, gradient clipping, AdamW) on random
// tokens, per kernel backend, against the PyTorch figure of the issue for the same model and
// batch, plus a per-operation profile of one step (where the time goes).
//
// "nano" is the 1.71M-parameter config of issue 15 (D128 L8 H4 KV2 F344 V2048, shared
// embedding, sequences of 256, batch 16), which PyTorch 1.13 (CPU, OpenBLAS, fp32, AdamW) trains
// at 3,340 tokens/s on 1 thread and 5,339 on 2 on the bench machine (figures from the issue).
// Run: npm run bench:train     (prints the tables and writes the "Training throughput" section
// of BENCHMARKS.md)

import { arch, cpus, loadavg, platform } from "node:os";
import { markdownTable, writeBenchmarksSection } from "./report.js";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { createTsKernels } from "../src/kernels/ts/index.js";
import { createWasmKernels } from "../src/kernels/wasm/index.js";
import type { BackendName } from "../src/kernels/index.js";
import type { Kernels } from "../src/kernels/kernels.js";
import { parameterCount, type MobileLLMConfig } from "../src/model/config.js";
import { adamwStep, allocAdamW, clipGradNorm, decayGroups, ADAMW_DEFAULTS } from "../src/train/adamw.js";
import { initParams } from "../src/train/init.js";
import { trainBackward, trainForward, zeroGrads } from "../src/train/model.js";
import { Mulberry32 } from "../src/util/rng.js";
import { allocTrainState } from "../src/train/state.js";

const PYTORCH_1_THREAD = 3340, PYTORCH_2_THREADS = 5339;

function config(V: number, D: number, F: number, L: number, H: number, KV: number): MobileLLMConfig {
  return {
    vocabSize: V, hiddenSize: D, intermediateSize: F, numLayers: L, numHeads: H, numKvHeads: KV, headDim: D / H,
    maxPositions: 512, rmsNormEps: 1e-5, ropeTheta: 10000, shareEmbedding: true, layerSharing: false, bosTokenId: 1, eosTokenId: 2,
  };
}

const NANO = config(2048, 128, 344, 8, 4, 2);
const RUNS: { backend: BackendName; name: string; c: MobileLLMConfig; B: number; T: number; steps: number; pytorch?: boolean }[] = [
  { backend: "wasm", name: "nano (D128 L8 V2048)", c: NANO, B: 16, T: 256, steps: 3, pytorch: true },
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

const rows: Record<string, string>[] = [];
let profileRows: string[][] = [];
for (const run of RUNS) {
  const { backend, name, c, B, T } = run;
  // a fresh backend per run, on one thread (bench:threads compares thread counts; wasm memory is
  // reserved once per instance); bench/out/ is not where the
  // default module path points, so name the module: the shared-memory build
  const k = backend === "ts" ? createTsKernels()
    : await createWasmKernels({ threads: 1, wasmUrl: pathToFileURL(join(process.cwd(), "build/kernels-shared.wasm")) });
  const step = setup(k, c, B, T);
  const ignore = new Map<string, number>();
  step(ignore); // warm-up
  const t0 = performance.now();
  for (let i = 0; i < run.steps; i++) step(ignore);
  const ms = (performance.now() - t0) / run.steps;
  const params = parameterCount(c), tps = (B * T) / (ms / 1000);
  rows.push({
    backend, model: name, params: `${(params / 1e6).toFixed(2)}M`, "batch B×T": `${B}×${T}`, "ms/step": ms.toFixed(0),
    "tokens/s": tps.toFixed(0), "GFLOP/s (6·P·tok/s)": ((6 * params * tps) / 1e9).toFixed(2),
    "vs PyTorch 1 thread": run.pytorch ? `${(tps / PYTORCH_1_THREAD).toFixed(2)}×` : "",
  });
  console.log(rows.at(-1));
  if (run.pytorch) {
    // one more step through timed kernels: where the time goes
    const times = new Map<string, number>();
    const pstep = setup(profiled(k, times), c, B, T);
    const t = performance.now();
    pstep(times);
    const total = performance.now() - t;
    let listed = 0;
    profileRows = [...times.entries()].sort((a, b) => b[1] - a[1]).map(([op, v]) => {
      listed += v;
      return [op, v.toFixed(1), `${((100 * v) / total).toFixed(1)}%`];
    });
    profileRows.push(["other (JS glue, views, copies)", (total - listed).toFixed(1), `${((100 * (total - listed)) / total).toFixed(1)}%`]);
    profileRows.push(["total", total.toFixed(1), "100%"]);
  }
}
console.table(rows);
console.table(profileRows);

const load = loadavg()[0]!;
const heading = "## Training throughput";
const cols = Object.keys(rows[0] ?? {});
const section = [
  heading,
  "",
  "Command: `npm run bench:train`  ",
  `Machine: ${cpus()[0]?.model ?? "unknown CPU"}, ${cpus().length} cores, ${platform()}/${arch()}; ` +
    `1-minute load average ${load.toFixed(1)} while measuring; ${new Date().toISOString().slice(0, 10)}.`,
  ...(load > cpus().length * 0.75
    ? ["", `**Taken under load** (other jobs kept the ${cpus().length} cores busy): a lower bound; re-run on a quiet machine.`]
    : []),
  "",
  "One optimizer step (forward, backward, gradient clipping, AdamW) on random tokens; one thread.",
  "GFLOP/s is the usual 6 × parameters × tokens/s estimate (attention's T² work not counted).",
  `PyTorch reference (issue 15, same machine, same nano model and batch): PyTorch 1.13 CPU, OpenBLAS, fp32,`,
  `AdamW: ${PYTORCH_1_THREAD.toLocaleString("en")} tokens/s on 1 thread, ${PYTORCH_2_THREADS.toLocaleString("en")} on 2.`,
  "",
  markdownTable([cols, ...rows.map((r) => cols.map((col) => r[col]!))]),
  "",
  "Where the time of one nano step goes (wasm backend, each kernel call timed; matmul* are the",
  "forward and the two backward matmuls, attention* includes the T² score work):",
  "",
  markdownTable([["operation", "ms", "share"], ...profileRows]),
  "",
].join("\n");
writeBenchmarksSection(heading, section);
