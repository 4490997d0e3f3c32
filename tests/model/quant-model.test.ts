// Whole models quantized while loading (loadModel(..., { dtype: "q8_0" | "q4_0" })) against the
// fixtures' float64 PyTorch logits.
//
// Tolerances, from the quantization error and measured on these random-weight fixtures (whose
// logits are at most ~0.9 in size): q8_0 max |Δlogit| <= 0.03 (measured 0.008 tiny-gqa, 0.013
// tiny-ls; 0.0002 tiny-mha-unshared, whose rows of 60 and 100 are not multiples of 32 so every
// matrix stays f16); q4_0 <= 0.3 (measured 0.13). Between the backends: the quantized matmuls are
// bit-identical (tests/kernels/quant-kernels.test.ts), but attention and norms differ in summation order
// (~1e-7), and such a difference can move an activation across an int8 rounding boundary, which
// changes one product by d_x·|w| — so 0.01 here (measured up to 0.0012), not f16's 1e-4.
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadModel } from "../../src/index.js";
import { expected, expectedIds, FIXTURE_NAMES, FIXTURES, maxAbsDiff } from "../helpers.js";

const TOLERANCE = { q8_0: 0.03, q4_0: 0.3 } as const;

describe.each(FIXTURE_NAMES)("%s quantized at load", (fixture) => {
  const ids = expectedIds(fixture, "input_ids");
  const reference = expected(fixture, "logits");

  it.each(["q8_0", "q4_0"] as const)("%s logits agree with the f32 reference; wasm and ts agree within 0.01", async (dtype) => {
    const logs: string[] = [];
    const wasm = await loadModel(join(FIXTURES, fixture), { backend: "wasm", dtype, log: (m) => logs.push(m) });
    const ts = await loadModel(join(FIXTURES, fixture), { backend: "ts", dtype });
    const lw = wasm.forward(ids),
      lt = ts.forward(ids);
    expect(maxAbsDiff(lw, reference)).toBeLessThan(TOLERANCE[dtype]);
    expect(maxAbsDiff(lw, lt)).toBeLessThan(0.01);
    // RMSNorm weights stay f32; matrices with rows a multiple of 32 are quantized, the others f16 and logged
    const layer = wasm.weights.layers[0]!;
    expect(layer.inputNormD).toBeInstanceOf(Float32Array);
    const D = wasm.config.hiddenSize;
    expect(layer.wqQD.dtype).toBe(D % 32 === 0 ? dtype : "f16");
    // default: the embedding / output projection is q8_0 for both
    expect(wasm.weights.embedVD.dtype).toBe(D % 32 === 0 ? "q8_0" : "f16");
    expect(layer.wDownDF.dtype).toBe(wasm.config.intermediateSize % 32 === 0 ? dtype : "f16");
    if (wasm.config.intermediateSize % 32 !== 0) {
      expect(logs.join("\n")).toMatch(
        new RegExp(`${dtype}: \\d+ matri\\w+ stay f16 because .*model\\.layers\\.0\\.mlp\\.down_proj\\.weight`),
      );
    }
  });

  it("embeddingDType: f16 keeps the embedding f16, says so, and is at least as accurate on q8_0", async () => {
    const logs: string[] = [];
    const m = await loadModel(join(FIXTURES, fixture), { dtype: "q8_0", embeddingDType: "f16", log: (s) => logs.push(s) });
    expect(m.weights.embedVD.dtype).toBe("f16");
    expect(logs.some((l) => /q8_0: the embedding.* f16/.test(l))).toBe(true);
    const q = await loadModel(join(FIXTURES, fixture), { dtype: "q8_0" });
    expect(maxAbsDiff(m.forward(ids), reference)).toBeLessThanOrEqual(maxAbsDiff(q.forward(ids), reference) + 1e-6);
  });
});
