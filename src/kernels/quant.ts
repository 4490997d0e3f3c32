// Block-quantized weights in llama.cpp's formats: GGUF's Q8_0 and Q4_0.
//
// A row of a weight matrix is cut into blocks of QK = 32 consecutive values; each block stores one
// f16 scale d and 32 small integers q, and stands for the values d·q. Blocks are stored exactly as
// GGUF stores them (little-endian, no padding), so a quantized tensor can be written to a GGUF file
// byte for byte:
//   q8_0  34 bytes: d (f16) | q[0..32) as int8                       value_j = d·q_j
//   q4_0  18 bytes: d (f16) | 16 bytes, byte j = q_j | q_{j+16} << 4   value_j = d·(q_j − 8)
//
// The quantizers follow the rules of llama.cpp's reference quantizers (`quantize_row_q8_0_ref`,
// `quantize_row_q4_0_ref` in ggml-quants.c), which define the bytes of GGUF model files: every
// step is the same float32 operation, so the same f32 weights give the same bytes. Each line below
// says which step of the rule it is. Two cases the C rule leaves undefined or useless are decided
// here and said so: non-finite inputs are an error (C would write garbage), and a block whose
// largest value is so tiny that 1/d overflows float32 (|x| < ~2^-121, far below any f16 weight)
// gets q = 0 (q8_0) / the zero nibble 8 (q4_0) — its f16 scale rounds to 0, so it decodes to zeros
// whatever q holds.

import { F16_TABLE, numberToF16Bits } from "./half.js";
import type { Weight } from "./kernels.js";

/** Values per block. */
export const QK = 32;

export type QuantDType = "q8_0" | "q4_0";

/** Bytes of one block. */
export const BLOCK_BYTES: Record<QuantDType, number> = { q8_0: 2 + QK, q4_0: 2 + QK / 2 };

export function isQuantDType(d: string): d is QuantDType {
  return d === "q8_0" || d === "q4_0";
}

/** Bytes of n values (n a multiple of 32) in `dtype`. */
export function quantizedBytes(dtype: QuantDType, n: number): number {
  if (n % QK !== 0) throw new RangeError(`${dtype} stores whole blocks of ${QK} values; ${n} is not a multiple of ${QK}`);
  return (n / QK) * BLOCK_BYTES[dtype];
}

const fround = Math.fround;

/** C's roundf: to nearest, halfway cases away from zero (v is a float32 value of modest size). */
function roundHalfAway(v: number): number {
  return v < 0 ? -Math.floor(-v + 0.5) : Math.floor(v + 0.5);
}

/** Why a value cannot be quantized: names the tensor, the element, and what to do. */
export class QuantizeError extends Error {
  constructor(what: string, message: string) {
    super(`${what}: ${message}`);
    this.name = "QuantizeError";
  }
}

function checkFinite(src: ArrayLike<number>, base: number, what: string): void {
  for (let j = 0; j < QK; j++) {
    const v = src[base + j]!;
    if (!Number.isFinite(v)) {
      throw new QuantizeError(what, `element ${base + j} is ${v}; a weight must be finite to be quantized (fix or drop the checkpoint)`);
    }
  }
}

/** The f16 bits of a block scale, refusing one too large for f16 (it would decode as Inf). */
function scaleBits(d: number, amax: number, dtype: QuantDType, block: number, what: string): number {
  const bits = numberToF16Bits(d);
  if ((bits & 0x7fff) === 0x7c00) {
    throw new QuantizeError(
      what,
      `block ${block} holds |x| = ${amax}, too large for a ${dtype} f16 scale ` +
        `(largest ${dtype === "q8_0" ? 65504 * 127 : 65504 * 8}); keep this tensor in f32`,
    );
  }
  return bits;
}

/**
 * Quantize n float32 values (n a multiple of 32) from src[srcOffset..] into q8_0 blocks at dst[dstOffset..].
 * Rule (quantize_row_q8_0_ref): amax = max|x|; d = amax/127; id = d ? 1/d : 0; q = roundf(x·id).
 */
