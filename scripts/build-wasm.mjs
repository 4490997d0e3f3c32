// Builds assembly/ into build/kernels.wasm with the AssemblyScript compiler (options in asconfig.json).
// Skips the compile when the .wasm is newer than every source file, so `npm test` stays quick.
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";

const out = "build/kernels.wasm";
const sources = readdirSync("assembly").map((f) => join("assembly", f)).concat(["asconfig.json"]);
const newest = Math.max(...sources.map((f) => statSync(f).mtimeMs));
if (existsSync(out) && statSync(out).mtimeMs >= newest) process.exit(0);
execFileSync(process.execPath, ["node_modules/assemblyscript/bin/asc.js", "--config", "asconfig.json"], { stdio: "inherit" });
