// Progress of long work (downloads, perplexity windows, eval items, training steps): the one
// helper every command uses. On a terminal it is a bar redrawn in place with "\r" (at most ~10
// times a second, so update() per 64 KiB chunk costs nothing). When stderr is a pipe or a log
// file it prints a plain line at a steady interval instead (every 10 s, or
// $MOBILELLM_PROGRESS_INTERVAL seconds): done/total, rate and time left, so a long job in CI or
// under nohup is never silent. `quiet` (the CLI's --quiet) silences both.
//
//   const p = createProgress({ label: "model.safetensors", total: bytes, unit: "bytes" });
//   p.update(done, "detail");   // absolute count so far (or p.add(delta)); detail: "ppl 12.3", ...
//   p.log("checkpoint saved");  // a message line that does not break the bar
//   p.done();                   // final bar line (or, after interval lines, a final line)
//
// `formatProgress` and `formatProgressLine` are the pure parts (state -> text), tested apart.

export interface ProgressOptions {
  /** What is progressing, e.g. a file name or "ppl". */
  label: string;
  /** Total count, if known (bytes, tokens, steps). Without it no percentage or time left is shown. */
  total?: number;
  /** "bytes" prints MB and MB/s; any other string is printed after plain counts ("tok", "step"). */
  unit?: string;
  /** Where to draw; default process.stderr. */
  stream?: NodeJS.WritableStream;
  /** "auto" (default): a bar on a TTY, interval lines otherwise; or force "bar", "lines" or "off". */
  mode?: "auto" | "bar" | "lines" | "off";
  /** Nothing at all (same as mode "off"). */
  quiet?: boolean;
  /** Force drawing on or off (older name for mode; true = "auto", false = "off"). */
  enabled?: boolean;
  /** Interval between plain lines; default $MOBILELLM_PROGRESS_INTERVAL seconds, else 10 s. */
  intervalMs?: number;
  /** Plain lines: print the final line even when the work took less than one interval. */
  alwaysFinalLine?: boolean;
  /** Show the estimated time left (default true; off when the detail carries a better estimate). */
  timeLeft?: boolean;
}

export interface Progress {
  /** Set the absolute count done so far, with an optional detail shown after the rate. */
  update(done: number, detail?: string): void;
  /** Add `delta` to the count done so far. */
  add(delta: number): void;
  /** Print a whole message line without breaking the bar (silent when quiet). */
  log(message: string): void;
  /** Draw the final state and end the line. Further calls do nothing. */
  done(): void;
}
/** The older name of Progress. */
export type ProgressBar = Progress;
export type ProgressBarOptions = ProgressOptions;

export interface ProgressState {
  label: string;
  done: number;
  total?: number | undefined;
  unit?: string | undefined;
  /** Seconds since the work (of this process) started, for the rate. */
  seconds: number;
  /** Width of the [####....] gauge in characters. */
  barWidth?: number;
  detail?: string | undefined;
  /** Plain lines: show the time left (default true). */
  timeLeft?: boolean;
}

const MB = 1024 * 1024;

function formatCount(n: number, unit: string | undefined): string {
  if (unit === "bytes") return `${(n / MB).toFixed(1)}`;
  return `${Math.round(n)}`;
}

function rateOf(s: ProgressState): number {
  return s.seconds > 0 ? s.done / s.seconds : 0;
}

function rateText(s: ProgressState): string {
  const unitName = s.unit === "bytes" ? "MB" : (s.unit ?? "");
  const rate = rateOf(s);
  return `${s.unit === "bytes" ? (rate / MB).toFixed(1) : compactNumber(rate)} ${unitName || "it"}/s`;
}

