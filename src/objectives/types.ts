// Public types and constants of the preference objectives, derived from the built-in loss
// declarations (losses.ts) so that a loss is declared in one place.
import type { Tensor } from "../torch/index.js";
import { BUILTIN_LOSSES, omniDpo, simpo } from "./losses.js";
import { lossSpec } from "./registry.js";
import type { OptionDecls, OptionValue, OptionValueOf } from "./spec.js";

type Builtin = (typeof BUILTIN_LOSSES)[number];

/** The built-in objectives preferenceLoss() computes. */
export type LossType = Builtin["name"];
export const LOSS_TYPES: readonly LossType[] = BUILTIN_LOSSES.map((l) => l.name);

/** A built-in lossType or the name of a loss added with registerLoss. */
export type LossName = LossType | (string & {});

/** What lossType accepts in code for a built-in loss: its name, an alias (uni_dpo) or TRL's loss_type (sigmoid). */
export type LossTypeName = LossType | NonNullable<Builtin["aliases"]>[number] | NonNullable<Builtin["trlLossType"]>;

/**
 * Losses added with registerLoss, as code sees them: declare each one's options so that
 * preferenceLoss type-checks them as it does the built-in ones', e.g.
 *   declare module "omni-dpo" { interface RegisteredLosses { my_loss: { my_margin?: number } } }
 */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface RegisteredLosses {}

/** Options of a loss declared in RegisteredLosses. */
export type DeclaredLossOptions = {
  [N in keyof RegisteredLosses]: CommonOptions & { lossType: N } & RegisteredLosses[N];
}[keyof RegisteredLosses];

type UnionToIntersection<U> = (U extends unknown ? (u: U) => void : never) extends (i: infer I) => void ? I : never;
type DeclsOf<L> = L extends { options: infer O extends OptionDecls } ? O : never;
type BuiltinDecls = UnionToIntersection<DeclsOf<Builtin>>;
type BuiltinOptionValues = { [K in keyof BuiltinDecls]: OptionValueOf<BuiltinDecls[K]> };

/** The form of the `robust` loss (label smoothing e): cdpo (conservative DPO) or rdpo (unbiased robust DPO). */
export type RobustVariant = BuiltinOptionValues["robustVariant"];
/** SimPO's two forms, the reference's `loss_type` under `pref_loss: simpo`. */
export type SimpoForm = BuiltinOptionValues["simpoForm"];

/**
 * Per-pair inputs: 1-D tensors of the same length B (the number of preference pairs).
 * Log-probs are sequence log-probs of the response tokens: the per-token mean with length
 * normalisation (the reference default, `dpo_length_norm: true`), else the sum. Scores are the
 * judge's scores S_w (chosen) and S_l (rejected).
 */
export interface PreferenceInputs {
  policyChosenLogps: Tensor;
  policyRejectedLogps: Tensor;
  /** Needed by every loss that needs the reference model (all built-in ones but SimPO). */
  referenceChosenLogps?: Tensor | null;
  referenceRejectedLogps?: Tensor | null;
  /** Needed by Omni-DPO when its quality weight is on (both) or its c-NLL is on (chosen). */
  scoreChosen?: Tensor | null;
  scoreRejected?: Tensor | null;
  /**
   * Response tokens per chosen / rejected answer [B]. Needed by the losses that work per token
   * of the summed log-probs as TRL does (sigmoid_norm, sft, ORPO, SimPO's sft_weight) and used
   * by ipo when given; with them, logpsPerToken says whether the log-probs are per-token means.
   */
  chosenLengths?: Tensor | null;
  rejectedLengths?: Tensor | null;
  logpsPerToken?: boolean | null;
  /**
   * WPO's weights of the chosen / rejected answers [B], needed with useWeighting: each pair's
   * loss is multiplied by their product, without gradient (the trainer computes them; see
   * docs/baselines.md).
   */
  chosenWeights?: Tensor | null;
  rejectedWeights?: Tensor | null;
  /** Mean raw logit over the chosen / rejected batch; passed through as `logits/chosen` / `logits/rejected`. */
  policyChosenLogitsMean?: number | null;
  policyRejectedLogitsMean?: number | null;
}

