// Download a model repository from the Hugging Face hub into the standard HF cache, so that
// `mobilellm generate facebook/MobileLLM-125M` works and the files are shared with Python
// (transformers / huggingface_hub read and write the very same folders).
//
// Cache layout (huggingface_hub >= 0.8, "how-to-cache" in its docs):
//
//   $HF_HUB_CACHE  (or $HF_HOME/hub, default ~/.cache/huggingface/hub)
//   └─ models--{owner}--{name}/
//      ├─ refs/{revision}                 text file holding the 40-hex commit sha of a branch/tag
//      ├─ blobs/{etag}                    file contents, named by the hub's ETag without quotes:
//      │                                  sha256 for LFS files, git blob sha1 for small files
//      ├─ snapshots/{commit}/{filename}   relative symlink -> ../../blobs/{etag} (copy if no symlinks)
//      └─ .no_exist/{commit}/{filename}   empty marker: "this file is not in the repo at commit"
//
// Protocol (what the hub answers; huggingface_hub's file_download does the same requests):
//   GET  {endpoint}/api/models/{repo}/revision/{rev}   -> { sha, siblings: [{ rfilename }] }
//   HEAD {endpoint}/{repo}/resolve/{commit}/{file}     -> X-Repo-Commit, ETag, Content-Length;
//        for LFS files a 302 to a CDN whose own ETag is the redirect's, so the file's identity
//        is in X-Linked-Etag (sha256) and its size in X-Linked-Size.
//   GET  the same URL, following redirects by hand so the Authorization header is only ever
//        sent to the endpoint's own origin, never to the CDN.
//
// Downloads go to blobs/{etag}.incomplete, resume with `Range: bytes={have}-`, are checked
// (size, and sha256 when the ETag is one) and only then renamed to the final blob: a blob that
// exists is always complete. A dropped or stalled connection (timeoutMs) is retried, resuming;
// a lock file per blob keeps two processes from writing the same .incomplete file.
//
// One deliberate difference from huggingface_hub: when refs/{revision} exists and every wanted
// file is in that snapshot, we return it WITHOUT touching the network (huggingface_hub sends a
// HEAD per file to see whether the branch moved). Loading a model then works on a plane, and a
// moved branch is picked up with `forceRefresh: true` (e.g. behind a CLI --refresh flag).

import { createHash } from "node:crypto";
import {
  copyFileSync,
  createReadStream,
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  unlinkSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { open } from "node:fs/promises";
import { homedir, hostname } from "node:os";
import { setTimeout as sleep } from "node:timers/promises";
import { basename, dirname, isAbsolute, join, relative } from "node:path";
import { createProgressBar } from "../util/progress.js";
import {
  chooseModelFiles,
  DEFAULT_ENDPOINT,
  hasWeights,
  HubError,
  isCommitSha,
  isRepoIdSyntax,
  MODEL_CANDIDATES,
  OPTIONAL_FILES,
  shardsOfIndex,
  WEIGHT_FILES,
  type HubProgressEvent,
} from "./hub-files.js";

export { chooseModelFiles, DEFAULT_ENDPOINT, HubError, isCommitSha, MODEL_CANDIDATES, OPTIONAL_FILES, shardsOfIndex, WEIGHT_FILES };
export type { HubErrorCode, HubProgressEvent } from "./hub-files.js";

export interface ResolveHubOptions {
  /** Branch, tag or 40-hex commit sha. Default "main". */
  revision?: string;
  /** Exact files to fetch instead of the default choice (see chooseModelFiles). */
  files?: string[];
  /** Cache root; default $HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub. */
  cacheDir?: string;
  /** Access token (gated/private repos); default $HF_TOKEN. Sent as `Authorization: Bearer`. */
  token?: string;
  /** Hub URL; default $HF_ENDPOINT, else https://huggingface.co. */
  endpoint?: string;
  /** Never use the network; default: $HF_HUB_OFFLINE is 1/true/yes/on. */
  offline?: boolean;
  /** Ask the hub which commit the revision points to even if the cache has a complete snapshot. */
  forceRefresh?: boolean;
  /** No progress display (bar or lines). */
  quiet?: boolean;
  signal?: AbortSignal;
  /** Give up an attempt (and retry, resuming) after this long without an answer or data;
   *  default $HF_HUB_DOWNLOAD_TIMEOUT seconds, else 30 s. */
  timeoutMs?: number;
  /** Give up a file (all attempts together) after this long, however data trickles in; default
   *  timeoutMs plus the time the file takes at 64 KiB/s (see downloadDeadlineMs). */
  deadlineMs?: number;
  /** fetch implementation (tests, proxies); default globalThis.fetch. */
  fetch?: typeof fetch;
  progress?: (e: HubProgressEvent) => void;
  /** Environment to read HF_* variables from; default process.env. */
  env?: NodeJS.ProcessEnv;
}

// ---------------------------------------------------------------------------------------------
// Names and places

/**
 * True for a hub repository id "owner/name" (e.g. "facebook/MobileLLM-125M") that is not an
 * existing local path (a local folder "models/tiny" wins over a repo of that name).
 */
export function isHubId(s: string): boolean {
  return isRepoIdSyntax(s) && !existsSync(s);
}

/** The hub cache root as huggingface_hub computes it from the environment. */
export function hubCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const expand = (p: string) => (p === "~" || p.startsWith("~/") ? join(homedir(), p.slice(1)) : p);
  const hubCache = env.HF_HUB_CACHE || env.HUGGINGFACE_HUB_CACHE;
  if (hubCache) return expand(hubCache);
  const home = env.HF_HOME || join(env.XDG_CACHE_HOME || join(homedir(), ".cache"), "huggingface");
  return join(expand(home), "hub");
}

