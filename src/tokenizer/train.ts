// Train a SentencePiece-compatible BPE tokenizer and write it as a tokenizer.model.
//
// The recipe follows sentencepiece's BPE trainer (bpe_model_trainer.cc) in outline:
//   1. Every input line is a sentence; it is normalized as the encoder will (identity
//      normalizer, dummy prefix, ' ' -> '▁') and cut into words, each starting at a '▁'
//      ("▁to▁be" -> "▁to", "▁be"; a run of '▁' stays with the word after it).
//   2. Characters are kept from most to least frequent until `characterCoverage` of all
//      characters is covered; the rest (and '\n', which never occurs inside a line) are left
//      to byte fallback.
//   3. Repeatedly the most frequent adjacent pair of symbols (counted over unique words times
//      their frequency) is merged into a new piece, as long as the piece obeys the trainer
//      rules: at most `maxPieceLength` characters, '▁' only at the start (or a whitespace-only
//      piece), a digit only on its own (split_digits), one Unicode script per piece.
//   4. The model lists <unk>, <s>, </s>, the 256 byte pieces <0x00>..<0xFF>, the merged pieces in
//      the order they were learned with score -k for the k-th merge, then the characters.
//      The encoder (bpe.ts) merges the highest score first, so it replays the learned order.
//
// Pair counts are kept up to date incrementally: a merge only touches the words that contain
// the pair, and a lazy max-heap (stale entries are re-checked when popped) finds the next best.

import { defaultTrainerSpec, ModelType, PieceType, serializeModelProto, type ModelProto, type SentencePiece } from "./proto.js";
import { SPACE_SYMBOL, toWellFormed } from "./normalizer.js";

export interface TrainBpeOptions {
  /** Total pieces in the model, including <unk>, <s>, </s> and the 256 byte pieces. */
  vocabSize: number;
  /** Fraction of character occurrences that get their own piece (default 0.99995, as LLaMA). */
  characterCoverage?: number;
  /** Longest piece in characters (default 16). */
  maxPieceLength?: number;
  /** Every digit is its own piece (default true, as MobileLLM). */
  splitDigits?: boolean;
  /** A piece never mixes Unicode scripts, e.g. letters and punctuation (default true). */
  splitByUnicodeScript?: boolean;
  /** Allow pieces made only of '▁', such as "▁▁▁" for indentation (default true). */
  allowWhitespaceOnlyPieces?: boolean;
}

const NO_SYMBOL = -1; // a character left to byte fallback: never part of a merge

/**
 * Learn a BPE vocabulary from `text` (a string or an iterable of chunks; lines are split on
 * '\n') and return the bytes of a SentencePiece tokenizer.model that this project's Tokenizer
 * and the reference sentencepiece library both load. If the text runs out of pairs to merge
 * before `vocabSize` pieces, the model is smaller (trainer_spec.vocab_size says how big).
 */
export function trainBpeTokenizer(text: string | Iterable<string>, options: TrainBpeOptions): Uint8Array {
  return serializeModelProto(trainBpeModel(text, options));
}

