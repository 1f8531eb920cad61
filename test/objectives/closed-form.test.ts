// Closed-form values of every objective at hand-picked points, the metrics, the ablation
// switches, the c-NLL gate and the gradient of w_perf (flowing or detached), all against plain
// JavaScript arithmetic written from docs/method.md's formulas (no tensor engine involved).
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  torch,
  preferenceLoss,
  resolvePreferenceOptions,
  type PreferenceLossOptions,
  type Tensor,
} from "../../src/index.js";

const logsigmoid = (z: number) => (z >= 0 ? -Math.log1p(Math.exp(-z)) : z - Math.log1p(Math.exp(z)));
const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));

interface Pair {
  pc: number;
  pr: number;
  rc: number;
  rr: number;
  sc: number;
  sr: number;
}

// Hand-picked pairs: positive and negative margins, c-NLL gates open and closed for each reason,
// a score exactly at tau_good (gate open: S_w >= tau_good) and ref == policy (gate closed).
const PAIRS: Pair[] = [
  { pc: -1.0, pr: -1.5, rc: -0.9, rr: -1.6, sc: 8, sr: 3 }, // m = -0.2; gate open
  { pc: -0.4, pr: -2.0, rc: -0.8, rr: -1.1, sc: 9, sr: 8.5 }, // m = 1.3;  gate closed (ref < policy)
  { pc: -2.2, pr: -1.9, rc: -1.7, rr: -2.4, sc: 6.5, sr: 1 }, // m = -1.0; gate closed (S_w < 7)
  { pc: -1.3, pr: -1.6, rc: -1.3, rr: -1.2, sc: 7, sr: 7.5 }, // m = 0.7;  gate closed (ref == policy)
  { pc: -3.0, pr: -0.5, rc: -2.0, rr: -0.6, sc: 7, sr: 2 }, // m = -1.1; gate open (S_w == 7)
];

function jsLoss(p: Pair, o: ReturnType<typeof resolvePreferenceOptions>): number {
  const dpi = p.pc - p.pr,
    m = dpi - (p.rc - p.rr),
    b = o.beta,
    e = o.labelSmoothing;
  switch (o.lossType) {
    case "omni_dpo": {
      const wq = o.useQualityWeight ? sigmoid(o.qualEta * (p.sc - p.sr)) : 1;
      const wp = o.usePerformanceWeight ? (1 - sigmoid(b * dpi - o.tauRef)) ** o.perfGamma : 1;
      const gate = o.nllLambda > 0 && p.rc > p.pc && p.sc >= o.tauGood ? 1 : 0;
      return -wq * wp * logsigmoid(b * m) - o.nllLambda * gate * p.pc;
    }
    case "dpo":
      return -logsigmoid(b * m);
    case "robust":
      return o.robustVariant === "cdpo"
        ? -(1 - e) * logsigmoid(b * m) - e * logsigmoid(-b * m)
        : (-(1 - e) * logsigmoid(b * m) + e * logsigmoid(-b * m)) / (1 - 2 * e);
    case "ipo":
      return (m - 1 / (2 * b)) ** 2;
    case "hinge":
      return Math.max(0, 1 - b * m);
    case "simpo": {
      const z = b * (dpi - o.gammaBetaRatio);
      return o.simpoForm === "sigmoid" ? -(1 - e) * logsigmoid(z) - e * logsigmoid(-z) : Math.max(0, 1 - z);
    }
    case "rpo":
      return -logsigmoid(b * m) - o.rpoAlpha! * p.pc;
    default:
      throw new Error(`no closed form here for ${o.lossType} (test/objectives/trl-parity.test.ts covers it)`);
  }
}

