// The built-in losses, one declaration each: Omni-DPO and the baselines it is measured against.
// Each is written as its reference computes it (Uni-DPO's trainers for omni_dpo and simpo, TRL's
// DPOTrainer for the DPO family), op for op where the order of floating-point operations could
// matter. Symbols and formulas: docs/method.md. Every tensor here is [B], one value per pair:
//   dpi = logp(y_w) - logp(y_l),  dref = ref(y_w) - ref(y_l),  m = dpi - dref.
import type { Tensor } from "../torch/index.js";
import { defineLoss, type LossInputs, type OptionSpec } from "./spec.js";

/** The policy margin dpi [B]. */
function policyMargin(x: LossInputs): Tensor {
  return x.policyChosenLogps.sub(x.policyRejectedLogps);
}

/** The reference-adjusted margin m = dpi - dref [B]. */
function margin(x: LossInputs, dpi: Tensor = policyMargin(x)): Tensor {
  return dpi.sub(x.referenceChosenLogps!.sub(x.referenceRejectedLogps!));
}

/** -(1-e) logsigmoid(z) - e logsigmoid(-z) [B]: TRL's `sigmoid` loss with label smoothing e (cDPO); e = 0 is DPO. */
function smoothedSigmoid(z: Tensor, e: number): Tensor {
  const main = z.logsigmoid().neg();
  if (e === 0) return main;
  return main.mul(1 - e).sub(z.neg().logsigmoid().mul(e));
}

/** A weight [B], or (ablated) the exact constant 1: multiplying by it is then no operation at all. */
type Weight = Tensor | 1;
function times(a: Weight, b: Tensor): Tensor;
function times(a: Weight, b: Weight): Weight;
function times(a: Weight, b: Weight): Weight {
  return a === 1 ? b : b === 1 ? a : a.mul(b);
}

const omniKeys = (name: string) => [`uni_dpo_${name}`, `omni_dpo_${name}`];

/**
 * Omni-DPO (arXiv 2506.10054): DPO's pair loss weighted by the pair's quality (w_qual, from the
 * judge's scores) and by how well the policy already fits it (w_perf), plus a calibrated NLL on
 * good chosen answers the policy rates below the reference. Parity facts (docs/method.md):
 * w_perf reads the policy margin dpi, not m, and gradients flow through it as in the reference
 * (detachPerformanceWeight stops them); w_qual is a function of data only; the c-NLL gate is
 * built from values (the reference's clamp(sign(ref - logp), min=0) has zero gradient), so the
 * c-NLL term's gradient is -lambda * gate with respect to logp(y_w) alone; logp(y_w) is whatever
 * the caller passed (length-normalised, the reference default, or summed).
 */
