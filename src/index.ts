// mobilellm: MobileLLM in readable TypeScript with WebAssembly SIMD kernels.
export {
  loadModel,
  loadTokenizer,
  readConfig,
  readGenerationDefaults,
  resolveModelSource,
  locateModel,
  defaultModel,
  type LoadModelOptions,
  type LoadTokenizerOptions,
  type ModelSource,
  type LoadProgress,
  type SourceOptions,
  type ModelLocation,
} from "./load.js";
export { loadModelAt, loadTokenizerAt, resolvePortableSource } from "./load-core.js";
export {
  memorySource,
  blobSource,
  bytesSource,
  readBytes,
  type ByteSource,
  type FileBytes,
} from "./platform/byte-source.js";
export { mapFolder, type ModelFolder, type ModelFiles } from "./platform/folder.js";
export { openUrl, urlFolder, type UrlOptions } from "./platform/url.js";
export { fileSource, dirFolder } from "./platform/node.js";
export { resolveHubModel, isHubId, hubCacheDir, HubError, type ResolveHubOptions } from "./io/hub.js";
export { createProgress, createProgressBar, type Progress, type ProgressOptions } from "./util/progress.js";
export { MobileLLM, LAYER_SHARING_ATTENTION, type ModelOptions, type LogitsCallback, type LayerSharingAttention } from "./model/model.js";
export {
  parseConfig,
  parameterCount,
  presetName,
  configToJson,
  PRESETS,
  ConfigError,
  type MobileLLMConfig,
} from "./model/config.js";
export type { DType, Weight, Kernels } from "./kernels/kernels.js";
export { createKernels, BACKENDS, type BackendName } from "./kernels/index.js";
export { createTsKernels } from "./kernels/ts/index.js";
export { readSafetensors, encodeSafetensors } from "./io/safetensors.js";
export { readPytorchCheckpoint } from "./io/pytorch.js";
export { readShardedCheckpoint, type TensorFileOpener } from "./io/sharded.js";
export { readGguf } from "./io/gguf.js";
export {
  openSafetensors,
  openPytorchCheckpoint,
  openShardedCheckpoint,
  openGguf,
  openCheckpointFile,
  chooseCheckpoint,
} from "./io/files.js";
export { UnsafePickleError } from "./io/pickle.js";
export { chooseCheckpointIn, readCheckpointFile, WEIGHT_FILES } from "./io/checkpoint.js";
export { CheckpointError, type TensorFile, type TensorEntry, type FileDType } from "./io/tensor-file.js";
export {
  Tokenizer,
  DecodeStream,
  trainBpeTokenizer,
  type EncodeOptions,
  type TrainBpeOptions,
} from "./tokenizer/index.js";
export { perplexityFromLosses, type PerplexityResult } from "./eval/perplexity.js";
export {
  perplexity,
  evaluateTask,
  fileResumeStore,
  type PerplexityFileOptions as PerplexityOptions,
  type EvaluateFileOptions,
} from "./eval/files.js";
export { evaluateRows, encodePair, type EvalTokenizer, type TaskResult, type ItemResult } from "./eval/harness.js";
export type { ResumeStore } from "./eval/resume.js";
export { LoglikelihoodScorer, type LoglikelihoodResult } from "./eval/loglikelihood.js";
export { TASKS, findTask, type McTask } from "./eval/tasks/index.js";
export * from "./generate/index.js";
export * as train from "./train/index.js";
