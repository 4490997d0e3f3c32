// Helpers for the generation tests and benchmark: random-weight models of any shape, the kernel
// backends this build has, and a scripted fake model.
import type { DType } from "../../src/kernels/kernels.js";
import { BACKENDS, createKernels, type BackendName } from "../../src/kernels/index.js";
import type { GenerationModel } from "../../src/generate/generate.js";
import type { MobileLLMConfig } from "../../src/model/config.js";
import { MobileLLM, type ModelOptions } from "../../src/model/model.js";
import { randomWeights } from "../../src/model/random-weights.js";

/** The backends that load in this build (wasm joins once its kernels are merged). */
export async function availableBackends(): Promise<BackendName[]> {
  const ok: BackendName[] = [];
  for (const b of BACKENDS) {
    try {
      await createKernels(b);
      ok.push(b);
    } catch {
      console.log(`generation tests: backend "${b}" is not available in this build; skipped`);
    }
  }
  return ok;
}

/** A small config with the given overrides (vocab 32, width 16, 2 layers, GQA 4/2 heads of 4). */
export function tinyConfig(o: Partial<MobileLLMConfig> = {}): MobileLLMConfig {
  return {
    vocabSize: 32,
    hiddenSize: 16,
    intermediateSize: 24,
    numLayers: 2,
    numHeads: 4,
    numKvHeads: 2,
    headDim: 4,
    maxPositions: 64,
    rmsNormEps: 1e-5,
    ropeTheta: 10000,
    shareEmbedding: true,
    layerSharing: false,
    bosTokenId: 1,
    eosTokenId: 2,
    ...o,
  };
}

/** A MobileLLM with random weights on a backend. */
export async function randomModel(
  c: MobileLLMConfig,
  backend: BackendName = "ts",
  options: ModelOptions & { dtype?: DType; seed?: number } = {},
): Promise<MobileLLM> {
  const k = await createKernels(backend);
  const { dtype, seed, ...modelOptions } = options;
  return new MobileLLM(c, k, randomWeights(c, k, { dtype: dtype ?? "f32", seed: seed ?? 1 }), modelOptions);
}

/**
 * A fake model that "predicts" a fixed script: after the prompt, its logits make script[0] the
 * argmax, then script[1], ... (one-hot logits of height 10). Counts feed() calls.
 */
export function scriptedModel(script: number[], V: number, eosTokenId = 2, maxP = 1024): GenerationModel & { feeds: number } {
  const logits = new Float32Array(V);
  let next = 0;
  const m = {
    config: tinyConfig({ vocabSize: V, eosTokenId, maxPositions: maxP }),
    cache: { length: 0, maxP, kPKVDh: [], vPKVDh: [] },
    feeds: 0,
    reset() {
      m.cache.length = 0;
      next = 0;
    },
    feed(ids: ArrayLike<number>) {
      m.feeds++;
      m.cache.length += ids.length;
      logits.fill(0);
      logits[script[Math.min(next++, script.length - 1)]!] = 10;
      return logits;
    },
  };
  return m as unknown as GenerationModel & { feeds: number };
}

/**
 * A byte-level codec: ids 0..255 are the bytes themselves; ids 256.. are the given words. Decoding
 * joins the bytes and decodes UTF-8 (incomplete or invalid sequences become U+FFFD), like
 * SentencePiece's byte fallback. Id 2 is reserved as EOS and decodes to nothing.
 */
export function byteCodec(words: string[] = []) {
  const enc = new TextEncoder();
  return {
    encode(text: string): number[] {
      return Array.from(enc.encode(text));
    },
    decode(ids: number[]): string {
      const bytes: number[] = [];
      for (const id of ids) {
        if (id === 2) continue;
        if (id < 256) bytes.push(id);
        else bytes.push(...enc.encode(words[id - 256]!));
      }
      return new TextDecoder().decode(new Uint8Array(bytes));
    },
    idToPiece(id: number): string {
      return id < 256 ? `<0x${id.toString(16).toUpperCase().padStart(2, "0")}>` : words[id - 256]!;
    },
  };
}

/** byteCodec plus a streaming decoder (TextDecoder in stream mode), like Tokenizer.createDecodeStream. */
export function streamingByteCodec(words: string[] = []) {
  const codec = byteCodec(words);
  return {
    ...codec,
    createDecodeStream() {
      const utf8 = new TextDecoder();
      return {
        push: (id: number) =>
          id === 2 ? "" : utf8.decode(id < 256 ? Uint8Array.of(id) : new TextEncoder().encode(words[id - 256]!), { stream: true }),
        flush: () => utf8.decode(),
      };
    },
  };
}
