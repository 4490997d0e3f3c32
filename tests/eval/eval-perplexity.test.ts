// Perplexity (MobileLLM eval.py windows) against the fixtures' float64 PyTorch reference:
// expected.json "perplexity" over expected.safetensors "ppl_stream" with seqlen 32.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { DataError, readCorpusText, readIdsFile } from "../../src/eval/data.js";
import { perplexity } from "../../src/eval/files.js";
import { perplexityFromLosses, type PerplexityProgress } from "../../src/eval/perplexity.js";
import { createProgress } from "../../src/util/progress.js";
import { BACKENDS } from "../../src/kernels/index.js";
import { loadModel } from "../../src/load.js";
import { FIXTURE_NAMES, FIXTURES, expectedIds } from "../helpers.js";

interface PplExpected {
  seqlen: number;
  stream_length: number;
  nsamples: number;
  window_losses: number[];
  ppl: number;
}
const pplExpected = (f: string) =>
  (JSON.parse(readFileSync(join(FIXTURES, f, "expected.json"), "utf8")) as { perplexity: PplExpected }).perplexity;

const CASES = BACKENDS.flatMap((backend) => FIXTURE_NAMES.map((fixture) => [fixture, backend] as const));

describe.each(CASES)("perplexity %s (%s kernels)", (fixture, backend) => {
  it("reproduces window losses and ppl to 1e-4 relative", async () => {
    const exp = pplExpected(fixture);
    const model = await loadModel(join(FIXTURES, fixture), { weights: "model.safetensors", backend });
    const ids = expectedIds(fixture, "ppl_stream");
    expect(ids.length).toBe(exp.stream_length);
    const r = await perplexity(model, ids, { seqlen: exp.seqlen });
    expect(r.nsamples).toBe(exp.nsamples);
    expect(r.windowLosses.length).toBe(exp.window_losses.length);
    r.windowLosses.forEach((l, i) => expect(Math.abs(l - exp.window_losses[i]!) / exp.window_losses[i]!).toBeLessThan(1e-4));
    expect(Math.abs(r.ppl - exp.ppl) / exp.ppl).toBeLessThan(1e-4);
    // strict averages over the predictions actually made; algebraically the same number.
    const strict = await perplexity(model, ids, { seqlen: exp.seqlen, strict: true });
    expect(Math.abs(strict.ppl - exp.ppl) / exp.ppl).toBeLessThan(1e-4);
  });
});

