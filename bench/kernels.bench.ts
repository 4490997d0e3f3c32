// Kernel benchmark at MobileLLM-125M shapes (D=576, F=1536, V=32000, H=9, KV=3, Dh=64), single thread:
// TS reference vs WASM SIMD (f32 / f16 / bf16 weights) vs @tensorflow/tfjs-backend-wasm (XNNPACK,
// SIMD, 1 thread) as a peer, plus streaming-read baselines (sumF32 over the same number of bytes)
// to express decode matvec speed as a fraction of achievable memory bandwidth.
//
// Run from the repository root:
//   npm run bench:kernels
//   (bench/run.mjs: builds, compiles bench/ to bench/out and runs node --no-liftoff bench/out/bench/kernels.bench.js;
//    --no-liftoff makes V8 compile all wasm, ours and tfjs's, with its optimizing tier up front, so no
//    measurement catches a function before its background tier-up, which a busy machine can delay)
//   add `-- --quick` for a shorter smoke run.
// (bench/tsconfig.json compiles bench/ and src/ to bench/out/, which is git-ignored.)
// Prints a table and rewrites the "## Kernels" section of BENCHMARKS.md (other sections are kept).

import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { Bench } from "tinybench";
import * as tf from "@tensorflow/tfjs-core";
import { setThreadsCount, setWasmPaths } from "@tensorflow/tfjs-backend-wasm";
import { createWasmKernels } from "../src/kernels/wasm/index.js";
import { wasmDebugHooks } from "../src/kernels/wasm/debug.js";
import { createTsKernels } from "../src/kernels/ts/index.js";
import { numberToBf16Bits, numberToF16Bits } from "../src/kernels/half.js";
import type { Weight } from "../src/kernels/kernels.js";
import { markdownTable, writeBenchmarksSection } from "./report.js";

const D = 576,
  F = 1536,
  V = 32000,
  H = 9,
  KV = 3,
  Dh = 64;
const QUICK = process.argv.includes("--quick"); // shorter timing, for a smoke run

const root = process.cwd();
const loadAtStart = os.loadavg()[0]!;
// (bench/out/ is not where the default module path points, so name the module: the shared-memory build)
const wasm = await createWasmKernels({ threads: 1, wasmUrl: pathToFileURL(path.join(root, "build/kernels-shared.wasm")) });
const hooks = wasmDebugHooks(wasm); // the streaming-read baselines (sumF32)
const ref = createTsKernels();

// tfjs-backend-wasm: the plain SIMD binary (no threads), loaded from node_modules by file path
tf.env().set("WASM_HAS_MULTITHREAD_SUPPORT", false);
setWasmPaths(path.join(root, "node_modules/@tensorflow/tfjs-backend-wasm/dist") + path.sep);
setThreadsCount(1);
await tf.setBackend("wasm");
await tf.ready();

// every buffer lives in wasm memory: reserve it all once (weights f32+f16+bf16 of the vocab matrix dominate)
wasm.reserve(800 << 20);

let seed = 12345;
function rand(): number {
  // xorshift: deterministic data
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return (seed >>> 0) / 4294967296;
}
function fillNormalish(a: Float32Array, scale: number): Float32Array {
  for (let i = 0; i < a.length; i++) a[i] = (rand() + rand() + rand() - 1.5) * scale;
  return a;
}

interface MatShape {
  name: string;
  T: number;
  I: number;
  O: number;
}
const decodeShapes: MatShape[] = [
  { name: "decode 1×576·576×1536 (gate/up)", T: 1, I: D, O: F },
  { name: "decode 1×1536·1536×576 (down)", T: 1, I: F, O: D },
  { name: "decode 1×576·576×32000 (lm head)", T: 1, I: D, O: V },
];
const prefillShapes: MatShape[] = [
  { name: "prefill 128×576·576×1536", T: 128, I: D, O: F },
  { name: "prefill 128×576·576×32000", T: 128, I: D, O: V },
];

/** The same weights as f32, f16 and bf16 in wasm memory, plus a host copy for the TS reference and tfjs. */
function makeWeights(I: number, O: number) {
  const host = fillNormalish(new Float32Array(O * I), 0.05);
  const f32 = wasm.allocF32(O * I);
  f32.set(host);
  const f16 = wasm.allocU16(O * I),
    bf16 = wasm.allocU16(O * I);
  for (let i = 0; i < host.length; i++) {
    f16[i] = numberToF16Bits(host[i]!);
    bf16[i] = numberToBf16Bits(host[i]!);
  }
  const w = (dtype: Weight["dtype"], data: Float32Array | Uint16Array): Weight => ({ dtype, shape: [O, I], data });
  return { host, f32: w("f32", f32), f16: w("f16", f16), bf16: w("bf16", bf16) };
}

