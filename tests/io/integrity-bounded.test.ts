// Every input gets an answer in proportion to its size: a config.json that claims sizes its
// weights do not have fails before anything of that size is built, on both backends.
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { CheckpointError, ConfigError, loadModel } from "../../src/index.js";
import { FIXTURES } from "../helpers.js";

const tmp = mkdtempSync(join(tmpdir(), "mobilellm-bounded-"));
const GQA = join(FIXTURES, "tiny-gqa");
const baseConfig = JSON.parse(readFileSync(join(GQA, "config.json"), "utf8")) as Record<string, unknown>;

/** tiny-gqa's weights (safetensors or pytorch) beside a config with `edit` applied. */
function folder(name: string, edit: Record<string, unknown>, weights = "model.safetensors"): string {
  const dir = join(tmp, name);
  mkdirSync(dir, { recursive: true });
  copyFileSync(join(GQA, weights), join(dir, weights));
  writeFileSync(join(dir, "config.json"), JSON.stringify({ ...baseConfig, ...edit }));
  return dir;
}

describe("config sizes are checked against the weights before allocating", () => {
  for (const backend of ["ts", "wasm"] as const) {
    for (const weights of ["model.safetensors", "pytorch_model.bin"]) {
      it(`${backend} backend, ${weights}: millions of layers, a huge context, a 2^24 vocabulary`, async () => {
        const layers = folder(`layers-${backend}-${weights}`, { num_hidden_layers: 3_000_000 }, weights);
        const e1 = await loadModel(layers, { backend }).catch((e: Error) => e);
        expect(e1).toBeInstanceOf(CheckpointError);
        expect((e1 as Error).message).toMatch(
          /config\.json describes 3000000 layers \(27000002 tensors\), but the weights hold only 38 tensors/,
        );

        const context = folder(`context-${backend}-${weights}`, { max_position_embeddings: 100_000_000 }, weights);
        const e2 = await loadModel(context, { backend }).catch((e: Error) => e);
        expect(e2).toBeInstanceOf(ConfigError);
        expect((e2 as Error).message).toMatch(/config\.json: a context of 100000000 positions needs \d+ MB .* more than the 4 GiB/);
        const e3 = await loadModel(folder(`context2-${backend}-${weights}`, { max_position_embeddings: 1_000_000 }, weights), {
          backend,
        }).catch((e: Error) => e);
        expect((e3 as Error).message).toMatch(
          /config\.json: max_position_embeddings 1000000 would need \d+ MB of KV cache and activations for [\d.]+ MB of weights/,
        );
        // asking for a shorter context explicitly loads the same folder
        const m = await loadModel(context, { backend, maxPositions: 64 });
        expect(m.cache.maxP).toBe(64);

        const vocab = folder(`vocab-${backend}-${weights}`, { vocab_size: 2 ** 24 }, weights);
        const e4 = await loadModel(vocab, { backend }).catch((e: Error) => e);
        expect(e4).toBeInstanceOf(CheckpointError);
        expect((e4 as Error).message).toMatch(
          /"model\.embed_tokens\.weight" has shape \[512,64\], but config\.json implies \[16777216,64\]/,
        );
      });
    }
  }
});
