// Ids -> text, as SentencePieceProcessor::Decode does it:
//
//   - NORMAL / USER_DEFINED pieces: the piece text with every U+2581 turned back into a space.
//   - CONTROL pieces (<s>, </s>): "".  UNKNOWN (<unk>): the model's unk_surface, " \u2047 ".
//   - BYTE pieces (<0xHH>): consecutive byte pieces are gathered and read as UTF-8. At each
//     position either a complete, valid UTF-8 character is taken, or exactly one byte becomes
//     U+FFFD (so an unfinished 4-byte emoji gives three U+FFFD, not one as TextDecoder would).
//   - The dummy prefix: while nothing has been output yet, the first piece starting with U+2581
//     loses that one U+2581 (control pieces before it do not count; bytes and <unk> do).
//
// createDecodeStream() does the same incrementally for generation: it holds back the bytes of a
// character whose UTF-8 sequence is not finished yet, and returns only completed text.

import { SPACE_SYMBOL } from "./normalizer.js";
import { PieceType } from "./proto.js";

/** What decoding needs to know about the vocabulary. */
export interface DecodeVocab {
  pieces: readonly string[];
  /** pieces[id] with every U+2581 replaced by a space (precomputed: decode is a lookup). */
  surfaces: readonly string[];
  types: Uint8Array; // PieceType per id
  byteValue: Int16Array; // the byte of a BYTE piece, -1 otherwise
  unkSurface: string;
  /** add_dummy_prefix || remove_extra_whitespaces: a leading U+2581 is an artefact to drop. */
  stripLeadingSpace: boolean;
  /** remove_extra_whitespaces: keep dropping leading U+2581 while the output is still empty. */
  stripAllLeadingSpaces: boolean;
  name: string; // for error messages
}

/**
 * Length of the valid UTF-8 character starting at bytes[i] (i < end): 1..4; 0 if the bytes there
 * can never form a valid character (the caller then emits one U+FFFD and moves on by one byte);
 * -1 if they are a valid beginning but the run ends before the character is complete.
 */
export function utf8CharLength(bytes: ArrayLike<number>, i: number, end: number): number {
  const b0 = bytes[i]!;
  if (b0 < 0x80) return 1;
  let need: number;
  let lo = 0x80;
  let hi = 0xbf; // allowed range of the second byte (excludes overlongs, surrogates, > U+10FFFF)
  if (b0 >= 0xc2 && b0 <= 0xdf) need = 1;
  else if (b0 >= 0xe0 && b0 <= 0xef) {
    need = 2;
    if (b0 === 0xe0) lo = 0xa0;
    if (b0 === 0xed) hi = 0x9f;
  } else if (b0 >= 0xf0 && b0 <= 0xf4) {
    need = 3;
    if (b0 === 0xf0) lo = 0x90;
    if (b0 === 0xf4) hi = 0x8f;
  } else return 0;
  for (let k = 1; k <= need; k++) {
    if (i + k >= end) return -1;
    const b = bytes[i + k]!;
    if (k === 1 ? b < lo || b > hi : b < 0x80 || b > 0xbf) return 0;
  }
  return need + 1;
}

// ignoreBOM: bytes EF BB BF are the character U+FEFF, not a byte-order mark to drop.
const utf8 = new TextDecoder("utf-8", { ignoreBOM: true });

/**
 * Decode bytes[0..count) character by character. With `final` false, an unfinished character at
 * the end is left undecoded; returns the text and how many bytes were used.
 */
function decodeByteRun(bytes: Uint8Array, count: number, final: boolean): [string, number] {
  let text = "";
  let i = 0;
  let validStart = 0; // start of the current stretch of valid characters
  while (i < count) {
    const len = utf8CharLength(bytes, i, count);
    if (len > 0) {
      i += len;
      continue;
    }
    if (len === -1 && !final) break;
    text += utf8.decode(bytes.subarray(validStart, i)) + "\uFFFD";
    i += 1;
    validStart = i;
  }
  text += utf8.decode(bytes.subarray(validStart, i));
  return [text, i];
}

