// The demo's statistics (apps/demo/statistics.ts) and its label-quality measures
// (apps/demo/pipelines.ts), against values worked out by hand in the comments.
import { test } from "node:test";
import assert from "node:assert/strict";
import { pairedDifference, quantiles, spread, studentT975, verdict } from "../../../apps/demo/statistics.js";
import {
  judgeAgreement,
  labelQuality,
  rescalePairs,
  rmPairs,
  rocAuc,
  textPairs,
} from "../../../apps/demo/pipelines.js";
import type { Pair } from "../../../src/data/build.js";

const close = (a: number, b: number, what: string, tol = 1e-12) =>
  assert.ok(Math.abs(a - b) < tol, `${what}: ${a} != ${b}`);

test("spread: the mean and the sample standard deviation (n - 1)", () => {
  const a = spread([0.5, 0.7, 0.9]); // deviations -0.2, 0, 0.2: (0.04 + 0 + 0.04) / 2 = 0.04
  close(a.mean, 0.7, "mean");
  close(a.std, 0.2, "std");
  assert.deepEqual(a.runs, [0.5, 0.7, 0.9]);
  const b = spread([1, 2, 3, 4]); // mean 2.5, squares 2.25 + 0.25 + 0.25 + 2.25 = 5, / 3
  close(b.std, Math.sqrt(5 / 3), "std");
  assert.deepEqual(spread([0.4]), { mean: 0.4, std: 0, runs: [0.4] });
  assert.deepEqual(spread([]), { mean: 0, std: 0, runs: [] });
});

test("studentT975: the table's quantiles, the wider one between entries, the normal's in the limit", () => {
  close(studentT975(1), 12.706, "df 1");
  close(studentT975(3), 3.182, "df 3");
  close(studentT975(10), 2.228, "df 10");
  assert.equal(studentT975(2.9), studentT975(2), "between 2 and 3 degrees of freedom: the wider");
  close(studentT975(20), 2.086, "df 20", 1e-3);
  close(studentT975(60), 2.0003, "df 60", 1e-3);
  close(studentT975(Infinity), 1.959964, "normal", 1e-6);
  assert.throws(() => studentT975(0), /degrees of freedom/);
});

test("pairedDifference: problem noise alone (runs agree)", () => {
  // Per-run differences [1,0,0,0] and [0,0,1,0]: both 0.25, so no run variance. Per-problem
  // means [.5, 0, .5, 0]: variance (4 x 0.0625) / 3 = 1/12, over 4 problems 1/48; df 3, t 3.182.
  const d = pairedDifference(
    [
      [1, 1, 0, 0],
      [1, 0, 1, 0],
    ],
    [
      [0, 1, 0, 0],
      [1, 0, 0, 0],
    ],
  );
  close(d.mean_diff, 0.25, "mean");
  close(d.se, Math.sqrt(1 / 48), "se");
  close(d.df, 3, "df", 1e-9);
  close(d.ci95[0], 0.25 - 3.182 * Math.sqrt(1 / 48), "lo");
  close(d.ci95[1], 0.25 + 3.182 * Math.sqrt(1 / 48), "hi");
  assert.equal(verdict(d), "within noise");
});

