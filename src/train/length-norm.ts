// dpo_length_norm when the recipe does not set it: whose objective does the recipe mean?
//
// The two trainers a recipe may be written for take sequence log-probs differently: TRL's
// DPOTrainer sums the answer's token log-probs, the Uni-DPO reference trainers take their mean.
// With a mean, beta acts as beta / length on TRL's scale, so a TRL recipe run with means would
// silently train another objective. The recipe's own keys say which trainer it was written for:
// any Uni-DPO marker (below) keeps the reference's mean; a recipe of TRL / transformers /
// alignment-handbook keys only, with a loss TRL's DPOTrainer has, gets TRL's sum. A
// dpo_length_norm in the recipe always wins.
import { lossSpec } from "../objectives/index.js";
import type { ResolvedPreferenceOptions } from "../objectives/index.js";
import { specOf } from "./keys.js";

export interface LengthNormChoice {
  value: boolean;
  /** Why, in words for the run header, the model card and errors. */
  reason: string;
}

/** The Math trainer's data keys (Uni-DPO's ScriptArguments): a recipe with one was written for it. */
const MATH_KEYS = ["train_data_path", "eval_data_path", "eot_token", "sanity_check", "max_training_samples"];

/** Loss values of loss_type that only the Uni-DPO trainers know. */
const UNI_DPO_LOSS_NAMES = new Set(["uni_dpo", "omni_dpo"]);

const present = (v: unknown) => v !== undefined && v !== null && v !== "None";

/** The recipe's keys that mark it as written for a Uni-DPO trainer (empty for a TRL-style recipe). */
export function uniDpoMarkers(raw: Record<string, unknown>, objective: ResolvedPreferenceOptions): string[] {
  const markers: string[] = [];
  for (const [key, v] of Object.entries(raw)) {
    if (!present(v) || key === "dpo_length_norm") continue;
    const byPrefix = key === "pref_loss" || key.startsWith("uni_dpo_") || key.startsWith("omni_dpo_");
    const byTable = MATH_KEYS.includes(key) || (specOf(key)?.follows.startsWith("Uni-DPO") ?? false);
    if (byPrefix || byTable) markers.push(key);
  }
  const lossTypes = Array.isArray(raw.loss_type) ? raw.loss_type : [raw.loss_type];
  if (lossTypes.some((t) => typeof t === "string" && UNI_DPO_LOSS_NAMES.has(t.trim().toLowerCase()))) {
    markers.push(`loss_type: ${String(raw.loss_type)}`);
  }
  // No loss key at all picks omni_dpo; simpo, dpop, orpo... are not TRL DPOTrainer losses either.
  if (!markers.length && !isTrlDpoLoss(objective.lossType)) markers.push(`loss ${objective.lossType}`);
  return markers;
}

/** Losses TRL's DPOTrainer computes (its loss_type values, their lists, and rpo_alpha's RPO). */
function isTrlDpoLoss(lossType: string): boolean {
  return lossType === "combined" || lossType === "rpo" || lossSpec(lossType)?.trlLossType !== undefined;
}

/** dpo_length_norm as this recipe means it, and why. */
export function resolveLengthNorm(
  raw: Record<string, unknown>,
  objective: ResolvedPreferenceOptions,
  given: boolean | null,
): LengthNormChoice {
  if (given !== null) {
    return { value: given, reason: "dpo_length_norm set in the recipe" };
  }
  const markers = uniDpoMarkers(raw, objective);
  if (markers.length) {
    return {
      value: true,
      reason: `the Uni-DPO trainers' default, as the recipe is written for them (${markers.slice(0, 3).join(", ")})`,
    };
  }
  return { value: false, reason: "TRL's DPOTrainer sums them, and the recipe has only TRL / transformers keys" };
}

/** "log-probs: mean over answer tokens (dpo_length_norm: true; why)", for the run header and the model card. */
export function lengthNormText(choice: LengthNormChoice): string {
  const how = choice.value ? "mean over each answer's tokens" : "summed over each answer's tokens";
  return `sequence log-probs ${how} (dpo_length_norm: ${choice.value}; ${choice.reason})`;
}
