import { closeSync, constants, fstatSync, openSync, readSync } from "node:fs";

// What every checkpoint reader (safetensors, pytorch_model.bin, sharded indexes) hands to the
// model loader: a table of named tensors whose bytes are read on demand, straight into the
// destination buffer. Nothing is read until asked, so a loader can allocate weights in the
// backend's memory (wasm linear memory) and fill them with exactly one copy from disk.

/** Tensor element types as the file formats name them. */
export type FileDType = "F64" | "F32" | "F16" | "BF16" | "I64" | "I32" | "I16" | "I8" | "U8" | "BOOL";

export const FILE_DTYPE_BYTES: Record<FileDType, number> = {
  F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1,
};

/**
 * `table[name]` only when `name` is the table's own key: a name read from a file ("toString",
 * "__proto__", "constructor") must never resolve through Object.prototype.
 */
export function ownEntry<T>(table: Readonly<Record<string, T>>, name: unknown): T | undefined {
  return typeof name === "string" && Object.hasOwn(table, name) ? table[name] : undefined;
}

export interface TensorEntry {
  name: string;
  dtype: FileDType;
  shape: number[];
  /** Number of elements (product of shape). */
  numel: number;
  /** Which file holds it (for error messages). */
  file: string;
  /** Read the tensor's contiguous little-endian bytes (numel · dtype size) into `dst`. */
  read(dst: Uint8Array): void;
  /**
   * Set when the file stores the tensor as q8_0/q4_0 blocks (GGUF): `read` then gives the
   * dequantized values (dtype F32), and `blocks.read` the blocks as stored.
   */
  blocks?: { dtype: "q8_0" | "q4_0"; read(dst: Uint8Array): void };
}

export interface TensorFile {
  /** Path of the file (or index file) this table came from. */
  path: string;
  /** Format name for messages: "safetensors", "pytorch", ... */
  format: string;
  tensors: Map<string, TensorEntry>;
  /** Release open file descriptors. Entries must not be read afterwards. */
  close(): void;
}

/**
 * Open `path` for reading, refusing anything but a regular file with a CheckpointError that names
 * it: a FIFO or device would block or never end (so it is opened non-blocking, then checked), a
 * directory is not a weights file, and a missing file or a bad name (NUL byte, too long) is the
 * caller's to fix. Returns the descriptor and the file's size.
 */
export function openRegularFile(path: string, what = "file"): { fd: number; size: number } {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0));
  } catch (e) {
    throw new CheckpointError(String(path).replace(/\0/g, "\\0"), fsProblem(e, what));
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) {
      throw new CheckpointError(path, `${st.isDirectory() ? "is a directory" : "is not a regular file (a FIFO, socket or device?)"}; expected the ${what} itself`);
    }
    return { fd, size: st.size };
  } catch (e) {
    closeSync(fd);
    throw e;
  }
}

/** The whole of a small regular file (config, index, state JSON), refused above `maxBytes`. */
export function readRegularFile(path: string, what = "file", maxBytes = 64 << 20): Uint8Array {
  const { fd, size } = openRegularFile(path, what);
  try {
    if (size > maxBytes) throw new CheckpointError(path, `${size} bytes is far too large for a ${what}; the file is corrupt or not a ${what}`);
    const bytes = new Uint8Array(size);
    readExactly(fd, bytes, 0, path, `the ${what}`);
    return bytes;
  } finally {
    closeSync(fd);
  }
}

/** A file-system error as a sentence saying what to do. */
export function fsProblem(e: unknown, what: string): string {
  const code = (e as NodeJS.ErrnoException).code;
  switch (code) {
    case "ENOENT": return `${what} not found (missing or not yet downloaded: check the path, or download it again)`;
    case "EACCES": case "EPERM": return `${what} cannot be read: permission denied (check the file's permissions)`;
    case "ENAMETOOLONG": return `the name of this ${what} is too long for the file system; the name is corrupt`;
    case "ENOTDIR": return `a folder on the way to this ${what} is a file; check the path`;
    case "EISDIR": return `is a directory; expected the ${what} itself`;
    case "ELOOP": return `too many symbolic links on the way to this ${what}; check the path`;
    case "ERR_INVALID_ARG_VALUE": case "ERR_INVALID_ARG_TYPE": return `is not a valid file name (it contains a NUL byte?); the name is corrupt`;
    default: return `cannot open the ${what}: ${(e as Error).message}`;
  }
}

/** Read exactly dst.length bytes at `position` of an open file, or throw naming the file and `what`. */
export function readExactly(fd: number, dst: Uint8Array, position: number, file: string, what: string): void {
  let done = 0;
  while (done < dst.length) {
    // fs.readSync reads at most 2 GiB - 1 per call: larger reads are split
    const n = readSync(fd, dst, done, Math.min(dst.length - done, 1 << 30), position + done);
    if (n === 0) throw new CheckpointError(file, `file ends inside ${what} (truncated download? re-download the file)`);
    done += n;
  }
}

/** An error about a specific file: the message names the file and says what to do. */
export class CheckpointError extends Error {
  constructor(readonly file: string, message: string) {
    super(`${file}: ${message}`);
    this.name = "CheckpointError";
  }
}
