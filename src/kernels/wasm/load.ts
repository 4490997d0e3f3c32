// Finding and instantiating the kernels: the only platform-dependent part of the backend.
// Node, Deno and Bun read the file with node:fs (process.getBuiltinModule); a browser fetches it. The path is relative to
// this module, which works from both src/kernels/wasm/ and dist/kernels/wasm/.
//
// Two builds of the same code exist (scripts/build-wasm.mjs): kernels-shared.wasm imports a
// shared memory, whose growth leaves existing views valid, so buffers can be allocated at any
// time; kernels.wasm imports an ordinary memory (growth would detach views, so the arena refuses
// to grow once views exist). The shared build is used wherever SharedArrayBuffer is available.
// Each also exists built with relaxed SIMD (kernels-relaxed*.wasm: int8 dot products for the
// quantized matmuls, same results bit for bit), used where WebAssembly.validate accepts it.

import { MAX_PAGES } from "./arena.js";
import { nodeBuiltin } from "./threads.js";

/** The module's exports (build/kernels.wasm, compiled from assembly/). Pointers are byte addresses. */
export interface KernelExports {
  heapBase(): number;
  MATMUL_SCRATCH_BYTES: WebAssembly.Global;
  widenRow(dst: number, src: number, dtype: number, n: number): void;
  matmul(y: number, x: number, w: number, dtype: number, T: number, I: number, O: number, scratch: number): void;
  QMATMUL_SCRATCH_BYTES: WebAssembly.Global;
  ATTENTION_SCRATCH_BYTES: WebAssembly.Global;
  matmulQuant(
    y: number,
    x: number,
    w: number,
    dtype: number,
    T: number,
    I: number,
    O: number,
    o0: number,
    o1: number,
    scratch: number,
  ): void;
  dequantizeRow(dst: number, src: number, dtype: number, n: number): void;
  dequantizeRowQ4x4(dst: number, group: number, k: number, n: number): void;
  repackQ4x4(w: number, O: number, I: number, scratch: number): void;
  relaxedSimdSelfTest(): number;
  matmulBackwardX(dX: number, dY: number, w: number, T: number, I: number, O: number): void;
  matmulBackwardW(dW: number, dY: number, x: number, T: number, I: number, O: number, scratch: number): void;
  // Range entry points, one thread's share of a call (pool.ts): `matmul` for output rows
  // [oBegin, oEnd), matmulBackwardX for input columns [iBegin, iEnd), matmulBackwardW for weight
  // rows [oBegin, oEnd), attention for query heads [hBegin, hEnd), siluMul for elements [begin, end).
  matmulRows(
    y: number,
    x: number,
    w: number,
    dtype: number,
    T: number,
    I: number,
    O: number,
    oBegin: number,
    oEnd: number,
    scratch: number,
  ): void;
  matmulBackwardXCols(dX: number, dY: number, w: number, T: number, I: number, O: number, iBegin: number, iEnd: number): void;
  // training's long batches: matmul and matmulBackwardX for the tokens [tBegin, tEnd)
  matmulTokens(
    y: number,
    x: number,
    w: number,
    dtype: number,
    T: number,
    I: number,
    O: number,
    tBegin: number,
    tEnd: number,
    scratch: number,
  ): void;
  matmulBackwardXTokens(dX: number, dY: number, w: number, T: number, I: number, O: number, tBegin: number, tEnd: number): void;
  matmulBackwardWRows(
    dW: number,
    dY: number,
    x: number,
    T: number,
    I: number,
    O: number,
    oBegin: number,
    oEnd: number,
    scratch: number,
  ): void;
  attentionHeads(
    out: number,
    q: number,
    k: number,
    v: number,
    T: number,
    pos0: number,
    H: number,
    KV: number,
    Dh: number,
    hBegin: number,
    hEnd: number,
    scores: number,
  ): void;
  /** Prefill attention in blocks of 4 query rows over the work units [uBegin, uEnd) (assembly/attention.ts). */
  attentionBlocks(
    out: number,
    q: number,
    k: number,
    v: number,
    T: number,
    pos0: number,
    H: number,
    KV: number,
    Dh: number,
    uBegin: number,
    uEnd: number,
    scratch: number,
  ): void;
  /** Floats of scratch attentionBlocks needs for P positions of head dim Dh. */
  attentionBlocksScratchFloats(P: number, Dh: number): number;
  /** Training's attention gradient in blocks of 4 query rows, for the kv heads [g0, g1) (assembly/attention.ts). */
  attentionBackwardBlocks(
    dq: number,
    dk: number,
    dv: number,
    dout: number,
    q: number,
    k: number,
    v: number,
    T: number,
    H: number,
    KV: number,
    Dh: number,
    g0: number,
    g1: number,
    scratch: number,
  ): void;
  /** Floats of scratch attentionBackwardBlocks needs for T tokens of head dim Dh. */
  attentionBackwardBlocksScratchFloats(T: number, Dh: number): number;
  siluMulRange(out: number, gate: number, up: number, n: number, begin: number, end: number): void;
  f16AllFinite(p: number, n: number): number;
  rmsnorm(y: number, x: number, w: number, T: number, D: number, eps: number): void;
  rmsnormBackward(dx: number, dw: number, dy: number, x: number, w: number, T: number, D: number, eps: number): void;
  rope(x: number, T: number, H: number, Dh: number, pos0: number, cos: number, sin: number): void;
  ropeBackward(x: number, T: number, H: number, Dh: number, pos0: number, cos: number, sin: number): void;
  attention(out: number, q: number, k: number, v: number, T: number, pos0: number, H: number, KV: number, Dh: number, scores: number): void;
  attentionBackward(
    dq: number,
    dk: number,
    dv: number,
    dout: number,
    q: number,
    k: number,
    v: number,
    T: number,
    H: number,
    KV: number,
    Dh: number,
    scratch: number,
    g0: number,
    g1: number,
  ): void;
  attentionBackwardGroups(
    dq: number,
    dk: number,
    dv: number,
    dout: number,
    q: number,
    k: number,
    v: number,
    T: number,
    H: number,
    KV: number,
    Dh: number,
    g0: number,
    g1: number,
    scratch: number,
  ): void;
  rmsnormRows(y: number, x: number, w: number, T: number, D: number, eps: number, begin: number, end: number): void;
  rotateRows(
    x: number,
    T: number,
    H: number,
    Dh: number,
    pos0: number,
    cos: number,
    sin: number,
    sign: number,
    begin: number,
    end: number,
  ): void;
  siluMulBackwardRange(dgate: number, dup: number, dout: number, gate: number, up: number, n: number, begin: number, end: number): void;
  addRange(y: number, x: number, n: number, begin: number, end: number): void;
  crossEntropyRows(x: number, V: number, targets: number, losses: number, begin: number, end: number): void;
  crossEntropyBackwardRows(x: number, V: number, targets: number, s: number, begin: number, end: number): void;
  adamwRange(
    w: number,
    g: number,
    m: number,
    v: number,
    n: number,
    lr: number,
    beta1: number,
    beta2: number,
    eps: number,
    weightDecay: number,
    bc1: number,
    bc2: number,
    begin: number,
    end: number,
  ): void;
  attentionBackwardBlocked(
    dq: number,
    dk: number,
    dv: number,
    dout: number,
    q: number,
    k: number,
    v: number,
    T: number,
    H: number,
    KV: number,
    Dh: number,
    R: number,
    g0: number,
    g1: number,
    scratch: number,
  ): void;
  siluMul(out: number, gate: number, up: number, n: number): void;
  siluMulBackward(dgate: number, dup: number, dout: number, gate: number, up: number, n: number): void;
  relu(out: number, x: number, n: number): void;
  reluBackward(dx: number, dout: number, x: number, n: number): void;
  crossEntropyRow(x: number, V: number, target: number): number;
  crossEntropyBackwardRow(x: number, V: number, target: number, scale: number): void;
  adamw(
    w: number,
    g: number,
    m: number,
    v: number,
    n: number,
    lr: number,
    beta1: number,
    beta2: number,
    eps: number,
    weightDecay: number,
    bc1: number,
    bc2: number,
  ): void;
  add(y: number, x: number, n: number): void;
  // Debug exports (tests and benches: src/kernels/wasm/debug.ts); src/ does not call them.
  debugSumF32(x: number, n: number): number;
  debugSumF32Quarters(x: number, n: number): number;
  debugExpInPlace(x: number, n: number): void;
  /** Does nothing: the pool's dispatch cost. */
  debugEmptyRange(begin: number, end: number): void;
}

