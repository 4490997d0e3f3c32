// What the Hugging Face hub client needs in every runtime: repo id syntax, which files make a
// MobileLLM model, the shards an index names. Used by the Node client (hub.ts, the cache on disk)
// and the browser's (hub-browser.ts, the Cache Storage API).

import { WEIGHT_FILES } from "./checkpoint.js";

export { WEIGHT_FILES };
export const DEFAULT_ENDPOINT = "https://huggingface.co";

/** Reported while a file downloads (Node: also shown unless `quiet`). */
export interface HubProgressEvent {
  repoId: string;
  file: string;
  /** Bytes of the file downloaded so far (including a resumed part). */
  done: number;
  /** File size, when the hub told us. */
  total: number | undefined;
}

export type HubErrorCode =
  | "invalid-id"
  | "unauthorized"
  | "not-found"
  | "network"
  | "offline"
  | "size"
  | "checksum"
  | "http"
  | "bad-response"
  | "cache";

/** Every failure of resolveHubModel: the message names the repo and file and says what to do. */
export class HubError extends Error {
  constructor(
    readonly code: HubErrorCode,
    readonly repoId: string,
    readonly file: string | undefined,
    message: string,
  ) {
    super(message);
    this.name = "HubError";
  }
}

const REPO_PART = /^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?$/;

/** "owner/name" spelled as the hub allows: letters, digits, '-', '_', '.', no "--" or "..". */
export function isRepoIdSyntax(s: string): boolean {
  const parts = s.split("/");
  return parts.length === 2 && parts.every((p) => REPO_PART.test(p) && !p.includes("--") && !p.includes(".."));
}

/** A full git commit id: 40 lowercase hex digits. */
export function isCommitSha(rev: string): boolean {
  return /^[0-9a-f]{40}$/.test(rev);
}

// ---------------------------------------------------------------------------------------------
// Which files make a MobileLLM model

/** Small files fetched when the repo has them. */
export const OPTIONAL_FILES = ["tokenizer.model", "generation_config.json"] as const;
/** Every name the default choice considers (used to tell "not cached" from "not in the repo"). */
export const MODEL_CANDIDATES: readonly string[] = ["config.json", ...OPTIONAL_FILES, ...WEIGHT_FILES];

/**
 * The default files to download, given the repo's file list (`siblings[].rfilename`):
 *   - config.json (always; a model repo without it is an error),
 *   - tokenizer.model and generation_config.json when listed,
 *   - EVERY listed weight file among pytorch_model.bin, model.safetensors and their
 *     *.index.json (the shards an index names are added after it is downloaded).
 * Both formats are fetched on purpose: the loader picks the complete one. Meta's MobileLLM
 * repos ship pytorch_model.bin, while the hub's auto-converted model.safetensors lacks the
 * shared embedding (it is stored once, as lm_head) and cannot be loaded alone.
 */
export function chooseModelFiles(listed: readonly string[]): string[] {
  const has = new Set(listed);
  const files = ["config.json"];
  for (const f of OPTIONAL_FILES) if (has.has(f)) files.push(f);
  for (const f of WEIGHT_FILES) if (has.has(f)) files.push(f);
  return files;
}

/** Does the list hold a weights file? */
export function hasWeights(files: readonly string[]): boolean {
  return files.some((f) => WEIGHT_FILES.includes(f));
}

/** Shard file names listed by a sharded-checkpoint index (`{ weight_map: { tensor: shard } }`). */
export function shardsOfIndex(indexJsonText: string, indexName = "index.json"): string[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(indexJsonText);
  } catch (e) {
    throw new Error(`${indexName}: not valid JSON (${(e as Error).message})`);
  }
  const map = (parsed as { weight_map?: unknown }).weight_map;
  if (typeof map !== "object" || map === null) throw new Error(`${indexName}: no "weight_map" object`);
  const shards = new Set<string>();
  for (const v of Object.values(map)) {
    if (typeof v !== "string") throw new Error(`${indexName}: weight_map values must be file names`);
    shards.add(v);
  }
  // Shards sit next to their index (same folder in the repo).
  const dir = indexName.includes("/") ? indexName.slice(0, indexName.lastIndexOf("/") + 1) : "";
  return [...shards].sort().map((s) => dir + s);
}
