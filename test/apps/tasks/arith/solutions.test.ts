// Worked solutions and corrupted ones: exact formats, every worked solution verified and judged
// fully right, corruptions wrong in the intended way.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  DEFAULT_CORRUPTIONS,
  corruptSolution,
  formatPrompt,
  formatStep,
  generateProblems,
  judgeResponse,
  makeProblem,
  parseResponse,
  parseStep,
  processJudge,
  solutionSteps,
  stepsEqual,
  trainingText,
  verify,
  workedSolution,
  type ArithOp,
  type ArithProblem,
  type CorruptionKind,
} from "../../../../apps/tasks/arith/index.js";

const EDGE_CASES: ArithProblem[] = [
  makeProblem(0, "+", 0),
  makeProblem(5, "+", 123),
  makeProblem(999, "+", 1),
  makeProblem(0, "-", 0),
  makeProblem(100, "-", 99),
  makeProblem(1000, "-", 1),
  makeProblem(17, "-", 52),
  makeProblem(5, "-", 5),
  makeProblem(0, "*", 0),
  makeProblem(47, "*", 0),
  makeProblem(99, "*", 99),
  makeProblem(7, "*", 46),
  makeProblem(50, "*", 20),
  makeProblem(123, "*", 405),
  makeProblem(9, "*", 9),
];

function allProblems(): ArithProblem[] {
  return [
    ...EDGE_CASES,
    ...generateProblems(300, { difficulty: "easy", seed: 11 }),
    ...generateProblems(300, { difficulty: "medium", seed: 12 }),
    ...generateProblems(300, { difficulty: "hard", seed: 13 }),
  ];
}

describe("arith solutions: worked", () => {
  it("writes the column method in the documented format", () => {
    const cases: [ArithProblem, string][] = [
      [makeProblem(47, "+", 85), "Q:47+85= 7+5+0=12 4+8+1=13 A=132."],
      [makeProblem(52, "-", 17), "Q:52-17= 12-7-0=5 5-1-1=3 A=35."],
      [makeProblem(47, "*", 6), "Q:47*6= 7*6+0=42 4*6+4=28 A=282."],
      [
        makeProblem(47, "*", 36),
        "Q:47*36= 7*6+0=42 4*6+4=28 P=282 7*3+0=21 4*3+2=14 P=1410 2+0+0=2 8+1+0=9 2+4+0=6 0+1+0=1 A=1692.",
      ],
      [makeProblem(100, "-", 99), "Q:100-99= 10-9-0=1 10-9-1=0 1-0-1=0 A=1."],
      [makeProblem(17, "-", 52), "Q:17-52= 12-7-0=5 5-1-1=3 A=-35."],
      [makeProblem(5, "+", 123), "Q:5+123= 5+3+0=8 0+2+0=2 0+1+0=1 A=128."],
    ];
    for (const [p, text] of cases) assert.equal(trainingText(p), text);
    assert.equal(workedSolution(makeProblem(47, "+", 85)), " 7+5+0=12 4+8+1=13 A=132.");
  });

  it("stays short: easy <= 40 characters with the prompt, medium <= 50", () => {
    for (const p of generateProblems(300, { difficulty: "easy", seed: 2 }))
      assert.ok(trainingText(p).length <= 40, trainingText(p));
    for (const p of generateProblems(300, { difficulty: "medium", seed: 2 }))
      assert.ok(trainingText(p).length <= 50, trainingText(p));
    for (const p of generateProblems(300, { difficulty: "hard", seed: 2 }))
      assert.ok(trainingText(p).length <= 110, trainingText(p));
  });

  it("verifies as correct, parses cleanly and is judged 10 (noise 0) for every difficulty and edge case", () => {
    for (const p of allProblems()) {
      const text = workedSolution(p);
      assert.ok(verify(p, text), `${formatPrompt(p)}${text}`);
      const parsed = parseResponse(text);
      assert.deepEqual(parsed.malformed, [], `${formatPrompt(p)}${text}`);
      assert.equal(parsed.answer, p.answer);
      for (const aggregate of ["mean", "min"] as const) {
        for (const credit of ["prefix", "local"] as const) {
          assert.equal(
            processJudge(p, text, { aggregate, credit }),
            10,
            `${formatPrompt(p)}${text} ${aggregate} ${credit}`,
          );
        }
      }
    }
  });

  it("is right for every 2-digit sum and difference and every 2-digit x 1-digit product", () => {
    for (let a = 0; a < 100; a++) {
      for (let b = 0; b < 100; b++) {
        const ops: ArithOp[] = b < 10 ? ["+", "-", "*"] : ["+", "-"];
        for (const op of ops) {
          const p = makeProblem(a, op, b);
          const text = workedSolution(p);
          if (!verify(p, text)) assert.fail(`${formatPrompt(p)}${text} does not verify`);
          const report = judgeResponse(p, text);
          if (report.clean !== 10)
            assert.fail(`${formatPrompt(p)}${text} judged ${report.clean}: ${report.stepScores}`);
        }
      }
    }
  });

  it("writes steps that parse back to themselves", () => {
    for (const p of allProblems()) {
      for (const step of solutionSteps(p)) {
        const back = parseStep(formatStep(step));
        assert.ok(back && stepsEqual(back, step), formatStep(step));
      }
    }
  });
});

