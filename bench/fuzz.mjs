// Mutation fuzz of every reader (bench/fuzz-cases.mjs) over many seeds: zero raw errors, zero
// hangs, bounded memory. Each (reader, seed) runs in its own child process that reports every
// case as it finishes; a case silent for HANG_MS is a hang (the child is killed and the run goes
// on after it). Memory: the child tracks, per case, the ArrayBuffer bytes, the wasm memory growth
// and the JS heap growth it allocated (measured before any GC frees them), and its peak RSS.
// Usage: npm run bench:fuzz -- [--seeds N] [--cases M] [--quick] [--json] [--no-report]
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadavg } from "node:os";

const HANG_MS = 30_000;

if (process.argv[2] === "--child") {
  const [, , , reader, seedText, startText, countText, work] = process.argv;
  const { caseBytes, runCase } = await import("./fuzz-cases.mjs");
  // Watch every wasm memory's growth: the arena's reservations are allocations RSS does not show
  // (untouched pages), and a failed load never hands its kernels back.
  let wasmGrown = 0;
  const grow = WebAssembly.Memory.prototype.grow;
  WebAssembly.Memory.prototype.grow = function (pages) {
    wasmGrown += pages * 65536;
    return grow.call(this, pages);
  };
  const seed = Number(seedText),
    start = Number(startText),
    count = Number(countText);
  for (let i = start; i < start + count; i++) {
    const bytes = caseBytes(reader, seed, i);
    globalThis.gc?.();
    const m0 = process.memoryUsage();
    wasmGrown = 0;
    const r = await runCase(reader, bytes, join(work, `${reader}-${seed}-${i}`), i % 2 ? "wasm" : "ts");
    const m1 = process.memoryUsage(); // no GC in between: what the case allocated is still counted (less what V8 collected meanwhile)
    const allocated = Math.max(0, m1.arrayBuffers - m0.arrayBuffers) + wasmGrown + Math.max(0, m1.heapUsed - m0.heapUsed);
    process.stdout.write(JSON.stringify({ i, size: bytes.length, allocated, ...r }) + "\n");
  }
  process.stdout.write(JSON.stringify({ done: true, maxRssKB: process.resourceUsage().maxRSS }) + "\n");
  process.exit(0);
}

const arg = (name, fallback) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};
const quick = process.argv.includes("--quick");
const seeds = arg("--seeds", quick ? 1 : 8);
const cases = arg("--cases", quick ? 60 : 400);
const READERS = ["safetensors", "pytorch", "gguf", "tokenizer", "config"];
const work = mkdtempSync(join(tmpdir(), "mobilellm-fuzz-"));

/** Run cases [start, start+count) of (reader, seed) in a child; restart after a hang. */
async function runSeed(reader, seed) {
  const s = {
    reader,
    seed,
    cases: 0,
    loaded: 0,
    refused: 0,
    raw: [],
    hangs: [],
    slowestMs: 0,
    maxAllocated: 0,
    maxAllocatedCase: -1,
    maxRssKB: 0,
  };
  let next = 0;
  while (next < cases) {
    const child = spawn(
      process.execPath,
      ["--expose-gc", "bench/fuzz.mjs", "--child", reader, String(seed), String(next), String(cases - next), work],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    let buf = "",
      stderr = "",
      timer;
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        s.hangs.push(next);
        child.kill("SIGKILL");
      }, HANG_MS);
    };
    arm();
    child.stderr.on("data", (b) => {
      stderr += String(b);
    });
    child.stdout.on("data", (b) => {
      buf += String(b);
      let nl;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const r = JSON.parse(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
        if (r.done) {
          s.maxRssKB = Math.max(s.maxRssKB, r.maxRssKB);
          continue;
        }
        arm();
        s.cases++;
        next = r.i + 1;
        if (r.outcome === "loaded") s.loaded++;
        else if (r.outcome === "refused") s.refused++;
        else s.raw.push(`case ${r.i}: ${r.message.slice(0, 300)}`);
        s.slowestMs = Math.max(s.slowestMs, r.ms);
        if (r.allocated > s.maxAllocated) {
          s.maxAllocated = r.allocated;
          s.maxAllocatedCase = r.i;
        }
      }
    });
    const code = await new Promise((res) => child.on("close", res));
    clearTimeout(timer);
    if (s.hangs.includes(next))
      next++; // skip the case that hung
    else if (code !== 0) {
      s.raw.push(`child exited with ${code} after case ${next - 1}: ${stderr.slice(-500)}`);
      next++;
    }
  }
  return s;
}