/** As trainBpeTokenizer, returning the ModelProto instead of its bytes. */
export function trainBpeModel(text: string | Iterable<string>, options: TrainBpeOptions): ModelProto {
  const opts = {
    characterCoverage: 0.99995,
    maxPieceLength: 16,
    splitDigits: true,
    splitByUnicodeScript: true,
    allowWhitespaceOnlyPieces: true,
    ...options,
  };
  const META = 3 + 256; // <unk> <s> </s> + byte pieces
  if (!Number.isInteger(opts.vocabSize) || opts.vocabSize <= META) {
    throw new Error(`trainBpeTokenizer: vocabSize must be an integer above ${META} (3 special + 256 byte pieces)`);
  }

  // 1. Unique words with their frequencies.
  const wordFreq = countWords(typeof text === "string" ? [text] : text, opts.allowWhitespaceOnlyPieces);

  // 2. Characters by frequency, cut at the coverage.
  const charFreq = new Map<string, number>();
  let totalChars = 0;
  for (const [word, f] of wordFreq) {
    for (const ch of word) {
      charFreq.set(ch, (charFreq.get(ch) ?? 0) + f);
      totalChars += f;
    }
  }
  const chars = [...charFreq.entries()]
    .filter(([ch]) => ch !== "\u0000" && ch !== "\u2047") // never pieces in sentencepiece (NUL, the unk mark)
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
  const keptChars: string[] = [];
  let covered = 0;
  for (const [ch, f] of chars) {
    if (keptChars.length > 0 && covered / totalChars >= opts.characterCoverage) break;
    keptChars.push(ch);
    covered += f;
  }
  const maxMerges = opts.vocabSize - META - keptChars.length;
  if (maxMerges < 0) {
    throw new Error(
      `trainBpeTokenizer: vocabSize ${opts.vocabSize} is too small for the ${keptChars.length} characters of this text ` +
        `(needs at least ${META + keptChars.length}); raise vocabSize or lower characterCoverage`,
    );
  }

  // Symbols: every kept character, then every merged piece. symText[s] is the piece string.
  const symText: string[] = [...keptChars];
  const symId = new Map<string, number>(keptChars.map((ch, i) => [ch, i]));
  const bytePieces = Array.from({ length: 256 }, (_, b) => `<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`);
  const reserved = new Set(["<unk>", "<s>", "</s>", ...bytePieces]); // names a merge must not take

  // Words as symbol sequences.
  const words: number[][] = [];
  const freqs: number[] = [];
  for (const [word, f] of wordFreq) {
    words.push(Array.from(word, (ch) => symId.get(ch) ?? NO_SYMBOL));
    freqs.push(f);
  }

  // Pair statistics. A pair (a, b) is keyed a * KEY + b.
  const KEY = 1 << 21;
  const pairCount = new Map<number, number>();
  const pairWords = new Map<number, number[]>(); // words that contained the pair (may be stale)
  const validCache = new Map<number, boolean>();
  const isValid = (a: number, b: number): boolean => {
    if (a === NO_SYMBOL || b === NO_SYMBOL) return false;
    const key = a * KEY + b;
    let ok = validCache.get(key);
    if (ok === undefined) {
      const merged = symText[a]! + symText[b]!;
      ok = !reserved.has(merged) && isValidPiece(merged, opts);
      validCache.set(key, ok);
    }
    return ok;
  };
  const changed = new Set<number>(); // keys whose count rose during this step
  const add = (a: number, b: number, f: number, w: number): void => {
    if (!isValid(a, b)) return;
    const key = a * KEY + b;
    pairCount.set(key, (pairCount.get(key) ?? 0) + f);
    let list = pairWords.get(key);
    if (list === undefined) pairWords.set(key, (list = []));
    if (list[list.length - 1] !== w) list.push(w);
    changed.add(key);
  };
  const remove = (a: number, b: number, f: number): void => {
    if (!isValid(a, b)) return;
    const key = a * KEY + b;
    pairCount.set(key, pairCount.get(key)! - f);
  };
  for (let w = 0; w < words.length; w++) {
    const s = words[w]!;
    for (let i = 0; i + 1 < s.length; i++) add(s[i]!, s[i + 1]!, freqs[w]!, w);
  }

  // Lazy max-heap of [count, key]: highest count first, then the smaller key (deterministic).
  const heap = new PairHeap();
  for (const key of changed) heap.push(pairCount.get(key)!, key);
  changed.clear();

  // 3. Merge.
  const merged: string[] = []; // new pieces in learned order
  const lastVisit = new Int32Array(words.length).fill(-1);
  let step = 0;
  while (merged.length < maxMerges && heap.size > 0) {
    const [count, key] = heap.pop();
    const current = pairCount.get(key) ?? 0;
    if (current !== count) {
      if (current > 0 && current < count) heap.push(current, key); // it was decreased: re-file it
      continue;
    }
    if (current <= 0) continue;
    const a = Math.floor(key / KEY);
    const b = key % KEY;
    const text = symText[a]! + symText[b]!;
    let c = symId.get(text);
    if (c === undefined) {
      c = symText.length;
      symText.push(text);
      symId.set(text, c);
      merged.push(text);
    }
    // Rewrite every word containing a b -> c, keeping the pair counts exact.
    step++;
    for (const w of pairWords.get(key)!) {
      if (lastVisit[w] === step) continue;
      lastVisit[w] = step;
      const s = words[w]!;
      const f = freqs[w]!;
      for (let i = 0; i + 1 < s.length; i++) {
        if (s[i] !== a || s[i + 1] !== b) continue;
        if (i > 0) remove(s[i - 1]!, a, f);
        if (i + 2 < s.length) remove(b, s[i + 2]!, f);
        remove(a, b, f);
        s.splice(i, 2, c);
        if (i > 0) add(s[i - 1]!, c, f, w);
        if (i + 1 < s.length) add(c, s[i + 1]!, f, w);
      }
    }
    pairWords.delete(key);
    for (const k of changed) {
      const n = pairCount.get(k)!;
      if (n > 0) heap.push(n, k);
    }
    changed.clear();
  }

  // 4. The model.
  const pieces: SentencePiece[] = [
    { piece: "<unk>", score: 0, type: PieceType.UNKNOWN },
    { piece: "<s>", score: 0, type: PieceType.CONTROL },
    { piece: "</s>", score: 0, type: PieceType.CONTROL },
  ];
  for (const piece of bytePieces) pieces.push({ piece, score: 0, type: PieceType.BYTE });
  merged.forEach((piece, k) => pieces.push({ piece, score: -k, type: PieceType.NORMAL }));
  keptChars.forEach((piece, i) => pieces.push({ piece, score: -(merged.length + i), type: PieceType.NORMAL }));

  return {
    pieces,
    trainerSpec: {
      ...defaultTrainerSpec(), // special ids and pieces as sentencepiece's defaults
      modelType: ModelType.BPE,
      vocabSize: pieces.length,
      characterCoverage: opts.characterCoverage,
      maxSentencepieceLength: opts.maxPieceLength,
      splitByUnicodeScript: opts.splitByUnicodeScript,
      splitDigits: opts.splitDigits,
      allowWhitespaceOnlyPieces: opts.allowWhitespaceOnlyPieces,
      byteFallback: true,
    },
    normalizerSpec: {
      name: "identity",
      precompiledCharsmap: new Uint8Array(0),
      addDummyPrefix: true,
      removeExtraWhitespaces: false,
      escapeWhitespaces: true,
    },
  };
}

