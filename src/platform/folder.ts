// A model folder, wherever it is: config.json, the weights, tokenizer.model... opened by name.
// Implementations: mapFolder here (file name -> Blob/bytes: dropped files, a Cache Storage hub
// snapshot), urlFolder (url.ts: a base URL), dirFolder (node.ts: a directory on disk).

import { bytesSource, isFileBytes, type ByteSource, type FileBytes } from "./byte-source.js";

export interface ModelFolder {
  /** What to call it in errors: a path, a URL, or "files (a, b, ...)". */
  readonly name: string;
  /** The file `file` (a name relative to the folder, "/"-separated), or null when the folder has none. */
  open(file: string): Promise<ByteSource | null>;
  /** How `file` inside the folder is named in errors (a path or URL). */
  nameOf(file: string): string;
  /** The folder's file names, where the platform can list them (a directory, a map; not a URL). */
  list?(): Promise<string[]>;
}

/** A map of file names to their bytes, e.g. `{ "config.json": file1, "model.safetensors": file2 }`. */
export type ModelFiles = Readonly<Record<string, FileBytes>>;

/** Is `x` a ModelFiles map (a plain object whose values are all Blob/Uint8Array/ArrayBuffer)? */
export function isModelFiles(x: unknown): x is ModelFiles {
  if (typeof x !== "object" || x === null || Array.isArray(x) || x instanceof URL || isFileBytes(x)) return false;
  const values = Object.values(x);
  return values.length > 0 && values.every(isFileBytes);
}

/** A folder made of a ModelFiles map. A name may carry a folder ("sub/x"); a File's own name is not used. */
export function mapFolder(files: ModelFiles, name = `files (${Object.keys(files).join(", ")})`): ModelFolder {
  return {
    name,
    async open(file) {
      const data = Object.hasOwn(files, file) ? files[file] : undefined;
      return data === undefined ? null : bytesSource(data, file);
    },
    nameOf: (file) => file,
    list: async () => Object.keys(files),
  };
}

/** Open `file` of `folder` or fail with `error` (a sentence saying what to do). */
export async function openRequired(folder: ModelFolder, file: string, error: () => Error): Promise<ByteSource> {
  const src = await folder.open(file);
  if (src === null) throw error();
  return src;
}
