// Parity with an independent PyTorch implementation (float64, 1e-9): per-pair losses, the mean
// loss, its gradients with respect to the policy and reference log-probs, the rewards and the
// metrics, for every objective and option. One Python process for the whole file; the tests
// skip, with the reason printed, where no Python with torch exists.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  torch,
  preferenceLoss,
  resolvePreferenceOptions,
  type PreferenceLossOptions,
  type ResolvedPreferenceOptions,
} from "../../src/index.js";
import { values } from "../helpers/gradcheck.js";
import { runPython } from "../helpers/python.js";
import { skipUnless } from "../helpers/requirements.js";

// Written from docs/method.md's formulas with torch.nn.functional, independently of src/.
const SCRIPT = String.raw`
import json, sys
import torch
import torch.nn.functional as F

def run(case):
    o, x = case["options"], case["inputs"]
    f64 = lambda v: torch.tensor(v, dtype=torch.float64)
    pc = f64(x["pc"]).requires_grad_(); pr = f64(x["pr"]).requires_grad_()
    rc = f64(x["rc"]).requires_grad_(); rr = f64(x["rr"]).requires_grad_()
    sc = f64(x["sc"]); sr = f64(x["sr"])
    t, beta = o["lossType"], o["beta"]
    dpi = pc - pr
    m = dpi - (rc - rr)
    extra = {}
    if t == "omni_dpo":
        w_qual = torch.sigmoid(o["qualEta"] * (sc - sr)) if o["useQualityWeight"] else torch.ones_like(sc)
        if o["usePerformanceWeight"]:
            w_perf = (1 - torch.sigmoid(beta * dpi - o["tauRef"])) ** o["perfGamma"]
            if o["detachPerformanceWeight"]:
                w_perf = w_perf.detach()
        else:
            w_perf = torch.ones_like(sc)
        losses = -w_qual * w_perf * F.logsigmoid(beta * m)
        gate = torch.zeros_like(sc)
        if o["nllLambda"] > 0:
            # [ref(y_w) > logp(y_w)] * [S_w >= tau_good], values only
            gate = ((rc.detach() > pc.detach()) & (sc >= o["tauGood"])).to(torch.float64)
            losses = losses - o["nllLambda"] * gate * pc
        extra = {"w_qual": w_qual.mean().item(), "w_perf": w_perf.detach().mean().item(), "nll_gate": gate.mean().item()}
    elif t == "dpo":
        losses = -F.logsigmoid(beta * m)
    elif t == "robust":
        e = o["labelSmoothing"]
        if o["robustVariant"] == "cdpo":
            losses = -(1 - e) * F.logsigmoid(beta * m) - e * F.logsigmoid(-beta * m)
        else:
            losses = (-(1 - e) * F.logsigmoid(beta * m) + e * F.logsigmoid(-beta * m)) / (1 - 2 * e)
    elif t == "ipo":
        losses = (m - 1 / (2 * beta)) ** 2
    elif t == "hinge":
        losses = F.relu(1 - beta * m)
    elif t == "simpo":
        z = beta * (dpi - o["gammaBetaRatio"])
        if o["simpoForm"] == "sigmoid":
            e = o["labelSmoothing"]
            losses = -(1 - e) * F.logsigmoid(z) - e * F.logsigmoid(-z)
        else:
            losses = F.relu(1 - z)
    elif t == "rpo":
        losses = -F.logsigmoid(beta * m) + o["rpoAlpha"] * (-pc)
    else:
        raise ValueError(t)
    if t == "simpo":
        cr, rj = beta * pc.detach(), beta * pr.detach()
    else:
        cr, rj = beta * (pc - rc).detach(), beta * (pr - rr).detach()
    loss = losses.mean()
    loss.backward()
    grad = lambda v: (v.grad if v.grad is not None else torch.zeros_like(v)).tolist()
    metrics = {
        "rewards/chosen": cr.mean().item(), "rewards/rejected": rj.mean().item(),
        "rewards/accuracies": (cr > rj).to(torch.float64).mean().item(), "rewards/margins": (cr - rj).mean().item(),
        "logps/chosen": pc.detach().mean().item(), "logps/rejected": pr.detach().mean().item(), **extra,
    }
    return {"losses": losses.tolist(), "loss": loss.item(), "chosenRewards": cr.tolist(), "rejectedRewards": rj.tolist(),
            "grads": [grad(pc), grad(pr), grad(rc), grad(rr)], "metrics": metrics}

cases = json.load(sys.stdin)
print(json.dumps([run(c) for c in cases]))
`;