export const omniDpo = defineLoss({
  name: "omni_dpo",
  aliases: ["uni_dpo", "unidpo", "omnidpo"],
  title: "Omni-DPO",
  equation: "`-w_qual·w_perf·logσ(β·m) - λ·[ref(y_w) > logp(y_w)]·[S_w ≥ τ_good]·logp(y_w)`, with " +
    "`w_qual = σ(η·(S_w - S_l))`, `w_perf = (1 - σ(β·dpi - τ_ref))^γ`",
  needsReference: true,
  needsScores: (o) => {
    const quality = "omni_dpo's quality weight w_qual (set useQualityWeight: false to ablate it)";
    if (o.useQualityWeight) return { scoreChosen: quality, scoreRejected: quality };
    if (o.nllLambda > 0) return { scoreChosen: "omni_dpo's c-NLL gate [S_w >= tauGood] (set nllLambda: 0 to turn c-NLL off)" };
    return {};
  },
  beta: { default: 2.0, mathDefault: 0.1 },
  options: {
    qualEta: {
      default: 0.1, mathDefault: 0.7, check: "nonnegative", symbol: "η", keys: omniKeys("qual_eta"),
      help: "scale of the score margin in the quality weight w_qual = σ(η (S_w - S_l))",
    },
    tauRef: {
      default: 0.8, mathDefault: 2.0, check: "finite", symbol: "τ_ref", keys: omniKeys("tau_ref"),
      help: "the policy margin (times beta) at which w_perf = (1 - σ(β dpi - τ_ref))^γ is 0.5^γ",
    },
    perfGamma: {
      default: 1.0, mathDefault: 3.0, check: "nonnegative", symbol: "γ", keys: omniKeys("perf_gamma"),
      help: "focal exponent of w_perf: how strongly pairs the policy already fits are down-weighted",
    },
    nllLambda: {
      default: 0.01, mathDefault: 0.001, check: "nonnegative", symbol: "λ", keys: omniKeys("nll_lambda"),
      // The reference applies c-NLL only when lambda > 0, so a negative lambda in a YAML means off.
      fromYaml: (v: number) => (v < 0 ? 0 : v),
      help: "weight of the calibrated NLL of the chosen answer; 0 turns c-NLL off",
    },
    tauGood: {
      // +-Infinity is allowed: the gate then never / always opens by score.
      default: 7.0, mathDefault: 2.5, check: "notNaN", symbol: "τ_good", keys: omniKeys("tau_good"),
      help: "the c-NLL gate opens only for pairs whose chosen score S_w >= τ_good",
    },
    useQualityWeight: {
      default: true, keys: omniKeys("use_qual_weight"),
      help: "ablation: false replaces w_qual by 1 (the scores are then unused by the weight)",
    },
    usePerformanceWeight: {
      default: true, keys: omniKeys("use_perf_weight"),
      help: "ablation: false replaces w_perf by 1",
    },
    detachPerformanceWeight: {
      default: false, keys: omniKeys("detach_perf_weight"),
      help: "stop the gradient through w_perf (the reference lets it flow)",
    },
  },
  losses(x, o) {
    const dpi = policyMargin(x);
    const m = margin(x, dpi);
    // w_qual = σ(η (S_w - S_l))                          [B]; a function of the data only
    const wQual: Weight = o.useQualityWeight ? x.scoreChosen!.sub(x.scoreRejected!).mul(o.qualEta).sigmoid() : 1;
    // w_perf = (1 - σ(β dpi - τ_ref))^γ                  [B]; the policy margin dpi, not m
    let wPerf: Weight = o.usePerformanceWeight ? dpi.mul(o.beta).sub(o.tauRef).sigmoid().neg().add(1).pow(o.perfGamma) : 1;
    if (o.detachPerformanceWeight && wPerf !== 1) wPerf = wPerf.detach();
    // L = -w_qual w_perf logσ(β m)                       [B]
    let losses = times(times(wQual, wPerf), m.mul(o.beta).logsigmoid()).neg();
    // c-NLL: + λ [ref(y_w) > logp(y_w)] [S_w >= τ_good] (-logp(y_w)); the gate [B] is made of
    // values and carries no gradient.
    let gate: Tensor | null = null;
    if (o.nllLambda > 0) {
      gate = x.referenceChosenLogps!.gt(x.policyChosenLogps.detach()).logicalAnd(x.scoreChosen!.ge(o.tauGood)).to(x.dtype);
      losses = losses.sub(gate.mul(o.nllLambda).mul(x.policyChosenLogps));
    }
    // The weights as applied (1 when ablated) and the fraction of open gates (0 when c-NLL is off).
    return { losses, metrics: { w_qual: wQual, w_perf: wPerf, nll_gate: gate ?? 0 } };
  },
});

/** DPO (TRL's `sigmoid`). */
export const dpo = defineLoss({
  name: "dpo",
  title: "DPO",
  equation: "`-logσ(β·m)`",
  needsReference: true,
  config: [{ value: "dpo" }, { value: "sigmoid", style: "math" }],
  losses: (x, o) => smoothedSigmoid(margin(x).mul(o.beta), 0),
});

/** Label smoothing e: robust's, and SimPO's sigmoid form's (as the Textual reference applies it). */
const LABEL_SMOOTHING = {
  default: 0, check: "nonnegative", symbol: "e", keys: ["label_smoothing"],
  refine: (e: number) => (e <= 1 ? null : "must be in [0, 1]"),
  help: "label smoothing e: the assumed probability that a pair's preference is flipped",
} as const satisfies OptionSpec;

/** TRL's sigmoid loss with label smoothing is conservative DPO. */
const SMOOTHED = { key: "label_smoothing", holds: (e: number) => e > 0, text: "`label_smoothing` > 0" };

/**
 * robust with label smoothing e: cdpo, conservative DPO (TRL's `sigmoid` with label_smoothing),
 * the default; or rdpo, the unbiased robust DPO of Chowdhury et al. 2024 (TRL's `robust`).
 */
export const robust = defineLoss({
  name: "robust",
  title: "robust DPO",
  equation: "`cdpo`: `-(1-e)·logσ(β·m) - e·logσ(-β·m)`; `rdpo`: `((1-e)·(-logσ(β·m)) + e·logσ(-β·m)) / (1-2e)`",
  needsReference: true,
  config: [
    { value: "robust", style: "textual" },
    { value: "robust", style: "math", set: { robustVariant: "rdpo" } },
    { value: "cdpo", style: "math", set: { robustVariant: "cdpo" } },
    { value: "sigmoid", style: "math", when: SMOOTHED, set: { robustVariant: "cdpo" } },
    { value: "dpo", when: SMOOTHED, set: { robustVariant: "cdpo" } },
  ],
  options: {
    labelSmoothing: LABEL_SMOOTHING,
    robustVariant: { default: "cdpo", values: ["cdpo", "rdpo"], keys: [], help: "which robust loss: cdpo or rdpo" },
  },
  validate: (o) => (o.robustVariant === "rdpo" && !(o.labelSmoothing < 0.5)
    ? { option: "labelSmoothing", message: "must be < 0.5 for the rdpo form of robust (it divides by 1 - 2e)" }
    : null),
  losses(x, o) {
    const z = margin(x).mul(o.beta);
    const e = o.labelSmoothing;
    return o.robustVariant === "cdpo"
      ? smoothedSigmoid(z, e)
      : z.logsigmoid().neg().mul(1 - e).add(z.neg().logsigmoid().mul(e)).div(1 - 2 * e);
  },
});

