// SentencePiece BPE encoding the plain way: the readable reference for bpe.ts's BpeEncoder, which
// gets the same ids with word chunks, a cache of word ids, a pair table and a heap. This one is
// the algorithm as stated at the top of bpe.ts and nothing more: quadratic in the text's length,
// for reading and for the equality tests (tests/tokenizer/tokenizer-props.test.ts), not for use.

import { PieceType, type ModelProto } from "./proto.js";

/** An encoder for `model`: the ids of a normalized string (see normalizer.ts), merging one best pair at a time. */
export function plainBpeEncoder(model: ModelProto): (normalized: string) => number[] {
  const mergeable = new Map<string, number>(); // NORMAL / USER_DEFINED / UNUSED: what merges can produce
  const reserved = new Map<string, number>(); // UNKNOWN / CONTROL / BYTE
  model.pieces.forEach(({ piece, type }, id) => {
    const canMerge = type === PieceType.NORMAL || type === PieceType.USER_DEFINED || type === PieceType.UNUSED;
    (canMerge ? mergeable : reserved).set(piece, id);
  });
  const userDefined = model.pieces
    .filter((p) => p.type === PieceType.USER_DEFINED)
    .map((p) => p.piece)
    .sort((a, b) => b.length - a.length);
  const unkId = model.pieces.findIndex((p) => p.type === PieceType.UNKNOWN);
  return (normalized) => encode(model, mergeable, reserved, userDefined, unkId, normalized);
}

function encode(
  model: ModelProto,
  mergeable: Map<string, number>,
  reserved: Map<string, number>,
  userDefined: string[],
  unkId: number,
  normalized: string,
): number[] {
  // 1. Symbols: a user-defined piece found in the text (frozen: never merges), else one code point.
  const symbols: { text: string; frozen: boolean }[] = [];
  for (let pos = 0; pos < normalized.length; ) {
    const user = userDefined.find((u) => normalized.startsWith(u, pos));
    const c = normalized.charCodeAt(pos);
    const len = user?.length ?? (c >= 0xd800 && c <= 0xdbff && pos + 1 < normalized.length ? 2 : 1);
    symbols.push({ text: normalized.slice(pos, pos + len), frozen: user !== undefined });
    pos += len;
  }

  // 2-3. Merge the adjacent pair whose concatenation is the highest-scoring piece (ties: the
  // leftmost pair), until no pair is a piece. Remember how each UNUSED piece was formed.
  const formedFrom = new Map<string, [string, string]>();
  for (;;) {
    let best = -1,
      bestScore = -Infinity;
    for (let i = 0; i + 1 < symbols.length; i++) {
      const a = symbols[i]!,
        b = symbols[i + 1]!;
      if (a.frozen || b.frozen) continue;
      const id = mergeable.get(a.text + b.text);
      if (id !== undefined && model.pieces[id]!.score > bestScore) {
        best = i;
        bestScore = model.pieces[id]!.score;
      }
    }
    if (best < 0) break;
    const a = symbols[best]!,
      b = symbols[best + 1]!;
    if (model.pieces[mergeable.get(a.text + b.text)!]!.type === PieceType.UNUSED) formedFrom.set(a.text + b.text, [a.text, b.text]);
    symbols.splice(best, 2, { text: a.text + b.text, frozen: false });
  }

  // 4. Symbols -> ids: an UNUSED piece is split back into the two parts that formed it; a symbol
  // that is no piece becomes its UTF-8 bytes <0xHH> (byte_fallback) or <unk>.
  const out: number[] = [];
  const emit = (piece: string): void => {
    const id = reserved.get(piece) ?? mergeable.get(piece) ?? unkId;
    const parts = formedFrom.get(piece);
    if (id !== unkId && model.pieces[id]!.type === PieceType.UNUSED && parts) {
      emit(parts[0]);
      emit(parts[1]);
    } else if (id === unkId && model.trainerSpec.byteFallback) {
      for (const byte of new TextEncoder().encode(piece))
        out.push(reserved.get(`<0x${byte.toString(16).toUpperCase().padStart(2, "0")}>`)!);
    } else {
      out.push(id);
    }
  };
  for (const s of symbols) emit(s.text);
  // Without byte fallback a run of unknown symbols is one <unk>, as in the reference.
  return model.trainerSpec.byteFallback ? out : out.filter((id, i) => !(id === unkId && i > 0 && out[i - 1] === unkId));
}
