// Streaming: text from byte pieces emitted once per complete character, stop strings held back and
// never emitted, EOS, aborting between tokens. A scripted fake model makes the ids exact; the real
// SentencePiece tokenizer joins in when it is on this branch and ../shared has its model.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { createTextStream, IncrementalDecoder } from "../../src/generate/detokenize.js";
import { generate, type GenerateStep } from "../../src/generate/generate.js";
import { StopStrings } from "../../src/generate/stop.js";
import { byteCodec, randomModel, scriptedModel, streamingByteCodec, tinyConfig } from "./generate-helpers.js";
import { loadTokenizer } from "../../src/load.js";
import { SHARED } from "../helpers.js";

const bytesOf = (s: string) => Array.from(new TextEncoder().encode(s));

async function collect(gen: AsyncIterable<GenerateStep>): Promise<GenerateStep[]> {
  const steps: GenerateStep[] = [];
  for await (const s of gen) steps.push(s);
  return steps;
}

describe("streaming text from byte pieces", () => {
  const text = "héllo € 😀 世界!";
  const script = [...bytesOf(text), 2]; // then EOS

  it("emits each multi-byte character once, when its last byte arrives", async () => {
    const codec = byteCodec();
    const gen = generate(scriptedModel(script, 300), [1], { tokenizer: codec, maxNewTokens: 100, temperature: 0 });
    const steps = await collect(gen);
    const result = await gen.result;
    expect(steps.map((s) => s.id)).toEqual(script);
    expect(steps.map((s) => s.text).join("")).toBe(text);
    expect(result).toMatchObject({ text, stopReason: "eos", generatedTokens: script.length });
    expect(steps.every((s) => !s.text.includes("\uFFFD"))).toBe(true);
    // "€" is E2 82 AC: nothing for its first two bytes, the whole character with the third.
    const euro = bytesOf("héllo ").length;
    expect(steps.slice(euro, euro + 3).map((s) => s.text)).toEqual(["", "", "€"]);
    // "😀" is four bytes: one surrogate pair, emitted once.
    const smile = bytesOf("héllo € ").length;
    expect(steps.slice(smile, smile + 4).map((s) => s.text)).toEqual(["", "", "", "😀"]);
    expect(steps.at(-1)!.runningText).toBe(text);
    expect(steps[0]!.piece).toBe("<0x68>");
  });

  it("uses the tokenizer's streaming decoder when it has one, primed with the prompt", async () => {
    const [a, b, c] = bytesOf("€");
    const prompt = [...bytesOf("ab"), a!]; // the prompt ends inside "€"
    const script = [b!, c!, ...bytesOf(" 😀 x"), 2];
    for (const codec of [streamingByteCodec(), byteCodec()]) {
      const steps = await collect(generate(scriptedModel(script, 300), prompt, { tokenizer: codec, maxNewTokens: 20, temperature: 0 }));
      expect(steps.map((s) => s.text)).toEqual(["", "€", " ", "", "", "", "😀", " ", "x", ""]);
    }
  });

  it("encodes a text prompt with the tokenizer", async () => {
    const r = await generate(scriptedModel([0x21, 2], 300), "hé", { tokenizer: byteCodec(), temperature: 0 }).complete();
    expect(r).toMatchObject({ promptTokens: 3, text: "!", stopReason: "eos" });
  });

  it("a character split across the prompt and the generated ids is emitted once complete", () => {
    const [a, b, c] = bytesOf("€");
    const d = new IncrementalDecoder(byteCodec(), [...bytesOf("ab"), a!]); // prompt ends mid-character
    expect(d.push(b!)).toBe("");
    expect(d.push(c!)).toBe("€");
    expect(d.push(bytesOf("x")[0]!)).toBe("x");
  });

  it("flushes an incomplete character at the end as U+FFFD (what decode gives)", async () => {
    const [a, b] = bytesOf("€");
    const steps = await collect(
      generate(scriptedModel([0x41, a!, b!], 300), [1], { tokenizer: byteCodec(), maxNewTokens: 3, temperature: 0 }),
    );
    expect(steps.map((s) => s.text)).toEqual(["A", "", "\uFFFD"]);
    // ... also when EOS comes right after the unfinished character
    const eos = await collect(
      generate(scriptedModel([0x41, a!, 2], 300), [1], { tokenizer: byteCodec(), maxNewTokens: 9, temperature: 0 }),
    );
    expect(eos.map((s) => s.text)).toEqual(["A", "", "\uFFFD"]);
  });

  it("keeps the window small yet exact over long outputs (words and bytes mixed)", () => {
    const words = [" the", " cat", "é", " 世"];
    const codec = byteCodec(words);
    const ids: number[] = [];
    for (let i = 0; i < 300; i++) ids.push(i % 7 === 3 ? bytesOf("ж")[0]! : i % 7 === 4 ? bytesOf("ж")[1]! : 256 + (i % 4));
    const d = new IncrementalDecoder(codec, [256]);
    let out = "";
    for (const id of ids) out += d.push(id);
    out += d.flush();
    expect(out).toBe(codec.decode(ids));
  });
});

