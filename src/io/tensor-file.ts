// What every checkpoint reader (safetensors, pytorch_model.bin, sharded indexes, GGUF) hands to
// the model loader: a table of named tensors whose bytes are read on demand (from a ByteSource,
// see platform/byte-source.ts), straight into the destination buffer. Nothing is read until
// asked, so a loader can allocate weights in the backend's memory (wasm linear memory) and fill
// them with exactly one copy from disk.

/** Tensor element types as the file formats name them. */
export type FileDType = "F64" | "F32" | "F16" | "BF16" | "I64" | "I32" | "I16" | "I8" | "U8" | "BOOL";

export const FILE_DTYPE_BYTES: Record<FileDType, number> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
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
  read(dst: Uint8Array): Promise<void>;
  /**
   * Set when the file stores the tensor as q8_0/q4_0 blocks (GGUF): `read` then gives the
   * dequantized values (dtype F32), and `blocks.read` the blocks as stored.
   */
  blocks?: { dtype: "q8_0" | "q4_0"; read(dst: Uint8Array): Promise<void> };
}

export interface TensorFile {
  /** Path or URL of the file (or index file) this table came from. */
  path: string;
  /** Format name for messages: "safetensors", "pytorch", ... */
  format: string;
  tensors: Map<string, TensorEntry>;
  /** Release open file descriptors (byte sources). Entries must not be read afterwards. */
  close(): void;
}

/** An error about a specific file: the message names the file and says what to do. */
export class CheckpointError extends Error {
  constructor(
    readonly file: string,
    message: string,
  ) {
    super(`${file}: ${message}`);
    this.name = "CheckpointError";
  }
}
