// OpenBookQA (Mihaylov et al. 2018): elementary science questions (the "open book" of facts is not shown).
// Harness task "openbookqa" (openbookqa/main, test split):
//   doc_to_text   question_stem   (no "Question:"/"Answer:" framing)
//   doc_to_choice choices.text    doc_to_target choices.label.index(answerKey.lstrip())

import { labelledChoices, sharedContext, str, type McTask } from "./task.js";

export const openbookqa: McTask = {
  name: "openbookqa",
  title: "obqa",
  dataset: "openbookqa/main",
  split: "test",
  fields: "question_stem, choices {text: [...], label: [...]}, answerKey",
  metrics: ["acc", "acc_norm"],
  toItem(row, fail) {
    const stem = str(row, "question_stem", fail);
    const { text, label } = labelledChoices(row, fail);
    const answerKey = str(row, "answerKey", fail).trimStart();
    const gold = label.indexOf(answerKey);
    if (gold < 0) fail(`answerKey ${JSON.stringify(answerKey)} is not one of choices.label ${JSON.stringify(label)}`);
    return sharedContext(stem, text, gold);
  },
};