/** "facebook/MobileLLM-125M" -> "models--facebook--MobileLLM-125M" (the folder in the cache). */
export function repoFolderName(repoId: string): string {
  return `models--${repoId.split("/").join("--")}`;
}

function isTrue(v: string | undefined): boolean {
  return v !== undefined && ["1", "ON", "YES", "TRUE"].includes(v.trim().toUpperCase());
}

/** Repo file names become cache paths: refuse anything that could step outside the snapshot. */
function assertSafeRepoPath(repoId: string, file: string): void {
  if (
    file === "" ||
    isAbsolute(file) ||
    file.includes("\\") ||
    file.includes("\0") ||
    file.split("/").some((p) => p === ".." || p === "." || p === "" || Buffer.byteLength(p) > 255)
  ) {
    throw new HubError(
      "bad-response",
      repoId,
      file,
      `${repoId}: refusing unsafe name "${file}" (file names and revisions must be relative paths inside the repository)`,
    );
  }
}

// ---------------------------------------------------------------------------------------------
// Reading the cache (no network)

function isFile(p: string): boolean {
  try {
    return statSync(p).isFile(); // follows symlinks: a dangling link is not a file
  } catch {
    return false;
  }
}

function readRef(storage: string, revision: string): string | undefined {
  try {
    const sha = readFileSync(join(storage, "refs", revision), "utf8").trim();
    return isCommitSha(sha) ? sha : undefined;
  } catch {
    return undefined;
  }
}

export interface CacheLookup {
  /** Commit the revision resolves to in the cache, if known. */
  commit?: string;
  /** snapshots/{commit}, if the commit is known. */
  snapshotDir?: string;
  /** What is missing for a complete snapshot (empty = usable as is). */
  missing: string[];
}

/**
 * What the cache holds for `repoId` at `revision`, without any network. With `files`, those
 * files must be in the snapshot. Without, the default choice must be complete: every candidate
 * name is either in the snapshot or marked absent in .no_exist/{commit}/, config.json and at
 * least one weight file are present, and every shard of a present index is present.
 */
export function lookupCachedSnapshot(cacheDir: string, repoId: string, revision = "main", files?: readonly string[]): CacheLookup {
  const snap = cachedSnapshot(cacheDir, repoId, revision);
  if ("missing" in snap) return snap;
  const { storage, commit, snapshotDir, inSnapshot } = snap;
  const missing: string[] = [];
  if (files) {
    for (const f of files) if (!inSnapshot(f)) missing.push(f);
    for (const f of files) if (f.endsWith(".index.json") && inSnapshot(f)) missing.push(...missingShards(snapshotDir, f));
    return { commit, snapshotDir, missing };
  }
  const noExist = join(storage, ".no_exist", commit);
  const present: string[] = [];
  for (const f of MODEL_CANDIDATES) {
    if (inSnapshot(f)) present.push(f);
    else if (!existsSync(join(noExist, f))) missing.push(f);
  }
  if (!present.includes("config.json") && !missing.includes("config.json")) missing.push("config.json");
  if (missing.length === 0 && !hasWeights(present)) missing.push(`weights (${WEIGHT_FILES.join(", ")})`);
  for (const f of present) if (f.endsWith(".index.json")) missing.push(...missingShards(snapshotDir, f));
  return { commit, snapshotDir, missing };
}

/**
 * What the cache lacks to LOAD `repoId` at `revision` (no network): config.json, one complete
 * weights form (a weights file, or an index with all its shards) and tokenizer.model unless the
 * repo is known not to have it (.no_exist). Optional files (generation_config.json, the other
 * weights forms) are not required. This is what makes a cache written by huggingface_hub usable
 * offline; online, lookupCachedSnapshot's stricter check decides whether to ask the hub.
 */
export function lookupLoadableSnapshot(cacheDir: string, repoId: string, revision = "main"): CacheLookup {
  const snap = cachedSnapshot(cacheDir, repoId, revision);
  if ("missing" in snap) return snap;
  const { storage, commit, snapshotDir, inSnapshot } = snap;
  const missing: string[] = [];
  if (!inSnapshot("config.json")) missing.push("config.json");
  const completeForms = WEIGHT_FILES.filter(
    (f) => inSnapshot(f) && (!f.endsWith(".index.json") || missingShards(snapshotDir, f).length === 0),
  );
  if (completeForms.length === 0) {
    const partial = WEIGHT_FILES.filter((f) => f.endsWith(".index.json") && inSnapshot(f)).flatMap((f) => missingShards(snapshotDir, f));
    missing.push(partial.length ? partial.join(", ") : `weights (one of ${WEIGHT_FILES.join(", ")})`);
  }
  if (!inSnapshot("tokenizer.model") && !existsSync(join(storage, ".no_exist", commit, "tokenizer.model"))) missing.push("tokenizer.model");
  return { commit, snapshotDir, missing };
}

