// Rows of evaluation data, and the error about a bad one (naming the file and, for JSONL, the
// 1-based line). Reading rows from files is data.ts (Node); everything else takes rows.

export class DataError extends Error {
  constructor(
    readonly file: string,
    readonly line: number | undefined,
    problem: string,
  ) {
    super(`${file}${line !== undefined ? `:${line}` : ""}: ${problem}`);
    this.name = "DataError";
  }
}

/** One data row and where it came from (line is 1-based for JSONL, the row index + 1 for parquet). */
export interface Row {
  row: Record<string, unknown>;
  line: number;
}
