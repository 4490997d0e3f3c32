// The paper's design study (MobileLLM §2.2–2.3) at micro scale: which configurations each study
// compares, built at an equal parameter budget. Pure functions: no files, no training (run.ts
// trains, report.ts writes the report).
//
// Every study compares variants of one base shape (a small MobileLLM: SwiGLU, deep and thin,
// shared embedding, grouped-query attention, no layer sharing). A variant that changes the
// parameter count (a wider FFN, a separate output embedding, more KV heads, fewer layers) gets its
// width or FFN size re-solved so that its parameter count stays within 2% of the base's: the
// question each study asks is "at the same size, which design is better?".

import { parameterCount, type MobileLLMConfig } from "../model/config.js";

/** The budgets of `mobilellm ablate --budget`: model size, tokens and seeds. */
export interface Budget {
  name: "tiny" | "small" | "medium";
  /** What it is for (printed and written in the report). */
  purpose: string;
  /** Base shape: L layers, D hidden, H heads, KV kv-heads, F SwiGLU size. */
  base: { L: number; D: number; H: number; KV: number; F: number };
  /** Vocabulary of the BPE tokenizer trained for the default data (a --data folder brings its own). */
  vocabSize: number;
  /** Next-token predictions per sequence (data lines of seqLen + 1 ids). */
  seqLen: number;
  batchSize: number;
  /** Optimizer steps of every run (same data, tokens and schedule for all). */
  steps: number;
  warmup: number;
  lr: number;
  /** One run per configuration and seed (the seed sets the initial weights). */
  seeds: number[];
  /** Validation loss on a slice of the held-out split this often (steps) while training, for the curves. */
  evalEvery: number;
  /** Sequences of that slice (the final numbers use the whole held-out split). */
  evalSequences: number;
}

export const BUDGETS: Record<Budget["name"], Budget> = {
  tiny: {
    name: "tiny",
    purpose: "trying it: one seed, a few minutes on a quiet 2-core machine (about 15 under load)",
    base: { L: 6, D: 32, H: 4, KV: 2, F: 88 },
    vocabSize: 384,
    seqLen: 64,
    batchSize: 8,
    steps: 800,
    warmup: 80,
    lr: 3e-3,
    seeds: [0],
    evalEvery: 200,
    evalSequences: 64,
  },
  small: {
    name: "small",
    purpose: "the published report (docs/ablations/): 3 seeds, about 25 minutes of one core's time (longer on a shared machine)",
    base: { L: 8, D: 48, H: 4, KV: 2, F: 128 },
    vocabSize: 512,
    seqLen: 64,
    batchSize: 8,
    steps: 600,
    warmup: 60,
    lr: 3e-3,
    seeds: [0, 1, 2],
    evalEvery: 200,
    evalSequences: 64,
  },
  medium: {
    name: "medium",
    purpose: "bigger machines: 3 seeds, a 1.3M-parameter base and 16x the tokens of small",
    base: { L: 12, D: 96, H: 6, KV: 2, F: 256 },
    vocabSize: 1024,
    seqLen: 128,
    batchSize: 16,
    steps: 2400,
    warmup: 200,
    lr: 2e-3,
    seeds: [0, 1, 2],
    evalEvery: 400,
    evalSequences: 128,
  },
};

/** One configuration a study trains. `key` names it across studies (the base is trained once). */
export interface Variant {
  key: string;
  /** Short label for tables and charts. */
  label: string;
  config: MobileLLMConfig;
}

export interface Study {
  name: "ffn" | "depth" | "embedding" | "gqa" | "layer-sharing";
  title: string;
  /** Where the paper makes the claim (sections only: no figure or table number we have not checked). */
  paperRef: string;
  /** The paper's claim, in one sentence. */
  claim: string;
  /** The variant the paper finds best. */
  expectedBest: string;
  /** The compared variants, the paper's choice first. */
  variants: Variant[];
}

