// The wasm backend on an ordinary (unshared) memory, as on a web page without cross-origin
// isolation: such a memory cannot grow once buffers exist, so loadModel and allocTrainState plan
// every buffer first and allocate them at once (Kernels.allocate, src/kernels/plan.ts). The whole
// model must then give exactly the bits of the shared build (one thread both, so the same kernel
// calls): logits, greedy generation and a training step, on every fixture and weight format.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { generate } from "../../src/generate/generate.js";
import { openSafetensors } from "../../src/io/files.js";
import { createKernels } from "../../src/kernels/index.js";
import { planBytes } from "../../src/kernels/plan.js";
import type { WasmKernels } from "../../src/kernels/wasm/index.js";
import { loadModel, type LoadModelOptions } from "../../src/load.js";
import { parseConfig } from "../../src/model/config.js";
import { allocRunState, runStateBytes } from "../../src/model/state.js";
import { adamwStep, decayGroups, ADAMW_DEFAULTS } from "../../src/train/adamw.js";
import { trainBackward, trainForward, zeroGrads } from "../../src/train/model.js";
import { readParams } from "../../src/train/params.js";
import { allocTrainState } from "../../src/train/state.js";
import { expectedIds, FIXTURE_NAMES, FIXTURES } from "../helpers.js";

const LOADS: { weights: string; dtype?: LoadModelOptions["dtype"] }[] = [
  { weights: "model.safetensors" },
  { weights: "model.fp16.safetensors" },
  { weights: "model.bf16.safetensors" },
  { weights: "pytorch_model.bin" },
  { weights: "model.safetensors", dtype: "q8_0" },
];

const memoryOf = (m: { kernels: unknown }) => (m.kernels as WasmKernels).memory.buffer;

describe.each(FIXTURE_NAMES)("%s on unshared wasm memory", (fixture) => {
  const dir = join(FIXTURES, fixture);
  const promptIds = expectedIds(fixture, "input_ids");
  const greedyIds = expectedIds(fixture, "greedy_ids");

  it.each(LOADS)("$weights (dtype $dtype): logits and greedy ids equal the shared build's, bit for bit", async (load) => {
    const unshared = await loadModel(dir, { ...load, shared: false, threads: 1 });
    const shared = await loadModel(dir, { ...load, shared: true, threads: 1 });
    expect(memoryOf(unshared)).toBeInstanceOf(ArrayBuffer);
    expect(memoryOf(shared)).toBeInstanceOf(SharedArrayBuffer);
    const a = unshared.forward(promptIds),
      b = shared.forward(promptIds);
    expect(a.length).toBe(promptIds.length * unshared.config.vocabSize);
    expect(Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength))).toBe(true);
    for (const model of [unshared, shared]) model.reset();
    const ids = async (model: typeof shared) => {
      const out: number[] = [];
      for await (const step of generate(model, promptIds, { maxNewTokens: greedyIds.length, temperature: 0, eosTokenId: null }))
        out.push(step.id);
      return out;
    };
    const got = await ids(unshared);
    expect(got).toEqual(await ids(shared));
    if (load.dtype === undefined) expect(got).toEqual(greedyIds);
  });

  it("a training step (loss, every gradient, AdamW on the backend) equals the shared build's, bit for bit", async () => {
    const config = parseConfig(JSON.parse(readFileSync(join(dir, "config.json"), "utf8")), join(dir, "config.json"));
    const step = async (shared: boolean) => {
      const k = await createKernels("wasm", { shared, threads: 1 });
      const s = allocTrainState(k, config, 2, promptIds.length);
      expect((k as WasmKernels).memory.buffer instanceof SharedArrayBuffer).toBe(shared);
      const file = await openSafetensors(join(dir, "model.safetensors"));
      try {
        await readParams(s.params, file, config);
      } finally {
        file.close();
      }
      s.idsN.set([...promptIds, ...promptIds.slice().reverse()]);
      zeroGrads(s);
      const loss = trainForward(s);
      trainBackward(s);
      adamwStep(s.params.flat, s.params.gradFlat, s.opt, ADAMW_DEFAULTS, ADAMW_DEFAULTS.lr, decayGroups(s.params.layout), k);
      const loss2 = trainForward(s);
      return { loss, loss2, grads: s.params.gradFlat.slice(), params: s.params.flat.slice(), m: s.opt.m.slice() };
    };
    const u = await step(false),
      sh = await step(true);
    expect(u.loss).toBe(sh.loss);
    expect(u.loss2).toBe(sh.loss2);
    expect(u.loss2).toBeLessThan(u.loss); // the step did something
    for (const key of ["grads", "params", "m"] as const) {
      expect(Buffer.from(u[key].buffer).equals(Buffer.from(sh[key].buffer)), key).toBe(true);
    }
  });
});

describe("memory plans", () => {
  it("a plan's measured bytes are what the backend allocates, so unshared memory grows exactly once", async () => {
    const dir = join(FIXTURES, "tiny-ls");
    const config = parseConfig(JSON.parse(readFileSync(join(dir, "config.json"), "utf8")), join(dir, "config.json"));
    const k = (await createKernels("wasm", { shared: false, threads: 1 })) as WasmKernels;
    const before = k.arena.used;
    let grows = 0;
    const grow = k.memory.grow.bind(k.memory);
    k.memory.grow = (pages: number) => (grows++, grow(pages));
    const state = k.allocate((a) => allocRunState(a, config, 7, 65));
    expect(grows).toBe(1);
    expect(k.arena.used - before).toBe(planBytes((a) => allocRunState(a, config, 7, 65)));
    expect(runStateBytes(config, 7, 65)).toBe(k.arena.used - before);
    expect(state.cache.kPKVDh.length).toBe(2 * config.numLayers); // layer sharing: one slot per application
    expect(state.cache.kPKVDh[0]!.length).toBe(65 * config.numKvHeads * config.headDim);
    // after views exist, an allocation that needs more memory fails with a message saying what to do
    expect(() => k.allocate((a) => a.allocF32(1 << 24))).toThrow(/declare all buffers in one kernels\.allocate\(\) plan/);
  });

  it("a build function that declares different buffers on its two runs is an error, not a silent overrun", async () => {
    const k = await createKernels("wasm", { shared: false, threads: 1 });
    let n = 10;
    expect(() => k.allocate((a) => a.allocF32((n += 10)))).toThrow(/must declare the same buffers every time it runs/);
  });
});
