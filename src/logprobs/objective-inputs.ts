// One micro-batch of pairs to the objective's inputs: the policy's forward over chosen and
// rejected together, with the per-token work the loss declares (WPO's answer weights, LD-DPO's
// length weight: objectives' tokenNeeds), the reference's log-probs and the pairs' scores. The
// trainer, the pair log, the benchmark and the demo all build a loss's inputs here, so a loss
// needing something new per token is one declaration (its option's `tokens`) and this function.
import * as torch from "../torch/index.js";
import type { CausalLM } from "../models/causal-lm.js";
import type { TokenizedPair } from "../data/tokenize.js";
import type { RecomputeTape } from "../nn/recompute.js";
import { tokenNeeds, type PreferenceInputs, type ResolvedPreferenceOptions } from "../objectives/index.js";
import { forwardPairs, type PairForward, type PairLogps, type PairVision } from "./pairs.js";

export interface ObjectiveInputsOptions {
  padTokenId: number;
  /** dpo_length_norm: sequence log-probs as means over answer tokens (else sums). */
  lengthNorm: boolean;
  /**
   * The reference's log-probs of these pairs (computed with referenceLogpsOptions(objective)),
   * asked for after the policy's forward; absent or null: a loss without one.
   */
  reference?: () => PairLogps | null;
  /** Under grad: what backward recomputes (the LM head's chunks, checkpointed layers). */
  recompute?: RecomputeTape | null;
  /** Checkpoint every decoder layer (needs `recompute`). */
  gradientCheckpointing?: boolean;
  /** Image pairs' processor and size bounds (their pixels go to the policy with the ids). */
  vision?: PairVision | null;
}

export interface ObjectiveInputs {
  inputs: PreferenceInputs;
  /** Attention-mask tokens in the micro-batch (tokens_per_second counts these). */
  tokens: number;
  /** The policy's forward, its padded batch included. */
  forward: PairForward;
}

/** What the reference's log-probs must apply alike (LD-DPO's length weight), as pairLogps options. */
export function referenceLogpsOptions(objective: ResolvedPreferenceOptions): { ldAlpha: number | null } {
  return { ldAlpha: tokenNeeds(objective).lengthWeight };
}

/** `pairs` through `policy` as the inputs of `objective`'s loss (grad as the caller's grad mode). */
export function objectiveInputs(
  policy: CausalLM,
  pairs: TokenizedPair[],
  objective: ResolvedPreferenceOptions,
  options: ObjectiveInputsOptions,
): ObjectiveInputs {
  const needs = tokenNeeds(objective);
  const recompute = options.recompute ?? null;
  const out = forwardPairs(policy, pairs, options.padTokenId, options.lengthNorm, {
    recompute,
    gradientCheckpointing: (options.gradientCheckpointing ?? false) && recompute !== null,
    wpoWeights: needs.answerWeights,
    ldAlpha: needs.lengthWeight,
    vision: options.vision,
  });
  const dtype = out.chosen.dtype;
  const device = out.chosen.device;
  const values = (xs: number[] | undefined) => (xs ? torch.tensor(xs, { dtype, device }) : null); // [B]
  const ref = options.reference?.() ?? undefined;
  const inputs: PreferenceInputs = {
    policyChosenLogps: out.chosen,
    policyRejectedLogps: out.rejected,
    referenceChosenLogps: values(ref?.chosen),
    referenceRejectedLogps: values(ref?.rejected),
    scoreChosen: values(out.batch.scoreChosen),
    scoreRejected: values(out.batch.scoreRejected),
    chosenLengths: out.chosenLengths,
    rejectedLengths: out.rejectedLengths,
    logpsPerToken: options.lengthNorm,
    chosenWeights: out.chosenWeights,
    rejectedWeights: out.rejectedWeights,
    policyChosenLogitsMean: out.chosenLogitsMean,
    policyRejectedLogitsMean: out.rejectedLogitsMean,
  };
  const tokens = out.batch.attentionMask.reduce((n, row) => n + row.reduce((a, b) => a + b, 0), 0);
  return { inputs, tokens, forward: out };
}
