// Training callbacks: the interface and the stock ones.
export {
  CallbackList,
  TrainerControl,
  type CallbackEvent,
  type EvaluationSums,
  type TrainerCallback,
  type TrainerEvent,
  type TrainerRunState,
} from "./callback.js";
export { EarlyStoppingCallback, type EarlyStoppingOptions } from "./early-stopping.js";
export { GenerationEvalCallback } from "./generation-eval.js";
export { ReferenceSyncCallback } from "./reference-sync.js";
export { HooksCallback, type ProgressHooks } from "./hooks.js";
export { MetricsFileCallback, METRICS_FILE } from "./metrics-file.js";
export { PairLogCallback, type PairValuesOf } from "./pair-log.js";
export { TensorBoardCallback } from "./tensorboard.js";
export { TRACKERS, trackerCallbacks } from "./trackers.js";