/** "12.3k" style counts for rates. */
export function compactNumber(n: number): string {
  if (!Number.isFinite(n)) return "-";
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)}M`;
  if (n >= 1e4) return `${(n / 1e3).toFixed(1)}k`;
  return n >= 100 ? n.toFixed(0) : n.toFixed(1);
}

/** "1h05m", "3m07s", "42s"; "?" when unknown. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "?";
  const h = Math.floor(seconds / 3600),
    m = Math.floor((seconds % 3600) / 60),
    s = Math.floor(seconds % 60);
  return h ? `${h}h${String(m).padStart(2, "0")}m` : m ? `${m}m${String(s).padStart(2, "0")}s` : `${s}s`;
}

/** The bar (terminal) form: `label [####....]  42%  12.3/29.0 MB  8.1 MB/s  detail`. */
export function formatProgress(s: ProgressState): string {
  const unitName = s.unit === "bytes" ? "MB" : (s.unit ?? "");
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
  parts.push(rateText(s));
  if (s.detail) parts.push(s.detail);
  return parts.join("  ");
}

/** The plain-line (pipe, log file) form: `label: 120/512 tok (23%)  81.2 tok/s  4s left  detail`. */
export function formatProgressLine(s: ProgressState): string {
  const unitName = s.unit === "bytes" ? "MB" : (s.unit ?? "");
  const hasTotal = s.total !== undefined && s.total > 0;
  const count = `${formatCount(s.done, s.unit)}${hasTotal ? `/${formatCount(s.total!, s.unit)}` : ""}${unitName ? ` ${unitName}` : ""}`;
  const parts = [`${s.label}: ${count}${hasTotal ? ` (${Math.min(100, Math.floor((100 * s.done) / s.total!))}%)` : ""}`, rateText(s)];
  if (hasTotal && s.timeLeft !== false) {
    const rate = rateOf(s);
    parts.push(`${rate > 0 ? formatDuration((s.total! - s.done) / rate) : "?"} left`);
  }
  if (s.detail) parts.push(s.detail);
  return parts.join("  ");
}

function defaultIntervalMs(): number {
  const env = typeof process !== "undefined" ? Number(process.env.MOBILELLM_PROGRESS_INTERVAL) : NaN;
  return Number.isFinite(env) && env > 0 ? env * 1000 : 10_000;
}

/** A progress display on `stream` (stderr): bar on a TTY, interval lines otherwise, or nothing. */
export function createProgress(opts: ProgressOptions): Progress {
  const stream = opts.stream ?? process.stderr;
  const tty = (stream as { isTTY?: boolean }).isTTY === true;
  const requested = opts.quiet || opts.enabled === false ? "off" : (opts.mode ?? "auto");
  const mode = requested === "auto" ? (tty ? "bar" : "lines") : requested;
  const interval = opts.intervalMs ?? defaultIntervalMs();
  const start = performance.now();
  let count = 0,
    detail: string | undefined;
  let lastDraw = -Infinity,
    lastLine = start,
    linesPrinted = 0,
    barShown = false,
    finished = false;

  const state = (now: number): ProgressState => ({
    label: opts.label,
    done: count,
    total: opts.total,
    unit: opts.unit,
    seconds: (now - start) / 1000,
    detail,
    timeLeft: opts.timeLeft ?? true,
  });
  const drawBar = (final: boolean): void => {
    const now = performance.now();
    if (!final && now - lastDraw < 100) return; // at most ~10 redraws per second
    lastDraw = now;
    barShown = !final;
    // "\x1b[K" clears the rest of the previous (possibly longer) line.
    stream.write(`\r${formatProgress(state(now))}\x1b[K${final ? "\n" : ""}`);
  };
  const maybeLine = (): void => {
    const now = performance.now();
    if (now - lastLine < interval) return;
    lastLine = now;
    linesPrinted++;
    stream.write(`${formatProgressLine(state(now))}\n`);
  };
  const changed = (): void => {
    if (finished) return;
    if (mode === "bar") drawBar(false);
    else if (mode === "lines") maybeLine();
  };

  return {
    update(done: number, d?: string) {
      count = done;
      if (d !== undefined) detail = d;
      changed();
    },
    add(delta: number) {
      count += delta;
      changed();
    },
    log(message: string) {
      if (mode === "off") return;
      stream.write(`${barShown ? "\r\x1b[K" : ""}${message}\n`);
      if (barShown) {
        barShown = false;
        lastDraw = -Infinity;
        if (!finished) drawBar(false);
      }
    },
    done() {
      if (finished) return;
      finished = true;
      if (mode === "bar") drawBar(true);
      else if (mode === "lines" && (linesPrinted > 0 || (opts.alwaysFinalLine && count > 0)))
        stream.write(`${formatProgressLine(state(performance.now()))}\n`);
    },
  };
}

/** The older name of createProgress (a bar on a TTY; on a pipe, lines every interval). */
export const createProgressBar = createProgress;
