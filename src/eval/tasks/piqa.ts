// PIQA (Bisk et al. 2020): physical commonsense, pick the better of two solutions for a goal.
// Harness task "piqa" (validation split):
//   doc_to_text   "Question: {{goal}}\nAnswer:"
//   doc_to_choice [sol1, sol2]             doc_to_target label (0/1)

import { intLabel, sharedContext, str, type McTask } from "./task.js";

export const piqa: McTask = {
  name: "piqa",
  title: "piqa",
  dataset: "piqa",
  split: "validation",
  fields: "goal, sol1, sol2, label (0/1)",
  metrics: ["acc", "acc_norm"],
  toItem(row, fail) {
    const goal = str(row, "goal", fail);
    const choices = [str(row, "sol1", fail), str(row, "sol2", fail)];
    return sharedContext(`Question: ${goal}\nAnswer:`, choices, intLabel(row, "label", 0, 1, fail));
  },
};