test("pairedDifference: run and problem noise add, with Welch-Satterthwaite degrees of freedom", () => {
  // Runs 1, .5, 0: variance .25, over 3 runs 1/12. Problems 2/3, 1/3: variance 1/18, over 2: 1/36.
  // se^2 = 1/9; df = (1/9)^2 / ((1/12)^2/2 + (1/36)^2/1) = 2.909..., so t is df 2's 4.303.
  const d = pairedDifference(
    [
      [1, 1],
      [1, 0],
      [0, 0],
    ],
    [
      [0, 0],
      [0, 0],
      [0, 0],
    ],
  );
  close(d.mean_diff, 0.5, "mean");
  close(d.se, 1 / 3, "se");
  close(d.df, 1 / 81 / (1 / 288 + 1 / 1296), "df", 1e-9);
  close(d.ci95[1] - d.mean_diff, 4.303 / 3, "half width");
  // A clear win: mean 11/12, se^2 = 1/144 + 1/144, df 4.8, so t(4) 2.776 and the interval starts at 0.59.
  const ones = [1, 1, 1, 1];
  assert.equal(
    verdict(
      pairedDifference(
        [ones, ones, ones],
        [
          [0, 0, 0, 0],
          [0, 0, 0, 0],
          [0, 0, 0, 1],
        ],
      ),
    ),
    "better",
  );
  // Few runs that disagree: the same mean difference is within noise.
  assert.equal(
    verdict(
      pairedDifference(
        [
          [1, 1, 1],
          [1, 1, 1],
        ],
        [
          [0, 0, 0],
          [0, 0, 1],
        ],
      ),
    ),
    "within noise",
  );
  assert.equal(verdict({ ci95: [-0.3, -0.1] }), "worse");
  assert.throws(() => pairedDifference([[1]], [[1], [0]]), /paired runs/);
  assert.throws(() => pairedDifference([[1, 0]], [[1]]), /same 2 problems/);
});

const pair = (chosen_correct: boolean, rejected_correct: boolean, gap: number): Pair => ({
  prompt: "Q",
  chosen: "a",
  rejected: "b",
  score_chosen: 5 + gap,
  score_rejected: 5,
  chosen_correct,
  rejected_correct,
});

test("rocAuc and labelQuality: backwards labels and whether the score gap tells them", () => {
  close(rocAuc([3, 2], [1, 2]), 0.875, "3>1, 3>2, 2>1 and 2=2 (half): 3.5 of 4");
  const pairs = [
    pair(true, false, 4),
    pair(true, false, 2),
    pair(false, true, 1),
    pair(false, true, 2),
    pair(false, false, 3),
    pair(true, true, 1),
  ];
  const q = labelQuality(pairs);
  assert.equal(q.pairs, 6);
  close(q.chosen_wrong, 3 / 6, "chosen wrong");
  close(q.flipped, 2 / 6, "backwards");
  close(q.gap_auc!, rocAuc([4, 2], [1, 2]), "auc over the pairs with one right answer");
  assert.equal(labelQuality([pair(true, false, 3)]).gap_auc, null, "no backwards pair: no AUC");
});

test("textPairs: best against worst by score; identical samples and tied scores give no pair", () => {
  const s = (response: string, score: number, correct: boolean) => ({ response, score, correct });
  const built = textPairs({
    prompts: ["A", "B", "C"],
    scoreScale: 1,
    correctShare: 0.5,
    scored: [
      [s("x", 5, false), s("y", 9, true), s("z", 1, false), s("w", 9, false)],
      [s("same", 3, true), s("same", 3, true)],
      [s("p", 4, true), s("q", 4, false)],
    ],
  });
  assert.deepEqual(
    built.pairs,
    [
      {
        prompt: "A",
        chosen: "y",
        rejected: "z",
        score_chosen: 9,
        score_rejected: 1,
        chosen_correct: true,
        rejected_correct: false,
      },
    ],
    "the first highest (ties to the earlier sample) against the lowest",
  );
  assert.equal(built.stats.identicalDropped, 1);
  assert.equal(built.stats.noPair, 1);
  assert.equal(built.stats.pairs, 1);
});

test("quantiles: linear interpolation between closest ranks, worked by hand", () => {
  // Sorted 1, 2, 4, 8, 16 (n = 5): rank q * 4. p10 at 0.4: 1 + 0.4 * 1 = 1.4; p25 at 1: 2; median at 2: 4;
  // p75 at 3: 8; p90 at 3.6: 8 + 0.6 * 8 = 12.8.
  const q = quantiles([16, 4, 1, 8, 2]);
  close(q.p10, 1.4, "p10");
  close(q.p25, 2, "p25");
  close(q.median, 4, "median");
  close(q.p75, 8, "p75");
  close(q.p90, 12.8, "p90");
  assert.deepEqual(quantiles([3]), { p10: 3, p25: 3, median: 3, p75: 3, p90: 3 });
  assert.ok(Number.isNaN(quantiles([]).median));
});

