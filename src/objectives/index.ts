// Preference objectives: pure functions of per-pair log-probs and scores.
export { preferenceLoss } from "./preference.js";
export { objectiveFromConfig, OBJECTIVE_CONFIG_KEYS } from "./config.js";
export { resolvePreferenceOptions } from "./options.js";
export { requiredInputs } from "./inputs.js";
export {
  LOSS_TYPES, REFERENCE_LOSSES, OMNI_DPO_DEFAULTS, SIMPO_DEFAULTS, DEFAULT_BETA,
  type LossType, type PreferenceInputs, type PreferenceLossOptions, type ResolvedPreferenceOptions,
  type PreferenceLossOutput, type PreferenceMetrics, type RobustVariant, type SimpoForm,
} from "./types.js";