function inputsOf(pairs: Pair[], grad = false) {
  const col = (k: keyof Pair) =>
    torch.tensor(
      pairs.map((p) => p[k]),
      { dtype: "float64", requiresGrad: grad && k.startsWith("p") },
    );
  return {
    policyChosenLogps: col("pc"),
    policyRejectedLogps: col("pr"),
    referenceChosenLogps: col("rc"),
    referenceRejectedLogps: col("rr"),
    scoreChosen: col("sc"),
    scoreRejected: col("sr"),
  };
}

function close(actual: number, expected: number, tol = 1e-12, what = "") {
  assert.ok(Math.abs(actual - expected) <= tol * Math.max(1, Math.abs(expected)), `${what}: ${actual} vs ${expected}`);
}

const CASES: PreferenceLossOptions[] = [
  { lossType: "omni_dpo" },
  { lossType: "omni_dpo", beta: 10, qualEta: 0.7, tauRef: 0.8, perfGamma: 3, nllLambda: 0.001, tauGood: 3.2 },
  { lossType: "omni_dpo", beta: 2, qualEta: 0.7, tauRef: 2, perfGamma: 3, nllLambda: 0.2, tauGood: 8 },
  { lossType: "omni_dpo", perfGamma: 0.5, nllLambda: 0 },
  { lossType: "omni_dpo", useQualityWeight: false },
  { lossType: "omni_dpo", usePerformanceWeight: false },
  { lossType: "omni_dpo", useQualityWeight: false, usePerformanceWeight: false, nllLambda: 0 },
  { lossType: "dpo" },
  { lossType: "dpo", beta: 0.5 },
  { lossType: "robust", labelSmoothing: 0.1 },
  { lossType: "robust", beta: 1, labelSmoothing: 0.3, robustVariant: "rdpo" },
  { lossType: "ipo" },
  { lossType: "ipo", beta: 0.5 },
  { lossType: "hinge" },
  { lossType: "hinge", beta: 2 },
  { lossType: "simpo" },
  { lossType: "simpo", labelSmoothing: 0.2 },
  { lossType: "simpo", simpoForm: "hinge", beta: 2.5, gammaBetaRatio: 0.5 },
  { lossType: "rpo", rpoAlpha: 1 },
  { lossType: "rpo", beta: 0.5, rpoAlpha: 0.25 },
];

for (const options of CASES) {
  test(`closed form: ${JSON.stringify(options)}`, () => {
    torch.tidy(() => {
      const resolved = resolvePreferenceOptions(options);
      const out = preferenceLoss(inputsOf(PAIRS), options);
      const losses = out.losses.toArray() as number[];
      const expected = PAIRS.map((p) => jsLoss(p, resolved));
      losses.forEach((v, i) => close(v, expected[i], 1e-12, `pair ${i}`));
      close(out.loss.item(), expected.reduce((a, b) => a + b, 0) / PAIRS.length, 1e-12, "mean");
      assert.deepEqual(out.losses.shape, [PAIRS.length]);
      assert.deepEqual(out.loss.shape, []);
    });
  });
}