/** The repo's cache folder and the snapshot `revision` resolves to there, or what is missing to know it. */
function cachedSnapshot(
  cacheDir: string,
  repoId: string,
  revision: string,
): { storage: string; commit: string; snapshotDir: string; inSnapshot: (f: string) => boolean } | { missing: string[] } {
  const storage = join(cacheDir, repoFolderName(repoId));
  const commit = isCommitSha(revision) ? revision : readRef(storage, revision);
  if (commit === undefined) return { missing: [`refs/${revision}`] };
  const snapshotDir = join(storage, "snapshots", commit);
  return { storage, commit, snapshotDir, inSnapshot: (f: string) => isFile(join(snapshotDir, f)) };
}

function missingShards(snapshotDir: string, index: string): string[] {
  try {
    return shardsOfIndex(readFileSync(join(snapshotDir, index), "utf8"), index).filter((s) => !isFile(join(snapshotDir, s)));
  } catch {
    return [index];
  }
}

// ---------------------------------------------------------------------------------------------
// Writing the cache

/**
 * Put `blob` into the snapshot at `snapPath` as a relative symlink (../../blobs/{etag}), like
 * huggingface_hub; where symlinks are not allowed (Windows without developer mode), copy.
 */
export function linkIntoSnapshot(
  blob: string,
  snapPath: string,
  symlink: (target: string, path: string) => void = symlinkSync,
): "symlink" | "copy" {
  mkdirSync(dirname(snapPath), { recursive: true });
  try {
    lstatSync(snapPath);
    unlinkSync(snapPath); // a stale or dangling entry
  } catch {
    // nothing there
  }
  try {
    symlink(relative(dirname(snapPath), blob), snapPath);
    return "symlink";
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "EEXIST" && isFile(snapPath)) return "symlink"; // another process linked it
    copyFileSync(blob, snapPath);
    return "copy";
  }
}

function writeRef(storage: string, revision: string, commit: string): void {
  const refPath = join(storage, "refs", revision); // "refs/pr/1" becomes nested folders, as in huggingface_hub
  if (readRef(storage, revision) === commit) return;
  mkdirSync(dirname(refPath), { recursive: true });
  writeFileSync(refPath, commit);
}

