// The platform layer's one abstraction for reading checkpoints: a ByteSource is bytes of a known
// length read at positions, whatever holds them (a file on disk, a URL, a Blob/File, memory).
// Every reader (safetensors, pytorch_model.bin, GGUF, tokenizer.model, JSON) works on it, so each
// format loads in every runtime. Implementations: memorySource and blobSource here (they run
// everywhere), urlSource (url.ts, fetch with Range requests), fileSource (node.ts, Node/Deno/Bun).

import { CheckpointError } from "../io/tensor-file.js";

export interface ByteSource {
  /** What to call it in errors: a path, a URL or a file name. */
  readonly name: string;
  /** Length in bytes. */
  readonly size: number;
  /**
   * Fill `dst` with the `dst.length` bytes starting at `offset`, straight into `dst` where the
   * platform allows (a file read lands in wasm memory without a copy). Rejects with an error
   * naming the source when the bytes are not there (`offset + dst.length > size`, a truncated
   * download, a failed request). `what` names the part being read, for that error.
   */
  read(offset: number, dst: Uint8Array, what?: string): Promise<void>;
  /** Release what the source holds (a file descriptor); reads afterwards fail. */
  close?(): void;
}

/** `length` bytes at `offset` of `src` in a new buffer. */
export async function readBytes(src: ByteSource, offset: number, length: number, what?: string): Promise<Uint8Array> {
  const dst = new Uint8Array(length);
  await src.read(offset, dst, what);
  return dst;
}

/** The whole of a small source (config, index, tokenizer), refused above `maxBytes`. */
export async function readWhole(src: ByteSource, what: string, maxBytes = 64 << 20): Promise<Uint8Array> {
  if (src.size > maxBytes)
    throw new CheckpointError(src.name, `${src.size} bytes is far too large for a ${what}; the file is corrupt or not a ${what}`);
  return readBytes(src, 0, src.size, `the ${what}`);
}

/** The error every source gives for a read outside its bytes. */
export function outsideError(src: { name: string; size: number }, offset: number, length: number, what = "data"): CheckpointError {
  return new CheckpointError(
    src.name,
    `file ends inside ${what} (bytes ${offset}..${offset + length} of ${src.size}; truncated download? re-download the file)`,
  );
}

/** Bytes in memory (a downloaded file, a test fixture). */
export function memorySource(bytes: Uint8Array | ArrayBuffer, name: string): ByteSource {
  const b = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  return {
    name,
    size: b.length,
    async read(offset, dst, what) {
      if (offset < 0 || offset + dst.length > b.length) throw outsideError({ name, size: b.length }, offset, dst.length, what);
      dst.set(b.subarray(offset, offset + dst.length));
    },
  };
}

/** A Blob or File (drag-and-drop, `<input type=file>`, a Cache Storage response): slices read on demand. */
export function blobSource(blob: Blob, name: string): ByteSource {
  return {
    name,
    size: blob.size,
    async read(offset, dst, what) {
      if (offset < 0 || offset + dst.length > blob.size) throw outsideError({ name, size: blob.size }, offset, dst.length, what);
      let bytes: ArrayBuffer;
      try {
        bytes = await blob.slice(offset, offset + dst.length).arrayBuffer();
      } catch (e) {
        throw new CheckpointError(
          name,
          `cannot read ${what ?? "the file"}: ${(e as Error).message} (was the file changed or removed after it was chosen?)`,
        );
      }
      if (bytes.byteLength !== dst.length) throw outsideError({ name, size: blob.size }, offset, dst.length, what);
      dst.set(new Uint8Array(bytes));
    },
  };
}

/** What a model folder's files may be given as, one entry per file name. */
export type FileBytes = Blob | Uint8Array | ArrayBuffer;

/** One of FileBytes as a source. */
export function bytesSource(data: FileBytes, name: string): ByteSource {
  return data instanceof Uint8Array || data instanceof ArrayBuffer ? memorySource(data, name) : blobSource(data, name);
}

/** Is `x` one of FileBytes? */
export function isFileBytes(x: unknown): x is FileBytes {
  return x instanceof Uint8Array || x instanceof ArrayBuffer || (typeof Blob !== "undefined" && x instanceof Blob);
}

/**
 * `src` with every read counted: `onRead(bytesSoFar)` after each read, and `signal` checked before
 * each, so a long load reports progress and stops when asked, whatever the source.
 */
export function watchedSource(src: ByteSource, onRead?: (done: number) => void, signal?: AbortSignal): ByteSource {
  let done = 0;
  return {
    name: src.name,
    size: src.size,
    async read(offset, dst, what) {
      signal?.throwIfAborted();
      await src.read(offset, dst, what);
      done += dst.length;
      onRead?.(done);
    },
    close: () => src.close?.(),
  };
}
