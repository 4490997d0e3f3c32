// A RESTRICTED unpickler: just enough of Python's pickle machine to rebuild a PyTorch state dict.
//
// A pickle is a little stack program. `torch.save(state_dict)` emits (protocol 2):
//
//   GLOBAL 'collections OrderedDict'  EMPTY_TUPLE  REDUCE        # root = OrderedDict()   (or EMPTY_DICT)
//   MARK
//     'model.norm.weight'                                         # key
//     GLOBAL 'torch._utils _rebuild_tensor_v2'                    # value = _rebuild_tensor_v2(
//     MARK MARK 'storage' GLOBAL 'torch HalfStorage' '7' 'cpu' 64 TUPLE BINPERSID   #   storage,
//          0  (64,)  (1,)  False  OrderedDict()  TUPLE REDUCE     #   offset, size, stride, grad, hooks)
//     ...
//   SETITEMS  [ {'_metadata': ...} BUILD ]  STOP
//
// A general unpickler calls whatever GLOBAL names (`os.system`, `builtins.eval`, ...): loading a
// pickle from the internet is running its code. This one resolves GLOBAL against a short
// allow-list of the names a state dict needs and refuses everything else before doing anything
// with it. REDUCE only "calls" those names, each implemented here as plain data construction;
// BUILD is only accepted on an OrderedDict (state_dict's `_metadata` attribute). The work is
// bounded by the input length: every opcode consumes at least one byte and nothing recurses.

import { CheckpointError, ownEntry, type FileDType } from "./tensor-file.js";

/** A Python tuple (kept apart from lists, which are JS arrays). */
export class PyTuple {
  constructor(readonly items: PyValue[]) {}
}

/** Keys a dict may have here: the hashable plain values. */
export type PyKey = string | number | boolean | null;

/** A dict or collections.OrderedDict; `attributes` holds what BUILD set (OrderedDict only). */
export class PyDict {
  readonly items = new Map<PyKey, PyValue>();
  attributes: Map<string, PyValue> | null = null;
  constructor(readonly ordered: boolean) {}
}

/** One of the allow-listed globals (the only ones that can exist). */
export class PyGlobal {
  constructor(
    readonly module: string,
    readonly name: string,
  ) {}
  get qualifiedName(): string {
    return `${this.module}.${this.name}`;
  }
}

/** persistent_load(('storage', torch.XStorage, key, location, numel)): a storage record in the zip. */
export class StorageRef {
  constructor(
    readonly dtype: FileDType,
    /** Record name under `<topdir>/data/`. */
    readonly key: string,
    /** Device it was saved from ("cpu", "cuda:0"); informational. */
    readonly location: string,
    /** Number of elements of `dtype` in the storage. */
    readonly numel: number,
  ) {}
}

/** torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride, ...): a strided view. */
export class TensorRef {
  constructor(
    readonly storage: StorageRef,
    /** In elements. */
    readonly storageOffset: number,
    readonly shape: number[],
    /** In elements, one per dimension. */
    readonly stride: number[],
  ) {}
}

export type PyValue = PyKey | Uint8Array | PyValue[] | PyTuple | PyDict | PyGlobal | StorageRef | TensorRef;

/** Refusal to load a pickle that references code: the message says exactly what it asked for. */
export class UnsafePickleError extends CheckpointError {
  constructor(
    file: string,
    what: string,
    /** Byte offset in data.pkl of the opcode that was refused. */
    readonly opcodeOffset: number,
  ) {
    super(file, `refusing to load: the pickle references ${what}; only tensor data is accepted`);
    this.message = `refusing to load ${file}: the pickle references ${what}; only tensor data is accepted`;
    this.name = "UnsafePickleError";
  }
}

/** torch storage classes -> element type. These are the ones `torch.save` names in a persistent id. */
const STORAGE_DTYPES: Record<string, FileDType> = {
  HalfStorage: "F16",
  FloatStorage: "F32",
  BFloat16Storage: "BF16",
  DoubleStorage: "F64",
  LongStorage: "I64",
  IntStorage: "I32",
  ShortStorage: "I16",
  CharStorage: "I8",
  ByteStorage: "U8",
  BoolStorage: "BOOL",
};

