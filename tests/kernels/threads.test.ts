// The wasm kernels on several threads (src/kernels/wasm/pool.ts) give exactly the bits of one
// thread: every threaded kernel on random shapes (more threads than rows included), whole
// forwards and greedy generations on every fixture, and a 20-step training run. minThreadWork: 0
// splits every call, however small, so the tiny fixtures exercise every split. Also: failures
// name the kernel, abort and dispose() leave nothing hanging, and a process that forgets
// dispose() still exits.
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Mulberry32 } from "../../src/util/rng.js";
import { generate } from "../../src/generate/generate.js";
import type { DType, Weight } from "../../src/kernels/kernels.js";
import { createWasmKernels, DTYPE_CODE, type WasmKernels } from "../../src/kernels/wasm/index.js";
import { spawnWorker } from "../../src/kernels/wasm/threads.js";
import { loadModel } from "../../src/load.js";
import type { MobileLLMConfig } from "../../src/model/config.js";
import { pretrain, RECIPE_DEFAULTS, type Recipe } from "../../src/train/trainer.js";
import { expectedIds, FIXTURE_NAMES, FIXTURES, TESTS_DIR } from "../helpers.js";

const THREADS = [2, 3, 8] as const;
let one: WasmKernels;
const many = new Map<number, WasmKernels>();

beforeAll(async () => {
  one = await createWasmKernels({ threads: 1 });
  for (const t of THREADS) many.set(t, await createWasmKernels({ threads: t, minThreadWork: 0 }));
});
afterAll(async () => {
  for (const k of many.values()) await k.dispose();
});

/** Bits of a float array, for exact comparison (NaN payloads and -0 included). */
function bits(a: Float32Array): Uint32Array {
  return new Uint32Array(a.slice().buffer);
}

/** Run `fn` on a backend with its arena scratch released afterwards. */
function scoped<R>(k: WasmKernels, fn: () => R): R {
  const mark = k.arena.mark();
  try {
    return fn();
  } finally {
    k.arena.release(mark);
  }
}

function f32(k: WasmKernels, src: Float32Array): Float32Array {
  const a = k.allocF32(src.length);
  a.set(src);
  return a;
}

function weight(k: WasmKernels, dtype: DType, shape: number[], src: Float32Array | Uint16Array): Weight {
  const data = dtype === "f32" ? k.allocF32(src.length) : k.allocU16(src.length);
  data.set(src);
  return { dtype, shape, data };
}

function randomF32(seed: number, n: number): Float32Array {
  const g = new Mulberry32(seed),
    out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (g.next() * 2 - 1) * 2 ** Math.floor(g.next() * 8 - 4);
  return out;
}

/** Random weight bits: f32 values, or 16-bit patterns (f16 with some Inf/NaN when `special`). */
function randomWeightData(seed: number, dtype: DType, n: number, special: boolean): Float32Array | Uint16Array {
  if (dtype === "f32") return randomF32(seed, n);
  const g = new Mulberry32(seed),
    out = new Uint16Array(n);
  for (let i = 0; i < n; i++) {
    const exp = dtype === "f16" ? 10 + Math.floor(g.next() * 8) : 120 + Math.floor(g.next() * 8);
    out[i] =
      (g.next() < 0.5 ? 0x8000 : 0) | (dtype === "f16" ? exp << 10 : exp << 7) | Math.floor(g.next() * (dtype === "f16" ? 1024 : 128));
  }
  if (special && dtype === "f16" && n > 0) out[Math.floor(g.next() * n)] = 0x7c00; // Inf: the exact widening path
  return out;
}

const SIZES = [1, 3, 5, 7, 13, 63, 65];
const size = fc.oneof(fc.constantFrom(...SIZES), fc.integer({ min: 1, max: 70 }));
const threads = fc.constantFrom(...THREADS);
const seed = fc.integer({ min: 0, max: 2 ** 31 - 1 });