function markAbsent(storage: string, commit: string, file: string): void {
  const p = join(storage, ".no_exist", commit, file);
  mkdirSync(dirname(p), { recursive: true });
  writeFileSync(p, "");
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

// ---------------------------------------------------------------------------------------------
// HTTP

/**
 * Headers for a request to `url`. The token goes only to the hub endpoint's own origin
 * (scheme + host + port): after a redirect to a CDN (another host), it must not leak there.
 */
export function requestHeaders(url: string, endpoint: string, token?: string): Record<string, string> {
  const headers: Record<string, string> = {
    "User-Agent": "mobilellm-ts",
    // Byte counts must be of the file itself, not of a gzip encoding of it.
    "Accept-Encoding": "identity",
  };
  if (token && new URL(url).origin === new URL(endpoint).origin) headers.Authorization = `Bearer ${token}`;
  return headers;
}

const MAX_REDIRECTS = 5;
const MAX_ATTEMPTS = 3;

/** Thrown inside a download attempt for failures worth retrying (with resume). */
class RetryableError extends Error {}

/** Server trouble and rate limiting are worth another try; other HTTP errors are final. */
const isTransient = (status: number) => status === 429 || status >= 500;

interface Ctx {
  repoId: string;
  revision: string;
  endpoint: string;
  token: string | undefined;
  storage: string;
  fetch: typeof fetch;
  signal: AbortSignal | undefined;
  timeoutMs: number;
  deadlineMs: number | undefined;
  quiet: boolean;
  progress: ((e: HubProgressEvent) => void) | undefined;
  /** What the cache lacks for this revision (for error messages). */
  missing: string[];
}

function networkError(ctx: Ctx, file: string, e: unknown): HubError {
  const cause = e instanceof Error ? ((e.cause as Error | undefined)?.message ?? e.message) : String(e);
  return new HubError(
    "network",
    ctx.repoId,
    file,
    `${ctx.repoId}: cannot download ${file} from ${ctx.endpoint} (${cause}). ` +
      `Without network, set HF_HUB_OFFLINE=1 to load from the cache at ${ctx.storage} ` +
      `(works once the files were downloaded; missing now: ${ctx.missing.join(", ") || "nothing"}).`,
  );
}

function httpError(ctx: Ctx, file: string, res: Response): HubError {
  const code = res.headers.get("x-error-code") ?? "";
  const what = `HTTP ${res.status}${code ? `, ${code}` : ""}`;
  if (res.status === 401 || res.status === 403 || code === "GatedRepo") {
    return new HubError(
      "unauthorized",
      ctx.repoId,
      file,
      `${ctx.repoId}: access denied to ${file} (${what}). The repository may be gated or private: ` +
        `accept its terms on the hub page and set HF_TOKEN to a token with read access` +
        (ctx.token ? " (a token was sent: check that it has access)." : " (no token was sent).") +
        ` Without a token the hub also answers 401 for a repository that does not exist, so check the id.`,
    );
  }
  if (res.status === 404) {
    return new HubError(
      "not-found",
      ctx.repoId,
      file,
      `${ctx.repoId}: repository or file not found: ${file} at revision "${ctx.revision}" (${what}); check the id / revision.`,
    );
  }
  return new HubError(
    "http",
    ctx.repoId,
    file,
    `${ctx.repoId}: ${file}: unexpected answer from ${ctx.endpoint} (${what} ${res.statusText}).`,
  );
}

/**
 * One try of a request: its signal aborts when the caller's does, or when `alive()` was not
 * called for ctx.timeoutMs (a stalled connection), so the retry loop can resume elsewhere.
 */
interface Attempt {
  signal: AbortSignal;
  alive(): void;
}

function startAttempt(ctx: Ctx, deadline = Infinity): Attempt & { end(): void; expired(): boolean } {
  const ac = new AbortController();
  let expired = false;
  const deadlineTimer =
    deadline < Infinity
      ? setTimeout(
          () => {
            expired = true;
            ac.abort(new Error("deadline"));
          },
          Math.max(0, deadline - Date.now()),
        )
      : undefined;
  const onOuterAbort = () => ac.abort(ctx.signal!.reason);
  if (ctx.signal?.aborted) onOuterAbort();
  ctx.signal?.addEventListener("abort", onOuterAbort, { once: true });
  let timer: NodeJS.Timeout | undefined;
  const alive = () => {
    clearTimeout(timer);
    timer = setTimeout(() => ac.abort(new RetryableError(`no data for ${ctx.timeoutMs / 1000} s`)), ctx.timeoutMs);
  };
  alive();
  return {
    signal: ac.signal,
    alive,
    expired: () => expired,
    end: () => {
      clearTimeout(timer);
      clearTimeout(deadlineTimer);
      ctx.signal?.removeEventListener("abort", onOuterAbort);
    },
  };
}

/** fetch `url`, following up to MAX_REDIRECTS redirects by hand (so headers are decided per hop). */
async function fetchFollow(
  ctx: Ctx,
  attempt: Attempt,
  url: string,
  init: { method: string; extra?: Record<string, string> },
  stopAt?: (res: Response) => boolean,
): Promise<{ res: Response; url: string }> {
  for (let hop = 0; ; hop++) {
    const res = await ctx.fetch(url, {
      method: init.method,
      redirect: "manual",
      headers: { ...requestHeaders(url, ctx.endpoint, ctx.token), ...init.extra },
      signal: attempt.signal,
    });
    const location = res.headers.get("location");
    if (res.status < 300 || res.status > 399 || location === null || stopAt?.(res)) return { res, url };
    if (hop >= MAX_REDIRECTS) throw new RetryableError(`too many redirects (last: ${url})`);
    await res.body?.cancel();
    url = new URL(location, url).href;
  }
}

/** Run `fn` up to MAX_ATTEMPTS times while it fails with a network-ish error or stalls. */
async function withRetries<T>(ctx: Ctx, file: string, fn: (attempt: Attempt) => Promise<T>, deadline = Infinity): Promise<T> {
  for (let n = 1; ; n++) {
    const attempt = startAttempt(ctx, deadline);
    try {
      return await fn(attempt);
    } catch (e) {
      if (e instanceof HubError) throw e;
      if (ctx.signal?.aborted) throw ctx.signal.reason; // the caller's abort, not our stall timer
      if (attempt.expired()) throw deadlineError(ctx, file);
      if (n >= MAX_ATTEMPTS) throw networkError(ctx, file, e);
      await sleep(200 * n, undefined, { signal: ctx.signal });
    } finally {
      attempt.end();
    }
  }
}

interface RepoInfo {
  sha: string;
  files: string[];
}

/** GET /api/models/{repo}/revision/{rev}: the commit the revision points to and the file list. */
async function fetchRepoInfo(ctx: Ctx): Promise<RepoInfo> {
  const what = `file list (revision "${ctx.revision}")`;
  const url = `${ctx.endpoint}/api/models/${ctx.repoId}/revision/${encodeURIComponent(ctx.revision)}`;
  return withRetries(ctx, what, async (attempt) => {
    const { res } = await fetchFollow(ctx, attempt, url, { method: "GET", extra: { Accept: "application/json" } });
    if (isTransient(res.status)) throw new RetryableError(`HTTP ${res.status}`);
    if (!res.ok) throw httpError(ctx, what, res);
    const body = (await readJsonCapped(res, MAX_REPO_INFO_BYTES)) as { sha?: unknown; siblings?: unknown } | null;
    const siblings = Array.isArray(body?.siblings) ? (body!.siblings as { rfilename?: unknown }[]) : null;
    if (!body || typeof body.sha !== "string" || !isCommitSha(body.sha) || !siblings) {
      throw new HubError(
        "bad-response",
        ctx.repoId,
        what,
        `${ctx.repoId}: ${url} did not answer with {sha, siblings}; is HF_ENDPOINT (${ctx.endpoint}) a Hugging Face hub?`,
      );
    }
    return { sha: body.sha, files: siblings.map((s) => s.rfilename).filter((f): f is string => typeof f === "string") };
  });
}

interface FileMeta {
  /** Blob name: the ETag without quotes or W/ (sha256 for LFS files). */
  etag: string;
  size: number | undefined;
}

function normalizeEtag(etag: string): string {
  return etag.replace(/^W\//, "").replace(/"/g, "");
}

function resolveUrl(ctx: Ctx, commit: string, file: string): string {
  return `${ctx.endpoint}/${ctx.repoId}/resolve/${commit}/${file.split("/").map(encodeURIComponent).join("/")}`;
}

/**
 * HEAD the resolve URL. Relative redirects (renamed repos) are followed; the LFS redirect to the
 * CDN is not: its answer already carries X-Linked-Etag / X-Linked-Size for the real file.
 */
async function headFile(ctx: Ctx, commit: string, file: string): Promise<FileMeta> {
  return withRetries(ctx, file, async (attempt) => {
    const { res } = await fetchFollow(
      ctx,
      attempt,
      resolveUrl(ctx, commit, file),
      { method: "HEAD" },
      (r) => r.headers.has("x-linked-etag") || r.headers.has("x-repo-commit"),
    );
    if (isTransient(res.status)) throw new RetryableError(`HTTP ${res.status}`);
    if (res.status >= 400) throw httpError(ctx, file, res);
    const etag = res.headers.get("x-linked-etag") ?? res.headers.get("etag");
    if (!etag) {
      throw new HubError(
        "bad-response",
        ctx.repoId,
        file,
        `${ctx.repoId}: ${file}: the hub sent no ETag, so the file cannot be cached; is HF_ENDPOINT (${ctx.endpoint}) a Hugging Face hub?`,
      );
    }
    const sizeText = res.headers.get("x-linked-size") ?? res.headers.get("content-length");
    const size = sizeText === null ? undefined : Number(sizeText);
    return { etag: normalizeEtag(etag), size: size !== undefined && Number.isSafeInteger(size) ? size : undefined };
  });
}

/** One GET attempt: append to (206) or rewrite (200) the .incomplete file. Returns bytes on disk. */
async function fetchInto(
  ctx: Ctx,
  attempt: Attempt,
  url: string,
  file: string,
  part: string,
  have: number,
  meta: FileMeta,
  report: (done: number) => void,
): Promise<number> {
  const extra: Record<string, string> = have > 0 ? { Range: `bytes=${have}-` } : {};
  const { res } = await fetchFollow(ctx, attempt, url, { method: "GET", extra });
  if (res.status === 416) {
    // Our partial file does not fit the server's file: start over.
    await res.body?.cancel();
    rmSync(part, { force: true });
    throw new RetryableError(`range not satisfiable`);
  }
  if (isTransient(res.status)) throw new RetryableError(`HTTP ${res.status}`);
  if (!res.ok) throw httpError(ctx, file, res);
  let append = false;
  if (res.status === 206) {
    const m = /^bytes (\d+)-/.exec(res.headers.get("content-range") ?? "");
    if (!m || Number(m[1]) !== have) {
      await res.body?.cancel();
      rmSync(part, { force: true });
      throw new RetryableError(`server resumed at the wrong offset (${res.headers.get("content-range")})`);
    }
    append = true;
  } // 200: the server ignored Range and sends everything; rewrite from byte 0.
  const fh = await open(part, append ? "a" : "w");
  let done = append ? have : 0;
  const expected = expectedBytes(meta, res, done);
  const limit = expected ?? MAX_UNANNOUNCED_BYTES;
  try {
    if (res.body) {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        if (done + chunk.length > limit) {
          // never store more than was announced
          await res.body.cancel().catch(() => {});
          throw oversizeError(ctx, file, limit, expected !== undefined);
        }
        await fh.write(chunk);
        attempt.alive();
        done += chunk.length;
        report(done);
      }
    }
  } catch (e) {
    if (e instanceof HubError) rmSync(part, { force: true });
    throw e;
  } finally {
    await fh.close();
  }
  if (expected !== undefined && done < expected) throw new RetryableError(`connection closed after ${done} of ${expected} bytes`);
  return done;
}

// Two processes (say `generate` and `perplexity` started together, or one of ours and a Python
// `hf_hub_download`) must not both append to one .incomplete file. The lock is huggingface_hub's
// own lock file, {cache}/.locks/models--owner--name/{etag}.lock (see blobLockPath). We create it
// exclusively, write "pid@host" into it and keep its mtime fresh while data flows; the others
// wait for it to go. A lock whose owner died is taken over: at once when its pid (on this machine)
// no longer exists, else once untouched for LOCK_STALE_MS.
//
// huggingface_hub locks the same file with flock(2) (the filelock package), which Node cannot
// take, and leaves it behind, empty, when done. So an EMPTY lock file is Python's: we treat it as
// held while Python's blobs/{etag}.incomplete is still being written (modified within
// LOCK_STALE_MS), and as a leftover otherwise. Python in turn cannot see our lock, but it writes
// the same .incomplete file only after a HEAD request and appends from its current size; two
// writers at once would fail the size/sha256 check at the end, never produce a wrong blob.
const LOCK_STALE_MS = 60_000;
const LOCK_TOUCH_MS = 10_000;
const LOCK_POLL_MS = 200;

interface BlobLock {
  path: string;
  lastTouch: number;
}

/**
 * The lock file huggingface_hub uses for blob {etag} of the repo stored at `storage`
 * ({cache}/models--owner--name): {cache}/.locks/models--owner--name/{etag}.lock.
 */
export function blobLockPath(storage: string, etag: string): string {
  return join(dirname(storage), ".locks", basename(storage), `${etag}.lock`);
}

async function lockBlob(path: string, signal: AbortSignal | undefined, part: string): Promise<BlobLock> {
  const owner = `${process.pid}@${hostname()}`;
  mkdirSync(dirname(path), { recursive: true });
  for (;;) {
    signal?.throwIfAborted();
    try {
      writeFileSync(path, owner, { flag: "wx" }); // fails with EEXIST if someone holds it
      return { path, lastTouch: Date.now() };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
    }
    if (lockIsStale(path, part)) rmSync(path, { force: true });
    else await sleep(LOCK_POLL_MS, undefined, { signal });
  }
}

function recentlyModified(path: string): boolean {
  try {
    return Date.now() - statSync(path).mtimeMs < LOCK_STALE_MS;
  } catch {
    return false;
  }
}

function lockIsStale(path: string, part: string): boolean {
  try {
    const text = readFileSync(path, "utf8");
    if (text === "") return !recentlyModified(part); // huggingface_hub's (flock) lock file: see above
    const [pid, host] = text.split("@");
    if (host === hostname() && !processAlive(Number(pid))) return true;
    return Date.now() - statSync(path).mtimeMs > LOCK_STALE_MS;
  } catch {
    return false; // released meanwhile: just try again
  }
}

function processAlive(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0); // signal 0: existence check only
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM"; // exists, but not ours
  }
}

