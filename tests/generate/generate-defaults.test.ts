// One decoding rule in the library and the CLI (generation_config.json sampling when it sets
// do_sample, else greedy), `await generation.result` without a loop, and loadModel() /
// loadTokenizer() without a source using the embedded default model.
import { spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { generate, samplingDefaults } from "../../src/generate/generate.js";
import { defaultModel, loadModel, loadTokenizer } from "../../src/load.js";
import { HAS_BIN, mobilellm, ROOT } from "../cli/bin-helpers.js";

const tmp = mkdtempSync(join(tmpdir(), "mobilellm-defaults-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
/** A copy of the default model whose generation_config.json asks to sample. */
const sampling = join(tmp, "sampling");
cpSync(defaultModel, sampling, { recursive: true });
writeFileSync(
  join(sampling, "generation_config.json"),
  JSON.stringify({ do_sample: true, temperature: 0.7, top_p: 0.9, bos_token_id: 1, eos_token_id: 2 }),
);
const PROMPT = [1, 450, 1024];

describe("samplingDefaults (generation_config.json)", () => {
  it("greedy without a file or without do_sample; transformers' defaults for what do_sample leaves out", () => {
    expect(samplingDefaults(undefined)).toEqual({ temperature: 0 });
    expect(samplingDefaults({ temperature: 0.6, top_p: 0.9 })).toEqual({ temperature: 0 });
    expect(samplingDefaults({ do_sample: true })).toEqual({ temperature: 1, topK: 50, topP: 1 });
    expect(samplingDefaults({ do_sample: true, temperature: 0.7, top_k: 0, top_p: 0.9, repetition_penalty: 1.1 })).toEqual({
      temperature: 0.7,
      topK: 0,
      topP: 0.9,
      repetitionPenalty: 1.1,
    });
    expect(() => samplingDefaults({ do_sample: true, top_p: 2 }, "g.json")).toThrow(/g\.json: topP must be in \(0, 1\]/);
  });
});

describe("the library's defaults", () => {
  it("loadModel() and loadTokenizer() without a source use the embedded default model", async () => {
    const [a, b] = [await loadModel(), await loadModel(defaultModel)];
    expect(a.config).toEqual(b.config);
    expect(a.config.vocabSize).toBe(2048);
    expect((await loadTokenizer()).encode("ROMEO: hi")).toEqual((await loadTokenizer(defaultModel)).encode("ROMEO: hi"));
  });

  it("generate() is greedy by default (no generation_config.json), like the CLI", async () => {
    const model = await loadModel();
    const plain = await generate(model, PROMPT, { maxNewTokens: 12 }).result;
    const greedy = await generate(model, PROMPT, { maxNewTokens: 12, temperature: 0 }).result;
    expect(plain.ids).toEqual(greedy.ids);
    if (HAS_BIN) {
      const cli = JSON.parse(mobilellm(["generate", "--ids", PROMPT.join(","), "-n", "12", "--json"]).stdout);
      expect(cli.ids).toEqual(plain.ids);
    }
  });

  it("with generation_config.json do_sample, library and CLI sample with its settings", async () => {
    const model = await loadModel(sampling);
    expect(model.generationDefaults).toEqual({ temperature: 0.7, topK: 50, topP: 0.9 });
    const byDefault = await generate(model, PROMPT, { maxNewTokens: 24, seed: 5 }).result;
    const explicit = await generate(model, PROMPT, { maxNewTokens: 24, seed: 5, temperature: 0.7, topK: 50, topP: 0.9 }).result;
    const greedy = await generate(model, PROMPT, { maxNewTokens: 24, temperature: 0 }).result;
    expect(byDefault.ids).toEqual(explicit.ids);
    expect(byDefault.ids).not.toEqual(greedy.ids); // the defaults really sample
    if (HAS_BIN) {
      const r = mobilellm(["generate", "-m", sampling, "--ids", PROMPT.join(","), "-n", "24", "--seed", "5", "--json"]);
      expect(JSON.parse(r.stdout).ids).toEqual(byDefault.ids);
      const t0 = mobilellm(["generate", "-m", sampling, "--ids", PROMPT.join(","), "-n", "24", "-t", "0", "--json"]);
      expect(JSON.parse(t0.stdout).ids).toEqual(greedy.ids); // a flag given wins
    }
  });
});

describe("Generation.result", () => {
  it("awaiting result without iterating runs the generation to the end", async () => {
    const model = await loadModel();
    const r = await generate(model, PROMPT, { maxNewTokens: 7, eosTokenId: null }).result;
    expect(r.generatedTokens).toBe(7);
    expect(r.stopReason).toBe("length");
  });

  it("iterating then awaiting, and awaiting alongside a loop, both see every step", async () => {
    const model = await loadModel();
    const gen = generate(model, PROMPT, { maxNewTokens: 6, eosTokenId: null });
    const seen: number[] = [];
    for await (const s of gen) seen.push(s.id);
    expect((await gen.result).ids).toEqual(seen);

    const gen2 = generate(model, PROMPT, { maxNewTokens: 6, eosTokenId: null });
    const seen2: number[] = [];
    const [r2] = await Promise.all([
      gen2.result,
      (async () => {
        for await (const s of gen2) seen2.push(s.id);
      })(),
    ]);
    expect(r2.ids).toEqual(seen2);
    expect(seen2).toEqual(seen);
  });

  it("a built-CLI script that only awaits result exits with the text", () => {
    if (!HAS_BIN) return;
    const script = `import { generate, loadModel, loadTokenizer } from "./dist/index.js";
const model = await loadModel(), tokenizer = await loadTokenizer();
const { text, generatedTokens } = await generate(model, "ROMEO:", { tokenizer, maxNewTokens: 5, eosTokenId: null }).result;
console.log(generatedTokens, JSON.stringify(text));`;
    const out = spawnNode(["--input-type=module", "-e", script]);
    expect(out.code).toBe(0);
    expect(out.stdout).toMatch(/^5 ".*"\n$/s);
  });
});

function spawnNode(args: string[]) {
  const r = spawnSync(process.execPath, args, { cwd: ROOT, encoding: "utf8", timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}
