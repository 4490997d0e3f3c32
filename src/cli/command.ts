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

/** A negative number such as -1 or -0.5: the value of the option before it, never a flag. */
const NEGATIVE_NUMBER = /^-(\d|\.\d)/;

/**
 * `--seed -1` is the value -1 for --seed, as a user means it (node's parseArgs calls it ambiguous):
 * join a negative number to the string option before it as `--seed=-1`.
 */
function joinNegativeValues(cmd: Command, argv: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!,
      next = argv[i + 1];
    if (a === "--") {
      out.push(...argv.slice(i));
      break;
    }
    const name = a.startsWith("--") ? a.slice(2) : Object.entries(cmd.options).find(([, o]) => o.short && `-${o.short}` === a)?.[0];
    if (name !== undefined && cmd.options[name]?.type === "string" && next !== undefined && NEGATIVE_NUMBER.test(next)) {
      out.push(`--${name}=${next}`);
      i++;
    } else {
      out.push(a);
    }
  }
  return out;
}

/** Edit distance (insertions, deletions, substitutions, adjacent swaps) between two short names. */
function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i]![j] = Math.min(d[i]![j]!, d[i - 2]![j - 2]! + 1);
    }
  }
  return d[a.length]![b.length]!;
}

/** The closest of `names` to a misspelt `name` (a prefix, or within a third of its length), if any. */
export function closestName(name: string, names: readonly string[]): string | undefined {
  const prefixed = names.filter((n) => name.length >= 2 && n.startsWith(name));
  if (prefixed.length === 1) return prefixed[0];
  let best: string | undefined,
    bestD = Infinity;
  for (const n of names) {
    const d = editDistance(name, n);
    if (d < bestD) [best, bestD] = [n, d];
  }
  return bestD <= Math.max(1, Math.floor(Math.max(name.length, 3) / 3)) ? best : undefined;
}

export function parseCommandArgs(cmd: Command, argv: string[]) {
  const options: Record<string, { type: "string" | "boolean"; short?: string; multiple?: boolean }> = {
    help: { type: "boolean", short: "h" },
  };
  for (const [name, o] of Object.entries(cmd.options)) {
    options[name] = { type: o.type, ...(o.short ? { short: o.short } : {}), ...(o.multiple ? { multiple: true } : {}) };
  }
  try {
    const { values, positionals } = parseArgs({ args: joinNegativeValues(cmd, argv), options, allowPositionals: true, strict: true });
    for (const [name, o] of Object.entries(cmd.options)) {
      if (values[name] === undefined && o.default !== undefined) (values as Record<string, unknown>)[name] = o.default;
    }
    return { values: values as Record<string, string | boolean | string[] | undefined>, positionals };
  } catch (e) {
    const message = (e as Error).message;
    const unknown = /^Unknown option '(-{1,2})([^'=]+)/.exec(message);
    if (unknown) {
      const guess = unknown[1] === "--" ? closestName(unknown[2]!, Object.keys(options)) : undefined;
      throw new UsageError(`Unknown option '${unknown[1]}${unknown[2]}'${guess ? `; did you mean --${guess}?` : ""}`);
    }
    throw new UsageError(message.replace(/\. To specify a positional argument.*$/s, ""));
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

/** Decimal numbers as people write them: 12, -3, 0.5, .5, 5e-4 (no hex, binary, Infinity or spaces). */
const DECIMAL = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;
/** Integers: decimal digits only, so "0x10" and "1e2" are refused rather than read as 16 and 100. */
const DECIMAL_INTEGER = /^[+-]?\d+$/;

/** Parse a number flag, or throw a UsageError naming the flag. */
export function numberFlag(
  values: Record<string, unknown>,
  name: string,
  opts: { integer?: boolean; min?: number; max?: number; hint?: string } = {},
): number | undefined {
  const raw = values[name];
  if (raw === undefined) return undefined;
  const n = Number(raw);
  const ok =
    typeof raw === "string" &&
    (opts.integer ? DECIMAL_INTEGER : DECIMAL).test(raw) &&
    Number.isFinite(n) &&
    (!opts.integer || Number.isInteger(n)) &&
    (opts.min === undefined || n >= opts.min) &&
    (opts.max === undefined || n <= opts.max);
  if (!ok) {
    const range = [opts.min !== undefined ? `>= ${opts.min}` : "", opts.max !== undefined ? `<= ${opts.max}` : ""]
      .filter(Boolean)
      .join(" and ");
    const notDecimal = typeof raw === "string" && !(opts.integer ? DECIMAL_INTEGER : DECIMAL).test(raw) && Number.isFinite(n);
    throw new UsageError(
      `--${name} expects ${opts.integer ? "an integer" : "a number"}${range ? ` ${range}` : ""}, ` +
        `got ${JSON.stringify(raw)}${notDecimal ? ` (write it in plain decimal digits${opts.integer ? ", no exponent" : ""})` : ""}` +
        `${opts.hint ? ` (${opts.hint})` : ""}`,
    );
  }
  return n;
}

/** Parse a comma-separated list of token ids ("1,2,3"). */
export function idsFlag(raw: string, name = "ids"): number[] {
  const ids = raw
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "")
    .map(Number);
  if (ids.length === 0 || ids.some((n) => !Number.isInteger(n) || n < 0)) {
    throw new UsageError(`--${name} expects comma-separated non-negative integers like 1,450,4996, got ${JSON.stringify(raw)}`);
  }
  return ids;
}

/**
 * Backslash escapes in a flag value, as a shell user types them: --stop '\n' is a newline.
 * \n \t \r \0 \\ \' \" \xHH \uHHHH and \u{H...}; any other backslash is an error naming the flag.
 */
export function unescapeFlag(raw: string, name: string): string {
  const simple: Record<string, string> = { n: "\n", t: "\t", r: "\r", "0": "\0", "\\": "\\", "'": "'", '"': '"' };
  return raw.replace(/\\(u\{[0-9a-fA-F]{1,6}\}|u[0-9a-fA-F]{4}|x[0-9a-fA-F]{2}|.?)/gs, (all, esc: string) => {
    if (esc in simple) return simple[esc]!;
    if (esc.startsWith("u{")) return String.fromCodePoint(parseInt(esc.slice(2, -1), 16));
    if (esc.length > 1) return String.fromCharCode(parseInt(esc.slice(1), 16));
    throw new UsageError(
      `--${name}: unknown escape ${JSON.stringify(all)} in ${JSON.stringify(raw)}; ` + `use \\n \\t \\r \\0 \\\\ \\xHH or \\uHHHH`,
    );
  });
}
