// Feedback on long work: one progress helper (bar on a TTY, a plain line at a steady interval
// otherwise, nothing with --quiet), checked through the built CLI with stderr piped; and Ctrl-C on
// ppl / eval saying what was saved and how to resume.
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { defaultModel } from "../../src/load.js";
import { createProgress, formatProgressLine } from "../../src/util/progress.js";
import { FIXTURES } from "../helpers.js";
import { HAS_BIN, mobilellm, mobilellmAsync } from "../cli/bin-helpers.js";

const tmp = mkdtempSync(join(tmpdir(), "mobilellm-progress-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const FAST = { MOBILELLM_PROGRESS_INTERVAL: "0.05" };

function sink(isTTY: boolean) {
  const out: string[] = [];
  return {
    out,
    stream: {
      isTTY,
      write: (s: string) => {
        out.push(s);
        return true;
      },
    } as unknown as NodeJS.WritableStream,
  };
}

describe("createProgress", () => {
  it("formats a plain line with done/total, percent, rate, time left and detail", () => {
    expect(formatProgressLine({ label: "ppl", done: 1024, total: 4096, unit: "tok", seconds: 2, detail: "windows 2/8" })).toBe(
      "ppl: 1024/4096 tok (25%)  512 tok/s  6s left  windows 2/8",
    );
    expect(formatProgressLine({ label: "model.bin", done: 3 * 1024 * 1024, total: 12 * 1024 * 1024, unit: "bytes", seconds: 3 })).toBe(
      "model.bin: 3.0/12.0 MB (25%)  1.0 MB/s  9s left",
    );
    expect(formatProgressLine({ label: "piqa", done: 30, unit: "items", seconds: 3 })).toBe("piqa: 30 items  10.0 items/s");
  });

  it("not on a TTY: lines at the interval and a final line; on a TTY: the bar; quiet: nothing", async () => {
    const pipe = sink(false);
    const p = createProgress({ label: "work", total: 3, unit: "steps", stream: pipe.stream, intervalMs: 20 });
    p.update(1); // before the first interval: nothing yet
    expect(pipe.out).toEqual([]);
    await new Promise((r) => setTimeout(r, 30));
    p.update(2, "loss 1.5");
    p.log("checkpoint saved");
    p.update(3);
    p.done();
    p.done();
    expect(pipe.out[0]).toMatch(/^work: 2\/3 steps \(66%\)  [\d.]+ steps\/s  \d+s left  loss 1\.5\n$/);
    expect(pipe.out[1]).toBe("checkpoint saved\n");
    expect(pipe.out.at(-1)).toMatch(/^work: 3\/3 steps \(100%\)/);
    expect(pipe.out.every((s) => !s.includes("\r"))).toBe(true);

    const tty = sink(true);
    const bar = createProgress({ label: "f", total: 2, stream: tty.stream });
    bar.update(1);
    bar.log("note");
    bar.done();
    expect(tty.out[0]).toMatch(/^\rf  \[#+\.+\]   50%/);
    expect(tty.out).toContain("\r\x1b[Knote\n");
    expect(tty.out.at(-1)).toMatch(/\n$/);

    const quiet = sink(false);
    const q = createProgress({ label: "f", total: 2, stream: quiet.stream, quiet: true, intervalMs: 0 });
    q.update(1);
    q.log("x");
    q.done();
    expect(quiet.out).toEqual([]);
  });
});

describe.skipIf(!HAS_BIN)("progress and Ctrl-C in the built CLI (stderr piped)", () => {
  const corpus = join(tmp, "corpus.txt");
  writeFileSync(corpus, readFileSync(join(defaultModel, "README.md"), "utf8").repeat(8));

  it("ppl prints progress lines at the interval when piped, none with --quiet", () => {
    const r = mobilellm(["ppl", "--data", corpus, "--limit-windows", "3"], { env: FAST });
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/^ppl: \d+\/1536 tok \(\d+%\)  [\d.k]+ tok\/s  \S+ left  windows \d\/3  ppl [\d.-]+$/m);
    const q = mobilellm(["ppl", "--data", corpus, "--limit-windows", "3", "--quiet"], { env: FAST });
    expect(q.code).toBe(0);
    expect(q.stderr).not.toMatch(/^ppl:/m);
  });

  it("Ctrl-C on ppl says what was saved and how to resume; the rerun continues", async () => {
    const resume = join(tmp, "ppl-resume.json");
    const run = mobilellmAsync(["ppl", "--data", corpus, "--resume", resume], {
      env: FAST,
      interruptWhen: /windows [1-9]/,
    });
    const r = await run.done;
    expect(r.code).toBe(130);
    const m = /interrupted: (\d+) of (\d+) windows are saved in (.*); run the same command again to continue from there/.exec(r.stderr);
    expect(m, r.stderr).not.toBeNull();
    expect(m![3]).toBe(resume);
    const saved = JSON.parse(readFileSync(resume, "utf8")).windowLosses.length;
    expect(saved).toBeGreaterThanOrEqual(Number(m![1]));
    const again = mobilellm(["ppl", "--data", corpus, "--resume", resume, "--limit-windows", String(saved + 1), "--json"]);
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout).resumedWindows).toBe(saved);

    const plain = mobilellmAsync(["ppl", "--data", corpus], {
      env: FAST,
      interruptWhen: /windows [1-9]/,
    });
    const p = await plain.done;
    expect(p.code).toBe(130);
    expect(p.stderr).toMatch(
      /interrupted after \d+ of \d+ windows; nothing was saved\. Add --resume FILE to keep finished windows across runs/,
    );
  });

  it("Ctrl-C on eval says what was saved and how to resume", async () => {
    const data = join(tmp, "piqa.jsonl");
    writeFileSync(
      data,
      readFileSync(join(FIXTURES, "eval", "piqa.jsonl"), "utf8")
        .trim()
        .concat("\n")
        .repeat(300),
    );
    const resume = join(tmp, "eval-resume.jsonl");
    const run = mobilellmAsync(["eval", "--task", "piqa", "--data", data, "--resume", resume], {
      env: FAST,
      interruptWhen: /^piqa: \d+\//m,
    });
    const r = await run.done;
    expect(r.code).toBe(130);
    expect(r.stderr).toMatch(/^piqa: \d+\/\d+ items \(\d+%\)  [\d.k]+ items\/s  \S+ left  acc [\d.]+$/m);
    expect(r.stderr).toMatch(
      new RegExp(
        `interrupted in piqa after \\d+ items; every finished item is saved in ${resume.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}; run the same command again`,
      ),
    );
    expect(existsSync(resume)).toBe(true);
  });

  it("pretrain prints interval lines when piped", () => {
    const data = join(tmp, "data");
    expect(mobilellm(["prepare", "--tokenizer", defaultModel, "--input", corpus, "--out", data, "--seq-len", "32"]).code).toBe(0);
    const r = mobilellm(
      [
        "pretrain",
        "--config",
        join(defaultModel, "config.json"),
        "--data",
        data,
        "--out",
        join(tmp, "run"),
        "--steps",
        "4",
        "--batch-size",
        "1",
        "--seq-len",
        "32",
        "--save-every",
        "4",
      ],
      { env: FAST },
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(
      /^pretrain: [1-4]\/4 steps \(\d+%\)  [\d.]+ steps\/s  step [1-4]\/4  loss [\d.]+  lr \S+  \d+ tok\/s  ETA \S+$/m,
    );
  });
});
