// BoolQ (Clark et al. 2019): yes/no questions about a Wikipedia passage.
// Harness task "boolq" (super_glue/boolq, validation split):
//   doc_to_text   "{{passage}}\nQuestion: {{question}}?\nAnswer:"
//   doc_to_choice ["no", "yes"]            doc_to_target label (0 = no, 1 = yes)

import { intLabel, sharedContext, str, type McTask } from "./task.js";

export const boolq: McTask = {
  name: "boolq",
  title: "boolq",
  dataset: "super_glue/boolq",
  split: "validation",
  fields: "passage, question, label (0/1, super_glue) or answer (true/false, google/boolq)",
  metrics: ["acc"],
  toItem(row, fail) {
    const passage = str(row, "passage", fail),
      question = str(row, "question", fail);
    let gold: number;
    if (row.label !== undefined && row.label !== null) gold = intLabel(row, "label", 0, 1, fail);
    else if (typeof row.answer === "boolean") gold = row.answer ? 1 : 0;
    else fail('missing field "label" (0/1) or "answer" (true/false)');
    return sharedContext(`${passage}\nQuestion: ${question}?\nAnswer:`, ["no", "yes"], gold!);
  },
};
