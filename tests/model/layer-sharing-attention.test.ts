// layerSharingAttention "reference-cache": the published modeling_llama.py's single forward with
// use_cache on (both runs of a shared block write the same cache entry, so the second run attends
// over the first run's keys), against a float64 transcription of that code path
// (scripts/ls-reference-cache-fixture.py, which also reproduces the existing use_cache=False logits).
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { BACKENDS, loadModel } from "../../src/index.js";
import { expected, expectedIds, FIXTURES, maxAbsDiff, readTensor } from "../helpers.js";
import { HAS_BIN, mobilellm } from "../cli/bin-helpers.js";

const LS = join(FIXTURES, "tiny-ls");
const refFile = join(LS, "expected-reference-cache.safetensors");
const ids = readTensor(refFile, "input_ids") as number[];
const refLogits = readTensor(refFile, "logits") as Float32Array;

describe.each(BACKENDS)("layerSharingAttention on tiny-ls (%s backend)", (backend) => {
  it("reference-cache matches the published code's use_cache forward within 1e-4", async () => {
    const model = await loadModel(LS, { backend, layerSharingAttention: "reference-cache" });
    expect(ids).toEqual(expectedIds("tiny-ls", "input_ids"));
    expect(maxAbsDiff(model.forward(ids), refLogits)).toBeLessThan(1e-4);
  });

  it("separate (the default) still matches the fixture, and the two modes really differ", async () => {
    const model = await loadModel(LS, { backend });
    expect(model.layerSharingAttention).toBe("separate");
    const logits = model.forward(ids);
    expect(maxAbsDiff(logits, expected("tiny-ls", "logits"))).toBeLessThan(1e-4);
    expect(maxAbsDiff(logits, refLogits)).toBeGreaterThan(0.1);
  });

  it("reference-cache: cached decoding one token at a time and chunked prefill equal one forward", async () => {
    const model = await loadModel(LS, { backend, layerSharingAttention: "reference-cache", maxChunk: 5 });
    const V = model.config.vocabSize;
    expect(maxAbsDiff(model.forward(ids), refLogits)).toBeLessThan(1e-4);
    model.reset();
    let worst = 0;
    for (let t = 0; t < ids.length; t++) {
      const row = model.feed([ids[t]!]);
      worst = Math.max(worst, maxAbsDiff(row, refLogits.subarray(t * V, (t + 1) * V)));
    }
    expect(worst).toBeLessThan(1e-4);
  });
});

it("a model without layer sharing is the same under both modes", async () => {
  const fixture = join(FIXTURES, "tiny-gqa"),
    gqaIds = expectedIds("tiny-gqa", "input_ids");
  const a = await loadModel(fixture, { layerSharingAttention: "reference-cache" });
  expect(maxAbsDiff(a.forward(gqaIds), expected("tiny-gqa", "logits"))).toBeLessThan(1e-4);
  await expect(loadModel(fixture, { layerSharingAttention: "shared" as never })).rejects.toThrow(/layerSharingAttention must be/);
});

describe.skipIf(!HAS_BIN)("--layer-sharing-attention in the CLI", () => {
  it("info shows the mode; generate follows it", () => {
    const sep = mobilellm(["info", "-m", LS]);
    expect(sep.stdout).toMatch(/^attention +separate: /m);
    const ref = mobilellm(["info", "-m", LS, "--layer-sharing-attention", "reference-cache", "--json"]);
    expect(JSON.parse(ref.stdout).layerSharingAttention).toBe("reference-cache");
    expect(mobilellm(["info"]).stdout).toMatch(/^attention +n\/a \(no layer sharing\)/m);

    // Greedy continuation in reference-cache mode = argmax of the reference logits' last row.
    const V = 512,
      last = refLogits.subarray((ids.length - 1) * V, ids.length * V);
    const argmax = last.indexOf(Math.max(...last));
    const r = mobilellm([
      "generate",
      "-m",
      LS,
      "--ids",
      ids.join(","),
      "-n",
      "1",
      "--layer-sharing-attention",
      "reference-cache",
      "--json",
    ]);
    expect(JSON.parse(r.stdout).ids).toEqual([argmax]);
    const bad = mobilellm(["generate", "-m", LS, "--ids", "1", "--layer-sharing-attention", "both"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("--layer-sharing-attention must be separate or reference-cache");
  });
});
