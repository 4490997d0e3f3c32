// Running the built CLI (dist/cli/main.js, made by `npm test`'s build step) as a child process,
// the way a user runs it: stdout and stderr are pipes, so nothing sees a terminal.
import { spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { TESTS_DIR } from "../helpers.js";

export const ROOT = join(TESTS_DIR, "..");
export const BIN = join(ROOT, "dist", "cli", "main.js");
export const HAS_BIN = existsSync(BIN);

export interface BinRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `mobilellm ...args`, synchronously. */
export function mobilellm(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string } = {}): BinRun {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    cwd: opts.cwd ?? ROOT,
    env: { ...process.env, ...opts.env },
    encoding: "utf8",
    timeout: 110_000,
    ...(opts.input !== undefined ? { input: opts.input } : {}),
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/**
 * `mobilellm ...args` in the background, so a test can serve requests meanwhile; with
 * `interruptWhen`, one SIGINT (a user's Ctrl-C) is sent as soon as stderr matches it.
 */
export function mobilellmAsync(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; interruptWhen?: RegExp } = {}) {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: opts.cwd ?? ROOT, env: { ...process.env, ...opts.env } });
  let stdout = "",
    stderr = "",
    interrupted = false;
  child.stdout.setEncoding("utf8").on("data", (d: string) => {
    stdout += d;
  });
  child.stderr.setEncoding("utf8").on("data", (d: string) => {
    stderr += d;
    if (opts.interruptWhen && !interrupted && opts.interruptWhen.test(stderr)) {
      interrupted = true;
      child.kill("SIGINT");
    }
  });
  const done = new Promise<BinRun>((resolve) => child.on("close", (code) => resolve({ code, stdout, stderr })));
  return { child, done };
}
