// Nothing lost, nothing run on garbage: non-finite values are stopped where they enter (load,
// resume, the step that produced them, generation), and a run's state files are validated and
// restored in full by --resume.
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { generate } from "../../src/generate/generate.js";
import { CheckpointError, ConfigError, encodeSafetensors, loadModel, parseConfig, type FileDType } from "../../src/index.js";
import { readSafetensors } from "../io/pytorch-helpers.js";
import { Sampler } from "../../src/generate/sampling.js";
import { allocAdamW } from "../../src/train/adamw.js";
import { latestCheckpoint, NonFiniteError, saveCheckpoint } from "../../src/train/checkpoint.js";
import { createKernels } from "../../src/kernels/index.js";
import type { MobileLLMConfig } from "../../src/model/config.js";
import { exportModel } from "../../src/train/export.js";
import { allocTrainParams } from "../../src/train/params.js";
import { pretrain, RECIPE_DEFAULTS, type Recipe } from "../../src/train/trainer.js";
import { cli } from "../cli/cli-helpers.js";
import { FIXTURES } from "../helpers.js";

const tmp = mkdtempSync(join(tmpdir(), "mobilellm-state-"));
const GQA = join(FIXTURES, "tiny-gqa");

/** Rewrite a safetensors file with `edit` applied to one tensor's f32/u16 values. */
function editTensor(path: string, name: string, edit: (v: Float32Array | Uint16Array) => void): void {
  const parts = [...readSafetensors(path)].map(([tensorName, r]) => {
    const t = { name: tensorName, dtype: r.dtype as FileDType, shape: r.shape };
    const bytes = r.bytes.slice(); // aligned copy
    if (t.name === name) edit(t.dtype === "F32" ? new Float32Array(bytes.buffer) : new Uint16Array(bytes.buffer));
    return { name: t.name, dtype: t.dtype, shape: t.shape, bytes };
  });
  writeFileSync(path, Buffer.concat(encodeSafetensors(parts)));
}

function copyModel(name: string, weights: string): string {
  const dir = join(tmp, name);
  mkdirSync(dir, { recursive: true });
  copyFileSync(join(GQA, "config.json"), join(dir, "config.json"));
  copyFileSync(join(GQA, weights), join(dir, "model.safetensors"));
  return dir;
}