interface PyResult {
  losses: number[];
  loss: number;
  chosenRewards: number[];
  rejectedRewards: number[];
  grads: number[][];
  metrics: Record<string, number>;
}

const B = 16;
type Inputs = Record<"pc" | "pr" | "rc" | "rr" | "sc" | "sr", number[]>;

/** Random pairs; `scale` 1 gives length-normalised log-probs, larger ones summed log-probs. */
function inputs(seed: number, scale = 1, tauGood = 7): Inputs {
  const pc = values(B, seed, -3, -0.1).map((v) => v * scale);
  const pr = values(B, seed + 1, -3, -0.1).map((v) => v * scale);
  // Reference log-probs near the policy's, on both sides of it (the c-NLL gate opens on one side).
  const rc = pc.map((v, i) => v + (i % 2 ? 1 : -1) * (0.05 + 0.5 * Math.abs(values(B, seed + 2)[i])) * scale);
  const rr = pr.map((v, i) => v + values(B, seed + 3)[i] * 0.6 * scale);
  // Chosen scores on both sides of tau_good, including exactly at it.
  const sc = values(B, seed + 4, tauGood - 3, tauGood + 3).map((v, i) => (i === 5 ? tauGood : v));
  const sr = values(B, seed + 5, 0, 10);
  return { pc, pr, rc, rr, sc, sr };
}

const CASES: { options: PreferenceLossOptions; seed: number; scale?: number }[] = [
  { options: { lossType: "omni_dpo" }, seed: 1 },
  {
    options: {
      lossType: "omni_dpo",
      beta: 10,
      qualEta: 0.7,
      tauRef: 0.8,
      perfGamma: 3,
      nllLambda: 0.001,
      tauGood: 3.2,
    },
    seed: 2,
  },
  {
    options: {
      lossType: "omni_dpo",
      beta: 3.5,
      qualEta: 0.7,
      tauRef: 0.8,
      perfGamma: 3,
      nllLambda: 0.001,
      tauGood: 3.2,
    },
    seed: 3,
  },
  {
    options: { lossType: "omni_dpo", beta: 2, qualEta: 0.7, tauRef: 2, perfGamma: 3, nllLambda: 0.2, tauGood: 8 },
    seed: 4,
  },
  { options: { lossType: "omni_dpo", beta: 0.1, perfGamma: 2, nllLambda: 0.05 }, seed: 5, scale: 40 },
  { options: { lossType: "omni_dpo", perfGamma: 0.5, nllLambda: 0.3, tauGood: 5 }, seed: 6 },
  { options: { lossType: "omni_dpo", perfGamma: 0 }, seed: 7 },
  { options: { lossType: "omni_dpo", detachPerformanceWeight: true }, seed: 8 },
  { options: { lossType: "omni_dpo", beta: 5, perfGamma: 3, nllLambda: 0.2, detachPerformanceWeight: true }, seed: 9 },
  { options: { lossType: "omni_dpo", useQualityWeight: false }, seed: 10 },
  { options: { lossType: "omni_dpo", usePerformanceWeight: false, perfGamma: 3 }, seed: 11 },
  { options: { lossType: "omni_dpo", nllLambda: 0 }, seed: 12 },
  { options: { lossType: "omni_dpo", useQualityWeight: false, usePerformanceWeight: false, nllLambda: 0 }, seed: 13 },
  { options: { lossType: "dpo" }, seed: 14 },
  { options: { lossType: "dpo", beta: 2 }, seed: 15 },
  { options: { lossType: "dpo", beta: 0.1 }, seed: 16, scale: 40 },
  { options: { lossType: "robust", labelSmoothing: 0.1 }, seed: 17 },
  { options: { lossType: "robust", beta: 1, labelSmoothing: 0.4 }, seed: 18 },
  { options: { lossType: "robust", labelSmoothing: 0.2, robustVariant: "rdpo" }, seed: 19 },
  { options: { lossType: "ipo" }, seed: 20 },
  { options: { lossType: "ipo", beta: 0.5 }, seed: 21 },
  { options: { lossType: "hinge", beta: 1.5 }, seed: 22 },
  { options: { lossType: "hinge", beta: 4 }, seed: 23 },
  { options: { lossType: "simpo" }, seed: 24 },
  { options: { lossType: "simpo", beta: 2.5, gammaBetaRatio: 0.55, labelSmoothing: 0.2 }, seed: 25 },
  { options: { lossType: "simpo", simpoForm: "hinge" }, seed: 26 },
  { options: { lossType: "simpo", simpoForm: "hinge", beta: 10, gammaBetaRatio: 0.3 }, seed: 27 },
  { options: { lossType: "rpo", rpoAlpha: 1 }, seed: 28 },
  { options: { lossType: "rpo", beta: 0.5, rpoAlpha: 0.25 }, seed: 29 },
];

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
  // Python's json cannot read Infinity; resolved options here are all finite.
  python ??= runPython<PyResult[]>(
    SCRIPT,
    CASES.map((c) => ({
      options: resolvePreferenceOptions(c.options) as ResolvedPreferenceOptions,
      inputs: inputs(c.seed, c.scale ?? 1, resolvePreferenceOptions(c.options).tauGood),
    })),
  );
  return python;
}

