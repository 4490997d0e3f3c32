// The tokenizer MobileLLM uses: a SentencePiece BPE model (LLaMA's 32000-piece tokenizer.model)
// behind Hugging Face's slow LlamaTokenizer (legacy: true, add_bos_token: true, no EOS).
//
//   text --normalize--> "▁Hello▁world" --BPE merges--> ["▁Hello", "▁world"] --> [15043, 3186]
//   encode() then prepends BOS (id 1), as LlamaTokenizer does: [1, 15043, 3186].

import { BpeEncoder } from "./bpe.js";
import { DecodeStream, decodeIds, type DecodeVocab } from "./decode.js";
import { normalize } from "./normalizer.js";
import { ModelType, PieceType, parseModelProto, type ModelProto } from "./proto.js";

export interface EncodeOptions {
  /** Prepend BOS (<s>). Default true, as MobileLLM's LlamaTokenizer (add_bos_token: true). */
  addBos?: boolean;
  /** Append EOS (</s>). Default false (add_eos_token: false). */
  addEos?: boolean;
  /**
   * Treat the literal strings of special pieces ("<s>", "</s>", "<unk>") in the text as those
   * tokens. Default true, which is what Hugging Face LlamaTokenizer does: its tokenize() first
   * splits the text on its special tokens, then runs SentencePiece on every piece of text in
   * between separately (legacy: true), so each of those pieces gets its own dummy-prefix "▁".
   * Whitespace next to a special token is kept, as in current transformers, whose special tokens
   * have lstrip/rstrip false (some older versions stripped it). "a<s>b" -> ["▁a", "<s>", "▁b"].
   * false: raw SentencePiece, the special strings are ordinary characters ("<s>" -> "▁<", "s",
   * ">"); this is what SentencePieceProcessor.encode() and the reference cases.jsonl do.
   */
  parseSpecial?: boolean;
}

export class Tokenizer {
  readonly vocabSize: number; // V
  readonly bosId: number; // -1 if the model has none
  readonly eosId: number;
  readonly unkId: number;
  readonly padId: number;

  private readonly bpe: BpeEncoder;
  private readonly vocab: DecodeVocab;
  private readonly pieceIds = new Map<string, number>();
  private readonly specials: { text: string; id: number }[]; // longest first

  /** Parse a tokenizer.model held in memory; `name` appears in error messages. */
  static fromBytes(bytes: Uint8Array, name = "tokenizer.model (in memory)"): Tokenizer {
    return new Tokenizer(parseModelProto(bytes, name), name);
  }

  constructor(
    readonly model: ModelProto,
    readonly name: string,
  ) {
    const spec = model.trainerSpec;
    const norm = model.normalizerSpec;
    if (spec.modelType !== ModelType.BPE) {
      const kind = Object.entries(ModelType).find(([, v]) => v === spec.modelType)?.[0] ?? spec.modelType;
      throw new Error(`${name}: unsupported SentencePiece model type ${kind}; only BPE models are implemented`);
    }
    if (norm.precompiledCharsmap.length > 0) {
      throw new Error(
        `${name}: unsupported normalizer "${norm.name}" (it has precompiled normalization rules); ` +
          `only the identity normalizer is implemented`,
      );
    }
    if (spec.treatWhitespaceAsSuffix) {
      throw new Error(`${name}: unsupported option treat_whitespace_as_suffix`);
    }

    const V = model.pieces.length;
    this.vocabSize = V;
    const types = new Uint8Array(V);
    const byteValue = new Int16Array(V).fill(-1);
    for (let id = 0; id < V; id++) {
      const p = model.pieces[id]!;
      types[id] = p.type;
      this.pieceIds.set(p.piece, id);
      if (p.type === PieceType.BYTE) byteValue[id] = parseInt(p.piece.slice(3, 5), 16);
    }
    this.unkId = types.indexOf(PieceType.UNKNOWN);
    if (spec.byteFallback) {
      const have = new Set(byteValue.filter((b) => b >= 0));
      for (let b = 0; b < 256; b++) {
        if (!have.has(b)) {
          throw new Error(
            `${name}: byte_fallback is on but the byte piece <0x${b.toString(16).toUpperCase().padStart(2, "0")}> is missing`,
          );
        }
      }
    }
    // As SentencePieceProcessor: bos/eos/pad ids are those of the named pieces, if CONTROL.
    const controlId = (piece: string): number => {
      const id = this.pieceIds.get(piece);
      return id !== undefined && types[id] === PieceType.CONTROL ? id : -1;
    };
    this.bosId = controlId(spec.bosPiece);
    this.eosId = controlId(spec.eosPiece);
    this.padId = controlId(spec.padPiece);

    this.bpe = new BpeEncoder(model);
    this.vocab = {
      pieces: model.pieces.map((p) => p.piece),
      surfaces: model.pieces.map((p) => p.piece.replaceAll("\u2581", " ")),
      types,
      byteValue,
      unkSurface: spec.unkSurface,
      stripLeadingSpace: norm.addDummyPrefix || norm.removeExtraWhitespaces,
      stripAllLeadingSpaces: norm.removeExtraWhitespaces,
      name,
    };
    this.specials = model.pieces
      .map((p, id) => ({ text: p.piece, id, type: p.type }))
      .filter((p) => p.type === PieceType.CONTROL || p.type === PieceType.UNKNOWN)
      .map(({ text, id }) => ({ text, id }))
      .sort((a, b) => b.text.length - a.text.length);
  }

