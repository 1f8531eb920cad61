// omni-dpo's public entry point.
export * as torch from "./torch/index.js";
export { Tensor, TorchError } from "./torch/index.js";
export {
  preferenceLoss, objectiveFromConfig, resolvePreferenceOptions, OBJECTIVE_CONFIG_KEYS, LOSS_TYPES, REFERENCE_LOSSES,
  OMNI_DPO_DEFAULTS, SIMPO_DEFAULTS, DEFAULT_BETA,
  type LossType, type PreferenceInputs, type PreferenceLossOptions, type ResolvedPreferenceOptions,
  type PreferenceLossOutput, type PreferenceMetrics, type RobustVariant, type SimpoForm,
} from "./objectives/index.js";
export { AutoTokenizer, Tokenizer, TokenizerError, ChatTemplateError, type ChatMessage } from "./text/index.js";
export { AutoModelForCausalLM, createModel, loadModel, saveModel, type LoadOptions, type SaveOptions } from "./models/auto.js";
export type { CausalLM, ForwardOptions } from "./models/causal-lm.js";
export { generate, type GenerateOptions, type GenerateResult } from "./models/generate.js";
export { KVCache } from "./models/cache.js";
export { readPreferenceFile } from "./data/readers.js";
export { DataError, type PreferenceRecord, type Message } from "./data/records.js";
export { tokenizePair, formatRecord, concatenatedBatch, type TokenizedPair, type TokenizeOptions } from "./data/tokenize.js";
export { buildPairs, binarize, loadScorer, type Pair, type Scorer, type BuildOptions } from "./data/build.js";
export { evaluatePairs, evaluatePairwiseFile, type PairwiseResult } from "./eval/pairwise.js";
export { loadTrainConfig, parseOverride, ConfigError, type TrainConfig } from "./train/config.js";
export { train, type TrainHooks, type TrainResult } from "./train/trainer.js";
export { sftTrain, type SftExample, type SftOptions } from "./train/sft.js";