/** Count the words of every line: "▁"-prefixed, a run of '▁' stays with the word after it. */
function countWords(chunks: Iterable<string>, allowWhitespaceOnly: boolean): Map<string, number> {
  const counts = new Map<string, number>();
  const countLine = (line: string): void => {
    if (line.length === 0) return;
    // Same normalization as the encoder: well-formed, dummy prefix, ' ' -> '▁'.
    const s = SPACE_SYMBOL + toWellFormed(line).replaceAll(" ", SPACE_SYMBOL);
    let start = 0;
    for (let i = 1; i < s.length; i++) {
      const isWs = s[i] === SPACE_SYMBOL;
      const prevWs = s[i - 1] === SPACE_SYMBOL;
      if (isWs && (!prevWs || !allowWhitespaceOnly)) {
        const w = s.slice(start, i);
        counts.set(w, (counts.get(w) ?? 0) + 1);
        start = i;
      }
    }
    const w = s.slice(start);
    counts.set(w, (counts.get(w) ?? 0) + 1);
  };
  let carry = ""; // a line split across two chunks
  for (const chunk of chunks) {
    const lines = (carry + chunk).split("\n");
    carry = lines.pop()!;
    for (const line of lines) countLine(line);
  }
  countLine(carry);
  return counts;
}

// --- piece rules (sentencepiece's TrainerInterface::IsValidSentencePiece, re-derived) ---

