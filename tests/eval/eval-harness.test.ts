// Zero-shot multiple choice (lm-evaluation-harness style).
//
// 1. Log-likelihoods of the fixtures' expected.json "multiple_choice" items (float64 PyTorch
//    reference) through the KV-cache scorer.
// 2. For each of the eight tasks, a hand-written sample in tests/fixtures/eval/ (the dataset's own
//    field layout, invented content): the exact prompt and choice strings, so format drift is caught.
// 3. acc / acc_norm argmax logic on a fixture model. The fixture models have vocab 512/300 and no
//    tokenizer, so a FAKE tokenizer stands in: one token per UTF-8 byte (id = byte value, < 256,
//    inside both vocabularies), BOS id 1 prepended when asked. It tokenizes nothing like
//    SentencePiece; it only makes the plumbing (pairs, cache reuse, argmax) testable.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { logSumExp } from "../../src/eval/cross-entropy.js";
import { DataError } from "../../src/eval/data.js";
import { evaluateTask } from "../../src/eval/files.js";
import { encodePair, meanStderr, scoreItem, type EvalTokenizer } from "../../src/eval/harness.js";
import { LoglikelihoodScorer } from "../../src/eval/loglikelihood.js";
import { findTask, TASKS } from "../../src/eval/tasks/index.js";
import { rowFailer, type McItem } from "../../src/eval/tasks/task.js";
import { BACKENDS } from "../../src/kernels/index.js";
import { loadModel } from "../../src/load.js";
import type { MobileLLM } from "../../src/model/model.js";
import { FIXTURE_NAMES, FIXTURES } from "../helpers.js";

const SAMPLES = join(FIXTURES, "eval");

const byteTokenizer: EvalTokenizer = {
  encode(text, opts) {
    const ids = Array.from(new TextEncoder().encode(text));
    return opts?.addBos === false ? ids : [1, ...ids];
  },
};

interface McExpected {
  context_ids: number[];
  choices_ids: number[][];
  results: { loglikelihood: number; is_greedy: boolean; num_tokens: number }[];
  argmax_choice: number;
}

const CASES = BACKENDS.flatMap((backend) => FIXTURE_NAMES.map((fixture) => [fixture, backend] as const));

describe.each(CASES)("multiple-choice log-likelihoods %s (%s kernels)", (fixture, backend) => {
  it("match expected.json to 1e-4 absolute (is_greedy, num_tokens, argmax too)", async () => {
    const exp = (JSON.parse(readFileSync(join(FIXTURES, fixture, "expected.json"), "utf8")) as { multiple_choice: McExpected[] })
      .multiple_choice;
    const model = await loadModel(join(FIXTURES, fixture), { weights: "model.safetensors", backend });
    const scorer = new LoglikelihoodScorer(model);
    expect(exp.length).toBeGreaterThan(0);
    for (const item of exp) {
      const lls = item.choices_ids.map((choice, i) => {
        const r = scorer.score(item.context_ids, choice);
        expect(Math.abs(r.loglikelihood - item.results[i]!.loglikelihood)).toBeLessThan(1e-4);
        expect(r.isGreedy).toBe(item.results[i]!.is_greedy);
        expect(r.numTokens).toBe(item.results[i]!.num_tokens);
        return r.loglikelihood;
      });
      expect(lls.indexOf(Math.max(...lls))).toBe(item.argmax_choice);
    }
  });
});

/** Reference: one full forward over context + continuation[:-1] (left-truncated to fit), no cache reuse. */
function naiveLoglikelihood(model: MobileLLM, context: number[], cont: number[]): { ll: number; greedy: boolean } {
  const V = model.config.vocabSize,
    keep = model.cache.maxP + 1 - cont.length;
  const ctx = context.slice(Math.max(0, context.length - keep));
  const logits = model.forward([...ctx, ...cont.slice(0, -1)]);
  let ll = 0,
    greedy = true;
  cont.forEach((tok, j) => {
    const off = (ctx.length - 1 + j) * V;
    ll += logits[off + tok]! - logSumExp(logits, off, V);
    let best = 0;
    for (let v = 1; v < V; v++) if (logits[off + v]! > logits[off + best]!) best = v;
    if (best !== tok) greedy = false;
  });
  return { ll, greedy };
}

