// Run by tests/kernels/quant-relaxed.test.ts under Deno and Bun (which have relaxed SIMD): the relaxed-SIMD
// build's quantized matmul against the baseline build and the TS reference on random shapes (odd
// row counts, 1..7 blocks per row, decode and prefill). Prints one JSON line.
import { createWasmKernels } from "../../dist/kernels/wasm/index.js";
import { createTsKernels } from "../../dist/kernels/ts/index.js";
import { quantize, quantizedBytes } from "../../dist/kernels/quant.js";
import { Mulberry32 } from "../../dist/util/rng.js";

const relaxed = await createWasmKernels(); // the relaxed build wherever the runtime runs it correctly
const base = await createWasmKernels({ relaxedSimd: false });
const ts = createTsKernels();
relaxed.reserve(16 << 20);
base.reserve(16 << 20);
const g = new Mulberry32(11);
let cases = 0,
  mismatches = 0,
  first = null;
for (let c = 0; c < 300; c++) {
  const dtype = c % 2 ? "q8_0" : "q4_0";
  const T = [1, 2, 3, 4, 5, 7, 13][c % 7],
    O = [1, 3, 5, 7, 13, 63, 65][(c * 3) % 7],
    I = 32 * (1 + (c % 7));
  const values = Float32Array.from({ length: O * I }, () => (g.next() - 0.5) * 2 ** (Math.floor(g.next() * 9) - 4));
  const x = Float32Array.from({ length: T * I }, () => (g.next() < 0.05 ? 0 : (g.next() - 0.5) * 2 ** (Math.floor(g.next() * 9) - 4)));
  const bytes = new Uint8Array(quantizedBytes(dtype, O * I));
  quantize(dtype, bytes, 0, values, 0, O * I);
  const run = (k) => {
    const mark = k.arena.mark();
    const w = k.allocU8(bytes.length);
    w.set(bytes);
    const xk = k.allocF32(T * I);
    xk.set(x);
    const y = k.allocF32(T * O);
    k.matmul(y, xk, { dtype, shape: [O, I], data: w }, T, I, O);
    const out = y.slice();
    k.arena.release(mark);
    return out;
  };
  const yTs = new Float32Array(T * O);
  ts.matmul(yTs, x, { dtype, shape: [O, I], data: bytes }, T, I, O);
  const yr = run(relaxed),
    yb = run(base);
  cases++;
  for (let i = 0; i < yTs.length; i++) {
    if (!Object.is(yr[i], yTs[i]) || !Object.is(yb[i], yTs[i])) {
      mismatches++;
      first ??= { dtype, T, I, O, i, relaxed: yr[i], base: yb[i], ts: yTs[i] };
      break;
    }
  }
}
console.log(JSON.stringify({ relaxedSimd: relaxed.relaxedSimd, baseline: !base.relaxedSimd, cases, mismatches, first }));
