// Files over HTTP(S): a URL as a ByteSource, read with `Range` requests so a loader fetches only
// the bytes it reads (headers first, then each tensor straight into its destination), and a base
// URL as a model folder. Opening a file sends one request for its first 64 KiB: a 206 answer
// gives the size (Content-Range) and serves the header reads; a server that ignores ranges
// answers 200 with the whole file, which is then kept in memory (one download, as asked); a 404
// means "the folder has no such file"; any other status is an error naming the URL.

import { CheckpointError } from "../io/tensor-file.js";
import { memorySource, outsideError, type ByteSource } from "./byte-source.js";
import type { ModelFolder } from "./folder.js";

export interface UrlOptions {
  /** fetch implementation (tests, proxies); default globalThis.fetch. */
  fetch?: typeof fetch;
  /** Extra request headers (e.g. Authorization for a private server). */
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /** Give up a response that sends no data for this long (a stalled connection); default 30 s. */
  timeoutMs?: number;
}

/** Bytes asked for when a file is opened: enough for any header we read first. */
const PROBE_BYTES = 64 << 10;

/** Is `s` an absolute http(s) URL (as a string or URL)? */
export function isHttpUrl(s: unknown): s is string | URL {
  if (s instanceof URL) return s.protocol === "http:" || s.protocol === "https:";
  return typeof s === "string" && /^https?:\/\//i.test(s);
}

async function get(url: string, o: UrlOptions, range?: [number, number]): Promise<Response> {
  const headers: Record<string, string> = { ...o.headers };
  if (range) headers.Range = `bytes=${range[0]}-${range[1]}`;
  try {
    return await (o.fetch ?? globalThis.fetch)(url, { headers, ...(o.signal ? { signal: o.signal } : {}) });
  } catch (e) {
    if ((e as Error).name === "AbortError" || o.signal?.aborted) throw o.signal?.reason ?? e;
    throw new CheckpointError(
      url,
      `cannot fetch it: ${(e as Error).message}${(e as { cause?: Error }).cause ? ` (${(e as { cause: Error }).cause.message})` : ""}; check the URL and the network`,
    );
  }
}

function statusError(url: string, res: Response): CheckpointError {
  const hint =
    res.status === 401 || res.status === 403
      ? "access denied (a private file needs credentials: pass headers)"
      : res.status === 404
        ? "not found (check the URL)"
        : "the server refused the request";
  return new CheckpointError(url, `HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ""}: ${hint}`);
}

/**
 * The next chunk of a response body, or a rejection (a StalledError) when none arrives within
 * `timeoutMs`: a connection that stays open without sending must not hang a load.
 */
export async function readChunk(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  timeoutMs: number,
): Promise<Awaited<ReturnType<ReadableStreamDefaultReader<Uint8Array>["read"]>>> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const stalled = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new StalledError(timeoutMs)), timeoutMs);
  });
  try {
    return await Promise.race([reader.read(), stalled]);
  } catch (e) {
    if (e instanceof StalledError) void reader.cancel().catch(() => {});
    throw e;
  } finally {
    clearTimeout(timer);
  }
}

export class StalledError extends Error {
  constructor(readonly timeoutMs: number) {
    super(`no data for ${timeoutMs / 1000} s (a stalled connection)`);
    this.name = "StalledError";
  }
}

/** Copy the body of `res` into dst, failing (naming `url`) unless it holds exactly dst.length bytes. */
async function bodyInto(res: Response, dst: Uint8Array, url: string, what: string, timeoutMs: number): Promise<void> {
  if (!res.body) throw new CheckpointError(url, `the response for ${what} has no body`);
  const reader = res.body.getReader();
  let done = 0;
  try {
    for (;;) {
      const r = await readChunk(reader, timeoutMs);
      if (r.done) break;
      if (done + r.value.length > dst.length)
        throw new CheckpointError(
          url,
          `the server sent more than the ${dst.length} bytes of ${what} asked for; it does not serve byte ranges correctly`,
        );
      dst.set(r.value, done);
      done += r.value.length;
    }
  } catch (e) {
    if (e instanceof CheckpointError || (e as Error).name === "AbortError") throw e;
    throw new CheckpointError(
      url,
      `the download of ${what} broke off after ${done} of ${dst.length} bytes (${(e as Error).message}); try again`,
    );
  } finally {
    reader.releaseLock();
  }
  if (done !== dst.length)
    throw new CheckpointError(
      url,
      `the server sent ${done} of the ${dst.length} bytes of ${what} (truncated file or broken connection); re-upload the file or try again`,
    );
}

