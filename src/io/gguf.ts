// Reading GGUF files (layout: gguf-format.ts): the header with every field validated, then tensors
// read on demand with positioned reads, like the other checkpoint readers. A llama-architecture
// GGUF becomes a MobileLLM config plus a TensorFile in Hugging Face naming (ggufAsCheckpoint), so
// loadModel and loadWeights treat it like any checkpoint; quantized tensors are handed over as
// their blocks (and as dequantized f32 for a load in another dtype).

import { readBytes, type ByteSource } from "../platform/byte-source.js";
import { dequantize, type QuantDType } from "../kernels/quant.js";
import { parseConfig, type MobileLLMConfig } from "../model/config.js";
import { layerTensorName, type LayerWeights } from "../model/weights.js";
import {
  GGML_TYPE,
  GGUF_BLOCK_NAMES,
  GGUF_DEFAULT_ALIGNMENT,
  GGUF_MAGIC,
  GGUF_TYPE,
  ggmlBytes,
  OTHER_GGML_TYPES,
  permuteRopeRows,
  type GgmlTypeName,
} from "./gguf-format.js";
import { CheckpointError, type TensorEntry, type TensorFile } from "./tensor-file.js";
import { defaultNormalizerSpec, defaultTrainerSpec, ModelType, PieceType, type ModelProto } from "../tokenizer/proto.js";

export type GgufMetaValue = number | bigint | boolean | string | GgufMetaValue[];

export interface GgufTensorInfo {
  name: string;
  type: GgmlTypeName;
  /** ne, innermost first. */
  dims: number[];
  /** Absolute byte position in the file, and size. */
  position: number;
  bytes: number;
}

export interface GgufFile {
  path: string;
  version: number;
  metadata: Map<string, GgufMetaValue>;
  tensors: Map<string, GgufTensorInfo>;
  /** Read a tensor's bytes into dst (dst.length = its size). */
  read(t: GgufTensorInfo, dst: Uint8Array): Promise<void>;
  close(): void;
}

const TYPE_NAMES = Object.fromEntries(Object.entries(GGML_TYPE).map(([k, v]) => [v, k])) as Record<number, GgmlTypeName>;
const VALUE_TYPE_NAMES = Object.fromEntries(Object.entries(GGUF_TYPE).map(([k, v]) => [v, k])) as Record<number, string>;

/** Signals that the header continues past the bytes read so far (read more and parse again). */
class NeedMore extends Error {}

