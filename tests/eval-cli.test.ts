// The ppl and eval commands, run in-process with captured output.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { afterAll, describe, expect, it } from "vitest";
import { parseCommandArgs, UsageError, type Command } from "../src/cli/command.js";
import { evalCommand } from "../src/cli/commands/eval.js";
import { ppl } from "../src/cli/commands/ppl.js";
import { FIXTURES, expectedIds } from "./helpers.js";

const dir = mkdtempSync(join(tmpdir(), "eval-cli-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function run(cmd: Command, argv: string[]): Promise<{ out: string; err: string }> {
  const stdout = new PassThrough(), stderr = new PassThrough();
  let out = "", err = "";
  stdout.on("data", (d) => (out += d));
  stderr.on("data", (d) => (err += d));
  const { values, positionals } = parseCommandArgs(cmd, argv);
  await cmd.run(values, positionals, { stdout, stderr, signal: new AbortController().signal });
  return { out, err };
}

describe("mobilellm ppl", () => {
  const ids = join(dir, "ids.json");
  writeFileSync(ids, JSON.stringify(expectedIds("tiny-gqa", "ppl_stream")));
  const model = join(FIXTURES, "tiny-gqa");

  it("prints a table row with the fixture's perplexity", async () => {
    const { out } = await run(ppl, ["--model", model, "--ids", ids, "--seqlen", "32"]);
    expect(out).toContain("| model | data | seqlen | windows | tokens | ppl |");
    expect(out).toContain("| tiny-gqa | ids.json | 32 | 3 | 100 | 519.7327 |");
  });

  it("--json, --limit-windows and --resume", async () => {
    const state = join(dir, "ppl-state.json");
    const a = JSON.parse((await run(ppl, ["--model", model, "--ids", ids, "--seqlen", "32", "--limit-windows", "1", "--resume", state, "--json"])).out);
    expect(a.nsamples).toBe(1);
    expect(Math.abs(a.windowLosses[0] - 6.278006740910313)).toBeLessThan(1e-4);
    const b = JSON.parse((await run(ppl, ["--model", model, "--ids", ids, "--seqlen", "32", "--resume", state, "--json"])).out);
    expect(b.resumedWindows).toBe(1);
    expect(Math.abs(b.ppl - 519.7327173226969) / 519.7327173226969).toBeLessThan(1e-4);
  });

  it("usage errors", async () => {
    await expect(run(ppl, ["--model", model])).rejects.toThrow(UsageError);
    await expect(run(ppl, ["--model", model, "--ids", ids, "--seqlen", "1000"])).rejects.toThrow(/exceeds the model's 256-position context/);
    await expect(run(ppl, ["--model", model, "--ids", ids, "--seqlen", "x"])).rejects.toThrow(/--seqlen expects an integer/);
  });
});

describe("mobilellm eval", () => {
  it("usage errors name the problem", async () => {
    const model = join(FIXTURES, "tiny-gqa"), data = join(FIXTURES, "eval");
    await expect(run(evalCommand, ["--model", model])).rejects.toThrow(/--data/);
    await expect(run(evalCommand, ["--model", model, "--data", data, "--task", "mmlu"])).rejects.toThrow(/unknown task "mmlu"/);
    await expect(run(evalCommand, ["--model", model, "--data", join(data, "piqa.jsonl"), "--task", "piqa,boolq"])).rejects.toThrow(/single --task/);
    await expect(run(evalCommand, ["--model", model, "--data", dir, "--task", "piqa"])).rejects.toThrow(/no piqa\.jsonl or piqa\.parquet \(piqa, validation split; fields: goal, sol1, sol2, label/);
  });
});
