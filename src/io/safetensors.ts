// safetensors: 8-byte little-endian header length N, N bytes of JSON describing each tensor
// ({dtype, shape, data_offsets: [begin, end]} relative to the data section), then raw bytes.
// We validate the whole header before reading any tensor, then read each tensor's bytes straight
// into the caller's buffer with one positioned read: a 3 GB checkpoint is never held twice.

import { closeSync, fstatSync, openSync } from "node:fs";
import { CheckpointError, FILE_DTYPE_BYTES, readExactly, type FileDType, type TensorEntry, type TensorFile } from "./tensor-file.js";

/** Largest header we accept (the format's own readers cap it at 100 MB). */
const MAX_HEADER_BYTES = 100_000_000;

export function openSafetensors(path: string): TensorFile {
  const fd = openSync(path, "r");
  try {
    return parseSafetensors(fd, path);
  } catch (e) {
    closeSync(fd);
    throw e;
  }
}

function parseSafetensors(fd: number, path: string): TensorFile {
  const fail = (msg: string): never => { throw new CheckpointError(path, msg); };
  const fileBytes = fstatSync(fd).size;
  if (fileBytes < 8) fail(`only ${fileBytes} bytes: not a safetensors file (truncated?)`);

  const lenBytes = new Uint8Array(8);
  readExactly(fd, lenBytes, 0, path, "the header length");
  const headerLen = Number(new DataView(lenBytes.buffer).getBigUint64(0, true));
  if (headerLen > MAX_HEADER_BYTES) fail(`header length ${headerLen} is implausible: not a safetensors file, or corrupt`);
  if (8 + headerLen > fileBytes) fail(`header length ${headerLen} runs past the end of the ${fileBytes}-byte file (truncated?)`);

  const headerBytes = new Uint8Array(headerLen);
  readExactly(fd, headerBytes, 8, path, "the header");
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(headerBytes));
  } catch (e) {
    fail(`header is not valid UTF-8 JSON (${(e as Error).message}): the file is corrupt`);
  }
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
    if (typeof dtype !== "string" || !(dtype in FILE_DTYPE_BYTES)) {
      fail(`${where}: unknown dtype ${JSON.stringify(dtype)} (supported: ${Object.keys(FILE_DTYPE_BYTES).join(", ")})`);
    }
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      fail(`${where}: shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
    }
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      fail(`${where}: data_offsets ${JSON.stringify(offsets)} is not [begin, end]`);
    }
    const [begin, end] = offsets as [number, number];
    const numel = (shape as number[]).reduce((a, b) => a * b, 1);
    const elemBytes = FILE_DTYPE_BYTES[dtype as FileDType];
    if (end < begin || end - begin !== numel * elemBytes) {
      fail(`${where}: data_offsets [${begin}, ${end}] hold ${end - begin} bytes but shape ${JSON.stringify(shape)} of ${dtype} needs ${numel * elemBytes}`);
    }
    if (end > dataBytes) {
      fail(`${where}: data_offsets end ${end} runs past the end of the data (${dataBytes} bytes): the file is truncated or corrupt`);
    }
    ranges.push([begin, end, name]);
    tensors.set(name, {
      name, dtype: dtype as FileDType, shape: shape as number[], numel, file: path,
      read(dst: Uint8Array) {
        if (dst.length !== end - begin) throw new CheckpointError(path, `${where}: destination holds ${dst.length} bytes, tensor has ${end - begin}`);
        readExactly(fd, dst, dataStart + begin, path, where);
      },
    });
  }

  // Tensors must not share bytes: overlapping ranges mean a corrupt (or hostile) header.
  ranges.sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < ranges.length; i++) {
    const [prevBegin, prevEnd, prevName] = ranges[i - 1]!;
    const [begin, end, name] = ranges[i]!;
    if (begin < prevEnd && end > begin && prevEnd > prevBegin) {
      fail(`tensors "${prevName}" and "${name}" overlap (bytes ${begin}..${prevEnd}): the header is corrupt`);
    }
  }

  let closed = false;
  return {
    path, format: "safetensors", tensors,
    close() { if (!closed) { closed = true; closeSync(fd); } },
  };
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
