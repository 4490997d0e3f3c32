// SentencePiece `tokenizer.model` files: a protobuf `ModelProto` message.
//
// Written from the public schema (sentencepiece_model.proto). Only the fields a BPE tokenizer
// needs are modelled; every other field is skipped when reading and not written back.
//
//   message ModelProto {
//     repeated SentencePiece pieces = 1;   // { string piece = 1; float score = 2; Type type = 3; }
//     TrainerSpec trainer_spec = 2;
//     NormalizerSpec normalizer_spec = 3;
//     SelfTestData self_test_data = 4;       // skipped
//     NormalizerSpec denormalizer_spec = 5;  // skipped
//   }
//
// Protobuf wire format in three lines: every field is a varint key `(fieldNumber << 3) | wireType`
// followed by its value; wireType 0 = varint, 1 = 8 fixed bytes, 2 = varint length + bytes
// (strings, bytes and sub-messages), 5 = 4 fixed bytes (float). Absent fields take the default.

/** SentencePiece.Type: what a vocabulary entry is. */
export const PieceType = {
  NORMAL: 1, // ordinary subword piece, produced by merging
  UNKNOWN: 2, // <unk>
  CONTROL: 3, // <s>, </s>: never produced from text, decode to ""
  USER_DEFINED: 4, // always kept whole when it appears in the text
  UNUSED: 5, // in the vocabulary but never emitted (split back into its parts)
  BYTE: 6, // <0x00>..<0xFF>: byte fallback
} as const;

/** TrainerSpec.ModelType. */
export const ModelType = { UNIGRAM: 1, BPE: 2, WORD: 3, CHAR: 4 } as const;

export interface SentencePiece {
  piece: string;
  score: number; // float32 in the file; BPE merges the highest score first
  type: number; // PieceType
}

/** The TrainerSpec fields this project reads or writes (field number in brackets). */
export interface TrainerSpec {
  modelType: number; // [3] ModelType, default UNIGRAM
  vocabSize: number; // [4] default 8000
  characterCoverage: number; // [10] default 0.9995
  maxSentencepieceLength: number; // [20] default 16
  splitByUnicodeScript: boolean; // [21] default true
  splitByWhitespace: boolean; // [22] default true
  splitByNumber: boolean; // [23] default true
  treatWhitespaceAsSuffix: boolean; // [24] default false
  splitDigits: boolean; // [25] default false
  allowWhitespaceOnlyPieces: boolean; // [26] default false
  byteFallback: boolean; // [35] default false
  unkId: number; // [40] default 0
  bosId: number; // [41] default 1
  eosId: number; // [42] default 2
  padId: number; // [43] default -1
  unkSurface: string; // [44] default " \u2047 " (what <unk> decodes to)
  unkPiece: string; // [45] default "<unk>"
  bosPiece: string; // [46] default "<s>"
  eosPiece: string; // [47] default "</s>"
  padPiece: string; // [48] default "<pad>"
}

export interface NormalizerSpec {
  name: string; // [1] e.g. "identity", "nmt_nfkc"
  precompiledCharsmap: Uint8Array; // [2] compiled normalization rules; empty for identity
  addDummyPrefix: boolean; // [3] default true: prepend one space to the input
  removeExtraWhitespaces: boolean; // [4] default true: trim and collapse runs of spaces
  escapeWhitespaces: boolean; // [5] default true: ' ' -> U+2581
}

export interface ModelProto {
  pieces: SentencePiece[];
  trainerSpec: TrainerSpec;
  normalizerSpec: NormalizerSpec;
}

export function defaultTrainerSpec(): TrainerSpec {
  return {
    modelType: ModelType.UNIGRAM,
    vocabSize: 8000,
    characterCoverage: 0.9995,
    maxSentencepieceLength: 16,
    splitByUnicodeScript: true,
    splitByWhitespace: true,
    splitByNumber: true,
    treatWhitespaceAsSuffix: false,
    splitDigits: false,
    allowWhitespaceOnlyPieces: false,
    byteFallback: false,
    unkId: 0,
    bosId: 1,
    eosId: 2,
    padId: -1,
    unkSurface: " \u2047 ",
    unkPiece: "<unk>",
    bosPiece: "<s>",
    eosPiece: "</s>",
    padPiece: "<pad>",
  };
}

