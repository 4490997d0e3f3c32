// Running the built CLI (dist/cli/main.js, made by `npm test`'s build step) as a child process,
// the way a user runs it: stdout and stderr are pipes, so nothing sees a terminal.
import { spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { TESTS_DIR } from "./helpers.js";

export const ROOT = join(TESTS_DIR, "..");
export const BIN = join(ROOT, "dist", "cli", "main.js");
export const HAS_BIN = existsSync(BIN);

export interface BinRun { code: number | null; stdout: string; stderr: string }

/** `mobilellm ...args`, synchronously. */
export function mobilellm(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string } = {}): BinRun {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    cwd: opts.cwd ?? ROOT, env: { ...process.env, ...opts.env }, encoding: "utf8", timeout: 110_000,
    ...(opts.input !== undefined ? { input: opts.input } : {}),
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** `mobilellm ...args` in the background, so a test can serve requests or send signals meanwhile. */
export function mobilellmAsync(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; onStderr?: (text: string) => void } = {}) {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: opts.cwd ?? ROOT, env: { ...process.env, ...opts.env } });
  let stdout = "", stderr = "";
  child.stdout.setEncoding("utf8").on("data", (d: string) => { stdout += d; });
  child.stderr.setEncoding("utf8").on("data", (d: string) => { stderr += d; opts.onStderr?.(d); });
  const done = new Promise<BinRun>((resolve) => child.on("close", (code) => resolve({ code, stdout, stderr })));
  return { child, done };
}
