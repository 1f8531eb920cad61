// The win rate's figures and the LLM judge's strict verdicts, against independent oracles:
//   - the length-controlled win rate equals a hand-worked logistic fit: with two distinct length
//     differences the maximum-likelihood fit passes through each group's mean preference, so the
//     intercept (and the win rate at zero length difference) follows in closed form;
//   - with the default ridge, the fit equals PyTorch's LBFGS on the same objective;
//   - the bootstrap interval is repeatable by seed, collapses on constant data and matches the
//     normal approximation's width on a large sample;
//   - verdicts parse only as one of the five [[...]] forms, named consistently.
import { test } from "node:test";
import assert from "node:assert/strict";
import { bootstrapCI, lengthControlledWinRate, mean } from "../../src/eval/winrate/stats.js";
import { combineOrders, parsePairwiseVerdict, pairwisePrompt } from "../../src/eval/winrate/judges.js";
import { runPythonJson } from "../../src/util/python.js";
import { skipUnless } from "../helpers/requirements.js";

const logit = (p: number) => Math.log(p / (1 - p));
const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));

test("length-controlled win rate: the hand-worked two-group logistic fit", () => {
  // Three prompts whose model answer is 30 characters longer (won 1, 1, 0.5: mean 5/6) and five
  // 10 characters shorter (won 0, 1, 0, 0, 0.5: mean 0.3). The fit's two free parameters meet
  // both group means exactly: a + b x1 = logit(5/6), a + b x2 = logit(0.3).
  const prefs = [1, 1, 0.5, 0, 1, 0, 0, 0.5];
  const diffs = [30, 30, 30, -10, -10, -10, -10, -10];
  const scale = Math.sqrt((3 * 900 + 5 * 100) / 8); // the root mean square difference: sqrt(400) = 20
  const [x1, x2] = [30 / scale, -10 / scale]; // 1.5 and -0.5
  const b = (logit(5 / 6) - logit(0.3)) / (x1 - x2);
  const a = logit(5 / 6) - b * x1;
  const fit = lengthControlledWinRate(prefs, diffs, 0);
  assert.equal(fit.scale, 20);
  assert.ok(Math.abs(fit.intercept - a) < 1e-9, `${fit.intercept} vs ${a}`);
  assert.ok(Math.abs(fit.slope - b) < 1e-9, `${fit.slope} vs ${b}`);
  assert.ok(Math.abs(fit.lcWinRate - sigmoid(a)) < 1e-9);
  // The raw win rate (0.5) is pulled up by the longer answers' wins; at equal length it is lower.
  assert.equal(mean(prefs), 0.5);
  assert.ok(Math.abs(sigmoid(a) - 0.44198) < 1e-5, String(sigmoid(a))); // ln 5 = 1.6094, ln(3/7) = -0.8473
});

test("length-controlled win rate: equal lengths give the win rate; all wins give 1; separation stays finite", () => {
  assert.ok(Math.abs(lengthControlledWinRate([1, 0, 0.5, 1], [0, 0, 0, 0]).lcWinRate - 0.625) < 1e-12);
  assert.ok(lengthControlledWinRate([1, 1, 1], [5, -3, 0]).lcWinRate > 1 - 1e-9);
  const separated = lengthControlledWinRate([1, 1, 0, 0], [10, 20, -10, -20]);
  assert.ok(Number.isFinite(separated.slope) && Math.abs(separated.lcWinRate - 0.5) < 1e-9);
});