export function defaultNormalizerSpec(): NormalizerSpec {
  return {
    name: "",
    precompiledCharsmap: new Uint8Array(0),
    addDummyPrefix: true,
    removeExtraWhitespaces: true,
    escapeWhitespaces: true,
  };
}

// ---------------------------------------------------------------------------------------------
// Reading

// ignoreBOM: keep a leading U+FEFF (LLaMA has a "\uFEFF" piece); the default would drop it.
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** Cursor over one (sub-)message; every read checks bounds and names the file on failure. */
class WireReader {
  pos: number;
  lastLo32 = 0; // low 32 bits of the last varint, for int32 fields (negative = 10-byte varint)

  constructor(
    private readonly bytes: Uint8Array,
    start: number,
    readonly end: number,
    private readonly name: string,
  ) {
    this.pos = start;
  }

  fail(what: string): never {
    throw new Error(
      `${this.name}: not a valid SentencePiece model (${what} at byte ${this.pos}); ` +
        `the file is truncated or corrupt — download tokenizer.model again`,
    );
  }

  /** Unsigned varint as a number (exact below 2^53); the low 32 bits go to lastLo32. */
  varint(): number {
    let value = 0;
    let lo = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) this.fail("varint runs past the end");
      const b = this.bytes[this.pos++]!;
      if (i < 5) lo |= (b & 0x7f) << (7 * i); // bits beyond 32 fall off the shift
      value += (b & 0x7f) * scale;
      scale *= 128;
      if (b < 0x80) {
        this.lastLo32 = lo | 0;
        return value;
      }
    }
    this.fail("varint longer than 10 bytes");
  }

  int32(): number {
    this.varint();
    return this.lastLo32;
  }

  float32(): number {
    if (this.pos + 4 > this.end) this.fail("float runs past the end");
    const b = this.bytes;
    const v = new DataView(b.buffer, b.byteOffset + this.pos, 4).getFloat32(0, true);
    this.pos += 4;
    return v;
  }

  /** Length-delimited field: returns [start, end) of its payload and moves past it. */
  span(): [number, number] {
    const len = this.varint();
    const start = this.pos;
    if (len > this.end - start) this.fail(`length ${len} runs past the end`);
    this.pos = start + len;
    return [start, start + len];
  }

  string(): string {
    const [s, e] = this.span();
    try {
      return utf8.decode(this.bytes.subarray(s, e));
    } catch {
      this.pos = s;
      return this.fail("string field is not valid UTF-8");
    }
  }

  skip(wireType: number): void {
    if (wireType === 0) this.varint();
    else if (wireType === 1) this.advance(8);
    else if (wireType === 2) this.span();
    else if (wireType === 5) this.advance(4);
    else this.fail(`unsupported wire type ${wireType}`);
  }

  sub([start, end]: [number, number]): WireReader {
    return new WireReader(this.bytes, start, end, this.name);
  }

  private advance(n: number): void {
    if (this.pos + n > this.end) this.fail("fixed-size field runs past the end");
    this.pos += n;
  }
}

function readPiece(r: WireReader): SentencePiece {
  const p: SentencePiece = { piece: "", score: 0, type: PieceType.NORMAL };
  while (r.pos < r.end) {
    const key = r.varint();
    const field = Math.floor(key / 8);
    const wire = key & 7;
    if (field === 1 && wire === 2) p.piece = r.string();
    else if (field === 2 && wire === 5) p.score = r.float32();
    else if (field === 3 && wire === 0) p.type = r.int32();
    else r.skip(wire);
  }
  return p;
}