test("judgeAgreement: backwards and tied labels against the judge, and the AUC of the reward model's gap", () => {
  // Reward-model gaps 3, 1, 2, 0.5, 4; the judge agrees with the first two and the last, reverses
  // the third and fourth, and ties none: backwards 2/5. AUC over agreeing gaps {3, 1, 4} against
  // reversed {2, 0.5}: 3 beats both, 1 beats 0.5 only, 4 beats both: 5 of 6.
  const pairs = [3, 1, 2, 0.5, 4].map((g) => pair(true, false, g));
  const judge = [
    { chosen: 8, rejected: 2 },
    { chosen: 6, rejected: 5 },
    { chosen: 4, rejected: 7 },
    { chosen: 3, rejected: 3.5 },
    { chosen: 9, rejected: 1 },
  ];
  const a = judgeAgreement(pairs, judge);
  assert.equal(a.pairs, 5);
  close(a.backwards, 2 / 5, "backwards");
  close(a.tied, 0, "tied");
  close(a.gap_auc!, 5 / 6, "auc");
  // A tie counts as neither; with no reversed pair there is no AUC.
  const b = judgeAgreement(pairs.slice(0, 2), [
    { chosen: 5, rejected: 5 },
    { chosen: 6, rejected: 1 },
  ]);
  close(b.tied, 1 / 2, "tied");
  close(b.backwards, 0, "backwards");
  assert.equal(b.gap_auc, null);
  assert.throws(() => judgeAgreement(pairs, judge.slice(1)), /5 pairs but 4 judge scores/);
});

test("rmPairs: best against worst by the reward model's score, with the judge's scores of the same answers", () => {
  const s = (response: string, score: number, correct: boolean) => ({ response, score, correct });
  const samples = {
    prompts: ["A", "B"],
    scoreScale: 1,
    correctShare: 0.5,
    scored: [
      [s("x", 9, true), s("y", 2, false), s("z", 5, false)],
      [s("p", 4, true), s("q", 6, false)],
    ],
  };
  // The reward model prefers z over x in A (the judge does not), q over p in B.
  const built = rmPairs(samples, [
    [0.5, -1, 1.5],
    [0.1, 0.3],
  ]);
  assert.deepEqual(
    built.pairs.map((p) => [p.prompt, p.chosen, p.rejected, p.score_chosen, p.score_rejected]),
    [
      ["A", "z", "y", 1.5, -1],
      ["B", "q", "p", 0.3, 0.1],
    ],
  );
  assert.deepEqual(built.judge, [
    { chosen: 5, rejected: 2 },
    { chosen: 6, rejected: 4 },
  ]);
});

test("rescalePairs: std divides both scores by the gaps' standard deviation; z is the reference's normalised margin", () => {
  const pair = (chosen: number, rejected: number) => ({
    prompt: "Q",
    chosen: "a",
    rejected: "b",
    score_chosen: chosen,
    score_rejected: rejected,
    chosen_correct: true,
    rejected_correct: false,
  });
  const pairs = [pair(9, 1), pair(6, 4), pair(7, 4)]; // gaps 8, 2, 3: mean 13/3, population std 2.6247
  assert.equal(rescalePairs(pairs, "raw"), pairs);
  const std = Math.sqrt(((8 - 13 / 3) ** 2 + (2 - 13 / 3) ** 2 + (3 - 13 / 3) ** 2) / 3) + 1e-6; // as the code guards 0
  const scaled = rescalePairs(pairs, "std");
  close(scaled[0].score_chosen, 9 / std, "std: chosen");
  close(scaled[0].score_rejected, 1 / std, "std: rejected");
  close(scaled[1].score_chosen - scaled[1].score_rejected, 2 / std, "std: gap");
  const z = rescalePairs(pairs, "z");
  assert.deepEqual(
    z.map((p) => p.score_rejected),
    [0, 0, 0],
  );
  z.forEach((p, i) => close(p.score_chosen, ([8, 2, 3][i] - 13 / 3) / std, `z: pair ${i}`));
  assert.deepEqual(
    z.map((p) => [p.prompt, p.chosen, p.rejected]),
    pairs.map((p) => [p.prompt, p.chosen, p.rejected]),
    "the labels stay",
  );
});