const weights = new Map<string, ReturnType<typeof makeWeights>>();
function weightsFor(I: number, O: number) {
  const key = `${I}x${O}`;
  if (!weights.has(key)) weights.set(key, makeWeights(I, O));
  return weights.get(key)!;
}

/**
 * The streaming-read baselines for a matrix of n weights: a SIMD sum over as many bytes as the f32
 * weights (or the f16 ones) read as one sequential stream, and as four streams (one per quarter,
 * the way the decode matvec reads W). Kernels are compared with the faster of the two.
 */
function streamBaselines(n: number): [string, number, 1 | 4][] {
  return [
    ["stream sum, 1 stream, f32 bytes", n, 1],
    ["stream sum, 4 streams, f32 bytes", n, 4],
    ["stream sum, 1 stream, f16 bytes", n / 2, 1],
    ["stream sum, 4 streams, f16 bytes", n / 2, 4],
  ];
}
/** The faster streaming baseline for `shape` over f32 bytes or f16 bytes. */
function bestStream(shape: string, bytes: "f32" | "f16"): Row {
  const a = find(shape, `stream sum, 1 stream, ${bytes} bytes`)!,
    b = find(shape, `stream sum, 4 streams, ${bytes} bytes`)!;
  return a.gbs! >= b.gbs! ? a : b;
}

/** One measured line of the table; `ms` is filled in by the measuring rounds below. */
interface Row {
  group: string;
  shape: string;
  impl: string;
  ms: number;
  flop?: number;
  bytes?: number;
  baseline?: boolean;
  gflops?: number;
  gbs?: number;
  fn: () => void;
  slow: boolean;
}
const rows: Row[] = [];

/** Fastest sample of `fn` over a short tinybench run (slow tasks: a couple of iterations). */
async function time(fn: () => void, slow: boolean): Promise<number> {
  const bench = new Bench(
    slow ? { time: 0, iterations: QUICK ? 1 : 2, warmup: false } : { time: QUICK ? 60 : 150, iterations: 5, warmupTime: QUICK ? 10 : 30 },
  );
  bench.add("task", fn);
  await bench.run();
  const r = bench.tasks[0]!.result as unknown as { latency: { min: number } };
  return r.latency.min; // ms
}

// ---- matmul ------------------------------------------------------------------------------------------
for (const s of [...decodeShapes, ...prefillShapes]) {
  const { T, I, O } = s;
  const w = weightsFor(I, O);
  const xHost = fillNormalish(new Float32Array(T * I), 1);
  const x = wasm.allocF32(T * I);
  x.set(xHost);
  const y = wasm.allocF32(T * O);
  const yHost = new Float32Array(T * O);
  const flop = 2 * T * I * O;
  const group = T === 1 ? "decode matvec" : "prefill matmul";
  const add = (impl: string, fn: () => void, wBytes: number, slow = false) =>
    rows.push({ group, shape: s.name, impl, ms: Infinity, flop, bytes: T === 1 ? wBytes : undefined, fn, slow });

  add("TS reference (f32)", () => ref.matmul(yHost, xHost, { dtype: "f32", shape: [O, I], data: w.host }, T, I, O), O * I * 4, T > 1);
  add("WASM f32", () => wasm.matmul(y, x, w.f32, T, I, O), O * I * 4);
  add("WASM f16", () => wasm.matmul(y, x, w.f16, T, I, O), O * I * 2);
  add("WASM bf16", () => wasm.matmul(y, x, w.bf16, T, I, O), O * I * 2);

  // tfjs-backend-wasm: W as [I, O] (its fast fully-connected layout) and as [O, I] with transposeB
  const xt = tf.tensor2d(xHost, [T, I]);
  const wOI = tf.tensor2d(w.host, [O, I]);
  const wIO = tf.transpose(wOI);
  add("tfjs-wasm f32 (W [I,O])", () => tf.matMul(xt, wIO).dispose(), O * I * 4);
  add("tfjs-wasm f32 (W [O,I], transposeB)", () => tf.matMul(xt, wOI, false, true).dispose(), O * I * 4, T > 1 || O > 10000);

  if (T === 1) {
    // streaming-read baselines over the same number of bytes (the f32 weights, or the first half of them)
    const buf = w.f32.data as Float32Array;
    for (const [impl, n, streams] of streamBaselines(O * I)) {
      rows.push({
        group,
        shape: s.name,
        impl,
        ms: Infinity,
        bytes: n * 4,
        baseline: true,
        fn: () => hooks.sumF32(buf, n, streams),
        slow: false,
      });
    }
  }
}