function touchLock(lock: BlobLock): void {
  const now = Date.now();
  if (now - lock.lastTouch < LOCK_TOUCH_MS) return;
  lock.lastTouch = now;
  try {
    utimesSync(lock.path, now / 1000, now / 1000);
  } catch {
    // lock taken over after a long stall; the checks at the end still protect the blob
  }
}

/** Download `file` into blobs/{etag}: resumable, verified, renamed into place only when right. */
async function downloadBlob(ctx: Ctx, commit: string, file: string, meta: FileMeta, blob: string): Promise<void> {
  const part = `${blob}.incomplete`;
  mkdirSync(dirname(blob), { recursive: true });
  const lock = await lockBlob(blobLockPath(ctx.storage, meta.etag), ctx.signal, part);
  try {
    if (isFile(blob) && (meta.size === undefined || statSync(blob).size === meta.size)) return; // done by another process meanwhile
    // A part left by an earlier, interrupted run is resumed; if the result then fails the check,
    // that old part may be the culprit, so we start over from zero once before giving up.
    const leftover = isFile(part) && statSync(part).size > 0;
    for (let pass = 0; ; pass++) {
      const problem = await fetchAndVerify(ctx, commit, file, meta, part, lock);
      if (problem === undefined) break;
      rmSync(part, { force: true });
      if (!(leftover && pass === 0)) throw problem;
    }
    renameSync(part, blob);
  } finally {
    rmSync(lock.path, { force: true });
  }
}

