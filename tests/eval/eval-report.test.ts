// The results table: laid out like the MobileLLM README's (model | tasks... | avg.), percentages.
import { describe, expect, it } from "vitest";
import type { TaskResult } from "../../src/eval/harness.js";
import { detailTable, resultsTable } from "../../src/eval/report.js";

const result = (task: string, acc: number, accNorm: number, n = 100): TaskResult => ({
  task,
  file: `${task}.jsonl`,
  n,
  items: [],
  metrics: ["acc"],
  acc: { value: acc, stderr: Math.sqrt((acc * (1 - acc)) / (n - 1)) },
  acc_norm: { value: accNorm, stderr: 0.01 },
});

describe("results tables", () => {
  it("one row per model, columns in the paper's task order, average of the shown tasks", () => {
    const table = resultsTable([
      {
        model: "MobileLLM-125M",
        results: [result("piqa", 0.653, 0.66), result("arc_easy", 0.439, 0.41), result("openbookqa", 0.395, 0.3)],
      },
      { model: "MobileLLM-350M", results: [result("arc_easy", 0.538, 0.5), result("piqa", 0.686, 0.7), result("openbookqa", 0.4, 0.4)] },
    ]);
    expect(table).toBe(
      [
        "| model | arc_easy | piqa | obqa | avg. |",
        "| --- | --- | --- | --- | --- |",
        "| MobileLLM-125M | 43.9 | 65.3 | 39.5 | 49.6 |",
        "| MobileLLM-350M | 53.8 | 68.6 | 40.0 | 54.1 |",
        "",
      ].join("\n"),
    );
    expect(resultsTable([{ model: "m", results: [result("piqa", 0.653, 0.66)] }], "acc_norm")).toContain("| m | 66.0 | 66.0 |");
  });

  it("details with standard errors", () => {
    expect(detailTable([result("boolq", 0.6, 0.5, 101)])).toContain("| boolq | 101 | 60.0 ± 4.9 | 50.0 ± 1.0 | acc |");
  });
});
