// pytorch_model.bin: the zip checkpoint `torch.save(state_dict)` writes, the format MobileLLM ships in.
//
//   <topdir>/data.pkl     the pickled state dict: name -> _rebuild_tensor_v2(storage, offset, size, stride, ...)
//   <topdir>/data/<key>   one raw little-endian storage per key (the tensor bytes)
//   <topdir>/version, <topdir>/byteorder, ...   small records
//
// <topdir> is whatever the writer chose ("pytorch_model", "archive", ...): we find data.pkl.
// The pickle is run by the restricted unpickler (pickle.ts), which only builds data; each tensor
// becomes a TensorEntry that reads its storage bytes on demand, straight into the caller's buffer.

import type { ByteSource } from "../platform/byte-source.js";
import { unpickle, PyDict, TensorRef } from "./pickle.js";
import { ZipReader, type ZipEntry } from "./zip.js";
import { CheckpointError, FILE_DTYPE_BYTES, type TensorEntry, type TensorFile } from "./tensor-file.js";

/** data.pkl of a real state dict is tens of kilobytes; anything this large is not one. */
const MAX_PICKLE_BYTES = 1 << 30;

/** Read a PyTorch zip checkpoint's tensor list from `src` (only the directory and data.pkl). */
export async function readPytorchCheckpoint(src: ByteSource): Promise<TensorFile> {
  const path = src.name;
  const zip = await ZipReader.open(src);
  try {
    const tensors = await readStateDict(zip, path);
    return { path, format: "pytorch", tensors, close: () => zip.close() };
  } catch (e) {
    zip.close();
    throw e;
  }
}

async function readStateDict(zip: ZipReader, path: string): Promise<Map<string, TensorEntry>> {
  // 1. Find `<topdir>/data.pkl`.
  const pickles = [...zip.entries.keys()].filter((n) => /^[^/]+\/data\.pkl$/.test(n));
  if (pickles.length !== 1) {
    throw new CheckpointError(
      path,
      pickles.length === 0
        ? "no <dir>/data.pkl record: this zip is not a PyTorch checkpoint"
        : `several data.pkl records (${pickles.join(", ")}); expected one state dict`,
    );
  }
  const topdir = pickles[0]!.slice(0, -"data.pkl".length); // "pytorch_model/"

  // 2. Newer torch records the byte order of the storages; we read little-endian only.
  const byteorder = zip.entries.get(`${topdir}byteorder`);
  if (byteorder) {
    const order = new TextDecoder().decode(await zip.readEntry(byteorder)).trim();
    if (order !== "little") throw new CheckpointError(path, `storages are ${order}-endian; only little-endian checkpoints are supported`);
  }

  // 3. Run the pickle.
  const pklEntry = zip.entries.get(pickles[0]!)!;
  if (pklEntry.size > MAX_PICKLE_BYTES) throw new CheckpointError(path, `data.pkl is ${pklEntry.size} bytes; that is not a state dict`);
  const root = unpickle(await zip.readEntry(pklEntry), path);
  if (!(root instanceof PyDict)) throw new CheckpointError(path, "the pickle's root is not a dict: expected a state dict (name -> tensor)");

  // 4. One TensorEntry per tensor value. (Non-tensor values, e.g. plain numbers, are not weights: skipped.)
  const tensors = new Map<string, TensorEntry>();
  for (const [name, value] of root.items) {
    if (!(value instanceof TensorRef)) continue;
    if (typeof name !== "string") throw new CheckpointError(path, `state dict key ${String(name)} is not a string`);
    const recordName = `${topdir}data/${value.storage.key}`;
    const record = zip.entries.get(recordName);
    if (!record) throw new CheckpointError(path, `tensor "${name}": its storage record "${recordName}" is missing from the zip`);
    tensors.set(name, tensorEntry(zip, path, name, value, record));
  }
  // Views may share a storage (tied weights), but not so often that a small file reads as a huge
  // one: all tensors together may hold at most twice the bytes the storages hold.
  let viewBytes = 0,
    storageBytes = 0;
  const storages = new Set<string>();
  for (const [name, value] of root.items) {
    if (!(value instanceof TensorRef)) continue;
    viewBytes += tensors.get(name as string)!.numel * FILE_DTYPE_BYTES[value.storage.dtype];
    if (!storages.has(value.storage.key)) storageBytes += zip.entries.get(`${topdir}data/${value.storage.key}`)!.size;
    storages.add(value.storage.key);
  }
  if (viewBytes > 2 * storageBytes) {
    throw new CheckpointError(
      path,
      `the tensors' views add up to ${viewBytes} bytes from ${storageBytes} bytes of storage: storages are reused far more than tied weights would; refusing to expand the file`,
    );
  }
  return tensors;
}

