// Kernel benchmark at MobileLLM-125M shapes (D=576, F=1536, V=32000, H=9, KV=3, Dh=64), single thread:
// TS reference vs WASM SIMD (f32 / f16 / bf16 weights) vs @tensorflow/tfjs-backend-wasm (XNNPACK,
// SIMD, 1 thread) as a peer, plus a streaming-read baseline (sumF32 over the same number of bytes)
// to express decode matvec speed as a fraction of achievable memory bandwidth.
//
// Run from the repository root:
//   npm run bench:kernels      (= npm run build:wasm && npx tsc -p bench/tsconfig.json && node bench/out/bench/kernels.bench.js)
//   add `-- --quick` for a shorter smoke run.
// (bench/tsconfig.json compiles bench/ and src/ to bench/out/, which is git-ignored.)
// Prints a table and rewrites the "## Kernels" section of BENCHMARKS.md (other sections are kept).

import { readFileSync, writeFileSync, existsSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { Bench } from "tinybench";
import * as tf from "@tensorflow/tfjs-core";
import { setThreadsCount, setWasmPaths } from "@tensorflow/tfjs-backend-wasm";
import { createWasmKernels } from "../src/kernels/wasm/index.js";
import { createTsKernels } from "../src/kernels/ts/index.js";
import { numberToBf16Bits, numberToF16Bits } from "../src/kernels/half.js";
import type { Weight } from "../src/kernels/kernels.js";
import { markdownTable, replaceSection } from "./report.js";

const D = 576, F = 1536, V = 32000, H = 9, KV = 3, Dh = 64;
const QUICK = process.argv.includes("--quick"); // shorter timing, for a smoke run

const root = process.cwd();
// (bench/out/ is not where the default module path points, so name the module: the shared-memory build)
const wasm = await createWasmKernels({ wasmUrl: pathToFileURL(path.join(root, "build/kernels-shared.wasm")) });
const ref = createTsKernels();

// tfjs-backend-wasm: the plain SIMD binary (no threads), loaded from node_modules by file path
tf.env().set("WASM_HAS_MULTITHREAD_SUPPORT", false);
setWasmPaths(path.join(root, "node_modules/@tensorflow/tfjs-backend-wasm/dist") + path.sep);
setThreadsCount(1);
await tf.setBackend("wasm");
await tf.ready();

// every buffer lives in wasm memory: reserve it all once (weights f32+f16+bf16 of the vocab matrix dominate)
wasm.reserve(420 << 20);

let seed = 12345;
function rand(): number { // xorshift: deterministic data
  seed ^= seed << 13; seed ^= seed >>> 17; seed ^= seed << 5;
  return (seed >>> 0) / 4294967296;
}
function fillNormalish(a: Float32Array, scale: number): Float32Array {
  for (let i = 0; i < a.length; i++) a[i] = (rand() + rand() + rand() - 1.5) * scale;
  return a;
}

interface MatShape { name: string; T: number; I: number; O: number }
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
  const f32 = wasm.allocF32(O * I); f32.set(host);
  const f16 = wasm.allocU16(O * I), bf16 = wasm.allocU16(O * I);
  for (let i = 0; i < host.length; i++) { f16[i] = numberToF16Bits(host[i]!); bf16[i] = numberToBf16Bits(host[i]!); }
  const w = (dtype: Weight["dtype"], data: Float32Array | Uint16Array): Weight => ({ dtype, shape: [O, I], data });
  return { host, f32: w("f32", f32), f16: w("f16", f16), bf16: w("bf16", bf16) };
}

const weights = new Map<string, ReturnType<typeof makeWeights>>();
function weightsFor(I: number, O: number) {
  const key = `${I}x${O}`;
  if (!weights.has(key)) weights.set(key, makeWeights(I, O));
  return weights.get(key)!;
}

interface Row { group: string; shape: string; impl: string; ms: number; gflops?: number; gbs?: number; note?: string }
const rows: Row[] = [];