describe("threaded kernels are bit-identical to one thread", () => {
  it("matmul (decode T < 4 and prefill, f32 / f16 / bf16, f16 with Inf)", () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.constantFrom(1, 2, 3), size),
        size,
        fc.oneof(size, fc.constantFrom(130, 257)),
        fc.constantFrom<DType>("f32", "f16", "bf16"),
        fc.boolean(),
        threads,
        seed,
        (T, I, O, dtype, special, n, s) => {
          const x = randomF32(s, T * I),
            w = randomWeightData(s + 1, dtype, O * I, special);
          const run = (k: WasmKernels) =>
            scoped(k, () => {
              const y = k.allocF32(T * O);
              k.matmul(y, f32(k, x), weight(k, dtype, [O, I], w), T, I, O);
              return bits(y);
            });
          expect(run(many.get(n)!)).toEqual(run(one));
        },
      ),
      { numRuns: 150 },
    );
  });

  it("f32 prefill matmul over several token blocks (I = 1031: blocks of 28 tokens)", () => {
    const T = 37,
      I = 1031,
      O = 19,
      x = randomF32(3, T * I),
      w = randomWeightData(4, "f32", O * I, false);
    const run = (k: WasmKernels) =>
      scoped(k, () => {
        const y = k.allocF32(T * O);
        k.matmul(y, f32(k, x), weight(k, "f32", [O, I], w), T, I, O);
        return bits(y);
      });
    const want = run(one);
    for (const t of THREADS) expect(run(many.get(t)!)).toEqual(want);
  });

  it("matmulBackwardX (split by input columns) and matmulBackwardW (split by weight rows)", () => {
    fc.assert(
      fc.property(size, size, size, threads, seed, (T, I, O, n, s) => {
        const dY = randomF32(s, T * O),
          w = randomF32(s + 1, O * I),
          x = randomF32(s + 2, T * I),
          dW0 = randomF32(s + 3, O * I);
        const run = (k: WasmKernels) =>
          scoped(k, () => {
            const dX = k.allocF32(T * I),
              dW = f32(k, dW0);
            k.matmulBackwardX(dX, f32(k, dY), weight(k, "f32", [O, I], w), T, I, O);
            k.matmulBackwardW(dW, f32(k, dY), f32(k, x), T, I, O);
            return [bits(dX), bits(dW)];
          });
        expect(run(many.get(n)!)).toEqual(run(one));
      }),
      { numRuns: 150 },
    );
  });

  it("matmul and matmulBackwardX on training batches (split by tokens, 4 at a time)", () => {
    fc.assert(
      fc.property(fc.constantFrom(512, 513, 515, 517, 519, 577), size, size, threads, seed, (T, I, O, n, s) => {
        const x = randomF32(s, T * I),
          w = randomF32(s + 1, O * I),
          dY = randomF32(s + 2, T * O);
        const run = (k: WasmKernels) =>
          scoped(k, () => {
            const y = k.allocF32(T * O),
              dX = k.allocF32(T * I),
              W = weight(k, "f32", [O, I], w);
            k.matmul(y, f32(k, x), W, T, I, O);
            k.matmulBackwardX(dX, f32(k, dY), W, T, I, O);
            return [bits(y), bits(dX)];
          });
        expect(run(many.get(n)!)).toEqual(run(one));
      }),
      { numRuns: 40 },
    );
  });

  it("the token-split entry points on short and odd batches (more threads than 4-token blocks)", () => {
    // through parallel() directly: any T >= 4 (the prefill path), including 5..7 tokens on 8 threads
    fc.assert(
      fc.property(
        fc.integer({ min: 4, max: 70 }),
        size,
        size,
        fc.constantFrom<DType>("f32", "f16", "bf16"),
        threads,
        seed,
        (T, I, O, dtype, n, s) => {
          const x = randomF32(s, T * I),
            w = randomWeightData(s + 1, dtype, O * I, false),
            wf = randomF32(s + 1, O * I),
            dY = randomF32(s + 2, T * O);
          const run = (k: WasmKernels, tokens: boolean) =>
            scoped(k, () => {
              const y = k.allocF32(T * O),
                dX = k.allocF32(T * I),
                W = weight(k, dtype, [O, I], w),
                Wf = weight(k, "f32", [O, I], wf),
                code = DTYPE_CODE[dtype];
              const split = (units: number, align: number) => ({ units, align, work: T * I * O });
              if (tokens) {
                k.parallel("matmulTokens", [y.byteOffset, f32(k, x).byteOffset, W.data.byteOffset, code, T, I, O], {
                  ...split(T, 4),
                  scratch: true,
                });
                k.parallel("matmulBackwardXTokens", [dX.byteOffset, f32(k, dY).byteOffset, Wf.data.byteOffset, T, I, O], split(T, 4));
              } else {
                k.parallel("matmulRows", [y.byteOffset, f32(k, x).byteOffset, W.data.byteOffset, code, T, I, O], {
                  ...split(O, 8),
                  scratch: true,
                });
                k.parallel("matmulBackwardXCols", [dX.byteOffset, f32(k, dY).byteOffset, Wf.data.byteOffset, T, I, O], split(I, 8));
              }
              return [bits(y), bits(dX)];
            });
          expect(run(many.get(n)!, true)).toEqual(run(one, false));
        },
      ),
      { numRuns: 100 },
    );
  });

  it("attention (split by query heads), prefill and decode, GQA groups of 1..4", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(1, 2, 3, 5),
        fc.integer({ min: 0, max: 40 }),
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 1, max: 4 }),
        fc.constantFrom(1, 3, 4, 8, 13, 16, 64),
        threads,
        seed,
        (T, pos0, KV, group, Dh, n, s) => {
          const H = KV * group,
            P = pos0 + T;
          const q = randomF32(s, T * H * Dh),
            kc = randomF32(s + 1, P * KV * Dh),
            vc = randomF32(s + 2, P * KV * Dh);
          const run = (k: WasmKernels) =>
            scoped(k, () => {
              const out = k.allocF32(T * H * Dh);
              k.attention(out, f32(k, q), f32(k, kc), f32(k, vc), T, pos0, H, KV, Dh, k.allocF32(P));
              return bits(out);
            });
          expect(run(many.get(n)!)).toEqual(run(one));
        },
      ),
      { numRuns: 100 },
    );
  });

  // The blocked kernels (assembly/attention.ts): prefill split into units of (kv head, pair of
  // 4-row blocks, query head), more threads than units included; the backward by KV groups.
  it("blocked attention (split by units of equal causal work) and its backward, T and Dh of the blocked path", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(2, 3, 5, 7, 13, 63, 65),
        fc.integer({ min: 0, max: 40 }),
        // H query heads 1..9, KV kv heads dividing H
        fc
          .integer({ min: 1, max: 9 })
          .chain((H) =>
            fc.constantFrom(...Array.from({ length: H }, (_, i) => i + 1).filter((kv) => H % kv === 0)).map((KV) => [KV, H / KV] as const),
          ),
        fc.integer({ min: 1, max: 16 }).map((n) => 4 * n),
        threads,
        seed,
        (T, pos0, [KV, group], Dh, n, s) => {
          const H = KV * group,
            P = pos0 + T,
            Q = T * H * Dh,
            K = T * KV * Dh;
          const q = randomF32(s, Q),
            kc = randomF32(s + 1, P * KV * Dh),
            vc = randomF32(s + 2, P * KV * Dh),
            dout = randomF32(s + 3, Q);
          const run = (k: WasmKernels) =>
            scoped(k, () => {
              const out = k.allocF32(Q),
                dq = k.allocF32(Q),
                dk = k.allocF32(K),
                dv = k.allocF32(K);
              k.attention(out, f32(k, q), f32(k, kc), f32(k, vc), T, pos0, H, KV, Dh, k.allocF32(P));
              const [kt, vt] = [f32(k, kc.subarray(0, K)), f32(k, vc.subarray(0, K))];
              k.attentionBackward(dq, dk, dv, f32(k, dout), f32(k, q), kt, vt, T, H, KV, Dh, k.allocF32(2 * T));
              return [bits(out), bits(dq), bits(dk), bits(dv)];
            });
          expect(run(many.get(n)!)).toEqual(run(one));
        },
      ),
      { numRuns: 60 },
    );
  });

  it("attentionBackward (split by KV groups), GQA groups of 1..4", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(1, 2, 3, 5, 17, 63, 129),
        fc.integer({ min: 1, max: 5 }),
        fc.integer({ min: 1, max: 4 }),
        fc.constantFrom(1, 3, 4, 8, 13, 16),
        threads,
        seed,
        (T, KV, group, Dh, n, s) => {
          const H = KV * group,
            Q = T * H * Dh,
            K = T * KV * Dh;
          const dout = randomF32(s, Q),
            q = randomF32(s + 1, Q),
            kc = randomF32(s + 2, K),
            vc = randomF32(s + 3, K);
          const run = (k: WasmKernels) =>
            scoped(k, () => {
              const dq = k.allocF32(Q),
                dk = k.allocF32(K),
                dv = k.allocF32(K);
              k.attentionBackward(dq, dk, dv, f32(k, dout), f32(k, q), f32(k, kc), f32(k, vc), T, H, KV, Dh, k.allocF32(2 * T));
              return [bits(dq), bits(dk), bits(dv)];
            });
          expect(run(many.get(n)!)).toEqual(run(one));
        },
      ),
      { numRuns: 100 },
    );
  });
});

