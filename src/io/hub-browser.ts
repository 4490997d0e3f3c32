// The Hugging Face hub in a browser (or any runtime with fetch): a model repository downloaded
// with fetch and kept in the Cache Storage API, the browser's counterpart of hub.ts (which keeps
// the huggingface_hub cache on disk). It returns the files as a model folder of Blobs.
//
//   GET {endpoint}/api/models/{repo}/revision/{rev}?blobs=true
//        -> { sha, siblings: [{ rfilename, size, blobId, lfs?: { sha256, size } }] }
//   GET {endpoint}/{repo}/resolve/{commit}/{file}        (redirects to the CDN for LFS files)
//
// Cache entries (one cache, default "mobilellm-hub"), keyed by URL:
//   the repo listing of a revision   -> its JSON (what makes a later load work offline)
//   resolve/{commit}/{file}          -> the whole file, only once complete and checked
//   resolve/{commit}/{file}?part=N   -> the N-th downloaded piece of a file not yet complete: a
//                                       download that broke off resumes after the last piece
//                                       (`Range: bytes={have}-`), even after a page reload.
// A file is checked before it enters the cache: its size against the listing, and its sha256
// (LFS files) or git blob sha1 (small files) as the hub states them, as hub.ts does in Node.
// A revision whose listing and files are all cached loads without the network (forceRefresh asks
// the hub again).

import { mapFolder, type ModelFolder } from "../platform/folder.js";
import { readChunk } from "../platform/url.js";
import {
  chooseModelFiles,
  DEFAULT_ENDPOINT,
  hasWeights,
  HubError,
  isRepoIdSyntax,
  shardsOfIndex,
  type HubProgressEvent,
} from "./hub-files.js";

/** The part of the Cache interface used here (window.caches.open(...) gives one). */
export interface CacheLike {
  match(request: string): Promise<Response | undefined>;
  put(request: string, response: Response): Promise<void>;
  delete(request: string): Promise<boolean>;
}

/** The part of CacheStorage used here (`globalThis.caches`). */
export interface CacheStorageLike {
  open(name: string): Promise<CacheLike>;
}

export interface BrowserHubOptions {
  /** Branch, tag or 40-hex commit sha. Default "main". */
  revision?: string;
  /** Exact files to fetch instead of the default choice (see chooseModelFiles). */
  files?: string[];
  /** Hub URL (a mirror); default https://huggingface.co. */
  endpoint?: string;
  /** Access token (gated/private repos), sent as `Authorization: Bearer` to the endpoint. */
  token?: string;
  /** Never use the network: the revision must be cached completely. */
  offline?: boolean;
  /** Ask the hub which commit the revision points to even if the cache holds it completely. */
  forceRefresh?: boolean;
  /** Cache Storage to keep files in; default globalThis.caches. */
  caches?: CacheStorageLike;
  /** Name of the cache; default "mobilellm-hub". */
  cacheName?: string;
  /** fetch implementation (tests, proxies); default globalThis.fetch. */
  fetch?: typeof fetch;
  signal?: AbortSignal;
  progress?: (e: HubProgressEvent) => void;
  /** Bytes per stored piece of a download in progress (what a resumed download keeps); default 16 MiB. */
  pieceBytes?: number;
  /** Attempts per file when the connection breaks off or stalls (each resumes); default 4. */
  attempts?: number;
  /** An attempt that receives no data for this long is dropped (and retried, resuming); default 30 s. */
  timeoutMs?: number;
}

interface Sibling {
  rfilename: string;
  size?: number;
  blobId?: string;
  lfs?: { sha256?: string; size?: number };
}
interface RepoInfo {
  sha: string;
  siblings: Sibling[];
}