describe("scorer cache reuse", () => {
  it("equals a fresh forward for shared, prefix-sharing and unrelated contexts", async () => {
    const model = await loadModel(join(FIXTURES, "tiny-ls"));
    const scorer = new LoglikelihoodScorer(model);
    const cases: [number[], number[]][] = [
      [
        [1, 40, 41, 42],
        [50, 51, 52],
      ],
      [[1, 40, 41, 42], [60]],
      [
        [1, 40, 41, 42],
        [70, 71],
      ], // same context
      [
        [1, 40, 41, 99, 98],
        [50, 51],
      ],
      [
        [1, 40, 41],
        [7, 8],
      ], // shares a prefix / is a prefix
      [[1, 200], [3]],
      [[5], [6, 7, 8, 9]], // unrelated, single-token context
    ];
    for (const [ctx, cont] of cases) {
      const got = scorer.score(ctx, cont),
        ref = naiveLoglikelihood(model, ctx, cont);
      expect(Math.abs(got.loglikelihood - ref.ll)).toBeLessThan(1e-4);
      expect(got.isGreedy).toBe(ref.greedy);
    }
  });

  it("left-truncates a context longer than the model's positions, like the harness", async () => {
    const model = await loadModel(join(FIXTURES, "tiny-gqa"), { maxPositions: 8 });
    const scorer = new LoglikelihoodScorer(model);
    const ctx = [1, 10, 11, 12, 13, 14, 15, 16, 17, 18],
      cont = [20, 21, 22];
    // (ctx + cont)[-(8+1):][:-1] = ctx[-6:] + cont[:-1]
    const ref = naiveLoglikelihood(model, ctx.slice(-6), cont);
    expect(Math.abs(scorer.score(ctx, cont).loglikelihood - ref.ll)).toBeLessThan(1e-4);
    expect(() => scorer.score([1], new Array(9).fill(5))).toThrow(/exceeds the model's 8-position context/);
  });
});

describe("encodePair (harness _encode_pair)", () => {
  it("moves the context's trailing spaces into the continuation and splits encode(context + continuation)", () => {
    // A tokenizer that merges " y" into one token shows why the pair is encoded together.
    const merging: EvalTokenizer = {
      encode: (t, o) => [
        ...(o?.addBos === false ? [] : [1]),
        ...t
          .replace(/ y/g, "\u0100")
          .split("")
          .map((c) => c.charCodeAt(0)),
      ],
    };
    expect(encodePair(merging, "Answer:", " yes")).toEqual({
      context: [1, 65, 110, 115, 119, 101, 114, 58],
      continuation: [0x100, 101, 115],
    });
    expect(encodePair(merging, "Answer: ", "yes")).toEqual(encodePair(merging, "Answer:", " yes"));
    expect(encodePair(merging, "A:", " b", false)).toEqual({ context: [65, 58], continuation: [32, 98] });
  });
});

// ---- the eight tasks: exact prompts and choices from the hand-written samples ----------------

async function items(task: string, file = `${task}.jsonl`): Promise<McItem[]> {
  const { readRows } = await import("../../src/eval/data.js");
  const t = findTask(task)!;
  const out: McItem[] = [];
  for await (const { row, line } of readRows(join(SAMPLES, file))) out.push(t.toItem(row, rowFailer(file, line)));
  return out;
}
const contexts = (it: McItem) => it.requests.map((r) => r.context);
const continuations = (it: McItem) => it.requests.map((r) => r.continuation);

describe("task formats (lm-evaluation-harness)", () => {
  it("lists the eight tasks in the seed table's order", () => {
    expect(TASKS.map((t) => t.name)).toEqual([
      "arc_easy",
      "arc_challenge",
      "boolq",
      "piqa",
      "siqa",
      "hellaswag",
      "openbookqa",
      "winogrande",
    ]);
    expect(TASKS.map((t) => t.title)).toEqual(["arc_easy", "arc_challenge", "boolq", "piqa", "siqa", "hellaswag", "obqa", "winogrande"]);
  });

  it("boolq: passage, Question: ...?, Answer: with no/yes (super_glue label or google answer)", async () => {
    const [a, b] = await items("boolq");
    expect(contexts(a!)).toEqual(
      Array(2).fill(
        "Tomato -- In botany, the tomato is the berry of the plant Solanum lycopersicum, although cooks treat it as a vegetable.\nQuestion: is a tomato botanically a fruit?\nAnswer:",
      ),
    );
    expect(continuations(a!)).toEqual([" no", " yes"]);
    expect(a!.choices).toEqual(["no", "yes"]);
    expect([a!.gold, b!.gold]).toEqual([1, 0]);
    const [g] = await items("boolq", "boolq-google.jsonl");
    expect(g!.gold).toBe(0);
    expect(g!.requests[0]!.context).toBe(
      "Moonlight -- The light of the Moon is sunlight reflected from its surface.\nQuestion: does the moon have its own light?\nAnswer:",
    );
  });

  it("piqa: Question: goal / Answer: with the two solutions", async () => {
    const [a, b] = await items("piqa");
    expect(contexts(a!)).toEqual(Array(2).fill("Question: Keep bread from going stale\nAnswer:"));
    expect(continuations(a!)).toEqual([" Store it in a sealed bag at room temperature.", " Leave it uncovered on a sunny windowsill."]);
    expect([a!.gold, b!.gold]).toEqual([0, 1]);
    expect(b!.requests[1]!.context).toBe("Question: How do I loosen a tight jar lid?\nAnswer:");
  });

  it("siqa: Q: context question / A: with answerA..C, label 1-based", async () => {
    const [a, b] = await items("siqa");
    expect(contexts(a!)).toEqual(
      Array(3).fill("Q: Mira stayed late to help Theo finish the group poster. How would Theo feel afterwards?\nA:"),
    );
    expect(continuations(a!)).toEqual([" grateful", " annoyed at Mira", " sleepy and bored"]);
    expect([a!.gold, b!.gold]).toEqual([0, 2]);
  });

  it("hellaswag: activity_label: ctx_a Ctx_b, preprocessed endings", async () => {
    const [a, b] = await items("hellaswag");
    expect(contexts(a!)).toEqual(Array(4).fill("Making tea: A woman fills a kettle with water and sets it on the stove. She"));
    expect(a!.choices).toEqual([
      "pours the hot water over a tea bag in a cup.",
      "throws the kettle into the garden.",
      "paints the stove bright red.",
      "reads the kettle a bedtime story.",
    ]);
    // capitalize() lower-cases the rest ("WATER" -> "water"); " [title]" -> ". "; [..] removed; "  " -> " ".
    expect(b!.requests[0]!.context).toBe(
      "Home and Garden: How to water a cactus. Check the soil first. Only water when the soil is completely dry.",
    );
    expect(b!.choices).toEqual([
      " Pour water slowly around the base.",
      " Use a tall vase. Fill it with sand.",
      "Shout at the cactus daily.",
      "Leave the cactus in a dark cupboard.",
    ]);
    expect(continuations(b!)[0]).toBe("  Pour water slowly around the base.");
    expect([a!.gold, b!.gold]).toEqual([0, 0]);
  });

  it("winogrande: partial contexts with each option, shared continuation after the blank", async () => {
    const [a, b] = await items("winogrande");
    expect(contexts(a!)).toEqual([
      "The trophy would not fit into the suitcase because the trophy",
      "The trophy would not fit into the suitcase because the suitcase",
    ]);
    expect(continuations(a!)).toEqual([" was too small.", " was too small."]);
    expect(a!.choices).toEqual(contexts(a!));
    expect(contexts(b!)).toEqual(["Ana lent her umbrella to Beth because Ana", "Ana lent her umbrella to Beth because Beth"]);
    expect(continuations(b!)[1]).toBe(" was going out in the rain.");
    expect([a!.gold, b!.gold]).toEqual([1, 1]);
  });

  it("arc_easy / arc_challenge: Question: / Answer: with choices.text, gold from answerKey", async () => {
    const [a, b] = await items("arc_easy");
    expect(contexts(a!)).toEqual(Array(4).fill("Question: Which of these is needed for a plant to make its own food?\nAnswer:"));
    expect(continuations(a!)).toEqual([" sunlight", " sand", " plastic", " noise"]);
    expect([a!.gold, b!.gold]).toEqual([0, 1]); // numeric labels "1".."3" too
    expect(b!.choices).toEqual(["gas", "solid", "liquid"]);
    const [c, d] = await items("arc_challenge");
    expect(c!.requests[2]).toEqual({
      context: "Question: A student drops a ball and a feather in a vacuum tube. What happens?\nAnswer:",
      continuation: " They land at the same time.",
    });
    expect([c!.gold, d!.gold]).toEqual([2, 1]);
  });

  it("openbookqa: bare question_stem, answerKey left-stripped", async () => {
    const [a, b] = await items("openbookqa");
    expect(contexts(a!)).toEqual(Array(4).fill("A magnet will stick to"));
    expect(continuations(a!)).toEqual([" a wooden spoon", " an iron nail", " a glass cup", " a paper towel"]);
    expect([a!.gold, b!.gold]).toEqual([1, 2]);
  });
});

// ---- acc / acc_norm -----------------------------------------------------------------------------

describe("acc and acc_norm", () => {
  it("acc takes the largest log-likelihood, acc_norm the largest per character", () => {
    const lls = [-10, -12, -30];
    const stub = { score: (_c: number[], cont: number[]) => ({ loglikelihood: lls[cont[0]! - 100]!, isGreedy: false, numTokens: 1 }) };
    const tok: EvalTokenizer = { encode: (t) => (t === "ctx" ? [1] : [1, 100 + Number(t.at(-1))]) };
    const item: McItem = {
      requests: [0, 1, 2].map((i) => ({ context: "ctx", continuation: String(i) })),
      choices: ["short", "a much longer choice", "é".repeat(40)],
      gold: 1,
    };
    const r = scoreItem(stub as unknown as LoglikelihoodScorer, tok, item, 1);
    expect(r.loglikelihoods).toEqual(lls);
    expect(r.choiceLengths).toEqual([5, 20, 40]); // characters (code points), not bytes: "é" counts 1
    expect(r.pred).toBe(0); // -10 is the largest
    expect(r.predNorm).toBe(1); // -12/20 = -0.6 > -30/40 = -0.75 > -10/5 = -2
  });

  it("mean and sample standard error", () => {
    const m = meanStderr([1, 0, 1, 1]);
    expect(m.value).toBe(0.75);
    expect(m.stderr).toBeCloseTo(Math.sqrt(0.25 / 4), 12); // var_{n-1} = 0.25
    expect(Number.isNaN(meanStderr([1]).stderr)).toBe(true);
  });

  describe.each(["tiny-gqa", "tiny-mha-unshared"])("on fixture %s with the byte tokenizer", (fixture) => {
    let model: MobileLLM;
    beforeAll(async () => {
      model = await loadModel(join(FIXTURES, fixture));
    });

    it.each(TASKS.map((t) => t.name))("%s: predictions are the argmaxes of fresh-forward log-likelihoods", async (name) => {
      const task = findTask(name)!;
      const result = await evaluateTask(model, byteTokenizer, task, join(SAMPLES, `${name}.jsonl`));
      const samples = await items(name);
      expect(result.n).toBe(samples.length);
      const accs: number[] = [],
        norms: number[] = [];
      result.items.forEach((r, k) => {
        const item = samples[k]!;
        const ref = item.requests.map((req) => {
          const { context, continuation } = encodePair(byteTokenizer, req.context, req.continuation);
          return naiveLoglikelihood(model, context, continuation).ll;
        });
        ref.forEach((ll, i) => expect(Math.abs(r.loglikelihoods[i]! - ll)).toBeLessThan(1e-4));
        const norm = ref.map((ll, i) => ll / [...item.choices[i]!].length);
        expect(r.pred).toBe(ref.indexOf(Math.max(...ref)));
        expect(r.predNorm).toBe(norm.indexOf(Math.max(...norm)));
        accs.push(r.pred === item.gold ? 1 : 0);
        norms.push(r.predNorm === item.gold ? 1 : 0);
      });
      expect(result.acc).toEqual(meanStderr(accs));
      expect(result.acc_norm).toEqual(meanStderr(norms));
    });
  });
});

// ---- bad data, --limit, resume -----------------------------------------------------------------

describe("data errors name the file and line", () => {
  let dir: string, model: MobileLLM;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "eval-data-"));
    model = await loadModel(join(FIXTURES, "tiny-gqa"));
    return () => rmSync(dir, { recursive: true, force: true });
  });
  const run = (task: string, content: string | Buffer) => {
    const file = join(dir, `${task}.jsonl`);
    writeFileSync(file, content);
    return evaluateTask(model, byteTokenizer, findTask(task)!, file);
  };
  const piqaRow = '{"goal": "g", "sol1": "a", "sol2": "b", "label": 0}\n';

  it("missing field", async () => {
    await expect(run("piqa", piqaRow + '{"goal": "g", "sol1": "a", "label": 1}\n')).rejects.toThrow(/piqa\.jsonl:2: missing field "sol2"/);
  });
  it("label out of range", async () => {
    await expect(
      run("siqa", '{"context": "c", "question": "q", "answerA": "a", "answerB": "b", "answerC": "c", "label": "4"}\n'),
    ).rejects.toThrow(/siqa\.jsonl:1: label "label" = "4" is out of range \(expected 1\.\.3\)/);
    await expect(
      run("arc_easy", '{"question": "q", "choices": {"text": ["a", "b"], "label": ["A", "B"]}, "answerKey": "E"}\n'),
    ).rejects.toThrow(/arc_easy\.jsonl:1: answerKey "E" is not one of choices.label/);
    await expect(
      run("hellaswag", '{"activity_label": "x", "ctx_a": "a", "ctx_b": "b", "endings": ["1", "2", "3", "4"], "label": ""}\n'),
    ).rejects.toThrow(/hellaswag\.jsonl:1: field "label" should be an integer label/);
    await expect(run("winogrande", '{"sentence": "no blank here", "option1": "a", "option2": "b", "answer": "1"}\n')).rejects.toThrow(
      /winogrande\.jsonl:1: field "sentence" has no blank/,
    );
  });
  it("empty file", async () => {
    await expect(run("piqa", "")).rejects.toThrow(/piqa\.jsonl: empty: no JSON rows found/);
    await expect(run("piqa", "\n\n")).rejects.toThrow(DataError);
  });
  it("non-UTF-8 line", async () => {
    await expect(run("piqa", Buffer.concat([Buffer.from(piqaRow), Buffer.from([0x7b, 0xff, 0xfe, 0x7d, 0x0a])]))).rejects.toThrow(
      /piqa\.jsonl:2: not valid UTF-8/,
    );
  });
  it("malformed JSON", async () => {
    await expect(run("piqa", piqaRow + piqaRow + '{"goal": "g", \n')).rejects.toThrow(/piqa\.jsonl:3: not valid JSON/);
    await expect(run("piqa", "[1, 2]\n")).rejects.toThrow(/piqa\.jsonl:1: expected a JSON object per line/);
  });
  it("a missing file", async () => {
    await expect(evaluateTask(model, byteTokenizer, findTask("piqa")!, join(dir, "nope.jsonl"))).rejects.toThrow(
      /nope\.jsonl: file not found/,
    );
  });

  it("--limit stops early and a resumed run skips finished items on a large file", async () => {
    const file = join(dir, "big-piqa.jsonl");
    const rows: string[] = [];
    for (let i = 0; i < 20000; i++) rows.push(JSON.stringify({ goal: `goal ${i}`, sol1: `first ${i}`, sol2: `second ${i}`, label: i % 2 }));
    writeFileSync(file, rows.join("\n") + "\n{broken json on the last line\n");
    const task = findTask("piqa")!;
    const limited = await evaluateTask(model, byteTokenizer, task, file, { limit: 3 }); // never reaches the broken line
    expect(limited.n).toBe(3);
    const state = join(dir, "resume.jsonl");
    const first = await evaluateTask(model, byteTokenizer, task, file, { limit: 2, resumeFile: state });
    expect(first.items.map((r) => r.loglikelihoods)).toEqual(limited.items.slice(0, 2).map((r) => r.loglikelihoods));
    // Mark a saved record so that we can see it is reused rather than recomputed.
    const saved = readFileSync(state, "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(saved.length).toBe(2);
    saved[0].loglikelihoods = [-1, -2];
    saved[0].pred = 0;
    writeFileSync(state, saved.map((s) => JSON.stringify(s)).join("\n") + "\n");
    let computed = 0;
    const resumed = await evaluateTask(model, byteTokenizer, task, file, { limit: 3, resumeFile: state, onItem: () => computed++ });
    expect(resumed.n).toBe(3);
    expect(resumed.items[0]!.loglikelihoods).toEqual([-1, -2]);
    expect(resumed.items[2]!.loglikelihoods).toEqual(limited.items[2]!.loglikelihoods);
    expect(readFileSync(state, "utf8").trim().split("\n").length).toBe(3);
    expect(computed).toBe(3);
  });

  it("aborts between items", async () => {
    const ac = new AbortController();
    ac.abort(new Error("stopped"));
    await expect(evaluateTask(model, byteTokenizer, findTask("piqa")!, join(SAMPLES, "piqa.jsonl"), { signal: ac.signal })).rejects.toThrow(
      "stopped",
    );
  });
});
