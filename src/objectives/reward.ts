// The reward-model objective, as TRL's RewardTrainer.compute_loss: the Bradley-Terry loss on the
// scores of the chosen and rejected answers, with TRL's optional per-pair margin and its
// centring penalty (Eisenstein et al. 2023, eq. 2), and the metrics it logs. Tensors are [B],
// one value per pair.
import type { Tensor } from "../torch/index.js";

export interface RewardLossOptions {
  /** TRL's center_rewards_coefficient: weight of mean((r_w + r_l)^2); null: no penalty. */
  centerRewardsCoefficient: number | null;
}

export interface RewardLossResult {
  /** The batch's mean loss (a scalar with its graph). */
  loss: Tensor;
  /** TRL's names: accuracy, margin, min_reward, mean_reward, max_reward (batch values). */
  metrics: Record<string, number>;
}

/**
 * -logsigmoid(r_w - r_l - margin), averaged over the pairs, plus the centring penalty.
 * `chosen`, `rejected` and `margin` are [B] (float32 or float64); `margin` null means no margin column.
 */
export function rewardLoss(
  chosen: Tensor,
  rejected: Tensor,
  margin: Tensor | null,
  options: RewardLossOptions,
): RewardLossResult {
  const gap = chosen.sub(rejected); // [B]
  let loss = (margin ? gap.sub(margin) : gap).logsigmoid().neg().mean();
  const c = options.centerRewardsCoefficient;
  if (c !== null) loss = loss.add(chosen.add(rejected).pow(2).mean().mul(c));
  const w = chosen.toArray() as number[];
  const l = rejected.toArray() as number[];
  const all = [...w, ...l];
  let right = 0;
  for (let i = 0; i < w.length; i++) if (w[i] > l[i]) right++;
  return {
    loss,
    metrics: {
      accuracy: right / w.length,
      margin: gap.mean().item(),
      min_reward: Math.min(...all),
      mean_reward: all.reduce((a, b) => a + b, 0) / all.length,
      max_reward: Math.max(...all),
    },
  };
}
