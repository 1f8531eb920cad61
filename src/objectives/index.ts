// Preference objectives: pure functions of per-pair log-probs and scores, one declaration per loss.
export { preferenceLoss, pairValues, type PairValues } from "./preference.js";
export {
  objectiveFromConfig,
  objectiveConfigKeys,
  type ObjectiveConfigKey,
  type ObjectiveConfigOptions,
} from "./config.js";
export { resolvePreferenceOptions } from "./options.js";
export { requiredInputs, tokenNeeds, type TensorInputName, type TokenNeeds } from "./inputs.js";
export {
  registerLoss,
  lossSpec,
  registeredLosses,
  needsReference,
  REFERENCE_LOSSES,
  OBJECTIVE_CONFIG_KEYS,
  type RegisteredLoss,
  type RegisteredOption,
} from "./registry.js";
export { ObjectiveError, type ObjectiveErrorFields, type ObjectiveErrorSource } from "./errors.js";
export { lossTable } from "./table.js";
export { rewardLoss, type RewardLossOptions, type RewardLossResult } from "./reward.js";
export type {
  LossSpec,
  OptionSpec,
  OptionDecl,
  OptionDecls,
  OptionValue,
  ConfigName,
  ConfigStyle,
  DerivedKey,
  LossInputs,
  LossOptions,
  LossResult,
  NumberCheck,
  ScoreInput,
  TokenWork,
} from "./spec.js";
export {
  LOSS_TYPES,
  OMNI_DPO_DEFAULTS,
  SIMPO_DEFAULTS,
  DEFAULT_BETA,
  type LossType,
  type LossName,
  type PreferenceInputs,
  type PreferenceLossOptions,
  type RegisteredLossOptions,
  type LossTypeName,
  type RegisteredLosses,
  type DeclaredLossOptions,
  type LossOptionsInCode,
  type ResolvedPreferenceOptions,
  type ResolvedBuiltinOptions,
  type PreferenceLossOutput,
  type PreferenceMetrics,
  type RobustVariant,
  type SimpoForm,
} from "./types.js";