/** The allow-list: "module name" pairs that GLOBAL may name. Nothing else is ever resolved. */
const ALLOWED_GLOBALS = new Set<string>([
  "collections OrderedDict",
  "torch._utils _rebuild_tensor_v2",
  "torch._utils _rebuild_parameter",
  ...Object.keys(STORAGE_DTYPES).map((s) => `torch ${s}`),
]);

// Opcodes (CPython Lib/pickle.py names). Protocol 0/1 text forms are not needed by torch.save.
const OP = {
  MARK: 0x28,
  STOP: 0x2e,
  POP: 0x30,
  POP_MARK: 0x31,
  BINFLOAT: 0x47,
  BININT: 0x4a,
  BININT1: 0x4b,
  BININT2: 0x4d,
  NONE: 0x4e,
  BINPERSID: 0x51,
  REDUCE: 0x52,
  BINSTRING: 0x54,
  SHORT_BINSTRING: 0x55,
  BINUNICODE: 0x58,
  BINBYTES: 0x42,
  SHORT_BINBYTES: 0x43,
  EMPTY_LIST: 0x5d,
  APPEND: 0x61,
  BUILD: 0x62,
  GLOBAL: 0x63,
  DICT: 0x64,
  APPENDS: 0x65,
  BINGET: 0x68,
  LONG_BINGET: 0x6a,
  LIST: 0x6c,
  BINPUT: 0x71,
  LONG_BINPUT: 0x72,
  SETITEM: 0x73,
  TUPLE: 0x74,
  SETITEMS: 0x75,
  EMPTY_DICT: 0x7d,
  EMPTY_TUPLE: 0x29,
  PROTO: 0x80,
  LONG1: 0x8a,
  NEWTRUE: 0x88,
  NEWFALSE: 0x89,
  TUPLE1: 0x85,
  TUPLE2: 0x86,
  TUPLE3: 0x87,
  SHORT_BINUNICODE: 0x8c,
  BINUNICODE8: 0x8d,
  STACK_GLOBAL: 0x93,
  MEMOIZE: 0x94,
  FRAME: 0x95,
} as const;

/** Names of opcodes we deliberately do not implement, for a helpful error. */
const UNSUPPORTED_NAMES: Record<number, string> = {
  0x69: "INST",
  0x6f: "OBJ",
  0x81: "NEWOBJ",
  0x92: "NEWOBJ_EX",
  0x82: "EXT1",
  0x83: "EXT2",
  0x84: "EXT4",
  0x50: "PERSID",
  0x49: "INT",
  0x4c: "LONG",
  0x46: "FLOAT",
  0x53: "STRING",
  0x56: "UNICODE",
  0x67: "GET",
  0x70: "PUT",
  0x8b: "LONG4",
  0x32: "DUP",
  0x8f: "EMPTY_SET",
  0x90: "ADDITEMS",
  0x91: "FROZENSET",
  0x8e: "BINBYTES8",
  0x96: "BYTEARRAY8",
  0x97: "NEXT_BUFFER",
  0x98: "READONLY_BUFFER",
};

/**
 * Run the restricted pickle machine over `data` (the bytes of data.pkl) and return the root
 * object. `file` names the checkpoint in error messages.
 */
