// Public tokenizer API: MobileLLM's SentencePiece tokenizer (encode/decode text). Loading one from
// a file, folder, URL or hub id is loadTokenizer in src/load.ts (Node) and src/browser.ts.

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

export { trainBpeTokenizer, trainBpeModel, type TrainBpeOptions } from "./train.js";
