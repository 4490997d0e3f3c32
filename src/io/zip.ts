// A reader for the zip container that `torch.save` writes (pytorch_model.bin).
//
// PyTorch writes every record STORED (no compression), aligns record data to 64 bytes with a
// padding extra field ("FB") in the local header, sets the data-descriptor flag (so the local
// header's CRC and sizes are zero: the central directory is the authority), and always ends the
// file with zip64 end-of-central-directory records. Layout of a zip, in file order (a reader
// starts from the EOCD at the end and works back):
//
//   [local header + data] ...      one per entry; local header = 30 bytes + name + extra
//   [central directory]            one 46-byte record + name + extra + comment per entry
//   [zip64 EOCD record]            optional: 64-bit entry count, directory size and offset
//   [zip64 EOCD locator]           optional, 20 bytes: where the zip64 EOCD record is
//   [EOCD]                         22 bytes + comment: 16/32-bit count, directory size/offset
//
// Files are read from a ByteSource (a file, URL, Blob...) at explicit positions; nothing loads the
// whole file (real checkpoints reach 3 GB). Entry bytes are CRC-32 checked as they are read.

import type { ByteSource } from "../platform/byte-source.js";
import { CheckpointError } from "./tensor-file.js";

// ---------------------------------------------------------------------------------------------
// CRC-32 (ISO-HDLC, the zip/PNG/gzip one): reflected polynomial 0xEDB88320, init and final
// xor 0xFFFFFFFF. Table-driven "slicing by 8": eight independent table lookups per 8 input bytes
// instead of eight dependent byte steps. It runs over every weight byte, so speed matters (rates
// measured by bench/pytorch-read.ts: BENCHMARKS.md, "Figures cited in the source").

const CRC_TABLE = makeCrcTables();