export function unpickle(data: Uint8Array, file: string): PyValue {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const stack: PyValue[] = [];
  const marks: number[] = []; // stack heights at each MARK
  const memo = new Map<number, PyValue>();
  const latin1 = new TextDecoder("latin1");
  const utf8 = new TextDecoder("utf-8", { fatal: true });
  let pos = 0;
  let opAt = 0;

  const fail = (msg: string): never => {
    throw new CheckpointError(file, `malformed pickle at byte ${opAt} of data.pkl: ${msg}`);
  };
  const need = (n: number): void => {
    if (n < 0 || pos + n > data.length)
      fail(`needs ${n} more bytes but the pickle ends (${data.length} bytes); the file is truncated or corrupt`);
  };
  const pop = (): PyValue => {
    const floor = marks.length > 0 ? marks[marks.length - 1]! : 0;
    if (stack.length <= floor) fail("stack underflow");
    return stack.pop()!;
  };
  const top = (): PyValue => {
    const floor = marks.length > 0 ? marks[marks.length - 1]! : 0;
    if (stack.length <= floor) fail("stack underflow");
    return stack[stack.length - 1]!;
  };
  const popMark = (): PyValue[] => {
    if (marks.length === 0) fail("no MARK to pop to (stack underflow)");
    const at = marks.pop()!;
    return stack.splice(at);
  };
  const readString = (n: number, decoder: { decode(b: Uint8Array): string }): string => {
    need(n);
    let s = "";
    try {
      s = decoder.decode(data.subarray(pos, pos + n));
    } catch {
      fail("string is not valid UTF-8");
    }
    pos += n;
    return s;
  };
  const readLine = (): string => {
    const end = data.indexOf(0x0a, pos);
    if (end < 0) fail("GLOBAL name is not newline-terminated");
    const s = latin1.decode(data.subarray(pos, end));
    pos = end + 1;
    return s;
  };
  const resolveGlobal = (module: string, name: string): PyGlobal => {
    if (!ALLOWED_GLOBALS.has(`${module} ${name}`)) throw new UnsafePickleError(file, `${module}.${name}`, opAt);
    return new PyGlobal(module, name);
  };
  const memoPut = (idx: number): void => {
    memo.set(idx, top());
  };
  const memoGet = (idx: number): void => {
    if (!memo.has(idx)) fail(`memo entry ${idx} is read before it is written`);
    stack.push(memo.get(idx)!);
  };
  const setItems = (dict: PyValue, kv: PyValue[]): void => {
    if (!(dict instanceof PyDict)) fail("SETITEM(S) on something that is not a dict");
    if (kv.length % 2 !== 0) fail("SETITEMS with an odd number of items");
    const d = dict as PyDict;
    for (let i = 0; i < kv.length; i += 2) {
      const k = kv[i]!;
      if (!(k === null || typeof k === "string" || typeof k === "number" || typeof k === "boolean"))
        fail("unsupported dict key type (only str/int/float/bool/None keys are accepted)");
      d.items.set(k as PyKey, kv[i + 1]!);
    }
  };
  const append = (list: PyValue, items: PyValue[]): void => {
    if (!Array.isArray(list)) fail("APPEND(S) on something that is not a list");
    const l = list as PyValue[];
    for (const item of items) l.push(item);
  };

  while (true) {
    opAt = pos;
    need(1);
    const op = data[pos++]!;
    switch (op) {
      case OP.PROTO: {
        need(1);
        const v = data[pos++]!;
        if (v > 5) fail(`pickle protocol ${v} is newer than 5`);
        break;
      }
      case OP.FRAME: // protocol 4 framing: a length hint we do not need
        need(8);
        if (u64(view, pos) > data.length - pos - 8) fail("FRAME longer than the rest of the pickle");
        pos += 8;
        break;
      case OP.STOP:
        if (stack.length !== 1 || marks.length !== 0) fail(`STOP with ${stack.length} values on the stack (expected exactly 1)`);
        return stack[0]!;

      // --- plain values
      case OP.NONE:
        stack.push(null);
        break;
      case OP.NEWTRUE:
        stack.push(true);
        break;
      case OP.NEWFALSE:
        stack.push(false);
        break;
      case OP.BININT1:
        need(1);
        stack.push(data[pos]!);
        pos += 1;
        break;
      case OP.BININT2:
        need(2);
        stack.push(view.getUint16(pos, true));
        pos += 2;
        break;
      case OP.BININT:
        need(4);
        stack.push(view.getInt32(pos, true));
        pos += 4;
        break;
      case OP.LONG1: {
        need(1);
        const n = data[pos++]!;
        need(n);
        stack.push(longLE(data.subarray(pos, pos + n), fail));
        pos += n;
        break;
      }
      case OP.BINFLOAT:
        need(8);
        stack.push(view.getFloat64(pos, false));
        pos += 8;
        break;
      case OP.SHORT_BINUNICODE:
        need(1);
        {
          const n = data[pos++]!;
          stack.push(readString(n, utf8));
        }
        break;
      case OP.BINUNICODE:
        need(4);
        {
          const n = view.getUint32(pos, true);
          pos += 4;
          stack.push(readString(n, utf8));
        }
        break;
      case OP.BINUNICODE8:
        need(8);
        {
          const n = u64(view, pos);
          pos += 8;
          stack.push(readString(n, utf8));
        }
        break;
      case OP.SHORT_BINSTRING:
        need(1);
        {
          const n = data[pos++]!;
          stack.push(readString(n, latin1));
        }
        break;
      case OP.BINSTRING:
        need(4);
        {
          const n = view.getInt32(pos, true);
          pos += 4;
          stack.push(readString(n, latin1));
        }
        break;
      case OP.SHORT_BINBYTES:
        need(1);
        {
          const n = data[pos++]!;
          need(n);
          stack.push(data.slice(pos, pos + n));
          pos += n;
        }
        break;
      case OP.BINBYTES:
        need(4);
        {
          const n = view.getUint32(pos, true);
          pos += 4;
          need(n);
          stack.push(data.slice(pos, pos + n));
          pos += n;
        }
        break;

      // --- containers
      case OP.MARK:
        marks.push(stack.length);
        break;
      case OP.POP:
        pop();
        break;
      case OP.POP_MARK:
        popMark();
        break;
      case OP.EMPTY_DICT:
        stack.push(new PyDict(false));
        break;
      case OP.DICT: {
        const kv = popMark();
        const d = new PyDict(false);
        setItems(d, kv);
        stack.push(d);
        break;
      }
      case OP.EMPTY_LIST:
        stack.push([]);
        break;
      case OP.LIST:
        stack.push(popMark());
        break;
      case OP.EMPTY_TUPLE:
        stack.push(new PyTuple([]));
        break;
      case OP.TUPLE:
        stack.push(new PyTuple(popMark()));
        break;
      case OP.TUPLE1: {
        const a = pop();
        stack.push(new PyTuple([a]));
        break;
      }
      case OP.TUPLE2: {
        const b = pop();
        const a = pop();
        stack.push(new PyTuple([a, b]));
        break;
      }
      case OP.TUPLE3: {
        const c = pop();
        const b = pop();
        const a = pop();
        stack.push(new PyTuple([a, b, c]));
        break;
      }
      case OP.SETITEM: {
        const v = pop();
        const k = pop();
        setItems(top(), [k, v]);
        break;
      }
      case OP.SETITEMS: {
        const kv = popMark();
        setItems(top(), kv);
        break;
      }
      case OP.APPEND: {
        const v = pop();
        append(top(), [v]);
        break;
      }
      case OP.APPENDS: {
        const items = popMark();
        append(top(), items);
        break;
      }

      // --- memo
      case OP.BINPUT:
        need(1);
        memoPut(data[pos++]!);
        break;
      case OP.LONG_BINPUT:
        need(4);
        memoPut(view.getUint32(pos, true));
        pos += 4;
        break;
      case OP.MEMOIZE:
        memoPut(memo.size);
        break;
      case OP.BINGET:
        need(1);
        memoGet(data[pos++]!);
        break;
      case OP.LONG_BINGET:
        need(4);
        memoGet(view.getUint32(pos, true));
        pos += 4;
        break;

      // --- the only operations that touch names: allow-listed, pure data construction
      case OP.GLOBAL: {
        const module = readLine();
        const name = readLine();
        stack.push(resolveGlobal(module, name));
        break;
      }
      case OP.STACK_GLOBAL: {
        const name = pop();
        const module = pop();
        if (typeof module !== "string" || typeof name !== "string") fail("STACK_GLOBAL needs two strings");
        stack.push(resolveGlobal(module as string, name as string));
        break;
      }
      case OP.REDUCE: {
        const args = pop();
        const callable = pop();
        stack.push(reduce(callable, args, file, opAt, fail));
        break;
      }
      case OP.BUILD: {
        const state = pop();
        const obj = top();
        build(obj, state, file, opAt, fail);
        break;
      }
      case OP.BINPERSID:
        stack.push(persistentLoad(pop(), fail));
        break;

      default: {
        const name = UNSUPPORTED_NAMES[op];
        const ch = op >= 0x20 && op < 0x7f ? ` '${String.fromCharCode(op)}'` : "";
        fail(
          `${name ? `unsupported opcode ${name}` : "unknown opcode"} 0x${op.toString(16).padStart(2, "0")}${ch}; this is not a state dict written by torch.save`,
        );
      }
    }
  }
}