// ---- decode from memory: a real decode step walks all L layers, so every matrix comes from DRAM, not
// cache. Here each call uses the next of COPIES copies of the matrix (together larger than the 32 MiB L3),
// and the streaming baseline reads the next copy's bytes the same way.
const COPIES = 24;
const coldShapes: MatShape[] = [
  { name: `decode 1×576·576×1536 (gate/up), ${COPIES} layer copies from memory`, T: 1, I: D, O: F },
  { name: `decode 1×1536·1536×576 (down), ${COPIES} layer copies from memory`, T: 1, I: F, O: D },
];
for (const s of coldShapes) {
  const { I, O } = s;
  const group = "decode matvec";
  const x = fillNormalish(wasm.allocF32(I), 1),
    y = wasm.allocF32(O);
  const host = fillNormalish(new Float32Array(O * I), 0.05);
  const copies = { f32: [] as Weight[], f16: [] as Weight[], bf16: [] as Weight[] };
  for (let c = 0; c < COPIES; c++) {
    const f32 = wasm.allocF32(O * I),
      f16 = wasm.allocU16(O * I),
      bf16 = wasm.allocU16(O * I);
    f32.set(host);
    for (let i = 0; i < host.length; i++) {
      f16[i] = numberToF16Bits(host[i]!);
      bf16[i] = numberToBf16Bits(host[i]!);
    }
    copies.f32.push({ dtype: "f32", shape: [O, I], data: f32 });
    copies.f16.push({ dtype: "f16", shape: [O, I], data: f16 });
    copies.bf16.push({ dtype: "bf16", shape: [O, I], data: bf16 });
  }
  const flop = 2 * I * O;
  for (const dtype of ["f32", "f16", "bf16"] as const) {
    let c = 0;
    rows.push({
      group,
      shape: s.name,
      impl: `WASM ${dtype}`,
      ms: Infinity,
      flop,
      bytes: O * I * (dtype === "f32" ? 4 : 2),
      slow: false,
      fn: () => {
        wasm.matmul(y, x, copies[dtype][c]!, 1, I, O);
        c = (c + 1) % COPIES;
      },
    });
  }
  for (const [impl, n, streams] of streamBaselines(O * I)) {
    let c = 0;
    rows.push({
      group,
      shape: s.name,
      impl,
      ms: Infinity,
      bytes: n * 4,
      baseline: true,
      slow: false,
      fn: () => {
        hooks.sumF32(copies.f32[c]!.data as Float32Array, n, streams);
        c = (c + 1) % COPIES;
      },
    });
  }
}

// ---- attention (decode: one new query at the end of the context; prefill: 128 queries from 0) -------
for (const [ctx, T] of [
  [128, 1],
  [2048, 1],
  [128, 128],
] as const) {
  const pos0 = ctx - T;
  const q = fillNormalish(wasm.allocF32(T * H * Dh), 1),
    out = wasm.allocF32(T * H * Dh);
  const k = fillNormalish(wasm.allocF32(ctx * KV * Dh), 1),
    v = fillNormalish(wasm.allocF32(ctx * KV * Dh), 1);
  const scores = wasm.allocF32(ctx);
  const qh = q.slice(),
    kh = k.slice(),
    vh = v.slice(),
    oh = new Float32Array(out.length),
    sh = new Float32Array(ctx);
  // q·k and weights·v over the visible positions: 2 · 2 · Dh flop per (query, head, position)
  let pairs = 0;
  for (let t = 0; t < T; t++) pairs += pos0 + t + 1;
  const flop = 4 * Dh * H * pairs;
  const shape = `attention H=9 KV=3 Dh=64, ${T === 1 ? "decode" : `prefill T=${T}`}, context ${ctx}`;
  rows.push({
    group: "attention",
    shape,
    impl: "TS reference",
    ms: Infinity,
    flop,
    slow: false,
    fn: () => ref.attention(oh, qh, kh, vh, T, pos0, H, KV, Dh, sh),
  });
  rows.push({
    group: "attention",
    shape,
    impl: "WASM",
    ms: Infinity,
    flop,
    slow: false,
    fn: () => wasm.attention(out, q, k, v, T, pos0, H, KV, Dh, scores),
  });
}

