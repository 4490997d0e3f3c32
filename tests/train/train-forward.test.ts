// One model for inference and training: the training forward (src/train/model.ts, B sequences at
// once, every activation kept) runs the same block code as MobileLLM.forward (one sequence, KV
// cache), so its logits must be the same numbers, on every fixture and both backends.
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { BACKENDS } from "../../src/kernels/index.js";
import { loadModel } from "../../src/load.js";
import { trainLogits } from "../../src/train/model.js";
import { readParams } from "../../src/train/params.js";
import { allocTrainState } from "../../src/train/state.js";
import { openSafetensors } from "../../src/io/files.js";
import { expectedIds, FIXTURE_NAMES, FIXTURES } from "../helpers.js";

const CASES = FIXTURE_NAMES.flatMap((f) => BACKENDS.map((b) => [f, b] as const));

describe.each(CASES)("training forward = MobileLLM.forward on %s, %s backend", (fixture, backend) => {
  it("a batch of 2 sequences gives, for each, exactly the logits of MobileLLM.forward", async () => {
    const dir = join(FIXTURES, fixture);
    const model = await loadModel(dir, { backend, dtype: "f32" });
    const c = model.config,
      V = c.vocabSize;
    const ids = expectedIds(fixture, "input_ids");
    const T = ids.length;
    const other = ids.map((id, t) => (id * 7 + t * 3 + 1) % V); // a second, different sequence
    const s = allocTrainState(model.kernels, c, 2, T);
    const file = await openSafetensors(join(dir, "model.safetensors"));
    try {
      await readParams(s.params, file, c);
    } finally {
      file.close();
    }
    s.idsN.set(ids, 0);
    s.idsN.set(other, T);
    trainLogits(s);
    for (const [b, seq] of [
      [0, ids],
      [1, other],
    ] as const) {
      const want = model.forward(seq);
      const got = s.logitsNV.subarray(b * T * V, (b + 1) * T * V);
      let maxDiff = 0;
      for (let i = 0; i < want.length; i++) maxDiff = Math.max(maxDiff, Math.abs(got[i]! - want[i]!));
      expect(maxDiff, `sequence ${b}: largest |training − inference| logit difference`).toBe(0);
    }
  });
});
