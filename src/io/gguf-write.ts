// Writing a MobileLLM as a GGUF v3 file of the llama architecture (gguf-format.ts describes the
// layout), so that llama.cpp, ollama and node-llama-cpp load it: every weight in its in-memory
// storage dtype (F32 / F16 / BF16 / Q8_0 / Q4_0, bytes as they are), the q/k rows permuted to
// llama.cpp's rotary pairing, layer-sharing models unrolled to 2·L blocks (in any sharing order;
// a ReLU feed-forward network is refused: llama.cpp's llama has no such MLP), and the SentencePiece
// tokenizer (pieces, scores, types, BOS/EOS/UNK ids). Written to a temporary file and renamed,
// so an interrupted write never leaves a partial model.gguf behind.

import { closeSync, openSync, renameSync, rmSync, writeSync } from "node:fs";
import type { DType, Weight } from "../kernels/kernels.js";
import { isQuantDType, plainBlocks } from "../kernels/quant.js";
import { ffnTypeOf } from "../model/config.js";
import type { MobileLLM } from "../model/model.js";
import { numApplications } from "../model/state.js";
import type { Tokenizer } from "../tokenizer/tokenizer.js";
import {
  GGML_TYPE,
  GGUF_BLOCK_NAMES,
  GGUF_DEFAULT_ALIGNMENT,
  GGUF_MAGIC,
  GGUF_TYPE,
  GGUF_VERSION,
  ggmlBytes,
  LLAMA_FTYPE,
  permuteRopeRows,
  type GgmlTypeName,
} from "./gguf-format.js";

export type GgufValue =
  | { type: "u32"; value: number }
  | { type: "i32"; value: number }
  | { type: "f32"; value: number }
  | { type: "bool"; value: boolean }
  | { type: "string"; value: string }
  | { type: "array"; itemType: "string"; value: string[] }
  | { type: "array"; itemType: "f32" | "i32"; value: ArrayLike<number> };

export interface GgufTensorOut {
  name: string;
  type: GgmlTypeName;
  /** ne: innermost dimension first (a PyTorch [O, I] weight is [I, O]). */
  dims: number[];
  data: Uint8Array;
}

const GGML_OF: Record<DType, GgmlTypeName> = { f32: "F32", f16: "F16", bf16: "BF16", q8_0: "Q8_0", q4_0: "Q4_0" };