// ---- training attention, forward and backward (issue 15): causal, from position 0, at the nano
// training shape (T=256, H=4, KV=2, Dh=32) and the 125M shape's 128-token prefill. The backward's
// flop: q·k, dout·v, dq, dk, dv: 5 · 2 · Dh per (query, head, visible position).
for (const [Tn, Hn, KVn, Dhn] of [
  [256, 4, 2, 32],
  [128, H, KV, Dh],
] as const) {
  const nq = Tn * Hn * Dhn,
    nk = Tn * KVn * Dhn;
  const w = {
    q: fillNormalish(wasm.allocF32(nq), 1),
    k: fillNormalish(wasm.allocF32(nk), 1),
    v: fillNormalish(wasm.allocF32(nk), 1),
    dout: fillNormalish(wasm.allocF32(nq), 1),
    out: wasm.allocF32(nq),
    dq: wasm.allocF32(nq),
    dk: wasm.allocF32(nk),
    dv: wasm.allocF32(nk),
    scratch: wasm.allocF32(2 * Tn),
  };
  const h = Object.fromEntries(Object.entries(w).map(([name, a]) => [name, a.slice()])) as typeof w;
  const pairs = (Tn * (Tn + 1)) / 2;
  const base = `attention H=${Hn} KV=${KVn} Dh=${Dhn}, training T=${Tn}`;
  for (const [what, flop, tsFn, wasmFn] of [
    [
      "forward",
      4 * Dhn * Hn * pairs,
      () => ref.attention(h.out, h.q, h.k, h.v, Tn, 0, Hn, KVn, Dhn, h.scratch),
      () => wasm.attention(w.out, w.q, w.k, w.v, Tn, 0, Hn, KVn, Dhn, w.scratch),
    ],
    [
      "backward",
      10 * Dhn * Hn * pairs,
      () => ref.attentionBackward(h.dq, h.dk, h.dv, h.dout, h.q, h.k, h.v, Tn, Hn, KVn, Dhn, h.scratch),
      () => wasm.attentionBackward(w.dq, w.dk, w.dv, w.dout, w.q, w.k, w.v, Tn, Hn, KVn, Dhn, w.scratch),
    ],
  ] as const) {
    if (what === "forward" && Tn === 128) continue; // the prefill T=128 row above
    const shape = `${base}, ${what}`;
    rows.push({ group: "attention", shape, impl: "TS reference", ms: Infinity, flop, slow: true, fn: tsFn });
    rows.push({ group: "attention", shape, impl: "WASM", ms: Infinity, flop, slow: false, fn: wasmFn });
  }
}

// ---- measure: several rounds over all tasks, keeping each task's fastest sample ----------------------
// (other processes on a shared machine slow down whole stretches of time; interleaving the tasks
// and keeping the best of several rounds keeps the comparisons within a row group fair)
const ROUNDS = QUICK ? 1 : 5;
for (let round = 1; round <= ROUNDS; round++) {
  for (const r of rows) {
    if (r.slow && round > 1) continue; // the slow TS / transposeB runs: one round is enough
    r.ms = Math.min(r.ms, await time(r.fn, r.slow));
  }
  console.log(`round ${round}/${ROUNDS} done`);
}
for (const r of rows) {
  if (r.flop !== undefined) r.gflops = r.flop / r.ms / 1e6;
  if (r.bytes !== undefined) r.gbs = r.bytes / r.ms / 1e6;
}

// ---- report ------------------------------------------------------------------------------------------
function find(shape: string, impl: string): Row | undefined {
  return rows.find((r) => r.shape === shape && r.impl === impl);
}

const table: string[][] = [["shape", "implementation", "time (ms)", "GFLOP/s", "weight GB/s", "vs"]];
for (const r of rows) {
  let vs = "";
  const wasmF32 = find(r.shape, "WASM f32");
  if (r.group === "decode matvec" && r.gbs !== undefined && !r.baseline) {
    const base = bestStream(r.shape, r.impl.includes("16") ? "f16" : "f32");
    vs = `${(r.gbs / base.gbs!).toFixed(2)}× stream BW`;
    if (r.impl === "WASM f16" || r.impl === "WASM bf16") vs += `, ${(wasmF32!.ms / r.ms).toFixed(2)}× f32 rows/s`;
  } else if (r.group === "prefill matmul" && r.impl.startsWith("WASM")) {
    const peer = find(r.shape, "tfjs-wasm f32 (W [I,O])")!;
    vs = `${(r.gflops! / peer.gflops!).toFixed(2)}× tfjs-wasm`;
  } else if (r.group === "attention" && r.impl === "WASM") {
    vs = `${(find(r.shape, "TS reference")!.ms / r.ms).toFixed(1)}× TS`;
  }
  table.push([
    r.shape,
    r.impl,
    r.ms.toFixed(3),
    r.gflops === undefined ? "" : r.gflops.toFixed(2),
    r.gbs === undefined ? "" : r.gbs.toFixed(1),
    vs,
  ]);
}