function readTrainerSpec(r: WireReader): TrainerSpec {
  const t = defaultTrainerSpec();
  while (r.pos < r.end) {
    const key = r.varint();
    const field = Math.floor(key / 8);
    const wire = key & 7;
    if (wire === 0) {
      const v = r.int32();
      switch (field) {
        case 3:
          t.modelType = v;
          break;
        case 4:
          t.vocabSize = v;
          break;
        case 20:
          t.maxSentencepieceLength = v;
          break;
        case 21:
          t.splitByUnicodeScript = v !== 0;
          break;
        case 22:
          t.splitByWhitespace = v !== 0;
          break;
        case 23:
          t.splitByNumber = v !== 0;
          break;
        case 24:
          t.treatWhitespaceAsSuffix = v !== 0;
          break;
        case 25:
          t.splitDigits = v !== 0;
          break;
        case 26:
          t.allowWhitespaceOnlyPieces = v !== 0;
          break;
        case 35:
          t.byteFallback = v !== 0;
          break;
        case 40:
          t.unkId = v;
          break;
        case 41:
          t.bosId = v;
          break;
        case 42:
          t.eosId = v;
          break;
        case 43:
          t.padId = v;
          break;
        default:
          break; // other varint options: not needed for encoding
      }
    } else if (wire === 5 && field === 10) {
      t.characterCoverage = r.float32();
    } else if (wire === 2 && field >= 44 && field <= 48) {
      const s = r.string();
      if (field === 44) t.unkSurface = s;
      else if (field === 45) t.unkPiece = s;
      else if (field === 46) t.bosPiece = s;
      else if (field === 47) t.eosPiece = s;
      else t.padPiece = s;
    } else {
      r.skip(wire);
    }
  }
  return t;
}

function readNormalizerSpec(r: WireReader, bytes: Uint8Array): NormalizerSpec {
  const n = defaultNormalizerSpec();
  while (r.pos < r.end) {
    const key = r.varint();
    const field = Math.floor(key / 8);
    const wire = key & 7;
    if (field === 1 && wire === 2) n.name = r.string();
    else if (field === 2 && wire === 2) {
      const [s, e] = r.span();
      n.precompiledCharsmap = bytes.slice(s, e);
    } else if (field === 3 && wire === 0) n.addDummyPrefix = r.varint() !== 0;
    else if (field === 4 && wire === 0) n.removeExtraWhitespaces = r.varint() !== 0;
    else if (field === 5 && wire === 0) n.escapeWhitespaces = r.varint() !== 0;
    else r.skip(wire);
  }
  return n;
}

/**
 * Parse a serialized ModelProto. `name` (usually the file path) is put in every error message.
 * Throws if the bytes are not a well-formed protobuf or do not look like a SentencePiece model.
 */
export function parseModelProto(bytes: Uint8Array, name: string): ModelProto {
  const r = new WireReader(bytes, 0, bytes.length, name);
  let sawTrainer = false;
  let sawNormalizer = false;
  const model: ModelProto = {
    pieces: [],
    trainerSpec: defaultTrainerSpec(),
    normalizerSpec: defaultNormalizerSpec(),
  };
  while (r.pos < r.end) {
    const key = r.varint();
    const field = Math.floor(key / 8);
    const wire = key & 7;
    if (field === 0) r.fail("field number 0");
    if (field === 1 && wire === 2) model.pieces.push(readPiece(r.sub(r.span())));
    else if (field === 2 && wire === 2) {
      model.trainerSpec = readTrainerSpec(r.sub(r.span()));
      sawTrainer = true;
    } else if (field === 3 && wire === 2) {
      model.normalizerSpec = readNormalizerSpec(r.sub(r.span()), bytes);
      sawNormalizer = true;
    } else r.skip(wire);
  }
  if (model.pieces.length > 0 && (!sawTrainer || !sawNormalizer)) {
    // Every real model has both; a file cut exactly between two fields parses but lacks them.
    throw new Error(
      `${name}: not a valid SentencePiece model (no ${sawTrainer ? "normalizer_spec" : "trainer_spec"}); ` +
        `the file is truncated or corrupt — download tokenizer.model again`,
    );
  }
  validateModel(model, name);
  return model;
}

function validateModel(m: ModelProto, name: string): void {
  const bad = (what: string): never => {
    throw new Error(`${name}: not a valid SentencePiece model (${what})`);
  };
  if (m.pieces.length === 0) bad("it has no vocabulary pieces; is this really a tokenizer.model?");
  let unknowns = 0;
  const seen = new Set<string>();
  for (let i = 0; i < m.pieces.length; i++) {
    const p = m.pieces[i]!;
    if (p.piece.length === 0) bad(`piece ${i} is empty`);
    if (p.type < 1 || p.type > 6) bad(`piece ${i} has unknown type ${p.type}`);
    if (seen.has(p.piece)) bad(`piece ${JSON.stringify(p.piece)} is defined twice`);
    seen.add(p.piece);
    if (p.type === PieceType.UNKNOWN) unknowns++;
    if (p.type === PieceType.BYTE && !/^<0x[0-9A-F]{2}>$/.test(p.piece)) {
      bad(`byte piece ${i} is ${JSON.stringify(p.piece)}, expected <0xHH>`);
    }
  }
  if (unknowns !== 1) bad(`expected exactly one <unk> piece, found ${unknowns}`);
}