export const STUDY_NAMES: Study["name"][] = ["ffn", "depth", "embedding", "gqa", "layer-sharing"];

/** How far each variant may be from the budget (the base's parameter count). */
export const PARAM_TOLERANCE = 0.02;

interface Shape {
  L: number;
  D: number;
  H: number;
  KV: number;
  F: number;
}

function makeConfig(s: Shape, V: number, o: Partial<MobileLLMConfig> = {}): MobileLLMConfig {
  return {
    vocabSize: V,
    hiddenSize: s.D,
    intermediateSize: s.F,
    numLayers: s.L,
    numHeads: s.H,
    numKvHeads: s.KV,
    headDim: s.D / s.H,
    maxPositions: 2048,
    rmsNormEps: 1e-5,
    ropeTheta: 10000,
    shareEmbedding: true,
    layerSharing: false,
    bosTokenId: 1,
    eosTokenId: 2,
    ...o,
  };
}

/** The FFN size that brings `c` (all else fixed) closest to `budget` parameters (at least 1). */
function solveF(c: MobileLLMConfig, budget: number): MobileLLMConfig {
  const perF = parameterCount({ ...c, intermediateSize: 2 }) - parameterCount({ ...c, intermediateSize: 1 });
  const F = Math.max(1, Math.round(c.intermediateSize + (budget - parameterCount(c)) / perF));
  return { ...c, intermediateSize: F };
}

/**
 * A width D (a multiple of 2·H, so the head size is even for RoPE) and the FFN size solved for the
 * budget, keeping F/D nearest the base's ratio: the "same model, made wider or narrower" at L layers.
 */
function solveWidth(c: MobileLLMConfig, budget: number, ratio: number): MobileLLMConfig {
  const H = c.numHeads;
  let best: MobileLLMConfig | undefined,
    bestErr = Infinity;
  for (let D = 2 * H; D <= 4096; D += 2 * H) {
    const x = solveF({ ...c, hiddenSize: D, headDim: D / H, intermediateSize: Math.max(1, Math.round(ratio * D)) }, budget);
    if (Math.abs(parameterCount(x) - budget) > PARAM_TOLERANCE * budget) continue;
    const err = Math.abs(Math.log(x.intermediateSize / D / ratio));
    if (err < bestErr) {
      best = x;
      bestErr = err;
    }
  }
  if (!best) throw new Error(`no width puts a ${c.numLayers}-layer model within ${PARAM_TOLERANCE * 100}% of ${budget} parameters`);
  return best;
}