/** A cursor over the header bytes; every read checks bounds. */
class Cursor {
  pos = 0;
  private readonly view: DataView;
  private readonly utf8 = new TextDecoder("utf-8", { fatal: true });
  constructor(
    private readonly buf: Uint8Array,
    private readonly complete: boolean,
    private readonly fail: (m: string) => never,
  ) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  private need(n: number, what: string): void {
    if (this.pos + n <= this.buf.length) return;
    if (!this.complete) throw new NeedMore();
    this.fail(`file ends inside ${what} (truncated download? re-download the file)`);
  }
  u8(what: string): number {
    this.need(1, what);
    return this.buf[this.pos++]!;
  }
  u32(what: string): number {
    this.need(4, what);
    const v = this.view.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }
  u64(what: string): number {
    this.need(8, what);
    const v = this.view.getBigUint64(this.pos, true);
    this.pos += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) this.fail(`${what} is ${v}, impossibly large`);
    return Number(v);
  }
  string(what: string): string {
    const n = this.u64(`the length of ${what}`);
    this.need(n, what);
    try {
      return this.utf8.decode(this.buf.subarray(this.pos, this.pos + n));
    } catch {
      return this.fail(`${what} is not valid UTF-8`);
    } finally {
      this.pos += n;
    }
  }
  value(type: number, what: string): GgufMetaValue {
    const v = this.view;
    const fixed = (n: number, get: () => GgufMetaValue) => {
      this.need(n, what);
      const r = get();
      this.pos += n;
      return r;
    };
    switch (type) {
      case GGUF_TYPE.UINT8:
        return fixed(1, () => v.getUint8(this.pos));
      case GGUF_TYPE.INT8:
        return fixed(1, () => v.getInt8(this.pos));
      case GGUF_TYPE.UINT16:
        return fixed(2, () => v.getUint16(this.pos, true));
      case GGUF_TYPE.INT16:
        return fixed(2, () => v.getInt16(this.pos, true));
      case GGUF_TYPE.UINT32:
        return fixed(4, () => v.getUint32(this.pos, true));
      case GGUF_TYPE.INT32:
        return fixed(4, () => v.getInt32(this.pos, true));
      case GGUF_TYPE.FLOAT32:
        return fixed(4, () => v.getFloat32(this.pos, true));
      case GGUF_TYPE.UINT64:
        return fixed(8, () => v.getBigUint64(this.pos, true));
      case GGUF_TYPE.INT64:
        return fixed(8, () => v.getBigInt64(this.pos, true));
      case GGUF_TYPE.FLOAT64:
        return fixed(8, () => v.getFloat64(this.pos, true));
      case GGUF_TYPE.BOOL: {
        const b = this.u8(what);
        if (b > 1) this.fail(`${what} is a bool holding ${b} (must be 0 or 1)`);
        return b === 1;
      }
      case GGUF_TYPE.STRING:
        return this.string(what);
      case GGUF_TYPE.ARRAY: {
        const itemType = this.u32(`the item type of ${what}`);
        if (VALUE_TYPE_NAMES[itemType] === undefined) this.fail(`${what} is an array of unknown value type ${itemType}`);
        const n = this.u64(`the length of ${what}`);
        if (n > this.buf.length && this.complete) this.fail(`${what} claims ${n} items, more than the file holds`);
        const out: GgufMetaValue[] = new Array(n);
        for (let i = 0; i < n; i++) out[i] = this.value(itemType, `${what}[${i}]`);
        return out;
      }
      default:
        return this.fail(`${what} has unknown value type ${type}`);
    }
  }
}

interface Header {
  version: number;
  metadata: Map<string, GgufMetaValue>;
  infos: { name: string; type: GgmlTypeName; dims: number[]; offset: number }[];
  end: number;
}

function parseHeader(buf: Uint8Array, complete: boolean, fail: (m: string) => never): Header {
  const c = new Cursor(buf, complete, fail);
  const magic = c.u32("the magic number");
  if (magic !== GGUF_MAGIC) fail('not a GGUF file (it does not start with "GGUF")');
  const version = c.u32("the version");
  if (version !== 2 && version !== 3)
    fail(`GGUF version ${version} is not supported (this reader knows versions 2 and 3; convert the file with a current llama.cpp)`);
  const tensorCount = c.u64("the tensor count");
  const kvCount = c.u64("the metadata count");
  const metadata = new Map<string, GgufMetaValue>();
  for (let i = 0; i < kvCount; i++) {
    const key = c.string(`metadata key ${i}`);
    if (key.length === 0) fail(`metadata key ${i} is empty`);
    if (metadata.has(key)) fail(`metadata key "${key}" appears twice`);
    const type = c.u32(`the value type of "${key}"`);
    metadata.set(key, c.value(type, `metadata "${key}"`));
  }
  const infos: Header["infos"] = [];
  const names = new Set<string>();
  for (let i = 0; i < tensorCount; i++) {
    const name = c.string(`the name of tensor ${i}`);
    if (names.has(name)) fail(`tensor "${name}" appears twice`);
    names.add(name);
    const nDims = c.u32(`the dimension count of tensor "${name}"`);
    if (nDims < 1 || nDims > 4) fail(`tensor "${name}" has ${nDims} dimensions (GGUF allows 1 to 4)`);
    const dims: number[] = [];
    for (let d = 0; d < nDims; d++) {
      const n = c.u64(`dimension ${d} of tensor "${name}"`);
      if (n < 1) fail(`tensor "${name}" has dimension ${d} of size 0`);
      dims.push(n);
    }
    const typeId = c.u32(`the type of tensor "${name}"`);
    const type = TYPE_NAMES[typeId];
    if (type === undefined) {
      const known = OTHER_GGML_TYPES[typeId];
      fail(
        `tensor "${name}" has type ${known ?? `number ${typeId}`}, which this loader does not read ` +
          "(supported: F32, F16, BF16, Q8_0, Q4_0; requantize the model with llama-quantize to one of them)",
      );
    }
    if ((type === "Q8_0" || type === "Q4_0") && dims[0]! % 32 !== 0)
      fail(`tensor "${name}" is ${type} with rows of ${dims[0]}, not a multiple of 32`);
    const offset = c.u64(`the data offset of tensor "${name}"`);
    infos.push({ name, type: type!, dims, offset });
  }
  return { version, metadata, infos, end: c.pos };
}