/** The whole body of `res` (a 200 answer), checked against Content-Length when there is one. */
async function wholeBody(res: Response, url: string, timeoutMs: number): Promise<Uint8Array> {
  const declared = res.headers.get("content-length");
  const encoded = res.headers.get("content-encoding");
  if (declared !== null && (encoded === null || encoded === "identity")) {
    const n = Number(declared);
    const dst = new Uint8Array(n);
    await bodyInto(res, dst, url, "the file", timeoutMs);
    return dst;
  }
  // no length announced (or compressed): collect the chunks
  const chunks: Uint8Array[] = [];
  const reader = res.body!.getReader();
  try {
    for (let r = await readChunk(reader, timeoutMs); !r.done; r = await readChunk(reader, timeoutMs)) chunks.push(r.value);
  } catch (e) {
    throw new CheckpointError(url, `the download broke off (${(e as Error).message}); try again`);
  }
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/**
 * Open `url` as a ByteSource, or null when the server answers 404 (no such file). See the top of
 * this file for the requests it sends.
 */
export async function openUrl(url: string | URL, o: UrlOptions = {}): Promise<ByteSource | null> {
  const href = String(url);
  const timeoutMs = o.timeoutMs ?? 30_000;
  const res = await get(href, o, [0, PROBE_BYTES - 1]);
  if (res.status === 404) {
    await res.body?.cancel();
    return null;
  }
  if (res.status === 416) {
    // range not satisfiable: an empty file
    await res.body?.cancel();
    return memorySource(new Uint8Array(0), href);
  }
  if (res.status === 200) return memorySource(await wholeBody(res, href, timeoutMs), href); // ranges ignored: the whole file came
  if (res.status !== 206) {
    await res.body?.cancel();
    throw statusError(href, res);
  }
  const m = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(res.headers.get("content-range") ?? "");
  if (!m || Number(m[1]) !== 0) {
    await res.body?.cancel();
    throw new CheckpointError(
      href,
      `the server answered a range request without a usable Content-Range (${JSON.stringify(res.headers.get("content-range"))}); serve the file with byte ranges or without them`,
    );
  }
  const size = Number(m[3]);
  const head = new Uint8Array(Number(m[2]) + 1);
  await bodyInto(res, head, href, "the start of the file", timeoutMs);
  const source: ByteSource = {
    name: href,
    size,
    async read(offset, dst, what = "data") {
      if (offset < 0 || offset + dst.length > size) throw outsideError(source, offset, dst.length, what);
      if (dst.length === 0) return;
      if (offset + dst.length <= head.length) {
        dst.set(head.subarray(offset, offset + dst.length));
        return;
      }
      const r = await get(href, o, [offset, offset + dst.length - 1]);
      if (r.status !== 206) {
        await r.body?.cancel();
        if (r.status === 200) throw new CheckpointError(href, `the server stopped honouring byte ranges while ${what} was read; try again`);
        throw statusError(href, r);
      }
      await bodyInto(r, dst, href, what, timeoutMs);
    },
  };
  return source;
}

/** Open `url` or fail naming it (a 404 included). */
export async function openUrlRequired(url: string | URL, o: UrlOptions = {}): Promise<ByteSource> {
  const src = await openUrl(url, o);
  if (src === null) throw new CheckpointError(String(url), "HTTP 404: not found (check the URL)");
  return src;
}

/** A model folder at a base URL (`https://host/models/tiny/`; a missing final "/" is added). */
export function urlFolder(base: string | URL, o: UrlOptions = {}): ModelFolder {
  const root = new URL(String(base));
  if (!root.pathname.endsWith("/")) root.pathname += "/";
  root.search = "";
  root.hash = "";
  return {
    name: root.href,
    open: (file) => openUrl(new URL(file, root), o),
    nameOf: (file) => new URL(file, root).href,
  };
}
