// A one-line progress display on stderr, redrawn in place; silent when stderr is not a terminal
// (so logs and pipes stay clean).

export class ProgressLine {
  private readonly enabled: boolean;
  private last = 0;
  private shown = false;

  constructor(private readonly stream: NodeJS.WritableStream, enabled?: boolean) {
    this.enabled = enabled ?? Boolean((stream as { isTTY?: boolean }).isTTY);
  }

  /** Redraw the line (at most ~10 times a second unless `force`). */
  update(text: string, force = false): void {
    if (!this.enabled) return;
    const now = Date.now();
    if (!force && now - this.last < 100) return;
    this.last = now;
    this.shown = true;
    this.stream.write(`\r${text}\x1b[K`);
  }

  /** End the line so that later output starts on a fresh one. */
  done(): void {
    if (this.enabled && this.shown) this.stream.write("\n");
    this.shown = false;
  }
}

/** "12.3k" style counts for rates. */
export function compactNumber(n: number): string {
  if (!Number.isFinite(n)) return "-";
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)}M`;
  if (n >= 1e4) return `${(n / 1e3).toFixed(1)}k`;
  return n >= 100 ? n.toFixed(0) : n.toFixed(1);
}
