// Test helpers for the pytorch_model.bin reader: a minimal safetensors parser (the reference the
// fixtures are compared to), a byte-level pickle builder and a small zip writer (STORED entries,
// optional zip64 records), so tests can craft valid and broken checkpoints by hand.

import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { crc32, ZipReader } from "../../src/io/zip.js";
import { fileSource } from "../../src/platform/node.js";

// --- safetensors (8-byte LE header length, JSON header, data section) -------------------------

export interface RawTensor {
  dtype: string;
  shape: number[];
  bytes: Uint8Array;
}

export function readSafetensors(file: string): Map<string, RawTensor> {
  const buf = new Uint8Array(fs.readFileSync(file));
  const n = Number(new DataView(buf.buffer, buf.byteOffset).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(buf.subarray(8, 8 + n))) as Record<
    string,
    { dtype: string; shape: number[]; data_offsets: [number, number] }
  >;
  const out = new Map<string, RawTensor>();
  for (const [name, t] of Object.entries(header)) {
    if (name === "__metadata__") continue;
    out.set(name, { dtype: t.dtype, shape: t.shape, bytes: buf.subarray(8 + n + t.data_offsets[0], 8 + n + t.data_offsets[1]) });
  }
  return out;
}

// --- pickle builder ----------------------------------------------------------------------------

/** Append pickle opcodes; `bytes()` returns the program. */
export class PickleBuilder {
  private out: number[] = [];
  op(...b: number[]): this {
    this.out.push(...b);
    return this;
  }
  proto(v = 2): this {
    return this.op(0x80, v);
  }
  global(module: string, name: string): this {
    return this.op(0x63, ...Buffer.from(`${module}\n${name}\n`, "latin1"));
  }
  str(s: string): this {
    const b = Buffer.from(s, "utf8");
    return this.op(0x58, ...u32(b.length), ...b); // BINUNICODE
  }
  int(n: number): this {
    if (n >= 0 && n < 256) return this.op(0x4b, n); // BININT1
    if (n >= 0 && n < 65536) return this.op(0x4d, n & 0xff, n >>> 8); // BININT2
    if (n >= -(2 ** 31) && n < 2 ** 31) return this.op(0x4a, ...u32(n >>> 0)); // BININT
    // LONG1: little-endian two's complement, 8 bytes
    const b = Buffer.alloc(8);
    b.writeBigInt64LE(BigInt(n));
    return this.op(0x8a, 8, ...b);
  }
  intTuple(ns: number[]): this {
    this.mark();
    for (const n of ns) this.int(n);
    return this.tuple();
  }
  mark(): this {
    return this.op(0x28);
  }
  tuple(): this {
    return this.op(0x74);
  }
  emptyTuple(): this {
    return this.op(0x29);
  }
  emptyDict(): this {
    return this.op(0x7d);
  }
  reduce(): this {
    return this.op(0x52);
  }
  build(): this {
    return this.op(0x62);
  }
  setitem(): this {
    return this.op(0x73);
  }
  setitems(): this {
    return this.op(0x75);
  }
  newfalse(): this {
    return this.op(0x89);
  }
  persid(): this {
    return this.op(0x51);
  }
  stop(): this {
    return this.op(0x2e);
  }
  bytes(): Uint8Array {
    return Uint8Array.from(this.out);
  }
}

function u32(n: number): number[] {
  return [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff];
}

export interface TensorSpec {
  name: string;
  storageType: string; // "HalfStorage", "FloatStorage", ...
  key: string;
  storageNumel: number;
  offset: number;
  shape: number[];
  stride: number[];
  /** Wrap in torch._utils._rebuild_parameter (nn.Parameter). */
  parameter?: boolean;
}