/** Fill `part` (resuming, with retries) and check it; returns the verification error, if any. */
async function fetchAndVerify(
  ctx: Ctx,
  commit: string,
  file: string,
  meta: FileMeta,
  part: string,
  lock: BlobLock,
): Promise<HubError | undefined> {
  const bar = ctx.quiet ? undefined : createProgressBar({ label: file, total: meta.size, unit: "bytes" });
  const report = (done: number) => {
    touchLock(lock);
    bar?.update(done);
    ctx.progress?.({ repoId: ctx.repoId, file, done, total: meta.size });
  };
  if (meta.size === undefined && digestKind(meta.etag) === undefined) {
    // Neither a length nor a checksum: a cut response would look complete. Never cache that.
    return new HubError(
      "bad-response",
      ctx.repoId,
      file,
      `${ctx.repoId}: ${file}: the hub announced neither a size nor a checksum ETag (${JSON.stringify(meta.etag)}), so a complete ` +
        `download cannot be told from a cut one; refusing to cache it. Is HF_ENDPOINT (${ctx.endpoint}) a Hugging Face hub?`,
    );
  }
  const deadline = Date.now() + downloadDeadlineMs(ctx, meta);
  try {
    await withRetries(
      ctx,
      file,
      async (attempt) => {
        let have = isFile(part) ? statSync(part).size : 0;
        if (meta.size !== undefined && have > meta.size) {
          rmSync(part, { force: true });
          have = 0;
        }
        if (meta.size !== undefined && have === meta.size) return; // finished earlier, only unverified
        await fetchInto(ctx, attempt, resolveUrl(ctx, commit, file), file, part, have, meta, report);
      },
      deadline,
    );
  } finally {
    bar?.done();
  }

  const got = statSync(part).size;
  if (meta.size !== undefined && got !== meta.size) {
    return new HubError(
      "size",
      ctx.repoId,
      file,
      `${ctx.repoId}: ${file}: downloaded ${got} bytes but the hub announced ${meta.size}; the partial file was removed, try again.`,
    );
  }
  const kind = digestKind(meta.etag);
  if (kind !== undefined) {
    // LFS files are named by their sha256, the others by their git blob id: check the bytes really are that file.
    const digest = kind === "sha256" ? await sha256File(part) : await gitBlobSha1File(part);
    if (digest !== meta.etag) {
      return new HubError(
        "checksum",
        ctx.repoId,
        file,
        `${ctx.repoId}: ${file}: ${kind} mismatch (expected ${meta.etag}, got ${digest}); the corrupt download was removed, try again.`,
      );
    }
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// The entry point

/**
 * Make `repoId` at `revision` available in the HF cache and return its snapshot folder
 * (…/models--owner--name/snapshots/{commit}), ready for the checkpoint loader.
 */
export async function resolveHubModel(repoId: string, opts: ResolveHubOptions = {}): Promise<string> {
  try {
    return await resolveHubModelRaw(repoId, opts);
  } catch (e) {
    throw cacheError(repoId, e);
  }
}

async function resolveHubModelRaw(repoId: string, opts: ResolveHubOptions): Promise<string> {
  const env = opts.env ?? process.env;
  if (!isRepoIdSyntax(repoId)) {
    throw new HubError(
      "invalid-id",
      repoId,
      undefined,
      `"${repoId}" is not a hub repository id: expected "owner/name" like "facebook/MobileLLM-125M".`,
    );
  }
  const revision = opts.revision ?? "main";
  assertSafeRepoPath(repoId, revision); // it names refs/{revision}: no "..", no absolute path
  const cacheDir = opts.cacheDir ?? hubCacheDir(env);
  const storage = join(cacheDir, repoFolderName(repoId));
  for (const f of opts.files ?? []) assertSafeRepoPath(repoId, f);

  // 1. The cache alone, when it is complete for this revision (no network at all).
  const cached = lookupCachedSnapshot(cacheDir, repoId, revision, opts.files);
  const offline = opts.offline ?? isTrue(env.HF_HUB_OFFLINE);
  if (cached.snapshotDir && cached.missing.length === 0 && !(opts.forceRefresh && !offline)) return cached.snapshotDir;
  if (offline && !opts.files) {
    // A cache written by Python (snapshot_download, hf_hub_download) has no .no_exist markers for
    // files it never asked about: offline, what counts is whether the model can be loaded.
    const usable = lookupLoadableSnapshot(cacheDir, repoId, revision);
    if (usable.snapshotDir && usable.missing.length === 0) return usable.snapshotDir;
    cached.missing = usable.missing;
  }
  if (offline) {
    throw new HubError(
      "offline",
      repoId,
      cached.missing[0],
      `${repoId}: offline mode (HF_HUB_OFFLINE or the offline option) and revision "${revision}" is not complete in the cache ` +
        `${storage}: missing ${cached.missing.join(", ")}. Download it once with network access (unset HF_HUB_OFFLINE).`,
    );
  }

  const ctx: Ctx = {
    repoId,
    revision,
    storage,
    endpoint: (opts.endpoint ?? env.HF_ENDPOINT ?? DEFAULT_ENDPOINT).replace(/\/+$/, ""),
    token: opts.token ?? (env.HF_TOKEN || env.HUGGING_FACE_HUB_TOKEN || undefined),
    fetch: opts.fetch ?? globalThis.fetch,
    signal: opts.signal,
    timeoutMs: opts.timeoutMs ?? (Number(env.HF_HUB_DOWNLOAD_TIMEOUT) > 0 ? Number(env.HF_HUB_DOWNLOAD_TIMEOUT) * 1000 : 30_000),
    deadlineMs: opts.deadlineMs,
    quiet: opts.quiet ?? false,
    progress: opts.progress,
    missing: cached.missing,
  };

  // 2. Which commit, and which files.
  const info = await fetchRepoInfo(ctx);
  const commit = info.sha;
  if (revision !== commit) writeRef(storage, revision, commit);
  let files: string[];
  if (opts.files) {
    files = [...opts.files];
  } else {
    if (!info.files.includes("config.json") || !hasWeights(info.files)) {
      throw new HubError(
        "not-found",
        repoId,
        info.files.includes("config.json") ? WEIGHT_FILES.join(" / ") : "config.json",
        `${repoId}: not a loadable model at revision "${revision}": it needs config.json and one of ${WEIGHT_FILES.join(", ")}; ` +
          `the repository has: ${info.files.slice(0, 20).join(", ")}${info.files.length > 20 ? ", ..." : ""}.`,
      );
    }
    files = chooseModelFiles(info.files);
    for (const f of MODEL_CANDIDATES) if (!info.files.includes(f)) markAbsent(storage, commit, f);
  }

  // 3. Each file: reuse its blob if some revision already has it, else download; then link.
  const snapshotDir = join(storage, "snapshots", commit);
  for (let i = 0; i < files.length; i++) {
    const file = files[i]!;
    const snapPath = join(snapshotDir, file);
    if (!isFile(snapPath)) {
      const meta = await headFile(ctx, commit, file);
      assertUsableEtag(ctx, file, meta.etag);
      const blob = join(storage, "blobs", meta.etag);
      if (!(isFile(blob) && (meta.size === undefined || statSync(blob).size === meta.size))) {
        await downloadBlob(ctx, commit, file, meta, blob);
      }
      linkIntoSnapshot(blob, snapPath);
    }
    if (file.endsWith(".index.json")) {
      let shards: string[];
      try {
        shards = shardsOfIndex(readFileSync(snapPath, "utf8"), file);
      } catch (e) {
        throw new HubError("bad-response", repoId, file, `${repoId}: ${(e as Error).message}`);
      }
      for (const s of shards) {
        assertSafeRepoPath(repoId, s);
        if (!files.includes(s)) files.push(s);
      }
    }
  }
  return snapshotDir;
}

// ---------------------------------------------------------------------------------------------
// Integrity and bounds: what a download must match before it is cached, how large and how slow
// it may be, and file-system failures as errors that say what to do.

/** The repo API's answer lists file names: far below this even for repositories with 100k files. */
const MAX_REPO_INFO_BYTES = 64 << 20;

/**
 * A JSON body read up to `max` bytes (null if longer or not JSON): a hostile endpoint cannot fill
 * memory. The whole answer must arrive within the attempt's idle timeout (it is not renewed here).
 */
async function readJsonCapped(res: Response, max: number): Promise<unknown> {
  const chunks: Uint8Array[] = [];
  let n = 0;
  if (res.body) {
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      n += chunk.length;
      if (n > max) {
        await res.body.cancel().catch(() => {});
        return null;
      }
      chunks.push(chunk);
    }
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString("utf8"));
  } catch {
    return null;
  }
}