it("siluMul (split by elements) is bit-identical to one thread", () => {
  fc.assert(
    fc.property(fc.oneof(size, fc.integer({ min: 1, max: 5000 })), threads, seed, (n, t, s) => {
      const gate = randomF32(s, n).map((v) => v * 64),
        up = randomF32(s + 1, n);
      const run = (k: WasmKernels) =>
        scoped(k, () => {
          const out = k.allocF32(n);
          k.siluMul(out, f32(k, gate), f32(k, up), n);
          return bits(out);
        });
      expect(run(many.get(t)!)).toEqual(run(one));
    }),
    { numRuns: 100 },
  );
});

// The training's elementwise and row-wise kernels, split by elements (4 at a time) or rows:
// odd sizes, more threads than rows, and (minThreadWork 0) every call split.
describe("threaded training ops are bit-identical to one thread", () => {
  const elements = fc.oneof(size, fc.integer({ min: 1, max: 5000 }));

  it("add and siluMulBackward (split by elements)", () => {
    fc.assert(
      fc.property(elements, threads, seed, (n, t, s) => {
        const y0 = randomF32(s, n),
          x = randomF32(s + 1, n),
          dout = randomF32(s + 2, n);
        const gate = randomF32(s + 3, n).map((v) => v * 64),
          up = randomF32(s + 4, n);
        const run = (k: WasmKernels) =>
          scoped(k, () => {
            const y = f32(k, y0),
              dgate = k.allocF32(n),
              dup = k.allocF32(n);
            k.add(y, f32(k, x), n);
            k.siluMulBackward(dgate, dup, f32(k, dout), f32(k, gate), f32(k, up), n);
            return [bits(y), bits(dgate), bits(dup)];
          });
        expect(run(many.get(t)!)).toEqual(run(one));
      }),
      { numRuns: 100 },
    );
  });

  it("rmsnorm (split by rows), rope and ropeBackward (split by tokens)", () => {
    fc.assert(
      fc.property(
        size,
        size,
        fc.integer({ min: 1, max: 4 }),
        fc.constantFrom(2, 4, 6, 8, 14, 32),
        fc.integer({ min: 0, max: 5 }),
        threads,
        seed,
        (T, D, H, Dh, pos0, t, s) => {
          const x = randomF32(s, T * D),
            w = randomF32(s + 1, D),
            r = randomF32(s + 2, T * H * Dh);
          const P = pos0 + T,
            R = Dh / 2;
          const cos = randomF32(s + 3, P * R),
            sin = randomF32(s + 4, P * R);
          const run = (k: WasmKernels) =>
            scoped(k, () => {
              const y = k.allocF32(T * D),
                q = f32(k, r),
                dq = f32(k, r);
              k.rmsnorm(y, f32(k, x), f32(k, w), T, D, 1e-5);
              const c = f32(k, cos),
                sn = f32(k, sin);
              k.rope(q, T, H, Dh, pos0, c, sn);
              k.ropeBackward(dq, T, H, Dh, pos0, c, sn);
              return [bits(y), bits(q), bits(dq)];
            });
          expect(run(many.get(t)!)).toEqual(run(one));
        },
      ),
      { numRuns: 100 },
    );
  });

  it("crossEntropy and crossEntropyBackward (split by rows; the losses summed in row order)", () => {
    fc.assert(
      fc.property(size, fc.oneof(size, fc.constantFrom(129, 515)), threads, seed, (T, V, t, s) => {
        const logits = randomF32(s, T * V).map((v) => v * 8);
        const g = new Mulberry32(s + 1);
        const targets = Array.from({ length: T }, () => (g.next() < 0.2 ? -1 : Math.floor(g.next() * V)));
        const run = (k: WasmKernels) =>
          scoped(k, () => {
            const x = f32(k, logits);
            const loss = k.crossEntropy(x, targets, T, V);
            const probs = bits(x);
            k.crossEntropyBackward(x, targets, T, V, 1 / 3);
            return { loss, probs, grad: bits(x) };
          });
        expect(run(many.get(t)!)).toEqual(run(one));
      }),
      { numRuns: 100 },
    );
  });

  it("crossEntropy over more rows than one threaded call takes (8192)", () => {
    const T = 8195,
      V = 5,
      logits = randomF32(7, T * V),
      targets = Array.from({ length: T }, (_, t) => (t * 7) % V);
    const run = (k: WasmKernels) =>
      scoped(k, () => {
        const x = f32(k, logits);
        const loss = k.crossEntropy(x, targets, T, V);
        k.crossEntropyBackward(x, targets, T, V, 0.25);
        return { loss, grad: bits(x) };
      });
    const want = run(one);
    for (const t of THREADS) expect(run(many.get(t)!)).toEqual(want);
  });

  it("adamw (split by parameters)", () => {
    fc.assert(
      fc.property(elements, fc.integer({ min: 1, max: 50 }), threads, seed, (n, step, t, s) => {
        const w0 = randomF32(s, n),
          g0 = randomF32(s + 1, n),
          m0 = randomF32(s + 2, n).map((v) => v / 8);
        const v0 = randomF32(s + 3, n).map((v) => v * v);
        const run = (k: WasmKernels) =>
          scoped(k, () => {
            const w = f32(k, w0),
              m = f32(k, m0),
              v = f32(k, v0);
            k.adamw(w, f32(k, g0), m, v, n, 1e-3, 0.9, 0.95, 1e-8, 0.1, step);
            return [bits(w), bits(m), bits(v)];
          });
        expect(run(many.get(t)!)).toEqual(run(one));
      }),
      { numRuns: 100 },
    );
  });
});

