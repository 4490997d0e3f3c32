// The eight zero-shot commonsense reasoning tasks of the MobileLLM paper (Table 3), in the order
// of its results table.
import { arcChallenge, arcEasy } from "./arc.js";
import { boolq } from "./boolq.js";
import { hellaswag } from "./hellaswag.js";
import { openbookqa } from "./openbookqa.js";
import { piqa } from "./piqa.js";
import { siqa } from "./siqa.js";
import type { McTask } from "./task.js";
import { winogrande } from "./winogrande.js";

export const TASKS: readonly McTask[] = [arcEasy, arcChallenge, boolq, piqa, siqa, hellaswag, openbookqa, winogrande];

export function findTask(name: string): McTask | undefined {
  return TASKS.find((t) => t.name === name);
}

export type { McItem, McRequest, McTask, Metric } from "./task.js";
