// The metrics a preference step logs, named as the reference logs them so that curves compare
// across implementations. All are computed without gradient and read back in one transfer.
import * as torch from "../torch/index.js";
import type { Tensor } from "../torch/index.js";
import type { AlignedInputs } from "./inputs.js";
import type { LossTerms } from "./losses.js";
import type { PreferenceInputs, PreferenceMetrics, ResolvedPreferenceOptions } from "./types.js";

/**
 * - rewards/chosen, rewards/rejected: batch means of the implicit rewards, beta (logp - ref) for
 *   the reference-based losses and beta logp for SimPO (which has no reference model).
 * - rewards/accuracies: the fraction of pairs whose chosen reward exceeds the rejected one (strictly).
 * - rewards/margins: the mean of chosen reward - rejected reward.
 * - logps/chosen, logps/rejected: means of the policy log-probs as passed in.
 * - logits/chosen, logits/rejected: passed through when the caller gives policy*LogitsMean.
 * - Omni-DPO: w_qual and w_perf are batch means of the weights as applied (1 when switched
 *   off); nll_gate is the fraction of pairs whose c-NLL gate is open (0 when c-NLL is off).
 */
export function computeMetrics(inputs: PreferenceInputs, x: AlignedInputs, terms: LossTerms, options: ResolvedPreferenceOptions): PreferenceMetrics {
  const names: string[] = [];
  const values = torch.tidy(() => torch.noGrad(() => {
    const parts: Tensor[] = [];
    const add = (name: string, t: Tensor) => { names.push(name); parts.push(t.mean()); };
    const cr = terms.chosenRewards.detach();
    const rr = terms.rejectedRewards.detach();
    add("rewards/chosen", cr);
    add("rewards/rejected", rr);
    add("rewards/accuracies", cr.gt(rr).to(x.dtype));
    add("rewards/margins", cr.sub(rr));
    add("logps/chosen", x.policyChosenLogps.detach());
    add("logps/rejected", x.policyRejectedLogps.detach());
    if (options.lossType === "omni_dpo") {
      // Absent weights are the constant 1 (an ablated weight); an absent gate is closed.
      add("w_qual", terms.wQual ?? torch.onesLike(cr));
      add("w_perf", terms.wPerf ?? torch.onesLike(cr));
      add("nll_gate", terms.nllGate ?? torch.zerosLike(cr));
    }
    return torch.stack(parts).to("float64").toArray() as number[];
  }));
  const metrics = {} as PreferenceMetrics;
  names.forEach((name, i) => { metrics[name] = values[i]; });
  if (typeof inputs.policyChosenLogitsMean === "number") metrics["logits/chosen"] = inputs.policyChosenLogitsMean;
  if (typeof inputs.policyRejectedLogitsMean === "number") metrics["logits/rejected"] = inputs.policyRejectedLogitsMean;
  return metrics;
}
