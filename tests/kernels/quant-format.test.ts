// q8_0 / q4_0 block formats: the quantizers give llama.cpp's bytes (quantize_row_q8_0_ref /
// quantize_row_q4_0_ref rules) on crafted edge cases and random tensors.
//
// Two independent checks: hand-derived bytes for the edge cases (each derivation in a comment),
// and, where gcc exists, a C oracle (tests/quant/ref-quantizer.c) that runs the same rule in C
// float32 arithmetic with the compiler's own f16 rounding, compared byte for byte.
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  BLOCK_BYTES,
  dequantize,
  quantize,
  quantizeActivations,
  quantizeQ4_0,
  quantizeQ8_0,
  QuantizeError,
  roundHalfEven,
} from "../../src/kernels/quant.js";
import { numberToF16Bits } from "../../src/kernels/half.js";
import { Mulberry32 } from "../../src/util/rng.js";
import { TESTS_DIR } from "../helpers.js";

function q8(values: number[] | Float32Array): Uint8Array {
  const x = Float32Array.from(values);
  const out = new Uint8Array((x.length / 32) * BLOCK_BYTES.q8_0);
  quantizeQ8_0(out, 0, x, 0, x.length);
  return out;
}
function q4(values: number[] | Float32Array): Uint8Array {
  const x = Float32Array.from(values);
  const out = new Uint8Array((x.length / 32) * BLOCK_BYTES.q4_0);
  quantizeQ4_0(out, 0, x, 0, x.length);
  return out;
}
const scale = (b: Uint8Array, o = 0) => b[o]! | (b[o + 1]! << 8);
const int8s = (b: Uint8Array, o = 0) => Array.from(new Int8Array(b.buffer, b.byteOffset + o + 2, 32));
const nibbles = (b: Uint8Array, o = 0) => {
  const out: number[] = [];
  for (let j = 0; j < 16; j++) out[j] = b[o + 2 + j]! & 15;
  for (let j = 0; j < 16; j++) out[16 + j] = b[o + 2 + j]! >> 4;
  return out;
};
const block = (f: (j: number) => number) => Array.from({ length: 32 }, (_, j) => f(j));

describe("q8_0 quantizer: hand-derived edge cases", () => {
  it("ties round away from zero (roundf): amax 127 gives d = 1, so x = k + 0.5 lands on a tie", () => {
    // d = 127/127 = 1 exactly, id = 1: q = roundf(x)
    const x = block((j) => (j === 0 ? 127 : j === 1 ? 2.5 : j === 2 ? -2.5 : j === 3 ? 0.5 : j === 4 ? -0.5 : j === 5 ? 3.5 : 0));
    const b = q8(x);
    expect(scale(b)).toBe(0x3c00); // f16 1.0
    expect(int8s(b).slice(0, 6)).toEqual([127, 3, -3, 1, -1, 4]);
  });

  it("an all-zero block: d = 0 (+0 bits), q = 0; a block of -0 too", () => {
    for (const z of [0, -0]) {
      const b = q8(block(() => z));
      expect(scale(b)).toBe(0);
      expect(int8s(b)).toEqual(block(() => 0));
    }
  });

  it("a single nonzero maps to ±127, the rest to 0", () => {
    const b = q8(block((j) => (j === 17 ? -0.3 : 0)));
    expect(int8s(b)[17]).toBe(-127);
    expect(int8s(b).filter((v) => v !== 0)).toHaveLength(1);
    expect(scale(b)).toBe(numberToF16Bits(Math.fround(Math.fround(0.3) / 127)));
  });

  it("an f16-subnormal scale (amax 1e-5) and f32-subnormal values", () => {
    const b = q8(block((j) => (j === 0 ? 1e-5 : j === 1 ? 1e-40 : j === 2 ? -5e-6 : 0)));
    expect(scale(b) & 0x7c00).toBe(0); // d = 7.9e-8: an f16 subnormal
    expect(int8s(b).slice(0, 3)).toEqual([127, 0, -64]); // -5e-6/1e-5·127 = -63.5 -> f32 product rounds
  });

  it("NaN and ±Inf are errors naming the element; a scale too large for f16 is an error", () => {
    for (const bad of [NaN, Infinity, -Infinity]) {
      expect(() => q8(block((j) => (j === 9 ? bad : 1)))).toThrow(/element 9 is/);
    }
    expect(() => q8(block(() => 1e7))).toThrow(QuantizeError);
    expect(() => q8(block(() => 8e6))).not.toThrow(); // 8e6/127 = 62992 < 65504
  });

  it("dequantizes to d·q exactly", () => {
    const x = Float32Array.from(block((j) => Math.sin(j) * 3));
    const b = q8(x),
      out = new Float32Array(32);
    dequantize("q8_0", out, b, 0, 32);
    const d = Math.fround(Math.fround(3 * Math.max(...block((j) => Math.abs(Math.fround(Math.sin(j) * 3) / 3)))) / 127);
    for (let j = 0; j < 32; j++) expect(Math.abs(out[j]! - x[j]!)).toBeLessThanOrEqual(d * 0.51);
  });
});