interface CommonOptions {
  /** Temperature of the implicit reward; each loss declares its default (README, "Preference objectives"). */
  beta?: number;
  /** Check the inputs (lengths, finiteness) before computing. Default true; the finiteness check reads the values back once per call. */
  validate?: boolean;
}

/**
 * Options of the built-in losses: lossType (default omni_dpo), beta, validate, and every
 * built-in loss's options by name (see each declaration in losses.ts, or the README's table).
 * Options a loss does not use are checked, then ignored.
 */
export type PreferenceLossOptions = CommonOptions & { lossType?: LossTypeName } & {
  [K in keyof BuiltinOptionValues]?: BuiltinOptionValues[K];
};

/**
 * What preferenceLoss and pairValues take: a built-in loss's options (checked at compile time), a
 * declared registered loss's, or options already resolved (resolvePreferenceOptions,
 * objectiveFromConfig), which is how options known only at run time come in.
 */
export type LossOptionsInCode = PreferenceLossOptions | DeclaredLossOptions | ResolvedPreferenceOptions;

/** Options of any loss by name, checked at run time only (resolvePreferenceOptions takes them). */
export type RegisteredLossOptions = CommonOptions & { lossType: string; [option: string]: OptionValue | undefined };

/** Options with every default filled in, as preferenceLoss uses them (see resolvePreferenceOptions). */
export type ResolvedPreferenceOptions = {
  lossType: LossName;
  beta: number;
  validate: boolean;
} & BuiltinOptionValues & { [option: string]: OptionValue };

/** Resolved options of a built-in loss. */
export type ResolvedBuiltinOptions = ResolvedPreferenceOptions & { lossType: LossType };

/** Metric names, as the reference logs them (so curves compare). All plain numbers. */
export interface PreferenceMetrics {
  "rewards/chosen": number;
  "rewards/rejected": number;
  "rewards/accuracies": number;
  "rewards/margins": number;
  "logps/chosen": number;
  "logps/rejected": number;
  "logits/chosen"?: number;
  "logits/rejected"?: number;
  /** Omni-DPO only: batch mean of the quality weight (1 when switched off). */
  w_qual?: number;
  /** Omni-DPO only: batch mean of the performance weight (1 when switched off). */
  w_perf?: number;
  /** Omni-DPO only: fraction of pairs whose c-NLL gate is open (0 when c-NLL is off). */
  nll_gate?: number;
  [name: string]: number | undefined;
}

export interface PreferenceLossOutput {
  /** Per-pair loss, shape [B]; carries the gradient. */
  losses: Tensor;
  /** Mean of `losses`, a scalar; call backward() on it. */
  loss: Tensor;
  /** Implicit rewards of the chosen responses, [B], detached: beta (logp - ref), or beta logp without a reference model. */
  chosenRewards: Tensor;
  rejectedRewards: Tensor;
  metrics: PreferenceMetrics;
}

const defaultsOf = <O extends OptionDecls>(options: O) =>
  Object.fromEntries(Object.entries(options).map(([k, d]) => [k, typeof d === "object" ? d.default : d])) as {
    [K in keyof O]: OptionValueOf<O[K]>;
  };

/** Omni-DPO's hyperparameters' defaults in code and in a Textual-style YAML (the Textual trainer's UniDPOConfig). */
export const OMNI_DPO_DEFAULTS = (({ qualEta, tauRef, perfGamma, nllLambda, tauGood }) => ({
  beta: lossSpec(omniDpo.name)!.beta.default,
  qualEta,
  tauRef,
  perfGamma,
  nllLambda,
  tauGood,
}))(defaultsOf(omniDpo.options));

/** SimPO's defaults (the Textual trainer's UniDPOConfig), beta aside. */
export const SIMPO_DEFAULTS = (({ gammaBetaRatio, simpoForm }) => ({ gammaBetaRatio, simpoForm }))(
  defaultsOf(simpo.options),
);

/** Default beta per built-in loss type, in code and in a Textual-style YAML. */
export const DEFAULT_BETA = Object.fromEntries(
  LOSS_TYPES.map((name) => [name, lossSpec(name)!.beta.default]),
) as Readonly<Record<LossType, number>>;
