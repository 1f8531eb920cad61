// The arithmetic task's problem generator: reproducible by seed, true to its difficulty, and the
// prompt format.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  DIFFICULTIES,
  digitCount,
  formatPrompt,
  generateProblems,
  makeProblem,
  parsePrompt,
  resolveDifficulty,
  type ArithOp,
  type Difficulty,
  type DifficultyName,
} from "../../../../apps/tasks/arith/index.js";

const inRange = (n: number, [lo, hi]: readonly [number, number]) => digitCount(n) >= lo && digitCount(n) <= hi;

describe("arith problems: generator", () => {
  it("is reproducible under a seed and changes with it", () => {
    const a = generateProblems(200, { difficulty: "medium", seed: 42 });
    const b = generateProblems(200, { difficulty: "medium", seed: 42 });
    const c = generateProblems(200, { difficulty: "medium", seed: 43 });
    assert.deepEqual(a, b);
    assert.notDeepEqual(a.map(formatPrompt), c.map(formatPrompt));
    // The default seed is fixed too.
    assert.deepEqual(generateProblems(20), generateProblems(20));
  });

  for (const name of ["easy", "medium", "hard"] as DifficultyName[]) {
    it(`respects the "${name}" difficulty: ops, digits per operand, answers`, () => {
      const spec = DIFFICULTIES[name];
      const problems = generateProblems(600, { difficulty: name, seed: 7 });
      const seenOps = new Set<ArithOp>();
      for (const p of problems) {
        const fits = spec.ops.filter(
          (s) =>
            s.op === p.op &&
            ((inRange(p.a, s.digitsA) && inRange(p.b, s.digitsB)) ||
              // subtraction swaps operands to keep a >= b
              (p.op === "-" && inRange(p.b, s.digitsA) && inRange(p.a, s.digitsB))),
        );
        assert.ok(fits.length > 0, `${formatPrompt(p)} does not fit ${name}`);
        const expected = p.op === "+" ? p.a + p.b : p.op === "-" ? p.a - p.b : p.a * p.b;
        assert.equal(p.answer, expected);
        if (p.op === "-") assert.ok(p.a >= p.b, `${formatPrompt(p)} would be negative`);
        seenOps.add(p.op);
      }
      assert.deepEqual([...seenOps].sort(), [...new Set(spec.ops.map((s) => s.op))].sort());
      // Each spec is drawn about equally often (weights 1).
      const perSpec = spec.ops.map(
        (s) =>
          problems.filter(
            (p) => p.op === s.op && inRange(Math.max(p.a, p.b), s.digitsA) && inRange(Math.min(p.a, p.b), s.digitsB),
          ).length,
      );
      for (const count of perSpec) assert.ok(count > 600 / spec.ops.length / 2, `spec counts ${perSpec}`);
    });
  }

  it("easy is 2-digit add/sub, medium adds 2x1 multiplication, hard adds 2x2", () => {
    const easy = generateProblems(300, { difficulty: "easy", seed: 1 });
    assert.ok(easy.every((p) => p.op !== "*" && digitCount(p.a) === 2 && digitCount(p.b) === 2));
    const medium = generateProblems(300, { difficulty: "medium", seed: 1 });
    assert.ok(medium.filter((p) => p.op === "*").every((p) => digitCount(p.a) === 2 && digitCount(p.b) === 1));
    const hard = generateProblems(300, { difficulty: "hard", seed: 1 });
    assert.ok(hard.some((p) => p.op === "*" && digitCount(p.b) === 2));
  });

  it("takes custom difficulties: digit ranges, weights, negative subtraction", () => {
    const custom: Difficulty = {
      ops: [
        { op: "+", digitsA: [1, 3], digitsB: [1, 2], weight: 3 },
        { op: "-", digitsA: [1, 2], digitsB: [1, 2], allowNegative: true, weight: 1 },
      ],
    };
    const problems = generateProblems(800, { difficulty: custom, seed: 3 });
    const adds = problems.filter((p) => p.op === "+");
    const subs = problems.filter((p) => p.op === "-");
    assert.ok(adds.every((p) => inRange(p.a, [1, 3]) && inRange(p.b, [1, 2])));
    assert.ok(adds.some((p) => digitCount(p.a) === 1) && adds.some((p) => digitCount(p.a) === 3));
    assert.ok(adds.length > 2 * subs.length && subs.length > 100, `${adds.length} adds, ${subs.length} subs`);
    assert.ok(
      subs.some((p) => p.answer < 0),
      "allowNegative gives negative answers",
    );
    const noSub = generateProblems(50, {
      difficulty: { ops: [{ op: "-", digitsA: [1, 1], digitsB: [1, 1] }] },
      seed: 0,
      unique: false,
    });
    assert.ok(noSub.every((p) => p.answer >= 0));
  });

  it("draws distinct problems, skips excluded prompts, and says when it cannot", () => {
    const train = generateProblems(1000, { difficulty: "easy", seed: 5 });
    assert.equal(new Set(train.map(formatPrompt)).size, 1000);
    const exclude = new Set(train.map(formatPrompt));
    const test = generateProblems(300, { difficulty: "easy", seed: 6, exclude });
    assert.ok(test.every((p) => !exclude.has(formatPrompt(p))));
    const tiny: Difficulty = { ops: [{ op: "+", digitsA: [1, 1], digitsB: [1, 1] }] };
    assert.equal(generateProblems(100, { difficulty: tiny, seed: 0 }).length, 100); // all 100 one-digit sums
    assert.throws(() => generateProblems(101, { difficulty: tiny, seed: 0 }), /distinct problems/);
    const repeats = generateProblems(300, { difficulty: tiny, seed: 0, unique: false });
    assert.ok(new Set(repeats.map(formatPrompt)).size < 300);
  });

  it("rejects nonsense difficulties", () => {
    assert.throws(() => resolveDifficulty("impossible" as DifficultyName), /unknown difficulty/);
    assert.throws(() => resolveDifficulty({ ops: [] }), /at least one/);
    assert.throws(
      () => resolveDifficulty({ ops: [{ op: "/" as ArithOp, digitsA: [1, 1], digitsB: [1, 1] }] }),
      /unknown op/,
    );
    assert.throws(() => resolveDifficulty({ ops: [{ op: "+", digitsA: [0, 1], digitsB: [1, 1] }] }), /digit range/);
    assert.throws(() => resolveDifficulty({ ops: [{ op: "+", digitsA: [3, 2], digitsB: [1, 1] }] }), /digit range/);
    assert.throws(() => generateProblems(-1), RangeError);
    assert.throws(() => makeProblem(-3, "+", 4), /non-negative/);
  });
});

describe("arith problems: prompts", () => {
  it("formats compactly and parses back", () => {
    assert.equal(formatPrompt(makeProblem(47, "+", 85)), "Q:47+85=");
    assert.equal(formatPrompt(makeProblem(52, "-", 17)), "Q:52-17=");
    assert.equal(formatPrompt(makeProblem(47, "*", 36)), "Q:47*36=");
    for (const p of generateProblems(300, { difficulty: "hard", seed: 9 }))
      assert.deepEqual(parsePrompt(formatPrompt(p)), p);
    for (const bad of ["", "Q:", "47+85=", "Q:47+85", "Q:4a+85=", "Q:47/85=", "Q:-4+8="])
      assert.equal(parsePrompt(bad), undefined, bad);
  });
});
