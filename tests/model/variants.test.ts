// The model variants of the paper's design study (`mobilellm ablate`): the ReLU feed-forward
// network (ffn_type "relu") and the layer-sharing orders repeat_all and reverse (§2.3), beside the
// separate output embedding and any number of KV heads the base model already has. Each must pass
// the base model's checks: the training forward equals the inference forward (both backends), the
// config round-trips through config.json, a GGUF export unrolls what llama.cpp can express and
// refuses what it cannot, and the Hugging Face export refuses this project's keys.
// (Cached decode = recompute: generate.test.ts; finite differences: train-fd.test.ts, both over
// every variant.)
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ggufFromModel, writeGguf } from "../../src/io/gguf-write.js";
import { loadModel } from "../../src/index.js";
import { BACKENDS, createKernels } from "../../src/kernels/index.js";
import {
  configToJson,
  parameterCount,
  parseConfig,
  type FfnType,
  type LayerSharingOrder,
  type MobileLLMConfig,
} from "../../src/model/config.js";
import { MobileLLM } from "../../src/model/model.js";
import { blockOf } from "../../src/model/state.js";
import { saveCheckpoint } from "../../src/train/checkpoint.js";
import { exportModel } from "../../src/train/export.js";
import { initParams } from "../../src/train/init.js";
import { trainLogits } from "../../src/train/model.js";
import { allocTrainState } from "../../src/train/state.js";
import { allocAdamW } from "../../src/train/adamw.js";
import { Mulberry32 as Rng } from "../../src/util/rng.js";
import { Tokenizer } from "../../src/tokenizer/index.js";
import { cli } from "../cli/cli-helpers.js";
import { defaultNormalizerSpec, defaultTrainerSpec, ModelType, PieceType, type SentencePiece } from "../../src/tokenizer/proto.js";

