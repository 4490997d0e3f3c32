// The shape of a CLI command, and parsing its flags with node:util parseArgs (strict: an unknown
// flag or a missing value is an error with a hint, never silently ignored).

import { parseArgs } from "node:util";

export interface OptionSpec {
  type: "string" | "boolean";
  short?: string;
  /** Shown in --help, e.g. "N" for `--max-new-tokens N`. */
  value?: string;
  description: string;
  default?: string | boolean;
  multiple?: boolean;
}

export interface CommandContext {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  /** Aborted on Ctrl-C: long commands stop promptly and clean up. */
  signal: AbortSignal;
}

export interface Command {
  name: string;
  summary: string;
  /** Usage line after `mobilellm <name>`. */
  usage: string;
  options: Record<string, OptionSpec>;
  /** Extra help text (examples, notes). */
  details?: string;
  run(values: Record<string, string | boolean | string[] | undefined>, positionals: string[], ctx: CommandContext): Promise<number | void>;
}

/** A usage error: printed with the command's help hint, exit code 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

export function parseCommandArgs(cmd: Command, argv: string[]) {
  const options: Record<string, { type: "string" | "boolean"; short?: string; multiple?: boolean }> = {
    help: { type: "boolean", short: "h" },
  };
  for (const [name, o] of Object.entries(cmd.options)) {
    options[name] = { type: o.type, ...(o.short ? { short: o.short } : {}), ...(o.multiple ? { multiple: true } : {}) };
  }
  try {
    const { values, positionals } = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
    for (const [name, o] of Object.entries(cmd.options)) {
      if (values[name] === undefined && o.default !== undefined) (values as Record<string, unknown>)[name] = o.default;
    }
    return { values: values as Record<string, string | boolean | string[] | undefined>, positionals };
  } catch (e) {
    throw new UsageError((e as Error).message.replace(/\. To specify a positional argument.*$/s, ""));
  }
}

export function commandHelp(cmd: Command): string {
  const rows = Object.entries(cmd.options).map(([name, o]) => {
    const flag = `${o.short ? `-${o.short}, ` : "    "}--${name}${o.value ? ` ${o.value}` : ""}`;
    const def = o.default !== undefined && o.default !== false ? ` (default: ${o.default})` : "";
    return [flag, o.description + def] as const;
  });
  rows.push(["-h, --help", "show this help"]);
  const width = Math.max(...rows.map(([f]) => f.length)) + 2;
  return [
    `Usage: mobilellm ${cmd.name} ${cmd.usage}`,
    "",
    cmd.summary,
    "",
    "Options:",
    ...rows.map(([f, d]) => `  ${f.padEnd(width)}${d}`),
    ...(cmd.details ? ["", cmd.details] : []),
    "",
  ].join("\n");
}

/** Parse a number flag, or throw a UsageError naming the flag. */
export function numberFlag(values: Record<string, unknown>, name: string, opts: { integer?: boolean; min?: number; max?: number } = {}): number | undefined {
  const raw = values[name];
  if (raw === undefined) return undefined;
  const n = Number(raw);
  const ok = typeof raw === "string" && raw.trim() !== "" && Number.isFinite(n) &&
             (!opts.integer || Number.isInteger(n)) && (opts.min === undefined || n >= opts.min) && (opts.max === undefined || n <= opts.max);
  if (!ok) {
    const range = [opts.min !== undefined ? `>= ${opts.min}` : "", opts.max !== undefined ? `<= ${opts.max}` : ""].filter(Boolean).join(" and ");
    throw new UsageError(`--${name} expects ${opts.integer ? "an integer" : "a number"}${range ? ` ${range}` : ""}, got ${JSON.stringify(raw)}`);
  }
  return n;
}

/** Parse a comma-separated list of token ids ("1,2,3"). */
export function idsFlag(raw: string, name = "ids"): number[] {
  const ids = raw.split(",").map((s) => s.trim()).filter((s) => s !== "").map(Number);
  if (ids.length === 0 || ids.some((n) => !Number.isInteger(n) || n < 0)) {
    throw new UsageError(`--${name} expects comma-separated non-negative integers like 1,450,4996, got ${JSON.stringify(raw)}`);
  }
  return ids;
}
