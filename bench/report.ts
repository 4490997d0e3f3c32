// The one report writer of the benches: markdown tables, and rewriting one "## <title>" section of
// BENCHMARKS.md while keeping the others. TypeScript benches import it as ./report.js; the .mjs
// ones as ./out/bench/report.js (bench/run.mjs compiles it before running any bench).
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { arch, cpus, platform } from "node:os";

/** Rows of cells -> a markdown table (first row is the header). */
export function markdownTable(rows: string[][]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  const line = (r: string[]) => "| " + r.map((cell, c) => cell.padEnd(widths[c]!)).join(" | ") + " |";
  return [line(rows[0]!), "| " + widths.map((w) => "-".repeat(w)).join(" | ") + " |", ...rows.slice(1).map(line)].join("\n");
}

/** Replace the section starting at `heading` (up to the next "## " heading) with `section`, or append it. */
export function replaceSection(doc: string, heading: string, section: string): string {
  const lines = doc.split("\n");
  const start = lines.findIndex((l) => l.trim() === heading);
  if (start < 0) return doc.replace(/\n*$/, "\n\n") + section;
  let end = lines.findIndex((l, i) => i > start && l.startsWith("## "));
  if (end < 0) end = lines.length;
  return [...lines.slice(0, start), ...section.replace(/\n*$/, "").split("\n"), "", ...lines.slice(end)].join("\n").replace(/\n*$/, "\n");
}

/** Replace (or append) the section starting at `heading` in BENCHMARKS.md; returns the file's path. */
export function writeBenchmarksSection(heading: string, section: string): string {
  const path = "BENCHMARKS.md";
  const doc = existsSync(path)
    ? readFileSync(path, "utf8")
    : "# Benchmarks\n\nEvery table below was produced by the command shown, on the machine described in it.\n";
  writeFileSync(path, replaceSection(doc, heading, section));
  return path;
}

/** Write a bench's table into BENCHMARKS.md under "## <title>", with the command and the machine. */
export function updateBenchmarks(title: string, command: string, table: string, note = ""): void {
  const machine = `${cpus()[0]?.model ?? "unknown CPU"}, ${cpus().length} cores, ${platform()}/${arch()}, Node ${process.version}`;
  const section = [
    `## ${title}`,
    "",
    `Command: \`${command}\`  `,
    `Machine: ${machine}; measured ${new Date().toISOString().slice(0, 10)}.`,
    "",
    ...(note ? [note, ""] : []),
    table,
    "",
  ].join("\n");
  writeBenchmarksSection(`## ${title}`, section);
}