const SCRIPTS = [
  "Latin",
  "Greek",
  "Cyrillic",
  "Armenian",
  "Hebrew",
  "Arabic",
  "Syriac",
  "Thaana",
  "Devanagari",
  "Bengali",
  "Gurmukhi",
  "Gujarati",
  "Oriya",
  "Tamil",
  "Telugu",
  "Kannada",
  "Malayalam",
  "Sinhala",
  "Thai",
  "Lao",
  "Tibetan",
  "Myanmar",
  "Georgian",
  "Hangul",
  "Ethiopic",
  "Cherokee",
  "Khmer",
  "Mongolian",
  "Han",
  "Hiragana",
  "Katakana",
  "Inherited",
  "Common",
].map((name) => ({ name, re: new RegExp(`^\\p{Script=${name}}$`, "u") }));
const scriptCache = new Map<string, string>();

/** Unicode script of one character; kana count as Han (as sentencepiece); unlisted -> "Other". */
function scriptOf(ch: string): string {
  let s = scriptCache.get(ch);
  if (s === undefined) {
    s = SCRIPTS.find((x) => x.re.test(ch))?.name ?? "Other";
    if (s === "Hiragana" || s === "Katakana" || ch === "\u30fc") s = "Han";
    scriptCache.set(ch, s);
  }
  return s;
}

function isValidPiece(
  piece: string,
  opts: { maxPieceLength: number; splitDigits: boolean; splitByUnicodeScript: boolean; allowWhitespaceOnlyPieces: boolean },
): boolean {
  const chars = Array.from(piece);
  if (chars.length > opts.maxPieceLength) return false;
  const allWhitespace = chars.every((c) => c === SPACE_SYMBOL);
  let prevScript = "";
  for (let i = 0; i < chars.length; i++) {
    const c = chars[i]!;
    if (c === SPACE_SYMBOL) {
      if (i > 0 && !(opts.allowWhitespaceOnlyPieces && allWhitespace)) return false; // '▁' only leads
      continue;
    }
    if (opts.splitDigits && c >= "0" && c <= "9" && chars.length > 1) return false;
    let script = scriptOf(c);
    if (script === "Inherited") script = prevScript; // combining marks join the letter before
    if (opts.splitByUnicodeScript && prevScript !== "" && script !== "" && script !== prevScript) return false;
    prevScript = script;
  }
  return true;
}

/** Binary max-heap of (count, key) pairs: larger count first, then smaller key. */
class PairHeap {
  private counts: number[] = [];
  private keys: number[] = [];

  get size(): number {
    return this.counts.length;
  }

  private above(i: number, j: number): boolean {
    const ci = this.counts[i]!;
    const cj = this.counts[j]!;
    return ci > cj || (ci === cj && this.keys[i]! < this.keys[j]!);
  }

  private swap(i: number, j: number): void {
    [this.counts[i], this.counts[j]] = [this.counts[j]!, this.counts[i]!];
    [this.keys[i], this.keys[j]] = [this.keys[j]!, this.keys[i]!];
  }

  push(count: number, key: number): void {
    this.counts.push(count);
    this.keys.push(key);
    let i = this.counts.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.above(i, parent)) break;
      this.swap(i, parent);
      i = parent;
    }
  }

  pop(): [number, number] {
    const top: [number, number] = [this.counts[0]!, this.keys[0]!];
    const lastCount = this.counts.pop()!;
    const lastKey = this.keys.pop()!;
    if (this.counts.length > 0) {
      this.counts[0] = lastCount;
      this.keys[0] = lastKey;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let best = i;
        if (l < this.counts.length && this.above(l, best)) best = l;
        if (r < this.counts.length && this.above(r, best)) best = r;
        if (best === i) break;
        this.swap(i, best);
        i = best;
      }
    }
    return top;
  }
}
