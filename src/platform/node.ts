// The Node (and Deno, Bun) side of the platform layer: files and directories on disk as
// ByteSources and model folders. Only Node entry points (src/index.ts, src/load.ts, the CLI,
// training) import this module; the browser entry never reaches it.

import { closeSync, constants, fstatSync, openSync, readdirSync, readSync, statSync } from "node:fs";
import { join, relative, sep } from "node:path";
import { CheckpointError } from "../io/tensor-file.js";
import { outsideError, type ByteSource } from "./byte-source.js";
import type { ModelFolder } from "./folder.js";

/**
 * A regular file as a ByteSource: opened once (checked as openRegularFile does), read with
 * positioned reads straight into the destination, so a 3 GB checkpoint is never held twice.
 */
export function fileSource(path: string, what = "file"): ByteSource {
  const { fd, size } = openRegularFile(path, what);
  let open = true;
  return {
    name: path,
    size,
    async read(offset, dst, part = "data") {
      if (!open) throw new CheckpointError(path, `read of ${part} after close()`);
      if (offset < 0 || offset + dst.length > size) throw outsideError({ name: path, size }, offset, dst.length, part);
      readExactly(fd, dst, offset, path, part);
    },
    close() {
      if (open) closeSync(fd);
      open = false;
    },
  };
}

/** A directory on disk as a model folder. */
export function dirFolder(dir: string): ModelFolder {
  return {
    name: dir,
    async open(file) {
      const path = join(dir, file);
      try {
        statSync(path);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === "ENOENT" || (e as NodeJS.ErrnoException).code === "ENOTDIR") return null;
      }
      return fileSource(path, file); // a directory or FIFO of that name is an error naming it
    },
    nameOf: (file) => join(dir, file),
    async list() {
      const out: string[] = [];
      const walk = (d: string) => {
        for (const e of readdirSync(d, { withFileTypes: true })) {
          if (e.isDirectory()) walk(join(d, e.name));
          else out.push(relative(dir, join(d, e.name)).split(sep).join("/"));
        }
      };
      walk(dir);
      return out;
    },
  };
}

/**
 * Open `path` for reading, refusing anything but a regular file with a CheckpointError that names
 * it: a FIFO or device would block or never end (so it is opened non-blocking, then checked), a
 * directory is not a weights file, and a missing file or a bad name (NUL byte, too long) is the
 * caller's to fix. Returns the descriptor and the file's size.
 */
export function openRegularFile(path: string, what = "file"): { fd: number; size: number } {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0));
  } catch (e) {
    throw new CheckpointError(String(path).replace(/\0/g, "\\0"), fsProblem(e, what));
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) {
      throw new CheckpointError(
        path,
        `${st.isDirectory() ? "is a directory" : "is not a regular file (a FIFO, socket or device?)"}; expected the ${what} itself`,
      );
    }
    return { fd, size: st.size };
  } catch (e) {
    closeSync(fd);
    throw e;
  }
}

/** The whole of a small regular file (config, index, state JSON), refused above `maxBytes`. */
export function readRegularFile(path: string, what = "file", maxBytes = 64 << 20): Uint8Array {
  const { fd, size } = openRegularFile(path, what);
  try {
    if (size > maxBytes)
      throw new CheckpointError(path, `${size} bytes is far too large for a ${what}; the file is corrupt or not a ${what}`);
    const bytes = new Uint8Array(size);
    readExactly(fd, bytes, 0, path, `the ${what}`);
    return bytes;
  } finally {
    closeSync(fd);
  }
}

/** A file-system error as a sentence saying what to do. */
export function fsProblem(e: unknown, what: string): string {
  const code = (e as NodeJS.ErrnoException).code;
  switch (code) {
    case "ENOENT":
      return `${what} not found (missing or not yet downloaded: check the path, or download it again)`;
    case "EACCES":
    case "EPERM":
      return `${what} cannot be read: permission denied (check the file's permissions)`;
    case "ENAMETOOLONG":
      return `the name of this ${what} is too long for the file system; the name is corrupt`;
    case "ENOTDIR":
      return `a folder on the way to this ${what} is a file; check the path`;
    case "EISDIR":
      return `is a directory; expected the ${what} itself`;
    case "ELOOP":
      return `too many symbolic links on the way to this ${what}; check the path`;
    case "ERR_INVALID_ARG_VALUE":
    case "ERR_INVALID_ARG_TYPE":
      return `is not a valid file name (it contains a NUL byte?); the name is corrupt`;
    default:
      return `cannot open the ${what}: ${(e as Error).message}`;
  }
}

/** Read exactly dst.length bytes at `position` of an open file, or throw naming the file and `what`. */
export function readExactly(fd: number, dst: Uint8Array, position: number, file: string, what: string): void {
  let done = 0;
  while (done < dst.length) {
    // fs.readSync reads at most 2 GiB - 1 per call: larger reads are split
    const n = readSync(fd, dst, done, Math.min(dst.length - done, 1 << 30), position + done);
    if (n === 0) throw new CheckpointError(file, `file ends inside ${what} (truncated download? re-download the file)`);
    done += n;
  }
}