test(
  "length-controlled win rate with the ridge equals PyTorch's LBFGS on the same objective",
  { skip: skipUnless("torch") },
  () => {
    const prefs = [1, 0, 1, 1, 0.5, 0, 1, 0.75, 0, 1, 1, 0.25];
    const diffs = [40, -5, 12, 70, 0, -30, 25, 8, -60, -2, 33, -14];
    const fit = lengthControlledWinRate(prefs, diffs, 0.01);
    const oracle = runPythonJson<{ a: number; b: number }>(
      `
import json, sys, torch
d = json.load(sys.stdin)
p = torch.tensor(d["prefs"], dtype=torch.float64)
diff = torch.tensor(d["diffs"], dtype=torch.float64)
x = diff / diff.pow(2).mean().sqrt()
w = torch.zeros(2, dtype=torch.float64, requires_grad=True)
opt = torch.optim.LBFGS([w], lr=1, max_iter=500, tolerance_grad=1e-14, tolerance_change=1e-16,
                        line_search_fn="strong_wolfe")
def closure():
    opt.zero_grad()
    z = w[0] + w[1] * x
    loss = torch.nn.functional.binary_cross_entropy_with_logits(z, p) + 0.005 * w[1] ** 2
    loss.backward()
    return loss
opt.step(closure)
print(json.dumps({"a": w[0].item(), "b": w[1].item()}))
`,
      { prefs, diffs },
    );
    assert.ok(Math.abs(fit.intercept - oracle.a) < 1e-6, `${fit.intercept} vs ${oracle.a}`);
    assert.ok(Math.abs(fit.slope - oracle.b) < 1e-6, `${fit.slope} vs ${oracle.b}`);
  },
);

test("bootstrap interval: repeatable by seed, a point on constant data, the normal width on a large sample", () => {
  const values = Array.from({ length: 400 }, (_, i) => (i % 10 < 7 ? 1 : 0)); // p = 0.7
  const [lo, hi] = bootstrapCI(values, { seed: 3, resamples: 2000 });
  assert.deepEqual(bootstrapCI(values, { seed: 3, resamples: 2000 }), [lo, hi]);
  assert.notDeepEqual(bootstrapCI(values, { seed: 4, resamples: 2000 }), [lo, hi]);
  assert.ok(lo < 0.7 && 0.7 < hi);
  // 1.96 * sqrt(p (1 - p) / n) = 0.0449: the percentile interval's half-width is within sampling noise of it.
  const half = 1.96 * Math.sqrt((0.7 * 0.3) / 400);
  assert.ok(Math.abs((hi - lo) / 2 - half) < 0.006, `${(hi - lo) / 2} vs ${half}`);
  assert.deepEqual(bootstrapCI([0.5, 0.5, 0.5]), [0.5, 0.5]);
});

test("pairwise verdicts: only one of the five [[...]] forms, the same wherever it is named", () => {
  assert.equal(parsePairwiseVerdict("My final verdict is [[A>B]]."), "A>B");
  assert.equal(parsePairwiseVerdict("[[B>>A]]"), "B>>A");
  assert.equal(parsePairwiseVerdict("Tie: [[A=B]]. Final: [[A=B]]"), "A=B");
  assert.equal(parsePairwiseVerdict("[[ B > A ]]"), "B>A");
  for (const bad of ["", "A>B", "[A>B]", "[[A>B]] no, [[B>A]]", "[[A<B]]", "[[C>A]]", "[[A>>>B]]", "[[]]"]) {
    assert.equal(parsePairwiseVerdict(bad), null, bad);
  }
});

test("both orders combine into the model's preference; one unparseable order leaves the other", () => {
  // The model is A in the first judgement and B in the second.
  assert.equal(combineOrders("A>>B", "B>A"), 1);
  assert.equal(combineOrders("A>B", "A>B"), 0.5); // A both times: position bias, a split
  assert.equal(combineOrders("B>A", "A=B"), 0.25);
  assert.equal(combineOrders(null, "A>>B"), 0);
  assert.equal(combineOrders("A=B", null), 0.5);
  assert.equal(combineOrders(null, null), null);
});

test("the pairwise prompt fills each slot once, leaving slot-like text in the answers alone", () => {
  const text = pairwisePrompt("Q: {{prompt}}\nA: {{answer_a}}\nB: {{answer_b}}", "hi", "{{answer_b}}", "x");
  assert.equal(text, "Q: hi\nA: {{answer_b}}\nB: x");
});