/** Read and validate a GGUF file's header and tensor table from `src` (data is read on demand). */
export async function readGguf(src: ByteSource): Promise<GgufFile> {
  const path = src.name,
    size = src.size;
  const fail = (m: string): never => {
    throw new CheckpointError(path, m);
  };
  try {
    let header: Header | null = null;
    for (let n = Math.min(size, 1 << 20); header === null; n = Math.min(size, n * 4)) {
      const buf = await readBytes(src, 0, n, "the GGUF header");
      try {
        header = parseHeader(buf, n === size, fail);
      } catch (e) {
        if (!(e instanceof NeedMore)) throw e;
      }
    }
    const alignValue = header.metadata.get("general.alignment") ?? GGUF_DEFAULT_ALIGNMENT;
    if (typeof alignValue !== "number" || !Number.isInteger(alignValue) || alignValue < 1 || (alignValue & (alignValue - 1)) !== 0) {
      fail(`general.alignment is ${String(alignValue)}; it must be a power of two`);
    }
    const alignment = alignValue as number;
    const dataStart = Math.ceil(header.end / alignment) * alignment;
    const tensors = new Map<string, GgufTensorInfo>();
    const spans: [number, number, string][] = [];
    for (const t of header.infos) {
      if (t.offset % alignment !== 0) fail(`tensor "${t.name}" starts at offset ${t.offset}, not a multiple of the alignment ${alignment}`);
      const bytes = ggmlBytes(
        t.type,
        t.dims.reduce((a, b) => a * b, 1),
      );
      const position = dataStart + t.offset;
      if (position + bytes > size)
        fail(`tensor "${t.name}" (${bytes} bytes at ${position}) runs past the end of the file (${size} bytes; truncated download?)`);
      spans.push([position, position + bytes, t.name]);
      tensors.set(t.name, { name: t.name, type: t.type, dims: t.dims, position, bytes });
    }
    spans.sort((a, b) => a[0] - b[0]);
    for (let i = 1; i < spans.length; i++) {
      if (spans[i]![0] < spans[i - 1]![1]) fail(`tensors "${spans[i - 1]![2]}" and "${spans[i]![2]}" overlap`);
    }
    let closed = false;
    return {
      path,
      version: header.version,
      metadata: header.metadata,
      tensors,
      async read(t, dst) {
        if (closed) throw new CheckpointError(path, "read after close");
        if (dst.length !== t.bytes) throw new RangeError(`${path}: tensor "${t.name}" has ${t.bytes} bytes, the destination ${dst.length}`);
        await src.read(t.position, dst, `tensor "${t.name}"`);
      },
      close() {
        if (!closed) src.close?.();
        closed = true;
      },
    };
  } catch (e) {
    src.close?.();
    throw e;
  }
}

// ---- a llama GGUF as a MobileLLM checkpoint ---------------------------------------------------------

function metaNumber(g: GgufFile, key: string, required = true): number | undefined {
  const v = g.metadata.get(key);
  if (v === undefined) {
    if (required) throw new CheckpointError(g.path, `metadata "${key}" is missing (a llama GGUF needs it)`);
    return undefined;
  }
  if (typeof v !== "number" && typeof v !== "bigint")
    throw new CheckpointError(g.path, `metadata "${key}" is ${JSON.stringify(String(v))}, not a number`);
  return Number(v);
}

