// The process judge: steps scored against the column method, mean/min aggregation, penalties for
// malformed output, and seeded Gaussian noise of the requested spread.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  ARITH_ALPHABET,
  corruptSolution,
  generateProblems,
  judgeResponse,
  makeProblem,
  processJudge,
  seededRandom,
  workedSolution,
} from "../../../../apps/tasks/arith/index.js";

const p = makeProblem(47, "+", 85); // " 7+5+0=12 4+8+1=13 A=132."

function stats(xs: number[]) {
  const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
  const sd = Math.sqrt(xs.reduce((s, x) => s + (x - mean) ** 2, 0) / (xs.length - 1));
  return { mean, sd };
}

describe("arith judge: steps", () => {
  it("scores each step against the method (mean of steps, prefix credit by default)", () => {
    assert.equal(processJudge(p, " 7+5+0=12 4+8+1=13 A=132."), 10);
    // A dropped carry in the second column: 1 of 3 steps right before the mistake.
    const dropped = judgeResponse(p, " 7+5+0=12 4+8+0=12 A=122.");
    assert.deepEqual(dropped.stepScores, [1, 0, 0]);
    assert.ok(Math.abs(dropped.clean - 10 / 3) < 1e-12);
    // With local credit the consistent answer after the mistake counts.
    assert.deepEqual(judgeResponse(p, " 7+5+0=12 4+8+0=12 A=122.", { credit: "local" }).stepScores, [1, 0, 1]);
    // A slip in the first column, carried on consistently.
    assert.deepEqual(judgeResponse(p, " 7+5+0=13 4+8+1=13 A=133.", { credit: "local" }).stepScores, [0, 1, 1]);
    assert.deepEqual(judgeResponse(p, " 7+5+0=13 4+8+1=13 A=133.").stepScores, [0, 0, 0]);
    // Right steps, miscopied answer.
    assert.deepEqual(judgeResponse(p, " 7+5+0=12 4+8+1=13 A=123.").stepScores, [1, 1, 0]);
    // A misread digit: arithmetic right, inconsistent with the problem.
    assert.deepEqual(judgeResponse(p, " 7+6+0=13 4+8+1=13 A=133.", { credit: "local" }).stepScores, [0, 1, 1]);
    // The right answer after wrong steps is not consistent with them.
    assert.deepEqual(judgeResponse(p, " 7+5+0=12 4+8+0=12 A=132.", { credit: "local" }).stepScores, [1, 0, 0]);
  });

  it("checks borrows, multiplication carries and partial products", () => {
    const sub = makeProblem(52, "-", 17);
    assert.equal(processJudge(sub, " 12-7-0=5 5-1-1=3 A=35."), 10);
    assert.deepEqual(judgeResponse(sub, " 2-7-0=5 5-1-0=4 A=45.", { credit: "local" }).stepScores, [0, 1, 1]); // no borrow taken
    assert.deepEqual(judgeResponse(sub, " 12-7-0=5 5-1-0=4 A=45.", { credit: "local" }).stepScores, [1, 0, 1]); // borrow forgotten
    const mul = makeProblem(47, "*", 36);
    const right = workedSolution(mul);
    assert.equal(processJudge(mul, right), 10);
    const badPartial = right.replace("P=1410", "P=1400");
    const report = judgeResponse(mul, badPartial, { credit: "local" });
    assert.equal(report.stepScores.filter((s) => s === 0).length >= 1, true);
    assert.equal(report.stepScores[5], 0, "the partial product step");
  });

  it("aggregates by min when asked: any wrong step gives 0", () => {
    assert.equal(processJudge(p, " 7+5+0=12 4+8+1=13 A=123.", { aggregate: "min" }), 0);
    assert.ok(Math.abs(processJudge(p, " 7+5+0=12 4+8+1=13 A=123.", { aggregate: "mean" }) - 20 / 3) < 1e-12);
    assert.equal(processJudge(p, workedSolution(p), { aggregate: "min" }), 10);
  });

  it("penalises malformed output and scores garbage 0, without throwing", () => {
    assert.equal(processJudge(p, ""), 0);
    assert.equal(processJudge(p, "garbage"), 0);
    assert.equal(processJudge(p, "<unk><unk><unk>"), 0);
    // Text after the terminator: every step right, minus the penalty (0.2 of the scale by default).
    assert.equal(processJudge(p, " 7+5+0=12 4+8+1=13 A=132. 7+5"), 8);
    assert.equal(processJudge(p, " 7+5+0=12 4+8+1=13 A=132. 7+5", { malformedPenalty: 0.5 }), 5);
    // EOS and padding after the terminator are not malformed.
    assert.equal(processJudge(p, " 7+5+0=12 4+8+1=13 A=132.</s><pad>"), 10);
    // Truncated: steps so far right, no answer, penalty.
    const truncated = judgeResponse(p, " 7+5+0=12 4+8+1=13");
    assert.deepEqual(truncated.stepScores, [1, 1, 0]);
    assert.ok(Math.abs(truncated.clean - 10 * (2 / 3 - 0.2)) < 1e-12);
    assert.ok(truncated.malformed.some((m) => /terminator/.test(m)));
    // A broken step in the middle.
    assert.deepEqual(judgeResponse(p, " 7+5+0=12 4+8+1= A=132.", { credit: "local" }).stepScores, [1, 0, 1]);
    // Extra steps count as wrong ones.
    const extra = judgeResponse(p, " 7+5+0=12 4+8+1=13 0+0+1=1 A=132.", { credit: "local" });
    assert.deepEqual(extra.stepScores, [1, 1, 0, 1]);
    // Irregular spacing is malformed but still read.
    const spaced = judgeResponse(p, "  7+5+0=12   4+8+1=13 A=132.");
    assert.deepEqual(spaced.stepScores, [1, 1, 1]);
    assert.ok(spaced.malformed.length > 0);
    const random = seededRandom(2);
    const chars = [...ARITH_ALPHABET, "<s>", "</s>", "\n"];
    for (let i = 0; i < 2000; i++) {
      const text = Array.from(
        { length: Math.floor(random() * 60) },
        () => chars[Math.floor(random() * chars.length)],
      ).join("");
      const score = processJudge(p, text, { noise: 1, seed: i });
      assert.ok(score >= 0 && score <= 10, `${JSON.stringify(text)} -> ${score}`);
    }
    for (const junk of [undefined, null, 42] as unknown[]) assert.equal(processJudge(p, junk as string), 0);
  });

  it("ranks corrupted responses below worked ones across difficulties", () => {
    for (const difficulty of ["easy", "medium", "hard"] as const) {
      const problems = generateProblems(100, { difficulty, seed: 21 });
      const right = problems.map((q) => processJudge(q, workedSolution(q)));
      const wrong = problems.map((q, i) => processJudge(q, corruptSolution(q, { seed: i }).text));
      assert.ok(right.every((s) => s === 10));
      assert.ok(wrong.every((s) => s < 10));
      assert.ok(stats(wrong).mean < 8, `${difficulty}: mean wrong score ${stats(wrong).mean}`);
    }
  });
});

