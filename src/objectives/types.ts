// Types and defaults of the preference objectives (see OMNI_DPO.md and the README's "Preference objectives").
import type { Tensor } from "../torch/index.js";

/** The objectives preferenceLoss() computes. */
export const LOSS_TYPES = ["omni_dpo", "dpo", "robust", "ipo", "hinge", "simpo", "rpo"] as const;
export type LossType = (typeof LOSS_TYPES)[number];

/** Losses whose margin is reference-adjusted, so they need the reference model's log-probs. */
export const REFERENCE_LOSSES: ReadonlySet<LossType> = new Set(["omni_dpo", "dpo", "robust", "ipo", "hinge", "rpo"]);

/**
 * Per-pair inputs: 1-D tensors of the same length B (the number of preference pairs).
 * Log-probs are sequence log-probs of the response tokens: the per-token mean with length
 * normalisation (the reference default, `dpo_length_norm: true`), else the sum. Scores are the
 * judge's scores S_w (chosen) and S_l (rejected).
 */
export interface PreferenceInputs {
  policyChosenLogps: Tensor;
  policyRejectedLogps: Tensor;
  /** Needed by every loss except SimPO. */
  referenceChosenLogps?: Tensor | null;
  referenceRejectedLogps?: Tensor | null;
  /** Needed by Omni-DPO when its quality weight is on (both) or its c-NLL is on (chosen). */
  scoreChosen?: Tensor | null;
  scoreRejected?: Tensor | null;
  /** Mean raw logit over the chosen / rejected batch; passed through as `logits/chosen` / `logits/rejected`. */
  policyChosenLogitsMean?: number | null;
  policyRejectedLogitsMean?: number | null;
}

/** The form of the `robust` loss (label smoothing e). */
export type RobustVariant =
  /** Conservative DPO (cDPO), OMNI_DPO.md's "robust": -(1-e) logsigmoid(beta m) - e logsigmoid(-beta m); TRL's `sigmoid` with label_smoothing. */
  | "cdpo"
  /** Unbiased robust DPO (Chowdhury et al. 2024), TRL's `robust`: ((1-e)(-logsigmoid(beta m)) + e logsigmoid(-beta m)) / (1-2e). */
  | "rdpo";

/** SimPO's two forms, the reference's `loss_type` under `pref_loss: simpo`. */
export type SimpoForm = "sigmoid" | "hinge";

export interface PreferenceLossOptions {
  /** Default "omni_dpo". */
  lossType?: LossType;
  /** Temperature of the implicit reward. Default 2.0 for omni_dpo and simpo (the reference's UniDPOConfig), 0.1 for dpo, robust, ipo, hinge and rpo (TRL's DPOConfig, which the reference's DPO path uses). */
  beta?: number;

  // ---- omni_dpo ----
  /** eta of w_qual = sigmoid(eta (S_w - S_l)). Default 0.1 (`uni_dpo_qual_eta`). */
  qualEta?: number;
  /** tau_ref of w_perf = (1 - sigmoid(beta dpi - tau_ref))^gamma. Default 0.8 (`uni_dpo_tau_ref`). */
  tauRef?: number;
  /** gamma of w_perf. Default 1.0 (`uni_dpo_perf_gamma`). */
  perfGamma?: number;
  /** lambda of the calibrated NLL; 0 turns c-NLL off. Default 0.01 (`uni_dpo_nll_lambda`). */
  nllLambda?: number;
  /** tau_good: the c-NLL gate opens only where S_w >= tau_good. Default 7.0 (`uni_dpo_tau_good`). */
  tauGood?: number;
  /** Ablation switch: false replaces w_qual by 1 (scores then unused by the weight). Default true. */
  useQualityWeight?: boolean;
  /** Ablation switch: false replaces w_perf by 1. Default true. */
  usePerformanceWeight?: boolean;
  /** Stop the gradient through w_perf. Default false: the reference lets gradients flow through it. */
  detachPerformanceWeight?: boolean;

  // ---- robust, simpo ----
  /** Label smoothing e in robust (and SimPO's sigmoid form, as the reference). Default 0. */
  labelSmoothing?: number;
  /** Which robust loss; default "cdpo" (OMNI_DPO.md's formula). */
  robustVariant?: RobustVariant;

  // ---- simpo ----
  /** gamma / beta, SimPO's target margin over beta. Default 0.25. */
  gammaBetaRatio?: number;
  /** Default "sigmoid". */
  simpoForm?: SimpoForm;

  // ---- rpo ----
  /** Weight of the chosen NLL added to DPO. Required by rpo (the reference has no default: None means off). */
  rpoAlpha?: number | null;

  /** Check the inputs (lengths, finiteness) before computing. Default true; the finiteness check reads the values back once per call. */
  validate?: boolean;
}

/** Options with every default filled in, as preferenceLoss uses them (see resolvePreferenceOptions). */
export interface ResolvedPreferenceOptions {
  lossType: LossType;
  beta: number;
  qualEta: number;
  tauRef: number;
  perfGamma: number;
  nllLambda: number;
  tauGood: number;
  useQualityWeight: boolean;
  usePerformanceWeight: boolean;
  detachPerformanceWeight: boolean;
  labelSmoothing: number;
  robustVariant: RobustVariant;
  gammaBetaRatio: number;
  simpoForm: SimpoForm;
  /** null only for loss types other than rpo. */
  rpoAlpha: number | null;
  validate: boolean;
}

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
  /** Implicit rewards of the chosen responses, [B], detached: beta (logp - ref), or beta logp for SimPO. */
  chosenRewards: Tensor;
  rejectedRewards: Tensor;
  metrics: PreferenceMetrics;
}

/** Defaults of the Omni-DPO and SimPO options: the reference's code defaults (Textual UniDPOConfig). */
export const OMNI_DPO_DEFAULTS = {
  beta: 2.0, qualEta: 0.1, tauRef: 0.8, perfGamma: 1.0, nllLambda: 0.01, tauGood: 7.0,
} as const;

/** Default beta per loss type (see PreferenceLossOptions.beta). */
export const DEFAULT_BETA: Readonly<Record<LossType, number>> = {
  omni_dpo: 2.0, simpo: 2.0, dpo: 0.1, robust: 0.1, ipo: 0.1, hinge: 0.1, rpo: 0.1,
};

export const SIMPO_DEFAULTS = { gammaBetaRatio: 0.25, simpoForm: "sigmoid" as SimpoForm } as const;