export interface LoadOptions {
  /** The compiled module's bytes, if the caller already has them (skips file lookup). */
  wasmBytes?: ArrayBuffer | Uint8Array;
  /** Where to find the module (default: build/kernels-shared.wasm or build/kernels.wasm under the package root). */
  wasmUrl?: URL | string;
  /** Use a shared (growable without detaching views) memory; default: when SharedArrayBuffer exists. */
  shared?: boolean;
  /**
   * Use the relaxed-SIMD build: true (an error if the runtime lacks relaxed SIMD), false, or by
   * default whenever WebAssembly.validate accepts it (Node 20 needs --experimental-wasm-relaxed-simd).
   */
  relaxedSimd?: boolean;
}

export const DEFAULT_WASM_URL = new URL("../../../build/kernels.wasm", import.meta.url);
export const DEFAULT_SHARED_WASM_URL = new URL("../../../build/kernels-shared.wasm", import.meta.url);
export const RELAXED_WASM_URL = new URL("../../../build/kernels-relaxed.wasm", import.meta.url);
export const RELAXED_SHARED_WASM_URL = new URL("../../../build/kernels-relaxed-shared.wasm", import.meta.url);

async function readBytes(url: URL): Promise<ArrayBuffer | Uint8Array> {
  if (url.protocol === "file:") {
    const fs = nodeBuiltin<{ existsSync(u: URL): boolean; readFileSync(u: URL): Uint8Array }>("node:fs");
    if (!fs)
      throw new Error(
        `wasm kernels (src/kernels/wasm/load.ts): cannot read ${url}: this runtime has no file system; pass an http(s) wasmUrl`,
      );
    if (!fs.existsSync(url)) {
      throw new Error(`wasm kernels (src/kernels/wasm/load.ts): ${url.pathname} not found: run \`npm run build:wasm\` first`);
    }
    return fs.readFileSync(url);
  }
  const res = await fetch(url);
  if (!res.ok) throw new Error(`wasm kernels (src/kernels/wasm/load.ts): fetching ${url} failed with HTTP ${res.status}`);
  return await res.arrayBuffer();
}

