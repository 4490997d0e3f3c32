// safetensors: 8-byte little-endian header length N, N bytes of JSON describing each tensor
// ({dtype, shape, data_offsets: [begin, end]} relative to the data section), then raw bytes.
// We validate the whole header before reading any tensor, then read each tensor's bytes straight
// into the caller's buffer with one positioned read: a 3 GB checkpoint is never held twice.
// The bytes come from a ByteSource (a file, a URL, a Blob...: platform/byte-source.ts).

import { readBytes, type ByteSource } from "../platform/byte-source.js";
import { CheckpointError, FILE_DTYPE_BYTES, ownEntry, type FileDType, type TensorEntry, type TensorFile } from "./tensor-file.js";

/** Largest header we accept (the format's own readers cap it at 100 MB). */
const MAX_HEADER_BYTES = 100_000_000;

/** Read a safetensors file's header from `src` (closed again if the header is refused). */
export async function readSafetensors(src: ByteSource): Promise<TensorFile> {
  try {
    return await parseSafetensors(src);
  } catch (e) {
    src.close?.();
    throw e;
  }
}

async function parseSafetensors(src: ByteSource): Promise<TensorFile> {
  const path = src.name,
    fileBytes = src.size;
  const fail = (msg: string): never => {
    throw new CheckpointError(path, msg);
  };
  if (fileBytes < 8) fail(`only ${fileBytes} bytes: not a safetensors file (truncated?)`);

  const lenBytes = await readBytes(src, 0, 8, "the header length");
  const headerLen = Number(new DataView(lenBytes.buffer).getBigUint64(0, true));
  if (headerLen > MAX_HEADER_BYTES) fail(`header length ${headerLen} is implausible: not a safetensors file, or corrupt`);
  if (8 + headerLen > fileBytes) fail(`header length ${headerLen} runs past the end of the ${fileBytes}-byte file (truncated?)`);

  const headerBytes = await readBytes(src, 8, headerLen, "the header");
  let header: unknown;
  let headerText = "";
  try {
    headerText = new TextDecoder("utf-8", { fatal: true }).decode(headerBytes);
    header = JSON.parse(headerText);
  } catch (e) {
    fail(`header is not valid UTF-8 JSON (${(e as Error).message}): the file is corrupt`);
  }
  // JSON.parse keeps the last of two equal keys: a tensor named twice would silently be one of them.
  const duplicate = firstDuplicateKey(headerText);
  if (duplicate !== undefined) fail(`header names ${JSON.stringify(duplicate)} twice: refusing an ambiguous file`);
  if (typeof header !== "object" || header === null || Array.isArray(header)) fail("header is not a JSON object");

  const dataStart = 8 + headerLen;
  const dataBytes = fileBytes - dataStart;
  const tensors = new Map<string, TensorEntry>();
  const ranges: [number, number, string][] = [];

  for (const [name, info] of Object.entries(header as Record<string, unknown>)) {
    if (name === "__metadata__") continue;
    const where = `tensor "${name}"`;
    if (typeof info !== "object" || info === null) fail(`${where}: entry is not an object`);
    const { dtype, shape, data_offsets: offsets } = info as Record<string, unknown>;
    const elemBytes =
      ownEntry(FILE_DTYPE_BYTES, dtype) ??
      fail(`${where}: unknown dtype ${JSON.stringify(dtype)} (supported: ${Object.keys(FILE_DTYPE_BYTES).join(", ")})`);
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      fail(`${where}: shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
    }
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      fail(`${where}: data_offsets ${JSON.stringify(offsets)} is not [begin, end]`);
    }
    const [begin, end] = offsets as [number, number];
    const numel = (shape as number[]).reduce((a, b) => a * b, 1);
    if (end < begin || end - begin !== numel * elemBytes) {
      fail(
        `${where}: data_offsets [${begin}, ${end}] hold ${end - begin} bytes but shape ${JSON.stringify(shape)} of ${dtype} needs ${numel * elemBytes}`,
      );
    }
    if (end > dataBytes) {
      fail(`${where}: data_offsets end ${end} runs past the end of the data (${dataBytes} bytes): the file is truncated or corrupt`);
    }
    ranges.push([begin, end, name]);
    tensors.set(name, {
      name,
      dtype: dtype as FileDType,
      shape: shape as number[],
      numel,
      file: path,
      async read(dst: Uint8Array) {
        if (dst.length !== end - begin)
          throw new CheckpointError(path, `${where}: destination holds ${dst.length} bytes, tensor has ${end - begin}`);
        await src.read(dataStart + begin, dst, where);
      },
    });
  }

  // The tensors must tile the data section exactly, as the format's reference reader demands: sorted
  // by offset, each begins where the previous ended and the last ends at the end of the file. This
  // refuses every overlap (between any two tensors, zero-size ones included) and unaccounted bytes.
  ranges.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let expect = 0,
    prevName = "";
  for (const [begin, end, name] of ranges) {
    if (begin !== expect) {
      fail(
        begin < expect
          ? `tensor "${name}" (bytes ${begin}..${end}) overlaps "${prevName}" (which ends at ${expect}): the header is corrupt`
          : `bytes ${expect}..${begin} of the data belong to no tensor (before "${name}"): the header is corrupt`,
      );
    }
    expect = end;
    prevName = name;
  }
  if (expect !== dataBytes)
    fail(`the tensors end at byte ${expect} of a ${dataBytes}-byte data section: the file has trailing bytes or the header is corrupt`);

  let closed = false;
  return {
    path,
    format: "safetensors",
    tensors,
    close() {
      if (!closed) {
        closed = true;
        src.close?.();
      }
    },
  };
}

/**
 * The first key that appears twice in one object of a JSON text (compared after unescaping), or
 * undefined. `text` must already be valid JSON (JSON.parse accepted it).
 */
export function firstDuplicateKey(text: string): string | undefined {
  const objects: (Set<string> | null)[] = []; // one entry per open {...} (a key set) or [...] (null)
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === '"') {
      let j = i + 1;
      while (text[j] !== '"') j += text[j] === "\\" ? 2 : 1;
      const top = objects[objects.length - 1];
      if (expectKey && top) {
        const key = JSON.parse(text.slice(i, j + 1)) as string;
        if (top.has(key)) return key;
        top.add(key);
      }
      expectKey = false;
      i = j;
    } else if (ch === "{") {
      objects.push(new Set());
      expectKey = true;
    } else if (ch === "[") {
      objects.push(null);
      expectKey = false;
    } else if (ch === "}" || ch === "]") {
      objects.pop();
      expectKey = false;
    } else if (ch === ",") expectKey = objects[objects.length - 1] != null;
  }
  return undefined;
}

/** Write tensors as a safetensors file (used by training checkpoints and test/bench generators). */
export function encodeSafetensors(
  tensors: { name: string; dtype: FileDType; shape: number[]; bytes: Uint8Array }[],
  metadata: Record<string, string> = { format: "pt" },
): Uint8Array[] {
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  for (const t of tensors) {
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.bytes.length] };
    offset += t.bytes.length;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const headerBytes = new Uint8Array(Math.ceil(json.length / 8) * 8).fill(0x20); // space-padded to 8 bytes
  headerBytes.set(json);
  const len = new Uint8Array(8);
  new DataView(len.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
  return [len, headerBytes, ...tensors.map((t) => t.bytes)];
}
