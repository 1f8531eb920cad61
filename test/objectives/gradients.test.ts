// Finite-difference gradients (float64) of every objective and option, with respect to every
// input: policy and reference log-probs and the scores.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  torch,
  preferenceLoss,
  resolvePreferenceOptions,
  type PreferenceLossOptions,
  type Tensor,
} from "../../src/index.js";
import { gradcheck, values } from "../helpers/gradcheck.js";

const B = 8;
type Data = { values: number[]; shape: number[] }[];

/**
 * Inputs for B pairs: log-probs in [-3, -0.2], scores in [0, 10], from `seed`. Finite differences
 * are exact only away from the kinks, so the data is checked against them (see kinkDistance).
 */
function data(seed: number): Data {
  const pc = values(B, seed, -3, -0.2),
    pr = values(B, seed + 101, -3, -0.2);
  const rc = values(B, seed + 202, -3, -0.2),
    rr = values(B, seed + 303, -3, -0.2);
  const sc = values(B, seed + 404, 0, 10),
    sr = values(B, seed + 505, 0, 10);
  return [pc, pr, rc, rr, sc, sr].map((v) => ({ values: v, shape: [B] }));
}

/** The smallest distance of any pair from a point where the loss (or its gradient) jumps. */
function kinkDistance(d: Data, o: ReturnType<typeof resolvePreferenceOptions>): number {
  const [pc, pr, rc, rr, sc] = d.map((x) => x.values);
  let dist = Infinity;
  for (let i = 0; i < B; i++) {
    const dpi = pc[i] - pr[i],
      m = dpi - (rc[i] - rr[i]);
    if (o.lossType === "hinge") dist = Math.min(dist, Math.abs(1 - o.beta * m));
    if (o.lossType === "simpo" && o.simpoForm === "hinge")
      dist = Math.min(dist, Math.abs(1 - o.beta * (dpi - o.gammaBetaRatio)));
    if (o.lossType === "omni_dpo" && o.nllLambda > 0)
      dist = Math.min(dist, Math.abs(rc[i] - pc[i]), Math.abs(sc[i] - o.tauGood));
  }
  return dist;
}

/** Data for `o` that keeps at least 1e-3 from every kink and has both sides of the gate / hinge. */
function dataFor(o: ReturnType<typeof resolvePreferenceOptions>): Data {
  for (let seed = 1; seed < 200; seed++) {
    const d = data(seed);
    if (kinkDistance(d, o) < 1e-3) continue;
    const [pc, pr, rc, rr, sc] = d.map((x) => x.values);
    const sides = (f: (i: number) => boolean) => {
      const n = pc.filter((_, i) => f(i)).length;
      return n > 0 && n < B;
    };
    if (o.lossType === "omni_dpo" && o.nllLambda > 0 && !sides((i) => rc[i] > pc[i] && sc[i] >= o.tauGood)) continue;
    if (o.lossType === "hinge" && !sides((i) => 1 - o.beta * (pc[i] - pr[i] - rc[i] + rr[i]) > 0)) continue;
    if (
      o.lossType === "simpo" &&
      o.simpoForm === "hinge" &&
      !sides((i) => 1 - o.beta * (pc[i] - pr[i] - o.gammaBetaRatio) > 0)
    )
      continue;
    return d;
  }
  throw new Error("no seed gives data away from the kinks");
}

const lossOf =
  (options: PreferenceLossOptions) => (pc: Tensor, pr: Tensor, rc: Tensor, rr: Tensor, sc: Tensor, sr: Tensor) =>
    preferenceLoss(
      {
        policyChosenLogps: pc,
        policyRejectedLogps: pr,
        referenceChosenLogps: rc,
        referenceRejectedLogps: rr,
        scoreChosen: sc,
        scoreRejected: sr,
      },
      options,
    ).losses;

const CASES: PreferenceLossOptions[] = [
  { lossType: "omni_dpo" },
  { lossType: "omni_dpo", beta: 10, qualEta: 0.7, tauRef: 0.8, perfGamma: 3, nllLambda: 0.001, tauGood: 3.2 },
  { lossType: "omni_dpo", beta: 3.5, qualEta: 0.7, tauRef: 0.8, perfGamma: 3, nllLambda: 0.001, tauGood: 3.2 },
  { lossType: "omni_dpo", beta: 2, qualEta: 0.7, tauRef: 2, perfGamma: 3, nllLambda: 0.2, tauGood: 8 },
  { lossType: "omni_dpo", perfGamma: 0.5, nllLambda: 0.3, tauGood: 5 },
  { lossType: "omni_dpo", perfGamma: 0 },
  { lossType: "omni_dpo", nllLambda: 0 },
  { lossType: "omni_dpo", nllLambda: 0.1, tauGood: -Infinity },
  { lossType: "omni_dpo", useQualityWeight: false },
  { lossType: "omni_dpo", usePerformanceWeight: false, perfGamma: 3 },
  { lossType: "omni_dpo", useQualityWeight: false, usePerformanceWeight: false, nllLambda: 0 },
  { lossType: "omni_dpo", useQualityWeight: false, usePerformanceWeight: false, nllLambda: 0.5, tauGood: 5 },
  { lossType: "dpo" },
  { lossType: "dpo", beta: 2 },
  { lossType: "robust", labelSmoothing: 0.1 },
  { lossType: "robust", beta: 1, labelSmoothing: 0.4 },
  { lossType: "robust", labelSmoothing: 0.2, robustVariant: "rdpo" },
  { lossType: "robust", beta: 3, labelSmoothing: 0.45, robustVariant: "rdpo" },
  { lossType: "ipo" },
  { lossType: "ipo", beta: 0.5 },
  { lossType: "hinge", beta: 2 },
  { lossType: "hinge", beta: 0.9 },
  { lossType: "simpo" },
  { lossType: "simpo", beta: 2.5, gammaBetaRatio: 0.55, labelSmoothing: 0.2 },
  { lossType: "simpo", simpoForm: "hinge" },
  { lossType: "simpo", simpoForm: "hinge", beta: 1.5, gammaBetaRatio: -0.2 },
  { lossType: "rpo", rpoAlpha: 1 },
  { lossType: "rpo", beta: 0.5, rpoAlpha: 0.25 },
];