function makeCrcTables(): Uint32Array {
  // table k (at k·256) maps byte b to the CRC of b followed by k zero bytes; k = 0..7.
  const t = new Uint32Array(8 * 256);
  for (let b = 0; b < 256; b++) {
    let c = b;
    for (let bit = 0; bit < 8; bit++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[b] = c >>> 0;
  }
  for (let b = 0; b < 256; b++) {
    for (let k = 1; k < 8; k++) {
      const prev = t[(k - 1) * 256 + b]!;
      t[k * 256 + b] = (t[prev & 0xff]! ^ (prev >>> 8)) >>> 0;
    }
  }
  return t;
}

/** Whether this machine is little-endian (then 4 input bytes can be read as one 32-bit word). */
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/**
 * Continue a CRC-32 over `bytes`. Start with `crc32Update(0, ...)`; the running value is the
 * finished CRC of everything fed so far (init/final xor handled here), so calls chain.
 */
export function crc32Update(crc: number, bytes: Uint8Array): number {
  const t = CRC_TABLE;
  let c = ~crc;
  const n = bytes.length;
  let i = 0;
  // Byte steps until the position is 4-byte aligned, so the bulk can be read as 32-bit words.
  while (i < n && ((bytes.byteOffset + i) & 3) !== 0) c = t[(c ^ bytes[i++]!) & 0xff]! ^ (c >>> 8);
  if (LITTLE_ENDIAN && n - i >= 8) {
    const nWords = ((n - i) >>> 3) << 1; // whole 8-byte groups, as 32-bit words
    const w = new Int32Array(bytes.buffer, bytes.byteOffset + i, nWords);
    for (let j = 0; j < nWords; j += 2) {
      const lo = c ^ w[j]!; // bytes 0..3 (xored with the running CRC)
      const hi = w[j + 1]!; // bytes 4..7
      c =
        t[1792 + (lo & 0xff)]! ^
        t[1536 + ((lo >>> 8) & 0xff)]! ^
        t[1280 + ((lo >>> 16) & 0xff)]! ^
        t[1024 + (lo >>> 24)]! ^
        t[768 + (hi & 0xff)]! ^
        t[512 + ((hi >>> 8) & 0xff)]! ^
        t[256 + ((hi >>> 16) & 0xff)]! ^
        t[hi >>> 24]!;
    }
    i += nWords * 4;
  }
  for (; i < n; i++) c = t[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

export function crc32(bytes: Uint8Array): number {
  return crc32Update(0, bytes);
}

// ---------------------------------------------------------------------------------------------
// Record signatures and fixed sizes (APPNOTE.TXT sections 4.3.7, 4.3.12, 4.3.14-16).

const SIG_LOCAL = 0x04034b50; // "PK\3\4"
const SIG_CENTRAL = 0x02014b50; // "PK\1\2"
const SIG_EOCD = 0x06054b50; // "PK\5\6"
const SIG_ZIP64_EOCD = 0x06064b50; // "PK\6\6"
const SIG_ZIP64_LOCATOR = 0x07064b50; // "PK\6\7"
const LOCAL_HEADER_BYTES = 30;
const CENTRAL_HEADER_BYTES = 46;
const EOCD_BYTES = 22;
const ZIP64_LOCATOR_BYTES = 20;
const ZIP64_EOCD_BYTES = 56;
const ZIP64_EXTRA_ID = 0x0001;
const MAX_COMMENT = 0xffff;
/** A central directory larger than this is corrupt for any checkpoint (≈ 1M entries). */
const MAX_CENTRAL_DIRECTORY_BYTES = 256 << 20;
/** Chunk size for reads that are checked but not kept (CRC of a partially read entry). */
const CHUNK_BYTES = 4 << 20;

/** One file inside the zip, as described by the central directory. */
export interface ZipEntry {
  name: string;
  /** 0 = stored; anything else is compressed and refused when read. */
  method: number;
  flags: number;
  crc32: number;
  compressedSize: number;
  /** Uncompressed size in bytes. */
  size: number;
  localHeaderOffset: number;
}

function u64(view: DataView, at: number, file: string, what: string): number {
  const v = view.getBigUint64(at, true);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new CheckpointError(file, `${what} ${v} is too large; the zip is corrupt`);
  return Number(v);
}

export class ZipReader {
  readonly path: string;
  /** File size in bytes. */
  readonly fileSize: number;
  entries = new Map<string, ZipEntry>();
  private src: ByteSource | null;
  /** Where the central directory starts: every entry's data must end before it. */
  private dataEnd = 0;
  private readonly dataOffsets = new Map<ZipEntry, number>();
  private readonly crcChecked = new Set<ZipEntry>();

  private constructor(src: ByteSource) {
    this.path = src.name;
    this.src = src;
    this.fileSize = src.size;
  }

  /** Open a zip and read its central directory (only the directory; no entry data). */
  static async open(src: ByteSource): Promise<ZipReader> {
    const z = new ZipReader(src);
    try {
      ({ entries: z.entries, dataEnd: z.dataEnd } = await z.readCentralDirectory());
      return z;
    } catch (e) {
      z.close();
      throw e;
    }
  }

  close(): void {
    this.src?.close?.();
    this.src = null;
  }

  /** Read `dst.length` bytes at absolute file position `pos`, or fail naming `what`. */
  private async readAt(dst: Uint8Array, pos: number, what: string): Promise<void> {
    if (this.src === null) throw new CheckpointError(this.path, `read of ${what} after close()`);
    if (pos < 0 || pos + dst.length > this.fileSize) {
      throw new CheckpointError(
        this.path,
        `${what} lies outside the file (bytes ${pos}..${pos + dst.length} of ${this.fileSize}); the file is truncated or corrupt`,
      );
    }
    await this.src.read(pos, dst, what);
  }

  private async bytesAt(pos: number, length: number, what: string): Promise<DataView> {
    const b = new Uint8Array(length);
    await this.readAt(b, pos, what);
    return new DataView(b.buffer);
  }

  private async readCentralDirectory(): Promise<{ entries: Map<string, ZipEntry>; dataEnd: number }> {
    const file = this.path;
    if (this.fileSize < EOCD_BYTES) throw new CheckpointError(file, `only ${this.fileSize} bytes: not a zip file (truncated?)`);

    // 1. The EOCD: scan backwards through the last 22 + 65535 bytes for its signature.
    const tailLen = Math.min(this.fileSize, EOCD_BYTES + MAX_COMMENT);
    const tailPos = this.fileSize - tailLen;
    const tail = await this.bytesAt(tailPos, tailLen, "the end of the file");
    let eocd = -1;
    for (let i = tailLen - EOCD_BYTES; i >= 0; i--) {
      if (tail.getUint32(i, true) === SIG_EOCD && i + EOCD_BYTES + tail.getUint16(i + 20, true) <= tailLen) {
        eocd = i;
        break;
      }
    }
    if (eocd < 0) {
      const head = this.fileSize >= 2 ? await this.bytesAt(0, 2, "the file start") : null;
      if (head && head.getUint8(0) === 0x80) {
        throw new CheckpointError(
          file,
          "this is a legacy (torch < 1.6, non-zip) PyTorch file, which is not supported; re-save it with a recent torch.save or convert it to safetensors",
        );
      }
      throw new CheckpointError(file, "no zip end-of-central-directory record: the file is truncated or is not a PyTorch zip checkpoint");
    }
    const eocdPos = tailPos + eocd;
    const diskNumber = tail.getUint16(eocd + 4, true);
    const cdDisk = tail.getUint16(eocd + 6, true);
    let count = tail.getUint16(eocd + 10, true);
    let cdSize = tail.getUint32(eocd + 12, true);
    let cdOffset = tail.getUint32(eocd + 16, true);
    let recordsStart = eocdPos; // the central directory must end before the (zip64) EOCD

    // 2. zip64: a locator just before the EOCD points at the zip64 EOCD record with 64-bit fields.
    if (eocdPos >= ZIP64_LOCATOR_BYTES) {
      const locPos = eocdPos - ZIP64_LOCATOR_BYTES;
      const loc = await this.bytesAt(locPos, ZIP64_LOCATOR_BYTES, "the zip64 locator");
      if (loc.getUint32(0, true) === SIG_ZIP64_LOCATOR) {
        const z64Pos = u64(loc, 8, file, "zip64 EOCD offset");
        if (z64Pos + ZIP64_EOCD_BYTES > locPos)
          throw new CheckpointError(file, "zip64 end-of-central-directory locator points outside the file; the file is corrupt");
        const z = await this.bytesAt(z64Pos, ZIP64_EOCD_BYTES, "the zip64 end-of-central-directory record");
        if (z.getUint32(0, true) !== SIG_ZIP64_EOCD)
          throw new CheckpointError(file, "bad zip64 end-of-central-directory signature; the file is corrupt");
        if (z.getUint32(16, true) !== 0 || z.getUint32(20, true) !== 0)
          throw new CheckpointError(file, "multi-disk zip archives are not supported");
        count = u64(z, 32, file, "zip64 entry count");
        cdSize = u64(z, 40, file, "zip64 central directory size");
        cdOffset = u64(z, 48, file, "zip64 central directory offset");
        recordsStart = z64Pos;
      } else if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
        throw new CheckpointError(file, "zip64 values are flagged but the zip64 locator is missing; the file is corrupt");
      }
    }
    if (diskNumber !== 0 || cdDisk !== 0) throw new CheckpointError(file, "multi-disk zip archives are not supported");
    if (cdOffset + cdSize > recordsStart)
      throw new CheckpointError(
        file,
        `central directory (offset ${cdOffset}, ${cdSize} bytes) runs past the end records; the file is truncated or corrupt`,
      );
    if (cdSize > MAX_CENTRAL_DIRECTORY_BYTES)
      throw new CheckpointError(file, `central directory of ${cdSize} bytes is implausibly large; the file is corrupt`);
    if (count * CENTRAL_HEADER_BYTES > cdSize)
      throw new CheckpointError(file, `${count} entries cannot fit in a ${cdSize}-byte central directory; the file is corrupt`);

    // 3. Central directory records.
    const cdBytes = new Uint8Array(cdSize);
    await this.readAt(cdBytes, cdOffset, "the central directory");
    const cd = new DataView(cdBytes.buffer);
    const utf8 = new TextDecoder("utf-8");
    const entries = new Map<string, ZipEntry>();
    let p = 0;
    for (let k = 0; k < count; k++) {
      if (p + CENTRAL_HEADER_BYTES > cdSize || cd.getUint32(p, true) !== SIG_CENTRAL) {
        throw new CheckpointError(file, `central directory record ${k} has a bad signature or is cut short; the file is corrupt`);
      }
      const flags = cd.getUint16(p + 8, true);
      const method = cd.getUint16(p + 10, true);
      const crc = cd.getUint32(p + 16, true);
      let compressedSize = cd.getUint32(p + 20, true);
      let size = cd.getUint32(p + 24, true);
      const nameLen = cd.getUint16(p + 28, true);
      const extraLen = cd.getUint16(p + 30, true);
      const commentLen = cd.getUint16(p + 32, true);
      const diskStart = cd.getUint16(p + 34, true);
      let localHeaderOffset = cd.getUint32(p + 42, true);
      const nameAt = p + CENTRAL_HEADER_BYTES;
      const extraAt = nameAt + nameLen;
      const next = extraAt + extraLen + commentLen;
      if (next > cdSize) throw new CheckpointError(file, `central directory record ${k} runs past the directory; the file is corrupt`);
      const name = utf8.decode(cdBytes.subarray(nameAt, extraAt));

      // zip64 extended information (extra field 0x0001): 64-bit values for exactly those of
      // size, compressed size, local header offset (in that order) whose 32-bit field is 0xFFFFFFFF.
      const needs64 = size === 0xffffffff || compressedSize === 0xffffffff || localHeaderOffset === 0xffffffff;
      let found64 = false;
      for (let e = extraAt; e + 4 <= extraAt + extraLen; ) {
        const id = cd.getUint16(e, true);
        const len = cd.getUint16(e + 2, true);
        const end = e + 4 + len;
        if (end > extraAt + extraLen)
          throw new CheckpointError(file, `zip entry "${name}": extra field runs past its record; the file is corrupt`);
        if (id === ZIP64_EXTRA_ID) {
          found64 = true;
          let q = e + 4;
          const take = (what: string): number => {
            if (q + 8 > end)
              throw new CheckpointError(file, `zip entry "${name}": zip64 extra field is missing the ${what}; the file is corrupt`);
            const v = u64(cd, q, file, `zip entry "${name}": ${what}`);
            q += 8;
            return v;
          };
          if (size === 0xffffffff) size = take("size");
          if (compressedSize === 0xffffffff) compressedSize = take("compressed size");
          if (localHeaderOffset === 0xffffffff) localHeaderOffset = take("local header offset");
        }
        e = end;
      }
      if (needs64 && !found64)
        throw new CheckpointError(
          file,
          `zip entry "${name}": sizes are flagged as zip64 but the zip64 extra field is missing; the file is corrupt`,
        );
      if (diskStart !== 0 && diskStart !== 0xffff) throw new CheckpointError(file, "multi-disk zip archives are not supported");
      if (entries.has(name)) throw new CheckpointError(file, `zip entry "${name}" appears twice; refusing an ambiguous archive`);
      // Declared sizes are checked here, before anything is allocated for them: a stored entry holds
      // exactly its bytes, and no entry can expand beyond what a deflate stream could (1032:1).
      if (method === 0 && size !== compressedSize) {
        throw new CheckpointError(
          file,
          `zip entry "${name}" is stored but declares ${size} bytes in ${compressedSize}; the file is corrupt`,
        );
      }
      if (size > compressedSize * 1032 + 64) {
        throw new CheckpointError(
          file,
          `zip entry "${name}" declares ${size} bytes from ${compressedSize} compressed ones, more than any zip method yields; the file is corrupt`,
        );
      }
      if (localHeaderOffset + LOCAL_HEADER_BYTES + compressedSize > cdOffset) {
        throw new CheckpointError(
          file,
          `zip entry "${name}": data (offset ${localHeaderOffset}, ${compressedSize} bytes) runs into the central directory; the file is truncated or corrupt`,
        );
      }
      entries.set(name, { name, method, flags, crc32: crc, compressedSize, size, localHeaderOffset });
      p = next;
    }
    return { entries, dataEnd: cdOffset };
  }

  /** Absolute file offset of the entry's data, from its local header (whose name/extra lengths may differ from the central record). */
  async dataOffset(entry: ZipEntry): Promise<number> {
    const cached = this.dataOffsets.get(entry);
    if (cached !== undefined) return cached;
    const what = `the local header of zip entry "${entry.name}"`;
    const h = await this.bytesAt(entry.localHeaderOffset, LOCAL_HEADER_BYTES, what);
    if (h.getUint32(0, true) !== SIG_LOCAL)
      throw new CheckpointError(this.path, `zip entry "${entry.name}": bad local header signature; the file is corrupt`);
    const nameLen = h.getUint16(26, true);
    const extraLen = h.getUint16(28, true);
    const nameBytes = new Uint8Array(nameLen);
    await this.readAt(nameBytes, entry.localHeaderOffset + LOCAL_HEADER_BYTES, what);
    if (new TextDecoder("utf-8").decode(nameBytes) !== entry.name) {
      throw new CheckpointError(this.path, `zip entry "${entry.name}": local header names a different file; the file is corrupt`);
    }
    const offset = entry.localHeaderOffset + LOCAL_HEADER_BYTES + nameLen + extraLen;
    if (offset + entry.compressedSize > this.dataEnd) {
      throw new CheckpointError(
        this.path,
        `zip entry "${entry.name}": data runs into the central directory; the file is truncated or corrupt`,
      );
    }
    this.dataOffsets.set(entry, offset);
    return offset;
  }

  private checkStored(entry: ZipEntry): void {
    if (entry.flags & 1)
      throw new CheckpointError(this.path, `zip entry "${entry.name}" is encrypted; encrypted archives are not supported`);
    if (entry.method !== 0) {
      throw new CheckpointError(
        this.path,
        `zip entry "${entry.name}" is compressed (method ${entry.method}); PyTorch checkpoints store entries uncompressed — re-save it with torch.save or convert it to safetensors`,
      );
    }
    if (entry.compressedSize !== entry.size) {
      throw new CheckpointError(
        this.path,
        `zip entry "${entry.name}" is stored but its compressed size ${entry.compressedSize} differs from its size ${entry.size}; the file is corrupt`,
      );
    }
  }

  private crcMismatch(entry: ZipEntry, got: number): CheckpointError {
    const hex = (v: number) => v.toString(16).padStart(8, "0");
    return new CheckpointError(
      this.path,
      `zip entry "${entry.name}": CRC-32 mismatch (stored ${hex(entry.crc32)}, computed ${hex(got)}); the file is corrupt`,
    );
  }

  /**
   * Read `dst.length` bytes of a stored entry starting `start` bytes into it. When the read
   * covers the whole entry its CRC is computed on `dst` chunk by chunk as the bytes arrive;
   * a partial read first checks the whole entry once (streaming, not kept).
   */
  async readRange(entry: ZipEntry, start: number, dst: Uint8Array): Promise<void> {
    this.checkStored(entry);
    if (start < 0 || start + dst.length > entry.size) {
      throw new CheckpointError(
        this.path,
        `zip entry "${entry.name}": read of bytes ${start}..${start + dst.length} is outside its ${entry.size} bytes`,
      );
    }
    const base = await this.dataOffset(entry);
    const what = `zip entry "${entry.name}"`;
    if (start === 0 && dst.length === entry.size) {
      let crc = 0;
      for (let done = 0; done < dst.length; done += CHUNK_BYTES) {
        const chunk = dst.subarray(done, Math.min(dst.length, done + CHUNK_BYTES));
        await this.readAt(chunk, base + done, what);
        crc = crc32Update(crc, chunk);
      }
      if (crc !== entry.crc32) throw this.crcMismatch(entry, crc);
      this.crcChecked.add(entry);
      return;
    }
    await this.verifyCrc(entry);
    await this.readAt(dst, base + start, what);
  }

  /** Check an entry's CRC-32 by streaming it through a bounded buffer (done once per entry). */
  async verifyCrc(entry: ZipEntry): Promise<void> {
    if (this.crcChecked.has(entry)) return;
    this.checkStored(entry);
    const base = await this.dataOffset(entry);
    const buf = new Uint8Array(Math.min(CHUNK_BYTES, entry.size));
    let crc = 0;
    for (let done = 0; done < entry.size; done += buf.length) {
      const chunk = buf.subarray(0, Math.min(buf.length, entry.size - done));
      await this.readAt(chunk, base + done, `zip entry "${entry.name}"`);
      crc = crc32Update(crc, chunk);
    }
    if (crc !== entry.crc32) throw this.crcMismatch(entry, crc);
    this.crcChecked.add(entry);
  }

  /** Read a whole (small) entry into a new buffer, CRC checked. */
  async readEntry(entry: ZipEntry): Promise<Uint8Array> {
    this.checkStored(entry); // before allocating: a compressed entry's size is only a claim
    const dst = new Uint8Array(entry.size);
    await this.readRange(entry, 0, dst);
    return dst;
  }
}
