// The restricted unpickler: hand-built pickles (opcode byte arrays) for what must load and what
// must be refused, and a proof that a refused pickle runs nothing.

import * as fs from "node:fs";
import * as path from "node:path";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { PyDict, type PyTuple, TensorRef, UnsafePickleError, unpickle } from "../../src/io/pickle.js";
import { openPytorchCheckpoint } from "../../src/io/files.js";
import { CheckpointError } from "../../src/io/tensor-file.js";
import { PickleBuilder, makeTempDir, stateDictPickle, torchZip, writeTemp, thrown } from "./pytorch-helpers.js";

const tmp = makeTempDir();
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const bytes = (...b: number[]) => Uint8Array.from(b);

describe("restricted unpickler: refusals", () => {
  it("refuses `os system` + REDUCE at the GLOBAL, before anything could run", async () => {
    const sentinel = path.join(tmp, "sentinel");
    // cos\nsystem\n  X'touch <sentinel>'  TUPLE1  REDUCE  STOP: pickle.loads would create the file
    const p = new PickleBuilder().proto(2).global("os", "system").str(`touch ${sentinel}`).op(0x85).reduce().stop().bytes();
    const err = thrown(() => unpickle(p, "evil.bin"));
    expect(err).toBeInstanceOf(UnsafePickleError);
    expect(err).toBeInstanceOf(CheckpointError);
    expect(err.message).toBe("refusing to load evil.bin: the pickle references os.system; only tensor data is accepted");
    expect((err as UnsafePickleError).opcodeOffset).toBe(2); // the GLOBAL opcode right after PROTO 2
    // and through the checkpoint reader, inside a zip
    const file = writeTemp(tmp, "evil.bin", torchZip(p, new Map()));
    await expect(openPytorchCheckpoint(file)).rejects.toThrow(
      `refusing to load ${file}: the pickle references os.system; only tensor data is accepted`,
    );
    expect(fs.existsSync(sentinel)).toBe(false);
  });

  it("refuses builtins.eval, posix.system and others, via GLOBAL and STACK_GLOBAL", () => {
    for (const [m, n] of [
      ["builtins", "eval"],
      ["posix", "system"],
      ["__builtin__", "exec"],
      ["torch", "load"],
      ["collections", "OrderedDictX"],
      ["torch._utils", "_rebuild_tensor"],
    ]) {
      const viaGlobal = new PickleBuilder().proto(2).global(m!, n!).str("1+1").op(0x85).reduce().stop().bytes();
      expect(() => unpickle(viaGlobal, "x.bin")).toThrow(`the pickle references ${m}.${n};`);
      // protocol 4: SHORT_BINUNICODE module, SHORT_BINUNICODE name, STACK_GLOBAL
      const enc = (s: string) => [0x8c, s.length, ...Buffer.from(s)];
      const viaStack = bytes(0x80, 4, ...enc(m!), ...enc(n!), 0x93, 0x29, 0x52, 0x2e);
      expect(() => unpickle(viaStack, "x.bin")).toThrow(UnsafePickleError);
    }
  });

  it("refuses REDUCE on an allowed name that is not callable here (a storage type)", () => {
    const p = new PickleBuilder().proto(2).global("torch", "HalfStorage").emptyTuple().reduce().stop().bytes();
    expect(() => unpickle(p, "x.bin")).toThrow(/references a call \(REDUCE\) of torch\.HalfStorage/);
    const onString = new PickleBuilder().proto(2).str("os").emptyTuple().reduce().stop().bytes();
    expect(() => unpickle(onString, "x.bin")).toThrow(UnsafePickleError);
  });

  it("refuses BUILD on anything but an OrderedDict", () => {
    const onDict = new PickleBuilder().proto(2).emptyDict().emptyDict().build().stop().bytes();
    expect(() => unpickle(onDict, "x.bin")).toThrow(/refusing to load x\.bin: the pickle references BUILD .* other than an OrderedDict/);
    const onList = bytes(0x80, 2, 0x5d, 0x7d, 0x62, 0x2e);
    expect(() => unpickle(onList, "x.bin")).toThrow(UnsafePickleError);
    const onTensorArgs = new PickleBuilder().proto(2).emptyTuple().emptyDict().build().stop().bytes();
    expect(() => unpickle(onTensorArgs, "x.bin")).toThrow(UnsafePickleError);
  });

  it("names an unknown opcode with its byte and offset, and unsupported ones by name", () => {
    expect(() => unpickle(bytes(0x80, 2, 0x7d, 0xff, 0x2e), "x.bin")).toThrow(
      "x.bin: malformed pickle at byte 3 of data.pkl: unknown opcode 0xff",
    );
    expect(() => unpickle(bytes(0x80, 2, 0x7d, 0x81, 0x2e), "x.bin")).toThrow(/byte 3 .*unsupported opcode NEWOBJ 0x81/);
    expect(() => unpickle(bytes(0x80, 2, 0x69, 0x2e), "x.bin")).toThrow(/unsupported opcode INST 0x69 'i'/);
  });

  it("reports stack underflow, missing MARK, truncation, and memo misuse", () => {
    expect(() => unpickle(bytes(0x80, 2, 0x73, 0x2e), "x.bin")).toThrow(/byte 2 .*stack underflow/); // SETITEM on empty
    expect(() => unpickle(bytes(0x80, 2, 0x4e, 0x86, 0x2e), "x.bin")).toThrow(/stack underflow/); // TUPLE2 of one value
    expect(() => unpickle(bytes(0x80, 2, 0x7d, 0x28, 0x52, 0x2e), "x.bin")).toThrow(/stack underflow/); // REDUCE across a MARK
    expect(() => unpickle(bytes(0x80, 2, 0x74, 0x2e), "x.bin")).toThrow(/no MARK/);
    expect(() => unpickle(bytes(0x80, 2, 0x58, 0xff, 0xff, 0, 0, 0x61), "x.bin")).toThrow(/needs 65535 more bytes but the pickle ends/);
    expect(() => unpickle(bytes(0x80, 2, 0x7d), "x.bin")).toThrow(/pickle ends/); // no STOP
    expect(() => unpickle(bytes(0x80, 2, 0x68, 5, 0x2e), "x.bin")).toThrow(/memo entry 5 is read before it is written/);
    expect(() => unpickle(bytes(0x80, 2, 0x4e, 0x4e, 0x2e), "x.bin")).toThrow(/STOP with 2 values/);
    expect(() => unpickle(bytes(0x80, 9, 0x4e, 0x2e), "x.bin")).toThrow(/protocol 9/);
  });

  it("rejects malformed tensor arguments and persistent ids", () => {
    const badPid = new PickleBuilder()
      .proto(2)
      .mark()
      .str("storage")
      .global("torch", "HalfStorage")
      .str("0")
      .str("cpu")
      .tuple()
      .persid()
      .stop()
      .bytes();
    expect(() => unpickle(badPid, "x.bin")).toThrow(/persistent id is not a \('storage'/);
    const p = new PickleBuilder()
      .proto(2)
      .global("torch._utils", "_rebuild_tensor_v2")
      .mark()
      .str("not a storage")
      .int(0)
      .intTuple([1])
      .intTuple([1])
      .newfalse()
      .emptyDict()
      .tuple()
      .reduce()
      .stop()
      .bytes();
    expect(() => unpickle(p, "x.bin")).toThrow(/first argument is not a storage/);
  });
});

describe("restricted unpickler: plain data", () => {
  it("rebuilds a state dict with tensors (protocol 2, as torch.save writes it)", () => {
    const p = stateDictPickle(
      [{ name: "a.weight", storageType: "HalfStorage", key: "3", storageNumel: 12, offset: 2, shape: [2, 5], stride: [5, 1] }],
      "ordered",
    );
    const root = unpickle(p, "x.bin") as PyDict;
    expect(root).toBeInstanceOf(PyDict);
    expect(root.ordered).toBe(true);
    const t = root.items.get("a.weight") as TensorRef;
    expect(t).toBeInstanceOf(TensorRef);
    expect([t.storage.dtype, t.storage.key, t.storage.location, t.storage.numel]).toEqual(["F16", "3", "cpu", 12]);
    expect([t.storageOffset, t.shape, t.stride]).toEqual([2, [2, 5], [5, 1]]);
    const meta = root.attributes!.get("_metadata") as PyDict;
    expect((meta.items.get("") as PyDict).items.get("version")).toBe(1);
  });

  it("reads protocol 4/5 data opcodes: FRAME, SHORT_BINUNICODE, BINUNICODE8, MEMOIZE, LONG1, BINFLOAT, lists, tuples", () => {
    const s = (x: string) => [0x8c, x.length, ...Buffer.from(x)];
    const frameBody = [
      0x7d,
      0x94, // EMPTY_DICT MEMOIZE(0)
      0x28, // MARK
      ...s("f"),
      0x47,
      ...Buffer.from([0x3f, 0xf8, 0, 0, 0, 0, 0, 0]), // 'f': 1.5 (BINFLOAT, big-endian)
      ...s("big"),
      0x8a,
      5,
      0,
      0,
      0,
      0,
      0x80, // LONG1 5 bytes: -2^39
      ...s("pos"),
      0x8a,
      5,
      0,
      0,
      0,
      0,
      0x01, // 2^32
      ...s("neg"),
      0x4a,
      0xfe,
      0xff,
      0xff,
      0xff, // BININT -2
      ...s("list"),
      0x5d,
      0x94,
      0x28,
      0x88,
      0x89,
      0x4e,
      0x65,
      0x68,
      1,
      0x4b,
      7,
      0x61,
      0x30, // [True, False, None]; then memo[1].append(7) and POP the extra reference
      ...s("tup"),
      0x4b,
      1,
      0x4b,
      2,
      0x4b,
      3,
      0x87, // TUPLE3
      ...s("u8"),
      0x8d,
      2,
      0,
      0,
      0,
      0,
      0,
      0,
      0,
      0xc3,
      0xa9, // BINUNICODE8 'é'
      ...s("old"),
      0x55,
      2,
      0x68,
      0x69, // SHORT_BINSTRING 'hi'
      0x75, // SETITEMS
      0x2e,
    ];
    const p = bytes(0x80, 4, 0x95, ...Buffer.from(new BigUint64Array([BigInt(frameBody.length)]).buffer), ...frameBody);
    const root = unpickle(p, "x.bin") as PyDict;
    expect(root.items.get("f")).toBe(1.5);
    expect(root.items.get("big")).toBe(-(2 ** 39));
    expect(root.items.get("pos")).toBe(2 ** 32);
    expect(root.items.get("neg")).toBe(-2);
    expect(root.items.get("list")).toEqual([true, false, null, 7]);
    expect((root.items.get("tup") as PyTuple).items).toEqual([1, 2, 3]);
    expect(root.items.get("u8")).toBe("é");
    expect(root.items.get("old")).toBe("hi");
  });
});

describe("restricted unpickler: random programs", () => {
  it("random opcode sequences either produce a value or throw a CheckpointError (never anything else)", () => {
    // Mostly opcodes it knows (so programs get past the first byte), with random argument bytes.
    const known = [
      0x28, 0x2e, 0x30, 0x31, 0x47, 0x4a, 0x4b, 0x4d, 0x4e, 0x51, 0x52, 0x58, 0x5d, 0x61, 0x62, 0x63, 0x64, 0x65, 0x68, 0x6a, 0x6c, 0x71,
      0x72, 0x73, 0x74, 0x75, 0x7d, 0x29, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x8c, 0x93, 0x94, 0x95,
    ];
    let values = 0;
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.constantFrom(...known), fc.nat(255), fc.constant(0)), { maxLength: 60 }), (ops) => {
        try {
          unpickle(bytes(0x80, 2, ...ops), "r.bin");
          values++;
        } catch (e) {
          if (!(e instanceof CheckpointError)) throw e;
          expect(e.message).toMatch(/^r\.bin: |^refusing to load r\.bin: /);
        }
      }),
      { numRuns: 3000, seed: 42 },
    );
    expect(values).toBeGreaterThan(0); // some random programs are valid pickles
  });
});
