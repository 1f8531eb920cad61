// preferenceLoss: the one entry point to the preference objectives.
import * as torch from "../torch/index.js";
import { alignInputs } from "./inputs.js";
import { LOSSES } from "./losses.js";
import { computeMetrics } from "./metrics.js";
import { resolvePreferenceOptions } from "./options.js";
import type { PreferenceInputs, PreferenceLossOptions, PreferenceLossOutput } from "./types.js";

/**
 * The preference loss of a batch of B pairs.
 *
 * ```ts
 * const out = preferenceLoss(
 *   { policyChosenLogps, policyRejectedLogps, referenceChosenLogps, referenceRejectedLogps, scoreChosen, scoreRejected },
 *   { lossType: "omni_dpo", beta: 2, qualEta: 0.7, tauRef: 0.8, perfGamma: 3, nllLambda: 0.001, tauGood: 3.2 });
 * out.loss.backward();
 * ```
 * Inputs are 1-D tensors of length B; the loss is computed in the promoted dtype of the two
 * policy log-prob tensors, on their device (other inputs are cast and moved there). Options a
 * loss does not use are ignored; inputs it needs and lacks are an error naming them. Every
 * intermediate tensor is freed before it returns; the caller owns (and disposes, or tidies)
 * losses, loss, chosenRewards and rejectedRewards.
 */
export function preferenceLoss(inputs: PreferenceInputs, options: PreferenceLossOptions = {}): PreferenceLossOutput {
  const resolved = resolvePreferenceOptions(options);
  return torch.tidy(() => {
    const aligned = alignInputs(inputs, resolved);
    const terms = LOSSES[resolved.lossType](aligned, resolved);
    const metrics = computeMetrics(inputs, aligned, terms, resolved);
    return {
      losses: terms.losses,
      loss: terms.losses.mean(),
      chosenRewards: terms.chosenRewards,
      rejectedRewards: terms.rejectedRewards,
      metrics,
    };
  });
}