/** Most bytes stored for a file whose size neither HEAD nor GET announced (config and index files are kilobytes). */
const MAX_UNANNOUNCED_BYTES = 64 << 20;
/** The slowest average rate a download may keep up before its deadline ends it. */
const MIN_BYTES_PER_SECOND = 64 << 10;

/** How long one file may take, all attempts together: the idle timeout plus the file at 64 KiB/s. */
export function downloadDeadlineMs(ctx: { timeoutMs: number; deadlineMs: number | undefined }, meta: { size: number | undefined }): number {
  return ctx.deadlineMs ?? ctx.timeoutMs + (1000 * (meta.size ?? MAX_UNANNOUNCED_BYTES)) / MIN_BYTES_PER_SECOND;
}

function deadlineError(ctx: Ctx, file: string): HubError {
  return new HubError(
    "network",
    ctx.repoId,
    file,
    `${ctx.repoId}: ${file}: the download did not finish by its deadline (the idle timeout plus the file at 64 KiB/s, or deadlineMs); ` +
      `the server at ${ctx.endpoint} is too slow or trickling. Try again later, or allow more time with deadlineMs.`,
  );
}

/** The bytes this response should bring the file to: the hub's announced size, else a 200's Content-Length. */
function expectedBytes(meta: FileMeta, res: Response, have: number): number | undefined {
  if (meta.size !== undefined) return meta.size;
  const length = Number(res.headers.get("content-length") ?? NaN);
  if (!Number.isSafeInteger(length) || length < 0) return undefined;
  return res.status === 206 ? have + length : length;
}