/** The five studies for a budget's base shape and a vocabulary size. */
export function buildStudies(budget: Budget, vocabSize: number): Study[] {
  const b = budget.base,
    V = vocabSize;
  const base = makeConfig(b, V);
  const P = parameterCount(base);
  const ratio = b.F / b.D;
  const baseVariant = (label: string): Variant => ({ key: "base", label, config: base });
  const perLayer = parameterCount(base) - parameterCount({ ...base, numLayers: base.numLayers - 1 });

  // (2) wide and shallow: a quarter of the layers (at least 2), the width solved for the budget
  const shallowL = Math.max(2, Math.round(b.L / 4));
  const wide = solveWidth({ ...base, numLayers: shallowL }, P, ratio);
  // (3) a separate output embedding costs V·D: paid for with the layers it displaces (the paper's
  // 125M model spent the saved 11.8% on two more layers), FFN size re-solved for the remainder
  const separateL = Math.max(1, b.L - Math.round((V * b.D) / perLayer));
  const separate = solveF({ ...base, shareEmbedding: false, numLayers: separateL }, P);
  // (4) multi-head attention (KV = H) instead of GQA: the extra key/value projections are paid
  // for with width (the paper spent GQA's savings on a larger embedding dimension)
  const mha = solveWidth({ ...base, numKvHeads: b.H }, P, ratio);
  // (1) a ReLU FFN has two matrices: 1.5x the inner size for the same parameters
  const relu = solveF({ ...base, ffnType: "relu", intermediateSize: Math.round(1.5 * b.F) }, P);
  const shared = (order: "immediate" | "repeat_all" | "reverse"): MobileLLMConfig =>
    order === "immediate" ? { ...base, layerSharing: true } : { ...base, layerSharing: true, layerSharingOrder: order };

  return [
    {
      name: "ffn",
      title: "SwiGLU vs vanilla ReLU feed-forward network",
      paperRef: "§2.2.1",
      claim: "SwiGLU improves a 125M model over the vanilla ReLU FFN (about +1.3 points of average zero-shot accuracy).",
      expectedBest: "swiglu",
      variants: [baseVariant("swiglu"), { key: "relu-ffn", label: "relu", config: relu }],
    },
    {
      name: "depth",
      title: "Deep and thin vs wide and shallow at equal parameters",
      paperRef: "§2.2.2",
      claim: "For sub-billion models depth matters more than width: at the same size a deeper, thinner model is more accurate.",
      expectedBest: "deep-thin",
      variants: [baseVariant("deep-thin"), { key: "wide-shallow", label: "wide-shallow", config: wide }],
    },
    {
      name: "embedding",
      title: "Shared input/output embedding, saved parameters spent on depth, vs separate",
      paperRef: "§2.2.3",
      claim:
        "Sharing the embedding saves 11.8% of a 125M model for a 0.2-point accuracy loss; spending the savings on more layers more than recovers it.",
      expectedBest: "shared+depth",
      variants: [baseVariant("shared+depth"), { key: "separate-embedding", label: "separate", config: separate }],
    },
    {
      name: "gqa",
      title: "Grouped-query attention (fewer KV heads, savings spent on width) vs multi-head attention",
      paperRef: "§2.2.4",
      claim:
        "Fewer key/value heads than query heads costs little, and the parameters saved buy more width: GQA at equal size is better than MHA.",
      expectedBest: "gqa",
      variants: [baseVariant("gqa"), { key: "mha", label: "mha", config: mha }],
    },
    {
      name: "layer-sharing",
      title: "Layer sharing: none vs immediate vs repeat-all vs reverse",
      paperRef: "§2.3",
      claim: "Sharing blocks adds depth at no parameter cost; of the three orders, immediate block-wise sharing is the most accurate.",
      expectedBest: "immediate",
      variants: [
        { key: "share-immediate", label: "immediate", config: shared("immediate") },
        { key: "share-repeat_all", label: "repeat_all", config: shared("repeat_all") },
        { key: "share-reverse", label: "reverse", config: shared("reverse") },
        baseVariant("none"),
      ],
    },
  ];
}

/** The budget's parameter count and each variant's relative difference from it; throws if one is off by more than 2%. */
export function checkEqualParams(study: Study, budgetParams: number): { key: string; params: number; diff: number }[] {
  return study.variants.map((v) => {
    const params = parameterCount(v.config),
      diff = params / budgetParams - 1;
    if (Math.abs(diff) > PARAM_TOLERANCE) {
      throw new Error(
        `study ${study.name}: ${v.label} has ${params} parameters, ${(diff * 100).toFixed(2)}% from the budget ${budgetParams} (limit ±${PARAM_TOLERANCE * 100}%)`,
      );
    }
    return { key: v.key, params, diff };
  });
}

/** One line describing a configuration: layers (and applications), width, heads, KV heads, FFN, parameters. */
export function describeConfig(c: MobileLLMConfig): string {
  const sharing = c.layerSharing ? ` x2 (${c.layerSharingOrder ?? "immediate"})` : "";
  return (
    `L ${c.numLayers}${sharing}, D ${c.hiddenSize}, H ${c.numHeads}, KV ${c.numKvHeads}, ` +
    `FFN ${c.ffnType ?? "swiglu"} ${c.intermediateSize}, embedding ${c.shareEmbedding ? "shared" : "separate"}, ` +
    `${parameterCount(c).toLocaleString("en-US")} parameters`
  );
}