function u64(view: DataView, at: number): number {
  const v = view.getBigUint64(at, true);
  return v > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(v);
}

/** LONG1 payload: little-endian two's complement. Must fit a safe integer (sizes, offsets). */
function longLE(b: Uint8Array, fail: (m: string) => never): number {
  if (b.length === 0) return 0;
  let v = 0n;
  for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]!);
  if (b[b.length - 1]! & 0x80) v -= 1n << BigInt(8 * b.length);
  if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < -BigInt(Number.MAX_SAFE_INTEGER)) fail(`integer ${v} is too large`);
  return Number(v);
}

function isInt(v: PyValue): v is number {
  return typeof v === "number" && Number.isSafeInteger(v);
}

function intTuple(v: PyValue, what: string, fail: (m: string) => never): number[] {
  if (!(v instanceof PyTuple) || !v.items.every((x) => isInt(x) && x >= 0)) fail(`${what} must be a tuple of non-negative integers`);
  return (v as PyTuple).items as number[];
}

/** ('storage', torch.XStorage, key, location, numel) -> StorageRef. Nothing is read here. */
function persistentLoad(pid: PyValue, fail: (m: string) => never): StorageRef {
  if (!(pid instanceof PyTuple) || pid.items[0] !== "storage" || pid.items.length !== 5) {
    return fail("persistent id is not a ('storage', type, key, location, numel) tuple");
  }
  const [, type, key, location, numel] = pid.items;
  const dtype = type instanceof PyGlobal && type.module === "torch" ? ownEntry(STORAGE_DTYPES, type.name) : undefined;
  if (dtype === undefined) return fail("persistent id does not name a torch storage type");
  if (typeof key !== "string" || typeof location !== "string" || !isInt(numel!) || (numel as number) < 0) {
    return fail("persistent id has a bad key, location or numel");
  }
  return new StorageRef(dtype, key, location, numel as number);
}