describe("perplexity arithmetic and resume", () => {
  it("eval.py arithmetic = exp(mean window loss) = strict", () => {
    const losses = [2.5, 3.25, 1.75];
    expect(perplexityFromLosses(losses, 2048)).toBeCloseTo(Math.exp(2.5), 12);
    expect(perplexityFromLosses(losses, 2048, true)).toBeCloseTo(Math.exp(2.5), 12);
  });

  it("resumes from a state file, limits windows, and aborts", async () => {
    const fixture = "tiny-gqa";
    const exp = pplExpected(fixture);
    const model = await loadModel(join(FIXTURES, fixture));
    const ids = expectedIds(fixture, "ppl_stream");
    const dir = mkdtempSync(join(tmpdir(), "ppl-"));
    try {
      const state = join(dir, "state.json");
      const first = await perplexity(model, ids, { seqlen: 32, limitWindows: 2, resumeFile: state });
      expect(first.nsamples).toBe(2);
      expect(JSON.parse(readFileSync(state, "utf8")).windowLosses.length).toBe(2);
      // Tamper with a saved loss: a resumed run must take it from the file, not recompute it.
      const s = JSON.parse(readFileSync(state, "utf8"));
      s.windowLosses[0] = 1;
      writeFileSync(state, JSON.stringify(s));
      const resumed = await perplexity(model, ids, { seqlen: 32, resumeFile: state });
      expect(resumed.resumedWindows).toBe(2);
      expect(resumed.windowLosses[0]).toBe(1);
      expect(Math.abs(resumed.windowLosses[2]! - exp.window_losses[2]!)).toBeLessThan(1e-4);
      // A state file from another stream is refused with a message naming it.
      await expect(perplexity(model, ids.slice(1), { seqlen: 32, resumeFile: state })).rejects.toThrow(
        /state\.json: resume file was written for another run/,
      );
      const ac = new AbortController();
      ac.abort(new Error("stop"));
      await expect(perplexity(model, ids, { seqlen: 32, signal: ac.signal })).rejects.toThrow("stop");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("reports progress per chunk and per window; the bar draws only on a terminal", async () => {
    const model = await loadModel(join(FIXTURES, "tiny-gqa"));
    const seen: PerplexityProgress[] = [];
    await perplexity(model, expectedIds("tiny-gqa", "ppl_stream"), { seqlen: 32, onProgress: (p) => seen.push({ ...p }) });
    expect(seen.at(-1)).toMatchObject({ done: 3, total: 3, tokensThisRun: 96 });
    expect(Number.isNaN(seen[0]!.ppl)).toBe(true); // before the first window finishes
    let written = "";
    const stream = {
      isTTY: true,
      write: (s: string) => {
        written += s;
        return true;
      },
    } as unknown as NodeJS.WritableStream;
    const line = createProgress({ label: "ppl", total: 3, unit: "windows", stream });
    line.update(1, "ppl 1.5");
    line.done();
    expect(written).toMatch(/^\rppl  \[#+\.+\]   33%  1\/3 windows  [\d.k]+ windows\/s  ppl 1\.5\x1b\[K\rppl .*\x1b\[K\n$/);
    written = "";
    const piped = createProgress({ label: "ppl", total: 3, stream: { ...stream, isTTY: false } as unknown as NodeJS.WritableStream });
    piped.update(1);
    piped.done();
    expect(written).toBe(""); // not a terminal: only interval lines (every 10 s), none in a quick run
  });

  it("rejects out-of-vocabulary ids, too-short streams and too-long windows", async () => {
    const model = await loadModel(join(FIXTURES, "tiny-gqa"));
    await expect(perplexity(model, [1, 2, 600], { seqlen: 2 })).rejects.toThrow(/outside the vocabulary/);
    await expect(perplexity(model, [1, 2, 3], { seqlen: 4 })).rejects.toThrow(/fewer than one window/);
    await expect(perplexity(model, [1, 2, 3], { seqlen: 1024 })).rejects.toThrow(/exceeds the model's 256-position context/);
  });
});

describe("corpus files", () => {
  it("joins JSONL text rows with blank lines, reads ids, and names bad files", async () => {
    const dir = mkdtempSync(join(tmpdir(), "corpus-"));
    try {
      const jsonl = join(dir, "test.jsonl");
      writeFileSync(jsonl, '{"text": " = Title = \\n"}\n{"text": ""}\n{"text": " Body .\\n"}\n');
      expect(await readCorpusText(jsonl)).toBe(" = Title = \n" + "\n\n" + "" + "\n\n" + " Body .\n");
      writeFileSync(jsonl, '{"text": "a"}\n{"txt": "b"}\n');
      await expect(readCorpusText(jsonl)).rejects.toThrow(/test\.jsonl:2: each row needs a string `text` field/);
      const ids = join(dir, "ids.json");
      writeFileSync(ids, "[1, 5, 7]");
      expect(readIdsFile(ids)).toEqual([1, 5, 7]);
      writeFileSync(ids, "[1, -5]");
      expect(() => readIdsFile(ids)).toThrow(DataError);
      const txt = join(dir, "plain.txt");
      writeFileSync(txt, Buffer.from([0x61, 0xff, 0x62]));
      await expect(readCorpusText(txt)).rejects.toThrow(/plain\.txt: not valid UTF-8/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