/** Compile and instantiate the kernels with a fresh imported memory (1 page, growable to 4 GiB). */
export async function instantiateKernels(
  opts: LoadOptions = {},
): Promise<{ exports: KernelExports; memory: WebAssembly.Memory; shared: boolean; module: WebAssembly.Module; relaxedSimd: boolean }> {
  const shared = opts.shared ?? typeof SharedArrayBuffer !== "undefined";
  const fallback = shared ? DEFAULT_SHARED_WASM_URL : DEFAULT_WASM_URL;
  const instantiate = async (bytes: ArrayBuffer | Uint8Array) => {
    const memory = new WebAssembly.Memory({ initial: 1, maximum: MAX_PAGES, shared });
    const { instance, module } = await WebAssembly.instantiate(bytes, { env: { memory } });
    return { exports: instance.exports as unknown as KernelExports, memory, module };
  };
  if (opts.wasmBytes === undefined && opts.wasmUrl === undefined && opts.relaxedSimd !== false) {
    // the relaxed build where the runtime validates it AND its relaxed dot gives the specified result
    const relaxed = await readBytes(shared ? RELAXED_SHARED_WASM_URL : RELAXED_WASM_URL);
    const why = !WebAssembly.validate(relaxed)
      ? "does not support relaxed SIMD (Node 20: --experimental-wasm-relaxed-simd; Node 22+, Deno, Bun and current browsers have it)"
      : null;
    if (why === null) {
      const r = await instantiate(relaxed);
      if (r.exports.relaxedSimdSelfTest() === 1) return { ...r, shared, relaxedSimd: true };
    }
    if (opts.relaxedSimd === true) {
      throw new Error(
        `wasm kernels (src/kernels/wasm/load.ts): relaxedSimd: true, but this runtime ${why ?? "computes relaxed dot products wrongly (Node 20's experimental relaxed SIMD does; use Node 22+, Deno or Bun)"}`,
      );
    }
  }
  const url = opts.wasmUrl === undefined ? fallback : new URL(opts.wasmUrl, fallback);
  const r = await instantiate(opts.wasmBytes ?? (await readBytes(url)));
  return { ...r, shared, relaxedSimd: false };
}
