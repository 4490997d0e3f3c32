// SentencePiece BPE encoding (the algorithm of sentencepiece's bpe_model.cc, re-derived):
//
//   1. Split the normalized string into symbols: one Unicode character each, except that a
//      USER_DEFINED piece found in the text becomes one frozen symbol that never merges.
//   2. For every adjacent pair whose concatenation is a vocabulary piece, push the pair on a
//      max-heap keyed by that piece's score (ties: the leftmost pair first).
//   3. Pop the best pair, merge right into left (a doubly linked list over the symbols), and push
//      the two new pairs it forms with its neighbours. Popped pairs made stale by an earlier merge
//      are recognised by their length no longer matching and are skipped.
//   4. Each final symbol becomes its piece id; a symbol that is not in the vocabulary becomes the
//      byte pieces <0xHH> of its UTF-8 encoding (byte_fallback) or <unk>.
//
// The reference merges over the whole normalized string. A merge can only join two characters
// that stand next to each other inside some vocabulary piece, so wherever the text has an
// adjacent pair (c1, c2) that occurs in no piece, no symbol can ever span that boundary: the
// string can be cut there into chunks that are encoded independently (and cached) with exactly
// the same result. For LLaMA/MobileLLM that cuts in front of every "▁" after a word and around
// every "\n", so chunks are words and the cache makes repeated words cost one Map lookup.

import { PieceType, type ModelProto } from "./proto.js";

const CACHE_MAX_WORD = 48; // cache the ids of words up to this many UTF-16 units
const CACHE_MAX_ENTRIES = 1 << 16;

export class BpeEncoder {
  /** NORMAL / USER_DEFINED / UNUSED pieces: the ones merges can produce. */
  private readonly mergeable = new Map<string, number>();
  /** UNKNOWN / CONTROL / BYTE pieces (looked up first for a final symbol, as the reference does). */
  private readonly reserved = new Map<string, number>();
  private readonly scores: Float64Array;
  private readonly types: Uint8Array;
  private readonly maxPieceLength: number; // in UTF-16 units: longer pairs cannot be pieces
  private readonly byteIds: Int32Array | null; // byte value -> id of <0xHH>, when byte_fallback
  private readonly unkId: number;
  private readonly userDefined: string[]; // longest first, for prefix matching
  private readonly hasUnused: boolean;
  /** joinAscii[a * 128 + b] = 1 if the ASCII pair "ab" occurs inside some mergeable piece. */
  private readonly joinAscii = new Uint8Array(128 * 128);
  /** The same for UTF-16 code-unit pairs with a unit >= 128, as a * 65536 + b. */
  private readonly joinOther = new Set<number>();
  private readonly cache = new Map<string, number[]>();
  /** Id of each single-UTF-16-unit mergeable piece (-1: none), so symbols start with their ids. */
  private readonly unitId = new Int32Array(65536).fill(-1);
  /**
   * (left id, right id) -> id of the piece left+right, for every way of writing a mergeable
   * piece as two mergeable pieces. It answers "is this pair a piece?" for two symbols that are
   * themselves pieces without building their string; other pairs use the string lookup. Not
   * used for models with UNUSED pieces (their split-back bookkeeping needs the strings).
   */
  private readonly pairMerge: PairTable | null;

  // Scratch buffers, grown on demand and reused by every call (no allocation per symbol).
  private symStart = new Int32Array(0); // UTF-16 offset of symbol i in the chunk
  private symLen = new Int32Array(0); // UTF-16 length; 0 once merged into its left neighbour
  private symPrev = new Int32Array(0);
  private symNext = new Int32Array(0);
  private symFrozen = new Uint8Array(0);
  private symId = new Int32Array(0); // mergeable id of the symbol's text, -1 if it is not a piece
  private pairLeft = new Int32Array(0);
  private pairRight = new Int32Array(0);
  private pairLen = new Int32Array(0);
  private pairScore = new Float64Array(0);
  private pairId = new Int32Array(0); // id of the merged piece
  private heap = new Int32Array(0); // max-heap of pair indices
  private heapSize = 0;
  private pairCount = 0;
  private chunkText = "";

  private readonly utf8 = new TextEncoder();

