// Short training runs on a tiny model and synthetic data: the loss falls, a resumed run repeats
// the uninterrupted run bit for bit, and the data reader handles malformed lines and bad ids.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { loadModel } from "../../src/load.js";
import type { MobileLLMConfig } from "../../src/model/config.js";
import { TokenStream } from "../../src/train/data.js";
import { parseLossLog } from "../../src/train/loss-curve.js";
import { pretrain, RECIPE_DEFAULTS, type Recipe } from "../../src/train/trainer.js";

const tmp = mkdtempSync(join(tmpdir(), "mobilellm-train-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const V = 48;
const config: MobileLLMConfig = {
  vocabSize: V,
  hiddenSize: 32,
  intermediateSize: 64,
  numLayers: 2,
  numHeads: 4,
  numKvHeads: 2,
  headDim: 8,
  maxPositions: 64,
  rmsNormEps: 1e-5,
  ropeTheta: 10000,
  shareEmbedding: true,
  layerSharing: false,
  bosTokenId: 1,
  eosTokenId: 2,
};

/** Learnable synthetic data: each sequence counts upward from a random start with stride 1..3. */
function writeData(base: string, lines: number, T: number, seed = 1): void {
  mkdirSync(join(base, "1"), { recursive: true });
  let x = seed;
  const rnd = () => (x = (Math.imul(x, 1103515245) + 12345) >>> 0) / 4294967296;
  const out: string[] = [];
  for (let i = 0; i < lines; i++) {
    const start = 3 + Math.floor(rnd() * (V - 3)),
      stride = 1 + Math.floor(rnd() * 3);
    const ids = [1];
    for (let t = 1; t < T; t++) ids.push(3 + ((start - 3 + t * stride) % (V - 3)));
    out.push(JSON.stringify({ token_ids: ids }));
  }
  writeFileSync(join(base, "1", "data.jsonl"), out.join("\n") + "\n");
}

// lines of 16 ids: 15 next-token predictions each
const recipe: Recipe = { ...RECIPE_DEFAULTS, steps: 40, batchSize: 4, seqLen: 15, lr: 1e-2, warmup: 4, seed: 3 };
const data = join(tmp, "data");
writeData(data, 64, 16);

describe("pretraining a tiny model", () => {
  it("lowers the loss by a clear margin and writes a loadable checkpoint, loss log and curve", async () => {
    const out = join(tmp, "run");
    const res = await pretrain({ config, recipe, data, out, saveEvery: 20 });
    const losses = res.records.map((r) => r.loss);
    expect(losses.length).toBe(40);
    expect(losses[0]!).toBeGreaterThan(Math.log(V) - 0.3);
    const last5 = losses.slice(-5).reduce((a, b) => a + b, 0) / 5;
    expect(last5).toBeLessThan(losses[0]! - 1.5);
    expect(res.checkpoint).toBe(join(out, "checkpoint-40"));
    expect(existsSync(join(out, "checkpoint-20"))).toBe(false); // only the latest is kept
    expect(parseLossLog(readFileSync(join(out, "loss.jsonl"), "utf8")).map((r) => r.loss)).toEqual(losses);
    expect(readFileSync(join(out, "loss.svg"), "utf8")).toMatch(/^<svg/);
    // the checkpoint is an ordinary model folder, and the model it holds has learnt to count
    const model = await loadModel(res.checkpoint);
    expect(model.config.vocabSize).toBe(V);
    const ids = [1, 10, 12, 14, 16, 18, 20, 22];
    const logits = model.forward(ids);
    let nll = 0;
    for (let t = 0; t + 1 < ids.length; t++) {
      const row = logits.subarray(t * V, (t + 1) * V);
      const max = Math.max(...row);
      let sum = 0;
      for (const x of row) sum += Math.exp(x - max);
      nll += Math.log(sum) + max - row[ids[t + 1]!]!;
    }
    expect(nll / (ids.length - 1)).toBeLessThan(Math.log(V) - 1.5);
  });

  it("an interrupted run (Ctrl-C) stops after the current step with a checkpoint, and --force starts over", async () => {
    const out = join(tmp, "interrupted");
    const ac = new AbortController();
    const res = await pretrain({
      config,
      recipe,
      data,
      out,
      saveEvery: 100,
      signal: ac.signal,
      onStep: (r) => {
        if (r.step === 3) ac.abort();
      },
    });
    expect(res.step).toBe(3);
    expect(res.checkpoint).toBe(join(out, "checkpoint-3"));
    expect(existsSync(join(out, "checkpoint-3", "optimizer.safetensors"))).toBe(true);
    const again = await pretrain({ config, recipe: { ...recipe, steps: 2 }, data, out, force: true });
    expect(again.records.map((r) => r.step)).toEqual([1, 2]);
    expect(existsSync(join(out, "checkpoint-3"))).toBe(false);
  });

  it("refuses an output folder holding another run unless --resume or --force", async () => {
    const out = join(tmp, "run");
    await expect(pretrain({ config, recipe, data, out })).rejects.toThrow(/already holds a training run.*--resume.*--force/);
    await expect(pretrain({ config, recipe: { ...recipe, lr: 1e-3 }, data, out, resume: true })).rejects.toThrow(/different settings.*lr/);
    const notRun = join(tmp, "other");
    mkdirSync(notRun);
    writeFileSync(join(notRun, "notes.txt"), "mine");
    await expect(pretrain({ config, recipe, data, out: notRun })).rejects.toThrow(/not empty/);
  });

  it("--resume from a mid-run checkpoint reproduces the uninterrupted run's losses bit for bit", async () => {
    const r2: Recipe = { ...recipe, steps: 24, gradAccum: 2 };
    const full = await pretrain({ config, recipe: r2, data, out: join(tmp, "full"), saveEvery: 100 });
    const out = join(tmp, "split");
    const first = await pretrain({ config, recipe: r2, data, out, saveEvery: 5, stopAfter: 13 });
    expect(first.step).toBe(13);
    const second = await pretrain({ config, recipe: r2, data, out, saveEvery: 5, resume: true });
    const split = [...first.records, ...second.records].map((r) => r.loss);
    expect(split).toEqual(full.records.map((r) => r.loss)); // toEqual on numbers: exact
    expect(parseLossLog(readFileSync(join(out, "loss.jsonl"), "utf8")).map((r) => r.loss)).toEqual(split);
    // and the final weights are identical
    expect(readFileSync(join(out, "checkpoint-24", "model.safetensors"))).toEqual(
      readFileSync(join(tmp, "full", "checkpoint-24", "model.safetensors")),
    );
  });
});

describe("training data (basepath/<node>/*.jsonl)", () => {
  const base = join(tmp, "jsonl");
  mkdirSync(join(base, "1"), { recursive: true });
  const good = (n: number) => JSON.stringify({ token_ids: [1, n, n + 1, n + 2] });
  writeFileSync(
    join(base, "1", "a.jsonl"),
    [good(3), "{not json", "", JSON.stringify({ ids: [1] }), good(10), "[1, 2", good(20)].join("\n"),
  );

  it("skips malformed lines with a count, reads the files as an infinite stream", () => {
    const warnings: string[] = [];
    const s = new TokenStream(base, 100, 4, { warn: (m) => warnings.push(m) });
    expect(s.firstLineLength()).toBe(4);
    const out = new Int32Array(4 * 4);
    s.nextBatch(out);
    expect(Array.from(out)).toEqual([1, 3, 4, 5, 1, 10, 11, 12, 1, 20, 21, 22, 1, 3, 4, 5]);
    expect(s.counts).toEqual({ sequences: 4, malformed: 4 });
    expect(warnings[0]).toMatch(/a\.jsonl:2: malformed line skipped: not valid JSON/);
    expect(s.position().pass).toBe(1);
  });

  it("shards lines by rank like the seed: line i goes to rank i % world_size", () => {
    const s = new TokenStream(base, 100, 4, { worldSize: 2, rank: 1 });
    const out = new Int32Array(4);
    // lines 2 (bad JSON), 4 (no token_ids) and 6 (bad JSON) are rank 1's: nothing usable
    expect(() => s.nextBatch(out)).toThrow(/a whole pass.*rank 1 of 2.*no usable line.*3 malformed/);
    const s0 = new TokenStream(base, 100, 4, { worldSize: 2, rank: 0 });
    const o0 = new Int32Array(12);
    s0.nextBatch(o0);
    expect(Array.from(o0)).toEqual([1, 3, 4, 5, 1, 10, 11, 12, 1, 20, 21, 22]);
  });

  it("uses lines as they are: a line of another length than the first is an error naming it", () => {
    const mixed = join(tmp, "mixed");
    mkdirSync(join(mixed, "1"), { recursive: true });
    writeFileSync(join(mixed, "1", "a.jsonl"), [good(3), good(7), JSON.stringify({ token_ids: [1, 2, 3, 4, 5] })].join("\n") + "\n");
    const s = new TokenStream(mixed, 100, 4);
    expect(() => s.nextBatch(new Int32Array(12))).toThrow(
      /a\.jsonl:3: 5 token ids, but the data's sequences hold 4.*prepare the data again/,
    );
  });

  it("pretrain takes the sequence length from the data (and refuses a --seq-len the lines do not have)", async () => {
    const out = join(tmp, "from-data");
    const res = await pretrain({ config, recipe: { ...RECIPE_DEFAULTS, steps: 1, batchSize: 2, seed: 1 }, data, out });
    expect(res.recipe.seqLen).toBe(15);
    expect(JSON.parse(readFileSync(join(out, "run.json"), "utf8")).recipe.seqLen).toBe(15);
    const bad = join(tmp, "bad-seq-len");
    await expect(pretrain({ config, recipe: { ...recipe, seqLen: 31 }, data, out: bad })).rejects.toThrow(
      /lines hold 16 token ids \(15 predictions\).*31/,
    );
    expect(existsSync(join(bad, "run.json"))).toBe(false);
  });

  it("--strict makes a malformed line an error naming file and line", () => {
    const s = new TokenStream(base, 100, 4, { strict: true });
    expect(() => s.nextBatch(new Int32Array(8))).toThrow(/a\.jsonl:2: malformed line/);
  });

  it("a token id outside the vocabulary is an error naming file and line", () => {
    const s = new TokenStream(base, 12, 4);
    expect(() => s.nextBatch(new Int32Array(8))).toThrow(/a\.jsonl:5: token id 12 at index 3 is outside the vocabulary \[0, 12\)/);
  });

  it("reads lines across read-buffer boundaries (files over 1 MB) and resumes from a saved position", () => {
    const big = join(tmp, "big");
    mkdirSync(join(big, "1"), { recursive: true });
    const rows = Array.from({ length: 2500 }, (_, i) => Array.from({ length: 100 }, (_, j) => (i * 7 + j) % 1000));
    writeFileSync(join(big, "1", "data.jsonl"), rows.map((r) => JSON.stringify({ token_ids: r })).join("\n") + "\n");
    const s = new TokenStream(big, 1000, 100);
    const seq = new Int32Array(100);
    for (let i = 0; i < 1700; i++) {
      s.nextBatch(seq);
      expect(seq[0]).toBe(rows[i]![0]);
      expect(seq[99]).toBe(rows[i]![99]);
    }
    const pos = s.position();
    const t = new TokenStream(big, 1000, 100);
    t.seek(pos);
    for (let i = 1700; i < 2600; i++) {
      t.nextBatch(seq);
      expect(Array.from(seq)).toEqual(rows[i % 2500]);
    }
    expect(t.position().pass).toBe(1);
    expect(t.counts.malformed).toBe(0);
  });

  it("a missing node folder names the expected layout", () => {
    expect(() => new TokenStream(join(tmp, "nowhere"), 10, 4)).toThrow(
      /nowhere.*1: training data folder not found.*<basepath>\/<node>\/\*\.jsonl/,
    );
  });
});
