// Mutation fuzzing of every file reader: safetensors, PyTorch zip + pickle, GGUF, SentencePiece
// protobuf and config.json. A case takes a valid fixture, applies a few seeded mutations (bit flips,
// interesting integers, truncation, chunk moves, and for JSON: field edits), writes it into a fresh
// model folder and runs the real entry points (open + read every tensor + loadModel, or
// loadTokenizer + encode/decode). The outcome must be a load or one of the project's own errors,
// naming the file or folder: any other error (TypeError, RangeError, ...) is a "raw" error.
// Used by bench/fuzz.mjs (many seeds, child processes with a hang watchdog) and by
// tests/io/fuzz-readers.test.ts (a short run). Imports the build (../dist): run `npm run build` first.
import { copyFileSync, mkdirSync, rmSync, writeFileSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { loadModel, openSafetensors } from "../dist/index.js";
import { Mulberry32 } from "../dist/util/rng.js";
import { openPytorchCheckpoint, openGguf } from "../dist/io/files.js";
import { fileSource } from "../dist/platform/node.js";
import { crc32, ZipReader } from "../dist/io/zip.js";
import { Tokenizer } from "../dist/tokenizer/index.js";
import { loadTokenizer } from "../dist/load.js";
import { defaultNormalizerSpec, defaultTrainerSpec, ModelType, PieceType } from "../dist/tokenizer/proto.js";
import { ggufFromModel, writeGguf } from "../dist/io/gguf-write.js";
import { tmpdir } from "node:os";

const FIXTURES = fileURLToPath(new URL("../tests/fixtures/", import.meta.url));
const GQA = join(FIXTURES, "tiny-gqa");

export const READERS = ["safetensors", "pytorch", "gguf", "tokenizer", "config"];

/**
 * tiny-gqa as a GGUF file with q8_0 matrices and a 512-piece tokenizer in its metadata, written by
 * our own writer (the file every GGUF case mutates).
 */
async function tinyGguf() {
  const model = await loadModel(GQA, { backend: "ts", dtype: "q8_0" });
  const V = model.config.vocabSize;
  const pieces = [
    { piece: "<unk>", score: 0, type: PieceType.UNKNOWN },
    { piece: "<s>", score: 0, type: PieceType.CONTROL },
    { piece: "</s>", score: 0, type: PieceType.CONTROL },
  ];
  for (let i = 0; pieces.length < V; i++) pieces.push({ piece: `\u2581t${i}`, score: -i, type: PieceType.NORMAL });
  const tok = new Tokenizer(
    {
      pieces,
      trainerSpec: { ...defaultTrainerSpec(), modelType: ModelType.BPE, vocabSize: V },
      normalizerSpec: { ...defaultNormalizerSpec(), name: "identity" },
    },
    "tiny",
  );
  const { metadata, tensors } = ggufFromModel(model, tok);
  const file = join(tmpdir(), `mobilellm-fuzz-${process.pid}.gguf`);
  try {
    writeGguf(file, metadata, tensors);
    const g = await openGguf(file);
    const dataStart = Math.min(...[...g.tensors.values()].map((t) => t.position));
    g.close();
    return { bytes: readFileSync(file), dataStart };
  } finally {
    rmSync(file, { force: true });
  }
}

const gguf = await tinyGguf();
const original = {
  safetensors: readFileSync(join(GQA, "model.fp16.safetensors")),
  pytorch: readFileSync(join(GQA, "pytorch_model.bin")),
  gguf: gguf.bytes,
  tokenizer: readFileSync(join(FIXTURES, "tokenizer", "nofallback-bpe300.model")),
  config: readFileSync(join(GQA, "config.json")),
};

/** The GGUF header (metadata, tokenizer, tensor infos) ends where the first tensor's data starts: most mutations go there. */
const ggufHeaderSpan = [0, gguf.dataStart];

/** Where data.pkl lies in the fixture zip: mutations aimed there exercise the unpickler. */
const pickleSpan = await (async () => {
  const z = await ZipReader.open(fileSource(join(GQA, "pytorch_model.bin"), "checkpoint"));
  const e = [...z.entries.values()].find((x) => x.name.endsWith("data.pkl"));
  const span = [await z.dataOffset(e), e.size];
  z.close();
  return span;
})();

/** Where data.pkl's central directory record keeps its CRC-32 (so pickle mutations can pass the CRC check). */
const pickleCrcAt = (() => {
  const b = readFileSync(join(GQA, "pytorch_model.bin"));
  for (let p = b.lastIndexOf(Buffer.from("PK\x01\x02", "latin1")); p >= 0; p = b.lastIndexOf(Buffer.from("PK\x01\x02", "latin1"), p - 1)) {
    const nameLen = b.readUInt16LE(p + 28);
    if (
      b
        .subarray(p + 46, p + 46 + nameLen)
        .toString()
        .endsWith("data.pkl")
    )
      return p + 16;
  }
  throw new Error("fixture has no data.pkl record");
})();

/** Mutate data.pkl in place (same length) and store its new CRC: the unpickler sees every case. */
function mutatePickle(buf, rng) {
  const [start, size] = pickleSpan;
  let b = Buffer.from(buf);
  for (let k = 1 + Math.floor(rng.next() * 3); k > 0; k--) {
    const m = mutateBytes(b, rng, pickleSpan);
    if (m.length === b.length) b = m; // keep the record's length: only in-place edits
  }
  b.writeUInt32LE(crc32(b.subarray(start, start + size)), pickleCrcAt);
  return b;
}

const INTERESTING_INTS = [0, 1, 2, 7, 8, 255, 0x7f, 0x80, 0xffff, 0x7fffffff, 0x80000000, 0xffffffff, 2 ** 32, 2 ** 40, 2 ** 53 - 1];
const INTERESTING_JSON = [
  -1,
  0,
  1,
  2,
  3,
  0.5,
  1e-300,
  2 ** 24,
  2 ** 31,
  2 ** 32,
  2 ** 53,
  1e8,
  1e308,
  -1e308,
  null,
  true,
  false,
  "",
  "F32",
  "F16",
  "BF16",
  "I64",
  "toString",
  "__proto__",
  "constructor",
  "silu",
  "llama",
  "mobilellm",
  [],
  [0],
  [1, 1],
  [0, 0],
  [2 ** 20, 2 ** 20],
  [3000000],
  {},
  { a: 1 },
];

/** Apply one random byte-level mutation (returns a new buffer). */
function mutateBytes(buf, rng, focus) {
  const n = buf.length;
  // focus = [start, size]; an earlier mutation of the case may have cut the buffer short of it
  const inFocus = focus && focus[0] < n ? [focus[0], Math.min(focus[1], n - focus[0])] : null;
  const at = (len = 1) =>
    inFocus && rng.next() < 0.7
      ? inFocus[0] + Math.floor(rng.next() * Math.max(1, inFocus[1] - len))
      : Math.floor(rng.next() * Math.max(1, n - len));
  const b = Buffer.from(buf);
  switch (Math.floor(rng.next() * 7)) {
    case 0: {
      // flip a few bits
      for (let k = 1 + Math.floor(rng.next() * 4); k > 0; k--) {
        const i = at();
        b[i] ^= 1 << Math.floor(rng.next() * 8);
      }
      return b;
    }
    case 1: {
      // a few bytes to extreme values
      for (let k = 1 + Math.floor(rng.next() * 8); k > 0; k--)
        b[at()] = [0, 0xff, 0x7f, 0x80, Math.floor(rng.next() * 256)][Math.floor(rng.next() * 5)];
      return b;
    }
    case 2: {
      // an interesting integer, 2, 4 or 8 bytes little-endian
      const width = [2, 4, 8][Math.floor(rng.next() * 3)];
      const v = BigInt(INTERESTING_INTS[Math.floor(rng.next() * INTERESTING_INTS.length)]);
      const i = at(width);
      for (let k = 0; k < width && i + k < n; k++) b[i + k] = Number((v >> BigInt(8 * k)) & 0xffn);
      return b;
    }
    case 3: // truncate
      return b.subarray(0, Math.floor(rng.next() * n));
    case 4: {
      // delete a chunk
      const i = at(),
        len = 1 + Math.floor(rng.next() * 64);
      return Buffer.concat([b.subarray(0, i), b.subarray(i + len)]);
    }
    case 5: {
      // insert random bytes
      const i = at(),
        ins = Buffer.alloc(1 + Math.floor(rng.next() * 16));
      for (let k = 0; k < ins.length; k++) ins[k] = Math.floor(rng.next() * 256);
      return Buffer.concat([b.subarray(0, i), ins, b.subarray(i)]);
    }
    default: {
      // copy a chunk over another place
      const len = 1 + Math.floor(rng.next() * 32),
        from = at(len),
        to = at(len);
      b.copy(b, to, from, Math.min(n, from + len));
      return b;
    }
  }
}

/** Edit a parsed JSON object: set/delete/add/rename a field somewhere in it. */
function mutateJsonValue(obj, rng) {
  const pick = (a) => a[Math.floor(rng.next() * a.length)];
  // walk down a random path (objects and arrays)
  let holder = obj;
  for (let depth = 0; depth < 3; depth++) {
    const keys = Object.keys(holder);
    if (keys.length === 0) break;
    const k = pick(keys);
    if (typeof holder[k] === "object" && holder[k] !== null && rng.next() < 0.6) holder = holder[k];
    else break;
  }
  const keys = Object.keys(holder);
  const k = keys.length ? pick(keys) : "x";
  switch (Math.floor(rng.next() * 5)) {
    case 0:
      delete holder[k];
      break;
    case 1:
      holder[`${k}_extra`] = pick(INTERESTING_JSON);
      break;
    case 2:
      if (typeof holder[k] === "number") holder[k] = holder[k] * pick([2, 1000, -1, 0.5, 1e6]);
      else holder[k] = pick(INTERESTING_JSON);
      break;
    default:
      holder[k] = pick(INTERESTING_JSON);
  }
  return obj;
}

/** The safetensors fixture with a structural edit of its JSON header. */
function mutateSafetensorsHeader(buf, rng) {
  let len, header;
  try {
    // an earlier mutation of this case may have broken the header already
    len = Number(buf.readBigUInt64LE(0));
    header = JSON.parse(buf.subarray(8, 8 + len).toString("utf8"));
  } catch {
    return mutateBytes(buf, rng);
  }
  if (typeof header !== "object" || header === null) return mutateBytes(buf, rng);
  let text;
  if (rng.next() < 0.15) {
    // a name given twice (JSON.parse would keep the last one)
    const names = Object.keys(header).filter((k) => k !== "__metadata__");
    const a = names[Math.floor(rng.next() * names.length)];
    const t = JSON.stringify(header);
    text = t.slice(0, -1) + `,${JSON.stringify(a)}:${JSON.stringify(header[names[0]])}}`;
  } else {
    text = JSON.stringify(mutateJsonValue(header, rng));
  }
  const json = Buffer.from(text);
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([prefix, json, buf.subarray(8 + len)]);
}

/** The first config cases of every seed: sizes a config can claim next to small weights. */
const HOSTILE_CONFIGS = [
  { num_hidden_layers: 3_000_000 },
  { max_position_embeddings: 100_000_000 },
  { max_position_embeddings: 1_000_000 },
  { vocab_size: 2 ** 24 },
  { intermediate_size: 2 ** 26 },
  { hidden_size: 2 ** 20, num_attention_heads: 8, head_dim: 2 ** 17 },
  { num_attention_heads: 2 ** 20, num_key_value_heads: 2 ** 20, head_dim: 2 },
  { bos_token_id: 1e9 },
  { rope_theta: 1e308 },
];

/** The bytes of case `index` of `reader` for a seed: 1-3 mutations of the fixture. */
export function caseBytes(reader, seed, index) {
  if (reader === "config" && index < HOSTILE_CONFIGS.length) {
    return Buffer.from(JSON.stringify({ ...JSON.parse(original.config.toString("utf8")), ...HOSTILE_CONFIGS[index] }));
  }
  const rng = new Mulberry32((Math.imul(seed, 0x9e3779b1) ^ Math.imul(index + 1, 0x85ebca6b) ^ READERS.indexOf(reader)) >>> 0);
  let b = original[reader];
  if (reader === "pytorch" && rng.next() < 0.5) return mutatePickle(b, rng);
  for (let k = 1 + Math.floor(rng.next() * 3); k > 0; k--) {
    if (reader === "safetensors" && rng.next() < 0.5) b = mutateSafetensorsHeader(b, rng);
    else if (reader === "config" && rng.next() < 0.8) {
      let o;
      try {
        o = JSON.parse(b.toString("utf8"));
      } catch {
        o = null;
      }
      b = o && typeof o === "object" ? Buffer.from(JSON.stringify(mutateJsonValue(o, rng))) : mutateBytes(b, rng);
    } else b = mutateBytes(b, rng, reader === "pytorch" ? pickleSpan : reader === "gguf" ? ggufHeaderSpan : undefined);
  }
  return b;
}

/** Own errors name the file or folder; built-in errors (TypeError, RangeError, ...) never count as clear. */
function isClear(e, dir) {
  if (!(e instanceof Error)) return false;
  const own = ["CheckpointError", "ConfigError", "UnsafePickleError"].includes(e.name) || e.constructor === Error;
  return own && e.message.includes(dir);
}

/**
 * Run one case in `dir` (created and removed here). Returns { outcome: "loaded" | "refused" | "raw",
 * message, ms }. `backend` is "ts" or "wasm".
 */
export async function runCase(reader, bytes, dir, backend) {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const t0 = performance.now();
  try {
    if (reader === "tokenizer") {
      writeFileSync(join(dir, "tokenizer.model"), bytes);
      const tok = await loadTokenizer(join(dir, "tokenizer.model"));
      const ids = tok.encode("Hello wörld, 123 ☃", { addBos: true });
      tok.decode(ids);
    } else if (reader === "gguf") {
      writeFileSync(join(dir, "model.gguf"), bytes);
      const tok = await loadTokenizer(join(dir, "model.gguf"));
      tok.decode(tok.encode("Hello wörld, 123 ☃", { addBos: true }));
      const m = await loadModel(join(dir, "model.gguf"), { backend, threads: 1 });
      m.forward([1, 2, 3].slice(0, m.cache.maxP));
    } else {
      const weights = reader === "pytorch" ? "pytorch_model.bin" : "model.safetensors";
      if (reader === "config") {
        writeFileSync(join(dir, "config.json"), bytes);
        copyFileSync(join(GQA, "model.fp16.safetensors"), join(dir, weights));
      } else {
        copyFileSync(join(GQA, "config.json"), join(dir, "config.json"));
        writeFileSync(join(dir, weights), bytes);
        const f = await (reader === "pytorch" ? openPytorchCheckpoint(join(dir, weights)) : openSafetensors(join(dir, weights)));
        try {
          for (const t of f.tensors.values())
            await t.read(
              new Uint8Array(
                t.numel *
                  ({ F64: 8, F32: 4, I64: 8, I32: 4 }[t.dtype] ?? (t.dtype === "F16" || t.dtype === "BF16" || t.dtype === "I16" ? 2 : 1)),
              ),
            );
        } finally {
          f.close();
        }
      }
      const m = await loadModel(dir, { backend, threads: 1 });
      m.forward([1, 2, 3].slice(0, m.cache.maxP)); // a config may declare a context shorter than 3
    }
    return { outcome: "loaded", message: "", ms: performance.now() - t0 };
  } catch (e) {
    const message = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
    return { outcome: isClear(e, dir) ? "refused" : "raw", message, ms: performance.now() - t0 };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
