// The metrics a preference step logs, named as the reference logs them so that curves compare
// across implementations. All are computed without gradient and read back in one transfer.
import * as torch from "../torch/index.js";
import type { Tensor } from "../torch/index.js";
import type { LossInputs } from "./spec.js";
import type { PreferenceInputs, PreferenceMetrics } from "./types.js";

/** The metrics every loss logs; a loss's own metrics may not reuse these names. */
export const STANDARD_METRICS: readonly string[] = [
  "rewards/chosen",
  "rewards/rejected",
  "rewards/accuracies",
  "rewards/margins",
  "logps/chosen",
  "logps/rejected",
  "logits/chosen",
  "logits/rejected",
];

/**
 * The implicit rewards [B], detached, as TRL and the reference log them: beta (logp - ref) for
 * a loss with a reference model, beta logp for one without (SimPO, TRL's CPO).
 */
export function implicitRewards(x: LossInputs, beta: number, withReference: boolean): [Tensor, Tensor] {
  if (!withReference) return [x.policyChosenLogps.mul(beta).detach(), x.policyRejectedLogps.mul(beta).detach()];
  return [
    x.policyChosenLogps.sub(x.referenceChosenLogps!).mul(beta).detach(),
    x.policyRejectedLogps.sub(x.referenceRejectedLogps!).mul(beta).detach(),
  ];
}

/**
 * - rewards/chosen, rewards/rejected: batch means of the implicit rewards.
 * - rewards/accuracies: the fraction of pairs whose chosen reward exceeds the rejected one (strictly).
 * - rewards/margins: the mean of chosen reward - rejected reward.
 * - logps/chosen, logps/rejected: means of the policy log-probs as passed in.
 * - the loss's own metrics (Omni-DPO: w_qual, w_perf, nll_gate): batch means of per-pair tensors, or constants.
 * - logits/chosen, logits/rejected: passed through when the caller gives policy*LogitsMean.
 */
export function computeMetrics(
  inputs: PreferenceInputs,
  x: LossInputs,
  chosenRewards: Tensor,
  rejectedRewards: Tensor,
  own: { readonly [name: string]: Tensor | number } = {},
): PreferenceMetrics {
  const names: string[] = [];
  const values = torch.tidy(() =>
    torch.noGrad(() => {
      const parts: Tensor[] = [];
      const add = (name: string, t: Tensor) => {
        names.push(name);
        parts.push(t.detach().to(x.dtype).mean());
      };
      add("rewards/chosen", chosenRewards);
      add("rewards/rejected", rejectedRewards);
      add("rewards/accuracies", chosenRewards.gt(rejectedRewards));
      add("rewards/margins", chosenRewards.sub(rejectedRewards));
      add("logps/chosen", x.policyChosenLogps);
      add("logps/rejected", x.policyRejectedLogps);
      for (const [name, v] of Object.entries(own)) if (typeof v !== "number") add(name, v);
      return torch.stack(parts).to("float64").toArray() as number[];
    }),
  );
  const metrics = {} as PreferenceMetrics;
  names.slice(0, 6).forEach((name, i) => {
    metrics[name] = values[i];
  });
  // The loss's own metrics in its order, constants among them.
  let next = 6;
  for (const [name, v] of Object.entries(own)) metrics[name] = typeof v === "number" ? v : values[next++];
  if (typeof inputs.policyChosenLogitsMean === "number") metrics["logits/chosen"] = inputs.policyChosenLogitsMean;
  if (typeof inputs.policyRejectedLogitsMean === "number") metrics["logits/rejected"] = inputs.policyRejectedLogitsMean;
  return metrics;
}
