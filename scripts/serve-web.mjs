#!/usr/bin/env node
// `npm run web`: serve the package root on 127.0.0.1 for the browser demo (examples/web/).
//
// A small static file server (node:http, no dependencies): the right MIME types for .js, .wasm
// and .json, byte ranges (the model readers fetch checkpoint tensors with Range requests), and by
// default the two headers that make a page cross-origin isolated (COOP: same-origin, COEP:
// require-corp), so it gets SharedArrayBuffer and the threaded kernels. `--no-isolation` leaves
// them out: the page then runs the single-threaded build on ordinary wasm memory.
//
//   node scripts/serve-web.mjs [--port N] [--no-isolation]
//
// The tests import startServer() and run it on a random port.

import { createReadStream, statSync } from "node:fs";
import { createServer } from "node:http";
import { dirname, extname, join, resolve, sep } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";

export const PACKAGE_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");

const MIME = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json; charset=utf-8",
  ".map": "application/json; charset=utf-8",
  ".wasm": "application/wasm",
  ".md": "text/markdown; charset=utf-8",
  ".txt": "text/plain; charset=utf-8",
  ".ts": "text/plain; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
};

/** The Content-Type of a file name (checkpoints and anything unknown: raw bytes). */
export function mimeType(path) {
  return MIME[extname(path).toLowerCase()] ?? "application/octet-stream";
}

/**
 * The byte range [start, end] (inclusive) a Range header asks for in a file of `size` bytes;
 * null for no (or an unsupported multi-range) header, which serves the whole file; "unsatisfiable"
 * when the range lies outside the file.
 */
export function parseRange(header, size) {
  const m = /^bytes=(\d*)-(\d*)$/.exec((header ?? "").trim());
  if (!m || (m[1] === "" && m[2] === "")) return null;
  let start, end;
  if (m[1] === "") {
    // a suffix: the last N bytes
    const n = Number(m[2]);
    if (n === 0) return "unsatisfiable";
    start = Math.max(0, size - n);
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === "" ? size - 1 : Math.min(Number(m[2]), size - 1);
  }
  if (start >= size || start > end) return "unsatisfiable";
  return { start, end };
}

/**
 * Start serving. `root`: the folder served at "/" (default: the package root); `mounts`: more
 * folders under URL prefixes ({ "/fixtures/": dir }); `isolation`: send COOP/COEP (default true).
 * Resolves to { server, url, close() } once listening.
 */
export function startServer({ root = PACKAGE_ROOT, port = 0, isolation = true, mounts = {} } = {}) {
  const folders = [...Object.entries(mounts).map(([prefix, dir]) => [prefix, resolve(dir)]), ["/", resolve(root)]];
  const server = createServer((req, res) => {
    const headers = { "Cache-Control": "no-store", "Accept-Ranges": "bytes" };
    if (isolation) {
      headers["Cross-Origin-Opener-Policy"] = "same-origin";
      headers["Cross-Origin-Embedder-Policy"] = "require-corp";
      headers["Cross-Origin-Resource-Policy"] = "same-origin";
    }
    const fail = (status, message) => {
      res.writeHead(status, { ...headers, "Content-Type": "text/plain; charset=utf-8" });
      res.end(`${status} ${message}\n`);
    };
    if (req.method !== "GET" && req.method !== "HEAD") return fail(405, "only GET and HEAD");
    let pathname;
    try {
      pathname = decodeURIComponent(new URL(req.url ?? "/", "http://localhost").pathname);
    } catch {
      return fail(400, "bad URL");
    }
    const [prefix, dir] = folders.find(([p]) => pathname.startsWith(p));
    let file = resolve(dir, "." + sep + pathname.slice(prefix.length));
    if (file !== dir && !file.startsWith(dir + sep)) return fail(403, "outside the served folder");
    let stat;
    try {
      stat = statSync(file);
      if (stat.isDirectory()) {
        if (!pathname.endsWith("/")) {
          res.writeHead(301, { ...headers, Location: pathname + "/" });
          return res.end();
        }
        file = join(file, "index.html");
        stat = statSync(file);
      }
    } catch {
      return fail(404, `not found: ${pathname}`);
    }
    if (!stat.isFile()) return fail(404, `not found: ${pathname}`);
    const range = parseRange(req.headers.range, stat.size);
    if (range === "unsatisfiable") {
      res.writeHead(416, { ...headers, "Content-Range": `bytes */${stat.size}` });
      return res.end();
    }
    const { start, end } = range ?? { start: 0, end: stat.size - 1 };
    res.writeHead(range ? 206 : 200, {
      ...headers,
      "Content-Type": mimeType(file),
      "Content-Length": String(Math.max(0, end - start + 1)),
      ...(range ? { "Content-Range": `bytes ${start}-${end}/${stat.size}` } : {}),
    });
    if (req.method === "HEAD" || stat.size === 0) return res.end();
    createReadStream(file, { start, end })
      .on("error", () => res.destroy())
      .pipe(res);
  });
  return new Promise((resolvePromise, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => {
      const { port: actual } = server.address();
      resolvePromise({
        server,
        url: `http://127.0.0.1:${actual}`,
        close: () =>
          new Promise((r) => {
            server.closeAllConnections?.();
            server.close(() => r());
          }),
      });
    });
  });
}

async function main() {
  const { values } = parseArgs({
    options: {
      port: { type: "string", default: "8000" },
      "no-isolation": { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    console.log(
      "usage: node scripts/serve-web.mjs [--port N] [--no-isolation]\n\n" +
        "Serves the package root on 127.0.0.1 (the demo: /examples/web/), cross-origin isolated unless --no-isolation.",
    );
    return;
  }
  const port = Number(values.port);
  if (!(Number.isInteger(port) && port >= 0 && port < 65536)) {
    console.error(`serve-web: --port must be an integer 0..65535, got ${values.port}`);
    process.exit(2);
  }
  const isolation = !values["no-isolation"];
  const { url } = await startServer({ port, isolation }).catch((e) => {
    console.error(`serve-web: cannot listen on 127.0.0.1:${port}: ${e.message} (try --port 0 for any free port)`);
    process.exit(1);
  });
  console.log(`mobilellm web demo: ${url}/examples/web/`);
  console.log(
    isolation
      ? "cross-origin isolated (COOP/COEP): SharedArrayBuffer and threads available"
      : "without isolation (--no-isolation): no SharedArrayBuffer, the kernels run on one thread",
  );
  console.log("Ctrl-C stops the server.");
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) await main();
