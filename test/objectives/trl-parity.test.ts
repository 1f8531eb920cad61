// Parity of TRL's loss types, their list form and f-divergences, DPOP, ORPO and SimPO's
// sft_weight with an independent PyTorch implementation (reference_trl_losses.py, float64,
// 1e-9): per-pair losses, the mean loss, its gradients with respect to the four log-prob inputs,
// and the metrics, with per-token and summed log-probs and the answers' token counts. One Python
// process for the whole file; the tests skip, with the reason printed, where no Python with torch exists.
import { test } from "node:test";
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { torch, preferenceLoss, resolvePreferenceOptions, type PreferenceLossOptions } from "../../src/index.js";
import { runPythonJson } from "../../src/util/python.js";
import { values } from "../helpers/gradcheck.js";
import { skipUnless } from "../helpers/requirements.js";

const REFERENCE = fileURLToPath(new URL("../../../test/objectives/reference_trl_losses.py", import.meta.url));
const B = 12;

interface PyResult {
  losses: number[];
  loss: number;
  grads: number[][];
  metrics: Record<string, number>;
}
interface Inputs {
  pc: number[];
  pr: number[];
  rc: number[];
  rr: number[];
  lc: number[];
  lr: number[];
  wc: number[];
  wr: number[];
  perToken: boolean;
}

/** Random pairs: per-token means in [-3, -0.1] (both sides of ORPO's -log 2 branch), or their sums over 1..20 tokens. */
function inputs(seed: number, perToken: boolean): Inputs {
  const lengths = (s: number) => values(B, s, 1, 20).map((v) => Math.round(v));
  const lc = lengths(seed + 10),
    lr = lengths(seed + 11);
  // Means close to 0 in the first pair, so that ORPO's log(1 - e^lp) takes its expm1 branch.
  const pc = values(B, seed, -3, -0.1).map((v, i) => (i === 0 ? -0.2 : v));
  const pr = values(B, seed + 1, -3, -0.1).map((v, i) => (i === 0 ? -0.15 : v));
  // The reference on both sides of the policy (DPOP's penalty is on for half the pairs).
  const rc = pc.map((v, i) => v + (i % 2 ? 1 : -1) * (0.05 + 0.5 * Math.abs(values(B, seed + 2)[i])));
  const rr = pr.map((v, i) => v + values(B, seed + 3)[i] * 0.6);
  const sum = (xs: number[], ls: number[]) => (perToken ? xs : xs.map((v, i) => v * ls[i]));
  // WPO weights in (0, 1], as exp of a mean aligned log-prob gives them.
  const wc = values(B, seed + 12, 0.05, 1),
    wr = values(B, seed + 13, 0.05, 1);
  return { pc: sum(pc, lc), pr: sum(pr, lr), rc: sum(rc, lc), rr: sum(rr, lr), lc, lr, wc, wr, perToken };
}

const F_DIVERGENCES: PreferenceLossOptions[] = [
  { fDivergenceType: "forward_kl" },
  { fDivergenceType: "js_divergence" },
  { fDivergenceType: "alpha_divergence" },
  { fDivergenceType: "alpha_divergence", fAlphaDivergenceCoef: 0.2 },
];

const CASES: { options: PreferenceLossOptions; seed: number; perToken: boolean }[] = [];
const add = (options: PreferenceLossOptions, perToken = true) =>
  CASES.push({ options, seed: 100 + CASES.length * 7, perToken });
