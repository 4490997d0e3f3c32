// WinoGrande (Sakaguchi et al. 2020): fill the blank "_" of a sentence with one of two options.
// Harness task "winogrande" (winogrande_xl, validation split) uses partial scoring:
//   choices (contexts)  [sentence[:i] + option1, sentence[:i] + option2]   with i = sentence.index("_")
//   continuation        " " + sentence[i+1:].strip()   (the same for both options)
//   doc_to_text         {"1": 0, "2": 1}[answer]
// so the model compares how well the REST of the sentence follows each filled-in beginning.
// acc_norm (not reported by the harness here) would divide by the contexts' lengths.

import { intLabel, str, type McTask } from "./task.js";

export const winogrande: McTask = {
  name: "winogrande",
  title: "winogrande",
  dataset: "winogrande/winogrande_xl",
  split: "validation",
  fields: 'sentence (with one "_"), option1, option2, answer ("1"/"2")',
  metrics: ["acc"],
  toItem(row, fail) {
    const sentence = str(row, "sentence", fail);
    const options = [str(row, "option1", fail), str(row, "option2", fail)];
    const blank = sentence.indexOf("_");
    if (blank < 0) fail('field "sentence" has no blank "_" to fill');
    const contexts = options.map((o) => sentence.slice(0, blank) + o);
    const continuation = ` ${sentence.slice(blank + 1).trim()}`;
    return {
      requests: contexts.map((context) => ({ context, continuation })),
      choices: contexts,
      gold: intLabel(row, "answer", 1, 2, fail) - 1,
    };
  },
};
