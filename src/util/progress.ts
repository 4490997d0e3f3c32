// A one-line progress bar for long jobs (downloads, perplexity, training steps), drawn on stderr
// only when stderr is a terminal. It redraws in place with "\r" at most ~10 times a second, so
// calling update() for every 64 KiB chunk costs nothing.
//
//   const bar = createProgressBar({ label: "model.safetensors", total: bytes, unit: "bytes" });
//   bar.update(done);   // absolute count so far (or bar.add(delta))
//   bar.done();         // final line + newline
//
// `formatProgress` is the pure part (state -> text), kept apart so it can be tested.

export interface ProgressBarOptions {
  /** What is progressing, e.g. a file name. */
  label: string;
  /** Total count, if known (bytes, tokens, steps). Without it no percentage is shown. */
  total?: number;
  /** "bytes" prints MB and MB/s; any other string is printed after plain counts ("tok", "step"). */
  unit?: string;
  /** Where to draw; default process.stderr. */
  stream?: NodeJS.WriteStream;
  /** Force drawing on or off; default: only when `stream` is a TTY. */
  enabled?: boolean;
}

export interface ProgressBar {
  /** Set the absolute count done so far. */
  update(done: number): void;
  /** Add `delta` to the count done so far. */
  add(delta: number): void;
  /** Draw the final state and end the line. Further calls do nothing. */
  done(): void;
}

export interface ProgressState {
  label: string;
  done: number;
  total?: number;
  unit?: string;
  /** Seconds since the bar started (for the rate). */
  seconds: number;
  /** Width of the [####....] gauge in characters. */
  barWidth?: number;
}

const MB = 1024 * 1024;

function formatCount(n: number, unit: string | undefined): string {
  if (unit === "bytes") return `${(n / MB).toFixed(1)}`;
  return `${Math.round(n)}`;
}

/** One line of text for a progress state: `label [####....]  42%  12.3/29.0 MB  8.1 MB/s`. */
export function formatProgress(s: ProgressState): string {
  const unitName = s.unit === "bytes" ? "MB" : (s.unit ?? "");
  const rate = s.seconds > 0 ? s.done / s.seconds : 0;
  const rateText = `${s.unit === "bytes" ? (rate / MB).toFixed(1) : rate.toFixed(1)} ${unitName || "it"}/s`;
  const parts = [s.label];
  if (s.total !== undefined && s.total > 0) {
    const frac = Math.min(1, Math.max(0, s.done / s.total));
    const width = s.barWidth ?? 24;
    const filled = Math.round(frac * width);
    parts.push(`[${"#".repeat(filled)}${".".repeat(width - filled)}]`);
    parts.push(`${(frac * 100).toFixed(0).padStart(3)}%`);
    parts.push(`${formatCount(s.done, s.unit)}/${formatCount(s.total, s.unit)} ${unitName}`.trimEnd());
  } else {
    parts.push(`${formatCount(s.done, s.unit)} ${unitName}`.trimEnd());
  }
  parts.push(rateText);
  return parts.join("  ");
}

/** A progress bar on `stream` (stderr); a no-op object when not enabled. */
export function createProgressBar(opts: ProgressBarOptions): ProgressBar {
  const stream = opts.stream ?? process.stderr;
  const enabled = opts.enabled ?? stream.isTTY === true;
  const start = performance.now();
  let count = 0;
  let lastDraw = -Infinity;
  let finished = false;

  const draw = (final: boolean): void => {
    const now = performance.now();
    if (!final && now - lastDraw < 100) return; // at most ~10 redraws per second
    lastDraw = now;
    const line = formatProgress({
      label: opts.label, done: count, total: opts.total, unit: opts.unit, seconds: (now - start) / 1000,
    });
    // "\x1b[K" clears the rest of the previous (possibly longer) line.
    stream.write(`\r${line}\x1b[K${final ? "\n" : ""}`);
  };

  return {
    update(done: number) {
      count = done;
      if (enabled && !finished) draw(false);
    },
    add(delta: number) {
      count += delta;
      if (enabled && !finished) draw(false);
    },
    done() {
      if (finished) return;
      finished = true;
      if (enabled) draw(true);
    },
  };
}
