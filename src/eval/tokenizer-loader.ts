// The tokenizer the eval commands use: the project's SentencePiece tokenizer (src/tokenizer),
// loaded from the model folder or a tokenizer.model path.

import type { EvalTokenizer } from "./harness.js";

export async function loadEvalTokenizer(folderOrFile: string): Promise<EvalTokenizer> {
  // src/tokenizer is on another branch until it is merged; import it by a computed specifier so
  // this file compiles either way. Replace with a static import once it is on main.
  const specifier = "../tokenizer/index.js";
  let mod: { loadTokenizer(path: string): Promise<EvalTokenizer> };
  try {
    mod = await import(specifier) as typeof mod;
  } catch {
    throw new Error("the SentencePiece tokenizer is not available in this build; pass token ids instead (ppl --ids FILE)");
  }
  return mod.loadTokenizer(folderOrFile);
}
