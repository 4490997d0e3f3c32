// A bump allocator over the wasm module's linear memory.
//
// Every weight and activation buffer of a model is a typed-array view on this one memory, so the
// kernels read them in place (no copies between JavaScript and WebAssembly). Growth happens in
// exactly one place (`ensure`), and what it means depends on the memory:
//  * shared memory (the default where SharedArrayBuffer exists): growing leaves every existing
//    view valid (old views simply do not cover the new pages), so allocation may happen at any
//    time; `reserve` only saves repeated small grows.
//  * ordinary memory (a page that is not cross-origin isolated has no SharedArrayBuffer): growing
//    replaces the ArrayBuffer and DETACHES every view made before (they read as length 0). So once
//    views have been handed out, growth is an error instead of silent detachment. The memory must
//    be planned: `kernels.allocate(build)` (src/kernels/plan.ts) measures every buffer a model or
//    a training run declares, grows once, then allocates them; loadModel plans the weights and the
//    run state together, before the first view exists.

const PAGE = 65536;
/** wasm32 addresses 4 GiB at most: 65536 pages. */
export const MAX_PAGES = 65536;
const ALIGN = 16; // v128 loads/stores prefer 16-byte aligned rows

export class WasmArena {
  private top: number;
  private highest: number; // highest `top` ever reached: memory above it is still zero
  private viewsHandedOut = false;
  /** Every buffer object views were made on (a shared memory hands out a new one after growth). */
  private readonly buffers = new Set<ArrayBufferLike>();

  constructor(
    readonly memory: WebAssembly.Memory,
    readonly base: number,
    readonly shared: boolean,
  ) {
    this.top = alignUp(base);
    this.highest = this.top;
  }

  /** Whether `buffer` is (a view-able snapshot of) this arena's memory. */
  owns(buffer: ArrayBufferLike): boolean {
    return buffer === this.memory.buffer || this.buffers.has(buffer);
  }

  private view(): ArrayBufferLike {
    const b = this.memory.buffer;
    this.buffers.add(b);
    this.viewsHandedOut = true;
    return b;
  }

  /** Bytes in use right now (above the module's static data). */
  get used(): number {
    return this.top - this.base;
  }

  /** Most bytes ever in use at once: what `reserve` needs for this workload. */
  get highWaterMark(): number {
    return this.highest - this.base;
  }

  /** Make room for `bytes` more bytes now, growing the memory once if needed. */
  reserve(bytes: number): void {
    this.ensure(this.top + bytes + ALIGN);
  }

  /** Allocate `bytes` (16-byte aligned, zero-filled) and return the byte address. */
  alloc(bytes: number): number {
    if (!(bytes >= 0) || !Number.isFinite(bytes)) {
      throw new RangeError(`wasm arena (src/kernels/wasm/arena.ts): cannot allocate ${bytes} bytes`);
    }
    const ptr = this.top;
    const end = alignUp(ptr + bytes);
    this.ensure(end);
    // memory that was used before (then released) may hold old data; fresh memory is already 0
    if (ptr < this.highest) new Uint8Array(this.memory.buffer as ArrayBuffer, ptr, Math.min(end, this.highest) - ptr).fill(0);
    this.top = end;
    if (end > this.highest) this.highest = end;
    return ptr;
  }

  allocF32(n: number): Float32Array {
    const ptr = this.alloc(n * 4);
    return new Float32Array(this.view(), ptr, n);
  }

  allocU8(n: number): Uint8Array {
    const ptr = this.alloc(n);
    return new Uint8Array(this.view(), ptr, n);
  }

  allocU16(n: number): Uint16Array {
    const ptr = this.alloc(n * 2);
    return new Uint16Array(this.view(), ptr, n);
  }

  /** A position to `release` back to: everything allocated after it is freed at once (scratch). */
  mark(): number {
    return this.top;
  }

  /** Free everything allocated since `mark` (views on it must no longer be used). */
  release(mark: number): void {
    if (!(mark >= alignUp(this.base) && mark <= this.top)) {
      throw new RangeError(`wasm arena (src/kernels/wasm/arena.ts): release(${mark}) is not a mark of this arena`);
    }
    this.top = mark;
  }

  /** The one place memory grows. */
  private ensure(end: number): void {
    const have = this.memory.buffer.byteLength;
    if (end <= have) return;
    const pages = Math.ceil((end - have) / PAGE);
    if (have / PAGE + pages > MAX_PAGES) {
      throw new RangeError(`wasm arena (src/kernels/wasm/arena.ts): ${end} bytes requested, more than wasm32's 4 GiB of memory`);
    }
    if (this.viewsHandedOut && !this.shared) {
      throw new Error(
        "wasm arena (src/kernels/wasm/arena.ts): wasm memory must grow after buffers were created, which would " +
          `detach them (need ${end} bytes, have ${have}): declare all buffers in one kernels.allocate() plan, ` +
          "or call reserve() first with the total size",
      );
    }
    this.memory.grow(pages);
  }
}

function alignUp(n: number): number {
  return Math.ceil(n / ALIGN) * ALIGN;
}
