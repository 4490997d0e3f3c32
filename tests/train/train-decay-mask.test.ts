// The Hugging Face Trainer's weight-decay groups (no decay on RMSNorm weights) against PyTorch:
// tests/fixtures/adamw-mask/expected.safetensors holds two torch.optim.AdamW steps on the tiny-gqa
// weights with its reference gradients, parameter groups built as Trainer.create_optimizer does
// (made by scripts/adamw-mask-fixture.py with Debian's python3-torch; the first 256 elements of
// each tensor are kept). Both kernel backends run the same update.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { openSafetensors } from "../../src/io/files.js";
import { BACKENDS, createKernels } from "../../src/kernels/index.js";
import { parseConfig } from "../../src/model/config.js";
import { adamwStep, allocAdamW, decayGroups, ADAMW_DEFAULTS, type ParamGroup } from "../../src/train/adamw.js";
import { allocTrainParams, paramLayout, readParams } from "../../src/train/params.js";
import { expected, FIXTURES, readTensor } from "../helpers.js";

const DIR = join(FIXTURES, "tiny-gqa");
const REF = join(FIXTURES, "adamw-mask", "expected.safetensors");
const config = parseConfig(JSON.parse(readFileSync(join(DIR, "config.json"), "utf8")));
const O = { ...ADAMW_DEFAULTS, lr: 1e-2, weightDecay: 0.1 }; // the generator's settings (see its metadata)

describe("AdamW parameter groups of the Hugging Face Trainer", () => {
  it("the fixture was made with the settings this test uses", () => {
    const bytes = readFileSync(REF);
    const header = JSON.parse(bytes.subarray(8, 8 + Number(bytes.readBigUInt64LE(0))).toString("utf8"));
    expect(header.__metadata__).toMatchObject({ lr: "0.01", eps: "1e-08", weight_decay: "0.1", steps: "2", betas: "[0.9, 0.95]" });
  });

  it("decay everything except the RMSNorm weights (input_layernorm, post_attention_layernorm, model.norm)", () => {
    const layout = paramLayout(config);
    const noDecay = layout.tensors.filter((t) =>
      decayGroups(layout).some((g) => !g.decay && t.offset >= g.offset && t.offset < g.offset + g.size),
    );
    expect(noDecay.map((t) => t.name)).toEqual(layout.tensors.filter((t) => t.shape.length === 1).map((t) => t.name));
    expect(noDecay.map((t) => t.name)).toContain("model.norm.weight");
    expect(noDecay.some((t) => t.name.includes("embed_tokens"))).toBe(false);
  });

  describe.each(BACKENDS)("%s backend", (backend) => {
    async function twoSteps(groups: (l: ReturnType<typeof paramLayout>) => ParamGroup[]) {
      const k = await createKernels(backend);
      const p = allocTrainParams(k, config);
      const file = await openSafetensors(join(DIR, "model.safetensors"));
      try {
        await readParams(p, file, config);
      } finally {
        file.close();
      }
      for (const t of p.layout.tensors) p.gradFlat.set(expected("tiny-gqa", `grad.${t.name}`), t.offset);
      const opt = allocAdamW(p.layout.total, k);
      for (let i = 0; i < 2; i++) adamwStep(p.flat, p.gradFlat, opt, O, O.lr, groups(p.layout), k);
      return p;
    }

    it("two steps match torch.optim.AdamW with the Trainer's groups (|diff| <= 1e-6 + 1e-6·|w|)", async () => {
      const p = await twoSteps(decayGroups);
      for (const t of p.layout.tensors) {
        const want = readTensor(REF, `adamw.${t.name}`) as Float32Array;
        const got = p.flat.subarray(t.offset, t.offset + want.length);
        let worst = 0;
        for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i]! - want[i]!) / (1e-6 + 1e-6 * Math.abs(want[i]!)));
        expect(worst, `${t.name}: worst |diff| / tolerance`).toBeLessThanOrEqual(1);
      }
    });

    it("decaying every tensor instead misses the reference on the norm weights (the mask matters)", async () => {
      const p = await twoSteps((l) => [{ offset: 0, size: l.total, decay: true }]);
      const t = p.layout.byName.get("model.norm.weight")!;
      const want = readTensor(REF, "adamw.model.norm.weight") as Float32Array;
      let maxDiff = 0;
      for (let i = 0; i < want.length; i++) maxDiff = Math.max(maxDiff, Math.abs(p.flat[t.offset + i]! - want[i]!));
      expect(maxDiff).toBeGreaterThan(1e-4);
    });
  });
});