for (const lossType of [
  "dpo",
  "hinge",
  "ipo",
  "nca_pair",
  "bco_pair",
  "sppo_hard",
  "apo_down",
  "discopop",
  "sigmoid_norm",
] as const) {
  add({ lossType });
  add({ lossType, beta: 0.05 }, false);
  for (const f of F_DIVERGENCES) add({ lossType, beta: 0.5, ...f });
}
add({ lossType: "ipo", fDivergenceType: "js_divergence", beta: 0.2 }, false);
add({ lossType: "sigmoid_norm", fDivergenceType: "forward_kl", beta: 0.3 }, false);
add({ lossType: "robust", labelSmoothing: 0.2, robustVariant: "rdpo" });
add({ lossType: "robust", labelSmoothing: 0.1, robustVariant: "cdpo", fDivergenceType: "js_divergence" });
add({ lossType: "robust", labelSmoothing: 0.3, robustVariant: "rdpo", fDivergenceType: "alpha_divergence" });
add({ lossType: "exo_pair", labelSmoothing: 1e-3 });
add({ lossType: "exo_pair", labelSmoothing: 0.2, beta: 1, fDivergenceType: "forward_kl" });
add({ lossType: "aot" });
add({ lossType: "aot", labelSmoothing: 0.1, beta: 2 });
add({ lossType: "aot_unpaired" });
add({ lossType: "aot_unpaired", labelSmoothing: 0.25, beta: 0.02 }, false);
add({ lossType: "apo_zero" });
add({ lossType: "apo_zero", beta: 2 }, false);
add({ lossType: "discopop", discopopTau: 0.5, beta: 3 });
add({ lossType: "sft" });
add({ lossType: "sft" }, false);
add({ lossType: "combined", lossTypes: "sigmoid,sft" });
add({ lossType: "combined", lossTypes: "sigmoid,bco_pair,sft", lossWeights: "0.8,0.2,1" }, false);
add({
  lossType: "combined",
  lossTypes: "robust,ipo,apo_zero",
  lossWeights: "1,0.5,2",
  labelSmoothing: 0.1,
  fDivergenceType: "js_divergence",
});
add({ lossType: "dpop", beta: 0.5, nllLambda: 5 });
add({ lossType: "dpop", beta: 2, nllLambda: 0.3, labelSmoothing: 0.1 }, false);
add({ lossType: "dpop", nllLambda: 0 });
for (const lossType of ["dpo", "ipo", "exo_pair", "apo_zero", "sft", "sigmoid_norm"] as const)
  add({ lossType, useWeighting: true, labelSmoothing: 0.01 });
add(
  {
    lossType: "combined",
    lossTypes: "sigmoid,sft",
    lossWeights: "1,0.3",
    useWeighting: true,
    fDivergenceType: "forward_kl",
  },
  false,
);
add({ lossType: "orpo" });
add({ lossType: "orpo", beta: 0.5 }, false);
add({ lossType: "simpo", sftWeight: 0.5 });
add({ lossType: "simpo", sftWeight: 1, simpoForm: "hinge", beta: 1 }, false);

function near(actual: number, expected: number, what: string): void {
  assert.ok(
    Math.abs(actual - expected) <= 1e-9 * Math.max(1, Math.abs(expected)),
    `${what}: ${actual} (here) vs ${expected} (PyTorch)`,
  );
}
function nearAll(actual: number[], expected: number[], what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  actual.forEach((v, i) => near(v, expected[i], `${what}[${i}]`));
}

const needsTorch = skipUnless("torch");

let python: PyResult[] | null = null;
function pythonResults(): PyResult[] {
  python ??= runPythonJson<PyResult[]>(
    REFERENCE,
    CASES.map((c) => ({
      options: resolvePreferenceOptions(c.options),
      inputs: inputs(c.seed, c.perToken),
    })),
    { file: true },
  );
  return python;
}

CASES.forEach((c, k) => {
  test(
    `parity with PyTorch: ${JSON.stringify(c.options)} (${c.perToken ? "per-token" : "summed"} log-probs)`,
    { skip: needsTorch },
    () => {
      const py = pythonResults()[k];
      const x = inputs(c.seed, c.perToken);
      torch.tidy(() => {
        const t = (v: number[], grad = false) => torch.tensor(v, { dtype: "float64", requiresGrad: grad });
        const leaves = [t(x.pc, true), t(x.pr, true), t(x.rc, true), t(x.rr, true)];
        const out = preferenceLoss(
          {
            policyChosenLogps: leaves[0],
            policyRejectedLogps: leaves[1],
            referenceChosenLogps: leaves[2],
            referenceRejectedLogps: leaves[3],
            chosenLengths: t(x.lc),
            rejectedLengths: t(x.lr),
            logpsPerToken: x.perToken,
            chosenWeights: t(x.wc),
            rejectedWeights: t(x.wr),
          },
          c.options,
        );
        out.loss.backward();
        nearAll(out.losses.toArray() as number[], py.losses, "losses");
        near(out.loss.item(), py.loss, "loss");
        const names = [
          "d/d policyChosenLogps",
          "d/d policyRejectedLogps",
          "d/d referenceChosenLogps",
          "d/d referenceRejectedLogps",
        ];
        leaves.forEach((leaf, i) => {
          const g = leaf.grad ? (leaf.grad.toArray() as number[]) : new Array<number>(B).fill(0);
          nearAll(g, py.grads[i], names[i]);
        });
        assert.deepEqual(Object.keys(out.metrics).sort(), Object.keys(py.metrics).sort());
        for (const [name, v] of Object.entries(py.metrics)) near(out.metrics[name]!, v, `metric ${name}`);
      });
    },
  );
});