/** Emit `_rebuild_tensor_v2(persistent_load(('storage', torch.X, key, 'cpu', numel)), offset, size, stride, False, OrderedDict())`. */
export function pickleTensor(p: PickleBuilder, t: TensorSpec): void {
  if (t.parameter) p.global("torch._utils", "_rebuild_parameter").mark();
  p.global("torch._utils", "_rebuild_tensor_v2").mark();
  p.mark().str("storage").global("torch", t.storageType).str(t.key).str("cpu").int(t.storageNumel).tuple().persid();
  p.int(t.offset).intTuple(t.shape).intTuple(t.stride).newfalse();
  p.global("collections", "OrderedDict").emptyTuple().reduce();
  p.tuple().reduce();
  if (t.parameter) p.newfalse().emptyDict().tuple().reduce();
}

/** A whole state-dict pickle like torch.save writes: plain dict or OrderedDict (+ `_metadata` BUILD). */
export function stateDictPickle(tensors: TensorSpec[], root: "dict" | "ordered" = "dict"): Uint8Array {
  const p = new PickleBuilder().proto(2);
  if (root === "dict") p.emptyDict();
  else p.global("collections", "OrderedDict").emptyTuple().reduce();
  p.mark();
  for (const t of tensors) {
    p.str(t.name);
    pickleTensor(p, t);
  }
  p.setitems();
  if (root === "ordered") {
    p.emptyDict().str("_metadata").global("collections", "OrderedDict").emptyTuple().reduce();
    p.str("").emptyDict().str("version").int(1).setitem().setitem().setitem().build();
  }
  return p.stop().bytes();
}

// --- zip writer --------------------------------------------------------------------------------

export interface ZipInput {
  name: string;
  data: Uint8Array;
  /** Compression method to claim (data is written as is). Default 0 (stored). */
  method?: number;
  /** CRC to write instead of the true one. */
  crc?: number;
  /** Extra bytes in the local header only (torch pads data to 64 bytes this way). */
  localExtra?: Uint8Array;
}

/**
 * Write a zip of STORED entries. With `zip64`, every central record puts size, compressed size and
 * local header offset in a zip64 extra field (32-bit fields = 0xFFFFFFFF) and the archive ends with
 * a zip64 EOCD record + locator whose EOCD fields are all 0xFFFF/0xFFFFFFFF.
 * Entry offsets beyond 4 GiB need `zip64` (the 32-bit fields cannot hold them).
 */
