// Text normalization before BPE, as SentencePiece's Normalizer does it for a model whose
// normalizer_spec has no precompiled rules (name "identity", as in MobileLLM/LLaMA):
//
//   "Hello  world" --(dummy prefix)--> " Hello  world" --(escape)--> "▁Hello▁▁world"
//
// Only U+0020 counts as a space here: tabs, newlines and U+00A0 are ordinary characters
// (models with an NFKC charsmap map those to ' ' first; identity does not).

import type { NormalizerSpec } from "./proto.js";

/** U+2581 LOWER ONE EIGHTH BLOCK: SentencePiece's visible stand-in for a space. */
export const SPACE_SYMBOL = "\u2581";

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/**
 * Replace unpaired UTF-16 surrogates with U+FFFD. The reference library works on UTF-8 bytes; a JS
 * string with a lone surrogate reaches it (via any UTF-8 encoder, e.g. TextEncoder) as EF BF BD,
 * i.e. U+FFFD, so this is exactly what SentencePiece would see.
 */
export function toWellFormed(text: string): string {
  return text.replace(LONE_SURROGATE, "\uFFFD");
}

/**
 * Apply normalizer_spec to `text` and return the string the BPE model segments.
 * (Models with a precompiled charsmap are rejected when the tokenizer is built.)
 */
export function normalize(text: string, spec: NormalizerSpec, treatWhitespaceAsSuffix: boolean): string {
  text = toWellFormed(text);

  if (spec.removeExtraWhitespaces) {
    // Trim leading/trailing spaces and collapse inner runs of spaces to one.
    text = text.replace(/ +/g, " ");
    if (text.startsWith(" ")) text = text.slice(1);
    if (text.endsWith(" ")) text = text.slice(0, -1);
  }
  if (text.length === 0) return ""; // no dummy prefix for empty input

  const space = spec.escapeWhitespaces ? SPACE_SYMBOL : " ";
  if (spec.escapeWhitespaces) text = text.replaceAll(" ", SPACE_SYMBOL);
  if (spec.removeExtraWhitespaces && spec.escapeWhitespaces) {
    // The reference trims trailing U+2581 after escaping, so a literal trailing "▁" goes too.
    text = text.replace(/\u2581+$/, "");
    if (text.length === 0) return "";
  }
  if (spec.addDummyPrefix) text = treatWhitespaceAsSuffix ? text + space : space + text;
  return text;
}