describe("arith solutions: corrupted", () => {
  const kinds: CorruptionKind[] = ["slip", "carry", "operand", "answer", "truncate"];

  it("is reproducible by seed and varies with it", () => {
    const p = makeProblem(47, "*", 36);
    assert.deepEqual(corruptSolution(p, { seed: 3 }), corruptSolution(p, { seed: 3 }));
    const texts = new Set(Array.from({ length: 40 }, (_, seed) => corruptSolution(p, { seed }).text));
    assert.ok(texts.size > 10, `${texts.size} distinct corruptions`);
    const picked = new Set(Array.from({ length: 60 }, (_, seed) => corruptSolution(p, { seed }).kind));
    assert.deepEqual([...picked].sort(), [...DEFAULT_CORRUPTIONS].sort());
  });

  for (const kind of kinds) {
    it(`"${kind}": differs from the worked solution, fails the verifier when the answer changes, scores lower`, () => {
      let changed = 0;
      let unchangedExpected = 0;
      for (const [i, p] of allProblems().entries()) {
        const c = corruptSolution(p, { kind, seed: i });
        const label = `${formatPrompt(p)}${c.text} (${c.kind} at ${c.stepIndex})`;
        assert.notEqual(c.text, workedSolution(p), label);
        assert.equal(verify(p, c.text), !c.changesAnswer, label);
        if (c.changesAnswer) changed++;
        else {
          // Only a misread digit times 0 can leave the answer as it was.
          const step = c.steps[c.stepIndex]!;
          assert.ok(kind === "operand" && step.kind === "mul" && step.multiplier === 0, label);
          unchangedExpected++;
        }
        for (const credit of ["prefix", "local"] as const) {
          assert.ok(processJudge(p, c.text, { credit }) < 10, `${label} judged 10 (${credit})`);
          assert.equal(processJudge(p, c.text, { credit, aggregate: "min" }), 0, `${label} min`);
        }
        if (kind === "truncate") {
          assert.equal(c.answer, undefined);
          assert.ok(parseResponse(c.text).malformed.length > 0, label);
        } else {
          assert.deepEqual(parseResponse(c.text).malformed, [], label);
          assert.equal(parseResponse(c.text).answer, c.answer, label);
        }
      }
      // A one-step mistake carried on consistently moves the answer (but for a digit misread times 0).
      assert.equal(changed + unchangedExpected, allProblems().length);
      assert.ok(changed >= 0.9 * allProblems().length, `${kind}: ${changed} changed answers`);
    });
  }

  it("makes exactly one wrong step and carries on consistently after it", () => {
    for (const kind of ["slip", "carry", "operand", "answer"] as const) {
      for (const [i, p] of allProblems().entries()) {
        const c = corruptSolution(p, { kind, seed: 100 + i });
        const local = judgeResponse(p, c.text, { credit: "local" });
        const wrong = local.stepScores.flatMap((s, j) => (s === 0 ? [j] : []));
        assert.deepEqual(wrong, [c.stepIndex], `${formatPrompt(p)}${c.text} (${c.kind}): ${local.stepScores}`);
        // With prefix credit the steps before the mistake are still credited.
        const prefix = judgeResponse(p, c.text, { credit: "prefix" });
        assert.equal(prefix.stepScores.indexOf(0), c.stepIndex);
        assert.equal(prefix.clean, 10 * (c.stepIndex / prefix.stepScores.length));
      }
    }
  });

  it("drops a carry only where there is one, else falls back to a slip", () => {
    const noCarry = makeProblem(11, "+", 22);
    const c = corruptSolution(noCarry, { kind: "carry", seed: 0 });
    assert.equal(c.kind, "slip");
    const withCarry = corruptSolution(makeProblem(47, "+", 85), { kind: "carry", seed: 0 });
    assert.equal(withCarry.kind, "carry");
    assert.equal(withCarry.text, " 7+5+0=12 4+8+0=12 A=122.");
    const borrow = corruptSolution(makeProblem(52, "-", 17), { kind: "carry", seed: 0 });
    assert.equal(borrow.text, " 12-7-0=5 5-1-0=4 A=45.");
    assert.throws(() => corruptSolution(noCarry, { kind: [] }), RangeError);
  });
});
