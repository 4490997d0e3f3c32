// Stop strings: end generation when the generated text contains one of them, without ever
// emitting the stop string itself. Text arrives in pieces, so a stop string may straddle two
// tokens ("\n" + "\nUser:"); text that could be the beginning of a stop string is held back
// until the next piece shows whether it is.

export class StopStrings {
  private readonly stops: string[];
  private held = "";

  constructor(stops: readonly string[]) {
    if (stops.some((s) => s === "")) throw new RangeError("stop strings must not be empty");
    this.stops = [...stops];
  }

  /**
   * Feed the next piece of text. Returns the text that is safe to emit and whether a stop string
   * was found (then `text` is everything before it, and the rest is dropped).
   */
  push(piece: string): { text: string; stopped: boolean } {
    const pending = this.held + piece;
    let at = -1;
    for (const s of this.stops) {
      const i = pending.indexOf(s);
      if (i >= 0 && (at < 0 || i < at)) at = i;
    }
    if (at >= 0) {
      this.held = "";
      return { text: pending.slice(0, at), stopped: true };
    }
    // Hold back the longest end of `pending` that is the start of some stop string.
    let hold = 0;
    for (const s of this.stops) {
      for (let n = Math.min(s.length - 1, pending.length); n > hold; n--) {
        if (pending.endsWith(s.slice(0, n))) {
          hold = n;
          break;
        }
      }
    }
    this.held = pending.slice(pending.length - hold);
    return { text: pending.slice(0, pending.length - hold), stopped: false };
  }

  /** The held-back text (generation ended without a stop string: it is real output). */
  flush(): string {
    const text = this.held;
    this.held = "";
    return text;
  }
}