describe("non-finite weights and logits", () => {
  it("loadModel names the tensor holding NaN or Inf (f32 and f16 files, and f32 values that overflow f16)", async () => {
    const nan = copyModel("nan32", "model.safetensors");
    editTensor(join(nan, "model.safetensors"), "model.layers.1.mlp.up_proj.weight", (v) => {
      v[7] = NaN;
    });
    for (const backend of ["ts", "wasm"] as const) {
      const e = await loadModel(nan, { backend }).catch((x: Error) => x);
      expect(e).toBeInstanceOf(CheckpointError);
      expect((e as Error).message).toMatch(
        /tensor "model\.layers\.1\.mlp\.up_proj\.weight" holds a non-finite value \(NaN or Inf\) at element 7/,
      );
    }
    const inf16 = copyModel("inf16", "model.fp16.safetensors");
    editTensor(join(inf16, "model.safetensors"), "model.norm.weight", (v) => {
      v[3] = 0x7c00;
    }); // +Inf in f16
    await expect(loadModel(inf16, { backend: "ts" })).rejects.toThrow(/"model\.norm\.weight" holds a non-finite value .* at element 3/);
    const big = copyModel("big32", "model.safetensors");
    editTensor(join(big, "model.safetensors"), "model.embed_tokens.weight", (v) => {
      v[5] = 1e6;
    });
    await expect(loadModel(big, { backend: "ts", dtype: "f16" })).rejects.toThrow(/element 5 after conversion to f16/);
    expect((await loadModel(big, { backend: "ts" })).config.vocabSize).toBe(512); // finite in f32: fine
  });

  it("sampling refuses NaN/+Inf logits instead of answering token 0 or undefined", () => {
    const logits = new Float32Array([0.5, NaN, 2]);
    expect(() => new Sampler(3, { temperature: 0 }).sample(logits)).toThrow(/logits hold NaN \(token id 1\)/);
    expect(() => new Sampler(3, { temperature: 1, seed: 1 }).sample(logits)).toThrow(/logits hold NaN/);
    expect(() => new Sampler(3, { temperature: 1, seed: 1 }).sample(new Float32Array([Infinity, 0, 0]))).toThrow(/logits hold Infinity/);
    expect(() => new Sampler(3, { temperature: 1, seed: 1 }).sample(new Float32Array(3).fill(-Infinity))).toThrow(
      /every token's logit is -Infinity/,
    );
    expect(() => new Sampler(3, { temperature: 0 }).sample(new Float32Array(3).fill(-Infinity))).toThrow(
      /every token's logit is -Infinity/,
    );
    expect(() => new Sampler(2, { temperature: 1e-300, seed: 1 }).sample(new Float32Array([1, 2]))).toThrow(/softmax overflows/);
    expect(new Sampler(3, { temperature: 1, seed: 1 }).sample(new Float32Array([-Infinity, 0, -Infinity]))).toBe(1);
  });

  it('a generation whose model produces NaN rejects naming the step; stop: [""] is refused at creation', async () => {
    const model = await loadModel(GQA, { backend: "ts" });
    expect(() => generate(model, [1, 5], { stop: [""] })).toThrow(/stop strings must be non-empty/);
    model.weights.finalNormD[0] = NaN;
    const gen = generate(model, [1, 5], { maxNewTokens: 3 });
    const steps: number[] = [];
    await expect(
      (async () => {
        for await (const s of gen) steps.push(s.id);
      })(),
    ).rejects.toThrow(/generation step 1 \(position 2\): the logits hold NaN/);
    await expect(gen.result).rejects.toThrow(/generation step 1/);
    expect(steps).toEqual([]);
  });
});

describe("config token ids are validated", () => {
  const base = JSON.parse(readFileSync(join(GQA, "config.json"), "utf8")) as Record<string, unknown>;
  it.each([
    ["bos_token_id", 1.5],
    ["eos_token_id", -1],
    ["bos_token_id", "1"],
    ["eos_token_id", [2, 3]],
    ["eos_token_id", 512],
  ])("%s = %j", (key, value) => {
    expect(() => parseConfig({ ...base, [key]: value }, "x/config.json")).toThrow(ConfigError);
    expect(() => parseConfig({ ...base, [key]: value }, "x/config.json")).toThrow(/^x\/config\.json: .*(bos_token_id|eos_token_id)/);
  });
  it("null or absent ids take the defaults", () => {
    expect(parseConfig({ ...base, bos_token_id: null, eos_token_id: undefined }).bosTokenId).toBe(1);
  });
});

const V = 48;
const config: MobileLLMConfig = {
  vocabSize: V,
  hiddenSize: 16,
  intermediateSize: 32,
  numLayers: 1,
  numHeads: 2,
  numKvHeads: 1,
  headDim: 8,
  maxPositions: 32,
  rmsNormEps: 1e-5,
  ropeTheta: 10000,
  shareEmbedding: true,
  layerSharing: false,
  bosTokenId: 1,
  eosTokenId: 2,
};
const recipe: Recipe = { ...RECIPE_DEFAULTS, steps: 6, batchSize: 2, seqLen: 8, lr: 1e-2, warmup: 1, seed: 1 };

function writeData(base: string, lines: number, T: number): string {
  mkdirSync(join(base, "1"), { recursive: true });
  const rows = Array.from({ length: lines }, (_, i) =>
    JSON.stringify({ token_ids: Array.from({ length: T }, (_, t) => 3 + ((i * 5 + t * 3) % (V - 3))) }),
  );
  writeFileSync(join(base, "1", "data.jsonl"), rows.join("\n") + "\n");
  return base;
}
const data = writeData(join(tmp, "data"), 40, 9); // lines of seqLen + 1 ids: 8 predictions each

