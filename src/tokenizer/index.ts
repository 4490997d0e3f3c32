// Public tokenizer API: load MobileLLM's SentencePiece tokenizer.model and encode/decode text.

import { stat } from "node:fs/promises";
import { join } from "node:path";
import { defaultModel } from "../default-model.js";
import { Tokenizer } from "./tokenizer.js";
import { readRegularFile } from "../io/tensor-file.js";

export { Tokenizer, type EncodeOptions } from "./tokenizer.js";
export { DecodeStream } from "./decode.js";
export {
  PieceType,
  ModelType,
  parseModelProto,
  serializeModelProto,
  type ModelProto,
  type SentencePiece,
  type TrainerSpec,
  type NormalizerSpec,
} from "./proto.js";

/**
 * Load a SentencePiece tokenizer. `folderOrFile` is a tokenizer.model file, a model folder
 * containing one (e.g. a downloaded MobileLLM checkpoint folder), or a GGUF file (its
 * tokenizer.ggml.* metadata); without an argument, the embedded default model's tokenizer
 * (`defaultModel`), as the CLI does without --model.
 */
export async function loadTokenizer(folderOrFile: string = defaultModel): Promise<Tokenizer> {
  let path = folderOrFile;
  let info: Awaited<ReturnType<typeof stat>>;
  try {
    info = await stat(path);
  } catch {
    throw new Error(`${path}: no such file or folder; pass a tokenizer.model file or a folder containing one`);
  }
  if (info.isDirectory()) {
    path = join(folderOrFile, "tokenizer.model");
    try {
      await stat(path);
    } catch {
      throw new Error(`${path}: not found; the folder ${folderOrFile} has no tokenizer.model`);
    }
  }
  if (path.toLowerCase().endsWith(".gguf")) {
    const { openGguf, ggufTokenizerModel } = await import("../io/gguf.js");
    const g = openGguf(path);
    try {
      return new Tokenizer(ggufTokenizerModel(g), path);
    } finally {
      g.close();
    }
  }
  // A regular file only (a FIFO would block forever), and never larger than any real tokenizer.
  return Tokenizer.fromBytes(readRegularFile(path, "tokenizer.model", 1 << 30), path);
}

export { trainBpeTokenizer, trainBpeModel, type TrainBpeOptions } from "./train.js";
