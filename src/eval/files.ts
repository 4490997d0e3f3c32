// Evaluation on files (Node, Deno, Bun): tasks read from .jsonl/.parquet files and resume state in
// a file beside them. The evaluation itself (harness.ts, perplexity.ts) takes rows and a
// ResumeStore, and runs anywhere.

import { appendFileSync, existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import type { MobileLLM } from "../model/model.js";
import { readRows } from "./data.js";
import { evaluateRows, type EvalTokenizer, type EvaluateOptions, type TaskResult } from "./harness.js";
import { perplexity as perplexityOf, type PerplexityOptions, type PerplexityResult } from "./perplexity.js";
import type { ResumeStore } from "./resume.js";
import type { McTask } from "./tasks/task.js";

/** A file as a ResumeStore: read if present, rewritten atomically (temp file + rename), appended. */
export function fileResumeStore(file: string): ResumeStore {
  return {
    name: file,
    read: () => (existsSync(file) ? readFileSync(file, "utf8") : undefined),
    write(text) {
      const tmp = `${file}.tmp`;
      writeFileSync(tmp, text);
      renameSync(tmp, file); // atomic: an interrupted write never leaves a half-written state
    },
    append: (text) => appendFileSync(file, text),
  };
}

export interface EvaluateFileOptions extends EvaluateOptions {
  /** JSONL file of finished items: read on start (if present), appended after each item. */
  resumeFile?: string;
}

/** Evaluate one task on a .jsonl/.parquet file of rows in the dataset's own field layout. */
export function evaluateTask(
  model: MobileLLM,
  tok: EvalTokenizer,
  task: McTask,
  file: string,
  options: EvaluateFileOptions = {},
): Promise<TaskResult> {
  const { resumeFile, ...rest } = options;
  return evaluateRows(
    model,
    tok,
    task,
    readRows(file),
    file,
    resumeFile !== undefined ? { ...rest, resume: fileResumeStore(resumeFile) } : rest,
  );
}

export interface PerplexityFileOptions extends PerplexityOptions {
  /** JSON file holding the finished windows' losses: read on start (if present), rewritten after each window. */
  resumeFile?: string;
}

/** Perplexity of a token stream (see perplexity.ts), resumable through a file. */
export function perplexity(model: MobileLLM, ids: ArrayLike<number>, options: PerplexityFileOptions = {}): Promise<PerplexityResult> {
  const { resumeFile, ...rest } = options;
  return perplexityOf(model, ids, resumeFile !== undefined ? { ...rest, resume: fileResumeStore(resumeFile) } : rest);
}
