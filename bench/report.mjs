// Writes a bench's table into BENCHMARKS.md under its own "## <title>" section, leaving the others.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { arch, cpus, platform } from "node:os";

export function updateBenchmarks(title, command, table, note = "") {
  const path = "BENCHMARKS.md";
  let text = existsSync(path) ? readFileSync(path, "utf8") : "# Benchmarks\n\nEvery table below was produced by the command shown, on the machine described in it.\n";
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
  const start = text.indexOf(`## ${title}\n`);
  if (start >= 0) {
    const next = text.indexOf("\n## ", start + 1);
    text = text.slice(0, start) + section + (next >= 0 ? text.slice(next + 1) : "");
  } else {
    text = text.trimEnd() + "\n\n" + section;
  }
  writeFileSync(path, text);
}
