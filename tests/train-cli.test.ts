// The prepare and pretrain commands end to end on a little text, with the byte tokenizer.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { afterAll, describe, expect, it } from "vitest";
import { parseCommandArgs, type Command } from "../src/cli/command.js";
import { prepare } from "../src/cli/commands/prepare.js";
import { pretrain } from "../src/cli/commands/pretrain.js";
import { splitText } from "../src/train/prepare.js";
import { loadModel } from "../src/load.js";

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
    const train = splitText(text, "train", 0.1), val = splitText(text, "validation", 0.1);
    expect(train + val).toBe(text);
    expect(train.endsWith("\n")).toBe(true);
    expect(train.length).toBeGreaterThanOrEqual(Math.floor(text.length * 0.9));
    expect(val.startsWith("line ")).toBe(true);
  });

  it("prepare packs byte tokens into fixed-length token_ids lines", async () => {
    const msg = await run(prepare, ["--tokenizer", "bytes", "--input", corpus, "--out", join(tmp, "data"), "--seq-len", "32", "--split", "train"]);
    expect(msg).toMatch(/sequences of 32 tokens/);
    const rows = readFileSync(join(tmp, "data", "1", "data.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l).token_ids as number[]);
    expect(rows.every((r) => r.length === 32)).toBe(true);
    expect(rows[0]!.slice(0, 5)).toEqual([1, ..."line".split("").map((ch) => ch.charCodeAt(0) + 3)]);
  });

  it("pretrain trains, then refuses to reuse the folder, then resumes with the run's own settings", async () => {
    const cfg = join(tmp, "config.json");
    writeFileSync(cfg, JSON.stringify({
      model_type: "mobilellm", vocab_size: 259, hidden_size: 16, intermediate_size: 24, num_hidden_layers: 1,
      num_attention_heads: 2, num_key_value_heads: 1, max_position_embeddings: 64,
    }));
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
    const f16 = await loadModel(exported), f32 = await loadModel(join(out, "checkpoint-6"));
    expect(f16.weights.embedVD.dtype).toBe("f16");
    const a = f16.forward([1, 70, 71]), b = f32.forward([1, 70, 71]);
    let err = 0;
    for (let i = 0; i < a.length; i++) err = Math.max(err, Math.abs(a[i]! - b[i]!));
    expect(err).toBeLessThan(1e-2);
    expect(err).toBeGreaterThan(0);
  });
});