  constructor(model: ModelProto) {
    const V = model.pieces.length;
    this.scores = new Float64Array(V);
    this.types = new Uint8Array(V);
    let maxLen = 1;
    let hasUnused = false;
    const userDefined: string[] = [];
    for (let id = 0; id < V; id++) {
      const { piece, score, type } = model.pieces[id]!;
      this.scores[id] = score;
      this.types[id] = type;
      if (type === PieceType.NORMAL || type === PieceType.USER_DEFINED || type === PieceType.UNUSED) {
        this.mergeable.set(piece, id);
        maxLen = Math.max(maxLen, piece.length);
        if (piece.length === 1) this.unitId[piece.charCodeAt(0)] = id;
        if (type === PieceType.USER_DEFINED) userDefined.push(piece);
        if (type === PieceType.UNUSED) hasUnused = true;
        for (let k = 1; k < piece.length; k++) {
          const a = piece.charCodeAt(k - 1);
          const b = piece.charCodeAt(k);
          if (a < 128 && b < 128) this.joinAscii[a * 128 + b] = 1;
          else this.joinOther.add(a * 65536 + b);
        }
      } else {
        this.reserved.set(piece, id);
      }
    }
    this.maxPieceLength = maxLen;
    if (hasUnused) {
      this.pairMerge = null;
    } else {
      const triples: number[] = []; // left, right, merged
      for (const [piece, id] of this.mergeable) {
        for (let k = 1; k < piece.length; k++) {
          const c = piece.charCodeAt(k);
          if (c >= 0xdc00 && c <= 0xdfff) continue; // not between the halves of a surrogate pair
          const left = this.mergeable.get(piece.slice(0, k));
          const right = this.mergeable.get(piece.slice(k));
          if (left !== undefined && right !== undefined) triples.push(left, right, id);
        }
      }
      this.pairMerge = new PairTable(triples.length / 3);
      for (let t = 0; t < triples.length; t += 3) this.pairMerge.set(triples[t]!, triples[t + 1]!, triples[t + 2]!);
    }
    this.hasUnused = hasUnused;
    this.userDefined = userDefined.sort((a, b) => b.length - a.length);
    this.unkId = model.pieces.findIndex((p) => p.type === PieceType.UNKNOWN);

    if (model.trainerSpec.byteFallback) {
      this.byteIds = new Int32Array(256).fill(-1);
      for (let id = 0; id < V; id++) {
        const p = model.pieces[id]!;
        if (p.type === PieceType.BYTE) this.byteIds[parseInt(p.piece.slice(3, 5), 16)] = id;
      }
    } else {
      this.byteIds = null;
    }
  }

  /** Forget the cached ids of words seen so far. */
  clearCache(): void {
    this.cache.clear();
  }

  /** Append the ids of a normalized string (see normalizer.ts) to `out`. */
  encodeNormalized(normalized: string, out: number[]): void {
    const first = out.length;
    // Cut between every adjacent pair of characters that no piece contains (see top of file).
    let start = 0;
    let a = normalized.charCodeAt(0);
    for (let i = 1; i < normalized.length; i++) {
      const b = normalized.charCodeAt(i);
      const joinable =
        a < 128 && b < 128 ? this.joinAscii[a * 128 + b] === 1 : (b >= 0xdc00 && b <= 0xdfff) || this.joinOther.has(a * 65536 + b); // never split a surrogate pair
      if (!joinable) {
        this.encodeCached(normalized.slice(start, i), out);
        start = i;
      }
      a = b;
    }
    if (start < normalized.length) this.encodeCached(normalized.slice(start), out);

    // Without byte fallback the reference emits a run of unknown characters as one <unk>.
    if (this.byteIds === null) {
      let w = first;
      for (let r = first; r < out.length; r++) {
        if (out[r] === this.unkId && w > first && out[w - 1] === this.unkId) continue;
        out[w++] = out[r]!;
      }
      out.length = w;
    }
  }

  private encodeCached(word: string, out: number[]): void {
    if (word.length > CACHE_MAX_WORD) {
      this.encodeChunk(word, out);
      return;
    }
    let ids = this.cache.get(word);
    if (ids === undefined) {
      ids = [];
      this.encodeChunk(word, ids);
      if (this.cache.size >= CACHE_MAX_ENTRIES) this.cache.clear();
      this.cache.set(word, ids);
    }
    for (let i = 0; i < ids.length; i++) out.push(ids[i]!);
  }

