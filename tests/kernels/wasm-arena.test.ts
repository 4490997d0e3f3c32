// The wasm kernels vs the TS reference: the wasm arena and argument checks. Tolerances and random data: wasm-helpers.ts.
import { describe, expect, it } from "vitest";
import { createWasmKernels } from "../../src/kernels/wasm/index.js";
import { wasm, scoped } from "./wasm-helpers.js";

describe("wasm arena", () => {
  it("hands out 16-byte aligned, zero-filled views (also after release) and tracks the high-water mark", () => {
    const mark = wasm.arena.mark();
    const a = wasm.allocF32(5);
    a.fill(7);
    const b = wasm.allocU16(3);
    expect(a.byteOffset % 16).toBe(0);
    expect(b.byteOffset % 16).toBe(0);
    expect(b.byteOffset).toBeGreaterThanOrEqual(a.byteOffset + 20);
    expect(wasm.arena.highWaterMark).toBeGreaterThanOrEqual(wasm.arena.used);
    wasm.arena.release(mark);
    const c = wasm.allocF32(5);
    expect(c.byteOffset).toBe(a.byteOffset);
    expect(Array.from(c)).toEqual([0, 0, 0, 0, 0]);
    wasm.arena.release(mark);
  });
  it("rejects arrays that are not views on its memory, naming the argument", () => {
    scoped(() => {
      const y = wasm.allocF32(4);
      expect(() => wasm.add(y, new Float32Array(4), 4)).toThrow(/add: xN is not a view on this backend's wasm memory/);
      expect(() => wasm.add(y, wasm.allocF32(2), 4)).toThrow(/xN has 2 elements, needs 4/);
    });
  });
  it("with a shared memory (the default here), views stay valid when memory grows after they were made", async () => {
    const k = await createWasmKernels();
    expect(k.arena.shared).toBe(true);
    const a = k.allocF32(1000);
    a.fill(3);
    const b = k.allocF32(4 << 20); // 16 MiB more: the memory grows
    expect(a.length).toBe(1000);
    expect(a[999]).toBe(3);
    k.add(b, a, 1000); // views made before and after growth both work
    expect(b[999]).toBe(3);
    expect(k.arena.highWaterMark).toBeGreaterThan(16 << 20);
  });
  it("with an ordinary memory, growing after views exist throws a clear error instead of detaching them", async () => {
    const k = await createWasmKernels({ shared: false });
    k.reserve(1 << 20);
    const a = k.allocF32(1000); // fits in the reservation
    expect(() => k.allocF32(1 << 20)).toThrow(/call reserve\(\) first with the total size/);
    expect(a.length).toBe(1000); // still attached
    k.add(a, a, 1000);
    expect(k.arena.highWaterMark).toBeGreaterThan(4000);
  });
});