// ---------------------------------------------------------------------------------------------
// Writing

/** Growable byte buffer with the few protobuf encoders a ModelProto needs. */
class WireWriter {
  private buf = new Uint8Array(1024);
  length = 0;

  private reserve(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.length + n) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
  }

  /** Unsigned varint; negative int32 values are written as 10-byte two's complement (as protobuf). */
  varint(v: number): void {
    this.reserve(10);
    if (v < 0) {
      let big = BigInt.asUintN(64, BigInt(v));
      while (big >= 0x80n) {
        this.buf[this.length++] = Number(big & 0x7fn) | 0x80;
        big >>= 7n;
      }
      this.buf[this.length++] = Number(big);
      return;
    }
    while (v >= 0x80) {
      this.buf[this.length++] = (v % 128) | 0x80;
      v = Math.floor(v / 128);
    }
    this.buf[this.length++] = v;
  }

  key(field: number, wire: number): void {
    this.varint(field * 8 + wire);
  }

  bytesField(field: number, data: Uint8Array): void {
    this.key(field, 2);
    this.varint(data.length);
    this.reserve(data.length);
    this.buf.set(data, this.length);
    this.length += data.length;
  }

  stringField(field: number, s: string): void {
    this.bytesField(field, new TextEncoder().encode(s));
  }

  varintField(field: number, v: number): void {
    this.key(field, 0);
    this.varint(v);
  }

  boolField(field: number, v: boolean): void {
    this.varintField(field, v ? 1 : 0);
  }

  floatField(field: number, v: number): void {
    this.key(field, 5);
    this.reserve(4);
    new DataView(this.buf.buffer).setFloat32(this.length, v, true);
    this.length += 4;
  }

  finish(): Uint8Array {
    return this.buf.slice(0, this.length);
  }
}

/** Serialize a ModelProto (the inverse of parseModelProto for the modelled fields). */
export function serializeModelProto(m: ModelProto): Uint8Array {
  const w = new WireWriter();
  for (const p of m.pieces) {
    const pw = new WireWriter();
    pw.stringField(1, p.piece);
    pw.floatField(2, p.score);
    if (p.type !== PieceType.NORMAL) pw.varintField(3, p.type); // NORMAL is the default
    w.bytesField(1, pw.finish());
  }

  const t = m.trainerSpec;
  const tw = new WireWriter();
  tw.varintField(3, t.modelType);
  tw.varintField(4, t.vocabSize);
  tw.floatField(10, t.characterCoverage);
  tw.varintField(20, t.maxSentencepieceLength);
  tw.boolField(21, t.splitByUnicodeScript);
  tw.boolField(22, t.splitByWhitespace);
  tw.boolField(23, t.splitByNumber);
  tw.boolField(24, t.treatWhitespaceAsSuffix);
  tw.boolField(25, t.splitDigits);
  tw.boolField(26, t.allowWhitespaceOnlyPieces);
  tw.boolField(35, t.byteFallback);
  tw.varintField(40, t.unkId);
  tw.varintField(41, t.bosId);
  tw.varintField(42, t.eosId);
  tw.varintField(43, t.padId);
  tw.stringField(44, t.unkSurface);
  tw.stringField(45, t.unkPiece);
  tw.stringField(46, t.bosPiece);
  tw.stringField(47, t.eosPiece);
  tw.stringField(48, t.padPiece);
  w.bytesField(2, tw.finish());

  const n = m.normalizerSpec;
  const nw = new WireWriter();
  nw.stringField(1, n.name);
  if (n.precompiledCharsmap.length > 0) nw.bytesField(2, n.precompiledCharsmap);
  nw.boolField(3, n.addDummyPrefix);
  nw.boolField(4, n.removeExtraWhitespaces);
  nw.boolField(5, n.escapeWhitespaces);
  w.bytesField(3, nw.finish());

  return w.finish();
}
