// The one way to run a benchmark: `npm run bench:<name> [-- args]` calls `node bench/run.mjs <name> [args]`.
// It builds what the bench needs (the package and the WASM module; the TypeScript benches and
// bench/report.ts into bench/out/), then runs the bench from the repository root. Each bench
// prints its tables and records them in BENCHMARKS.md through bench/report.ts (updateBenchmarks),
// with the `npm run bench:<name>` command that produced them.
//
//   --runtime bun|deno   run a .mjs bench under Bun or Deno (from node_modules) instead of Node
import { execFileSync } from "node:child_process";
import { join } from "node:path";

/**
 * name -> how to run it: "compiled" benches run from bench/out (tsc -p bench/tsconfig.json) with
 * --no-liftoff (steady-state wasm code only); "loader" ones through scripts/ts-loader.mjs (they read
 * files next to their source); "js" ones as they are (they import the built dist/).
 */
export const BENCHES = {
  kernels: { file: "kernels.bench.ts", how: "compiled" },
  train: { file: "train.bench.ts", how: "compiled" },
  threads: { file: "threads.bench.ts", how: "compiled" },
  eval: { file: "eval.bench.ts", how: "compiled" },
  tokenizer: { file: "tokenizer.bench.ts", how: "loader" },
  "pytorch-read": { file: "pytorch-read.ts", how: "loader" },
  generate: { file: "generate.bench.mjs", how: "js" },
  quant: { file: "quant.bench.mjs", how: "js" },
  fuzz: { file: "fuzz.mjs", how: "js" },
  "load-memory": { file: "load-memory.mjs", how: "js" },
};

const [name, ...args] = process.argv.slice(2);
const bench = BENCHES[name];
if (!bench) {
  console.error(`usage: node bench/run.mjs <${Object.keys(BENCHES).join("|")}> [args]  (or npm run bench:<name> -- [args])`);
  process.exit(2);
}
let runtime = "node";
const at = args.indexOf("--runtime");
if (at >= 0) {
  runtime = args[at + 1];
  args.splice(at, 2);
  if (!["node", "bun", "deno"].includes(runtime) || (runtime !== "node" && bench.how !== "js")) {
    console.error(`--runtime ${runtime}: use node, or bun / deno for a .mjs bench`);
    process.exit(2);
  }
}

const run = (cmd, argv) => execFileSync(cmd, argv, { stdio: "inherit" });
const npm = process.platform === "win32" ? "npm.cmd" : "npm";
run(npm, ["run", "build", "--silent"]);
run(process.execPath, ["node_modules/typescript/bin/tsc", "-p", "bench/tsconfig.json"]); // bench/out, with report.js

const file = join("bench", bench.file);
try {
  if (bench.how === "compiled")
    run(process.execPath, ["--no-liftoff", join("bench", "out", "bench", bench.file.replace(/\.ts$/, ".js")), ...args]);
  else if (bench.how === "loader") run(process.execPath, ["--import", "./scripts/ts-loader.mjs", file, ...args]);
  else if (runtime === "bun") run(join("node_modules", ".bin", "bun"), [file, ...args]);
  else if (runtime === "deno") run(join("node_modules", ".bin", "deno"), ["run", "-A", file, ...args]);
  else run(process.execPath, [file, ...args]);
} catch (e) {
  process.exit(e.status ?? 1);
}