function oversizeError(ctx: Ctx, file: string, limit: number, announced: boolean): HubError {
  return new HubError(
    "size",
    ctx.repoId,
    file,
    announced
      ? `${ctx.repoId}: ${file}: the server sent more than the ${limit} bytes it announced; the download was stopped and removed, try again.`
      : `${ctx.repoId}: ${file}: the server announced no size and sent more than ${limit} bytes, far more than such a file holds; the download was stopped and removed.`,
  );
}

/** Which digest an ETag is: sha256 (LFS files), a git blob sha1 (the others), or neither. */
function digestKind(etag: string): "sha256" | "git blob sha1" | undefined {
  return /^[0-9a-f]{64}$/.test(etag) ? "sha256" : /^[0-9a-f]{40}$/.test(etag) ? "git blob sha1" : undefined;
}

/** Git's blob id of a file: sha1 of "blob {size}\0" followed by the bytes. */
async function gitBlobSha1File(path: string): Promise<string> {
  const hash = createHash("sha1").update(`blob ${statSync(path).size}\0`);
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

/** The ETag names the blob file: it must be a short plain name (the hub's are hex digests). */
function assertUsableEtag(ctx: Ctx, file: string, etag: string): void {
  if (!/^[A-Za-z0-9._-]{1,128}$/.test(etag) || etag === "." || etag === "..") {
    throw new HubError(
      "bad-response",
      ctx.repoId,
      file,
      `${ctx.repoId}: ${file}: the hub's ETag (${etag.length} characters: ${JSON.stringify(etag.slice(0, 80))}${etag.length > 80 ? "..." : ""}) ` +
        `cannot name a cache file; is HF_ENDPOINT (${ctx.endpoint}) a Hugging Face hub?`,
    );
  }
}

/** A file-system failure while filling the cache, as a HubError naming the path and what to do. */
function cacheError(repoId: string, e: unknown): unknown {
  const err = e as NodeJS.ErrnoException;
  if (e instanceof HubError || typeof err?.code !== "string" || typeof err.syscall !== "string") return e;
  const path = err.path ?? "the cache folder";
  const why =
    err.code === "ENOSPC"
      ? "the disk is full"
      : err.code === "EACCES" || err.code === "EPERM" || err.code === "EROFS"
        ? "it is not writable"
        : err.code === "ENOTDIR" || err.code === "EEXIST" || err.code === "EISDIR"
          ? "a file or folder is in the way"
          : err.code === "ENAMETOOLONG"
            ? "the name is too long for the file system"
            : err.message;
  return new HubError(
    "cache",
    repoId,
    undefined,
    `${repoId}: cannot write the download cache at ${path} (${why}; ${err.code}). ` +
      `Fix or remove that path, or point HF_HUB_CACHE at a writable folder.`,
  );
}