test("hand-computed values (one pair: dpi = 0.5, dref = 0.7, m = -0.2, S_w = 8, S_l = 3)", () => {
  torch.tidy(() => {
    const x = inputsOf([PAIRS[0]]);
    // Omni-DPO at the code defaults: w_qual = sigmoid(0.5) = 0.6224593312018546,
    // w_perf = 1 - sigmoid(2*0.5 - 0.8) = 0.45016600268752216, -logsigmoid(-0.4) = 0.9130152523999525,
    // gate open (ref -0.9 > logp -1, S_w 8 >= 7): + 0.01 * 1.
    close(
      preferenceLoss(x, { lossType: "omni_dpo" }).loss.item(),
      0.6224593312018546 * 0.45016600268752216 * 0.9130152523999525 + 0.01,
      1e-15,
      "omni",
    );
    close(preferenceLoss(x, { lossType: "omni_dpo" }).loss.item(), 0.265836030318366, 1e-14, "omni literal");
    // DPO beta 2.5: -logsigmoid(-0.5) = log(1 + e^0.5).
    close(preferenceLoss(x, { lossType: "dpo", beta: 2.5 }).loss.item(), Math.log(1 + Math.exp(0.5)), 1e-15, "dpo");
    // IPO beta 0.5: (-0.2 - 1)^2 = 1.44.
    close(preferenceLoss(x, { lossType: "ipo", beta: 0.5 }).loss.item(), 1.44, 1e-15, "ipo");
    // Hinge beta 2: relu(1 + 0.4) = 1.4.
    close(preferenceLoss(x, { lossType: "hinge", beta: 2 }).loss.item(), 1.4, 1e-15, "hinge");
    // SimPO beta 2, ratio 0.25: -logsigmoid(2 * 0.25) = log(1 + e^-0.5); hinge: 1 - 0.5.
    close(preferenceLoss(x, { lossType: "simpo" }).loss.item(), Math.log(1 + Math.exp(-0.5)), 1e-15, "simpo");
    close(preferenceLoss(x, { lossType: "simpo", simpoForm: "hinge" }).loss.item(), 0.5, 1e-15, "simpo hinge");
    // RPO beta 2.5, alpha 1: log(1 + e^0.5) + 1.
    close(
      preferenceLoss(x, { lossType: "rpo", beta: 2.5, rpoAlpha: 1 }).loss.item(),
      Math.log(1 + Math.exp(0.5)) + 1,
      1e-15,
      "rpo",
    );
    // m = 0 gives ln 2 for DPO whatever beta, and for cDPO whatever e.
    const zero = inputsOf([{ pc: -1, pr: -2, rc: -1, rr: -2, sc: 5, sr: 5 }]);
    close(preferenceLoss(zero, { lossType: "dpo", beta: 7 }).loss.item(), Math.LN2, 1e-15, "dpo m=0");
    close(preferenceLoss(zero, { lossType: "robust", labelSmoothing: 0.3 }).loss.item(), Math.LN2, 1e-15, "cdpo m=0");
    close(
      preferenceLoss(zero, { lossType: "robust", labelSmoothing: 0.3, robustVariant: "rdpo" }).loss.item(),
      Math.LN2,
      1e-15,
      "rdpo m=0",
    );
  });
});

test("defaults are the reference's code defaults", () => {
  const o = resolvePreferenceOptions({});
  assert.equal(o.lossType, "omni_dpo");
  assert.deepEqual([o.beta, o.qualEta, o.tauRef, o.perfGamma, o.nllLambda, o.tauGood], [2.0, 0.1, 0.8, 1.0, 0.01, 7.0]);
  assert.deepEqual([o.useQualityWeight, o.usePerformanceWeight, o.detachPerformanceWeight], [true, true, false]);
  const s = resolvePreferenceOptions({ lossType: "simpo" });
  assert.deepEqual([s.beta, s.gammaBetaRatio, s.simpoForm, s.labelSmoothing], [2.0, 0.25, "sigmoid", 0]);
  for (const lossType of ["dpo", "robust", "ipo", "hinge"] as const)
    assert.equal(resolvePreferenceOptions({ lossType }).beta, 0.1);
  assert.equal(resolvePreferenceOptions({ lossType: "robust" }).robustVariant, "cdpo");
});

