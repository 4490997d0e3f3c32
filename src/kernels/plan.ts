// Memory plans: the sizes of a set of buffers, measured by declaring them.
//
// Code that needs buffers writes ONE function that declares them, `build(a: Allocator)`, and hands
// it to `kernels.allocate(build)`. To size the plan, the same function runs against the measuring
// allocator below, which returns empty placeholders and adds up what the backend would take (each
// buffer rounded up to 16 bytes, as the wasm arena aligns them). There is no separate tally of
// floats to keep in step with the allocations: the allocations are the tally.

import type { Allocator } from "./kernels.js";

/** Every buffer starts at a multiple of this many bytes (v128 rows; src/kernels/wasm/arena.ts). */
export const PLAN_ALIGN = 16;

/** Bytes a buffer of `bytes` bytes takes in a plan (rounded up to PLAN_ALIGN). */
export function alignedBytes(bytes: number): number {
  return Math.ceil(bytes / PLAN_ALIGN) * PLAN_ALIGN;
}

/** Bytes (alignment included) of the buffers `build` declares; its result is discarded. */
export function planBytes(build: (a: Allocator) => unknown): number {
  let bytes = 0;
  const add = (n: number, elementBytes: number) => {
    if (!(Number.isSafeInteger(n) && n >= 0)) {
      throw new RangeError(`memory plan (src/kernels/plan.ts): cannot allocate ${n} elements`);
    }
    bytes += alignedBytes(n * elementBytes);
  };
  build({
    allocF32: (n) => (add(n, 4), new Float32Array(0)),
    allocU16: (n) => (add(n, 2), new Uint16Array(0)),
    allocU8: (n) => (add(n, 1), new Uint8Array(0)),
  });
  return bytes;
}