export function quantizeQ8_0(
  dst: Uint8Array,
  dstOffset: number,
  src: ArrayLike<number>,
  srcOffset: number,
  n: number,
  what = "tensor",
): void {
  const nb = quantizedBytes("q8_0", n) / BLOCK_BYTES.q8_0;
  for (let b = 0; b < nb; b++) {
    const base = srcOffset + b * QK;
    checkFinite(src, base, what);
    let amax = 0;
    for (let j = 0; j < QK; j++) amax = Math.max(amax, Math.abs(src[base + j]!)); // amax = MAX(amax, fabsf(v))
    const d = fround(amax / 127); // d = amax / ((1 << 7) - 1)
    const id = d !== 0 ? fround(1 / d) : 0; // id = d ? 1.0f/d : 0.0f
    const bits = scaleBits(d, amax, "q8_0", b, what); // y.d = FP32_TO_FP16(d)
    const o = dstOffset + b * BLOCK_BYTES.q8_0;
    dst[o] = bits & 0xff;
    dst[o + 1] = bits >>> 8;
    for (let j = 0; j < QK; j++) {
      const x0 = fround(src[base + j]! * id); // x0 = x·id
      dst[o + 2 + j] = (Number.isFinite(x0) ? roundHalfAway(x0) : 0) & 0xff; // qs = roundf(x0)
    }
  }
}

/**
 * Quantize n float32 values into q4_0 blocks. Rule (quantize_row_q4_0_ref): max = the value of
 * largest magnitude (the first one on ties); d = max / −8; id = d ? 1/d : 0;
 * q = MIN(15, (int8)(x·id + 8.5)) — truncation, so effectively round-half-up of x·id, offset 8.
 * The sign of d makes the largest value land exactly on q = 0 (−8), using the full range.
 */
export function quantizeQ4_0(
  dst: Uint8Array,
  dstOffset: number,
  src: ArrayLike<number>,
  srcOffset: number,
  n: number,
  what = "tensor",
): void {
  const nb = quantizedBytes("q4_0", n) / BLOCK_BYTES.q4_0;
  const nibble = (x: number, id: number): number => {
    const x0 = fround(x * id); // x0 = x·id
    if (!Number.isFinite(x0)) return 8; // 1/d overflowed: decodes to 0
    return Math.min(15, Math.trunc(fround(x0 + 8.5))); // MIN(15, (int8_t)(x0 + 8.5f))
  };
  for (let b = 0; b < nb; b++) {
    const base = srcOffset + b * QK;
    checkFinite(src, base, what);
    let amax = 0,
      max = 0;
    for (let j = 0; j < QK; j++) {
      const v = src[base + j]!;
      if (amax < Math.abs(v)) {
        amax = Math.abs(v);
        max = v;
      } // first value of largest |x|
    }
    const d = fround(max / -8); // d = max / -8 (−0 for a zero block)
    const id = d !== 0 ? fround(1 / d) : 0;
    const bits = scaleBits(d, amax, "q4_0", b, what);
    const o = dstOffset + b * BLOCK_BYTES.q4_0;
    dst[o] = bits & 0xff;
    dst[o + 1] = bits >>> 8;
    for (let j = 0; j < QK / 2; j++) {
      dst[o + 2 + j] = nibble(src[base + j]!, id) | (nibble(src[base + j + QK / 2]!, id) << 4);
    }
  }
}

/** Quantize n values into `dtype` blocks (see quantizeQ8_0 / quantizeQ4_0). */
export function quantize(
  dtype: QuantDType,
  dst: Uint8Array,
  dstOffset: number,
  src: ArrayLike<number>,
  srcOffset: number,
  n: number,
  what?: string,
): void {
  if (dtype === "q8_0") quantizeQ8_0(dst, dstOffset, src, srcOffset, n, what);
  else quantizeQ4_0(dst, dstOffset, src, srcOffset, n, what);
}

