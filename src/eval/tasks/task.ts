// What a zero-shot multiple-choice task is, in lm-evaluation-harness terms.
//
// The harness turns a dataset row ("doc") into a context string (doc_to_text), a list of choice
// strings (doc_to_choice) and the index of the right one (doc_to_target). Each choice becomes a
// log-likelihood request (context, target_delimiter + choice) with target_delimiter " ".
// Winogrande is the exception ("multiple_inputs"): the choices are contexts (the sentence up to
// the blank, with each option filled in) and all share one continuation (the rest of the sentence).

import { DataError } from "../rows.js";

/** One log-likelihood request as strings, before tokenization. */
export interface McRequest {
  context: string;
  continuation: string;
}

/** A dataset row turned into requests. */
export interface McItem {
  /** One request per choice. */
  requests: McRequest[];
  /** The harness's doc_to_choice strings; acc_norm divides each log-likelihood by its length. */
  choices: string[];
  /** Index of the correct choice. */
  gold: number;
}

export type Metric = "acc" | "acc_norm";

export interface McTask {
  /** The harness's task name (also the data file's base name: <name>.jsonl). */
  name: string;
  /** Column header in the results table (as in the MobileLLM README). */
  title: string;
  /** Hugging Face dataset and split the harness evaluates. */
  dataset: string;
  split: string;
  /** The row fields this task reads (the dataset's own field names). */
  fields: string;
  /** Metrics the harness reports for this task. */
  metrics: readonly Metric[];
  /** Turn one row into requests; `fail` throws a DataError naming the file and line. */
  toItem(row: Record<string, unknown>, fail: (problem: string) => never): McItem;
}

/** A failure callback for rows of `file` at `line`. */
export function rowFailer(file: string, line: number): (problem: string) => never {
  return (problem: string) => {
    throw new DataError(file, line, problem);
  };
}

// ---- field readers: each names the field and what it should be -----------------------------

export function str(row: Record<string, unknown>, key: string, fail: (p: string) => never): string {
  const v = row[key];
  if (v === undefined || v === null) fail(`missing field "${key}"`);
  if (typeof v !== "string") fail(`field "${key}" should be a string, got ${JSON.stringify(v)}`);
  return v as string;
}

export function strArray(row: Record<string, unknown>, key: string, fail: (p: string) => never, minLength = 2): string[] {
  const v = row[key];
  if (v === undefined || v === null) fail(`missing field "${key}"`);
  if (!Array.isArray(v) || v.length < minLength || !v.every((x) => typeof x === "string")) {
    fail(`field "${key}" should be an array of at least ${minLength} strings, got ${JSON.stringify(v)}`);
  }
  return v as string[];
}

/** An integer label given as a number, bigint or numeric string ("1"), checked to lie in [min, max]. */
export function intLabel(row: Record<string, unknown>, key: string, min: number, max: number, fail: (p: string) => never): number {
  const v = row[key];
  if (v === undefined || v === null) fail(`missing field "${key}"`);
  // parquet INT64 columns arrive as bigint; the datasets' string labels ("1") as strings
  const n =
    typeof v === "number" ? v : typeof v === "bigint" ? Number(v) : typeof v === "string" && /^\s*-?\d+\s*$/.test(v) ? Number(v) : NaN;
  if (!Number.isInteger(n)) fail(`field "${key}" should be an integer label, got ${JSON.stringify(v)}`);
  if (n < min || n > max) fail(`label "${key}" = ${JSON.stringify(v)} is out of range (expected ${min}..${max})`);
  return n;
}

/** ARC/OpenBookQA `choices: {text: [...], label: [...]}`. */
export function labelledChoices(row: Record<string, unknown>, fail: (p: string) => never): { text: string[]; label: string[] } {
  const c = row.choices;
  if (c === undefined || c === null) fail('missing field "choices"');
  if (typeof c !== "object" || Array.isArray(c)) fail('field "choices" should be an object {"text": [...], "label": [...]}');
  const text = strArray(c as Record<string, unknown>, "text", (p) => fail(`choices: ${p}`));
  const label = strArray(c as Record<string, unknown>, "label", (p) => fail(`choices: ${p}`));
  if (text.length !== label.length) fail(`choices.text has ${text.length} entries but choices.label has ${label.length}`);
  return { text, label };
}

/** Requests for the usual case: one context, continuation " " + choice (target_delimiter " "). */
export function sharedContext(context: string, choices: string[], gold: number): McItem {
  return { requests: choices.map((c) => ({ context, continuation: ` ${c}` })), choices, gold };
}
