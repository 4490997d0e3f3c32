// `mobilellm generate`: run in-process the way main.ts dispatches (strict flag parsing, UsageError
// → exit 2 with a hint), with stdout/stderr captured; and the built CLI when dist/ exists.
import { execFileSync, spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { cli } from "./cli-helpers.js";
import { loadTokenizer } from "../../src/load.js";
import { expectedIds, FIXTURES, TESTS_DIR } from "../helpers.js";

const fixture = join(FIXTURES, "tiny-mha-unshared");
const promptIds = expectedIds("tiny-mha-unshared", "input_ids");
const greedyIds = expectedIds("tiny-mha-unshared", "greedy_ids");

describe("mobilellm generate (in-process)", () => {
  it.each([
    ["wasm", "3"],
    ["wasm", "1"],
    ["ts", "1"],
  ])("--ids on a folder without a tokenizer streams the greedy ids (--backend %s --threads %s)", async (backend, threads) => {
    const r = await cli([
      "generate",
      "--model",
      fixture,
      "--ids",
      promptIds.join(","),
      "--max-new-tokens",
      "16",
      "--backend",
      backend,
      "--threads",
      threads,
    ]);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(greedyIds.join(","));
    const threadsText = threads === "1" ? "1 thread" : `${threads} threads`;
    expect(r.stderr).toMatch(
      new RegExp(
        `24 prompt tokens at [\\d.]+ tok/s; 16 generated at [\\d.]+ tok/s \\(greedy, ${backend} backend, ${threadsText}\\); stopped: length`,
      ),
    );
  });

  it("--threads must be a whole number from 1; the ts backend runs on one thread", async () => {
    for (const bad of ["0", "1.5", "many"]) {
      const r = await cli(["generate", "--model", fixture, "--ids", "1,2", "--threads", bad]);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/--threads expects an integer from 1 to 64/);
    }
    const r = await cli(["generate", "--model", fixture, "--ids", "1,2", "--backend", "ts", "--threads", "2"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/the ts reference backend runs on one thread; --threads 2 needs --backend wasm/);
  });

  it("--json prints one object with the ids and the statistics", async () => {
    const r = await cli(["generate", "-m", fixture, "--ids", promptIds.join(","), "-n", "16", "--json", "--dtype", "f16"]);
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split("\n");
    expect(lines).toHaveLength(1);
    const o = JSON.parse(lines[0]!);
    expect(Object.keys(o).sort()).toEqual([
      "decode_tokens_per_s",
      "generated_tokens",
      "ids",
      "prefill_tokens_per_s",
      "prompt_tokens",
      "seed",
      "stop_reason",
      "text",
      "threads",
    ]);
    expect(o).toMatchObject({ prompt_tokens: 24, generated_tokens: 16, text: "", stop_reason: "length" });
    expect(o.ids).toHaveLength(16);
    expect(o.prefill_tokens_per_s).toBeGreaterThan(0);
  });

  it("sampling flags with a seed reproduce; a different seed differs", async () => {
    const args = [
      "generate",
      "-m",
      fixture,
      "--ids",
      "1,2,3",
      "-n",
      "24",
      "--temperature",
      "1.5",
      "--top-k",
      "50",
      "--top-p",
      "0.95",
      "--min-p",
      "0.01",
      "--repetition-penalty",
      "1.2",
      "--json",
    ];
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
    [["--ids", "1", "--dtype", "int8"], /--dtype must be one of auto, f32, f16, bf16, q8_0, q4_0/],
    [["--ids", "1", "--frobnicate"], /Unknown option '--frobnicate'/],
    [["--ids", "1", "--prompt", "hi"], /either --prompt or --ids/],
    [[], /give the prompt with --prompt TEXT or --ids/],
    [["--prompt", "hello"], /has no tokenizer.model, so --prompt text cannot be encoded.*--ids/],
    [["--ids", "1", "--stop", "x"], /--stop needs a tokenizer/],
    [["--ids", "1", "--stop="], /--stop needs a non-empty string/],
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

describe("mobilellm generate with a tokenizer (tiny-mha-unshared + a 300-piece SentencePiece model)", () => {
  // A model folder whose tokenizer.model matches the fixture's vocabulary of 300.
  const folder = mkdtempSync(join(tmpdir(), "mobilellm-gen-"));
  for (const f of ["config.json", "model.safetensors"]) copyFileSync(join(fixture, f), join(folder, f));
  copyFileSync(join(FIXTURES, "tokenizer", "nofallback-bpe300.model"), join(folder, "tokenizer.model"));
  afterAll(() => rmSync(folder, { recursive: true, force: true }));
  const prompt = "To be, or not";

  it("--prompt: streams exactly the decoded continuation; --json has the same text", async () => {
    const tok = await loadTokenizer(folder);
    const json = JSON.parse((await cli(["generate", "-m", folder, "--prompt", prompt, "-n", "40", "--json"])).stdout);
    const promptIds = tok.encode(prompt);
    expect(json.prompt_tokens).toBe(promptIds.length);
    expect(json.text).toBe(tok.decode([...promptIds, ...json.ids]).slice(tok.decode(promptIds).length));
    expect(json.text.length).toBeGreaterThan(20);
    const streamed = await cli(["generate", "-m", folder, "--prompt", prompt, "-n", "40", "--backend", "ts"]);
    expect(streamed.stdout).toBe(json.text + "\n");
  });

  it("--stop ends the text before the stop string", async () => {
    const full = JSON.parse((await cli(["generate", "-m", folder, "--prompt", prompt, "-n", "40", "--json"])).stdout).text as string;
    const stop = full.slice(10, 13);
    const r = JSON.parse(
      (await cli(["generate", "-m", folder, "--prompt", prompt, "-n", "40", "--json", "--stop", "zzz", "--stop", stop])).stdout,
    );
    expect(r.stop_reason).toBe("stop");
    expect(r.text).toBe(full.slice(0, full.indexOf(stop)));
  });
});

const ROOT = join(TESTS_DIR, "..");
const BIN = join(ROOT, "dist", "cli", "main.js");
if (!existsSync(BIN)) console.log("cli-generate: built-CLI tests skipped (dist/ is missing: `npm test` builds it first)");

describe.skipIf(!existsSync(BIN))("mobilellm generate (built CLI)", () => {
  it("--json output and exit code 0", () => {
    const out = execFileSync(process.execPath, [BIN, "generate", "--model", fixture, "--ids", promptIds.join(","), "-n", "16", "--json"], {
      encoding: "utf8",
    });
    expect(JSON.parse(out)).toMatchObject({ ids: greedyIds, prompt_tokens: 24, generated_tokens: 16 });
  });

  it("an unknown flag exits 2 with a hint", () => {
    const r = spawnSync(process.execPath, [BIN, "generate", "--ids", "1", "--nope"], { encoding: "utf8" });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/Unknown option '--nope'[\s\S]*mobilellm generate --help/);
  });
});
