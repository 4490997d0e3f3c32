// GGUF out, checked by a real client: llama.cpp through the node-llama-cpp npm package (its
// prebuilt CPU binaries come from the npm registry). Our GGUF files must make llama.cpp compute
// what we compute: the same tokens for a text, the same greedy continuation (f16, q8_0, q4_0 of
// the default model; f32 fixtures against their PyTorch greedy ids, including the layer-sharing
// one written unrolled), and the same q4_0 perplexity within 0.1%.
//
// node-llama-cpp is not a dependency of the project (with its GPU variants it installs ~700 MB);
// install it to run these tests:  npm install --no-save node-llama-cpp@3.22.1
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ggufFromModel, writeGguf } from "../../src/io/gguf-write.js";
import { generate, loadModel } from "../../src/index.js";
import { Tokenizer } from "../../src/tokenizer/index.js";
import { loadTokenizer } from "../../src/load.js";
import { defaultNormalizerSpec, defaultTrainerSpec, ModelType, PieceType, type SentencePiece } from "../../src/tokenizer/proto.js";
import { perplexity } from "../../src/eval/perplexity.js";
import { FIXTURES, expectedIds, SHARED, TESTS_DIR } from "../helpers.js";
import { getLlamaCpp, llamaPerplexity } from "../../bench/llamacpp.mjs";

const DEFAULT_MODEL = join(TESTS_DIR, "..", "models", "shakespeare-2m");

const found = await getLlamaCpp();
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const llamaCpp: any = found.llama ?? null;
if (!llamaCpp) console.warn(`tests/io/gguf-llamacpp.test.ts skipped: ${found.error}`);

const dir = mkdtempSync(join(tmpdir(), "mobilellm-gguf-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A SentencePiece BPE tokenizer with `V` pieces (unk, bos, eos, 256 bytes, then "▁tN"), for the fixtures. */
function syntheticTokenizer(V: number): Tokenizer {
  const pieces: SentencePiece[] = [
    { piece: "<unk>", score: 0, type: PieceType.UNKNOWN },
    { piece: "<s>", score: 0, type: PieceType.CONTROL },
    { piece: "</s>", score: 0, type: PieceType.CONTROL },
  ];
  for (let b = 0; b < 256; b++)
    pieces.push({ piece: `<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`, score: 0, type: PieceType.BYTE });
  for (let i = 0; pieces.length < V; i++) pieces.push({ piece: `\u2581t${i}`, score: -i, type: PieceType.NORMAL });
  const trainerSpec = { ...defaultTrainerSpec(), modelType: ModelType.BPE, vocabSize: V, byteFallback: true };
  const normalizerSpec = { ...defaultNormalizerSpec(), name: "identity" };
  return new Tokenizer({ pieces, trainerSpec, normalizerSpec }, "synthetic");
}

/** Write `folder` as GGUF in `dtype` and return the path and our model loaded the same way. */
async function exportGguf(folder: string, dtype: "f32" | "f16" | "q8_0" | "q4_0", tokenizer?: Tokenizer) {
  const ours = await loadModel(folder, { dtype });
  const tok = tokenizer ?? (await loadTokenizer(folder));
  const { metadata, tensors } = ggufFromModel(ours, tok);
  const file = join(dir, `${folder.split("/").pop()}-${dtype}.gguf`);
  writeGguf(file, metadata, tensors);
  return { file, ours, tok };
}

async function llamaGreedy(file: string, ids: number[], n: number): Promise<number[]> {
  const model = await llamaCpp.loadModel({ modelPath: file });
  const ctx = await model.createContext({ contextSize: 256, threads: 1 });
  try {
    const out: number[] = [];
    for await (const t of ctx.getSequence().evaluate(ids, { temperature: 0 })) {
      out.push(t);
      if (out.length >= n) break;
    }
    return out;
  } finally {
    await ctx.dispose();
    await model.dispose();
  }
}

async function oursGreedy(model: Awaited<ReturnType<typeof loadModel>>, ids: number[], n: number): Promise<number[]> {
  const r = await generate(model, ids, { maxNewTokens: n, temperature: 0, eosTokenId: null }).complete();
  return r.ids; // the generated ids only
}

describe.skipIf(!llamaCpp)(`GGUF export read by llama.cpp (node-llama-cpp)${llamaCpp ? "" : ` — skipped: ${found.error}`}`, () => {
  it.each(["f16", "q8_0", "q4_0"] as const)("default model as %s: same tokens and the same 32 greedy tokens", async (dtype) => {
    const { file, ours, tok } = await exportGguf(DEFAULT_MODEL, dtype);
    const text = "ROMEO:\nWhat light through yonder window breaks? 'Tis the east.";
    const model = await llamaCpp.loadModel({ modelPath: file });
    expect(Array.from(model.tokenize(text, false))).toEqual(tok.encode(text, { addBos: false }));
    await model.dispose();
    const prompt = tok.encode("ROMEO:", { addBos: true });
    const theirs = await llamaGreedy(file, prompt, 32),
      mine = await oursGreedy(ours, prompt, 32);
    const at = mine.findIndex((id, i) => id !== theirs[i]);
    if (at < 0 || dtype !== "q4_0") {
      expect(theirs).toEqual(mine);
      return;
    }
    // q4_0: both engines quantize the activations to 8 bits but sum the blocks in different orders,
    // so a near-tie may break either way; where the two greedy runs part, our own logits for the two
    // candidates must be within q4_0's rounding of each other (one step of ours, teacher-forced).
    const logitsTV = ours.forward([...prompt, ...mine.slice(0, at)]);
    const V = ours.config.vocabSize,
      last = logitsTV.subarray(logitsTV.length - V);
    const gap = Math.abs(last[mine[at]!]! - last[theirs[at]!]!);
    expect(gap, `greedy ids part at step ${at} (${mine[at]} vs ${theirs[at]}), logit gap ${gap}`).toBeLessThan(0.05);
  });

  it.each(["tiny-gqa", "tiny-ls", "tiny-mha-unshared"])(
    "fixture %s as f32 (tiny-ls unrolled): llama.cpp's greedy ids are PyTorch's",
    async (fixture) => {
      const folder = join(FIXTURES, fixture);
      const V = JSON.parse(readFileSync(join(folder, "config.json"), "utf8")).vocab_size as number;
      const { file } = await exportGguf(folder, "f32", syntheticTokenizer(V));
      const input = expectedIds(fixture, "input_ids"),
        greedy = expectedIds(fixture, "greedy_ids");
      expect(await llamaGreedy(file, input, greedy.length)).toEqual(greedy);
    },
  );

  const text = join(SHARED, "data", "tinyshakespeare.txt");
  it.skipIf(!llamaCpp || !existsSync(text))(
    "q4_0 perplexity of the default model equals llama.cpp's within 0.1% (first 40 windows of 128)",
    async () => {
      const raw = readFileSync(text, "utf8");
      const { file, ours, tok } = await exportGguf(DEFAULT_MODEL, "q4_0");
      const ids = tok.encode(raw.slice(raw.indexOf("\n", Math.floor(raw.length * 0.9)) + 1), { addBos: true }).slice(0, 40 * 128);
      const mine = (await perplexity(ours, ids, { seqlen: 128 })).ppl;
      const theirs = await llamaPerplexity(llamaCpp, file, ids, 128);
      expect(Math.abs(theirs / mine - 1)).toBeLessThan(1e-3);
    },
  );
});