describe("stop strings", () => {
  it("StopStrings holds back possible beginnings and cuts at the earliest stop", () => {
    const s = new StopStrings(["\nUser:", "###"]);
    expect(s.push("Hello")).toEqual({ text: "Hello", stopped: false });
    expect(s.push(" there\n")).toEqual({ text: " there", stopped: false }); // "\n" may start "\nUser:"
    expect(s.push("Us")).toEqual({ text: "", stopped: false });
    expect(s.push("ual #")).toEqual({ text: "\nUsual ", stopped: false });
    expect(s.push("## tail")).toEqual({ text: "", stopped: true });
    const t = new StopStrings(["ab"]);
    expect(t.push("xa")).toEqual({ text: "x", stopped: false });
    expect(t.flush()).toBe("a");
    expect(() => new StopStrings([""])).toThrow(/must not be empty/);
  });

  it("generation stops at a stop string spanning tokens; the output never contains it", async () => {
    const words = ["Hi", " there", ".\n", "\nUs", "er:", " more"];
    const script = [256, 257, 258, 259, 260, 261, 261, 261];
    const gen = generate(scriptedModel(script, 300), [1], {
      tokenizer: byteCodec(words),
      maxNewTokens: 20,
      stop: ["\n\nUser:"],
      temperature: 0,
    });
    const steps = await collect(gen);
    const result = await gen.result;
    expect(result.stopReason).toBe("stop");
    expect(result.text).toBe("Hi there.");
    expect(steps.map((s) => s.text).join("")).toBe("Hi there.");
    expect(result.ids).toEqual([256, 257, 258, 259, 260]); // the id completing the stop string is the last
    expect(steps.map((s) => s.text)).toEqual(["Hi", " there", ".", "", ""]);
  });

  it("text held back for a stop string that never comes is emitted at the end", async () => {
    const words = ["a", "b", "#"];
    const gen = generate(scriptedModel([256, 258, 258], 300), [1], {
      tokenizer: byteCodec(words),
      maxNewTokens: 3,
      stop: "###",
      temperature: 0,
    });
    const steps = await collect(gen);
    expect(steps.map((s) => s.text)).toEqual(["a", "", "##"]);
    expect((await gen.result).stopReason).toBe("length");
  });
});