/** The f16 scale of the block starting at byte `o`, widened to f32. */
export function blockScale(src: Uint8Array, o: number): number {
  return F16_TABLE[src[o]! | (src[o + 1]! << 8)]!;
}

/** out[0..n) = the values of the blocks at src[byteOffset..] (d·q exactly, as float32). */
export function dequantize(dtype: QuantDType, out: Float32Array, src: Uint8Array, byteOffset: number, n: number): void {
  const nb = quantizedBytes(dtype, n) / BLOCK_BYTES[dtype];
  for (let b = 0; b < nb; b++) {
    const o = byteOffset + b * BLOCK_BYTES[dtype];
    const d = blockScale(src, o);
    if (dtype === "q8_0") {
      for (let j = 0; j < QK; j++) out[b * QK + j] = d * ((src[o + 2 + j]! << 24) >> 24);
    } else {
      for (let j = 0; j < QK / 2; j++) {
        const byte = src[o + 2 + j]!;
        out[b * QK + j] = d * ((byte & 15) - 8);
        out[b * QK + j + QK / 2] = d * ((byte >>> 4) - 8);
      }
    }
  }
}

// ---- activations ---------------------------------------------------------------------------------
//
// The quantized matmul kernels (TS reference and wasm) multiply int8 weights by int8 activations,
// as llama.cpp does: each block of 32 activations is quantized like a q8_0 block, the 32 products
// are summed exactly in integers, and the sum is scaled by d_w·d_x. Two choices differ from
// quantize_row_q8_0_ref, and both match what llama.cpp does for activations on x86/ARM SIMD:
//  * q = x·id rounded to nearest, ties to EVEN (f32x4.nearest in wasm; llama.cpp's AVX/NEON
//    activation quantizers round the same way), not roundf's ties-away;
//  * d_x stays float32 (llama.cpp rounds it to f16): one rounding fewer, at no cost.
// The error this adds is at most d_x/2 = amax_x/254 per activation (tests bound it).

