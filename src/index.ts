// omni-dpo's public entry point.
export * as torch from "./torch/index.js";
export { Tensor, TorchError } from "./torch/index.js";
export {
  preferenceLoss,
  objectiveFromConfig,
  objectiveConfigKeys,
  resolvePreferenceOptions,
  requiredInputs,
  tokenNeeds,
  registerLoss,
  lossSpec,
  registeredLosses,
  needsReference,
  ObjectiveError,
  OBJECTIVE_CONFIG_KEYS,
  LOSS_TYPES,
  REFERENCE_LOSSES,
  OMNI_DPO_DEFAULTS,
  SIMPO_DEFAULTS,
  DEFAULT_BETA,
  type LossType,
  type LossName,
  type LossSpec,
  type OptionSpec,
  type LossInputs,
  type LossOptions,
  type LossResult,
  type PreferenceInputs,
  type PreferenceLossOptions,
  type RegisteredLossOptions,
  type ResolvedPreferenceOptions,
  type PreferenceLossOutput,
  type PreferenceMetrics,
  type RobustVariant,
  type SimpoForm,
  type ObjectiveConfigKey,
  type TokenNeeds,
  type TokenWork,
  rewardLoss,
  type RewardLossOptions,
  type RewardLossResult,
  type LossTypeName,
  type RegisteredLosses,
  type DeclaredLossOptions,
  type LossOptionsInCode,
} from "./objectives/index.js";
export { AutoTokenizer, Tokenizer, TokenizerError, ChatTemplateError, type ChatMessage } from "./text/index.js";
export {
  AutoProcessor,
  Qwen2VLProcessor,
  Qwen2VLImageProcessor,
  type ImageInput,
  type ProcessorOutput,
} from "./text/index.js";
export { readImage, decodeImage, ImageError, type RgbImage } from "./util/images.js";
export {
  AutoModelForCausalLM,
  AutoModelForImageTextToText,
  createModel,
  loadModel,
  saveModel,
  loadAdapterModel,
  mergeAdapter,
  savePretrained,
  type LoadOptions,
  type SaveOptions,
  type MergeOptions,
} from "./models/auto.js";
export { isAdapterDirectory, readAdapterConfig, type AdapterConfig } from "./models/peft.js";
export { attachLora, loraOf, type LoraSettings } from "./nn/lora.js";
export {
  DecoderLM,
  type CausalLM,
  type ForwardOptions,
  type DecoderLayer,
  type DecoderStep,
} from "./models/causal-lm.js";
export type { ArchitectureSpec } from "./models/architecture.js";
export { registerArchitecture, supportedArchitectures, supportedSequenceClassifiers } from "./models/registry.js";
export {
  AutoModelForSequenceClassification,
  SequenceClassifier,
  createSequenceClassifier,
  loadSequenceClassifier,
  saveSequenceClassifier,
  classifierOnCausalLM,
  type ClassifierForwardOptions,
} from "./models/sequence-classification.js";
export {
  AutoModelForProcessRewardModel,
  ProcessRewardModel,
  createProcessRewardModel,
  loadProcessRewardModel,
  saveProcessRewardModel,
  type PrmForwardOptions,
} from "./models/process-reward.js";
export type { RawConfig } from "./models/config.js";
export { readGenerationConfig, stopTokenIds, type GenerationConfig } from "./models/generation-config.js";
export { Module, ModuleList } from "./nn/module.js";
export { Embedding, LayerNorm, Linear, RMSNorm, type Init } from "./nn/layers.js";
export { generate, type GenerateOptions, type GenerateResult } from "./models/generate.js";
export { KVCache } from "./models/cache.js";
export { Qwen2VLForConditionalGeneration, type ImageInputs, type ImageForwardOptions } from "./models/qwen2-vl.js";
export { readPreferenceFile } from "./data/readers.js";
export { readImagePreferenceFile, readDatasetInfoEntry, type ImagePreferenceRecord } from "./data/image-records.js";
export {
  tokenizeImagePair,
  tokenizeImageRecords,
  imagePairBatch,
  type ImageTokenizedPair,
  type ImageBatch,
} from "./data/image-tokenize.js";
export { DataError, type PreferenceRecord, type Message } from "./data/records.js";
export {
  tokenizePair,
  formatRecord,
  concatenatedBatch,
  type TokenizedPair,
  type TokenizeOptions,
  type ChatRendering,
} from "./data/tokenize.js";
export {
  buildPairs,
  binarize,
  loadScorer,
  registerScorer,
  registeredScorers,
  pairsFromSamples,
  sampleAndScore,
  type Pair,
  type Scorer,
  type ScorerFactory,
  type ScorerOptions,
  type BuildOptions,
  type ScoredSamples,
} from "./data/build.js";
export {
  evaluatePairs,
  evaluatePairwiseFile,
  evaluatePairwiseFile as evaluatePairwise,
  formatPairwise,
  type PairwiseResult,
  type PairwiseFileOptions,
  type PairwiseFileResult,
} from "./eval/pairwise.js";
export { buildTextPairs, type TextBuildOptions } from "./data/text-build.js";
export { gradeMath, mathEqual, MATH_DATASETS, type GradeOptions, type MathGrade } from "./eval/math/index.js";
export { evaluateMathBenchmark, passAtK, type BenchmarkOptions, type BenchmarkResult } from "./eval/math/benchmark.js";
export { binarizeUniDpo, labelMathProblems, type MathPair } from "./eval/math/preference-pairs.js";
export { loadTrainConfig, parseOverride, ConfigError, type TrainConfig } from "./train/config.js";
export { RECIPE_KEYS, type KeySpec } from "./train/keys.js";
export { RewardTrainer, trainRewardModel } from "./train/reward-trainer.js";
export {
  PreferenceTrainer,
  type TrainHooks,
  type TrainOptions,
  type TrainResult,
  type MicroBatchOutput,
} from "./train/trainer.js";
export { train, type RecipeTrainOptions } from "./train/api.js";
export type { Recipe } from "./train/recipe.js";
export { iterate, type IterateOptions, type IterateResult, type RoundRow } from "./train/iterate.js";
export {
  TrainerControl,
  EarlyStoppingCallback,
  GenerationEvalCallback,
  type EvaluationSums,
  type TrainerCallback,
  type TrainerEvent,
  type TrainerRunState,
  type EarlyStoppingOptions,
} from "./train/callbacks/index.js";
export {
  registerStrategy,
  registeredStrategies,
  type ParallelStrategy,
  type StrategyEntry,
} from "./train/distributed/index.js";
export { objectiveInputs, type ObjectiveInputs, type ObjectiveInputsOptions } from "./logprobs/objective-inputs.js";
export { RunLockedError } from "./train/run-lock.js";
export { NonFiniteMetricError } from "./train/metrics.js";
export { sftTrain, type SftExample, type SftOptions } from "./train/sft.js";
export type { Generator, GenerationRequest, GeneratedSample } from "./generation/types.js";
export { LocalGenerator } from "./generation/local.js";
export { imagePrompt, type ImagePrompt } from "./generation/image-prompt.js";
export { EndpointGenerator, type EndpointOptions } from "./generation/endpoint.js";
export { startServer, type ServeOptions } from "./generation/server.js";
export { llmJudgeScorer, parseVerdict } from "./eval/llm-judge.js";
export {
  evaluateWinRate,
  formatWinRate,
  winRateSummary,
  generateAnswers,
  rewardModelJudge,
  llmPairwiseJudge,
  type WinRateJudge,
  type WinRateOptions,
  type WinRateReport,
  type WinRateRecord,
} from "./eval/winrate/index.js";