describe("q4_0 quantizer: hand-derived edge cases", () => {
  it("the value of largest magnitude lands on q = 0; its sign decides d's sign; first wins a tie of ±", () => {
    // max = -8 -> d = 1 (f16 0x3c00), id = 1: q = MIN(15, trunc(x + 8.5))
    const b = q4(block((j) => (j === 0 ? -8 : j === 1 ? 8 : j === 2 ? 0.5 : j === 3 ? -0.5 : j === 4 ? 7.4 : 0)));
    expect(scale(b)).toBe(0x3c00);
    // -8 -> 0; 8 -> 16.5 -> 16 -> clamped 15; 0.5 -> 9 (tie goes up); -0.5 -> 8; 7.4 -> 15.9 -> 15; 0 -> 8
    expect(nibbles(b).slice(0, 6)).toEqual([0, 15, 9, 8, 15, 8]);
    const first = q4(block((j) => (j === 0 ? 8 : j === 1 ? -8 : 0))); // +8 first: d = -1
    expect(scale(first)).toBe(0xbc00);
    expect(nibbles(first).slice(0, 2)).toEqual([0, 15]);
  });

  it("x·id + 8.5 is rounded to float32 before truncation (0.49999997 + 8.5 -> 9.0)", () => {
    const b = q4(block((j) => (j === 0 ? -8 : j === 1 ? 0.49999997 : 0)));
    expect(nibbles(b)[1]).toBe(9);
  });

  it("an all-zero block: d = 0/-8 = -0 (f16 0x8000), every nibble 8", () => {
    for (const z of [0, -0]) {
      const b = q4(block(() => z));
      expect(scale(b)).toBe(0x8000);
      expect(Array.from(b.subarray(2))).toEqual(Array(16).fill(0x88));
    }
  });

  it("nibble order: byte j holds element j (low) and element j+16 (high)", () => {
    const b = q4(block((j) => (j === 16 ? -8 : 0)));
    expect(b[2]).toBe(0x08); // element 0 = 0 -> 8 low; element 16 = max -> 0 high
  });

  it("NaN/Inf are errors", () => {
    expect(() => q4(block((j) => (j === 31 ? NaN : 0)))).toThrow(/element 31 is NaN/);
  });

  it("a block so tiny that 1/d overflows float32 decodes to zeros (nibble 8)", () => {
    const b = q4(block((j) => (j === 0 ? 1e-39 : 0)));
    const out = new Float32Array(32);
    dequantize("q4_0", out, b, 0, 32);
    expect(Array.from(out).every((v) => v === 0)).toBe(true);
  });
});

describe("activation quantizer (int8 per block, for the q8_0 x q8_0 dot)", () => {
  it("rounds ties to even and bounds the error by d/2", () => {
    expect([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 3.2, -3.7].map(roundHalfEven)).toEqual([0, 2, 2, -0, -2, -2, 3, -4]);
    const g = new Mulberry32(5);
    const x = Float32Array.from({ length: 96 }, () => (g.next() - 0.5) * 10);
    const q = new Int8Array(96),
      d = new Float32Array(3);
    quantizeActivations(q, d, x, 1, 96);
    for (let i = 0; i < 96; i++) expect(Math.abs(q[i]! * d[i >> 5]! - x[i]!)).toBeLessThanOrEqual((d[i >> 5]! / 2) * 1.0001);
  });
});