describe.each(FIXTURE_NAMES)("%s: logits and greedy ids with threads 1, 2, 3, 8", (fixture) => {
  const ids = expectedIds(fixture, "input_ids");
  it.each(["model.safetensors", "model.fp16.safetensors"])("%s", async (weights) => {
    const run = async (t: number) => {
      await using model = await loadModel(join(FIXTURES, fixture), { weights, threads: t, minThreadWork: 0 });
      expect(model.threads).toBe(t);
      const logits = bits(model.forward(ids));
      const r = await generate(model, ids.slice(0, 5), { maxNewTokens: 12, temperature: 0, eosTokenId: null }).complete();
      expect(r.threads).toBe(t);
      return { logits, greedy: r.ids };
    };
    const ref = await run(1);
    for (const t of [2, 3, 8]) expect(await run(t)).toEqual(ref);
  });
});

describe("training on two threads", () => {
  const tmp = mkdtempSync(join(tmpdir(), "mobilellm-threads-"));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));
  const V = 48;
  const config: MobileLLMConfig = {
    vocabSize: V,
    hiddenSize: 32,
    intermediateSize: 64,
    numLayers: 2,
    numHeads: 4,
    numKvHeads: 2,
    headDim: 8,
    maxPositions: 64,
    rmsNormEps: 1e-5,
    ropeTheta: 10000,
    shareEmbedding: true,
    layerSharing: true,
    bosTokenId: 1,
    eosTokenId: 2,
  };

  it("gives a bit-identical 20-step loss curve on 1 and 2 threads", async () => {
    const data = join(tmp, "data");
    mkdirSync(join(data, "1"), { recursive: true });
    const g = new Mulberry32(5);
    const lines = Array.from({ length: 48 }, () =>
      JSON.stringify({ token_ids: Array.from({ length: 25 }, () => 3 + Math.floor(g.next() * (V - 3))) }),
    );
    writeFileSync(join(data, "1", "data.jsonl"), lines.join("\n") + "\n");
    const recipe: Recipe = { ...RECIPE_DEFAULTS, steps: 20, batchSize: 3, seqLen: 24, lr: 1e-2, warmup: 4, seed: 7 };
    const curve = async (t: number) => {
      const res = await pretrain({ config, recipe, data, out: join(tmp, `run-${t}`), backend: "wasm", threads: t, minThreadWork: 0 });
      return res.records.map((r) => [r.loss, r.grad_norm]);
    };
    const one = await curve(1);
    expect(one.length).toBe(20);
    expect(await curve(2)).toEqual(one); // toEqual on numbers is Object.is: exact
  });
});