test("metrics: rewards, accuracies, margins, logps, Omni-DPO weights and gate, logits pass-through", () => {
  torch.tidy(() => {
    const out = preferenceLoss(
      { ...inputsOf(PAIRS), policyChosenLogitsMean: 1.25, policyRejectedLogitsMean: -0.5 },
      { lossType: "omni_dpo" },
    );
    const mean = (f: (p: Pair) => number) => PAIRS.reduce((a, p) => a + f(p), 0) / PAIRS.length;
    const b = 2;
    const m = out.metrics;
    close(
      m["rewards/chosen"],
      mean((p) => b * (p.pc - p.rc)),
      1e-12,
      "rewards/chosen",
    );
    close(
      m["rewards/rejected"],
      mean((p) => b * (p.pr - p.rr)),
      1e-12,
      "rewards/rejected",
    );
    close(
      m["rewards/margins"],
      mean((p) => b * (p.pc - p.rc) - b * (p.pr - p.rr)),
      1e-12,
      "rewards/margins",
    );
    close(
      m["rewards/accuracies"],
      mean((p) => (b * (p.pc - p.rc) > b * (p.pr - p.rr) ? 1 : 0)),
      1e-15,
      "rewards/accuracies",
    );
    close(
      m["logps/chosen"],
      mean((p) => p.pc),
      1e-15,
      "logps/chosen",
    );
    close(
      m["logps/rejected"],
      mean((p) => p.pr),
      1e-15,
      "logps/rejected",
    );
    close(
      m.w_qual!,
      mean((p) => sigmoid(0.1 * (p.sc - p.sr))),
      1e-12,
      "w_qual",
    );
    close(
      m.w_perf!,
      mean((p) => 1 - sigmoid(b * (p.pc - p.pr) - 0.8)),
      1e-12,
      "w_perf",
    );
    assert.equal(m.nll_gate, 2 / 5); // pairs 0 and 4
    assert.equal(m["logits/chosen"], 1.25);
    assert.equal(m["logits/rejected"], -0.5);
    for (const v of Object.values(m)) assert.equal(typeof v, "number");
    // Rewards come back detached, per pair.
    assert.equal(out.chosenRewards.requiresGrad, false);
    close((out.chosenRewards.toArray() as number[])[1], b * (-0.4 + 0.8), 1e-15, "chosenRewards[1]");

    // Ablated weights read 1, a switched-off gate reads 0; other losses have no Omni metrics.
    const off = preferenceLoss(inputsOf(PAIRS), {
      useQualityWeight: false,
      usePerformanceWeight: false,
      nllLambda: 0,
    }).metrics;
    assert.deepEqual([off.w_qual, off.w_perf, off.nll_gate], [1, 1, 0]);
    const dpo = preferenceLoss(inputsOf(PAIRS), { lossType: "dpo" }).metrics;
    assert.ok(!("w_qual" in dpo) && !("w_perf" in dpo) && !("nll_gate" in dpo) && !("logits/chosen" in dpo));
    // SimPO: rewards are beta * logp (no reference model).
    const simpo = preferenceLoss(inputsOf(PAIRS), { lossType: "simpo", beta: 3 });
    close(
      simpo.metrics["rewards/chosen"],
      mean((p) => 3 * p.pc),
      1e-12,
      "simpo rewards/chosen",
    );
    close(
      simpo.metrics["rewards/margins"],
      mean((p) => 3 * (p.pc - p.pr)),
      1e-12,
      "simpo rewards/margins",
    );
  });
});

test("ablation switches: all off is DPO exactly (values and gradients); each alone changes only its factor", () => {
  torch.tidy(() => {
    const run = (options: PreferenceLossOptions) => {
      const x = inputsOf(PAIRS, true);
      const out = preferenceLoss(x, options);
      out.loss.backward();
      return {
        losses: out.losses.toArray() as number[],
        gc: x.policyChosenLogps.grad!.toArray() as number[],
        gr: x.policyRejectedLogps.grad!.toArray() as number[],
      };
    };
    for (const beta of [0.1, 2, 10]) {
      const off = run({
        lossType: "omni_dpo",
        beta,
        useQualityWeight: false,
        usePerformanceWeight: false,
        nllLambda: 0,
      });
      const dpo = run({ lossType: "dpo", beta });
      assert.deepEqual(off, dpo);
    }
    // Without scores at all, the fully ablated Omni-DPO runs (it needs none).
    const x = inputsOf(PAIRS);
    const noScores = { ...x, scoreChosen: undefined, scoreRejected: undefined };
    assert.deepEqual(
      preferenceLoss(noScores, { useQualityWeight: false, usePerformanceWeight: false, nllLambda: 0 }).losses.toArray(),
      preferenceLoss(x, { lossType: "dpo", beta: 2 }).losses.toArray(),
    );
    // Each switch alone, against the closed form with only that factor removed.
    for (const o of [{ useQualityWeight: false }, { usePerformanceWeight: false }, { nllLambda: 0 }]) {
      const resolved = resolvePreferenceOptions(o);
      (preferenceLoss(x, o).losses.toArray() as number[]).forEach((v, i) =>
        close(v, jsLoss(PAIRS[i], resolved), 1e-12, JSON.stringify(o)),
      );
    }
  });
});