async function time(fn: () => void, slow: boolean): Promise<number> {
  const bench = new Bench(slow
    ? { time: 0, iterations: QUICK ? 1 : 2, warmup: false }
    : { time: QUICK ? 100 : 500, iterations: 5, warmupTime: QUICK ? 20 : 100 });
  bench.add("task", fn);
  await bench.run();
  const r = bench.tasks[0]!.result as unknown as { latency: { min: number } };
  return r.latency.min; // ms: the fastest sample, since the machine may be shared with other work
}

// ---- matmul ------------------------------------------------------------------------------------------
for (const s of [...decodeShapes, ...prefillShapes]) {
  const { T, I, O } = s;
  const w = weightsFor(I, O);
  const xHost = fillNormalish(new Float32Array(T * I), 1);
  const x = wasm.allocF32(T * I); x.set(xHost);
  const y = wasm.allocF32(T * O);
  const yHost = new Float32Array(T * O);
  const flop = 2 * T * I * O;
  const group = T === 1 ? "decode matvec" : "prefill matmul";
  const add = (impl: string, ms: number, wBytes: number) =>
    rows.push({ group, shape: s.name, impl, ms, gflops: flop / ms / 1e6, gbs: T === 1 ? wBytes / ms / 1e6 : undefined });

  const tsSlow = flop > 1e9;
  add("TS reference (f32)", await time(() => ref.matmul(yHost, xHost, { dtype: "f32", shape: [O, I], data: w.host }, T, I, O), tsSlow || T > 1), O * I * 4);
  add("WASM f32", await time(() => wasm.matmul(y, x, w.f32, T, I, O), false), O * I * 4);
  add("WASM f16", await time(() => wasm.matmul(y, x, w.f16, T, I, O), false), O * I * 2);
  add("WASM bf16", await time(() => wasm.matmul(y, x, w.bf16, T, I, O), false), O * I * 2);

  // tfjs-backend-wasm: W as [I, O] (its fast fully-connected layout) and as [O, I] with transposeB
  const xt = tf.tensor2d(xHost, [T, I]);
  const wOI = tf.tensor2d(w.host, [O, I]);
  const wIO = tf.transpose(wOI);
  add("tfjs-wasm f32 (W [I,O])", await time(() => tf.matMul(xt, wIO).dispose(), false), O * I * 4);
  add("tfjs-wasm f32 (W [O,I], transposeB)", await time(() => tf.matMul(xt, wOI, false, true).dispose(), T > 1 || O > 10000), O * I * 4);
  xt.dispose(); wOI.dispose(); wIO.dispose();

  if (T === 1) {
    // streaming-read baseline over the same number of bytes (the f32 weights, or the first half of them)
    const n4 = O * I, n2 = (O * I) / 2;
    const buf = w.f32.data as Float32Array;
    rows.push({ group, shape: s.name, impl: "stream sumF32, f32 bytes", ms: 0, note: "baseline" });
    const r32 = rows[rows.length - 1]!;
    r32.ms = await time(() => wasm.sumF32(buf, n4), false);
    r32.gbs = (n4 * 4) / r32.ms / 1e6;
    const r16: Row = { group, shape: s.name, impl: "stream sumF32, f16 bytes", ms: await time(() => wasm.sumF32(buf, n2), false), note: "baseline" };
    r16.gbs = (n2 * 4) / r16.ms / 1e6;
    rows.push(r16);
  }
  console.log(`done: ${s.name}`);
}