describe("training state", () => {
  it("a diverging step stops with its number; the last good checkpoint stays; a NaN checkpoint is never saved", async () => {
    const out = join(tmp, "diverge");
    const err = await pretrain({ config, recipe: { ...recipe, lr: 1e30, warmup: 0 }, data, out, saveEvery: 1 }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(NonFiniteError);
    const step = Number(/^step (\d+): the loss is/.exec((err as Error).message)?.[1]);
    expect(step).toBeGreaterThan(1);
    expect((err as Error).message).toContain(`the last good checkpoint is ${join(out, `checkpoint-${step - 1}`)}`);
    expect(latestCheckpoint(out)).toBe(join(out, `checkpoint-${step - 1}`));

    // saveCheckpoint itself refuses non-finite weights or moments, naming the tensor
    const k = await createKernels("ts");
    const params = allocTrainParams(k, config);
    const opt = allocAdamW(params.layout.total);
    const state = {
      step: 99,
      data: { file: 0, byte: 0, line: 0, pass: 0 },
      dataCounts: { sequences: 0, malformed: 0 },
      rng: [1],
      tokens: 0,
    };
    opt.v[params.layout.byName.get("model.norm.weight")!.offset] = Infinity;
    expect(() => saveCheckpoint(out, config, params, opt, state)).toThrow(
      /step 99: not saved .*exp_avg_sq\) of "model\.norm\.weight" holds a non-finite value/,
    );
    expect(latestCheckpoint(out)).toBe(join(out, `checkpoint-${step - 1}`));
    expect(readdirSync(out).filter((f) => f.includes("99"))).toEqual([]);
  });

  it("resume refuses a checkpoint holding NaN, and corrupt trainer_state.json / run.json fields, naming file and field", async () => {
    const out = join(tmp, "corrupt");
    await pretrain({ config, recipe: { ...recipe, steps: 2 }, data, out, saveEvery: 1 });
    const ckpt = join(out, "checkpoint-2");
    const again = () => pretrain({ config, recipe: { ...recipe, steps: 4 }, data, out, resume: true });
    const stateFile = join(ckpt, "trainer_state.json");
    const good = readFileSync(stateFile, "utf8");
    for (const [edit, field] of [
      [
        (s: any) => {
          s.step = "2";
        },
        "step",
      ],
      [
        (s: any) => {
          s.data.byte = -1;
        },
        "data.byte",
      ],
      [
        (s: any) => {
          s.rng = [1, 2, 3];
        },
        "rng",
      ],
      [
        (s: any) => {
          s.dataCounts.malformed = 0.5;
        },
        "dataCounts.malformed",
      ],
      [
        (s: any) => {
          delete s.tokens;
        },
        "tokens",
      ],
    ] as const) {
      const s = JSON.parse(good);
      edit(s);
      writeFileSync(stateFile, JSON.stringify(s));
      await expect(again()).rejects.toThrow(
        new RegExp(`trainer_state\\.json: field "${field.replace(".", "\\.")}" is .*the file is corrupt`),
      );
    }
    writeFileSync(stateFile, "{");
    await expect(again()).rejects.toThrow(/trainer_state\.json: the trainer state is not valid JSON/);
    writeFileSync(stateFile, good);

    const runFile = join(out, "run.json");
    const run = readFileSync(runFile, "utf8");
    writeFileSync(runFile, run.replace(/"lr": [^,]+,/, `"lr": "fast",`));
    await expect(again()).rejects.toThrow(/run\.json: field "recipe\.lr" is "fast", expected a finite number/);
    writeFileSync(runFile, run);

    const opt = join(ckpt, "optimizer.safetensors");
    const optGood = readFileSync(opt);
    editTensor(opt, "exp_avg", (v) => {
      v[3] = NaN;
    });
    await expect(again()).rejects.toThrow(
      /checkpoint-2: Adam first moment \(exp_avg\) of "model\.embed_tokens\.weight" holds a non-finite value .* at element 3/,
    );
    writeFileSync(opt, optGood);
    editTensor(join(ckpt, "model.safetensors"), "model.layers.0.self_attn.k_proj.weight", (v) => {
      v[0] = Infinity;
    });
    await expect(again()).rejects.toThrow(/holds a non-finite value/);
  });

  it("--resume on emptied or shortened data stops with a clear error instead of spinning", async () => {
    for (const [name, text] of [
      ["empty", ""],
      ["short", JSON.stringify({ token_ids: [1, 2, 3] }) + "\n"],
    ] as const) {
      const d = writeData(join(tmp, `data-${name}`), 40, 9);
      const out = join(tmp, `changed-${name}`);
      await pretrain({ config, recipe: { ...recipe, steps: 3 }, data: d, out, saveEvery: 1 });
      writeFileSync(join(d, "1", "data.jsonl"), text.repeat(5));
      await expect(pretrain({ config, recipe: { ...recipe, steps: 5 }, data: d, out, resume: true })).rejects.toThrow(
        name === "empty"
          ? /a whole pass over the \.jsonl files .* found no usable line of token ids/
          : /the lines hold 3 token ids \(2 predictions\), but the sequence length asked for is 8/,
      );
    }
  });

  it("--resume restores --tokenizer, --save-every and --eval-data; leftovers of a killed save are cleaned up; --out may not be a file", async () => {
    const tok = join(tmp, "tok.model");
    copyFileSync(join(FIXTURES, "tokenizer", "nofallback-bpe300.model"), tok);
    writeFileSync(
      join(tmp, "cfg.json"),
      JSON.stringify({
        ...JSON.parse(readFileSync(join(GQA, "config.json"), "utf8")),
        vocab_size: V,
        hidden_size: 16,
        intermediate_size: 32,
        num_hidden_layers: 1,
        num_attention_heads: 2,
        num_key_value_heads: 1,
        head_dim: 8,
        max_position_embeddings: 32,
      }),
    );
    const out = join(tmp, "cli-run");
    const common = ["pretrain", "--out", out, "--batch-size", "2", "--seq-len", "8", "--backend", "ts"];
    const first = await cli([
      ...common,
      "--config",
      join(tmp, "cfg.json"),
      "--data",
      data,
      "--steps",
      "2",
      "--save-every",
      "2",
      "--tokenizer",
      tok,
      "--eval-data",
      data,
      "--eval-sequences",
      "2",
    ]);
    expect(first.code).toBe(0);
    // what a save killed midway leaves behind
    mkdirSync(join(out, ".tmp-checkpoint-3-99999"));
    writeFileSync(join(out, "latest.tmp-99999"), "checkpoint-3\n");
    writeFileSync(join(out, "loss.jsonl.tmp-99999"), "");
    const res = await cli(["pretrain", "--out", out, "--resume", "--steps", "5"]);
    expect(res.code).toBe(0);
    expect(readdirSync(out).filter((f) => f.includes("tmp"))).toEqual([]);
    expect(latestCheckpoint(out)).toBe(join(out, "checkpoint-5"));
    expect(existsSync(join(out, "checkpoint-5", "tokenizer.model"))).toBe(true);
    const log = readFileSync(join(out, "loss.jsonl"), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { step: number; val_loss?: number });
    expect(log.map((r) => r.step)).toEqual([1, 2, 3, 4, 5]);
    expect(log.filter((r) => r.val_loss !== undefined).map((r) => r.step)).toEqual([2, 4, 5]); // every 2 steps and at the end

    writeFileSync(join(tmp, "a-file"), "x");
    const bad = await cli([...common, "--config", join(tmp, "cfg.json"), "--data", data, "--out", join(tmp, "a-file")]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--out .*a-file: is a file/);
    await expect(
      cli([
        "prepare",
        "--tokenizer",
        join(FIXTURES, "..", "..", "models", "shakespeare-2m"),
        "--input",
        join(tmp, "cfg.json"),
        "--out",
        join(tmp, "a-file"),
        "--seq-len",
        "8",
      ]),
    ).rejects.toThrow(/a-file: is a file; --out names the data folder/);
    await expect(
      exportModel(join(out, "checkpoint-5"), join(tmp, "a-file"), parseConfig(JSON.parse(readFileSync(join(tmp, "cfg.json"), "utf8")))),
    ).rejects.toThrow(/a-file: is a file; the export goes into a model folder/);
  });
});
