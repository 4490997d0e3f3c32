// Hugging Face datasets ship their splits as snappy-compressed parquet; the readers take them
// directly. The files here are written with hyparquet-writer (snappy is its default codec).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parquetMetadata } from "hyparquet";
import { parquetWriteFile } from "hyparquet-writer";
import { afterAll, describe, expect, it } from "vitest";
import { readCorpusText } from "../../src/eval/data.js";
import { evaluateTask } from "../../src/eval/files.js";
import type { EvalTokenizer } from "../../src/eval/harness.js";
import { findTask } from "../../src/eval/tasks/index.js";
import { loadModel } from "../../src/load.js";
import { FIXTURES } from "../helpers.js";

const dir = mkdtempSync(join(tmpdir(), "eval-parquet-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("parquet input", () => {
  it("reads a wikitext-style `text` column (snappy) and joins rows with blank lines", async () => {
    const file = join(dir, "test-00000-of-00001.parquet");
    const rows = ["", " = Robert Boulter = \n", "", ...Array.from({ length: 200 }, (_, i) => ` Robert Boulter played role ${i} .\n`)];
    parquetWriteFile({ filename: file, columnData: [{ name: "text", data: rows, type: "STRING" }] });
    const meta = parquetMetadata(new Uint8Array(readFileSync(file)).buffer);
    expect(meta.row_groups[0]!.columns[0]!.meta_data!.codec).toBe("SNAPPY");
    expect(await readCorpusText(file)).toBe(rows.join("\n\n"));
  });

  it("a task file as parquet, with INT64 labels (bigint) as in the datasets", async () => {
    const file = join(dir, "piqa.parquet");
    parquetWriteFile({
      filename: file,
      columnData: [
        { name: "goal", data: ["Dry wet shoes", "Cool hot soup"], type: "STRING" },
        { name: "sol1", data: ["Stuff them with newspaper.", "Put it in the oven."], type: "STRING" },
        { name: "sol2", data: ["Fill them with water.", "Stir it and wait."], type: "STRING" },
        { name: "label", data: [0n, 1n], type: "INT64" },
      ],
    });
    const bytes: EvalTokenizer = { encode: (t) => [1, ...new TextEncoder().encode(t)] };
    const model = await loadModel(join(FIXTURES, "tiny-gqa"));
    const r = await evaluateTask(model, bytes, findTask("piqa")!, file);
    expect(r.n).toBe(2);
    expect(r.items.map((i) => i.gold)).toEqual([0, 1]);
  });

  it("names the file when it is not parquet", async () => {
    const file = join(dir, "bad.parquet");
    writeFileSync(file, "not parquet at all");
    await expect(readCorpusText(file)).rejects.toThrow(/bad\.parquet: cannot read as parquet/);
  });
});
