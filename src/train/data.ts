// Training data in the MobileLLM seed's layout (pretrain.py): `basepath/<node>/*.jsonl`, one JSON
// object per line with the token ids of one training sequence, `{"token_ids": [1, 450, ...]}`.
//
// As in the seed's JSONLIterator, the files are read as an infinite stream (back to the start
// after the end) and line i (0-based, counted over every line, blank or not) belongs to rank
// `i % worldSize == rank`. The seed picks node folder `global_rank // 8 + 1` and its first .jsonl
// file; here the node folder is an option (default 1) and all its .jsonl files are read in name
// order. Malformed lines are skipped and counted (the seed prints and skips them), or are an
// error with `strict`. A token id outside the vocabulary is always an error naming file and line.
//
// Lines are used as they are, as the published trainer does (its collate function stacks the
// lines of a batch with torch.stack): the sequence length is the length of the lines, and a line
// of another length than the first is an error naming it (torch.stack would fail on it too).
// The recommended preparation writes lines of 2049 ids: 2048 next-token predictions each.
// The position in the stream (file, byte offset, line number, pass) is saved in checkpoints so
// that a resumed run reads exactly the sequences the uninterrupted run would have read.

import { closeSync, existsSync, openSync, readdirSync, readSync, statSync } from "node:fs";
import { join } from "node:path";

export interface DataOptions {
  /** Node folder under the base path (the seed's `global_rank // 8 + 1`). */
  node?: string;
  worldSize?: number;
  rank?: number;
  /** Throw on a malformed line instead of skipping it. */
  strict?: boolean;
  /** Receives a message for the first few skipped lines. */
  warn?: (message: string) => void;
}

export interface DataPosition {
  file: number; // index into the sorted file list
  byte: number; // offset of the next unread line in that file
  line: number; // lines read so far from that file (the seed's line_num)
  pass: number; // completed passes over all files
}

export interface DataCounts {
  sequences: number;
  malformed: number;
}

const CHUNK = 1 << 20;

export class TokenStream {
  readonly files: string[];
  readonly folder: string;
  private pos: DataPosition = { file: 0, byte: 0, line: 0, pass: 0 };
  readonly counts: DataCounts = { sequences: 0, malformed: 0 };
  private readonly worldSize: number;
  private readonly rank: number;
  private fd = -1;
  private fdFile = -1;
  private buf = Buffer.alloc(CHUNK);
  private bufStart = 0; // file offset of buf[0]
  private bufLen = 0;
  private warned = 0;
  private foundInPass = false;

  /** `seqLen`: ids per line (every line must hold exactly this many); see firstLineLength(). */
  constructor(
    basepath: string,
    readonly vocabSize: number,
    public seqLen: number,
    private readonly options: DataOptions = {},
  ) {
    this.folder = join(basepath, options.node ?? "1");
    if (!existsSync(this.folder) || !statSync(this.folder).isDirectory()) {
      throw new Error(
        `${this.folder}: training data folder not found; expected <basepath>/<node>/*.jsonl ` +
          `(create it with \`mobilellm prepare --out ${basepath} ...\`)`,
      );
    }
    this.files = readdirSync(this.folder)
      .filter((f) => f.endsWith(".jsonl"))
      .sort()
      .map((f) => join(this.folder, f));
    if (this.files.length === 0) throw new Error(`${this.folder}: no .jsonl files in the training data folder`);
    this.worldSize = options.worldSize ?? 1;
    this.rank = options.rank ?? 0;
    if (
      !(
        Number.isInteger(this.worldSize) &&
        this.worldSize >= 1 &&
        Number.isInteger(this.rank) &&
        this.rank >= 0 &&
        this.rank < this.worldSize
      )
    ) {
      throw new Error(`data sharding needs 0 <= rank < world size, got rank ${this.rank} of ${this.worldSize}`);
    }
  }

  position(): DataPosition {
    return { ...this.pos };
  }