function checkId(vocab: DecodeVocab, id: number): void {
  if (!Number.isInteger(id) || id < 0 || id >= vocab.pieces.length) {
    throw new RangeError(`${vocab.name}: token id ${id} is out of range (vocabulary has ${vocab.pieces.length} ids)`);
  }
}

/**
 * Streaming decoder: push ids one at a time, get back the text they completed. The concatenation
 * of every push() result and a final flush() equals decode(allIds).
 */
export class DecodeStream {
  private pending = new Uint8Array(16); // bytes of the current run not yet turned into text
  private pendingCount = 0;
  private atStart = true; // nothing output yet, no dummy-prefix space consumed yet

  constructor(private readonly vocab: DecodeVocab) {}

  /** Add one id; returns the newly completed text (possibly ""). */
  push(id: number): string {
    const v = this.vocab;
    checkId(v, id);
    const type = v.types[id]!;
    if (type === PieceType.BYTE) {
      if (this.pendingCount === this.pending.length) {
        const grown = new Uint8Array(this.pending.length * 2);
        grown.set(this.pending);
        this.pending = grown;
      }
      this.pending[this.pendingCount++] = v.byteValue[id]!;
      return this.takeBytes(false);
    }
    // Any other piece ends the byte run: what is left of it becomes U+FFFD.
    const text = this.takeBytes(true);
    if (type === PieceType.CONTROL) return text;
    if (type === PieceType.UNKNOWN) {
      if (v.unkSurface.length > 0) this.atStart = false;
      return text + v.unkSurface;
    }
    let surface = v.surfaces[id]!;
    if (this.atStart) {
      let consumed = false;
      if (v.stripLeadingSpace && v.pieces[id]!.startsWith(SPACE_SYMBOL)) {
        surface = surface.slice(1); // the dummy-prefix space
        consumed = !v.stripAllLeadingSpaces;
      }
      if (surface.length > 0 || consumed) this.atStart = false;
    }
    return text + surface;
  }

  /** End of the sequence: an unfinished UTF-8 character becomes U+FFFD per byte. */
  flush(): string {
    return this.takeBytes(true);
  }

  private takeBytes(final: boolean): string {
    if (this.pendingCount === 0) return "";
    const [text, used] = decodeByteRun(this.pending, this.pendingCount, final);
    this.pending.copyWithin(0, used, this.pendingCount);
    this.pendingCount -= used;
    if (text.length > 0) this.atStart = false;
    return text;
  }
}

/** Decode a whole id sequence (the one-shot form of DecodeStream). */
export function decodeIds(vocab: DecodeVocab, ids: ArrayLike<number>): string {
  let text = "";
  let atStart = true;
  let bytes = new Uint8Array(64);
  let byteCount = 0;
  const flushBytes = (): void => {
    if (byteCount === 0) return;
    const [s] = decodeByteRun(bytes, byteCount, true);
    text += s;
    byteCount = 0;
    atStart = false;
  };
  for (let k = 0; k < ids.length; k++) {
    const id = ids[k]!;
    checkId(vocab, id);
    const type = vocab.types[id]!;
    if (type === PieceType.BYTE) {
      if (byteCount === bytes.length) {
        const grown = new Uint8Array(bytes.length * 2);
        grown.set(bytes);
        bytes = grown;
      }
      bytes[byteCount++] = vocab.byteValue[id]!;
      continue;
    }
    flushBytes();
    if (type === PieceType.CONTROL) continue;
    if (type === PieceType.UNKNOWN) {
      text += vocab.unkSurface;
      if (vocab.unkSurface.length > 0) atStart = false;
      continue;
    }
    let surface = vocab.surfaces[id]!;
    if (atStart) {
      let consumed = false;
      if (vocab.stripLeadingSpace && vocab.pieces[id]!.startsWith(SPACE_SYMBOL)) {
        surface = surface.slice(1); // the dummy-prefix space
        consumed = !vocab.stripAllLeadingSpaces;
      }
      if (surface.length > 0 || consumed) atStart = false;
    }
    text += surface;
  }
  flushBytes();
  return text;
}
