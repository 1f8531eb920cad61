// The paper's two ways of turning the policy's own samples into preference pairs, applied to the
// same scored samples so the pipelines differ only in how they pick:
//   - math: a verifier checks the final answer and a noisy process judge scores the steps;
//     chosen is correct and scores above 6 (the highest), rejected is the lowest at a margin
//     (the reference's math rules, src/data/build.ts);
//   - text: the judge alone, as a reward model; best against worst of the K samples with both
//     scores, no verifier (the reference's text rules, src/data/text-build.ts). Its labels can
//     be wrong, which is what Omni-DPO's quality weight is for.
//   - rm: a small reward model, trained on judge-labelled pairs from prompts no other stage sees,
//     scores the same samples; best against worst by its score (apps/demo/reward-model.ts). Its
//     gaps are small and noisy, the regime the paper credits Omni-DPO's quality weight with.
// The verifier's verdicts ride along on every pair so the demo can say how often a label is wrong.
import { emptyStats, pairsFromSamples, type BuildStats, type Pair, type ScoredSamples } from "../../src/data/build.js";
import { bestAndWorst } from "../../src/data/text-build.js";
import { average } from "./statistics.js";

export type PipelineName = "math" | "text" | "rm";
export const PIPELINES: readonly PipelineName[] = ["math", "text", "rm"];

/** The math pipeline's binarisation settings (the reference's rules; margin 2 on this judge's 0..10 scale). */
export const MATH_RULES = { chosen: "highest", rejected: "lowest", margin: 2, minChosenScore: 6 } as const;

export interface PipelinePairs {
  pairs: Pair[];
  stats: BuildStats;
  /** Per pair: which prompt, and which of its samples are chosen and rejected (best-vs-worst pipelines). */
  picks?: { prompt: number; chosen: number; rejected: number }[];
}

/** The math and text pipelines' pairs (the rm pipeline's come from rmPairs, once its reward model has scored). */
export function pipelinePairs(pipeline: "math" | "text", samples: ScoredSamples, seed: number): PipelinePairs {
  return pipeline === "math" ? pairsFromSamples(samples, { ...MATH_RULES, seed }) : textPairs(samples);
}

/** Best against worst by score for every prompt; prompts whose samples are identical or all tied give none. */
export function textPairs(samples: ScoredSamples): PipelinePairs {
  const stats = emptyStats(samples);
  const pairs: Pair[] = [];
  const picks: NonNullable<PipelinePairs["picks"]> = [];
  samples.scored.forEach((scored, i) => {
    if (new Set(scored.map((s) => s.response)).size === 1) {
      stats.identicalDropped++;
      return;
    }
    const pick = bestAndWorst(scored.map((s) => s.score));
    if (!pick) {
      stats.noPair++;
      return;
    }
    const [w, l] = [scored[pick.chosen], scored[pick.rejected]];
    pairs.push({
      prompt: samples.prompts[i],
      chosen: w.response,
      rejected: l.response,
      score_chosen: w.score,
      score_rejected: l.score,
      chosen_correct: w.correct,
      rejected_correct: l.correct,
    });
    picks.push({ prompt: i, ...pick });
  });
  stats.pairs = pairs.length;
  return { pairs, stats, picks };
}

/**
 * The rm pipeline's pairs: best against worst by the reward model's score (`rewards[i][j]` for
 * sample j of prompt i becomes the pairs' scores, which w_qual reads once rescalePairs has
 * scaled them), as the text pipeline picks by the judge's. Also returns the judge's scores of
 * each pair's two answers, to measure how often the reward model's label is backwards against
 * the judge.
 */
export function rmPairs(
  samples: ScoredSamples,
  rewards: number[][],
): PipelinePairs & { judge: { chosen: number; rejected: number }[] } {
  const rescored = {
    ...samples,
    scored: samples.scored.map((xs, i) => xs.map((s, j) => ({ ...s, score: rewards[i][j] }))),
  };
  const built = textPairs(rescored);
  const judge = built.picks!.map(({ prompt, chosen, rejected }) => ({
    chosen: samples.scored[prompt][chosen].score,
    rejected: samples.scored[prompt][rejected].score,
  }));
  return { ...built, judge };
}

/** How a pipeline's pair scores are scaled before w_qual reads them (see rescalePairs). */
export type ScoreScale = "raw" | "std" | "z";
export const SCORE_SCALES: readonly ScoreScale[] = ["raw", "std", "z"];