/** Round to nearest, ties to even (f32x4.nearest). */
export function roundHalfEven(v: number): number {
  const r = Math.round(v); // ties toward +Infinity
  return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * Quantize activations xTI [T, I] (I a multiple of 32) per block of 32: qTI[t, i] int8 and
 * dTB[t, b] = amax/127 (float32), with q = roundHalfEven(x·(1/d)). A block holding Inf/NaN gets
 * d = Inf/NaN, so its products come out NaN instead of silently wrong; a block so tiny that 1/d
 * overflows (amax < ~2^-121) gets q = 0.
 */
export function quantizeActivations(qTI: Int8Array, dTB: Float32Array, xTI: ArrayLike<number>, T: number, I: number): void {
  const B = I / QK;
  for (let t = 0; t < T; t++) {
    for (let b = 0; b < B; b++) {
      const base = t * I + b * QK;
      let amax = 0;
      for (let j = 0; j < QK; j++) amax = Math.max(amax, Math.abs(xTI[base + j]!)); // NaN propagates
      const d = fround(amax / 127);
      let id = d !== 0 ? fround(1 / d) : 0;
      if (id === Infinity) id = 0;
      dTB[t * B + b] = d;
      for (let j = 0; j < QK; j++) qTI[base + j] = roundHalfEven(fround(xTI[base + j]! * id)); // NaN -> 0
    }
  }
}

// ---- q4_0 with four rows interleaved: the wasm backend's decode layout ("q4_0x4") ----
//
// The wasm backend rewrites a q4_0 matrix [O, I] in place at its first matmul (assembly/quant.ts
// repackQ4x4, where the kernels that read it are): each group of four rows 4g..4g+3 keeps the
// bytes it occupied (B blocks of 4·18 bytes), block b of the group holding
//
//   d0 d1 d2 d3 | r0[0..3] r1[0..3] r2[0..3] r3[0..3] | r0[4..7] r1[4..7] ... | ... | r0[12..15] ... r3[12..15]
//   4 f16 scales  chunk 0: row k's nibble bytes 0..3     chunk 1                      chunk 3
//
// and rows from O&~3 on stay plain. Everything else that reads the bytes (GGUF export, the TS
// kernels) first calls plainBlocks, which restores GGUF's layout in place.

/** The name of the four-row layout above (in messages). */
export const Q4_0X4 = "q4_0x4";

/** Move the bytes of groups of four q4_0 rows between the plain layout and Q4_0X4, in place (4 rows' scratch). */
function transposeGroups(data: Uint8Array, O: number, I: number, toGroups: boolean): void {
  const B = I / QK,
    rowBytes = B * BLOCK_BYTES.q4_0;
  const scratch = new Uint8Array(4 * rowBytes);
  for (let o = 0; o + 4 <= O; o += 4) {
    const g = o * rowBytes;
    scratch.set(data.subarray(g, g + 4 * rowBytes));
    /** n bytes at `plain` (row k's block, as in GGUF) <-> at `grouped` (in the group's block), offsets from g. */
    const move = (plain: number, grouped: number, n: number): void => {
      const [from, to] = toGroups ? [plain, grouped] : [grouped, plain];
      for (let i = 0; i < n; i++) data[g + to + i] = scratch[from + i]!;
    };
    for (let b = 0; b < B; b++) {
      for (let k = 0; k < 4; k++) {
        const plain = k * rowBytes + b * 18,
          grouped = b * 72; // row k's block b; the group's block b
        move(plain, grouped + 2 * k, 2); // the scale d_k
        for (let c = 0; c < 4; c++) move(plain + 2 + 4 * c, grouped + 8 + 16 * c + 4 * k, 4); // chunk c: row k's nibble bytes 4c..4c+3
      }
    }
  }
}

/** Rewrite the q4_0 matrix data [O, I] in place into Q4_0X4 (the reference of assembly/quant.ts repackQ4x4). */
export function repackQ4x4(data: Uint8Array, O: number, I: number): void {
  transposeGroups(data, O, I, true);
}

/** The inverse of repackQ4x4, in place. */
export function unpackQ4x4(data: Uint8Array, O: number, I: number): void {
  transposeGroups(data, O, I, false);
}

/**
 * The q4_0 byte arrays now holding Q4_0X4 groups, with their [O, I]: the one record of the layout,
 * kept by array rather than by Weight because several Weight objects may wrap one array (a test's,
 * a caller's), and all of them must see the bytes as they are.
 */
const groupedArrays = new WeakMap<Uint8Array, readonly [number, number]>();

/** The [O, I] the bytes of q4_0 weight w were grouped as (Q4_0X4), or undefined: plain. */
export function groupedQ4Shape(w: Weight): readonly [number, number] | undefined {
  return w.dtype === "q4_0" ? groupedArrays.get(w.data as Uint8Array) : undefined;
}

/** Whether the bytes of q4_0 weight w are in the Q4_0X4 layout. */
export function isGroupedQ4(w: Weight): boolean {
  return groupedQ4Shape(w) !== undefined;
}

/** Record that a backend rewrote the bytes of q4_0 weight w, a matrix [O, I], into Q4_0X4. */
export function markGroupedQ4(w: Weight, O: number, I: number): void {
  groupedArrays.set(w.data as Uint8Array, [O, I]);
}

/**
 * The bytes of a q8_0/q4_0 weight in GGUF's block layout, row after row. A q4_0 matrix a backend
 * repacked (Q4_0X4) is restored in place and recorded as plain; the backend repacks it again at
 * its next matmul.
 */
export function plainBlocks(w: Weight): Uint8Array {
  const data = w.data as Uint8Array;
  const shape = groupedQ4Shape(w);
  if (shape) {
    unpackQ4x4(data, shape[0], shape[1]);
    groupedArrays.delete(data);
  }
  return data;
}
