// AI2 Reasoning Challenge (Clark et al. 2018): grade-school science questions, Easy and Challenge sets.
// Harness tasks "arc_easy" / "arc_challenge" (allenai/ai2_arc, test split):
//   doc_to_text   "Question: {{question}}\nAnswer:"
//   doc_to_choice choices.text              doc_to_target choices.label.index(answerKey)

import { labelledChoices, sharedContext, str, type McTask } from "./task.js";

function arcTask(name: string, title: string, subset: string): McTask {
  return {
    name,
    title,
    dataset: `allenai/ai2_arc/${subset}`,
    split: "test",
    fields: "question, choices {text: [...], label: [...]}, answerKey (one of choices.label)",
    metrics: ["acc", "acc_norm"],
    toItem(row, fail) {
      const question = str(row, "question", fail);
      const { text, label } = labelledChoices(row, fail);
      const answerKey = str(row, "answerKey", fail);
      const gold = label.indexOf(answerKey);
      if (gold < 0) fail(`answerKey ${JSON.stringify(answerKey)} is not one of choices.label ${JSON.stringify(label)}`);
      return sharedContext(`Question: ${question}\nAnswer:`, text, gold);
    },
  };
}

export const arcEasy = arcTask("arc_easy", "arc_easy", "ARC-Easy");
export const arcChallenge = arcTask("arc_challenge", "arc_challenge", "ARC-Challenge");
