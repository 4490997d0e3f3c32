// The forward pass against logits computed by an independent float64 PyTorch reference.
// Tolerance 1e-4 max abs error: our float32 math lands ~1e-6 from the float64 reference
// (see fixtures README: float32_math_max_abs_logit_error), so 1e-4 leaves room for summation
// order while still catching any real mistake (a wrong rope pairing or mask moves logits by >1e-2).
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { BACKENDS, loadModel } from "../../src/index.js";
import { expected, expectedIds, FIXTURE_NAMES, FIXTURES, maxAbsDiff } from "../helpers.js";

const cases = [
  { weights: "model.safetensors", reference: "logits", dtype: "f32" },
  { weights: "model.fp16.safetensors", reference: "logits_fp16", dtype: "f16" },
  { weights: "model.bf16.safetensors", reference: "logits_bf16", dtype: "bf16" },
] as const;

const grid = FIXTURE_NAMES.flatMap((fixture) => BACKENDS.map((backend) => ({ fixture, backend })));

describe.each(grid)("$fixture forward ($backend backend)", ({ fixture, backend }) => {
  const ids = expectedIds(fixture, "input_ids");
  it.each(cases)("$weights matches $reference within 1e-4", async ({ weights, reference, dtype }) => {
    const model = await loadModel(join(FIXTURES, fixture), { backend, weights });
    expect(model.weights.embedVD.dtype).toBe(dtype); // "auto" keeps the file's dtype
    const logits = model.forward(ids);
    expect(maxAbsDiff(logits, expected(fixture, reference))).toBeLessThan(1e-4);
  });

  it("the wasm backend agrees with the ts reference, and repeated forwards do not grow memory", async () => {
    if (backend !== "wasm") return;
    const wasm = await loadModel(join(FIXTURES, fixture), { backend: "wasm", weights: "model.fp16.safetensors" });
    const ts = await loadModel(join(FIXTURES, fixture), { backend: "ts", weights: "model.fp16.safetensors" });
    expect(maxAbsDiff(wasm.forward(ids), ts.forward(ids))).toBeLessThan(1e-4);
    const arena = (wasm.kernels as unknown as { arena: { highWaterMark: number } }).arena;
    const mark = arena.highWaterMark;
    for (let i = 0; i < 3; i++) wasm.forward(ids);
    expect(arena.highWaterMark).toBe(mark);
  });

  it("f16 weights widened to f32 at load give the same logits as f16 kept resident", async () => {
    const resident = await loadModel(join(FIXTURES, fixture), { backend, weights: "model.fp16.safetensors" });
    const widened = await loadModel(join(FIXTURES, fixture), { backend, weights: "model.fp16.safetensors", dtype: "f32" });
    expect(widened.weights.embedVD.dtype).toBe("f32");
    expect(maxAbsDiff(resident.forward(ids), widened.forward(ids))).toBe(0);
  });

  it("chunked prefill (chunk of 5 tokens) equals one batched pass", async () => {
    const model = await loadModel(join(FIXTURES, fixture), { backend, maxChunk: 5 });
    expect(maxAbsDiff(model.forward(ids), expected(fixture, "logits"))).toBeLessThan(1e-4);
  });
});
