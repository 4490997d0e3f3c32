// KV-cache generation against the PyTorch reference: greedy continuations of the fixtures, and
// cached decode logits equal to a full re-run (model.forward over the whole sequence), on every
// backend this build has; then the same equality on random shapes (fast-check).
import { join } from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { generate } from "../../src/generate/generate.js";
import { loadModel } from "../../src/load.js";
import type { MobileLLM } from "../../src/model/model.js";
import { availableBackends, randomModel, tinyConfig } from "./generate-helpers.js";
import { expectedIds, FIXTURE_NAMES, FIXTURES, maxAbsDiff } from "../helpers.js";

const backends = await availableBackends();

/** Largest difference between the cached logits of prefill + one decode step per id and forward(all). */
function cacheVsFull(model: MobileLLM, promptIds: number[], newIds: number[]): number {
  const V = model.config.vocabSize,
    all = [...promptIds, ...newIds];
  const full = model.forward(all);
  model.reset();
  const P = promptIds.length;
  let worst = maxAbsDiff(model.feed(promptIds), full.subarray((P - 1) * V, P * V));
  for (let i = 0; i < newIds.length; i++) {
    const row = P + i;
    worst = Math.max(worst, maxAbsDiff(model.feed([newIds[i]!]), full.subarray(row * V, (row + 1) * V)));
  }
  return worst;
}

describe.each(backends)("generation with the KV cache (%s backend)", (backend) => {
  describe.each(FIXTURE_NAMES)("%s", (fixture) => {
    const promptIds = expectedIds(fixture, "input_ids");
    const greedyIds = expectedIds(fixture, "greedy_ids");

    it("greedy generation reproduces the reference greedy_ids", async () => {
      const model = await loadModel(join(FIXTURES, fixture), { backend });
      const gen = generate(model, promptIds, { maxNewTokens: greedyIds.length, temperature: 0, eosTokenId: null });
      const stepIds: number[] = [];
      for await (const step of gen) stepIds.push(step.id);
      const result = await gen.result;
      expect(stepIds).toEqual(greedyIds);
      expect(result.ids).toEqual(greedyIds);
      expect(result).toMatchObject({ promptTokens: promptIds.length, generatedTokens: greedyIds.length, stopReason: "length", text: "" });
      expect(model.cache.length).toBe(promptIds.length + greedyIds.length - 1); // the last id is never fed
    });

    it("cached logits at every step equal a full re-run within 1e-4", async () => {
      const model = await loadModel(join(FIXTURES, fixture), { backend, maxChunk: 7 });
      expect(cacheVsFull(model, promptIds, greedyIds)).toBeLessThan(1e-4);
    });
  });

  it("a prompt plus maxNewTokens beyond the context fails before any work", async () => {
    const model = await randomModel(tinyConfig({ maxPositions: 16 }), backend);
    expect(() => generate(model, [1, 2, 3, 4, 5, 6], { maxNewTokens: 11 })).toThrow(/17 positions, more than the model's context of 16/);
    expect(model.cache.length).toBe(0);
    const ok = await generate(model, [1, 2, 3, 4, 5, 6], { maxNewTokens: 10, eosTokenId: null, seed: 3 }).complete();
    expect(ok.generatedTokens).toBe(10);
  });

  it("rejects bad prompts and options with clear errors", async () => {
    const model = await randomModel(tinyConfig(), backend);
    expect(() => generate(model, [])).toThrow(/prompt is empty/);
    expect(() => generate(model, [1, 32])).toThrow(/prompt token 1 is 32, outside the vocabulary \[0, 32\)/);
    expect(() => generate(model, "text")).toThrow(/needs options.tokenizer/);
    expect(() => generate(model, [1], { topP: 0 })).toThrow(/topP must be in \(0, 1\]/);
    expect(() => generate(model, [1], { maxNewTokens: 0 })).toThrow(/maxNewTokens must be an integer >= 1/);
    expect(() => generate(model, [1], { stop: "x" })).toThrow(/stop strings need options.tokenizer/);
  });

  it("decoding with the cache equals recomputing without it on random shapes (fast-check)", async () => {
    const shape = fc.record({
      layers: fc.integer({ min: 1, max: 3 }),
      kvHeads: fc.integer({ min: 1, max: 3 }),
      group: fc.integer({ min: 1, max: 3 }), // query heads per kv head: 1 = MHA, > 1 = GQA
      halfDh: fc.integer({ min: 1, max: 5 }),
      hidden: fc.integer({ min: 3, max: 23 }), // odd widths too; head_dim need not divide it
      ffn: fc.integer({ min: 1, max: 29 }),
      vocab: fc.integer({ min: 3, max: 41 }),
      layerSharing: fc.boolean(),
      order: fc.constantFrom("immediate", "repeat_all", "reverse"), // with layerSharing (§2.3)
      ffnType: fc.constantFrom("swiglu", "relu"), // §2.2.1
      shareEmbedding: fc.boolean(),
      maxChunk: fc.integer({ min: 1, max: 9 }),
      seed: fc.integer({ min: 0, max: 1e6 }),
      promptLength: fc.integer({ min: 1, max: 13 }),
      newTokens: fc.integer({ min: 1, max: 8 }),
      temperature: fc.constantFrom(0, 1),
    });
    await fc.assert(
      fc.asyncProperty(shape, async (s) => {
        const config = tinyConfig({
          vocabSize: s.vocab,
          hiddenSize: s.hidden,
          intermediateSize: s.ffn,
          numLayers: s.layers,
          numHeads: s.kvHeads * s.group,
          numKvHeads: s.kvHeads,
          headDim: 2 * s.halfDh,
          maxPositions: 24,
          layerSharing: s.layerSharing,
          shareEmbedding: s.shareEmbedding,
          eosTokenId: 0,
          ...(s.ffnType === "relu" ? { ffnType: "relu" as const } : {}),
          ...(s.layerSharing && s.order !== "immediate" ? { layerSharingOrder: s.order } : {}),
        });
        const model = await randomModel(config, backend, { maxChunk: s.maxChunk, seed: s.seed });
        const promptIds = Array.from({ length: s.promptLength }, (_, i) => (s.seed + 7 * i) % s.vocab);
        const result = await generate(model, promptIds, {
          maxNewTokens: s.newTokens,
          temperature: s.temperature,
          seed: s.seed,
          eosTokenId: null,
        }).complete();
        expect(result.ids.length).toBe(s.newTokens);
        if (s.temperature === 0) {
          // greedy ids are the argmax of the full re-run's rows
          const V = s.vocab,
            full = model.forward([...promptIds, ...result.ids]);
          result.ids.forEach((id, i) => {
            const row = full.subarray((s.promptLength - 1 + i) * V, (s.promptLength + i) * V);
            expect(row[id]).toBe(Math.max(...row));
          });
        }
        expect(cacheVsFull(model, promptIds, result.ids)).toBeLessThan(1e-4);
      }),
      { numRuns: 60, seed: 20260424 },
    );
  });
});