export function writeZip(entries: ZipInput[], opts: { zip64?: boolean; baseOffset?: number } = {}): Uint8Array {
  const parts: Uint8Array[] = [];
  // `baseOffset`: the zip will be written at this file position (after a prefix); offsets in
  // the headers are absolute file positions, so they all include it.
  let pos = opts.baseOffset ?? 0;
  const push = (b: Uint8Array) => {
    parts.push(b);
    pos += b.length;
  };
  const central: Uint8Array[] = [];
  for (const e of entries) {
    const name = Buffer.from(e.name, "utf8");
    const crc = e.crc ?? crc32(e.data);
    const method = e.method ?? 0;
    const localExtra = e.localExtra ?? new Uint8Array(0);
    const offset = pos;
    const lh = Buffer.alloc(30);
    lh.writeUInt32LE(0x04034b50, 0);
    lh.writeUInt16LE(20, 4);
    lh.writeUInt16LE(0x0800, 6); // UTF-8 names
    lh.writeUInt16LE(method, 8);
    lh.writeUInt32LE(crc, 14);
    lh.writeUInt32LE(e.data.length, 18);
    lh.writeUInt32LE(e.data.length, 22);
    lh.writeUInt16LE(name.length, 26);
    lh.writeUInt16LE(localExtra.length, 28);
    push(lh);
    push(name);
    push(localExtra);
    push(e.data);

    const extra = opts.zip64 ? Buffer.alloc(4 + 24) : Buffer.alloc(0);
    if (opts.zip64) {
      extra.writeUInt16LE(0x0001, 0);
      extra.writeUInt16LE(24, 2);
      extra.writeBigUInt64LE(BigInt(e.data.length), 4); // size
      extra.writeBigUInt64LE(BigInt(e.data.length), 12); // compressed size
      extra.writeBigUInt64LE(BigInt(offset), 20); // local header offset
    }
    const ch = Buffer.alloc(46);
    ch.writeUInt32LE(0x02014b50, 0);
    ch.writeUInt16LE(opts.zip64 ? 45 : 20, 4);
    ch.writeUInt16LE(opts.zip64 ? 45 : 20, 6);
    ch.writeUInt16LE(0x0800, 8);
    ch.writeUInt16LE(method, 10);
    ch.writeUInt32LE(crc, 16);
    ch.writeUInt32LE(opts.zip64 ? 0xffffffff : e.data.length, 20);
    ch.writeUInt32LE(opts.zip64 ? 0xffffffff : e.data.length, 24);
    ch.writeUInt16LE(name.length, 28);
    ch.writeUInt16LE(extra.length, 30);
    ch.writeUInt32LE(opts.zip64 ? 0xffffffff : offset, 42);
    central.push(ch, name, extra);
  }
  const cdOffset = pos;
  for (const c of central) push(c);
  const cdSize = pos - cdOffset;
  if (opts.zip64) {
    const z = Buffer.alloc(56);
    const zPos = pos;
    z.writeUInt32LE(0x06064b50, 0);
    z.writeBigUInt64LE(44n, 4);
    z.writeUInt16LE(45, 12);
    z.writeUInt16LE(45, 14);
    z.writeBigUInt64LE(BigInt(entries.length), 24);
    z.writeBigUInt64LE(BigInt(entries.length), 32);
    z.writeBigUInt64LE(BigInt(cdSize), 40);
    z.writeBigUInt64LE(BigInt(cdOffset), 48);
    push(z);
    const loc = Buffer.alloc(20);
    loc.writeUInt32LE(0x07064b50, 0);
    loc.writeBigUInt64LE(BigInt(zPos), 8);
    loc.writeUInt32LE(1, 16);
    push(loc);
  }
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(0x06054b50, 0);
  eocd.writeUInt16LE(opts.zip64 ? 0xffff : entries.length, 8);
  eocd.writeUInt16LE(opts.zip64 ? 0xffff : entries.length, 10);
  eocd.writeUInt32LE(opts.zip64 ? 0xffffffff : cdSize, 12);
  eocd.writeUInt32LE(opts.zip64 ? 0xffffffff : cdOffset, 16);
  push(eocd);
  return Buffer.concat(parts);
}

/** A torch-style checkpoint zip: `<topdir>/data.pkl`, `<topdir>/data/<key>`, `<topdir>/version`. */
export function torchZip(
  pickle: Uint8Array,
  storages: Map<string, Uint8Array>,
  opts: { topdir?: string; zip64?: boolean; extra?: ZipInput[] } = {},
): Uint8Array {
  const top = opts.topdir ?? "archive";
  const entries: ZipInput[] = [{ name: `${top}/data.pkl`, data: pickle }];
  for (const [key, data] of storages) entries.push({ name: `${top}/data/${key}`, data });
  entries.push({ name: `${top}/version`, data: Buffer.from("3\n") });
  entries.push(...(opts.extra ?? []));
  return writeZip(entries, { zip64: opts.zip64 });
}

// --- temp files --------------------------------------------------------------------------------

export function makeTempDir(prefix = "mobilellm-pt-"): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export function writeTemp(dir: string, name: string, bytes: Uint8Array): string {
  const p = path.join(dir, name);
  fs.writeFileSync(p, bytes);
  return p;
}

export function f32Bytes(values: number[]): Uint8Array {
  return new Uint8Array(Float32Array.from(values).buffer);
}

/** The error `f` throws (fails the test if it returns normally). */
/** A zip file on disk, opened as the pytorch reader does. */
export async function openZip(file: string): Promise<ZipReader> {
  return ZipReader.open(fileSource(file, "checkpoint"));
}

/** The error a promise rejects with (fails the test if it resolves). */
export async function rejected(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error("expected a rejection");
}

export function thrown(f: () => unknown): Error {
  try {
    f();
  } catch (e) {
    return e as Error;
  }
  throw new Error("expected an exception");
}
