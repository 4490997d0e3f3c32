// The hand-written backward pass against the PyTorch float64 reference: the loss, the gradient of
// every parameter, and one AdamW step, for the three fixture models (GQA with shared embedding,
// layer sharing, MHA with a separate lm_head).
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { openSafetensors } from "../../src/io/files.js";
import { BACKENDS, createKernels, type BackendName } from "../../src/kernels/index.js";
import { parseConfig } from "../../src/model/config.js";
import { adamwStep, allocAdamW, ADAMW_DEFAULTS } from "../../src/train/adamw.js";
import { trainBackward, trainForward, zeroGrads } from "../../src/train/model.js";
import { readParams } from "../../src/train/params.js";
import { allocTrainState } from "../../src/train/state.js";
import { expected, expectedIds, FIXTURE_NAMES, FIXTURES } from "../helpers.js";

async function setup(fixture: string, backend: BackendName) {
  const dir = join(FIXTURES, fixture);
  const config = parseConfig(JSON.parse(readFileSync(join(dir, "config.json"), "utf8")), join(dir, "config.json"));
  const ids = expectedIds(fixture, "input_ids");
  const s = allocTrainState(await createKernels(backend), config, 1, ids.length);
  const file = await openSafetensors(join(dir, "model.safetensors"));
  try {
    await readParams(s.params, file, config);
  } finally {
    file.close();
  }
  s.idsN.set(ids);
  return s;
}

const CASES = FIXTURE_NAMES.flatMap((f) => BACKENDS.map((b) => [f, b] as const));

describe.each(CASES)("training step on %s, %s backend", async (fixture, backend) => {
  const s = await setup(fixture, backend);
  zeroGrads(s);
  const loss = trainForward(s);
  trainBackward(s);

  it("loss matches the float64 reference", () => {
    expect(Math.abs(loss - expected(fixture, "loss")[0]!)).toBeLessThan(1e-5);
  });

  it("every parameter's gradient matches grad.* (max abs err <= 1e-3 of the tensor's max-abs, and <= 1e-5)", () => {
    const rows: string[] = [];
    for (const t of s.params.layout.tensors) {
      const ref = expected(fixture, `grad.${t.name}`);
      const got = s.params.gradFlat.subarray(t.offset, t.offset + t.size);
      let err = 0,
        scale = 0;
      for (let i = 0; i < t.size; i++) {
        err = Math.max(err, Math.abs(got[i]! - ref[i]!));
        scale = Math.max(scale, Math.abs(ref[i]!));
      }
      rows.push(`${t.name}: max abs err ${err.toExponential(2)} (max |g| ${scale.toExponential(2)})`);
      expect(err, t.name).toBeLessThanOrEqual(Math.max(1e-3 * scale, 1e-7));
      expect(err, t.name).toBeLessThanOrEqual(1e-5);
    }
    console.log(`${fixture} (${backend})\n  ${rows.join("\n  ")}`);
  });

  it("one AdamW step matches adamw1.* (elements with |g| < 1e-6 masked)", () => {
    const w = s.params.flat.slice();
    const opt = allocAdamW(w.length);
    adamwStep(w, s.params.gradFlat, opt, ADAMW_DEFAULTS, ADAMW_DEFAULTS.lr);
    for (const t of s.params.layout.tensors) {
      const ref = expected(fixture, `adamw1.${t.name}`);
      const g = expected(fixture, `grad.${t.name}`);
      let err = 0;
      for (let i = 0; i < t.size; i++) {
        if (Math.abs(g[i]!) < 1e-6) continue;
        err = Math.max(err, Math.abs(w[t.offset + i]! - ref[i]!));
      }
      expect(err, t.name).toBeLessThan(3e-5);
    }
  });
});