for (const options of CASES) {
  test(`gradcheck: ${JSON.stringify(options)}`, () => {
    const d = dataFor(resolvePreferenceOptions(options));
    gradcheck(lossOf(options), d, { atol: 1e-7, rtol: 1e-6 });
  });
}

test("gradcheck: the mean loss, and the whole batch at once on summed (large) log-probs", () => {
  const o: PreferenceLossOptions = { lossType: "omni_dpo", beta: 0.1, perfGamma: 2, nllLambda: 0.05 };
  const d = dataFor(resolvePreferenceOptions(o)).map((x, i) =>
    i < 4 ? { ...x, values: x.values.map((v) => v * 40) } : x,
  );
  gradcheck(
    (...xs: Tensor[]) => {
      const [pc, pr, rc, rr, sc, sr] = xs;
      return preferenceLoss(
        {
          policyChosenLogps: pc,
          policyRejectedLogps: pr,
          referenceChosenLogps: rc,
          referenceRejectedLogps: rr,
          scoreChosen: sc,
          scoreRejected: sr,
        },
        o,
      ).loss;
    },
    d,
    { atol: 1e-7, rtol: 1e-6 },
  );
});

// detachPerformanceWeight has, by design, not the gradient of the loss it computes: it is the
// gradient with w_perf held constant. So: (1) finite differences verify the autograd gradient
// of F(x) = W * [loss with w_perf switched off] + [c-NLL], W frozen at w_perf(x0); (2) the
// detached gradient at x0 equals F's.
for (const extra of [
  {},
  { perfGamma: 3, beta: 5, nllLambda: 0.2, tauGood: 5 },
  { useQualityWeight: false, perfGamma: 0.5 },
]) {
  test(`gradcheck: detachPerformanceWeight ${JSON.stringify(extra)}`, () => {
    const options: PreferenceLossOptions = { lossType: "omni_dpo", ...extra, detachPerformanceWeight: true };
    const o = resolvePreferenceOptions(options);
    const d = dataFor(o);
    const [pc0, pr0] = [d[0].values, d[1].values];
    const W = pc0.map((_, i) => (1 - 1 / (1 + Math.exp(-(o.beta * (pc0[i] - pr0[i]) - o.tauRef)))) ** o.perfGamma);
    const F = (pc: Tensor, pr: Tensor, rc: Tensor, rr: Tensor, sc: Tensor, sr: Tensor) => {
      const x = {
        policyChosenLogps: pc,
        policyRejectedLogps: pr,
        referenceChosenLogps: rc,
        referenceRejectedLogps: rr,
        scoreChosen: sc,
        scoreRejected: sr,
      };
      const pref = preferenceLoss(x, { ...options, usePerformanceWeight: false, nllLambda: 0 }).losses;
      const base = { lossType: "omni_dpo" as const, useQualityWeight: false, usePerformanceWeight: false };
      const nll = preferenceLoss(x, { ...base, nllLambda: o.nllLambda, tauGood: o.tauGood, beta: o.beta }).losses.sub(
        preferenceLoss(x, { ...base, nllLambda: 0, beta: o.beta }).losses,
      );
      return pref.mul(torch.tensor(W, { dtype: "float64" })).add(nll);
    };
    gradcheck(F, d, { atol: 1e-7, rtol: 1e-6 });
    torch.tidy(() => {
      const weight = torch.tensor(
        Array.from({ length: B }, (_, i) => Math.sin(i + 1) + 1.5),
        { dtype: "float64" },
      );
      const grads = (fn: (...xs: Tensor[]) => Tensor) => {
        const xs = d.map((x) => torch.tensor(x.values, { dtype: "float64", requiresGrad: true }));
        fn(...xs)
          .mul(weight)
          .sum()
          .backward();
        return xs.map((x) => (x.grad ? (x.grad.toArray() as number[]) : new Array<number>(B).fill(0)));
      };
      const detached = grads(lossOf(options));
      const frozen = grads(F);
      detached.forEach((g, k) =>
        g.forEach((v, i) =>
          assert.ok(
            Math.abs(v - frozen[k][i]) <= 1e-12 * Math.max(1, Math.abs(v)),
            `input ${k}[${i}]: ${v} vs ${frozen[k][i]}`,
          ),
        ),
      );
      // And it differs from the full gradient (the reference's), which flows through w_perf.
      const full = grads(lossOf({ ...options, detachPerformanceWeight: false }));
      assert.ok(full[0].some((v, i) => Math.abs(v - detached[0][i]) > 1e-6));
    });
  });
}
