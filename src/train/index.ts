// Pretraining MobileLLM in TypeScript: the public training API.
export { pretrain, evaluate, RECIPE_DEFAULTS, type Recipe, type PretrainOptions, type PretrainResult } from "./trainer.js";
export { prepare, splitText, ByteTokenizer, type TextTokenizer, type PrepareOptions, type PrepareResult, type Split } from "./prepare.js";
export { TokenStream, type DataOptions, type DataPosition, type DataCounts } from "./data.js";
export { saveCheckpoint, loadCheckpoint, latestCheckpoint, type TrainerState } from "./checkpoint.js";
export {
  adamwStep,
  allocAdamW,
  clipGradNorm,
  cosineLr,
  decayGroups,
  ADAMW_DEFAULTS,
  type AdamWConfig,
  type AdamWState,
  type ParamGroup,
} from "./adamw.js";
export { trainForward, trainBackward, trainLogits, zeroGrads } from "./model.js";
export { allocTrainState, type TrainState } from "./state.js";
export { paramLayout, readParams, type TrainParams, type ParamLayout } from "./params.js";
export { initParams } from "./init.js";
export { lossCurveSvg, parseLossLog, type LossRecord } from "./loss-curve.js";