  /** The reference algorithm over one chunk (steps 1-4 above). */
  private encodeChunk(text: string, out: number[]): void {
    this.chunkText = text;
    this.ensureCapacity(text.length);

    // 1. Symbols: user-defined pieces (frozen) or single code points.
    let n = 0;
    for (let pos = 0; pos < text.length; ) {
      let len = 0;
      let frozen = 0;
      for (const u of this.userDefined) {
        if (text.startsWith(u, pos)) {
          len = u.length;
          frozen = 1;
          break;
        }
      }
      let id: number;
      if (len > 0) {
        id = this.mergeable.get(text.slice(pos, pos + len))!;
      } else {
        const c = text.charCodeAt(pos);
        len = c >= 0xd800 && c <= 0xdbff && pos + 1 < text.length ? 2 : 1; // surrogate pair
        id = len === 1 ? this.unitId[c]! : (this.mergeable.get(text.slice(pos, pos + 2)) ?? -1);
      }
      this.symId[n] = id;
      this.symStart[n] = pos;
      this.symLen[n] = len;
      this.symFrozen[n] = frozen;
      this.symPrev[n] = n - 1;
      this.symNext[n] = n + 1;
      n++;
      pos += len;
    }
    if (n === 0) return;
    this.symNext[n - 1] = -1;

    // 2. Candidate pairs.
    this.heapSize = 0;
    this.pairCount = 0;
    const revMerge = this.hasUnused ? new Map<string, [string, string]>() : null;
    for (let i = 1; i < n; i++) this.tryPair(i - 1, i, revMerge);

    // 3. Merge best-first.
    while (this.heapSize > 0) {
      const p = this.popBest();
      const L = this.pairLeft[p]!;
      const R = this.pairRight[p]!;
      const lenL = this.symLen[L]!;
      const lenR = this.symLen[R]!;
      if (lenL === 0 || lenR === 0 || lenL + lenR !== this.pairLen[p]) continue; // stale
      this.symLen[L] = lenL + lenR;
      this.symLen[R] = 0;
      this.symId[L] = this.pairId[p]!;
      const next = this.symNext[R]!;
      this.symNext[L] = next;
      if (next >= 0) this.symPrev[next] = L;
      const prev = this.symPrev[L]!;
      if (prev >= 0) this.tryPair(prev, L, revMerge);
      if (next >= 0) this.tryPair(L, next, revMerge);
    }

    // 4. Final symbols -> ids.
    for (let i = 0; i >= 0; i = this.symNext[i]!) {
      if (revMerge === null && this.symId[i]! >= 0) {
        out.push(this.symId[i]!); // a NORMAL or USER_DEFINED piece
      } else {
        const s = this.symStart[i]!;
        this.emit(text.slice(s, s + this.symLen[i]!), out, revMerge);
      }
    }
  }

  private emit(piece: string, out: number[], revMerge: Map<string, [string, string]> | null): void {
    let id = this.reserved.get(piece) ?? this.mergeable.get(piece) ?? -1;
    if (id >= 0 && revMerge !== null && this.types[id] === PieceType.UNUSED) {
      // UNUSED pieces are never emitted: split back into the two parts that formed them.
      const parts = revMerge.get(piece);
      if (parts !== undefined) {
        this.emit(parts[0], out, revMerge);
        this.emit(parts[1], out, revMerge);
        return;
      }
    }
    if (id < 0) id = this.unkId;
    if (id === this.unkId && this.byteIds !== null) {
      for (const b of this.utf8.encode(piece)) out.push(this.byteIds[b]!);
      return;
    }
    out.push(id);
  }

