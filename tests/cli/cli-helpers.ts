// Running a CLI command in-process the way src/cli/main.ts dispatches it: strict flag parsing, a
// UsageError becomes exit code 2 with the help hint, stdout/stderr captured as strings.
import { Writable } from "node:stream";
import { parseCommandArgs, UsageError } from "../../src/cli/command.js";
import { COMMANDS } from "../../src/cli/commands/index.js";

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** What main.ts does for one command, with captured streams. */
export async function cli(argv: string[], signal: AbortSignal = new AbortController().signal): Promise<Run> {
  const out: string[] = [],
    err: string[] = [];
  const sink = (into: string[]) =>
    new Writable({
      write(chunk, _enc, done) {
        into.push(String(chunk));
        done();
      },
    });
  const cmd = COMMANDS.find((c) => c.name === argv[0])!;
  let code: number;
  try {
    const { values, positionals } = parseCommandArgs(cmd, argv.slice(1));
    code = (await cmd.run(values, positionals, { stdout: sink(out), stderr: sink(err), signal })) ?? 0;
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    err.push(`mobilellm ${cmd.name}: ${e.message}\nRun \`mobilellm ${cmd.name} --help\` for usage.\n`);
    code = 2;
  }
  return { code, stdout: out.join(""), stderr: err.join("") };
}
