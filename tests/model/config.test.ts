import { describe, expect, it } from "vitest";
import { ConfigError, configToJson, parameterCount, parseConfig, presetName, PRESETS } from "../../src/index.js";

// Published sizes (MobileLLM paper and model cards). Figures given in millions are checked to 0.1M;
// figures given in billions (two decimals) to 0.01B, the precision they are published with.
const published: [string, number, number][] = [
  ["125M", 124.6e6, 0.1e6],
  ["350M", 345.3e6, 0.1e6],
  ["600M", 603.1e6, 0.1e6],
  ["1B", 1.01e9, 0.01e9],
  ["1.5B", 1.51e9, 0.01e9],
];

describe("presets", () => {
  it.each(published)("%s has the published parameter count", (name, count, tol) => {
    expect(Math.abs(parameterCount(PRESETS[name]!) - count)).toBeLessThanOrEqual(tol);
  });

  it("layer sharing adds no parameters; an unshared head adds V·D", () => {
    const c = PRESETS["125M"]!;
    expect(parameterCount(PRESETS["125M-LS"]!)).toBe(parameterCount(c));
    expect(parameterCount({ ...c, shareEmbedding: false })).toBe(parameterCount(c) + 32000 * 576);
    expect(parameterCount(c)).toBe(124_635_456);
  });

  it("architectures match the paper's table", () => {
    const arch = (n: string) => {
      const c = PRESETS[n]!;
      return [c.numLayers, c.numHeads, c.numKvHeads, c.hiddenSize];
    };
    expect(arch("125M")).toEqual([30, 9, 3, 576]);
    expect(arch("350M")).toEqual([32, 15, 5, 960]);
    expect(arch("600M")).toEqual([40, 18, 6, 1152]);
    expect(arch("1B")).toEqual([54, 20, 5, 1280]);
    expect(arch("1.5B")).toEqual([54, 25, 5, 1600]);
  });

  it("presetName recognises a config, and configToJson round-trips through parseConfig", () => {
    for (const name of Object.keys(PRESETS)) {
      const back = parseConfig(configToJson(PRESETS[name]!));
      expect(back).toEqual(PRESETS[name]);
      expect(presetName(back)).toBe(name);
    }
  });
});

// The Hugging Face release config of MobileLLM-125M (keys as published).
const hfConfig = {
  architectures: ["MobileLLMForCausalLM"],
  attention_bias: false,
  attention_dropout: 0.0,
  auto_map: { AutoConfig: "configuration_mobilellm.MobileLLMConfig", AutoModelForCausalLM: "modeling_mobilellm.MobileLLMForCausalLM" },
  bos_token_id: 1,
  eos_token_id: 2,
  head_dim: 64,
  hidden_act: "silu",
  hidden_size: 576,
  initializer_range: 0.02,
  intermediate_size: 1536,
  layer_sharing: false,
  max_position_embeddings: 2048,
  mlp_bias: false,
  model_type: "mobilellm",
  num_attention_heads: 9,
  num_hidden_layers: 30,
  num_key_value_heads: 3,
  pretraining_tp: 1,
  rms_norm_eps: 1e-5,
  rope_scaling: null,
  rope_theta: 10000.0,
  share_embedding: true,
  tie_word_embeddings: false,
  torch_dtype: "float16",
  transformers_version: "4.41.2",
  use_cache: true,
  vocab_size: 32000,
};

// The GitHub training repo's Llama-style config (no share_embedding, no head_dim).
const llamaConfig = {
  architectures: ["LlamaForCausalLM"],
  bos_token_id: 1,
  eos_token_id: 2,
  hidden_act: "silu",
  hidden_size: 576,
  initializer_range: 0.02,
  intermediate_size: 1536,
  max_position_embeddings: 2048,
  model_type: "llama",
  num_attention_heads: 9,
  num_hidden_layers: 30,
  num_key_value_heads: 3,
  pretraining_tp: 1,
  rms_norm_eps: 1e-5,
  rope_scaling: null,
  tie_word_embeddings: false,
  torch_dtype: "float16",
  transformers_version: "4.31.0",
  use_cache: true,
  vocab_size: 32000,
};

describe("parseConfig", () => {
  it("reads the Hugging Face release form", () => {
    expect(parseConfig(hfConfig)).toEqual(PRESETS["125M"]);
  });

  it("reads the training repo's Llama form, sharing the embedding by default", () => {
    expect(parseConfig(llamaConfig)).toEqual(PRESETS["125M"]);
    expect(parseConfig({ ...llamaConfig, layer_sharing: true })).toEqual(PRESETS["125M-LS"]);
  });

  const bad: [string, Record<string, unknown>, RegExp][] = [
    ["heads not dividing hidden size", { ...llamaConfig, num_attention_heads: 7 }, /does not divide hidden_size/],
    ["kv heads not dividing heads", { ...hfConfig, num_key_value_heads: 2 }, /must divide num_attention_heads/],
    ["a missing size", { ...hfConfig, hidden_size: undefined }, /"hidden_size" must be a positive integer/],
    ["a negative size", { ...hfConfig, num_hidden_layers: -1 }, /"num_hidden_layers" must be a positive integer/],
    ["a string where a number belongs", { ...hfConfig, vocab_size: "32000" }, /"vocab_size"/],
    ["another model type", { ...hfConfig, model_type: "gpt2" }, /model_type is "gpt2"/],
    ["an unknown key", { ...hfConfig, sliding_window: 4096 }, /unknown key "sliding_window"/],
    ["rope scaling", { ...hfConfig, rope_scaling: { type: "linear", factor: 2 } }, /rope_scaling is not supported/],
    ["biases", { ...hfConfig, attention_bias: true }, /attention_bias/],
    ["another activation", { ...hfConfig, hidden_act: "gelu" }, /hidden_act/],
    ["share_embedding not a boolean", { ...hfConfig, share_embedding: "yes" }, /"share_embedding" must be true or false/],
    ["an odd head_dim", { ...hfConfig, head_dim: 63 }, /head_dim \(63\) must be even/],
    ["bos outside the vocabulary", { ...hfConfig, bos_token_id: 40000 }, /outside vocab_size/],
  ];
  it.each(bad)("rejects %s with a message naming the file", (_what, json, message) => {
    expect(() => parseConfig(json, "some/dir/config.json")).toThrowError(message);
    expect(() => parseConfig(json, "some/dir/config.json")).toThrowError(/^some\/dir\/config\.json: /);
    expect(() => parseConfig(json, "some/dir/config.json")).toThrowError(ConfigError);
  });

  it("rejects a non-object", () => {
    expect(() => parseConfig([1, 2], "c.json")).toThrowError(/c\.json: expected a JSON object/);
  });

  it("with strict: false, an unknown key is a warning, not an error", () => {
    const warnings: string[] = [];
    expect(parseConfig({ ...hfConfig, sliding_window: 4096 }, "c.json", { strict: false, warn: (m) => warnings.push(m) })).toEqual(
      PRESETS["125M"],
    );
    expect(warnings).toEqual([expect.stringMatching(/c\.json: unknown key "sliding_window"/)]);
  });
});
