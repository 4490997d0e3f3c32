// The GGUF file format (llama.cpp / ggml), version 3, as far as this project reads and writes it.
//
//   "GGUF" | u32 version | u64 tensor count | u64 metadata count
//   metadata:  string key | u32 value type | value          (strings: u64 byte length + UTF-8)
//   tensors:   string name | u32 n_dims | u64 ne[n_dims] | u32 ggml type | u64 offset
//   padding to general.alignment (default 32), then the tensor data, each tensor at its offset
//   (relative to the start of the data, a multiple of the alignment). All little-endian.
// ne[0] is the innermost dimension: a PyTorch weight [O, I] is written with ne = [I, O].
//
// A MobileLLM is a llama-architecture model with two differences the converter handles: layer
// sharing (written unrolled: block i of 2L is our block floor(i/2)), and rotary embedding pairs —
// Hugging Face pairs dimension i with i + Dh/2 ("rotate_half") while llama.cpp's llama pairs 2i
// with 2i+1, so the rows of q_proj and k_proj are permuted per head, as llama.cpp's own
// converter does: GGUF row (h, 2i + half) = HF row (h, half·Dh/2 + i).

export const GGUF_MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
export const GGUF_VERSION = 3;
export const GGUF_DEFAULT_ALIGNMENT = 32;

/** Metadata value types. */
export const GGUF_TYPE = {
  UINT8: 0,
  INT8: 1,
  UINT16: 2,
  INT16: 3,
  UINT32: 4,
  INT32: 5,
  FLOAT32: 6,
  BOOL: 7,
  STRING: 8,
  ARRAY: 9,
  UINT64: 10,
  INT64: 11,
  FLOAT64: 12,
} as const;

/** ggml tensor types this project reads and writes (ggml.h's enum ggml_type). */
export const GGML_TYPE = { F32: 0, F16: 1, Q4_0: 2, Q8_0: 8, BF16: 30 } as const;
export type GgmlTypeName = keyof typeof GGML_TYPE;

/** Names of the other ggml types, for error messages. */
export const OTHER_GGML_TYPES: Record<number, string> = {
  3: "Q4_1",
  6: "Q5_0",
  7: "Q5_1",
  9: "Q8_1",
  10: "Q2_K",
  11: "Q3_K",
  12: "Q4_K",
  13: "Q5_K",
  14: "Q6_K",
  15: "Q8_K",
  16: "IQ2_XXS",
  17: "IQ2_XS",
  18: "IQ3_XXS",
  19: "IQ1_S",
  20: "IQ4_NL",
  21: "IQ3_S",
  22: "IQ2_S",
  23: "IQ4_XS",
  24: "I8",
  25: "I16",
  26: "I32",
  27: "I64",
  28: "F64",
  29: "IQ1_M",
  34: "TQ1_0",
  35: "TQ2_0",
  39: "MXFP4",
};

/** llama.cpp's general.file_type (enum llama_ftype) for a model whose matrices are mostly `type`. */
export const LLAMA_FTYPE: Record<GgmlTypeName, number> = { F32: 0, F16: 1, Q4_0: 2, Q8_0: 7, BF16: 32 };

/** Bytes of n elements of a type (n a multiple of 32 for the block types). */
export function ggmlBytes(type: GgmlTypeName, n: number): number {
  switch (type) {
    case "F32":
      return n * 4;
    case "F16":
    case "BF16":
      return n * 2;
    case "Q8_0":
      return (n / 32) * 34;
    case "Q4_0":
      return (n / 32) * 18;
  }
}

/** Our tensor names -> GGUF llama names (per block: blk.N.<name>). */
export const GGUF_BLOCK_NAMES = {
  inputNormD: "attn_norm",
  wqQD: "attn_q",
  wkKD: "attn_k",
  wvKD: "attn_v",
  woDQ: "attn_output",
  postNormD: "ffn_norm",
  wGateFD: "ffn_gate",
  wUpFD: "ffn_up",
  wDownDF: "ffn_down",
} as const;

/** SentencePiece piece types and llama.cpp's token types share their numbering (1 normal ... 6 byte). */
export const TOKEN_TYPE_NORMAL = 1;

/**
 * Permute the rows of a q_proj / k_proj weight from Hugging Face's rotary pairing to llama.cpp's
 * (forward = true), or back. `rowBytes` bytes per row, `heads` heads of Dh rows each.
 */
export function permuteRopeRows(src: Uint8Array, heads: number, Dh: number, rowBytes: number, forward: boolean): Uint8Array {
  const out = new Uint8Array(src.length);
  const R = Dh / 2;
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < R; i++) {
      for (let half = 0; half < 2; half++) {
        const hf = h * Dh + half * R + i,
          gg = h * Dh + 2 * i + half;
        const [from, to] = forward ? [hf, gg] : [gg, hf];
        out.set(src.subarray(from * rowBytes, (from + 1) * rowBytes), to * rowBytes);
      }
    }
  }
  return out;
}
