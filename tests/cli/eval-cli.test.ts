// The ppl and eval commands, run in-process with captured output.
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { afterAll, describe, expect, it } from "vitest";
import { parseCommandArgs, UsageError, type Command } from "../../src/cli/command.js";
import { evalCommand } from "../../src/cli/commands/eval.js";
import { ppl } from "../../src/cli/commands/ppl.js";
import { encodeSafetensors } from "../../src/io/safetensors.js";
import { configToJson, PRESETS } from "../../src/model/config.js";
import { expectedTensors } from "../../src/model/weights.js";
import { FIXTURES, SHARED, TESTS_DIR, expectedIds } from "../helpers.js";

const dir = mkdtempSync(join(tmpdir(), "eval-cli-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function run(cmd: Command, argv: string[]): Promise<{ out: string; err: string }> {
  const stdout = new PassThrough(),
    stderr = new PassThrough();
  let out = "",
    err = "";
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
    const a = JSON.parse(
      (await run(ppl, ["--model", model, "--ids", ids, "--seqlen", "32", "--limit-windows", "1", "--resume", state, "--json"])).out,
    );
    expect(a.nsamples).toBe(1);
    expect(Math.abs(a.windowLosses[0] - 6.278006740910313)).toBeLessThan(1e-4);
    const b = JSON.parse((await run(ppl, ["--model", model, "--ids", ids, "--seqlen", "32", "--resume", state, "--json"])).out);
    expect(b.resumedWindows).toBe(1);
    expect(Math.abs(b.ppl - 519.7327173226969) / 519.7327173226969).toBeLessThan(1e-4);
  });

  it("usage errors", async () => {
    await expect(run(ppl, ["--model", model])).rejects.toThrow(UsageError);
    await expect(run(ppl, ["--model", model, "--ids", ids, "--seqlen", "1000"])).rejects.toThrow(
      /exceeds the model's 256-position context/,
    );
    await expect(run(ppl, ["--model", model, "--ids", ids, "--seqlen", "x"])).rejects.toThrow(/--seqlen expects an integer/);
  });
});

describe("mobilellm eval", () => {
  it("usage errors name the problem", async () => {
    const model = join(FIXTURES, "tiny-gqa"),
      data = join(FIXTURES, "eval");
    await expect(run(evalCommand, ["--model", model])).rejects.toThrow(/--data/);
    await expect(run(evalCommand, ["--model", model, "--data", data, "--task", "mmlu"])).rejects.toThrow(/unknown task "mmlu"/);
    await expect(run(evalCommand, ["--model", model, "--data", join(data, "piqa.jsonl"), "--task", "piqa,boolq"])).rejects.toThrow(
      /single --task/,
    );
    await expect(run(evalCommand, ["--model", model, "--data", dir, "--task", "piqa"])).rejects.toThrow(
      /no piqa\.jsonl or piqa\.parquet \(piqa, validation split; fields: goal, sol1, sol2, label/,
    );
  });
});

// With the real SentencePiece tokenizer (../shared/tokenizer/tokenizer.model, vocab 32000) and a
// tiny random model of that vocabulary written to a temp folder.
const TOKENIZER = join(SHARED, "tokenizer", "tokenizer.model");
const HAS_TOKENIZER = existsSync(TOKENIZER) && existsSync(join(TESTS_DIR, "..", "src", "tokenizer", "index.ts"));
if (!HAS_TOKENIZER) console.log(`eval CLI with the real tokenizer: skipped (needs ${TOKENIZER} and src/tokenizer)`);

function writeTinyModel(folder: string): void {
  const config = {
    ...PRESETS["125M"]!,
    hiddenSize: 16,
    intermediateSize: 32,
    numLayers: 1,
    numHeads: 2,
    numKvHeads: 1,
    headDim: 8,
    maxPositions: 512,
  };
  mkdirSync(folder, { recursive: true });
  writeFileSync(join(folder, "config.json"), JSON.stringify(configToJson(config)));
  let seed = 7;
  const rand = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32 - 0.5) * 0.1;
  const tensors = [...expectedTensors(config)].map(([name, shape]) => {
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1)).map(() => (shape.length === 1 ? 1 : rand()));
    return { name, dtype: "F32" as const, shape, bytes: new Uint8Array(data.buffer) };
  });
  writeFileSync(join(folder, "model.safetensors"), Buffer.concat(encodeSafetensors(tensors)));
}

describe.skipIf(!HAS_TOKENIZER)("eval and ppl with the SentencePiece tokenizer", () => {
  const model = join(dir, "tiny-32k");
  writeTinyModel(model);

  it("eval --task all prints the seed-style table, and --json the per-task metrics", async () => {
    const args = ["--model", model, "--tokenizer", TOKENIZER, "--data", join(FIXTURES, "eval"), "--task", "all"];
    const { out } = await run(evalCommand, args);
    expect(out).toContain("| model | arc_easy | arc_challenge | boolq | piqa | siqa | hellaswag | obqa | winogrande | avg. |");
    expect(out).toMatch(/\| tiny-32k( \| \d+\.\d){9} \|/);
    const two = (await run(evalCommand, [...args, "--model", model, "--limit", "1"])).out;
    expect(two.match(/^\| tiny-32k \|/gm)?.length).toBe(2); // one row per --model
    const json = JSON.parse((await run(evalCommand, [...args, "--json", "--limit", "1"])).out);
    expect(json.models[0].model).toBe("tiny-32k");
    expect(json.models[0].results.map((r: { task: string; n: number }) => [r.task, r.n])).toEqual(
      ["arc_easy", "arc_challenge", "boolq", "piqa", "siqa", "hellaswag", "openbookqa", "winogrande"].map((t) => [t, 1]),
    );
  });

  it("ppl tokenizes a text file once with BOS", async () => {
    const text = join(dir, "corpus.txt");
    writeFileSync(text, "The quick brown fox jumps over the lazy dog. ".repeat(20));
    const r = JSON.parse((await run(ppl, ["--model", model, "--tokenizer", TOKENIZER, "--data", text, "--seqlen", "16", "--json"])).out);
    expect(r.nsamples).toBe(Math.floor(r.streamLength / 16));
    expect(r.ppl).toBeGreaterThan(1);
  });
});