/** REDUCE: "call" an allow-listed global. Each case builds data; nothing else can be called. */
function reduce(callable: PyValue, args: PyValue, file: string, at: number, fail: (m: string) => never): PyValue {
  if (!(callable instanceof PyGlobal)) {
    throw new UnsafePickleError(file, "a call (REDUCE) on something that is not an allowed function", at);
  }
  if (!(args instanceof PyTuple)) return fail(`REDUCE arguments for ${callable.qualifiedName} are not a tuple`);
  const a = args.items;
  switch (`${callable.module} ${callable.name}`) {
    case "collections OrderedDict":
      if (a.length !== 0) return fail("OrderedDict(...) with arguments is not supported (torch.save writes OrderedDict())");
      return new PyDict(true);
    case "torch._utils _rebuild_tensor_v2": {
      // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
      if (a.length < 6 || a.length > 7) return fail(`_rebuild_tensor_v2 takes 6 or 7 arguments, got ${a.length}`);
      const [storage, offset, size, stride] = a;
      if (!(storage instanceof StorageRef)) return fail("_rebuild_tensor_v2: first argument is not a storage");
      if (!isInt(offset!) || (offset as number) < 0) return fail("_rebuild_tensor_v2: storage_offset is not a non-negative integer");
      const shape = intTuple(size!, "_rebuild_tensor_v2: size", fail);
      const strides = intTuple(stride!, "_rebuild_tensor_v2: stride", fail);
      if (shape.length !== strides.length)
        return fail(`_rebuild_tensor_v2: size has ${shape.length} dims but stride has ${strides.length}`);
      return new TensorRef(storage, offset as number, shape, strides);
    }
    case "torch._utils _rebuild_parameter": // nn.Parameter(data, requires_grad, hooks): keep the data
      if (a.length !== 3 || !(a[0] instanceof TensorRef)) return fail("_rebuild_parameter expects (tensor, requires_grad, hooks)");
      return a[0];
    default:
      throw new UnsafePickleError(file, `a call (REDUCE) of ${callable.qualifiedName}`, at);
  }
}

/** BUILD: only OrderedDict state (state_dict()'s `_metadata`): a dict of attribute -> value. */
function build(obj: PyValue, state: PyValue, file: string, at: number, fail: (m: string) => never): void {
  if (!(obj instanceof PyDict) || !obj.ordered) {
    throw new UnsafePickleError(file, "BUILD (setting object state) on something other than an OrderedDict", at);
  }
  if (!(state instanceof PyDict)) fail("BUILD state for an OrderedDict must be a dict of attributes");
  obj.attributes ??= new Map();
  for (const [k, v] of state.items) {
    if (typeof k !== "string") fail("BUILD attribute names must be strings");
    obj.attributes.set(k, v);
  }
}