/** Download (or find in the cache) the model files of `repoId`, as a folder of Blobs. */
export async function resolveHubFolder(repoId: string, o: BrowserHubOptions = {}): Promise<ModelFolder> {
  if (!isRepoIdSyntax(repoId)) {
    throw new HubError(
      "invalid-id",
      repoId,
      undefined,
      `${repoId}: not a hub repository id; expected "owner/name", e.g. facebook/MobileLLM-125M`,
    );
  }
  const endpoint = (o.endpoint ?? DEFAULT_ENDPOINT).replace(/\/+$/, "");
  const revision = o.revision ?? "main";
  const storage = o.caches ?? (globalThis as { caches?: CacheStorageLike }).caches;
  if (!storage)
    throw new HubError(
      "cache",
      repoId,
      undefined,
      `${repoId}: this page has no Cache Storage (an insecure http:// origin other than localhost?); serve it over https, or pass a model folder URL instead`,
    );
  const cache = await storage.open(o.cacheName ?? "mobilellm-hub");
  const ctx: Ctx = { repoId, endpoint, cache, o, headers: o.token ? { Authorization: `Bearer ${o.token}` } : {} };
  const listingKey = `${endpoint}/api/models/${repoId}/revision/${encodeURIComponent(revision)}?blobs=true`;

  const cached = (await cachedJson(cache, listingKey)) as RepoInfo | undefined;
  if (cached && !o.forceRefresh) {
    const folder = await fromCache(ctx, cached);
    if (folder) return folder;
  }
  if (o.offline) {
    const folder = cached && (await fromCache(ctx, cached));
    if (folder) return folder;
    throw new HubError(
      "offline",
      repoId,
      undefined,
      `${repoId}@${revision}: offline and not (completely) in the cache; load it once with the network`,
    );
  }
  let info: RepoInfo;
  try {
    const res = await get(ctx, listingKey, undefined, undefined);
    if (!res.ok) throw httpError(ctx, undefined, res);
    info = parseListing(ctx, await res.text());
    await cache.put(listingKey, new Response(JSON.stringify(info), { headers: { "Content-Type": "application/json" } }));
  } catch (e) {
    // No network: a complete cached snapshot still loads.
    if (e instanceof HubError && e.code === "network" && cached) {
      const folder = await fromCache(ctx, cached);
      if (folder) return folder;
    }
    throw e;
  }
  const files = wantedFiles(ctx, info);
  const blobs: Record<string, Blob> = {};
  for (let i = 0; i < files.length; i++) {
    const file = files[i]!;
    blobs[file] = await fileBlob(ctx, info, file);
    if (!o.files && file.endsWith(".index.json")) {
      for (const shard of shardsOfIndex(await blobs[file]!.text(), file)) if (!files.includes(shard)) files.push(shard);
    }
  }
  return folderOf(ctx, info, blobs);
}

interface Ctx {
  repoId: string;
  endpoint: string;
  cache: CacheLike;
  o: BrowserHubOptions;
  headers: Record<string, string>;
}

function folderOf(ctx: Ctx, info: RepoInfo, blobs: Record<string, Blob>): ModelFolder {
  return { ...mapFolder(blobs, `${ctx.endpoint}/${ctx.repoId} (commit ${info.sha.slice(0, 12)})`), nameOf: (f) => `${ctx.repoId}/${f}` };
}

function fileUrl(ctx: Ctx, sha: string, file: string): string {
  return `${ctx.endpoint}/${ctx.repoId}/resolve/${sha}/${file.split("/").map(encodeURIComponent).join("/")}`;
}

function wantedFiles(ctx: Ctx, info: RepoInfo): string[] {
  const files = ctx.o.files ? [...ctx.o.files] : chooseModelFiles(info.siblings.map((s) => s.rfilename));
  if (!ctx.o.files && !info.siblings.some((s) => s.rfilename === "config.json")) {
    throw new HubError(
      "not-found",
      ctx.repoId,
      "config.json",
      `${ctx.repoId}: the repository has no config.json; is it a MobileLLM model?`,
    );
  }
  if (!ctx.o.files && !hasWeights(files)) {
    throw new HubError(
      "not-found",
      ctx.repoId,
      undefined,
      `${ctx.repoId}: the repository has no weights file (pytorch_model.bin or model.safetensors)`,
    );
  }
  return files;
}

/** The whole snapshot from the cache, or undefined when a file is missing. */
async function fromCache(ctx: Ctx, info: RepoInfo): Promise<ModelFolder | undefined> {
  let files: string[];
  try {
    files = wantedFiles(ctx, info);
  } catch {
    return undefined;
  }
  const blobs: Record<string, Blob> = {};
  for (let i = 0; i < files.length; i++) {
    const res = await ctx.cache.match(fileUrl(ctx, info.sha, files[i]!));
    if (!res) return undefined;
    blobs[files[i]!] = await res.blob();
    if (!ctx.o.files && files[i]!.endsWith(".index.json")) {
      for (const shard of shardsOfIndex(await blobs[files[i]!]!.text(), files[i]!)) if (!files.includes(shard)) files.push(shard);
    }
  }
  return folderOf(ctx, info, blobs);
}

async function cachedJson(cache: CacheLike, key: string): Promise<unknown> {
  const res = await cache.match(key);
  if (!res) return undefined;
  try {
    return JSON.parse(await res.text());
  } catch {
    return undefined;
  }
}

