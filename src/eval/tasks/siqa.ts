// Social IQa (Sap et al. 2019): reasoning about people's motivations and reactions.
// Harness task "social_iqa" (validation split):
//   doc_to_text   "Q: {{context}} {{question}}\nA:"
//   doc_to_choice [answerA, answerB, answerC]   doc_to_target int(label) - 1 (label "1"/"2"/"3")

import { intLabel, sharedContext, str, type McTask } from "./task.js";

export const siqa: McTask = {
  name: "siqa",
  title: "siqa",
  dataset: "social_i_qa",
  split: "validation",
  fields: 'context, question, answerA, answerB, answerC, label ("1"/"2"/"3")',
  metrics: ["acc"],
  toItem(row, fail) {
    const context = str(row, "context", fail),
      question = str(row, "question", fail);
    const choices = [str(row, "answerA", fail), str(row, "answerB", fail), str(row, "answerC", fail)];
    return sharedContext(`Q: ${context} ${question}\nA:`, choices, intLabel(row, "label", 1, 3, fail) - 1);
  },
};