/** The MobileLLM config of a llama-architecture GGUF (other architectures: an error naming them). */
export function ggufConfig(g: GgufFile): MobileLLMConfig {
  const arch = g.metadata.get("general.architecture");
  if (arch !== "llama") {
    throw new CheckpointError(
      g.path,
      `architecture ${JSON.stringify(arch ?? null)} is not supported; this loader reads llama-architecture GGUF files (MobileLLM is one)`,
    );
  }
  const D = metaNumber(g, "llama.embedding_length")!,
    H = metaNumber(g, "llama.attention.head_count")!;
  const embd = g.tensors.get("token_embd.weight");
  if (!embd) throw new CheckpointError(g.path, `tensor "token_embd.weight" is missing`);
  const json = {
    model_type: "mobilellm",
    vocab_size: metaNumber(g, "llama.vocab_size", false) ?? embd.dims[1],
    hidden_size: D,
    intermediate_size: metaNumber(g, "llama.feed_forward_length"),
    num_hidden_layers: metaNumber(g, "llama.block_count"),
    num_attention_heads: H,
    num_key_value_heads: metaNumber(g, "llama.attention.head_count_kv", false) ?? H,
    head_dim: metaNumber(g, "llama.attention.key_length", false) ?? metaNumber(g, "llama.rope.dimension_count", false) ?? D / H,
    max_position_embeddings: metaNumber(g, "llama.context_length"),
    rms_norm_eps: metaNumber(g, "llama.attention.layer_norm_rms_epsilon"),
    rope_theta: metaNumber(g, "llama.rope.freq_base", false) ?? 10000,
    rope_scaling: null,
    share_embedding: !g.tensors.has("output.weight"),
    layer_sharing: false, // a GGUF holds every block: layer-sharing models are written unrolled
    bos_token_id: metaNumber(g, "tokenizer.ggml.bos_token_id", false) ?? 1,
    eos_token_id: metaNumber(g, "tokenizer.ggml.eos_token_id", false) ?? 2,
  };
  const rot = metaNumber(g, "llama.rope.dimension_count", false);
  if (rot !== undefined && rot !== json.head_dim) {
    throw new CheckpointError(
      g.path,
      `llama.rope.dimension_count ${rot} differs from the head size ${json.head_dim} (partial rotary embedding is not supported)`,
    );
  }
  return parseConfig(json, g.path);
}

/** HF name -> GGUF name for every tensor of `c`. */
function ggufNames(c: MobileLLMConfig): Map<string, string> {
  const m = new Map<string, string>([
    ["model.embed_tokens.weight", "token_embd.weight"],
    ["model.norm.weight", "output_norm.weight"],
  ]);
  if (!c.shareEmbedding) m.set("lm_head.weight", "output.weight");
  for (let i = 0; i < c.numLayers; i++) {
    for (const [k, g] of Object.entries(GGUF_BLOCK_NAMES)) m.set(layerTensorName(i, k as keyof LayerWeights), `blk.${i}.${g}.weight`);
  }
  return m;
}

/**
 * A llama GGUF as a TensorFile in Hugging Face naming: q/k rows permuted back to HF's rotary
 * pairing; F32/F16/BF16 tensors as themselves; Q8_0/Q4_0 tensors with their blocks (`blocks`) and,
 * for loads in another dtype, as dequantized F32. Tensors other than the model's are an error.
 */
export function ggufAsCheckpoint(g: GgufFile, c: MobileLLMConfig): TensorFile {
  const names = ggufNames(c);
  const known = new Set(names.values());
  for (const name of g.tensors.keys()) {
    if (!known.has(name) && name !== "rope_freqs.weight")
      throw new CheckpointError(g.path, `unexpected tensor "${name}" for a llama model of this shape`);
  }
  const tensors = new Map<string, TensorEntry>();
  for (const [hf, gg] of names) {
    const info = g.tensors.get(gg);
    if (!info) continue; // checkTensors reports what is missing, in HF naming
    const shape = [...info.dims].reverse();
    const heads = hf.endsWith("q_proj.weight") ? c.numHeads : hf.endsWith("k_proj.weight") ? c.numKvHeads : 0;
    const raw = async (): Promise<Uint8Array> => {
      const b = new Uint8Array(info.bytes);
      await g.read(info, b);
      return heads > 0 ? permuteRopeRows(b, heads, c.headDim, info.bytes / shape[0]!, false) : b;
    };
    const numel = shape.reduce((a, b) => a * b, 1);
    const quant = info.type === "Q8_0" ? "q8_0" : info.type === "Q4_0" ? "q4_0" : null;
    const entry: TensorEntry = {
      name: hf,
      shape,
      numel,
      file: g.path,
      dtype: quant ? "F32" : (info.type as "F32" | "F16" | "BF16"),
      async read(dst) {
        if (!quant) {
          dst.set(await raw());
          return;
        }
        dequantize(quant as QuantDType, new Float32Array(dst.buffer, dst.byteOffset, numel), await raw(), 0, numel);
      },
    };
    if (quant) entry.blocks = { dtype: quant, read: async (dst) => dst.set(await raw()) };
    tensors.set(hf, entry);
  }
  return { path: g.path, format: "gguf", tensors, close: () => g.close() };
}