/**
 * The pairs with their scores as w_qual reads them: raw; std (both scores divided by the
 * population standard deviation of the pairs' gaps, the scaling half of the reference's margin
 * normalisation); z (each gap replaced by the reference's normalised margin (gap − mean) / std,
 * as scores z and 0, which also centres it). Monotone in the gap: which answer is chosen, and
 * every statistic of the gap's order (its AUC), stay as they were.
 */
export function rescalePairs(pairs: Pair[], scale: ScoreScale): Pair[] {
  if (scale === "raw") return pairs;
  const gaps = pairs.map((p) => p.score_chosen - p.score_rejected);
  const mean = average(gaps);
  const std = Math.sqrt(average(gaps.map((g) => (g - mean) ** 2))) + 1e-6;
  if (scale === "std")
    return pairs.map((p) => ({ ...p, score_chosen: p.score_chosen / std, score_rejected: p.score_rejected / std }));
  return pairs.map((p, i) => ({ ...p, score_chosen: (gaps[i] - mean) / std, score_rejected: 0 }));
}

export interface LabelQuality {
  pairs: number;
  /** Share of pairs whose chosen answer is wrong (by the verifier). */
  chosen_wrong: number;
  /** Share of pairs whose label is backwards: chosen wrong, rejected right. */
  flipped: number;
  /**
   * Among pairs where exactly one answer is right: the probability that a rightly labelled
   * pair has a larger score gap than a flipped one (ROC AUC of the gap; 0.5 = no signal).
   * Null when no pair is flipped (or none is right), as in the math pipeline, whose verifier
   * picks every chosen.
   */
  gap_auc: number | null;
}

export function labelQuality(pairs: Pair[]): LabelQuality {
  const n = Math.max(pairs.length, 1);
  const gap = (p: Pair) => p.score_chosen - p.score_rejected;
  const right = pairs.filter((p) => p.chosen_correct && !p.rejected_correct).map(gap);
  const flipped = pairs.filter((p) => !p.chosen_correct && p.rejected_correct).map(gap);
  return {
    pairs: pairs.length,
    chosen_wrong: pairs.filter((p) => !p.chosen_correct).length / n,
    flipped: flipped.length / n,
    gap_auc: right.length && flipped.length ? rocAuc(right, flipped) : null,
  };
}

/** P(x > y) + P(x = y) / 2 for x from `positives`, y from `negatives` (the Mann-Whitney statistic). */
export function rocAuc(positives: number[], negatives: number[]): number {
  let wins = 0;
  for (const x of positives) for (const y of negatives) wins += x > y ? 1 : x === y ? 0.5 : 0;
  return wins / (positives.length * negatives.length);
}

export interface JudgeAgreement {
  pairs: number;
  /** Share of pairs the judge orders the other way (it scores the chosen answer below the rejected one). */
  backwards: number;
  /** Share of pairs the judge scores alike (no order to agree with). */
  tied: number;
  /**
   * Among pairs the judge orders: the probability that a pair it agrees with has a larger
   * reward-model gap than one it reverses (ROC AUC; 0.5 = the gap says nothing). Null when
   * either kind is missing.
   */
  gap_auc: number | null;
}

/**
 * How a reward model's labels compare with the judge it learned from: `pairs` carry the reward
 * model's scores (score_chosen > score_rejected), `judge` the judge's scores of the same answers.
 */
export function judgeAgreement(pairs: Pair[], judge: { chosen: number; rejected: number }[]): JudgeAgreement {
  if (pairs.length !== judge.length) throw new RangeError(`${pairs.length} pairs but ${judge.length} judge scores`);
  const n = Math.max(pairs.length, 1);
  const agree: number[] = [];
  const reversed: number[] = [];
  pairs.forEach((p, i) => {
    const gap = p.score_chosen - p.score_rejected;
    if (judge[i].chosen > judge[i].rejected) agree.push(gap);
    else if (judge[i].chosen < judge[i].rejected) reversed.push(gap);
  });
  return {
    pairs: pairs.length,
    backwards: reversed.length / n,
    tied: (pairs.length - agree.length - reversed.length) / n,
    gap_auc: agree.length && reversed.length ? rocAuc(agree, reversed) : null,
  };
}