// ---- attention (decode: one new query at the end of the context; prefill: 128 queries from 0) -------
for (const [ctx, T] of [[128, 1], [2048, 1], [128, 128]] as const) {
  const pos0 = ctx - T;
  const q = fillNormalish(wasm.allocF32(T * H * Dh), 1), out = wasm.allocF32(T * H * Dh);
  const k = fillNormalish(wasm.allocF32(ctx * KV * Dh), 1), v = fillNormalish(wasm.allocF32(ctx * KV * Dh), 1);
  const scores = wasm.allocF32(ctx);
  const qh = q.slice(), kh = k.slice(), vh = v.slice(), oh = new Float32Array(out.length), sh = new Float32Array(ctx);
  // q·k and weights·v over the visible positions: 2 · 2 · Dh flop per (query, head, position)
  let pairs = 0;
  for (let t = 0; t < T; t++) pairs += pos0 + t + 1;
  const flop = 4 * Dh * H * pairs;
  const name = `attention H=9 KV=3 Dh=64, ${T === 1 ? "decode" : `prefill T=${T}`}, context ${ctx}`;
  for (const [impl, fn] of [
    ["TS reference", () => ref.attention(oh, qh, kh, vh, T, pos0, H, KV, Dh, sh)],
    ["WASM", () => wasm.attention(out, q, k, v, T, pos0, H, KV, Dh, scores)],
  ] as const) {
    const ms = await time(fn, false);
    rows.push({ group: "attention", shape: name, impl, ms, gflops: flop / ms / 1e6 });
  }
  console.log(`done: ${name}`);
}

// ---- report ------------------------------------------------------------------------------------------
function find(shape: string, impl: string): Row | undefined {
  return rows.find((r) => r.shape === shape && r.impl === impl);
}

const table: string[][] = [["shape", "implementation", "time (ms)", "GFLOP/s", "weight GB/s", "vs"]];
for (const r of rows) {
  let vs = "";
  const wasmF32 = find(r.shape, "WASM f32");
  if (r.group === "decode matvec" && r.gbs !== undefined && r.note === undefined) {
    const base = find(r.shape, r.impl.includes("16") ? "stream sumF32, f16 bytes" : "stream sumF32, f32 bytes")!;
    vs = `${(r.gbs / base.gbs!).toFixed(2)}× stream BW`;
    if (r.impl === "WASM f16" || r.impl === "WASM bf16") vs += `, ${(wasmF32!.ms / r.ms).toFixed(2)}× f32 rows/s`;
  } else if (r.group === "prefill matmul" && r.impl.startsWith("WASM")) {
    const peer = find(r.shape, "tfjs-wasm f32 (W [I,O])")!;
    vs = `${(r.gflops! / peer.gflops!).toFixed(2)}× tfjs-wasm`;
  } else if (r.group === "attention" && r.impl === "WASM") {
    vs = `${(find(r.shape, "TS reference")!.ms / r.ms).toFixed(1)}× TS`;
  }
  table.push([r.shape, r.impl, r.ms.toFixed(3), r.gflops === undefined ? "" : r.gflops.toFixed(2),
    r.gbs === undefined ? "" : r.gbs.toFixed(1), vs]);
}

const md = markdownTable(table);
console.log(md);

const cpu = os.cpus()[0]?.model ?? "unknown CPU";
const section = [
  "## Kernels",
  "",
  `Measured by \`bench/kernels.bench.ts\` on ${new Date().toISOString().slice(0, 10)}: ${cpu}, ${os.cpus().length} cores, ` +
  `Node ${process.version}, single thread, fastest sample of each task (the machine may be shared). Run: \`npm run build:wasm && npx tsc -p bench/tsconfig.json && node bench/out/bench/kernels.bench.js\`.`,
  "",
  "MobileLLM-125M shapes. GFLOP/s counts 2·T·I·O per matmul. For decode (T=1) the weight GB/s is weight bytes / time, " +
  "compared with a streaming read (`sumF32`, SIMD sum) over the same number of bytes in the same run; " +
  "\"× f32 rows/s\" is the speed-up of 16-bit weights over f32 weights. Prefill is compared with " +
  "@tensorflow/tfjs-backend-wasm (XNNPACK, SIMD, 1 thread) given W as [I, O], its fast layout.",
  "",
  md,
  "",
].join("\n");
const file = path.join(root, "BENCHMARKS.md");
const before = existsSync(file) ? readFileSync(file, "utf8") : "# Benchmarks\n";
writeFileSync(file, replaceSection(before, "## Kernels", section));
console.log(`wrote the "## Kernels" section of ${file}`);