function parseListing(ctx: Ctx, text: string): RepoInfo {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new HubError(
      "bad-response",
      ctx.repoId,
      undefined,
      `${ctx.repoId}: the hub's repository listing is not JSON; check the endpoint (${ctx.endpoint})`,
    );
  }
  const j = json as { sha?: unknown; siblings?: unknown };
  if (typeof j.sha !== "string" || !/^[0-9a-f]{40}$/.test(j.sha) || !Array.isArray(j.siblings)) {
    throw new HubError(
      "bad-response",
      ctx.repoId,
      undefined,
      `${ctx.repoId}: the hub's repository listing lacks a commit sha or file list; check the endpoint (${ctx.endpoint})`,
    );
  }
  const siblings = (j.siblings as Sibling[]).filter(
    (s) => typeof s?.rfilename === "string" && !s.rfilename.split("/").some((p) => p === ".." || p === "." || p === ""),
  );
  return { sha: j.sha, siblings };
}

async function get(ctx: Ctx, url: string, file: string | undefined, range: string | undefined): Promise<Response> {
  const headers: Record<string, string> = { ...(url.startsWith(ctx.endpoint + "/") ? ctx.headers : {}) };
  if (range) headers.Range = range;
  try {
    return await (ctx.o.fetch ?? globalThis.fetch)(url, { headers, ...(ctx.o.signal ? { signal: ctx.o.signal } : {}) });
  } catch (e) {
    if (ctx.o.signal?.aborted) throw ctx.o.signal.reason;
    throw new HubError(
      "network",
      ctx.repoId,
      file,
      `${ctx.repoId}${file ? `/${file}` : ""}: cannot reach the hub at ${ctx.endpoint} (${(e as Error).message}); check the network, or load once online and then offline`,
    );
  }
}

function httpError(ctx: Ctx, file: string | undefined, res: Response): HubError {
  const what = `${ctx.repoId}${file ? `/${file}` : ""}`;
  if (res.status === 401 || res.status === 403)
    return new HubError(
      "unauthorized",
      ctx.repoId,
      file,
      `${what}: HTTP ${res.status}; a gated or private repository needs a token (hub: { token })`,
    );
  if (res.status === 404)
    return new HubError(
      "not-found",
      ctx.repoId,
      file,
      `${what}: not found on ${ctx.endpoint} (HTTP 404); check the repository id, revision and file name`,
    );
  return new HubError("http", ctx.repoId, file, `${what}: the hub answered HTTP ${res.status}; try again later`);
}

/** The file's bytes: from the cache, else downloaded (resuming stored pieces) and checked. */
async function fileBlob(ctx: Ctx, info: RepoInfo, file: string): Promise<Blob> {
  const url = fileUrl(ctx, info.sha, file);
  const sibling = info.siblings.find((s) => s.rfilename === file);
  if (!sibling) throw new HubError("not-found", ctx.repoId, file, `${ctx.repoId}/${file}: not in the repository at commit ${info.sha}`);
  const size = sibling.lfs?.size ?? sibling.size;
  const hit = await ctx.cache.match(url);
  if (hit) {
    const blob = await hit.blob();
    if (size === undefined || blob.size === size) return blob;
    await ctx.cache.delete(url); // not what the listing says: fetch it again
  }
  const blob = await download(ctx, url, file, size);
  const dropPieces = async () => {
    for (let i = 0; await ctx.cache.delete(`${url}?part=${i}`); i++);
  };
  try {
    await verify(ctx, file, blob, sibling);
  } catch (e) {
    await dropPieces(); // a corrupt download is not resumed: the next load starts over
    throw e;
  }
  await ctx.cache.put(url, new Response(blob, { headers: { "Content-Type": "application/octet-stream" } }));
  await dropPieces(); // no longer needed
  return blob;
}