// ---- the C oracle --------------------------------------------------------------------------------

let oracleDir: string | null = null;
function oracle(): string | null {
  try {
    execFileSync("gcc", ["--version"], { stdio: "ignore" });
  } catch {
    return null;
  }
  oracleDir ??= mkdtempSync(join(tmpdir(), "mobilellm-quant-"));
  const exe = join(oracleDir, "ref-quantizer");
  execFileSync("gcc", ["-O1", "-o", exe, join(TESTS_DIR, "quant", "ref-quantizer.c"), "-lm"]);
  return exe;
}
afterAll(() => {
  if (oracleDir) rmSync(oracleDir, { recursive: true, force: true });
});

/** Random blocks spanning 2^-30 .. 2^22 in magnitude, with zero blocks, single nonzeros, ties and subnormals. */
function randomTensor(seed: number, blocks: number): Float32Array {
  const g = new Mulberry32(seed);
  const x = new Float32Array(blocks * 32);
  for (let b = 0; b < blocks; b++) {
    const kind = Math.floor(g.next() * 6);
    const logScale = Math.floor(g.next() * 52) - 30;
    for (let j = 0; j < 32; j++) {
      const i = b * 32 + j;
      const v = (g.next() < 0.5 ? -1 : 1) * (0.5 + g.next() / 2) * 2 ** (logScale + Math.floor(g.next() * 9) - 4);
      if (kind === 0)
        x[i] = g.next() < 0.5 ? 0 : -0; // zero block
      else if (kind === 1)
        x[i] = j === b % 32 ? v : 0; // one nonzero
      else if (kind === 2)
        x[i] = j === 0 ? 127 : Math.round(v % 120) + 0.5; // q8_0 ties (d = 1)
      else if (kind === 3)
        x[i] = j === 0 ? -8 : Math.round((v % 8) * 2) / 2; // q4_0 halfway points (d = 1)
      else if (kind === 4)
        x[i] = j < 4 ? v : v * 2 ** -130; // f32 subnormals beside normals
      else x[i] = v;
    }
  }
  // keep within the f16 scale range and away from the undefined 1/d overflow
  for (let b = 0; b < blocks; b++) {
    const s = x.subarray(b * 32, b * 32 + 32);
    const amax = Math.max(...Array.from(s, Math.abs));
    while (Math.max(...Array.from(s, Math.abs)) > 4e5) s.forEach((v, j) => (s[j] = v / 4));
    if (amax > 0 && amax < 1e-30) s.fill(0);
  }
  return x;
}

describe("bit-compatibility with the C rule (gcc oracle)", () => {
  const exe = oracle();
  it.skipIf(!exe)("random tensors: same bytes for q8_0 and q4_0" + (exe ? "" : " (skipped: gcc not found)"), () => {
    for (const seed of [1, 2, 3]) {
      const x = randomTensor(seed, 400);
      const ref = execFileSync(exe!, { input: Buffer.from(x.buffer), maxBuffer: 1 << 26 });
      const n8 = 400 * BLOCK_BYTES.q8_0;
      const ours8 = new Uint8Array(n8),
        ours4 = new Uint8Array(400 * BLOCK_BYTES.q4_0);
      quantize("q8_0", ours8, 0, x, 0, x.length);
      quantize("q4_0", ours4, 0, x, 0, x.length);
      const firstDiff = (a: Uint8Array, b: Uint8Array) => a.findIndex((v, i) => v !== b[i]);
      expect(firstDiff(ours8, new Uint8Array(ref.subarray(0, n8)))).toBe(-1);
      expect(firstDiff(ours4, new Uint8Array(ref.subarray(n8)))).toBe(-1);
    }
  });
});