  seek(p: DataPosition): void {
    if (!(p.file >= 0 && p.file < this.files.length))
      throw new Error(`data position names file #${p.file}, but ${this.folder} has ${this.files.length} .jsonl files`);
    this.pos = { ...p };
    this.bufLen = 0;
    this.foundInPass = p.file > 0 || p.line > 0;
  }

  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
    this.fdFile = -1;
  }

  /** Fill `outBT` with the next B sequences of T ids (B = outBT.length / T). */
  nextBatch(outBT: Int32Array): void {
    const T = this.seqLen;
    for (let b = 0; b < outBT.length / T; b++) this.nextSequence(outBT.subarray(b * T, (b + 1) * T));
  }

  /**
   * Up to `limit` sequences of one pass over the files from the start (for validation): a fresh
   * stream's sequences until it would wrap around.
   */
  readPass(limit = Infinity): Int32Array[] {
    this.seek({ file: 0, byte: 0, line: 0, pass: 0 });
    const out: Int32Array[] = [];
    while (out.length < limit) {
      const seq = new Int32Array(this.seqLen);
      this.nextSequence(seq);
      if (this.pos.pass > 0) break;
      out.push(seq);
    }
    return out;
  }

  /**
   * The number of ids in this rank's first usable line: the sequence length of the data. The
   * stream's position is left where it was.
   */
  firstLineLength(): number {
    const saved = this.position(),
      counts = { ...this.counts },
      warned = this.warned;
    this.seek({ file: 0, byte: 0, line: 0, pass: 0 });
    const n = this.nextIds().ids.length;
    this.seek(saved);
    Object.assign(this.counts, counts);
    this.warned = warned;
    return n;
  }

  private nextSequence(out: Int32Array): void {
    const { ids, where } = this.nextIds();
    if (ids.length !== out.length) {
      throw new Error(
        `${where}: ${ids.length} token ids, but the data's sequences hold ${out.length} (its first line's length); ` +
          `lines are used as they are and a batch stacks lines of one length, as the published trainer does: ` +
          `prepare the data again with one --seq-len`,
      );
    }
    for (let t = 0; t < out.length; t++) {
      const id = ids[t]!; // checked below (a short or corrupt source gives undefined)
      if (!(Number.isInteger(id) && id >= 0 && id < this.vocabSize)) {
        throw new Error(
          `${where}: token id ${JSON.stringify(id)} at index ${t} is outside the vocabulary [0, ${this.vocabSize}); ` +
            `the data was tokenized for a different vocabulary than the model config`,
        );
      }
      out[t] = id;
    }
    this.counts.sequences++;
  }

  /** The next line of this rank with a token_ids array (malformed lines skipped and counted). */
  private nextIds(): { ids: number[]; where: string } {
    for (;;) {
      const line = this.readLine();
      if (line === null) {
        // end of this file: next file, or the next pass over all of them
        this.close();
        this.pos = { file: this.pos.file + 1, byte: 0, line: 0, pass: this.pos.pass };
        if (this.pos.file === this.files.length) {
          this.pos = { file: 0, byte: 0, line: 0, pass: this.pos.pass + 1 };
          if (!this.foundInPass) {
            // a whole pass found nothing: stop instead of looping forever
            throw new Error(
              `${this.folder}: a whole pass over the .jsonl files (rank ${this.rank} of ${this.worldSize}) found no usable ` +
                `line of token ids (${this.counts.malformed} malformed)`,
            );
          }
          this.foundInPass = false;
        }
        continue;
      }
      const lineNo = this.pos.line; // 1-based number of the line just read
      if ((lineNo - 1) % this.worldSize !== this.rank) continue;
      const where = `${this.files[this.pos.file]}:${lineNo}`;
      const ids = this.parse(line, where);
      if (ids === null) continue;
      this.foundInPass = true;
      return { ids, where };
    }
  }

  private parse(line: string, where: string): number[] | null {
    let ids: unknown;
    try {
      ids = (JSON.parse(line) as { token_ids?: unknown } | null)?.token_ids;
    } catch (e) {
      return this.malformed(where, `not valid JSON (${(e as Error).message})`);
    }
    if (!Array.isArray(ids)) return this.malformed(where, `no "token_ids" array`);
    return ids as number[];
  }

  private malformed(where: string, what: string): null {
    if (this.options.strict) throw new Error(`${where}: malformed line: ${what} (expected {"token_ids": [...]})`);
    this.counts.malformed++;
    this.note(`${where}: malformed line skipped: ${what}`);
    return null;
  }

  private note(message: string): void {
    if (this.warned++ < 5) this.options.warn?.(message);
  }

  /** The next line of the current file (without its newline), or null at its end. */
  private readLine(): string | null {
    const p = this.pos;
    if (this.fdFile !== p.file) {
      this.close();
      this.fd = openSync(this.files[p.file]!, "r");
      this.fdFile = p.file;
      this.bufLen = 0;
    }
    for (;;) {
      const from = p.byte - this.bufStart;
      if (this.bufLen > 0 && from >= 0 && from <= this.bufLen) {
        const nl = this.buf.subarray(0, this.bufLen).indexOf(10, from);
        if (nl >= 0) {
          const line = this.buf.toString("utf8", from, nl);
          p.byte = this.bufStart + nl + 1;
          p.line++;
          return line.endsWith("\r") ? line.slice(0, -1) : line;
        }
      }
      // Refill from p.byte, growing the buffer when one line is longer than it.
      const have = this.bufLen > 0 && from >= 0 && from <= this.bufLen ? this.bufLen - from : 0;
      if (have === this.buf.length) this.buf = Buffer.concat([this.buf, Buffer.alloc(this.buf.length)]);
      if (have > 0) this.buf.copy(this.buf, 0, from, this.bufLen);
      this.bufStart = p.byte;
      const n = readSync(this.fd, this.buf, have, this.buf.length - have, p.byte + have);
      this.bufLen = have + n;
      if (n === 0) {
        // end of file: a last line without a newline still counts
        if (have === 0) return null;
        const line = this.buf.toString("utf8", 0, have);
        p.byte += have;
        p.line++;
        this.bufLen = 0;
        return line;
      }
    }
  }
}
