// Reading evaluation data from disk: JSONL (one JSON object per line, streamed so --limit and
// resumed runs never load a large file whole), Hugging Face parquet files (via hyparquet, which
// reads the snappy compression the datasets use), plain text, and token-id arrays.
//
// Every problem is reported as a DataError naming the file and, for JSONL, the 1-based line.

import { createReadStream, existsSync, readFileSync, statSync } from "node:fs";
import { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects } from "hyparquet";
import { firstInvalidUtf8 } from "../util/utf8.js";
import { DataError, type Row } from "./rows.js";

export { DataError, type Row };

function checkFile(file: string): void {
  if (!existsSync(file)) throw new DataError(file, undefined, "file not found");
  if (!statSync(file).isFile()) throw new DataError(file, undefined, "not a file");
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

function hexAt(bytes: Uint8Array, at: number): string {
  return Array.from(bytes.subarray(at, at + 4), (b) => b.toString(16).padStart(2, "0")).join(" ");
}

function parseLine(file: string, line: number, bytes: Uint8Array): Record<string, unknown> | undefined {
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    throw new DataError(file, line, `not valid UTF-8 at byte ${firstInvalidUtf8(bytes)} of the line (re-save the file as UTF-8)`);
  }
  if (line === 1 && text.charCodeAt(0) === 0xfeff) text = text.slice(1); // byte-order mark
  if (text.endsWith("\r")) text = text.slice(0, -1);
  if (text.trim() === "") return undefined; // blank lines are allowed and skipped
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new DataError(file, line, `not valid JSON (${(e as Error).message}); JSONL needs one JSON object per line`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new DataError(file, line, "expected a JSON object per line");
  }
  return value as Record<string, unknown>;
}

/** Stream the rows of a JSONL file. Throws a DataError for a bad line, or for a file without rows. */
export async function* jsonlRows(file: string): AsyncGenerator<Row> {
  checkFile(file);
  let carry = Buffer.alloc(0);
  let line = 0,
    rows = 0;
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 16 })) {
    let buf = carry.length ? Buffer.concat([carry, chunk as Buffer]) : (chunk as Buffer);
    let start = 0;
    for (let nl = buf.indexOf(0x0a, start); nl !== -1; nl = buf.indexOf(0x0a, start)) {
      line++;
      const row = parseLine(file, line, buf.subarray(start, nl));
      start = nl + 1;
      if (row) {
        rows++;
        yield { row, line };
      }
    }
    carry = Buffer.from(buf.subarray(start));
    buf = carry;
  }
  if (carry.length) {
    line++;
    const row = parseLine(file, line, carry);
    if (row) {
      rows++;
      yield { row, line };
    }
  }
  if (rows === 0) throw new DataError(file, undefined, "empty: no JSON rows found");
}

/** All rows of a parquet file (Hugging Face datasets publish their splits as snappy parquet). */
export async function parquetRows(file: string, columns?: string[]): Promise<Row[]> {
  checkFile(file);
  let objects: Record<string, unknown>[];
  try {
    const buffer = await asyncBufferFromFile(file);
    objects = await parquetReadObjects(columns ? { file: buffer, columns } : { file: buffer });
  } catch (e) {
    throw new DataError(file, undefined, `cannot read as parquet (${(e as Error).message})`);
  }
  if (objects.length === 0) throw new DataError(file, undefined, "empty: the parquet file has no rows");
  return objects.map((row, i) => ({ row, line: i + 1 }));
}

/** How many rows readRows will give (for progress: done/total and time left), cheaply. */
export async function countRows(file: string): Promise<number> {
  checkFile(file);
  if (file.endsWith(".parquet")) {
    try {
      return Number((await parquetMetadataAsync(await asyncBufferFromFile(file))).num_rows);
    } catch (e) {
      throw new DataError(file, undefined, `cannot read as parquet (${(e as Error).message})`);
    }
  }
  let rows = 0;
  for (const line of readFileSync(file, "latin1").split("\n")) if (line.trim() !== "") rows++;
  return rows;
}

/** Rows of a .jsonl or .parquet file, streamed where possible. */
export async function* readRows(file: string): AsyncGenerator<Row> {
  if (file.endsWith(".parquet")) {
    yield* await parquetRows(file);
  } else {
    yield* jsonlRows(file);
  }
}

/**
 * The text of a corpus file for perplexity: a .jsonl file's `text` fields or a .parquet file's
 * `text` column, joined with "\n\n" (as MobileLLM's eval.py joins the WikiText-2 test split),
 * or a plain text file as it is.
 */
export async function readCorpusText(file: string): Promise<string> {
  if (file.endsWith(".jsonl") || file.endsWith(".parquet")) {
    const parts: string[] = [];
    const rows = file.endsWith(".parquet") ? await parquetRows(file) : jsonlRows(file);
    for await (const { row, line } of rows) {
      const text = row.text;
      if (typeof text !== "string") throw new DataError(file, line, "each row needs a string `text` field");
      parts.push(text);
    }
    return parts.join("\n\n");
  }
  checkFile(file);
  const bytes = readFileSync(file);
  try {
    return utf8.decode(bytes);
  } catch {
    const at = firstInvalidUtf8(bytes);
    throw new DataError(file, undefined, `not valid UTF-8 text at byte ${at} (bytes ${hexAt(bytes, at)}); re-save the file as UTF-8`);
  }
}

/** A JSON array of token ids (to bypass tokenization). */
export function readIdsFile(file: string): number[] {
  checkFile(file);
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(file, "utf8"));
  } catch (e) {
    throw new DataError(file, undefined, `not valid JSON (${(e as Error).message}); expected an array of token ids like [1, 450, 4996]`);
  }
  if (!Array.isArray(value) || value.length === 0 || !value.every((x) => Number.isInteger(x) && x >= 0)) {
    throw new DataError(file, undefined, "expected a non-empty JSON array of non-negative integer token ids");
  }
  return value as number[];
}
