// Builds assembly/ into build/kernels.wasm with the AssemblyScript compiler (options in asconfig.json),
// plus build/kernels-shared.wasm: the same code importing a *shared* memory. Growing a shared
// memory does not detach existing views, so the wasm backend uses it wherever SharedArrayBuffer
// exists (Node, Deno, Bun, cross-origin-isolated pages) and falls back to kernels.wasm elsewhere.
// Skips the compile when the outputs are newer than every source file, so `npm test` stays quick.
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";

const asc = "node_modules/assemblyscript/bin/asc.js";
const sources = readdirSync("assembly")
  .map((f) => join("assembly", f))
  .concat(["asconfig.json", "scripts/build-wasm.mjs"]);
const newest = Math.max(...sources.map((f) => statSync(f).mtimeMs));
const fresh = (out) => existsSync(out) && statSync(out).mtimeMs >= newest;

if (!fresh("build/kernels.wasm")) {
  execFileSync(process.execPath, [asc, "--config", "asconfig.json"], { stdio: "inherit" });
}
if (!fresh("build/kernels-shared.wasm")) {
  execFileSync(
    process.execPath,
    [
      asc,
      "--config",
      "asconfig.json",
      "--sharedMemory",
      "--enable",
      "threads",
      "--outFile",
      "build/kernels-shared.wasm",
      "--textFile",
      "build/kernels-shared.wat",
    ],
    { stdio: "inherit" },
  );
}
// The relaxed-SIMD variants of both (assembly/quant.ts's int8 dots); the loader picks them where
// WebAssembly.validate accepts them (Deno, Bun, browsers; Node 20 with --experimental-wasm-relaxed-simd).
if (!fresh("build/kernels-relaxed.wasm")) {
  execFileSync(
    process.execPath,
    [
      asc,
      "--config",
      "asconfig.json",
      "--enable",
      "relaxed-simd",
      "--outFile",
      "build/kernels-relaxed.wasm",
      "--textFile",
      "build/kernels-relaxed.wat",
    ],
    { stdio: "inherit" },
  );
}
if (!fresh("build/kernels-relaxed-shared.wasm")) {
  execFileSync(
    process.execPath,
    [
      asc,
      "--config",
      "asconfig.json",
      "--sharedMemory",
      "--enable",
      "threads",
      "--enable",
      "relaxed-simd",
      "--outFile",
      "build/kernels-relaxed-shared.wasm",
      "--textFile",
      "build/kernels-relaxed-shared.wat",
    ],
    { stdio: "inherit" },
  );
}
