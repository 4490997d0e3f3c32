// Turning generated token ids into text as they arrive.
//
// Two things make this more than `decode([id])` per token:
//  - byte pieces: SentencePiece falls back to UTF-8 bytes for characters outside its vocabulary
//    (`<0xE2>`, `<0x82>`, `<0xAC>` for "€"), so one character may span several tokens. Until its
//    last byte arrives, decode() ends with U+FFFD; that text is held back, then emitted once.
//  - the leading space: SentencePiece writes a space as "▁" at the start of a piece and decode()
//    drops the space of the very first piece (the dummy prefix), so decoding the new tokens alone
//    would lose the space between the prompt and the first generated word.
// A tokenizer with its own streaming decoder (the project's Tokenizer.createDecodeStream) handles
// both in linear time; createTextStream() prefers it. For any other codec, IncrementalDecoder
// decodes a window of context ids plus the new ids and emits only what lies beyond the text the
// window had already produced. The window starts with a few prompt ids and slides forward whenever
// the text is complete, so each step decodes a handful of ids, not the whole sequence.

/** What generation needs from a tokenizer (the project's Tokenizer satisfies it). */
export interface TextCodec {
  /** Text to ids; addBos prepends the beginning-of-sequence id (default: the tokenizer's choice). */
  encode(text: string, opts?: { addBos?: boolean }): number[];
  /** Ids to text (byte pieces joined into UTF-8; incomplete sequences become U+FFFD). */
  decode(ids: number[]): string;
  /** The vocabulary piece of an id, e.g. "▁the" or "<0x0A>" (optional). */
  idToPiece?(id: number): string;
  /**
   * A linear-time streaming decoder (optional): push(id) returns the text the id completes,
   * flush() what is left at the end, and together they equal decode(all ids).
   */
  createDecodeStream?(): { push(id: number): string; flush(): string };
}

/** Streaming text of generated ids: push(id) returns the new complete text, flush() the rest at the end. */
export interface TextStream {
  push(id: number): string;
  flush(): string;
}

/**
 * The streaming detokenizer for a generation continuing `promptIds`: the tokenizer's own decode
 * stream when it has one (fed the prompt first, so the first generated word keeps its space and a
 * character split across prompt and output comes out whole), else an IncrementalDecoder.
 */
export function createTextStream(codec: TextCodec, promptIds: ArrayLike<number>): TextStream {
  if (!codec.createDecodeStream) return new IncrementalDecoder(codec, promptIds);
  const stream = codec.createDecodeStream();
  for (let i = 0; i < promptIds.length; i++) stream.push(promptIds[i]!); // prompt text: not output
  return stream;
}

const REPLACEMENT = "\uFFFD";
/** Context ids kept at the start of the window (enough for any piece-boundary effect). */
const KEEP = 4;
/** Slide the window forward once it holds this many ids. */
const SLIDE_AT = 16;

/** Incremental detokenizer: push ids one at a time, get the new complete text of each. */
export class IncrementalDecoder implements TextStream {
  private readonly codec: TextCodec;
  private window: number[]; // context ids, then the ids pushed since the window last slid
  private done: string; // decode(window) up to the text already emitted

  /** `contextIds`: the prompt (only its last few ids are used, as left context). */
  constructor(codec: TextCodec, contextIds: ArrayLike<number> = []) {
    this.codec = codec;
    this.window = Array.from(contextIds).slice(-KEEP);
    this.done = stripIncomplete(this.window.length ? codec.decode(this.window) : "");
  }

  /** Add one id; returns the text it completes (possibly "" while a character is incomplete). */
  push(id: number): string {
    this.window.push(id);
    return this.emit(false);
  }

  /** The end: incomplete trailing bytes come out as U+FFFD (what decode() gives). */
  flush(): string {
    return this.emit(true);
  }

  private emit(final: boolean): string {
    const full = this.codec.decode(this.window);
    const complete = final ? full : stripIncomplete(full);
    let text: string;
    if (complete.startsWith(this.done)) {
      text = complete.slice(this.done.length);
    } else {
      // decode() is not prefix-stable here (e.g. the context ended inside a character that this id
      // completes): emit from the first difference on; never re-emit what is already out.
      let i = 0;
      while (i < this.done.length && i < complete.length && this.done[i] === complete[i]) i++;
      text = complete.slice(Math.max(i, this.done.length));
    }
    this.done = complete.length > this.done.length ? complete : this.done;
    if (complete === full && this.window.length >= SLIDE_AT) {
      // complete text: slide the window
      this.window = this.window.slice(-KEEP);
      this.done = this.codec.decode(this.window);
    }
    return text;
  }
}

/** `s` without trailing U+FFFD (an incomplete UTF-8 sequence that later bytes may complete). */
function stripIncomplete(s: string): string {
  let end = s.length;
  while (end > 0 && s[end - 1] === REPLACEMENT) end--;
  return s.slice(0, end);
}
