// pretrain --export FILE.gguf: a training run's final model as a (quantized) GGUF file that loads
// back computing exactly what the checkpoint quantized at load computes.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { cli } from "../cli/cli-helpers.js";
import { loadModel } from "../../src/load.js";
import { loadTokenizer } from "../../src/load.js";
import { FIXTURES, maxAbsDiff } from "../helpers.js";

const tmp = mkdtempSync(join(tmpdir(), "mobilellm-gguf-pretrain-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe("pretrain --export model.gguf", () => {
  it("writes a q8_0 GGUF with the tokenizer; it equals the checkpoint loaded as q8_0", async () => {
    const tok = join(FIXTURES, "tokenizer", "shakespeare-bpe800.model");
    const corpus = join(tmp, "corpus.txt");
    writeFileSync(corpus, Array.from({ length: 120 }, (_, i) => `ROMEO ${i}: what light through yonder window breaks?`).join("\n") + "\n");
    const cfg = join(tmp, "config.json");
    writeFileSync(
      cfg,
      JSON.stringify({
        model_type: "mobilellm",
        vocab_size: 800,
        hidden_size: 32,
        intermediate_size: 64,
        num_hidden_layers: 1,
        num_attention_heads: 2,
        num_key_value_heads: 1,
        max_position_embeddings: 64,
      }),
    );
    expect(
      (await cli(["prepare", "--tokenizer", tok, "--input", corpus, "--out", join(tmp, "data"), "--seq-len", "32", "--split", "train"]))
        .code,
    ).toBe(0);
    const out = join(tmp, "run"),
      gguf = join(tmp, "final-q8_0.gguf");
    const bad = await cli([
      "pretrain",
      "--config",
      cfg,
      "--data",
      join(tmp, "data"),
      "--out",
      out,
      "--steps",
      "2",
      "--export",
      gguf,
      "--export-dtype",
      "q5_0",
    ]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--export-dtype must be f16, bf16, f32, q8_0 or q4_0 for a \.gguf export/);
    const r = await cli([
      "pretrain",
      "--config",
      cfg,
      "--data",
      join(tmp, "data"),
      "--out",
      out,
      "--steps",
      "2",
      "--batch-size",
      "2",
      "--seq-len",
      "32",
      "--tokenizer",
      tok,
      "--export",
      gguf,
      "--export-dtype",
      "q8_0",
    ]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/wrote .*final-q8_0\.gguf: GGUF v3, llama, q8_0/);
    const fromGguf = await loadModel(gguf),
      fromRun = await loadModel(join(out, "checkpoint-2"), { dtype: "q8_0" });
    expect(fromGguf.weights.layers[0]!.wqQD.dtype).toBe("q8_0");
    const ids = [1, 40, 41, 42, 300, 799];
    expect(maxAbsDiff(fromGguf.forward(ids), fromRun.forward(ids))).toBe(0);
    expect((await loadTokenizer(gguf)).encode("ROMEO: what light", { addBos: true })).toEqual(
      (await loadTokenizer(tok)).encode("ROMEO: what light", { addBos: true }),
    );
  });
});
