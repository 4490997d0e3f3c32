// The readable reference for y = x·Wᵀ with q8_0 / q4_0 weights (src/kernels/quant.ts).
//
// Plainly: quantize each block of 32 activations to int8 (quantizeActivations), then for every
// output o and token t, block by block, multiply the 32 integer weights by the 32 integer
// activations, sum exactly, and scale by d_w·d_x. The f32 rounding of every step is spelled out
// with Math.fround, in the order the wasm kernel (assembly/quant.ts) does it, so the two give the
// same bits: a block sum (an exact integer) times (d_w·d_x), added to the row's f32 accumulator.
// dequantizeRowTo (d·q per value) is the plain dequantize used for embedding rows and backward.

import type { Weight } from "../kernels.js";
import { BLOCK_BYTES, blockScale, dequantize, plainBlocks, QK, quantizeActivations, type QuantDType } from "../quant.js";

const fround = Math.fround;

/** The integer weight q_j (q8_0: int8; q4_0: nibble − 8) of element j of the block at byte o. */
function weightInt(dtype: QuantDType, w: Uint8Array, o: number, j: number): number {
  if (dtype === "q8_0") return (w[o + 2 + j]! << 24) >> 24;
  const byte = w[o + 2 + (j & 15)]!;
  return (j < 16 ? byte & 15 : byte >> 4) - 8;
}

let qScratch = new Int8Array(0);
let dScratch = new Float32Array(0);

/** yTO = xTI·Wᵀ for a q8_0/q4_0 weight W [O, I] (I a multiple of 32). */
export function matmulQuantRef(yTO: Float32Array, xTI: Float32Array, w: Weight, T: number, I: number, O: number): void {
  const dtype = w.dtype as QuantDType;
  const B = I / QK,
    bytes = BLOCK_BYTES[dtype];
  if (qScratch.length < T * I) qScratch = new Int8Array(T * I);
  if (dScratch.length < T * B) dScratch = new Float32Array(T * B);
  quantizeActivations(qScratch, dScratch, xTI, T, I);
  const wb = plainBlocks(w); // GGUF's layout (a wasm-repacked q4_0 matrix is restored)
  for (let o = 0; o < O; o++) {
    for (let t = 0; t < T; t++) {
      let acc = 0;
      for (let b = 0; b < B; b++) {
        const wo = (o * B + b) * bytes;
        let isum = 0; // Σ q_w·q_x, exact
        for (let j = 0; j < QK; j++) isum += weightInt(dtype, wb, wo, j) * qScratch[t * I + b * QK + j]!;
        acc = fround(acc + fround(isum * fround(blockScale(wb, wo) * dScratch[t * B + b]!)));
      }
      yTO[t * O + o] = acc;
    }
  }
}

/** out[0..n) = row r of a q8_0/q4_0 weight (n values per row), dequantized. */
export function dequantizeRowTo(out: Float32Array, w: Weight, r: number, n: number): void {
  dequantize(w.dtype as QuantDType, out, plainBlocks(w), r * (n / QK) * BLOCK_BYTES[w.dtype as QuantDType], n);
}
