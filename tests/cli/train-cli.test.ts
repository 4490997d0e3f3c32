// The prepare and pretrain commands end to end on a little text, with the byte tokenizer.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { afterAll, describe, expect, it } from "vitest";
import { parseCommandArgs, type Command } from "../../src/cli/command.js";
import { prepare } from "../../src/cli/commands/prepare.js";
import { applySharingFlags, pretrain, readConfigArg } from "../../src/cli/commands/pretrain.js";
import { presetName } from "../../src/model/config.js";
import { splitText } from "../../src/train/prepare.js";
import { loadModel } from "../../src/load.js";

const tmp = mkdtempSync(join(tmpdir(), "mobilellm-train-cli-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

async function run(cmd: Command, argv: string[]): Promise<string> {
  const { values, positionals } = parseCommandArgs(cmd, argv);
  const err = new PassThrough();
  let text = "";
  err.on("data", (d) => (text += d));
  await cmd.run(values, positionals, { stdout: new PassThrough(), stderr: err, signal: new AbortController().signal });
  return text;
}

describe("mobilellm prepare / pretrain", () => {
  const corpus = join(tmp, "corpus.txt");
  const lines = Array.from({ length: 200 }, (_, i) => `line ${i}: to be or not to be`);
  writeFileSync(corpus, lines.join("\n") + "\n");

  it("splits train/validation at the first newline after the 90% mark", () => {
    const text = readFileSync(corpus, "utf8");
    const train = splitText(text, "train", 0.1),
      val = splitText(text, "validation", 0.1);
    expect(train + val).toBe(text);
    expect(train.endsWith("\n")).toBe(true);
    expect(train.length).toBeGreaterThanOrEqual(Math.floor(text.length * 0.9));
    expect(val.startsWith("line ")).toBe(true);
  });

  it("prepare packs byte tokens into lines of L+1 ids, documents ending with EOS, no BOS", async () => {
    const msg = await run(prepare, [
      "--tokenizer",
      "bytes",
      "--input",
      corpus,
      "--out",
      join(tmp, "data"),
      "--seq-len",
      "32",
      "--split",
      "train",
    ]);
    expect(msg).toMatch(/lines of 33 tokens \(32 predictions each/);
    const rows = readFileSync(join(tmp, "data", "1", "data.jsonl"), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l).token_ids as number[]);
    expect(rows.every((r) => r.length === 33)).toBe(true);
    expect(rows[0]!.slice(0, 4)).toEqual("line".split("").map((ch) => ch.charCodeAt(0) + 3));
  });

  it("prepare separates documents (input files) with EOS, and --bos starts each with BOS", async () => {
    const a = join(tmp, "a.txt"),
      b = join(tmp, "b.txt");
    writeFileSync(a, "abc");
    writeFileSync(b, "de");
    const ids = (s: string) => s.split("").map((ch) => ch.charCodeAt(0) + 3);
    const read = (dir: string) =>
      readFileSync(join(dir, "1", "data.jsonl"), "utf8")
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l).token_ids as number[]);
    await run(prepare, ["--tokenizer", "bytes", "--input", a, b, "--out", join(tmp, "docs"), "--seq-len", "6"]);
    expect(read(join(tmp, "docs"))).toEqual([[...ids("abc"), 2, ...ids("de"), 2]]);
    await run(prepare, ["--tokenizer", "bytes", "--input", a, b, "--out", join(tmp, "docs-bos"), "--seq-len", "3", "--bos"]);
    expect(read(join(tmp, "docs-bos"))).toEqual([
      [1, ...ids("abc")],
      [2, 1, ...ids("de")],
    ]);
  });

  it("pretrain trains, then refuses to reuse the folder, then resumes with the run's own settings", async () => {
    const cfg = join(tmp, "config.json");
    writeFileSync(
      cfg,
      JSON.stringify({
        model_type: "mobilellm",
        vocab_size: 259,
        hidden_size: 16,
        intermediate_size: 24,
        num_hidden_layers: 1,
        num_attention_heads: 2,
        num_key_value_heads: 1,
        max_position_embeddings: 64,
      }),
    );
    const out = join(tmp, "run");
    const common = ["--config", cfg, "--data", join(tmp, "data"), "--out", out, "--batch-size", "2", "--seq-len", "32", "--lr", "1e-2"];
    const msg = await run(pretrain, [...common, "--steps", "4", "--save-every", "2"]);
    expect(msg).toMatch(/step 4\/4 {2}loss \d\.\d{4} {2}lr .* tok\/s {2}ETA/);
    expect(msg).toMatch(/checkpoint-4: step 4/);
    await expect(run(pretrain, [...common, "--steps", "4"])).rejects.toThrow(/already holds a training run/);
    const more = await run(pretrain, ["--data", join(tmp, "data"), "--out", out, "--resume", "--steps", "6"]);
    expect(more).toMatch(/resuming from .*checkpoint-4 at step 4/);
    expect(more).toMatch(/checkpoint-6: step 6/);
    // a finished run only exports: fp16 weights that load and give nearly the f32 checkpoint's logits
    const exported = join(tmp, "model");
    const msg2 = await run(pretrain, ["--data", join(tmp, "data"), "--out", out, "--resume", "--export", exported]);
    expect(msg2).toMatch(/exported .*checkpoint-6 as f16/);
    const f16 = await loadModel(exported),
      f32 = await loadModel(join(out, "checkpoint-6"));
    expect(f16.weights.embedVD.dtype).toBe("f16");
    const a = f16.forward([1, 70, 71]),
      b = f32.forward([1, 70, 71]);
    let err = 0;
    for (let i = 0; i < a.length; i++) err = Math.max(err, Math.abs(a[i]! - b[i]!));
    expect(err).toBeLessThan(1e-2);
    expect(err).toBeGreaterThan(0);
  });

  // The keys and values of facebookresearch/MobileLLM configs/125M/config.json (Llama form: no
  // share_embedding / layer_sharing, which are flags of the published training script).
  const LLAMA_125M = {
    architectures: ["LlamaForCausalLM"],
    attention_bias: false,
    bos_token_id: 1,
    eos_token_id: 2,
    hidden_act: "silu",
    hidden_size: 576,
    initializer_range: 0.02,
    intermediate_size: 1536,
    max_position_embeddings: 2048,
    model_type: "llama",
    num_attention_heads: 9,
    num_hidden_layers: 30,
    num_key_value_heads: 3,
    pretraining_tp: 1,
    rms_norm_eps: 1e-5,
    rope_scaling: null,
    rope_theta: 10000.0,
    tie_word_embeddings: false,
    torch_dtype: "float16",
    transformers_version: "4.34.1",
    use_cache: true,
    vocab_size: 32000,
  };

  it("the published 125M config.json is read as is, with the training script's defaults: 125M-LS", () => {
    const file = join(tmp, "125M.json");
    writeFileSync(file, JSON.stringify(LLAMA_125M, null, 2));
    const { config, sets } = readConfigArg(file);
    applySharingFlags({}, config, sets, file);
    expect(presetName(config)).toBe("125M-LS");
    expect(config.shareEmbedding).toBe(true);
    const noLs = readConfigArg(file);
    applySharingFlags({ "layer-sharing": "false" }, noLs.config, noLs.sets, file);
    expect(presetName(noLs.config)).toBe("125M");
  });

  it("a Llama-form config trains without edits; a config that sets layer_sharing wins over the flag's default", async () => {
    const llama = join(tmp, "llama.json");
    writeFileSync(
      llama,
      JSON.stringify({
        ...LLAMA_125M,
        hidden_size: 16,
        intermediate_size: 24,
        num_hidden_layers: 1,
        num_attention_heads: 2,
        num_key_value_heads: 1,
        max_position_embeddings: 64,
        vocab_size: 259,
      }),
    );
    const out = join(tmp, "llama-run");
    await run(pretrain, ["--config", llama, "--data", join(tmp, "data"), "--out", out, "--batch-size", "2", "--steps", "2"]);
    const cfg = JSON.parse(readFileSync(join(out, "run.json"), "utf8")).config;
    expect([cfg.layer_sharing, cfg.share_embedding]).toEqual([true, true]);
    const mobile = join(tmp, "config.json"); // sets neither key: the flag decides
    const out2 = join(tmp, "no-ls-run");
    await run(pretrain, [
      "--config",
      mobile,
      "--data",
      join(tmp, "data"),
      "--out",
      out2,
      "--batch-size",
      "2",
      "--steps",
      "1",
      "--layer-sharing",
      "false",
    ]);
    expect(JSON.parse(readFileSync(join(out2, "run.json"), "utf8")).config.layer_sharing).toBe(false);
    const sets = join(tmp, "sets.json");
    writeFileSync(sets, JSON.stringify({ ...JSON.parse(readFileSync(mobile, "utf8")), layer_sharing: false }));
    await expect(
      run(pretrain, ["--config", sets, "--data", join(tmp, "data"), "--out", join(tmp, "x"), "--layer-sharing", "true"]),
    ).rejects.toThrow(/--layer-sharing true contradicts .*sets layer_sharing: false/);
  });

  it("a failed start leaves no run.json (the corrected command just works); --resume of a finished run says so", async () => {
    const out = join(tmp, "failed-start");
    const args = ["--config", join(tmp, "config.json"), "--out", out, "--batch-size", "2", "--steps", "2"];
    await expect(run(pretrain, [...args, "--data", join(tmp, "no-such-data")])).rejects.toThrow(/training data folder not found/);
    expect(existsSync(join(out, "run.json"))).toBe(false);
    await run(pretrain, [...args, "--data", join(tmp, "data")]);
    const again = await run(pretrain, ["--data", join(tmp, "data"), "--out", out, "--resume"]);
    expect(again).toMatch(/is finished: .*checkpoint-2 is step 2 of 2; nothing to train/);
  });
});