  /** Push (L, R) if their concatenation is a mergeable piece. */
  private tryPair(L: number, R: number, revMerge: Map<string, [string, string]> | null): void {
    if (this.symFrozen[L] === 1 || this.symFrozen[R] === 1) return;
    const len = this.symLen[L]! + this.symLen[R]!;
    if (len > this.maxPieceLength) return;
    const idL = this.symId[L]!;
    const idR = this.symId[R]!;
    let id: number | undefined;
    if (this.pairMerge !== null && idL >= 0 && idR >= 0) {
      const merged = this.pairMerge.get(idL, idR); // both are pieces: no string needed
      id = merged >= 0 ? merged : undefined;
    } else {
      const start = this.symStart[L]!;
      const merged = this.chunkText.slice(start, start + len);
      id = this.mergeable.get(merged);
      if (id !== undefined && revMerge !== null && this.types[id] === PieceType.UNUSED) {
        const split = start + this.symLen[L]!;
        revMerge.set(merged, [this.chunkText.slice(start, split), this.chunkText.slice(split, start + len)]);
      }
    }
    if (id === undefined) return;
    const p = this.pairCount++;
    this.pairLeft[p] = L;
    this.pairRight[p] = R;
    this.pairLen[p] = len;
    this.pairScore[p] = this.scores[id]!;
    this.pairId[p] = id;
    this.pushHeap(p);
  }

  // --- binary max-heap over pair indices: higher score first, then smaller left index ---

  private better(a: number, b: number): boolean {
    const sa = this.pairScore[a]!;
    const sb = this.pairScore[b]!;
    return sa > sb || (sa === sb && this.pairLeft[a]! < this.pairLeft[b]!);
  }

  private pushHeap(p: number): void {
    const h = this.heap;
    let i = this.heapSize++;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.better(p, h[parent]!)) break;
      h[i] = h[parent]!;
      i = parent;
    }
    h[i] = p;
  }

  private popBest(): number {
    const h = this.heap;
    const top = h[0]!;
    const last = h[--this.heapSize]!;
    let i = 0;
    const size = this.heapSize;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= size) break;
      if (child + 1 < size && this.better(h[child + 1]!, h[child]!)) child++;
      if (!this.better(h[child]!, last)) break;
      h[i] = h[child]!;
      i = child;
    }
    if (size > 0) h[i] = last;
    return top;
  }

  private ensureCapacity(n: number): void {
    if (this.symStart.length >= n + 1) return;
    const cap = Math.max(n + 1, 2 * this.symStart.length, 64);
    this.symStart = new Int32Array(cap);
    this.symLen = new Int32Array(cap);
    this.symPrev = new Int32Array(cap);
    this.symNext = new Int32Array(cap);
    this.symFrozen = new Uint8Array(cap);
    this.symId = new Int32Array(cap);
    // Every merge adds at most two pairs to the n-1 initial ones.
    const pairCap = 3 * cap;
    this.pairLeft = new Int32Array(pairCap);
    this.pairRight = new Int32Array(pairCap);
    this.pairLen = new Int32Array(pairCap);
    this.pairScore = new Float64Array(pairCap);
    this.pairId = new Int32Array(pairCap);
    this.heap = new Int32Array(pairCap);
  }
}

/**
 * Open-addressing hash table (left id, right id) -> merged id, in typed arrays: a lookup is a
 * multiply, a shift and usually one probe (a Map with number keys is several times slower here).
 */
class PairTable {
  private readonly lefts: Int32Array;
  private readonly rights: Int32Array;
  private readonly values: Int32Array;
  private readonly mask: number;
  private readonly shift: number;

  constructor(maxEntries: number) {
    let bits = 4;
    while (1 << bits < 2 * maxEntries) bits++; // load factor <= 1/2
    const cap = 1 << bits;
    this.lefts = new Int32Array(cap).fill(-1);
    this.rights = new Int32Array(cap);
    this.values = new Int32Array(cap);
    this.mask = cap - 1;
    this.shift = 32 - bits;
  }

  /** Multiplicative hash: the top bits of the mixed product pick the slot. */
  private slot(left: number, right: number): number {
    return (Math.imul(Math.imul(left, 0x9e3779b1) ^ right, 0x85ebca6b) >>> this.shift) & this.mask;
  }

  set(left: number, right: number, value: number): void {
    let i = this.slot(left, right);
    while (this.lefts[i] !== -1 && (this.lefts[i] !== left || this.rights[i] !== right)) i = (i + 1) & this.mask;
    this.lefts[i] = left;
    this.rights[i] = right;
    this.values[i] = value;
  }

  /** The merged id, or -1. */
  get(left: number, right: number): number {
    let i = this.slot(left, right);
    for (;;) {
      const l = this.lefts[i]!;
      if (l === -1) return -1;
      if (l === left && this.rights[i] === right) return this.values[i]!;
      i = (i + 1) & this.mask;
    }
  }
}