/** d(mean loss)/d(pc), d/d(pr) of Omni-DPO in closed form; `detach` drops w_perf's own derivative. */
function omniGrad(p: Pair, o: ReturnType<typeof resolvePreferenceOptions>, n: number): [number, number] {
  const b = o.beta,
    dpi = p.pc - p.pr,
    m = dpi - (p.rc - p.rr),
    g = o.perfGamma;
  const wq = o.useQualityWeight ? sigmoid(o.qualEta * (p.sc - p.sr)) : 1;
  const s = sigmoid(b * dpi - o.tauRef);
  const wp = o.usePerformanceWeight ? (1 - s) ** g : 1;
  const dwp = o.usePerformanceWeight && !o.detachPerformanceWeight ? g * (1 - s) ** (g - 1) * -s * (1 - s) * b : 0; // d w_perf / d dpi
  const ddpi = -wq * (dwp * logsigmoid(b * m) + wp * b * sigmoid(-b * m)); // d L_pref / d dpi (= d/d m)
  const gate = o.nllLambda > 0 && p.rc > p.pc && p.sc >= o.tauGood ? 1 : 0;
  return [(ddpi - o.nllLambda * gate) / n, -ddpi / n];
}

test("Omni-DPO gradients: through w_perf by default, without it when detachPerformanceWeight; the gate carries none", () => {
  for (const extra of [
    {},
    { detachPerformanceWeight: true },
    { perfGamma: 3, nllLambda: 0.2 },
    { perfGamma: 3, detachPerformanceWeight: true, beta: 5 },
  ]) {
    torch.tidy(() => {
      const resolved = resolvePreferenceOptions(extra);
      const x = inputsOf(PAIRS, true);
      const refC = x.referenceChosenLogps.requiresGrad_();
      const sc = x.scoreChosen.requiresGrad_();
      preferenceLoss(x, extra).loss.backward();
      const gc = x.policyChosenLogps.grad!.toArray() as number[];
      const gr = x.policyRejectedLogps.grad!.toArray() as number[];
      PAIRS.forEach((p, i) => {
        const [ec, er] = omniGrad(p, resolved, PAIRS.length);
        close(gc[i], ec, 1e-12, `${JSON.stringify(extra)} d/dpc[${i}]`);
        close(gr[i], er, 1e-12, `${JSON.stringify(extra)} d/dpr[${i}]`);
      });
      // ref(y_w) enters only through m (and the value-only gate, which adds nothing):
      // d/d rc = -dL/dm = w_qual w_perf beta sigmoid(-beta m) / B.
      const grc = refC.grad!.toArray() as number[];
      PAIRS.forEach((p, i) => {
        const b = resolved.beta,
          dpi = p.pc - p.pr,
          m = dpi - (p.rc - p.rr);
        const wq = sigmoid(resolved.qualEta * (p.sc - p.sr));
        const wp = (1 - sigmoid(b * dpi - resolved.tauRef)) ** resolved.perfGamma;
        close(grc[i], (wq * wp * b * sigmoid(-b * m)) / PAIRS.length, 1e-12, `d/drc[${i}]`);
      });
      // Scores: only through w_qual (the gate's [S_w >= tau_good] carries no gradient).
      const gsc = sc.grad!.toArray() as number[];
      PAIRS.forEach((p, i) => {
        const b = resolved.beta,
          dpi = p.pc - p.pr,
          m = dpi - (p.rc - p.rr);
        const wq = sigmoid(resolved.qualEta * (p.sc - p.sr));
        const wp = (1 - sigmoid(b * dpi - resolved.tauRef)) ** resolved.perfGamma;
        close(
          gsc[i],
          (-resolved.qualEta * wq * (1 - wq) * wp * logsigmoid(b * m)) / PAIRS.length,
          1e-12,
          `d/dsc[${i}]`,
        );
      });
    });
  }
});

