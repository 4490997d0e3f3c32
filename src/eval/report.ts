// Printing results: the multiple-choice table laid out like the MobileLLM README's (one row per
// model, one column per task, then the average), and a per-task detail table with standard errors.

import type { MetricValue, TaskResult } from "./harness.js";
import type { Metric } from "./tasks/task.js";
import { TASKS } from "./tasks/index.js";

export interface ModelResults {
  model: string;
  results: TaskResult[];
}

const pct = (x: number) => (Number.isFinite(x) ? (100 * x).toFixed(1) : "-");

function markdownTable(header: string[], rows: string[][]): string {
  const line = (cells: string[]) => `| ${cells.join(" | ")} |`;
  return [line(header), line(header.map(() => "---")), ...rows.map(line)].join("\n") + "\n";
}

/** | model | arc_easy | ... | avg. |  with accuracies in percent (the paper's table). */
export function resultsTable(models: ModelResults[], metric: Metric = "acc"): string {
  const names = TASKS.map((t) => t.name).filter((n) => models.some((m) => m.results.some((r) => r.task === n)));
  const header = ["model", ...names.map((n) => TASKS.find((t) => t.name === n)!.title), "avg."];
  const rows = models.map((m) => {
    const values = names.map((n) => m.results.find((r) => r.task === n)?.[metric].value ?? NaN);
    const avg = values.reduce((a, b) => a + b, 0) / values.length;
    return [m.model, ...values.map(pct), pct(avg)];
  });
  return markdownTable(header, rows);
}

const withStderr = (m: MetricValue) => `${pct(m.value)} ± ${pct(m.stderr)}`;

/** | task | n | acc | acc_norm | reported |  with standard errors, in percent. */
export function detailTable(results: TaskResult[]): string {
  return markdownTable(
    ["task", "n", "acc", "acc_norm", "harness reports"],
    results.map((r) => [r.task, String(r.n), withStderr(r.acc), withStderr(r.acc_norm), r.metrics.join(", ")]),
  );
}
