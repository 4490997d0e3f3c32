// Small helpers for bench reports: a markdown table and rewriting one "## " section of a file.

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
