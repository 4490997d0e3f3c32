// Loading the format MobileLLM ships (pytorch_model.bin, fp16) and choosing the complete file when a
// folder holds several.
import { copyFileSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { encodeSafetensors, loadModel, type FileDType } from "../../src/index.js";
import { readSafetensors } from "./pytorch-helpers.js";
import { expected, expectedIds, FIXTURE_NAMES, FIXTURES, maxAbsDiff } from "../helpers.js";

const tmp = mkdtempSync(join(tmpdir(), "mobilellm-choice-"));

describe.each(FIXTURE_NAMES)("%s pytorch_model.bin", (fixture) => {
  it("loads fp16 resident and matches logits_fp16 within 1e-4", async () => {
    const model = await loadModel(join(FIXTURES, fixture), { backend: "ts", weights: "pytorch_model.bin" });
    expect(model.weights.embedVD.dtype).toBe("f16");
    expect(maxAbsDiff(model.forward(expectedIds(fixture, "input_ids")), expected(fixture, "logits_fp16"))).toBeLessThan(1e-4);
  });

  it("holds weights bit-identical to model.fp16.safetensors", async () => {
    const bin = await loadModel(join(FIXTURES, fixture), { backend: "ts", weights: "pytorch_model.bin" });
    const st = await loadModel(join(FIXTURES, fixture), { backend: "ts", weights: "model.fp16.safetensors" });
    const a = bin.namedWeights(),
      b = st.namedWeights();
    expect([...a.keys()]).toEqual([...b.keys()]);
    for (const [name, w] of a) {
      const x = "data" in w ? w.data : w,
        y = b.get(name)! as typeof w;
      const yData = "data" in y ? y.data : y;
      expect(
        Buffer.from(x.buffer, x.byteOffset, x.byteLength).equals(Buffer.from(yData.buffer, yData.byteOffset, yData.byteLength)),
        name,
      ).toBe(true);
    }
  });
});

describe("choosing the weights file", () => {
  const GQA = join(FIXTURES, "tiny-gqa");

  function folder(name: string, files: Record<string, string | Uint8Array>): string {
    const dir = join(tmp, name);
    mkdirSync(dir, { recursive: true });
    copyFileSync(join(GQA, "config.json"), join(dir, "config.json"));
    for (const [f, src] of Object.entries(files)) {
      if (typeof src === "string") copyFileSync(join(GQA, src), join(dir, f));
      else writeFileSync(join(dir, f), src);
    }
    return dir;
  }

  /** The hub's converted MobileLLM safetensors: every tensor but the embedding. */
  function withoutEmbedding(): Uint8Array {
    const parts = [...readSafetensors(join(GQA, "model.fp16.safetensors"))]
      .filter(([name]) => name !== "model.embed_tokens.weight")
      .map(([name, t]) => ({ name, dtype: t.dtype as FileDType, shape: t.shape, bytes: t.bytes }));
    return Buffer.concat(encodeSafetensors(parts));
  }

  it("prefers model.safetensors when it is complete", async () => {
    const dir = folder("both-complete", { "model.safetensors": "model.safetensors", "pytorch_model.bin": "pytorch_model.bin" });
    const log: string[] = [];
    const model = await loadModel(dir, { backend: "ts", log: (m) => log.push(m) });
    expect(log).toEqual(["weights: model.safetensors"]);
    expect(model.weights.embedVD.dtype).toBe("f32");
  });

  it("falls back to pytorch_model.bin when model.safetensors lacks the embedding, and says why", async () => {
    const dir = folder("hub-defect", { "model.safetensors": withoutEmbedding(), "pytorch_model.bin": "pytorch_model.bin" });
    const log: string[] = [];
    const model = await loadModel(dir, { backend: "ts", log: (m) => log.push(m) });
    expect(log).toEqual([`weights: pytorch_model.bin; skipped model.safetensors, which lacks "model.embed_tokens.weight"`]);
    expect(maxAbsDiff(model.forward(expectedIds("tiny-gqa", "input_ids")), expected("tiny-gqa", "logits_fp16"))).toBeLessThan(1e-4);
  });

  it("with only the incomplete safetensors, the error names the tensor and points to pytorch_model.bin", async () => {
    const dir = folder("only-defect", { "model.safetensors": withoutEmbedding() });
    await expect(loadModel(dir, { backend: "ts" })).rejects.toThrowError(
      /missing required tensor "model.embed_tokens.weight".*pytorch_model\.bin/,
    );
  });

  it("loads a sharded pytorch checkpoint through its index", async () => {
    const dir = folder("sharded", { "pytorch_model-00001-of-00001.bin": "pytorch_model.bin" });
    const names = [...readSafetensors(join(GQA, "model.safetensors")).keys()];
    writeFileSync(
      join(dir, "pytorch_model.bin.index.json"),
      JSON.stringify({
        metadata: {},
        weight_map: Object.fromEntries(names.map((n) => [n, "pytorch_model-00001-of-00001.bin"])),
      }),
    );
    const model = await loadModel(dir, { backend: "ts" });
    expect(maxAbsDiff(model.forward(expectedIds("tiny-gqa", "input_ids")), expected("tiny-gqa", "logits_fp16"))).toBeLessThan(1e-4);
  });
});