const dir = mkdtempSync(join(tmpdir(), "mobilellm-variants-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function config(ffnType: FfnType, order: LayerSharingOrder | "none", o: Partial<MobileLLMConfig> = {}): MobileLLMConfig {
  return {
    vocabSize: 37,
    hiddenSize: 13,
    intermediateSize: 19,
    numLayers: 3,
    numHeads: 4,
    numKvHeads: 2,
    headDim: 6,
    maxPositions: 32,
    rmsNormEps: 1e-5,
    ropeTheta: 10000,
    shareEmbedding: true,
    layerSharing: order !== "none",
    ...(ffnType !== "swiglu" ? { ffnType } : {}),
    ...(order !== "none" && order !== "immediate" ? { layerSharingOrder: order } : {}),
    bosTokenId: 1,
    eosTokenId: 2,
    ...o,
  };
}

const VARIANTS: [FfnType, LayerSharingOrder | "none", Partial<MobileLLMConfig>][] = [
  ["relu", "none", {}],
  ["relu", "none", { shareEmbedding: false, numKvHeads: 4 }],
  ["swiglu", "repeat_all", {}],
  ["swiglu", "reverse", { numKvHeads: 1 }],
  ["relu", "immediate", { shareEmbedding: false }],
  ["relu", "reverse", {}],
];

describe("layer-sharing orders (§2.3)", () => {
  it("map the 2·L applications to blocks: immediate 0 0 1 1 2 2, repeat_all 0 1 2 0 1 2, reverse 0 1 2 2 1 0", () => {
    const order = (o: LayerSharingOrder | "none") =>
      Array.from({ length: o === "none" ? 3 : 6 }, (_, a) => blockOf(config("swiglu", o), a));
    expect(order("none")).toEqual([0, 1, 2]);
    expect(order("immediate")).toEqual([0, 0, 1, 1, 2, 2]);
    expect(order("repeat_all")).toEqual([0, 1, 2, 0, 1, 2]);
    expect(order("reverse")).toEqual([0, 1, 2, 2, 1, 0]);
  });
});

describe("config.json keys of the variants", () => {
  it("round-trip, are written only when not the default, and bad values are refused naming the key", () => {
    for (const [f, o, extra] of VARIANTS) {
      const c = config(f, o, extra);
      expect(parseConfig(configToJson(c))).toEqual(c);
    }
    const plain = configToJson(config("swiglu", "immediate"));
    expect(plain.ffn_type).toBeUndefined();
    expect(plain.layer_sharing_order).toBeUndefined();
    expect(configToJson(config("relu", "reverse"))).toMatchObject({ ffn_type: "relu", hidden_act: "relu", layer_sharing_order: "reverse" });
    const json = configToJson(config("swiglu", "none"));
    expect(() => parseConfig({ ...json, ffn_type: "gelu" })).toThrow(/"ffn_type" must be "swiglu" or "relu", got "gelu"/);
    expect(() => parseConfig({ ...json, layer_sharing_order: "reverse" })).toThrow(
      /layer_sharing_order "reverse" needs layer_sharing: true/,
    );
    expect(() => parseConfig({ ...json, hidden_act: "relu" })).toThrow(/hidden_act "relu" is not supported with ffn_type "swiglu"/);
  });

  it("the ReLU network has two matrices: at F' = 1.5·F it has SwiGLU's parameter count", () => {
    const swiglu = config("swiglu", "none", { intermediateSize: 20 });
    expect(parameterCount(config("relu", "none", { intermediateSize: 30 }))).toBe(parameterCount(swiglu));
  });
});

/** A model of config c with the N(0, 0.02²)-style initial weights of training (scaled up so the logits differ). */
async function trainedShape(c: MobileLLMConfig, backend: "ts" | "wasm", B: number, T: number) {
  const k = await createKernels(backend, { threads: 1 });
  const s = allocTrainState(k, c, B, T);
  initParams(s.params, new Rng(5), 0.3);
  const model = new MobileLLM(c, k, s.params.weights, { maxChunk: 4 });
  return { k, s, model };
}

describe.each(BACKENDS)("every variant, %s backend", (backend) => {
  it.each(VARIANTS.map((v, i) => [i, ...v] as const))(
    "#%i %s FFN, sharing %s: training forward = MobileLLM.forward, exactly",
    async (_i, f, o, extra) => {
      // T = 8: the wasm matmul takes rows four at a time, so with T a multiple of 4 each sequence's
      // rows are grouped alike in the batch and alone (as on the fixtures), and the sums are the same bits
      const c = config(f, o, extra),
        B = 2,
        T = 8,
        V = c.vocabSize;
      const { k, s, model } = await trainedShape(c, backend, B, T);
      try {
        for (let i = 0; i < B * T; i++) s.idsN[i] = (i * 11 + 3) % V;
        trainLogits(s);
        for (let b = 0; b < B; b++) {
          const want = model.forward(s.idsN.subarray(b * T, (b + 1) * T));
          const got = s.logitsNV.subarray(b * T * V, (b + 1) * T * V);
          let diff = 0;
          for (let i = 0; i < want.length; i++) diff = Math.max(diff, Math.abs(got[i]! - want[i]!));
          expect(diff, `sequence ${b}: largest |training − inference| logit difference`).toBe(0);
        }
      } finally {
        await k.dispose?.();
      }
    },
  );
});

function tinyTokenizer(V: number): Tokenizer {
  const pieces: SentencePiece[] = [
    { piece: "<unk>", score: 0, type: PieceType.UNKNOWN },
    { piece: "<s>", score: 0, type: PieceType.CONTROL },
    { piece: "</s>", score: 0, type: PieceType.CONTROL },
  ];
  for (let i = 0; pieces.length < V; i++) pieces.push({ piece: `\u2581t${i}`, score: -i, type: PieceType.NORMAL });
  return new Tokenizer(
    {
      pieces,
      trainerSpec: { ...defaultTrainerSpec(), modelType: ModelType.BPE, vocabSize: V },
      normalizerSpec: { ...defaultNormalizerSpec(), name: "identity" },
    },
    "tiny",
  );
}

describe("exports of the variants", () => {
  it("GGUF: repeat_all and reverse are written unrolled in their order (same logits); a ReLU FFN is refused", async () => {
    const ids = [1, 5, 9, 30, 2, 7];
    for (const order of ["repeat_all", "reverse"] as const) {
      const { k, model } = await trainedShape(config("swiglu", order), "ts", 1, 8);
      const { metadata, tensors } = ggufFromModel(model, tinyTokenizer(37));
      const file = join(dir, `${order}.gguf`);
      writeGguf(file, metadata, tensors);
      const back = await loadModel(file, { backend: "ts" });
      expect(back.config.numLayers).toBe(6);
      const a = back.forward(ids),
        b = model.forward(ids);
      expect(Math.max(...a.map((x, i) => Math.abs(x - b[i]!)))).toBe(0);
      await k.dispose?.();
    }
    const { model } = await trainedShape(config("relu", "none"), "ts", 1, 8);
    expect(() => ggufFromModel(model, tinyTokenizer(37))).toThrow(/cannot write this model as GGUF: its ffn_type is "relu".*llama\.cpp/);
  });

  it("Hugging Face folder: refused for ffn_type relu and repeat_all/reverse; the checkpoint itself loads here", async () => {
    for (const [f, o] of [
      ["relu", "none"],
      ["swiglu", "reverse"],
    ] as const) {
      const c = config(f, o);
      const { k, s } = await trainedShape(c, "ts", 1, 8);
      const out = join(dir, `ckpt-${f}-${o}`);
      const ckpt = saveCheckpoint(out, c, s.params, allocAdamW(s.params.layout.total, k), {
        step: 1,
        data: { file: 0, line: 0, epoch: 0 } as never,
        dataCounts: {} as never,
        rng: new Rng(1).getState(),
        tokens: 0,
      });
      await expect(exportModel(ckpt, join(dir, `hf-${f}-${o}`), c)).rejects.toThrow(
        /cannot export .* as a Hugging Face model folder: .*(ffn_type "relu"|layer_sharing_order "reverse")/,
      );
      const loaded = await loadModel(ckpt, { backend: "ts" });
      expect(loaded.config).toEqual(c);
    }
  });

  it("pretrain --export is refused before training when the format cannot hold the model", async () => {
    const file = join(dir, "relu.json");
    writeFileSync(file, JSON.stringify(configToJson(config("relu", "none"))));
    for (const [target, why] of [
      ["out.gguf", /llama\.cpp's llama architecture has no ReLU/],
      ["hf", /ffn_type "relu".*no Hugging Face/],
    ] as const) {
      const r = await cli([
        "pretrain",
        "--config",
        file,
        "--data",
        join(dir, "none"),
        "--out",
        join(dir, "run"),
        "--export",
        join(dir, target),
      ]);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(why);
    }
  });
});