/** IPO. The IPO paper, and TRL, use length-normalised log-probs. */
export const ipo = defineLoss({
  name: "ipo",
  title: "IPO",
  equation: "`(m - 1/(2β))^2`",
  needsReference: true,
  losses: (x, o) => margin(x).sub(1 / (2 * o.beta)).pow(2),
});

/** Hinge (SLiC); in a Textual-style YAML `loss_type: hinge` is SimPO's form instead. */
export const hinge = defineLoss({
  name: "hinge",
  title: "hinge (SLiC)",
  equation: "`relu(1 - β·m)`",
  needsReference: true,
  losses: (x, o) => margin(x).mul(o.beta).neg().add(1).relu(),
});

/**
 * SimPO: no reference model; log-probs length-normalised. The sigmoid form applies label
 * smoothing as the Textual reference does (the Math reference's SimPO has none); rewards are
 * beta logp, as the reference (and TRL's CPO/SimPO) log them.
 */
export const simpo = defineLoss({
  name: "simpo",
  title: "SimPO",
  equation: "`sigmoid`: `-(1-e)·logσ(β·(dpi - r)) - e·logσ(-β·(dpi - r))`; `hinge`: `relu(1 - β·(dpi - r))`",
  needsReference: false,
  beta: { default: 2.0, mathDefault: 0.1 },
  options: {
    gammaBetaRatio: {
      default: 0.25, check: "finite", symbol: "r", keys: ["gamma_beta_ratio"],
      derived: {
        key: "simpo_gamma", mathDefault: 1.0, compute: (gamma, beta) => gamma / beta, text: "r = simpo_gamma / β",
        help: "SimPO's target margin gamma, as the Math trainer takes it (gamma_beta_ratio = simpo_gamma / beta)",
      },
      help: "SimPO's target margin over beta, gamma / beta",
    },
    simpoForm: {
      default: "sigmoid", values: ["sigmoid", "hinge"], keys: ["loss_type"], style: "textual", label: "SimPO's form",
      help: "SimPO's loss form (in a Textual-style YAML, loss_type)",
    },
    labelSmoothing: LABEL_SMOOTHING,
  },
  readIn: { labelSmoothing: "textual" },
  losses(x, o) {
    const z = policyMargin(x).sub(o.gammaBetaRatio).mul(o.beta);   // β (dpi - r)
    return o.simpoForm === "sigmoid" ? smoothedSigmoid(z, o.labelSmoothing) : z.neg().add(1).relu();
  },
});

const WITH_RPO_ALPHA = { key: "rpo_alpha", holds: () => true, text: "`rpo_alpha`" };

/**
 * RPO: DPO plus alpha times the NLL of the chosen response. TRL adds alpha times the chosen
 * responses' token-mean cross-entropy; from sequence log-probs the per-pair NLL is -logp(y_w),
 * which with length-normalised log-probs is that response's per-token cross-entropy. (TRL's
 * batch term averages over all chosen tokens of the batch, so it weights pairs by length; the
 * two agree when the chosen lengths are equal.)
 */
export const rpo = defineLoss({
  name: "rpo",
  title: "RPO",
  equation: "`-logσ(β·m) - α·logp(y_w)`",
  needsReference: true,
  config: [{ value: "rpo" }, { value: "sigmoid", style: "math", when: WITH_RPO_ALPHA }, { value: "dpo", when: WITH_RPO_ALPHA }],
  options: {
    rpoAlpha: {
      type: "number", default: null, check: "nonnegative", symbol: "α", keys: ["rpo_alpha"], exclusive: true,
      required: "the weight of the chosen NLL; the RPO paper uses 1.0",
      help: "weight of the chosen answer's NLL added to DPO (the reference has no default: unset means off)",
    },
  },
  losses: (x, o) => smoothedSigmoid(margin(x).mul(o.beta), 0).sub(x.policyChosenLogps.mul(o.rpoAlpha!)),
});

/** The built-in losses, in the order they are listed (README, errors). */
export const BUILTIN_LOSSES = [omniDpo, dpo, robust, ipo, hinge, simpo, rpo] as const;
