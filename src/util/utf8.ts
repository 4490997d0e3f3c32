// Strict UTF-8 decoding of a text file that says WHERE it is broken: the byte offset of the first
// invalid sequence and its bytes, so a user can find it (`xxd -s OFFSET -l 16 FILE`) and fix or
// re-encode the file, instead of TextDecoder's bare "The encoded data was not valid".

const strict = new TextDecoder("utf-8", { fatal: true });

/** Offset of the first byte that does not start a valid UTF-8 sequence (RFC 3629), or -1. */
export function firstInvalidUtf8(bytes: Uint8Array): number {
  const n = bytes.length;
  for (let i = 0; i < n; ) {
    const c = bytes[i]!;
    if (c < 0x80) {
      i++;
      continue;
    }
    // Lead byte: how many continuation bytes follow, and the allowed range of the first one
    // (which rules out overlong forms, UTF-16 surrogates and code points above U+10FFFF).
    let need: number,
      lo = 0x80,
      hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) need = 1;
    else if (c === 0xe0) {
      need = 2;
      lo = 0xa0;
    } else if (c === 0xed) {
      need = 2;
      hi = 0x9f;
    } else if (c >= 0xe1 && c <= 0xef) need = 2;
    else if (c === 0xf0) {
      need = 3;
      lo = 0x90;
    } else if (c === 0xf4) {
      need = 3;
      hi = 0x8f;
    } else if (c >= 0xf1 && c <= 0xf3) need = 3;
    else return i;
    if (i + need >= n) return i; // truncated at the end of the file
    const b1 = bytes[i + 1]!;
    if (b1 < lo || b1 > hi) return i;
    for (let k = 2; k <= need; k++) {
      const b = bytes[i + k]!;
      if (b < 0x80 || b > 0xbf) return i;
    }
    i += need + 1;
  }
  return -1;
}

/** Decode `bytes` of `file` as UTF-8, or throw an Error naming the file and the first bad byte. */
export function decodeUtf8File(bytes: Uint8Array, file: string): string {
  try {
    return strict.decode(bytes);
  } catch {
    const at = firstInvalidUtf8(bytes);
    const shown = Array.from(bytes.subarray(Math.max(0, at), Math.max(0, at) + 4), (b) => b.toString(16).padStart(2, "0")).join(" ");
    throw new Error(
      `${file}: not valid UTF-8 at byte ${at} (bytes ${shown}); re-save the file as UTF-8 ` +
        `(e.g. iconv -f latin1 -t utf-8), or remove the bad bytes`,
    );
  }
}
