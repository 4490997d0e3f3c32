// HellaSwag (Zellers et al. 2019): pick the most plausible continuation of an activity description.
// Harness task "hellaswag" (validation split), utils.process_docs:
//   ctx     = ctx_a + " " + ctx_b.capitalize()
//   query   = preprocess(activity_label + ": " + ctx)          doc_to_text "{{query}}"
//   choices = [preprocess(e) for e in endings]                 doc_to_target int(label)
//   preprocess(text): strip; " [title]" -> ". "; drop every "[...]" (WikiHow artifacts);
//                     "  " -> " " (one left-to-right pass, like str.replace)

import { intLabel, sharedContext, str, strArray, type McTask } from "./task.js";

/** Python's str.capitalize(): first character upper-cased, the rest lower-cased. */
export function pyCapitalize(s: string): string {
  const [first = "", ...rest] = [...s];
  return first.toUpperCase() + rest.join("").toLowerCase();
}

/** The harness's hellaswag preprocess(). */
export function hellaswagPreprocess(text: string): string {
  return text
    .trim()
    .replaceAll(" [title]", ". ")
    .replace(/\[.*?\]/g, "")
    .replaceAll("  ", " ");
}

export const hellaswag: McTask = {
  name: "hellaswag",
  title: "hellaswag",
  dataset: "hellaswag",
  split: "validation",
  fields: 'activity_label, ctx_a, ctx_b, endings (4 strings), label ("0".."3")',
  metrics: ["acc", "acc_norm"],
  toItem(row, fail) {
    const ctx = `${str(row, "ctx_a", fail)} ${pyCapitalize(str(row, "ctx_b", fail))}`;
    const query = hellaswagPreprocess(`${str(row, "activity_label", fail)}: ${ctx}`);
    const endings = strArray(row, "endings", fail);
    const gold = intLabel(row, "label", 0, endings.length - 1, fail);
    return sharedContext(query, endings.map(hellaswagPreprocess), gold);
  },
};