describe("ending a generation", () => {
  it("stops at EOS (the config's by default, or the given ids)", async () => {
    const r1 = await generate(scriptedModel([5, 6, 2, 7], 300), [1], { temperature: 0 }).complete();
    expect(r1).toMatchObject({ ids: [5, 6, 2], stopReason: "eos", text: "" });
    const r2 = await generate(scriptedModel([5, 6, 2, 7], 300), [1], { temperature: 0, eosTokenId: [6, 9] }).complete();
    expect(r2).toMatchObject({ ids: [5, 6], stopReason: "eos" });
    const r3 = await generate(scriptedModel([5, 6, 2, 7], 300), [1], { temperature: 0, eosTokenId: null, maxNewTokens: 4 }).complete();
    expect(r3).toMatchObject({ ids: [5, 6, 2, 7], stopReason: "length" });
  });

  it("an abort from a timer stops within one token with stopReason abort", async () => {
    const model = await randomModel(tinyConfig({ maxPositions: 4096 }));
    const controller = new AbortController();
    const gen = generate(model, [1, 5, 9], { maxNewTokens: 4000, eosTokenId: null, seed: 1, signal: controller.signal });
    let n = 0,
      atAbort = -1;
    for await (const _step of gen) {
      n++;
      if (n === 20)
        setTimeout(() => {
          atAbort = n;
          controller.abort();
        }, 0);
    }
    const result = await gen.result;
    expect(result.stopReason).toBe("abort");
    expect(atAbort).toBeGreaterThan(0);
    expect(n - atAbort).toBeLessThanOrEqual(1); // at most the token already in flight
    expect(result.generatedTokens).toBe(n);
    expect(model.cache.length).toBeLessThan(3 + 4000);
  });

  it("an already aborted signal generates nothing; breaking out of the loop reports abort", async () => {
    const model = scriptedModel([5], 300);
    const r = await generate(model, [1], { signal: AbortSignal.abort(), eosTokenId: null }).complete();
    expect(r).toMatchObject({ stopReason: "abort", generatedTokens: 0 });
    expect(model.feeds).toBe(0);
    const gen = generate(model, [1], { maxNewTokens: 50, eosTokenId: null, temperature: 0 });
    for await (const step of gen) if (step.id === 5) break;
    expect(await gen.result).toMatchObject({ stopReason: "abort", generatedTokens: 1 });
    expect(() => gen[Symbol.asyncIterator]()).toThrow(/only once/);
  });

  it("refuses a second generation on a model whose cache is in use", async () => {
    const model = scriptedModel([5], 300);
    const first = generate(model, [1], { maxNewTokens: 10, eosTokenId: null, temperature: 0 });
    const it1 = first[Symbol.asyncIterator]();
    await it1.next();
    await expect(generate(model, [1], { temperature: 0 }).complete()).rejects.toThrow(/already running a generation/);
    await it1.return!();
    expect(await first.result).toMatchObject({ stopReason: "abort", generatedTokens: 1 });
    expect(await generate(model, [1], { maxNewTokens: 2, eosTokenId: null, temperature: 0 }).complete()).toMatchObject({
      generatedTokens: 2,
    });
  });

  it("the repetition penalty sees the prompt and every generated id", async () => {
    const logits = Float32Array.of(0, 3, 2.5, 2.2, 0, 0);
    const model = { ...scriptedModel([0], 6), feed: () => logits };
    // greedy with penalty 1.5: 1 (prompt) drops to 2, then 2 to 1.67, then 3 to 1.47
    const r = await generate(model, [1], { temperature: 0, repetitionPenalty: 1.5, maxNewTokens: 3, eosTokenId: null }).complete();
    expect(r.ids).toEqual([2, 3, 1]);
  });

  it("reports prompt/generated counts and speeds", async () => {
    const model = await randomModel(tinyConfig());
    const r = await generate(model, [1, 2, 3, 4], { maxNewTokens: 6, eosTokenId: null, seed: 9 }).complete();
    expect(r).toMatchObject({ promptTokens: 4, generatedTokens: 6, stopReason: "length", seed: 9 });
    expect(r.prefillTokensPerSecond).toBeGreaterThan(0);
    expect(r.decodeTokensPerSecond).toBeGreaterThan(0);
  });
});

// The project's SentencePiece tokenizer with MobileLLM's tokenizer.model from ../shared.
const TOKENIZER_MODEL = join(SHARED, "tokenizer", "tokenizer.model");
const haveTokenizer = existsSync(TOKENIZER_MODEL);
if (!haveTokenizer) console.log(`generate-stream: real-tokenizer streaming tests skipped (${TOKENIZER_MODEL} is absent)`);

describe.skipIf(!haveTokenizer)("streaming with the real SentencePiece tokenizer", () => {
  it("byte-fallback characters and leading spaces come out exactly as decode() of all ids", async () => {
    const tok = await loadTokenizer(TOKENIZER_MODEL);
    const prompt = tok.encode("Say:", { addBos: true });
    const continuation = tok.encode("naïve café 😀 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 — done", { addBos: false }); // "▁na", "ï", ...
    const gen = generate(scriptedModel([...continuation, 2], 32000), prompt, { tokenizer: tok, maxNewTokens: 200, temperature: 0 });
    const steps = await collect(gen);
    const want = tok.decode([...prompt, ...continuation]).slice(tok.decode(prompt).length);
    expect(steps.map((s) => s.text).join("")).toBe(want);
    expect(want).toContain("😀");
    expect(steps.some((s) => s.text.includes("\uFFFD"))).toBe(false);
    expect(want).toBe(" naïve café 😀 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 — done"); // the first generated word keeps its space
  });

  it("the decode-diff fallback (a codec without a decode stream) gives the same text, piece by piece", async () => {
    const tok = await loadTokenizer(TOKENIZER_MODEL);
    const prompt = tok.encode("Emoji: ");
    const ids = tok.encode("😀 and 𝔘𝔫𝔦 plus ∑ and spaces   here\nnew line", { addBos: false });
    const streamed = createTextStream(tok, prompt);
    const diffed = new IncrementalDecoder({ encode: (t) => tok.encode(t), decode: (i) => tok.decode(i) }, prompt);
    for (const id of ids) expect(diffed.push(id)).toBe(streamed.push(id));
    expect(diffed.flush()).toBe(streamed.flush());
  });
});