function bytesOf(a: Float32Array | Uint16Array | Uint8Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** The GGUF metadata and tensors of a model (unrolled if it shares layers) and its tokenizer. */
export function ggufFromModel(
  model: MobileLLM,
  tokenizer: Tokenizer,
  name = "MobileLLM",
): { metadata: Map<string, GgufValue>; tensors: GgufTensorOut[] } {
  const c = model.config,
    w = model.weights;
  if (tokenizer.vocabSize !== c.vocabSize) {
    throw new Error(
      `${tokenizer.name}: ${tokenizer.vocabSize} pieces, but the model's vocabulary is ${c.vocabSize}; pass the model's own tokenizer`,
    );
  }
  if (ffnTypeOf(c) !== "swiglu") {
    throw new Error(
      `cannot write this model as GGUF: its ffn_type is "${ffnTypeOf(c)}" (a two-matrix ReLU feed-forward network), ` +
        `and llama.cpp's llama architecture always runs SwiGLU; keep it as this project's checkpoint folder (loadModel reads it)`,
    );
  }
  // 2·L with layer sharing, written unrolled in the config's order (immediate, repeat_all or reverse: model.blockOf)
  const blocks = numApplications(c);
  const tensors: GgufTensorOut[] = [];
  const matrix = (tname: string, wt: Weight, permuteHeads = 0): void => {
    const [O, I] = wt.shape as [number, number];
    let data = bytesOf(isQuantDType(wt.dtype) ? plainBlocks(wt) : wt.data); // GGUF's block layout (restored if a backend repacked it)
    if (permuteHeads > 0) data = permuteRopeRows(data, permuteHeads, c.headDim, data.length / O, true);
    tensors.push({ name: tname, type: GGML_OF[wt.dtype], dims: [I, O], data });
  };
  const vector = (tname: string, v: Float32Array): void => {
    tensors.push({ name: tname, type: "F32", dims: [v.length], data: bytesOf(v) });
  };
  matrix("token_embd.weight", w.embedVD);
  for (let a = 0; a < blocks; a++) {
    const l = w.layers[model.blockOf(a)]!,
      p = `blk.${a}.`;
    vector(p + GGUF_BLOCK_NAMES.inputNormD + ".weight", l.inputNormD);
    matrix(p + GGUF_BLOCK_NAMES.wqQD + ".weight", l.wqQD, c.numHeads);
    matrix(p + GGUF_BLOCK_NAMES.wkKD + ".weight", l.wkKD, c.numKvHeads);
    matrix(p + GGUF_BLOCK_NAMES.wvKD + ".weight", l.wvKD);
    matrix(p + GGUF_BLOCK_NAMES.woDQ + ".weight", l.woDQ);
    vector(p + GGUF_BLOCK_NAMES.postNormD + ".weight", l.postNormD);
    matrix(p + GGUF_BLOCK_NAMES.wGateFD + ".weight", l.wGateFD!);
    matrix(p + GGUF_BLOCK_NAMES.wUpFD + ".weight", l.wUpFD);
    matrix(p + GGUF_BLOCK_NAMES.wDownDF + ".weight", l.wDownDF);
  }
  vector("output_norm.weight", w.finalNormD);
  if (!c.shareEmbedding) matrix("output.weight", w.lmHeadVD); // shared: llama.cpp reuses token_embd

  // file_type: the type of most matrix elements
  const count = new Map<GgmlTypeName, number>();
  for (const t of tensors) if (t.dims.length === 2) count.set(t.type, (count.get(t.type) ?? 0) + t.dims[0]! * t.dims[1]!);
  const mostly = [...count].sort((x, y) => y[1] - x[1])[0]![0];

  const spec = tokenizer.model.trainerSpec,
    norm = tokenizer.model.normalizerSpec;
  const m = new Map<string, GgufValue>();
  const u32 = (k: string, v: number) => m.set(k, { type: "u32", value: v });
  m.set("general.architecture", { type: "string", value: "llama" });
  m.set("general.name", { type: "string", value: name });
  u32("general.file_type", LLAMA_FTYPE[mostly]);
  u32("general.alignment", GGUF_DEFAULT_ALIGNMENT);
  u32("llama.context_length", c.maxPositions);
  u32("llama.embedding_length", c.hiddenSize);
  u32("llama.block_count", blocks);
  u32("llama.feed_forward_length", c.intermediateSize);
  u32("llama.attention.head_count", c.numHeads);
  u32("llama.attention.head_count_kv", c.numKvHeads);
  u32("llama.attention.key_length", c.headDim);
  u32("llama.attention.value_length", c.headDim);
  u32("llama.rope.dimension_count", c.headDim);
  m.set("llama.rope.freq_base", { type: "f32", value: c.ropeTheta });
  m.set("llama.attention.layer_norm_rms_epsilon", { type: "f32", value: c.rmsNormEps });
  u32("llama.vocab_size", c.vocabSize);
  m.set("tokenizer.ggml.model", { type: "string", value: "llama" }); // SentencePiece, scores merged highest first
  m.set("tokenizer.ggml.tokens", { type: "array", itemType: "string", value: tokenizer.model.pieces.map((p) => p.piece) });
  m.set("tokenizer.ggml.scores", { type: "array", itemType: "f32", value: tokenizer.model.pieces.map((p) => p.score) });
  m.set("tokenizer.ggml.token_type", { type: "array", itemType: "i32", value: tokenizer.model.pieces.map((p) => p.type) });
  if (tokenizer.bosId >= 0) u32("tokenizer.ggml.bos_token_id", tokenizer.bosId);
  if (tokenizer.eosId >= 0) u32("tokenizer.ggml.eos_token_id", tokenizer.eosId);
  if (tokenizer.unkId >= 0) u32("tokenizer.ggml.unknown_token_id", tokenizer.unkId);
  if (tokenizer.padId >= 0) u32("tokenizer.ggml.padding_token_id", tokenizer.padId);
  m.set("tokenizer.ggml.add_bos_token", { type: "bool", value: tokenizer.bosId >= 0 });
  m.set("tokenizer.ggml.add_eos_token", { type: "bool", value: false });
  m.set("tokenizer.ggml.add_space_prefix", { type: "bool", value: norm.addDummyPrefix });
  m.set("tokenizer.ggml.remove_extra_whitespaces", { type: "bool", value: norm.removeExtraWhitespaces });
  m.set("tokenizer.ggml.byte_fallback", { type: "bool", value: spec.byteFallback }); // read back by loadTokenizer
  return { metadata: m, tensors };
}

// ---- the byte writer -------------------------------------------------------------------------------

class ByteSink {
  private chunks: Uint8Array[] = [];
  private cur = new Uint8Array(1 << 16);
  private view = new DataView(this.cur.buffer);
  private pos = 0;
  length = 0;

  private room(n: number): void {
    if (this.pos + n <= this.cur.length) return;
    this.chunks.push(this.cur.subarray(0, this.pos));
    this.cur = new Uint8Array(Math.max(1 << 16, n));
    this.view = new DataView(this.cur.buffer);
    this.pos = 0;
  }
  u32(v: number): void {
    this.room(4);
    this.view.setUint32(this.pos, v, true);
    this.pos += 4;
    this.length += 4;
  }
  i32(v: number): void {
    this.room(4);
    this.view.setInt32(this.pos, v, true);
    this.pos += 4;
    this.length += 4;
  }
  f32(v: number): void {
    this.room(4);
    this.view.setFloat32(this.pos, v, true);
    this.pos += 4;
    this.length += 4;
  }
  u64(v: number): void {
    this.room(8);
    this.view.setBigUint64(this.pos, BigInt(v), true);
    this.pos += 8;
    this.length += 8;
  }
  u8(v: number): void {
    this.room(1);
    this.cur[this.pos++] = v;
    this.length += 1;
  }
  bytes(b: Uint8Array): void {
    this.room(b.length);
    this.cur.set(b, this.pos);
    this.pos += b.length;
    this.length += b.length;
  }
  string(s: string): void {
    const b = new TextEncoder().encode(s);
    this.u64(b.length);
    this.bytes(b);
  }
  done(): Uint8Array[] {
    return [...this.chunks, this.cur.subarray(0, this.pos)];
  }
}

function writeValue(out: ByteSink, v: GgufValue): void {
  switch (v.type) {
    case "u32":
      out.u32(GGUF_TYPE.UINT32);
      out.u32(v.value);
      return;
    case "i32":
      out.u32(GGUF_TYPE.INT32);
      out.i32(v.value);
      return;
    case "f32":
      out.u32(GGUF_TYPE.FLOAT32);
      out.f32(v.value);
      return;
    case "bool":
      out.u32(GGUF_TYPE.BOOL);
      out.u8(v.value ? 1 : 0);
      return;
    case "string":
      out.u32(GGUF_TYPE.STRING);
      out.string(v.value);
      return;
    case "array": {
      out.u32(GGUF_TYPE.ARRAY);
      const items = v.value;
      if (v.itemType === "string") {
        out.u32(GGUF_TYPE.STRING);
        out.u64(items.length);
        for (const s of items as string[]) out.string(s);
      } else {
        out.u32(v.itemType === "f32" ? GGUF_TYPE.FLOAT32 : GGUF_TYPE.INT32);
        out.u64(items.length);
        for (let i = 0; i < items.length; i++) (v.itemType === "f32" ? out.f32 : out.i32).call(out, (items as ArrayLike<number>)[i]!);
      }
    }
  }
}

/** Write a GGUF v3 file (atomically: a temporary file renamed into place). */
export function writeGguf(path: string, metadata: Map<string, GgufValue>, tensors: GgufTensorOut[]): void {
  const align = GGUF_DEFAULT_ALIGNMENT;
  const head = new ByteSink();
  head.u32(GGUF_MAGIC);
  head.u32(GGUF_VERSION);
  head.u64(tensors.length);
  head.u64(metadata.size);
  for (const [k, v] of metadata) {
    head.string(k);
    writeValue(head, v);
  }
  let offset = 0;
  for (const t of tensors) {
    const n = t.dims.reduce((a, b) => a * b, 1);
    if (t.data.length !== ggmlBytes(t.type, n))
      throw new Error(`GGUF writer: tensor ${t.name} has ${t.data.length} bytes, ${t.type} [${t.dims}] needs ${ggmlBytes(t.type, n)}`);
    head.string(t.name);
    head.u32(t.dims.length);
    for (const d of t.dims) head.u64(d);
    head.u32(GGML_TYPE[t.type]);
    head.u64(offset);
    offset += Math.ceil(t.data.length / align) * align;
  }
  const pad = (n: number) => new Uint8Array((align - (n % align)) % align);
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, "w");
  try {
    for (const chunk of head.done()) writeSync(fd, chunk);
    writeSync(fd, pad(head.length));
    for (const t of tensors) {
      writeSync(fd, t.data);
      writeSync(fd, pad(t.data.length));
    }
    closeSync(fd);
    renameSync(tmp, path);
  } catch (e) {
    try {
      closeSync(fd);
    } catch {
      /* already closed */
    }
    rmSync(tmp, { force: true });
    throw e;
  }
}