describe("arith judge: noise", () => {
  const mid = " 7+5+0=12 4+8+1=13"; // clean score 10 * (2/3 - 0.2) = 4.67, far from both clamps

  it("has about the requested spread around the clean score", () => {
    const clean = judgeResponse(p, mid).clean;
    for (const noise of [0.5, 1, 1.5]) {
      const scores = Array.from({ length: 3000 }, (_, seed) => processJudge(p, mid, { noise, seed }));
      const { mean, sd } = stats(scores);
      assert.ok(Math.abs(mean - clean) < 0.1, `noise ${noise}: mean ${mean} vs ${clean}`);
      assert.ok(Math.abs(sd / noise - 1) < 0.08, `noise ${noise}: sd ${sd}`);
    }
  });

  it("is reproducible by seed, and independent across seeds and responses", () => {
    const q = makeProblem(52, "-", 17);
    const text = workedSolution(q).replace("A=35", "A=36");
    assert.equal(processJudge(q, text, { noise: 1, seed: 5 }), processJudge(q, text, { noise: 1, seed: 5 }));
    assert.notEqual(processJudge(q, text, { noise: 1, seed: 5 }), processJudge(q, text, { noise: 1, seed: 6 }));
    // The same seed over different responses does not shift them all alike.
    const problems = generateProblems(400, { difficulty: "easy", seed: 4 });
    const shifts = problems
      .map((r, i) => {
        const t = corruptSolution(r, { seed: i }).text;
        return processJudge(r, t, { noise: 1, seed: 0 }) - judgeResponse(r, t).clean;
      })
      .filter((d, i) => {
        const c = judgeResponse(problems[i]!, corruptSolution(problems[i]!, { seed: i }).text).clean;
        return c > 3 && c < 7 && Number.isFinite(d);
      });
    assert.ok(shifts.length > 50, `${shifts.length} mid-range responses`);
    assert.ok(stats(shifts).sd > 0.7, `sd of shifts ${stats(shifts).sd}`);
  });

  it("draws from a given generator instead of the seed, and stays within 0..10", () => {
    const a = Array.from(
      { length: 5 },
      (
        (r) => () =>
          processJudge(p, mid, { noise: 1, random: r })
      )(seededRandom(9)),
    );
    const b = Array.from(
      { length: 5 },
      (
        (r) => () =>
          processJudge(p, mid, { noise: 1, random: r })
      )(seededRandom(9)),
    );
    assert.deepEqual(a, b);
    assert.ok(new Set(a).size === 5, "a stream gives a new draw each call");
    for (let seed = 0; seed < 500; seed++) {
      for (const text of [workedSolution(p), "", mid]) {
        const s = processJudge(p, text, { noise: 20, seed });
        assert.ok(s >= 0 && s <= 10);
      }
    }
    assert.equal(processJudge(p, workedSolution(p), { noise: 0, seed: 3 }), 10);
  });

  it("rejects bad options", () => {
    assert.throws(() => processJudge(p, "", { noise: -1 }), RangeError);
    assert.throws(() => processJudge(p, "", { noise: Number.NaN }), RangeError);
    assert.throws(() => processJudge(p, "", { aggregate: "max" as "min" }), RangeError);
    assert.throws(() => processJudge(p, "", { credit: "all" as "local" }), RangeError);
    assert.throws(() => processJudge(p, "", { malformedPenalty: 2 }), RangeError);
  });
});