const md = markdownTable(table);
console.log(md);

// the targets set for this backend (issue 8), checked against this run
const bars: string[] = [];
const verdict = (ok: boolean) => (ok ? "met" : "NOT met");
for (const s of [...decodeShapes, ...coldShapes]) {
  const f32 = find(s.name, "WASM f32")!,
    f16 = find(s.name, "WASM f16")!;
  const stream = bestStream(s.name, "f32");
  const bw = f32.gbs! / stream.gbs!,
    rows = f32.ms / f16.ms;
  bars.push(
    `- ${s.name}: f32 bandwidth ${bw.toFixed(2)}× streaming (target ≥ 0.8: ${verdict(bw >= 0.8)}); ` +
      `f16 rows/s ${rows.toFixed(2)}× f32 (target ≥ 1.6: ${verdict(rows >= 1.6)})`,
  );
}
for (const s of prefillShapes) {
  const peer = find(s.name, "tfjs-wasm f32 (W [I,O])")!;
  const r = (impl: string) => (find(s.name, impl)!.gflops! / peer.gflops!).toFixed(2);
  const f32 = find(s.name, "WASM f32")!.gflops! / peer.gflops!;
  bars.push(
    `- ${s.name}: WASM f32 ${r("WASM f32")}×, f16 ${r("WASM f16")}×, bf16 ${r("WASM bf16")}× tfjs-backend-wasm GFLOP/s ` +
      `(target ≥ 1.0 for f32: ${verdict(f32 >= 1)})`,
  );
}
console.log(bars.join("\n"));

const cpu = os.cpus()[0]?.model ?? "unknown CPU";
const section = [
  "## Kernels",
  "",
  `Measured by \`bench/kernels.bench.ts\` on ${new Date().toISOString().slice(0, 10)}: ${cpu}, ${os.cpus().length} cores, ` +
    `Node ${process.version}, single thread, fastest sample of each task (1-minute load average at the start: ` +
    `${loadAtStart.toFixed(1)}; other work on the machine makes these numbers noisy). Run: \`npm run bench:kernels\`.`,
  "",
  "Node runs with --no-liftoff (all wasm optimized up front). MobileLLM-125M shapes. GFLOP/s counts 2·T·I·O per matmul. For decode (T=1) the weight GB/s is weight bytes / time, " +
    "compared with the faster of two streaming reads (`sumF32`, a SIMD sum) over the same number of bytes in the same run: " +
    "one sequential stream, and four streams (one per quarter of the buffer, the way the decode kernel reads W; " +
    "several streams keep more DRAM requests in flight). " +
    '"× f32 rows/s" is the speed-up of 16-bit weights over f32 weights. Prefill is compared with ' +
    "@tensorflow/tfjs-backend-wasm (XNNPACK, SIMD, 1 thread) given W as [I, O], its fast layout. " +
    `The "${COPIES} layer copies from memory" rows cycle through ${COPIES} copies of the matrix (more than the L3 cache), ` +
    "as a real decode step does walking the layer stack: there the weights come from DRAM; the single-matrix rows " +
    "above stay in cache. bf16 widens with one integer op per four weights and gains from its halved bytes. f16 needs " +
    "two per four (assembly/half.ts) on top of the multiply and the add (SIMD128 has no FMA and no half-precision " +
    "conversion), eight vector ops per eight weights, so its kernel is compute-bound at the same speed in cache and " +
    "from memory: it cannot go faster than four such ops per cycle (two cycles per eight weights; this CPU has four " +
    "vector pipes), while the f32 kernel streams eight weights from DRAM in about three cycles, so f16 can at best " +
    "reach about 1.5× f32 rows/s here, and in practice runs near 1×. f16 halves resident memory (what lets the 1B and " +
    "1.5B models fit in 32-bit wasm); in a whole decode step it is still faster than f32 (see Generation above), " +
    "where the f32 weights stream less efficiently than in this bench.",
  "",
  md,
  "",
  "Targets, checked in this run:",
  "",
  ...bars,
  "",
].join("\n");
const file = writeBenchmarksSection("## Kernels", section);
console.log(`wrote the "## Kernels" section of ${file}`);