test(
  "the parity inputs reach both branches: DPOP's penalty on and off, hinge active and flat, ORPO's two log1mexp sides",
  { skip: needsTorch },
  () => {
    for (const c of CASES.filter((c) => c.options.lossType === "dpop")) {
      const x = inputs(c.seed, c.perToken);
      assert.ok(x.rc.some((v, i) => v > x.pc[i]) && x.rc.some((v, i) => v < x.pc[i]), "DPOP's penalty on and off");
    }
    for (const c of CASES.filter((c) => c.options.lossType === "orpo")) {
      const x = inputs(c.seed, c.perToken);
      const means = x.perToken ? x.pc : x.pc.map((v, i) => v / x.lc[i]);
      assert.ok(
        means.some((v) => v > -Math.LN2) && means.some((v) => v < -Math.LN2),
        "ORPO's log1mexp on both sides of -log 2",
      );
    }
    const hinge = pythonResults()[CASES.findIndex((c) => c.options.lossType === "hinge" && c.perToken)].losses;
    assert.ok(
      hinge.some((v) => v > 0),
      "hinge active somewhere",
    );
    // Gradients are not all zero anywhere: every case's loss depends on the policy.
    pythonResults().forEach((r, k) =>
      assert.ok(
        r.grads[0].some((g) => g !== 0),
        `${JSON.stringify(CASES[k].options)}: d/d policyChosenLogps is zero`,
      ),
    );
  },
);

test("inputs the TRL losses need are errors naming them when missing or wrong", () => {
  torch.tidy(() => {
    const t = (v: number[]) => torch.tensor(v, { dtype: "float64" });
    const base = {
      policyChosenLogps: t([-1, -2]),
      policyRejectedLogps: t([-1.5, -1]),
      referenceChosenLogps: t([-1.2, -1.9]),
      referenceRejectedLogps: t([-1.4, -1.1]),
    };
    const lengths = { chosenLengths: t([3, 4]), rejectedLengths: t([2, 5]) };
    const bad: [Record<string, unknown>, PreferenceLossOptions, RegExp][] = [
      [base, { lossType: "sft" }, /missing input chosenLengths, needed by lossType sft/],
      [base, { lossType: "orpo" }, /missing input chosenLengths, needed by lossType orpo/],
      [base, { lossType: "simpo", sftWeight: 0.5 }, /missing input chosenLengths.*sftWeight/],
      [base, { lossType: "combined", lossTypes: "sigmoid,sft" }, /missing input chosenLengths, needed by the sft term/],
      [{ ...base, ...lengths }, { lossType: "sigmoid_norm" }, /input logpsPerToken must be true or false/],
      [
        { ...base, ...lengths, chosenLengths: t([3, -1]), logpsPerToken: true },
        { lossType: "sft" },
        /input chosenLengths must hold token counts/,
      ],
      [
        { ...base, ...lengths, chosenLengths: t([3, 1.5]), logpsPerToken: true },
        { lossType: "sft" },
        /input chosenLengths must hold token counts/,
      ],
      [base, { lossType: "dpo", useWeighting: true }, /missing input chosenWeights, needed by useWeighting/],
      [base, { lossType: "aot", useWeighting: true }, /useWeighting cannot be used with aot/],
      [
        base,
        { lossType: "combined", lossTypes: "sigmoid,aot_unpaired", useWeighting: true },
        /useWeighting cannot be used with aot.*aot_unpaired term/,
      ],
      [base, { lossType: "combined", lossTypes: "sigmoid,kto" }, /lossTypes must list TRL loss types.*kto is not one/],
      [
        base,
        { lossType: "combined", lossTypes: "sigmoid,sft", lossWeights: "1" },
        /lossWeights must be 2 finite numbers/,
      ],
      [base, { lossType: "combined" }, /needs option lossTypes/],
      [base, { lossType: "dpo", ldAlpha: 1.5 }, /ldAlpha must be in \[0, 1\]/],
      [base, { lossType: "exo_pair" }, /labelSmoothing must be in \(0, 1\) for exo_pair/],
    ];
    for (const [inputs, options, message] of bad) {
      assert.throws(() => preferenceLoss(inputs as never, options), message, `${JSON.stringify(options)}`);
    }
    // Given but unneeded, weights change nothing; ipo reads token counts when given.
    const plain = preferenceLoss(base, { lossType: "dpo" }).loss.item();
    assert.equal(
      preferenceLoss(
        { ...base, chosenWeights: t([0.5, 0.1]), rejectedWeights: t([1, 1]) },
        { lossType: "dpo" },
      ).loss.item(),
      plain,
    );
    const sums = { ...base, ...lengths, logpsPerToken: false };
    assert.notEqual(
      preferenceLoss(sums, { lossType: "ipo" }).loss.item(),
      preferenceLoss(base, { lossType: "ipo" }).loss.item(),
    );
  });
});
