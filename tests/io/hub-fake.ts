// A tiny stand-in for the Hugging Face hub on 127.0.0.1, answering the URLs resolveHubModel uses
// the way huggingface.co does (see src/io/hub.ts): the repo API, HEAD/GET resolve with
// X-Repo-Commit / ETag / X-Linked-Etag / X-Linked-Size, a 302 to a "CDN" for LFS files, Range.
// Knobs let a test drop a connection mid-file, corrupt bytes, ignore Range or demand a token.
import { createHash } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface FakeFile {
  name: string;
  data: Buffer;
  /** Stored in LFS: ETag = sha256 (as X-Linked-Etag), served through a 302 to the CDN. */
  lfs: boolean;
}

export interface FakeRepo {
  id: string;
  /** revision name -> commit sha (40 hex). */
  refs: Record<string, string>;
  /** commit sha -> files at that commit. */
  commits: Record<string, FakeFile[]>;
  /** Requires `Authorization: Bearer {token}` (like a gated repo). */
  token?: string;
}

export interface LoggedRequest {
  server: "hub" | "cdn";
  method: string;
  path: string;
  range?: string;
  authorization?: string;
}

export interface FakeHub {
  url: string;
  cdnUrl: string;
  repos: FakeRepo[];
  log: LoggedRequest[];
  /** file sha256 -> bytes after which the next GET of it is cut (one shot per entry). */
  dropAfter: Map<string, number>;
  /** file sha256 -> bytes after which the next GET of it goes silent, connection left open (one shot). */
  stallAfter: Map<string, number>;
  /** sha256 of files served with one byte flipped. */
  corrupt: Set<string>;
  /** Answer Range requests with the whole file (200). */
  ignoreRange: boolean;
  /** Statuses to answer the next hub requests with, one each (e.g. 503 then 429). */
  failNext: number[];
  /** key -> extra bytes a GET sends after the file (no Content-Length), more than HEAD announced. */
  oversize: Map<string, number>;
  /** keys served without any Content-Length (HEAD and GET; chunked). */
  noLength: Set<string>;
  /** key -> milliseconds between single bytes: the GET trickles forever. */
  trickle: Map<string, number>;
  /** file name -> ETag sent instead of the git blob id (non-LFS files). */
  etag: Map<string, string>;
  close(): Promise<void>;
}

export const sha256 = (b: Buffer) => createHash("sha256").update(b).digest("hex");
/** Git's blob id: sha1 of "blob {size}\0" + content (the hub's ETag for non-LFS files). */
export const gitBlobSha1 = (b: Buffer) => createHash("sha1").update(`blob ${b.length}\0`).update(b).digest("hex");