const t0 = performance.now();
const results = [];
// two children at a time (the machine has 2 cores)
const jobs = READERS.flatMap((r) => Array.from({ length: seeds }, (_, k) => [r, k + 1]));
await Promise.all(
  [0, 1].map(async () => {
    while (jobs.length) {
      const [r, seed] = jobs.shift();
      results.push(await runSeed(r, seed));
    }
  }),
);
rmSync(work, { recursive: true, force: true });
const seconds = (performance.now() - t0) / 1000;

const MB = (b) => (b / 2 ** 20).toFixed(1);
const rows = READERS.map((reader) => {
  const rs = results.filter((r) => r.reader === reader);
  const sum = (k) => rs.reduce((a, r) => a + (Array.isArray(r[k]) ? r[k].length : r[k]), 0);
  const max = (k) => Math.max(...rs.map((r) => r[k]));
  return {
    reader,
    cases: sum("cases"),
    loaded: sum("loaded"),
    refused: sum("refused"),
    raw: sum("raw"),
    hangs: sum("hangs"),
    slowestMs: max("slowestMs"),
    maxAllocatedMB: Number(MB(max("maxAllocated"))),
    peakRssMB: Number(MB(max("maxRssKB") * 1024)),
  };
});
const summary = {
  seeds,
  casesPerSeed: cases,
  seconds,
  rows,
  raw: results.flatMap((r) => r.raw.map((m) => `${r.reader} seed ${r.seed} ${m}`)),
  hangs: results.flatMap((r) => r.hangs.map((i) => `${r.reader} seed ${r.seed} case ${i}`)),
};
if (process.argv.includes("--json")) {
  process.stdout.write(JSON.stringify(summary) + "\n");
} else {
  const table = [
    "| reader | cases | loaded | refused (own error naming the file) | raw errors | hangs | slowest case ms | most allocated by one case MB | peak RSS of a child MB |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ...rows.map(
      (r) =>
        `| ${r.reader} | ${r.cases} | ${r.loaded} | ${r.refused} | ${r.raw} | ${r.hangs} | ${r.slowestMs.toFixed(0)} | ${r.maxAllocatedMB} | ${r.peakRssMB} |`,
    ),
  ].join("\n");
  console.log(table);
  for (const m of summary.raw) console.log("RAW  " + m);
  for (const m of summary.hangs) console.log("HANG " + m);
  console.log(`${seconds.toFixed(0)} s; load average ${loadavg()[0].toFixed(2)}`);
  if (!process.argv.includes("--no-report") && !quick) {
    const { updateBenchmarks } = await import("./out/bench/report.js");
    updateBenchmarks(
      "Reader fuzz",
      seeds === 8 && cases === 400 ? "npm run bench:fuzz" : `npm run bench:fuzz -- --seeds ${seeds} --cases ${cases}`,
      table,
      `Seeded mutations (bit flips, interesting integers, truncation, chunk moves; JSON field edits for safetensors headers and config.json) ` +
        `of the tiny-gqa fixtures and a 300-piece tokenizer, each run through open + read every tensor + loadModel + forward (ts and wasm backends alternating) ` +
        `or loadTokenizer + encode/decode, in child processes with a ${HANG_MS / 1000} s hang watchdog. "Most allocated" is the ArrayBuffer bytes plus wasm memory growth ` +
        `plus JS heap growth of the worst single case before it returned (no GC in between). ${seconds.toFixed(0)} s wall time, two children at a time, 1-minute load average ${loadavg()[0].toFixed(2)} ` +
        `(a shared, loaded machine).`,
    );
  }
}
process.exit(summary.raw.length || summary.hangs.length ? 1 : 0);