async function download(ctx: Ctx, url: string, file: string, size: number | undefined): Promise<Blob> {
  const pieceBytes = ctx.o.pieceBytes ?? 16 << 20;
  const pieces: Blob[] = [];
  let have = 0;
  for (;;) {
    // pieces a previous download left
    const res = await ctx.cache.match(`${url}?part=${pieces.length}`);
    if (!res) break;
    const b = await res.blob();
    pieces.push(b);
    have += b.size;
  }
  const report = () => ctx.o.progress?.({ repoId: ctx.repoId, file, done: have, total: size });
  const attempts = ctx.o.attempts ?? 4;
  for (let attempt = 1; size === undefined || have < size; attempt++) {
    report();
    const res = await get(ctx, url, file, have > 0 ? `bytes=${have}-` : undefined);
    if (res.status === 416 && have > 0 && size === undefined) break; // the stored pieces were the whole file
    if (res.status !== 200 && res.status !== 206) throw httpError(ctx, file, res);
    let skip = res.status === 200 ? have : 0; // the server ignored the range: drop what we have
    if (res.status === 206 && !(res.headers.get("content-range") ?? "").startsWith(`bytes ${have}-`)) {
      throw new HubError(
        "bad-response",
        ctx.repoId,
        file,
        `${ctx.repoId}/${file}: the server answered a resumed download with the wrong range (${res.headers.get("content-range")})`,
      );
    }
    const reader = res.body!.getReader();
    let buf = new Uint8Array(pieceBytes),
      fill = 0;
    const store = async () => {
      if (fill === 0) return;
      const piece = new Blob([buf.slice(0, fill)]);
      await ctx.cache.put(`${url}?part=${pieces.length}`, new Response(piece));
      pieces.push(piece);
      have += fill;
      fill = 0;
      buf = new Uint8Array(pieceBytes);
      report();
    };
    try {
      for (;;) {
        const r = await readChunk(reader, ctx.o.timeoutMs ?? 30_000);
        if (r.done) break;
        let chunk = r.value;
        if (skip > 0) {
          const n = Math.min(skip, chunk.length);
          skip -= n;
          chunk = chunk.subarray(n);
        }
        if (size !== undefined && have + fill + chunk.length > size) {
          throw new HubError(
            "size",
            ctx.repoId,
            file,
            `${ctx.repoId}/${file}: the server sent more than the ${size} bytes the listing states; refusing it`,
          );
        }
        while (chunk.length > 0) {
          const n = Math.min(chunk.length, pieceBytes - fill);
          buf.set(chunk.subarray(0, n), fill);
          fill += n;
          chunk = chunk.subarray(n);
          if (fill === pieceBytes) await store();
        }
      }
      await store();
      if (size === undefined) break;
      if (have < size) throw new Error(`the connection closed after ${have} of ${size} bytes`);
    } catch (e) {
      if (e instanceof HubError || ctx.o.signal?.aborted) {
        await reader.cancel().catch(() => {});
        throw e instanceof HubError ? e : ctx.o.signal!.reason;
      }
      // a broken connection: keep the whole pieces, try again from there
      if (attempt >= attempts) {
        throw new HubError(
          "network",
          ctx.repoId,
          file,
          `${ctx.repoId}/${file}: the download broke off ${attempts} times (${(e as Error).message}); ${have} bytes are kept in the cache, load again to resume`,
        );
      }
    }
  }
  report();
  return new Blob(pieces);
}

async function hex(algorithm: "SHA-256" | "SHA-1", parts: (ArrayBuffer | Uint8Array<ArrayBuffer>)[]): Promise<string> {
  const bytes = new Uint8Array(await new Blob(parts).arrayBuffer());
  const digest = new Uint8Array(await crypto.subtle.digest(algorithm, bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The size the listing states, and the sha256 (LFS) or git blob sha1 (small files) it states. */
async function verify(ctx: Ctx, file: string, blob: Blob, s: Sibling): Promise<void> {
  const size = s.lfs?.size ?? s.size;
  if (size !== undefined && blob.size !== size) {
    throw new HubError(
      "size",
      ctx.repoId,
      file,
      `${ctx.repoId}/${file}: downloaded ${blob.size} bytes, the hub lists ${size}; load again to download it anew`,
    );
  }
  const bytes = await blob.arrayBuffer();
  let want: string | undefined,
    got: string | undefined,
    kind = "";
  if (s.lfs?.sha256 && /^[0-9a-f]{64}$/.test(s.lfs.sha256)) {
    [want, kind] = [s.lfs.sha256, "sha256"];
    got = await hex("SHA-256", [bytes]);
  } else if (s.blobId && /^[0-9a-f]{40}$/.test(s.blobId)) {
    [want, kind] = [s.blobId, "git blob sha1"];
    got = await hex("SHA-1", [new TextEncoder().encode(`blob ${blob.size}\0`), bytes]);
  }
  if (want !== undefined && got !== want) {
    throw new HubError(
      "checksum",
      ctx.repoId,
      file,
      `${ctx.repoId}/${file}: ${kind} ${got} differs from the hub's ${want}: the download is corrupt; load again to download it anew`,
    );
  }
}