/** A strided view (offset, shape, stride, in elements) into one storage record, checked against its size. */
function tensorEntry(zip: ZipReader, path: string, name: string, t: TensorRef, record: ZipEntry): TensorEntry {
  const { dtype } = t.storage;
  const es = FILE_DTYPE_BYTES[dtype];
  const shape = t.shape.slice();
  const stride = t.stride;
  const fail = (msg: string) => new CheckpointError(path, `tensor "${name}" (storage "${record.name}"): ${msg}`);

  let numel = 1;
  for (const n of shape) {
    numel *= n;
    if (!Number.isSafeInteger(numel * es)) throw fail(`shape [${shape}] is too large`);
  }
  if (record.size !== t.storage.numel * es) {
    throw fail(
      `storage record has ${record.size} bytes but the pickle says ${t.storage.numel} ${dtype} elements (${t.storage.numel * es} bytes); the file is corrupt`,
    );
  }
  // Highest element index the view touches: offset + Σ (size_i - 1) · stride_i.
  let last = t.storageOffset;
  for (let k = 0; k < shape.length; k++) last += (shape[k]! - 1) * stride[k]!;
  if (numel > 0 && last >= t.storage.numel) {
    throw fail(
      `storage too small: the view (offset ${t.storageOffset}, shape [${shape}], stride [${stride}]) reaches element ${last} but the storage has ${t.storage.numel}`,
    );
  }
  // No element may be read twice: a stride-0 (expanded) or self-overlapping view would turn a small
  // storage into an arbitrarily large tensor. Dims of size > 1 taken by increasing stride: each
  // stride must step past everything the smaller dims reach (true of every view torch.save writes
  // for a parameter: contiguous, transposed or sliced).
  if (numel > 1) {
    const dims = shape
      .map((n, k) => [n, stride[k]!] as const)
      .filter(([n]) => n > 1)
      .sort((a, b) => a[1] - b[1]);
    let reach = 0; // largest offset the dims so far reach
    for (const [n, st] of dims) {
      if (st <= reach)
        throw fail(
          `the view (shape [${shape}], stride [${stride}]) reads some storage elements more than once (stride 0 or overlapping): refusing to expand it`,
        );
      reach += (n - 1) * st;
    }
  }
  // Row-major contiguous: stride_k = Π_{j>k} size_j (dims of size 1 may carry any stride).
  let contiguous = true;
  for (let k = shape.length - 1, expect = 1; k >= 0; k--) {
    if (shape[k] !== 1 && stride[k] !== expect) contiguous = false;
    expect *= shape[k]!;
  }
  const nbytes = numel * es;

  return {
    name,
    dtype,
    shape,
    numel,
    file: path,
    async read(dst: Uint8Array): Promise<void> {
      if (dst.length < nbytes) throw fail(`destination has ${dst.length} bytes, the tensor needs ${nbytes}`);
      if (numel === 0) return;
      const out = dst.subarray(0, nbytes);
      if (contiguous) {
        await zip.readRange(record, t.storageOffset * es, out); // one ranged read
        return;
      }
      // Strided view (e.g. a saved transpose): read the span it covers, then gather element by element.
      const span = new Uint8Array((last - t.storageOffset + 1) * es);
      await zip.readRange(record, t.storageOffset * es, span);
      gather(out, span, shape, stride, es);
    },
  };
}

/** dst[i] = src[Σ idx_k · stride_k] for the row-major index i ↔ (idx_0, ..., idx_{n-1}); elements of `es` bytes. */
function gather(dst: Uint8Array, src: Uint8Array, shape: number[], stride: number[], es: number): void {
  // Move whole elements at once when dst is aligned for them (src is a fresh, aligned buffer).
  if (es === 2 && dst.byteOffset % 2 === 0) {
    gatherElements(
      new Uint16Array(dst.buffer, dst.byteOffset, dst.length / 2),
      new Uint16Array(src.buffer, src.byteOffset, src.length / 2),
      shape,
      stride,
    );
    return;
  }
  if (es === 4 && dst.byteOffset % 4 === 0) {
    gatherElements(
      new Uint32Array(dst.buffer, dst.byteOffset, dst.length / 4),
      new Uint32Array(src.buffer, src.byteOffset, src.length / 4),
      shape,
      stride,
    );
    return;
  }
  const ndim = shape.length;
  const idx = new Array<number>(ndim).fill(0);
  const numel = dst.length / es;
  let s = 0; // source element index
  for (let i = 0; i < numel; i++) {
    for (let b = 0; b < es; b++) dst[i * es + b] = src[s * es + b]!;
    for (let k = ndim - 1; k >= 0; k--) {
      // odometer step
      idx[k]!++;
      s += stride[k]!;
      if (idx[k]! < shape[k]!) break;
      s -= stride[k]! * shape[k]!;
      idx[k] = 0;
    }
  }
}

/** The same gather, one typed-array element per step. */
function gatherElements(dst: Uint16Array | Uint32Array, src: Uint16Array | Uint32Array, shape: number[], stride: number[]): void {
  const ndim = shape.length;
  const idx = new Array<number>(ndim).fill(0);
  let s = 0;
  for (let i = 0; i < dst.length; i++) {
    dst[i] = src[s]!;
    for (let k = ndim - 1; k >= 0; k--) {
      idx[k]!++;
      s += stride[k]!;
      if (idx[k]! < shape[k]!) break;
      s -= stride[k]! * shape[k]!;
      idx[k] = 0;
    }
  }
}