CASES.forEach((c, k) => {
  test(
    `parity with PyTorch: ${JSON.stringify(c.options)}${c.scale ? ` (log-probs x${c.scale})` : ""}`,
    { skip: needsTorch },
    () => {
      const py = pythonResults()[k];
      const x = inputs(c.seed, c.scale ?? 1, resolvePreferenceOptions(c.options).tauGood);
      torch.tidy(() => {
        const t = (v: number[], grad: boolean) => torch.tensor(v, { dtype: "float64", requiresGrad: grad });
        const leaves = [t(x.pc, true), t(x.pr, true), t(x.rc, true), t(x.rr, true)];
        const out = preferenceLoss(
          {
            policyChosenLogps: leaves[0],
            policyRejectedLogps: leaves[1],
            referenceChosenLogps: leaves[2],
            referenceRejectedLogps: leaves[3],
            scoreChosen: t(x.sc, false),
            scoreRejected: t(x.sr, false),
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
        nearAll(out.chosenRewards.toArray() as number[], py.chosenRewards, "chosenRewards");
        nearAll(out.rejectedRewards.toArray() as number[], py.rejectedRewards, "rejectedRewards");
        assert.deepEqual(Object.keys(out.metrics).sort(), Object.keys(py.metrics).sort());
        for (const [name, v] of Object.entries(py.metrics)) near(out.metrics[name]!, v, `metric ${name}`);
      });
    },
  );
});

test("parity inputs exercise both sides of the c-NLL gate and of the hinges", { skip: needsTorch }, () => {
  const metrics = pythonResults().map((r) => r.metrics);
  const gates = metrics.filter((m) => m.nll_gate !== undefined && m.nll_gate > 0 && m.nll_gate < 1);
  assert.ok(gates.length >= 5, `gates partly open in ${gates.length} cases`);
  CASES.forEach((c, k) => {
    if (c.options.lossType === "hinge" || c.options.simpoForm === "hinge") {
      const losses = pythonResults()[k].losses;
      assert.ok(
        losses.some((v) => v === 0) && losses.some((v) => v > 0),
        `${JSON.stringify(c.options)}: both sides of the hinge`,
      );
    }
  });
});