function listen(server: Server): Promise<string> {
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`));
  });
}

/** Start the fake hub; with `separateCdn` the CDN is a second server (another origin). */
export async function startFakeHub(repos: FakeRepo[], opts: { separateCdn?: boolean } = {}): Promise<FakeHub> {
  const blobs = new Map<string, Buffer>(); // sha256 -> data, what the CDN serves
  for (const r of repos) for (const files of Object.values(r.commits)) for (const f of files) if (f.lfs) blobs.set(sha256(f.data), f.data);

  const hub: FakeHub = {
    url: "",
    cdnUrl: "",
    repos,
    log: [],
    dropAfter: new Map(),
    stallAfter: new Map(),
    corrupt: new Set(),
    ignoreRange: false,
    failNext: [],
    oversize: new Map(),
    noLength: new Set(),
    trickle: new Map(),
    etag: new Map(),
    close: async () => {},
  };

  const logReq = (server: "hub" | "cdn", req: IncomingMessage) => {
    hub.log.push({
      server,
      method: req.method ?? "",
      path: req.url ?? "",
      range: req.headers.range,
      authorization: req.headers.authorization,
    });
  };

  const fail = (res: ServerResponse, status: number, code: string) => {
    res.writeHead(status, { "X-Error-Code": code, "Content-Type": "application/json" });
    res.end(JSON.stringify({ error: code }));
  };

  /** Send `data` honouring Range, possibly cut or corrupted. */
  const sendBytes = (req: IncomingMessage, res: ServerResponse, data: Buffer, headers: Record<string, string>, key: string) => {
    if (hub.corrupt.has(key)) {
      data = Buffer.from(data);
      data[data.length >> 1]! ^= 0xff;
    }
    let start = 0;
    let status = 200;
    const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? "");
    if (m && !hub.ignoreRange) {
      start = Number(m[1]);
      if (start >= data.length) {
        res.writeHead(416, { "Content-Range": `bytes */${data.length}` });
        res.end();
        return;
      }
      status = 206;
      headers["Content-Range"] = `bytes ${start}-${data.length - 1}/${data.length}`;
    }
    const body = data.subarray(start);
    const sized = !hub.noLength.has(key) && !hub.oversize.has(key) && !hub.trickle.has(key);
    res.writeHead(status, {
      ...headers,
      ...(sized || (req.method === "HEAD" && !hub.noLength.has(key)) ? { "Content-Length": String(body.length) } : {}),
      "Accept-Ranges": "bytes",
    });
    if (req.method === "HEAD") {
      res.end();
      return;
    }
    const extra = hub.oversize.get(key);
    if (extra !== undefined) {
      res.write(body);
      res.end(Buffer.alloc(extra, 0x41));
      return;
    }
    const every = hub.trickle.get(key);
    if (every !== undefined) {
      let i = 0;
      const timer = setInterval(() => {
        if (res.destroyed) return clearInterval(timer);
        res.write(body.subarray(i % body.length, (i % body.length) + 1));
        i++;
      }, every);
      res.on("close", () => clearInterval(timer));
      return;
    }
    const cut = hub.dropAfter.get(key);
    if (cut !== undefined && cut < body.length) {
      hub.dropAfter.delete(key);
      // Send the first `cut` bytes, then kill the connection after they are flushed.
      res.write(body.subarray(0, cut), () => res.socket?.destroy());
      return;
    }
    const stall = hub.stallAfter.get(key);
    if (stall !== undefined && stall < body.length) {
      hub.stallAfter.delete(key);
      res.write(body.subarray(0, stall)); // ...and never another byte (closed in close())
      return;
    }
    res.end(body);
  };

  const hubHandler = (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? "/", "http://x");
    const path = decodeURIComponent(url.pathname);
    if (path.startsWith("/cdn/") && !opts.separateCdn) return cdnHandler(req, res);
    logReq("hub", req);
    const status = hub.failNext.shift();
    if (status !== undefined) return fail(res, status, "Busy");
    const api = /^\/api\/models\/([^/]+\/[^/]+)\/revision\/(.+)$/.exec(path);
    const resolve = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(path);
    const repoId = api?.[1] ?? resolve?.[1];
    const repo = repos.find((r) => r.id === repoId);
    if (!repo) return fail(res, 404, "RepoNotFound");
    if (repo.token && req.headers.authorization !== `Bearer ${repo.token}`) return fail(res, 401, "GatedRepo");
    const rev = (api?.[2] ?? resolve?.[2])!;
    const commit = repo.commits[rev] ? rev : repo.refs[rev];
    if (!commit) return fail(res, 404, "RevisionNotFound");
    const files = repo.commits[commit]!;
    if (api) {
      res.writeHead(200, { "Content-Type": "application/json" });
      // ?blobs=true (what the browser client asks): sizes, git blob ids and LFS sha256, as the hub lists them
      const blobs = url.searchParams.get("blobs") === "true";
      res.end(
        JSON.stringify({
          id: repo.id,
          sha: commit,
          siblings: files.map((f) =>
            blobs
              ? {
                  rfilename: f.name,
                  size: f.data.length,
                  blobId: gitBlobSha1(f.data),
                  ...(f.lfs ? { lfs: { sha256: sha256(f.data), size: f.data.length } } : {}),
                }
              : { rfilename: f.name },
          ),
        }),
      );
      return;
    }
    const file = files.find((f) => f.name === resolve![3]);
    if (!file) return fail(res, 404, "EntryNotFound");
    if (file.lfs) {
      const sha = sha256(file.data);
      res.writeHead(302, {
        Location: `${hub.cdnUrl}/cdn/${sha}?signature=abc`,
        ETag: `"redirect-etag-${sha.slice(0, 8)}"`,
        "X-Linked-Etag": `"${sha}"`,
        "X-Linked-Size": String(file.data.length),
        "X-Repo-Commit": commit,
        "Content-Length": "0",
      });
      res.end();
      return;
    }
    sendBytes(
      req,
      res,
      file.data,
      { ETag: `"${hub.etag.get(file.name) ?? gitBlobSha1(file.data)}"`, "X-Repo-Commit": commit },
      gitBlobSha1(file.data),
    );
  };

  const cdnHandler = (req: IncomingMessage, res: ServerResponse) => {
    logReq("cdn", req);
    const sha = /^\/cdn\/([0-9a-f]{64})/.exec(req.url ?? "")?.[1];
    const data = sha ? blobs.get(sha) : undefined;
    if (!sha || !data) return fail(res, 404, "NoSuchKey");
    sendBytes(req, res, data, { ETag: `"cdn-${sha.slice(0, 8)}"` }, sha);
  };

  const servers: Server[] = [createServer(hubHandler)];
  hub.url = await listen(servers[0]!);
  hub.cdnUrl = hub.url;
  if (opts.separateCdn) {
    servers.push(createServer((req, res) => cdnHandler(req, res)));
    hub.cdnUrl = await listen(servers[1]!);
  }
  hub.close = async () => {
    for (const s of servers) {
      s.closeAllConnections();
      await new Promise<void>((r) => s.close(() => r()));
    }
  };
  return hub;
}