describe("failures, abort and dispose", () => {
  it("a kernel that throws on one thread makes the call throw, naming the kernel; the pool stays usable", () => {
    const k = many.get(2)!;
    scoped(k, () => {
      const I = 16,
        O = 64;
      const x = k.allocF32(I),
        w = k.allocF32(O * I);
      // y's last 8 rows (the last of the call's 8 chunks) lie beyond the end of memory: a trap on
      // whichever thread claims that chunk, while the other chunks complete
      const yPastEnd = k.memory.buffer.byteLength - (O - 8) * 4;
      for (let i = 0; i < 20; i++) {
        expect(() =>
          k.parallel("matmulRows", [yPastEnd, x.byteOffset, w.byteOffset, 0, 1, I, O], { units: O, align: 8, work: I * O, scratch: true }),
        ).toThrow(/matmulRows failed on (worker thread 1|the calling thread): .*out of bounds/);
      }
      const y = k.allocF32(O);
      x.fill(1);
      w.fill(0.5);
      k.matmul(y, x, { dtype: "f32", shape: [O, I], data: w }, 1, I, O);
      expect(Array.from(y)).toEqual(new Array(O).fill(8));
    });
  });

  it("without shared memory the kernels run on one thread and say so once", async () => {
    const said: string[] = [];
    const k = await createWasmKernels({ threads: 2, shared: false, log: (m) => said.push(m) });
    expect(k.threads).toBe(1);
    await createWasmKernels({ threads: 2, shared: false, log: (m) => said.push(m) });
    expect(said).toEqual(["mobilellm: running the wasm kernels on one thread: an unshared memory was asked for (shared: false)"]);
  });

  it("a worker that fails to start makes creating the kernels reject with the reason", async () => {
    await expect(
      createWasmKernels({
        threads: 3,
        spawnWorker: (_source, data) => spawnWorker("() => { throw new Error('no kernels for you'); }", data),
      }),
    ).rejects.toThrow(/kernel worker \d of 2 failed to start: no kernels for you/);
  });

  it("an abort during a threaded generation returns; dispose() ends the workers and a reload works", async () => {
    const folder = join(FIXTURES, "tiny-gqa");
    const model = await loadModel(folder, { threads: 2, minThreadWork: 0 });
    const controller = new AbortController();
    const gen = generate(model, [1, 5, 9], { maxNewTokens: 40, eosTokenId: null, temperature: 0, signal: controller.signal });
    let n = 0;
    for await (const _step of gen) if (++n === 3) controller.abort();
    const r = await gen.result;
    expect(r).toMatchObject({ stopReason: "abort", generatedTokens: 3, threads: 2 });
    const logits = bits(model.forward([1, 5, 9]));
    await model.dispose();
    await model.dispose(); // idempotent
    // the forward's first kernel, input_layernorm, is threaded by rows
    expect(() => model.forward([1, 5, 9])).toThrow(/rmsnormRows called after dispose\(\)/);
    await using again = await loadModel(folder, { threads: 2, minThreadWork: 0 });
    expect(bits(again.forward([1, 5, 9]))).toEqual(logits);
  });

  it("a process that never calls dispose() still exits", () => {
    const script = [
      `import { loadModel } from ${JSON.stringify(join(TESTS_DIR, "..", "dist", "index.js"))};`,
      `const model = await loadModel(${JSON.stringify(join(FIXTURES, "tiny-gqa"))}, { threads: 3, minThreadWork: 0 });`,
      "model.forward([1, 2, 3]);",
      // biome-ignore lint/suspicious/noTemplateCurlyInString: source text of a script, not a template
      "console.log(`ran on ${model.threads} threads`);",
    ].join("\n");
    const out = execFileSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8", timeout: 30_000 });
    expect(out.trim()).toBe("ran on 3 threads");
  });
});
