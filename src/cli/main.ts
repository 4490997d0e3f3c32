#!/usr/bin/env node
// mobilellm: the command-line interface. Each command lives in its own file under commands/.

import { readFileSync } from "node:fs";
import { closestName, commandHelp, parseCommandArgs, UsageError, type Command } from "./command.js";
import { COMMANDS } from "./commands/index.js";

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string };
  return pkg.version;
}

function mainHelp(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length)) + 2;
  return [
    "Usage: mobilellm <command> [options]",
    "",
    "MobileLLM (ICML 2024) in TypeScript with WebAssembly SIMD kernels.",
    "",
    "Commands:",
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}${c.summary}`),
    "",
    "Run `mobilellm <command> --help` for a command's options.",
    "",
  ].join("\n");
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    process.stdout.write(mainHelp());
    return name === undefined ? 2 : 0;
  }
  if (name === "--version" || name === "-v") {
    process.stdout.write(`${version()}\n`);
    return 0;
  }
  const cmd: Command | undefined = COMMANDS.find((c) => c.name === name);
  if (!cmd) {
    const guess = closestName(
      name,
      COMMANDS.map((c) => c.name),
    );
    process.stderr.write(`mobilellm: unknown command "${name}"${guess ? `; did you mean "${guess}"?` : ""}\n\n${mainHelp()}`);
    return 2;
  }
  const controller = new AbortController();
  // Ctrl-C (SIGINT) and SIGTERM abort the command's signal: long commands finish their current
  // unit of work (pretrain: the step, then a checkpoint) and return; exit code 128 + signal number.
  let exitOnAbort = 130;
  const onSignal = (name: NodeJS.Signals) => {
    const code = name === "SIGTERM" ? 143 : 130;
    if (controller.signal.aborted) process.exit(code); // second signal: stop now
    exitOnAbort = code;
    controller.abort(new Error(name === "SIGTERM" ? "terminated" : "interrupted"));
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  try {
    const { values, positionals } = parseCommandArgs(cmd, rest);
    if (values.help) {
      process.stdout.write(commandHelp(cmd));
      return 0;
    }
    const code = await cmd.run(values, positionals, { stdout: process.stdout, stderr: process.stderr, signal: controller.signal });
    return controller.signal.aborted ? exitOnAbort : (code ?? 0);
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`mobilellm ${cmd.name}: ${e.message}\nRun \`mobilellm ${cmd.name} --help\` for usage.\n`);
      return 2;
    }
    if (controller.signal.aborted) return exitOnAbort;
    process.stderr.write(`mobilellm ${cmd.name}: ${(e as Error).message}\n`);
    if (process.env.MOBILELLM_DEBUG) process.stderr.write(`${(e as Error).stack}\n`);
    return 1;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
