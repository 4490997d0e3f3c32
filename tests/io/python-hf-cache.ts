// A Hugging Face cache laid out exactly as Python's huggingface_hub writes it (its "Manage
// cache" / "Understand caching" docs, file_download.py), for tests that must not need Python:
//
//   {cache}/models--{owner}--{name}/refs/main               the commit sha, no newline
//   {cache}/models--{owner}--{name}/blobs/{etag}            sha256 for LFS files, git blob sha1 otherwise
//   {cache}/models--{owner}--{name}/snapshots/{commit}/{f}  relative symlink ../../blobs/{etag}
//   {cache}/.locks/models--{owner}--{name}/{etag}.lock      empty; filelock leaves it after release
//
// and nothing else: hf_hub_download / snapshot_download(allow_patterns=...) write no .no_exist
// markers for files they never asked about.
import { mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gitBlobSha1, sha256 } from "./hub-fake.js";

export interface PyCacheFile {
  name: string;
  data: Buffer;
  lfs: boolean;
}

/** Write `files` of `repoId` at `commit` (ref "main") as huggingface_hub does; returns blob etags by name. */
export function writePythonCache(cacheDir: string, repoId: string, commit: string, files: PyCacheFile[]): Record<string, string> {
  const folder = `models--${repoId.split("/").join("--")}`;
  const storage = join(cacheDir, folder);
  const etags: Record<string, string> = {};
  mkdirSync(join(storage, "refs"), { recursive: true });
  writeFileSync(join(storage, "refs", "main"), commit);
  for (const f of files) {
    const etag = f.lfs ? sha256(f.data) : gitBlobSha1(f.data);
    etags[f.name] = etag;
    mkdirSync(join(storage, "blobs"), { recursive: true });
    writeFileSync(join(storage, "blobs", etag), f.data);
    const snap = join(storage, "snapshots", commit, f.name);
    mkdirSync(join(snap, ".."), { recursive: true });
    symlinkSync(join("..", "..", "blobs", etag), snap);
    mkdirSync(join(cacheDir, ".locks", folder), { recursive: true });
    writeFileSync(join(cacheDir, ".locks", folder, `${etag}.lock`), "");
  }
  return etags;
}
