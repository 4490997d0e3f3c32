// `mobilellm generate`: run in-process the way main.ts dispatches (strict flag parsing, UsageError
// → exit 2 with a hint), with stdout/stderr captured; and the built CLI when dist/ exists.
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { parseCommandArgs, UsageError } from "../src/cli/command.js";
import { COMMANDS } from "../src/cli/commands/index.js";
import { expectedIds, FIXTURES, TESTS_DIR } from "./helpers.js";

interface Run { code: number; stdout: string; stderr: string }

/** What main.ts does for one command, with captured streams. */
async function cli(argv: string[], signal = new AbortController().signal): Promise<Run> {
  const out: string[] = [], err: string[] = [];
  const sink = (into: string[]) => new Writable({ write(chunk, _enc, done) { into.push(String(chunk)); done(); } });
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

const fixture = join(FIXTURES, "tiny-mha-unshared");
const promptIds = expectedIds("tiny-mha-unshared", "input_ids");
const greedyIds = expectedIds("tiny-mha-unshared", "greedy_ids");

describe("mobilellm generate (in-process)", () => {
  it.each(["wasm", "ts"])("--ids on a folder without a tokenizer streams the greedy ids (--backend %s)", async (backend) => {
    const r = await cli(["generate", "--model", fixture, "--ids", promptIds.join(","), "--max-new-tokens", "16", "--backend", backend]);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(greedyIds.join(","));
    expect(r.stderr).toMatch(new RegExp(`24 prompt tokens at [\\d.]+ tok/s; 16 generated at [\\d.]+ tok/s \\(greedy, ${backend} backend\\); stopped: length`));
  });

  it("--json prints one object with the ids and the statistics", async () => {
    const r = await cli(["generate", "-m", fixture, "--ids", promptIds.join(","), "-n", "16", "--json", "--dtype", "f16"]);
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split("\n");
    expect(lines).toHaveLength(1);
    const o = JSON.parse(lines[0]!);
    expect(Object.keys(o).sort()).toEqual(["decode_tokens_per_s", "generated_tokens", "ids", "prefill_tokens_per_s", "prompt_tokens",
                                           "seed", "stop_reason", "text"]);
    expect(o).toMatchObject({ prompt_tokens: 24, generated_tokens: 16, text: "", stop_reason: "length" });
    expect(o.ids).toHaveLength(16);
    expect(o.prefill_tokens_per_s).toBeGreaterThan(0);
  });

  it("sampling flags with a seed reproduce; a different seed differs", async () => {
    const args = ["generate", "-m", fixture, "--ids", "1,2,3", "-n", "24", "--temperature", "1.5", "--top-k", "50",
                  "--top-p", "0.95", "--min-p", "0.01", "--repetition-penalty", "1.2", "--json"];
    const a = JSON.parse((await cli([...args, "--seed", "7"])).stdout);
    const b = JSON.parse((await cli([...args, "--seed", "7"])).stdout);
    const c = JSON.parse((await cli([...args, "--seed", "8"])).stdout);
    expect(a.ids).toEqual(b.ids);
    expect(a.seed).toBe(7);
    expect(a.ids).not.toEqual(c.ids);
  });

  it("an aborted signal (Ctrl-C) stops cleanly", async () => {
    const r = await cli(["generate", "-m", fixture, "--ids", "1,2,3", "-n", "50", "--json"], AbortSignal.abort());
    expect(r.code).toBe(0); // main.ts turns an aborted run into exit code 130
    expect(JSON.parse(r.stdout)).toMatchObject({ generated_tokens: 0, stop_reason: "abort" });
  });

  it.each([
    [["--ids", "1,x"], /--ids expects comma-separated non-negative integers/],
    [["--ids", "1", "--max-new-tokens", "0"], /--max-new-tokens expects an integer >= 1/],
    [["--ids", "1", "--temperature=-1"], /--temperature expects a number >= 0/],
    [["--ids", "1", "--top-p", "1.5"], /--top-p expects a number in \(0, 1\]/],
    [["--ids", "1", "--top-k", "2.5"], /--top-k expects an integer >= 0/],
    [["--ids", "1", "--min-p", "2"], /--min-p expects a number >= 0 and <= 1/],
    [["--ids", "1", "--repetition-penalty", "0"], /--repetition-penalty expects a number > 0/],
    [["--ids", "1", "--seed=-3"], /--seed expects an integer >= 0/],
    [["--ids", "1", "--backend", "gpu"], /--backend must be ts or wasm/],
    [["--ids", "1", "--dtype", "int8"], /--dtype must be f32, f16, bf16 or auto/],
    [["--ids", "1", "--frobnicate"], /Unknown option '--frobnicate'/],
    [["--ids", "1", "--prompt", "hi"], /either --prompt or --ids/],
    [[], /give the prompt with --prompt TEXT or --ids/],
    [["--prompt", "hello"], /no tokenizer this build can read.*--ids/],
    [["--ids", "1", "--stop", "x"], /--stop needs a tokenizer/],
    [["--ids", "1,999"], /prompt token 1 is 999, outside the vocabulary \[0, 300\)/],
    [["--ids", "1,2", "-n", "127"], /needs 129 positions, more than the model's context of 128/],
  ])("bad input %j exits 2 with a hint", async (args, message) => {
    const r = await cli(["generate", "-m", fixture, ...args]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).toContain("Run `mobilellm generate --help` for usage.");
    expect(r.stdout).toBe("");
  });
});

const ROOT = join(TESTS_DIR, "..");
const BIN = join(ROOT, "dist", "cli", "main.js");
if (!existsSync(BIN)) console.log("cli-generate: built-CLI tests skipped (dist/ is missing: `npm test` builds it first)");

describe.skipIf(!existsSync(BIN))("mobilellm generate (built CLI)", () => {
  it("--json output and exit code 0", () => {
    const out = execFileSync(process.execPath, [BIN, "generate", "--model", fixture, "--ids", promptIds.join(","), "-n", "16", "--json"],
                             { encoding: "utf8" });
    expect(JSON.parse(out)).toMatchObject({ ids: greedyIds, prompt_tokens: 24, generated_tokens: 16 });
  });

  it("an unknown flag exits 2 with a hint", () => {
    const r = spawnSync(process.execPath, [BIN, "generate", "--ids", "1", "--nope"], { encoding: "utf8" });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/Unknown option '--nope'[\s\S]*mobilellm generate --help/);
  });
});
