// Generation: KV-cache decoding, sampling, streaming text and stop strings.
export {
  generate,
  Generation,
  samplingDefaults,
  GREEDY,
  type GenerateOptions,
  type GenerateStep,
  type GenerateResult,
  type StopReason,
  type GenerationModel,
} from "./generate.js";
export {
  Sampler,
  applyRepetitionPenalty,
  kthLargest,
  checkSamplingOptions,
  type SamplingOptions,
} from "./sampling.js";
export { argmax } from "../util/argmax.js";
export { Mulberry32 } from "../util/rng.js";
export { IncrementalDecoder, createTextStream, type TextCodec, type TextStream } from "./detokenize.js";
export { StopStrings } from "./stop.js";