test("the c-NLL term uses logp(y_w) as passed (summed log-probs too) and is gated by values", () => {
  torch.tidy(() => {
    // Summed log-probs: large magnitudes; the gate compares them as given.
    const pairs: Pair[] = [
      { pc: -42.5, pr: -60, rc: -40, rr: -61, sc: 9, sr: 2 }, // open
      { pc: -38, pr: -55, rc: -40, rr: -50, sc: 9, sr: 2 }, // ref < policy: closed
    ];
    const o = { nllLambda: 0.5, useQualityWeight: false, usePerformanceWeight: false, beta: 0.1 };
    const losses = preferenceLoss(inputsOf(pairs), o).losses.toArray() as number[];
    close(losses[0], -logsigmoid(0.1 * (17.5 - 21)) + 0.5 * 42.5, 1e-13, "open");
    close(losses[1], -logsigmoid(0.1 * (17 - 10)), 1e-13, "closed");
  });
});

test("dtypes: float32 inputs give float32 outputs; integer scores and float32 references are cast to the policy dtype", () => {
  torch.tidy(() => {
    const f32 = (a: number[]) => torch.tensor(a, { dtype: "float32" });
    const out = preferenceLoss(
      {
        policyChosenLogps: f32([-1, -0.4]),
        policyRejectedLogps: f32([-1.5, -2]),
        referenceChosenLogps: f32([-0.9, -0.8]),
        referenceRejectedLogps: f32([-1.6, -1.1]),
        scoreChosen: torch.tensor([8, 9], { dtype: "int64" }),
        scoreRejected: torch.tensor([3, 8], { dtype: "int32" }),
      },
      {},
    );
    assert.equal(out.losses.dtype, "float32");
    assert.equal(out.chosenRewards.dtype, "float32");
    const expected = [PAIRS[0], { ...PAIRS[1], sr: 8 }].map((p) => jsLoss(p, resolvePreferenceOptions({})));
    (out.losses.toArray() as number[]).forEach((v, i) => close(v, expected[i], 1e-6, `pair ${i}`));
    const mixed = preferenceLoss(
      {
        policyChosenLogps: torch.tensor([-1], { dtype: "float64" }),
        policyRejectedLogps: torch.tensor([-1.5], { dtype: "float64" }),
        referenceChosenLogps: f32([-0.9]),
        referenceRejectedLogps: f32([-1.6]),
      },
      { lossType: "dpo" },
    );
    assert.equal(mixed.losses.dtype, "float64");
  });
});

test("no tensor is left behind: the caller owns exactly losses, loss and the two reward tensors", () => {
  const x = inputsOf(PAIRS, true);
  for (const options of CASES) {
    const before = torch.memory().tensors;
    const out = preferenceLoss(x, options);
    assert.equal(torch.memory().tensors, before + 4, JSON.stringify(options));
    torch.dispose(out);
    assert.equal(torch.memory().tensors, before, JSON.stringify(options));
  }
  // Inside noGrad (evaluation) too.
  const before = torch.memory().tensors;
  const out = torch.noGrad(() => preferenceLoss(x, {}));
  assert.equal(out.loss.requiresGrad, false);
  torch.dispose(out);
  assert.equal(torch.memory().tensors, before);
  torch.dispose(Object.values(x) as Tensor[]);
});