  /** Token ids of `text` (BOS first by default; see EncodeOptions). */
  encode(text: string, opts: EncodeOptions = {}): number[] {
    const { addBos = true, addEos = false, parseSpecial = true } = opts;
    const ids: number[] = [];
    if (addBos && this.bosId >= 0) ids.push(this.bosId);
    if (parseSpecial) this.encodeWithSpecials(text, ids);
    else this.encodeRaw(text, ids);
    if (addEos && this.eosId >= 0) ids.push(this.eosId);
    return ids;
  }

  /** Ids and their piece strings ("▁Hello", "<0x0A>", ...). */
  encodeWithPieces(text: string, opts: EncodeOptions = {}): { ids: number[]; pieces: string[] } {
    const ids = this.encode(text, opts);
    return { ids, pieces: ids.map((id) => this.idToPiece(id)) };
  }

  encodePieces(text: string, opts: EncodeOptions = {}): string[] {
    return this.encodeWithPieces(text, opts).pieces;
  }

  /**
   * Text of `ids`, as SentencePieceProcessor.decode: control tokens such as BOS decode to ""
   * (like Hugging Face decode(ids, skip_special_tokens=True)), <unk> to " \u2047 ".
   */
  decode(ids: ArrayLike<number>): string {
    return decodeIds(this.vocab, ids);
  }

  /** Drop the per-word cache that makes repeated words cheap (it holds at most 65536 words). */
  clearCache(): void {
    this.bpe.clearCache();
  }

  /** Incremental decoder for generation: push(id) returns newly completed text; flush() at the end. */
  createDecodeStream(): DecodeStream {
    return new DecodeStream(this.vocab);
  }

  idToPiece(id: number): string {
    const piece = this.vocab.pieces[id];
    if (piece === undefined || !Number.isInteger(id)) {
      throw new RangeError(`${this.name}: token id ${id} is out of range (vocabulary has ${this.vocabSize} ids)`);
    }
    return piece;
  }

  /** Id of a piece string; unkId if it is not in the vocabulary (as SentencePiece). */
  pieceToId(piece: string): number {
    return this.pieceIds.get(piece) ?? this.unkId;
  }

  /** Raw SentencePieceProcessor.encode(text): no BOS/EOS, special strings are plain text. */
  private encodeRaw(text: string, out: number[]): void {
    const normalized = normalize(text, this.model.normalizerSpec, false);
    this.bpe.encodeNormalized(normalized, out);
  }

  /** LlamaTokenizer.tokenize: split out special-token strings, encode the text between them. */
  private encodeWithSpecials(text: string, out: number[]): void {
    const specials = this.specials;
    // Next occurrence of each special string at or after the cursor (-1: none left); each is
    // searched again only once the cursor has passed it, so the whole split is linear.
    const nextAt = specials.map((s) => text.indexOf(s.text));
    let start = 0; // start of the plain text not encoded yet
    for (;;) {
      let best = -1; // index into specials; leftmost occurrence, longest on a tie (sorted so)
      for (let k = 0; k < specials.length; k++) {
        if (nextAt[k]! >= 0 && nextAt[k]! < start) nextAt[k] = text.indexOf(specials[k]!.text, start);
        if (nextAt[k]! >= 0 && (best < 0 || nextAt[k]! < nextAt[best]!)) best = k;
      }
      if (best < 0) break;
      const at = nextAt[best]!;
      if (at > start) this.encodeRaw(text.slice(start, at), out);
      out.push(specials[best]!.id);
      start = at + specials[best]!.text.length;
    }
    if (start < text.length) this.encodeRaw(text.slice(start), out);
  }
}