// ---- the tokenizer ------------------------------------------------------------------------------------

/**
 * The SentencePiece model of a GGUF's tokenizer ("llama" = SentencePiece: pieces, scores, types,
 * special ids); other tokenizer models get an error naming them.
 */
export function ggufTokenizerModel(g: GgufFile): ModelProto {
  const kind = g.metadata.get("tokenizer.ggml.model");
  if (kind !== "llama") {
    throw new CheckpointError(
      g.path,
      `tokenizer model ${JSON.stringify(kind ?? null)} is not supported; this loader reads SentencePiece ("llama") tokenizers`,
    );
  }
  const list = (key: string): GgufMetaValue[] => {
    const v = g.metadata.get(key);
    if (!Array.isArray(v)) throw new CheckpointError(g.path, `metadata "${key}" is missing or not an array`);
    return v;
  };
  const tokens = list("tokenizer.ggml.tokens");
  const scores = g.metadata.has("tokenizer.ggml.scores") ? list("tokenizer.ggml.scores") : null;
  const types = g.metadata.has("tokenizer.ggml.token_type") ? list("tokenizer.ggml.token_type") : null;
  for (const [name, a] of [
    ["scores", scores],
    ["token_type", types],
  ] as const) {
    if (a && a.length !== tokens.length)
      throw new CheckpointError(g.path, `tokenizer.ggml.${name} has ${a.length} entries for ${tokens.length} tokens`);
  }
  const pieces = tokens.map((t, i) => {
    if (typeof t !== "string") throw new CheckpointError(g.path, `tokenizer.ggml.tokens[${i}] is not a string`);
    const type = types ? Number(types[i]) : PieceType.NORMAL;
    if (!(type >= 1 && type <= 6)) throw new CheckpointError(g.path, `tokenizer.ggml.token_type[${i}] is ${type} (must be 1..6)`);
    return { piece: t, score: scores ? Number(scores[i]) : 0, type };
  });
  const id = (key: string, fallback: number) => {
    const v = metaNumber(g, key, false);
    if (v !== undefined && !(v >= 0 && v < pieces.length))
      throw new CheckpointError(g.path, `${key} ${v} is outside the vocabulary [0, ${pieces.length})`);
    return v ?? fallback;
  };
  const flag = (key: string, fallback: boolean) => {
    const v = g.metadata.get(key);
    if (v !== undefined && typeof v !== "boolean") throw new CheckpointError(g.path, `metadata "${key}" is not a bool`);
    return (v as boolean | undefined) ?? fallback;
  };
  const trainerSpec = {
    ...defaultTrainerSpec(),
    modelType: ModelType.BPE,
    vocabSize: pieces.length,
    byteFallback: flag(
      "tokenizer.ggml.byte_fallback",
      pieces.some((p) => p.type === PieceType.BYTE),
    ),
    unkId: id(
      "tokenizer.ggml.unknown_token_id",
      pieces.findIndex((p) => p.type === PieceType.UNKNOWN),
    ),
    bosId: id("tokenizer.ggml.bos_token_id", -1),
    eosId: id("tokenizer.ggml.eos_token_id", -1),
    padId: id("tokenizer.ggml.padding_token_id", -1),
  };
  const normalizerSpec = {
    ...defaultNormalizerSpec(),
    name: "identity",
    addDummyPrefix: flag("tokenizer.ggml.add_space_prefix", true),
    removeExtraWhitespaces: flag("tokenizer.ggml.remove_extra_whitespaces", false),
  };
  return { pieces, trainerSpec, normalizerSpec };
}
