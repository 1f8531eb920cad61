// The built-in losses, one declaration each: Omni-DPO and the baselines it is measured against.
// Each is written as its reference computes it (Uni-DPO's trainers for omni_dpo and simpo, TRL's
// DPOTrainer (v1.x) for the DPO family, TRL's ORPOTrainer for ORPO), op for op where the order of
// floating-point operations could matter. Symbols and formulas: docs/method.md. Every tensor here
// is [B], one value per pair:
//   dpi = logp(y_w) - logp(y_l),  dref = ref(y_w) - ref(y_l),  m = dpi - dref,
// and for TRL's losses the scores s_w = f(logp(y_w) - ref(y_w)), s_l likewise, Δs = s_w - s_l,
// with f given by f_divergence_type (the identity for reverse_kl, where Δs = m).
import * as torch from "../torch/index.js";
import type { DType, Tensor } from "../torch/index.js";
import { defineLoss, type ConfigName, type LossInputs, type LossOptions, type OptionSpec } from "./spec.js";

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

const omniKeys = <const S extends string>(name: S) => [`uni_dpo_${name}`, `omni_dpo_${name}`] as const;

/** λ: Omni-DPO's c-NLL weight, and DPOP's penalty weight (the Math trainer reads both from uni_dpo_nll_lambda). */
const NLL_LAMBDA = {
  default: 0.01,
  mathDefault: 0.001,
  check: "nonnegative",
  symbol: "λ",
  keys: omniKeys("nll_lambda"),
  // The reference applies c-NLL only when lambda > 0, so a negative lambda in a YAML means off.
  fromYaml: (v: number) => (v < 0 ? 0 : v),
  help: "weight of omni_dpo's calibrated NLL of the chosen answer (0 turns c-NLL off), and of dpop's penalty",
} as const satisfies OptionSpec;

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
  equation:
    "`-w_qual·w_perf·logσ(β·m) - λ·[ref(y_w) > logp(y_w)]·[S_w ≥ τ_good]·logp(y_w)`, with " +
    "`w_qual = σ(η·(S_w - S_l))`, `w_perf = (1 - σ(β·dpi - τ_ref))^γ`",
  needsReference: true,
  needsScores: (o) => {
    const quality = "omni_dpo's quality weight w_qual (set useQualityWeight: false to ablate it)";
    if (o.useQualityWeight) return { scoreChosen: quality, scoreRejected: quality };
    if (o.nllLambda > 0)
      return { scoreChosen: "omni_dpo's c-NLL gate [S_w >= tauGood] (set nllLambda: 0 to turn c-NLL off)" };
    return {};
  },
  beta: { default: 2.0, mathDefault: 0.1 },
  options: {
    qualEta: {
      default: 0.1,
      mathDefault: 0.7,
      check: "nonnegative",
      symbol: "η",
      keys: omniKeys("qual_eta"),
      help: "scale of the score margin in the quality weight w_qual = σ(η (S_w - S_l))",
    },
    tauRef: {
      default: 0.8,
      mathDefault: 2.0,
      check: "finite",
      symbol: "τ_ref",
      keys: omniKeys("tau_ref"),
      help: "the policy margin (times beta) at which w_perf = (1 - σ(β dpi - τ_ref))^γ is 0.5^γ",
    },
    perfGamma: {
      default: 1.0,
      mathDefault: 3.0,
      check: "nonnegative",
      symbol: "γ",
      keys: omniKeys("perf_gamma"),
      help: "focal exponent of w_perf: how strongly pairs the policy already fits are down-weighted",
    },
    nllLambda: NLL_LAMBDA,
    tauGood: {
      // +-Infinity is allowed: the gate then never / always opens by score.
      default: 7.0,
      mathDefault: 2.5,
      check: "notNaN",
      symbol: "τ_good",
      keys: omniKeys("tau_good"),
      help: "the c-NLL gate opens only for pairs whose chosen score S_w >= τ_good",
    },
    useQualityWeight: {
      default: true,
      keys: omniKeys("use_qual_weight"),
      help: "ablation: false replaces w_qual by 1 (the scores are then unused by the weight)",
    },
    usePerformanceWeight: {
      default: true,
      keys: omniKeys("use_perf_weight"),
      help: "ablation: false replaces w_perf by 1",
    },
    detachPerformanceWeight: {
      default: false,
      keys: omniKeys("detach_perf_weight"),
      help: "stop the gradient through w_perf (the reference lets it flow)",
    },
  },
  losses(x, o) {
    const dpi = policyMargin(x);
    const m = margin(x, dpi);
    // w_qual = σ(η (S_w - S_l))                          [B]; a function of the data only
    const wQual: Weight = o.useQualityWeight ? x.scoreChosen!.sub(x.scoreRejected!).mul(o.qualEta).sigmoid() : 1;
    // w_perf = (1 - σ(β dpi - τ_ref))^γ                  [B]; the policy margin dpi, not m
    let wPerf: Weight = o.usePerformanceWeight
      ? dpi.mul(o.beta).sub(o.tauRef).sigmoid().neg().add(1).pow(o.perfGamma)
      : 1;
    if (o.detachPerformanceWeight && wPerf !== 1) wPerf = wPerf.detach();
    // L = -w_qual w_perf logσ(β m)                       [B]
    let losses = times(times(wQual, wPerf), m.mul(o.beta).logsigmoid()).neg();
    // c-NLL: + λ [ref(y_w) > logp(y_w)] [S_w >= τ_good] (-logp(y_w)); the gate [B] is made of
    // values and carries no gradient.
    let gate: Tensor | null = null;
    if (o.nllLambda > 0) {
      gate = x
        .referenceChosenLogps!.gt(x.policyChosenLogps.detach())
        .logicalAnd(x.scoreChosen!.ge(o.tauGood))
        .to(x.dtype);
      losses = losses.sub(gate.mul(o.nllLambda).mul(x.policyChosenLogps));
    }
    // The weights as applied (1 when ablated) and the fraction of open gates (0 when c-NLL is off).
    return { losses, metrics: { w_qual: wQual, w_perf: wPerf, nll_gate: gate ?? 0 } };
  },
});

// --- TRL's DPOTrainer losses -------------------------------------------------------------------

/** TRL's f_divergence_type: the f whose derivative turns a log-ratio into a score (f-DPO, arXiv 2309.16240). */
const F_DIVERGENCE = {
  default: "reverse_kl",
  values: ["reverse_kl", "forward_kl", "js_divergence", "alpha_divergence"],
  keys: ["f_divergence_type"],
  help: "f-DPO's divergence: the score of a log-ratio u is u (reverse_kl), -e^-u (forward_kl), logσ(u) (js_divergence) or e^((α-1)u)/(α-1) (alpha_divergence)",
} as const satisfies OptionSpec;

const F_ALPHA = {
  default: 0.5,
  check: "finite",
  symbol: "α",
  keys: ["f_alpha_divergence_coef"],
  help: "α of f_divergence_type alpha_divergence (within 1e-6 of 1 it is reverse_kl)",
} as const satisfies OptionSpec;

/** TRL's use_weighting: WPO's per-pair weight (the log-prob pass computes the answers' weights inside its chunks: tokens). */
const USE_WEIGHTING = {
  // exclusive: a YAML asking for WPO with a loss that cannot apply it is an error, not ignored.
  default: false,
  keys: ["use_weighting"],
  exclusive: true,
  tokens: "answerWeights",
  help: "WPO (arXiv 2406.11827): multiply each pair's loss by its answers' weights exp(mean_t (logp_t - log Σ_v p_v²)), from the policy, without gradient",
} as const satisfies OptionSpec;

/**
 * TRL's ld_alpha (LD-DPO, arXiv 2409.06411): the tokens of each answer past the shorter answer's
 * length count alpha times in its log-prob, for the policy and the reference alike. The log-prob
 * pass applies it inside its chunks (src/logprobs/forward.ts, by `tokens`); the losses see the result.
 */
const LD_ALPHA = {
  type: "number",
  default: null,
  keys: ["ld_alpha"],
  exclusive: true,
  tokens: "lengthWeight",
  refine: (v: number | null) => (v === null || (v >= 0 && v <= 1) ? null : "must be in [0, 1]"),
  help: "LD-DPO: weight α of each answer's tokens past the shorter answer's length in its log-prob (policy and reference); None: off",
} as const satisfies OptionSpec;

/** Options every TRL DPOTrainer loss type reads. */
const TRL_OPTIONS = { useWeighting: USE_WEIGHTING, ldAlpha: LD_ALPHA };
const F_OPTIONS = { fDivergenceType: F_DIVERGENCE, fAlphaDivergenceCoef: F_ALPHA, ...TRL_OPTIONS };

/** The largest exponent TRL lets alpha_divergence's exp take, so that it stays finite in the dtype. */
const ALPHA_CLAMP: Partial<Record<DType, number>> = { float16: 11, bfloat16: 80, float32: 80, float64: 80 };

/**
 * A log-ratio's score under f_divergence_type [B], as TRL computes it. (TRL computes
 * alpha_divergence's exp in float32 and has no float64 entry; in float64 it stays float64 here.)
 */
function fScore(u: Tensor, o: LossOptions): Tensor {
  switch (o.fDivergenceType) {
    case "forward_kl":
      return u.neg().exp().neg(); // f'(t) = 1 - 1/t, constant dropped
    case "js_divergence":
      return u.logsigmoid(); // f'(t) = log(2t / (t + 1)), log 2 dropped
    case "alpha_divergence": {
      const a = o.fAlphaDivergenceCoef as number;
      if (Math.abs(a - 1) < 1e-6) return u; // the limit is log t: reverse_kl
      const t = u.mul(a - 1);
      const work = t.dtype === "float64" ? t : t.to("float32");
      return work
        .clamp(null, ALPHA_CLAMP[t.dtype] ?? 80)
        .exp()
        .to(t.dtype)
        .mul(1 / (a - 1));
    }
    default:
      return u; // reverse_kl: standard DPO
  }
}

/** The scores s_w, s_l [B] of the chosen and rejected answers. */
function scores(x: LossInputs, o: LossOptions): [Tensor, Tensor] {
  return [
    fScore(x.policyChosenLogps.sub(x.referenceChosenLogps!), o),
    fScore(x.policyRejectedLogps.sub(x.referenceRejectedLogps!), o),
  ];
}

/** β Δs = β (s_w - s_l) [B]; for reverse_kl it is β m, computed as m (dpi - dref, so that DPO stays bit-equal to ablated Omni-DPO). */
function scoreMargin(x: LossInputs, o: LossOptions): Tensor {
  const identity =
    o.fDivergenceType === "reverse_kl" ||
    (o.fDivergenceType === "alpha_divergence" && Math.abs((o.fAlphaDivergenceCoef as number) - 1) < 1e-6);
  if (identity) return margin(x).mul(o.beta);
  const [sw, sl] = scores(x, o);
  return sw.sub(sl).mul(o.beta);
}

/** A log-prob [B] summed over the answer's tokens: the per-token mean times the length, or the sum as given. */
function summed(x: LossInputs, logps: Tensor, lengths: Tensor): Tensor {
  return x.logpsPerToken ? logps.mul(lengths) : logps;
}

/**
 * The per-token scores [B] TRL's ipo and sigmoid_norm use: f of the summed log-ratio, divided by
 * the answer's token count (at least 1). Without token counts, the log-probs are taken as
 * already per token.
 */
function perTokenScores(x: LossInputs, o: LossOptions): [Tensor, Tensor] {
  if (!x.chosenLengths || !x.rejectedLengths) return scores(x, o);
  const per = (logp: Tensor, ref: Tensor, lengths: Tensor) =>
    fScore(summed(x, logp, lengths).sub(summed(x, ref, lengths)), o).div(lengths.clamp(1));
  return [
    per(x.policyChosenLogps, x.referenceChosenLogps!, x.chosenLengths),
    per(x.policyRejectedLogps, x.referenceRejectedLogps!, x.rejectedLengths),
  ];
}

/**
 * The chosen answers' token-mean NLL over the whole batch, as every pair's value [B]: the cross
 * entropy TRL's sft term, ORPO and SimPO's sft_weight take over all chosen tokens of the batch
 * (so longer answers weigh more), -Σ_i logp_sum(y_w,i) / Σ_i |y_w,i|.
 */
function chosenTokenNll(x: LossInputs): Tensor {
  const total = summed(x, x.policyChosenLogps, x.chosenLengths!).sum(); // []
  return total.div(x.chosenLengths!.sum()).neg().expand([x.batchSize]);
}

/** DPO (TRL's `sigmoid`, DPO paper eq. 7): `-logσ(β Δs)`. Since TRL v0.29 label_smoothing does not change it: that is `cdpo`. */
export const dpo = defineLoss({
  name: "dpo",
  title: "DPO",
  equation: "`-logσ(β·Δs)`",
  needsReference: true,
  trlLossType: "sigmoid",
  config: [{ value: "dpo" }, { value: "sigmoid", style: "math" }],
  options: F_OPTIONS,
  losses: (x, o) => smoothedSigmoid(scoreMargin(x, o), 0),
});

/** Label smoothing e: robust's, exo_pair's, aot's, dpop's, and SimPO's sigmoid form's (as the Textual reference applies it). */
const LABEL_SMOOTHING = {
  default: 0,
  check: "nonnegative",
  symbol: "e",
  keys: ["label_smoothing"],
  refine: (e: number) => (e <= 1 ? null : "must be in [0, 1]"),
  help: "label smoothing e: the assumed probability that a pair's preference is flipped",
} as const satisfies OptionSpec;

/** A Textual-style `pref_loss: dpo` with label smoothing is cDPO: the Textual trainer smooths its sigmoid loss so. */
const SMOOTHED = { key: "label_smoothing", holds: (e: number) => e > 0, text: "`label_smoothing` > 0" };

/**
 * robust with label smoothing e: cdpo, conservative DPO (Mitchell 2023; TRL's `sigmoid` with
 * label_smoothing up to v0.28), the default; or rdpo, the unbiased robust DPO of Chowdhury et
 * al. 2024 eq. 5 (TRL's `robust`).
 */
export const robust = defineLoss({
  name: "robust",
  title: "robust DPO",
  equation: "`cdpo`: `-(1-e)·logσ(β·Δs) - e·logσ(-β·Δs)`; `rdpo`: `((1-e)·(-logσ(β·Δs)) + e·logσ(-β·Δs)) / (1-2e)`",
  needsReference: true,
  trlLossType: "robust",
  config: [
    { value: "robust", style: "textual" },
    { value: "robust", style: "math", set: { robustVariant: "rdpo" } },
    { value: "cdpo", set: { robustVariant: "cdpo" } },
    { value: "dpo", style: "textual", when: SMOOTHED, set: { robustVariant: "cdpo" } },
  ],
  options: {
    labelSmoothing: LABEL_SMOOTHING,
    robustVariant: { default: "cdpo", values: ["cdpo", "rdpo"], keys: [], help: "which robust loss: cdpo or rdpo" },
    ...F_OPTIONS,
  },
  validate: (o) =>
    o.robustVariant === "rdpo" && !(o.labelSmoothing < 0.5)
      ? { option: "labelSmoothing", message: "must be < 0.5 for the rdpo form of robust (it divides by 1 - 2e)" }
      : null,
  losses(x, o) {
    const z = scoreMargin(x, o);
    const e = o.labelSmoothing;
    return o.robustVariant === "cdpo"
      ? smoothedSigmoid(z, e)
      : z
          .logsigmoid()
          .neg()
          .mul(1 - e)
          .add(z.neg().logsigmoid().mul(e))
          .div(1 - 2 * e);
  },
});

/**
 * IPO (arXiv 2310.12036 eq. 17): `(Δs_tok - 1/(2β))^2`, with TRL's per-token scores (f of the
 * summed log-ratio over the token count). Without token counts the log-probs are taken as
 * per-token already (the trainer's default, dpo_length_norm: true, gives the same value).
 */
export const ipo = defineLoss({
  name: "ipo",
  title: "IPO",
  equation: "`(s_w/|y_w| - s_l/|y_l| - 1/(2β))^2`",
  needsReference: true,
  trlLossType: "ipo",
  options: F_OPTIONS,
  losses(x, o) {
    const [sw, sl] = perTokenScores(x, o);
    return sw
      .sub(sl)
      .sub(1 / (2 * o.beta))
      .pow(2);
  },
});

/** Hinge (SLiC, arXiv 2305.10425 eq. 3); in a Textual-style YAML `loss_type: hinge` is SimPO's form instead. */
export const hinge = defineLoss({
  name: "hinge",
  title: "hinge (SLiC)",
  equation: "`relu(1 - β·Δs)`",
  needsReference: true,
  trlLossType: "hinge",
  options: F_OPTIONS,
  losses: (x, o) => scoreMargin(x, o).neg().add(1).relu(),
});

/**
 * EXO (arXiv 2402.00856 eq. 16, K = 2): KL(q || p) between q = softmax over the pair of β
 * times the scores and p = (1-e, e): `q_w (log q_w - log(1-e)) + q_l (log q_l - log e)`.
 */
export const exoPair = defineLoss({
  name: "exo_pair",
  title: "EXO",
  equation: "`σ(z)·(logσ(z) - log(1-e)) + σ(-z)·(logσ(-z) - log e)`, `z = β·Δs`",
  needsReference: true,
  trlLossType: "exo_pair",
  options: { labelSmoothing: LABEL_SMOOTHING, ...F_OPTIONS },
  validate: (o) =>
    o.labelSmoothing > 0 && o.labelSmoothing < 1
      ? null
      : {
          option: "labelSmoothing",
          message: "must be in (0, 1) for exo_pair (its target is (1-e, e); the EXO paper uses 1e-3)",
        },
  losses(x, o) {
    const z = scoreMargin(x, o);
    const e = o.labelSmoothing;
    const win = z.sigmoid().mul(z.logsigmoid().sub(Math.log1p(-e)));
    const lose = z
      .neg()
      .sigmoid()
      .mul(z.neg().logsigmoid().sub(Math.log(e)));
    return win.add(lose);
  },
});

/** NCA (arXiv 2402.05369 eq. 11, pairwise): `-logσ(β s_w) - ½ logσ(-β s_w) - ½ logσ(-β s_l)`. */
export const ncaPair = defineLoss({
  name: "nca_pair",
  title: "NCA",
  equation: "`-logσ(β·s_w) - ½·logσ(-β·s_w) - ½·logσ(-β·s_l)`",
  needsReference: true,
  trlLossType: "nca_pair",
  options: F_OPTIONS,
  losses(x, o) {
    const [sw, sl] = scores(x, o);
    const rw = sw.mul(o.beta);
    const rl = sl.mul(o.beta);
    return rw.logsigmoid().neg().sub(rw.neg().logsigmoid().mul(0.5)).sub(rl.neg().logsigmoid().mul(0.5));
  },
});

/** BCO on pairs as current TRL computes it (no running reward mean since v0.29): `-logσ(β s_w) - logσ(-β s_l)`. */
export const bcoPair = defineLoss({
  name: "bco_pair",
  title: "BCO (pairs)",
  equation: "`-logσ(β·s_w) - logσ(-β·s_l)`",
  needsReference: true,
  trlLossType: "bco_pair",
  options: F_OPTIONS,
  losses(x, o) {
    const [sw, sl] = scores(x, o);
    return sw.mul(o.beta).logsigmoid().neg().sub(sl.mul(-o.beta).logsigmoid());
  },
});

/** SPPO with hard probabilities (arXiv 2405.00675 eq. 4.7, P = 1 for the winner): `(s_w - 1/(2β))^2 + (s_l + 1/(2β))^2`. */
export const sppoHard = defineLoss({
  name: "sppo_hard",
  title: "SPPO (hard)",
  equation: "`(s_w - 1/(2β))^2 + (s_l + 1/(2β))^2`",
  needsReference: true,
  trlLossType: "sppo_hard",
  options: F_OPTIONS,
  losses(x, o) {
    const [sw, sl] = scores(x, o);
    return sw
      .sub(0.5 / o.beta)
      .pow(2)
      .add(sl.add(0.5 / o.beta).pow(2));
  },
});

/** TRL refuses WPO weights for AOT: its losses sort pairs, so a pair's weight would land on another pair's loss. */
const noWeighting = (o: { useWeighting: boolean }) =>
  o.useWeighting
    ? {
        option: "useWeighting",
        message: "cannot be used with aot or aot_unpaired, whose losses are sorted over the batch (TRL refuses it too)",
      }
    : null;

/** AOT's loss on a batch: label-smoothed sigmoid of β times the difference of two sorted [B] vectors. */
function aotLoss(a: Tensor, b: Tensor, o: LossOptions): Tensor {
  const delta = a.sort(0).values.sub(b.sort(0).values).mul(o.beta); // [B], sorted along the batch
  return smoothedSigmoid(delta, o.labelSmoothing as number);
}

/**
 * AOT (arXiv 2406.05882 eq. 9, paired): the policy's and the reference's log-ratios are each
 * sorted over the batch, then DPO's smoothed sigmoid of their difference. A batch statistic:
 * pair i's loss belongs to the i-th smallest ratios, not to pair i.
 */
export const aot = defineLoss({
  name: "aot",
  title: "AOT (paired)",
  equation: "`-(1-e)·logσ(β·δ) - e·logσ(-β·δ)`, `δ = sort(dpi) - sort(dref)` over the batch",
  needsReference: true,
  trlLossType: "aot",
  options: { labelSmoothing: LABEL_SMOOTHING, ...TRL_OPTIONS },
  validate: noWeighting,
  losses: (x, o) => aotLoss(policyMargin(x), x.referenceChosenLogps!.sub(x.referenceRejectedLogps!), o),
});

/** AOT unpaired: the chosen and the rejected log-ratios sorted over the batch separately. */
export const aotUnpaired = defineLoss({
  name: "aot_unpaired",
  title: "AOT (unpaired)",
  equation:
    "`-(1-e)·logσ(β·δ) - e·logσ(-β·δ)`, `δ = sort(logp(y_w) - ref(y_w)) - sort(logp(y_l) - ref(y_l))` over the batch",
  needsReference: true,
  trlLossType: "aot_unpaired",
  options: { labelSmoothing: LABEL_SMOOTHING, ...TRL_OPTIONS },
  validate: noWeighting,
  losses: (x, o) =>
    aotLoss(x.policyChosenLogps.sub(x.referenceChosenLogps!), x.policyRejectedLogps.sub(x.referenceRejectedLogps!), o),
});

/** APO-zero (arXiv 2408.06266 eq. 7): raise the chosen likelihood, lower the rejected one: `1 - σ(β u_w) + σ(β u_l)`, u the raw log-ratios. */
export const apoZero = defineLoss({
  name: "apo_zero",
  title: "APO-zero",
  equation: "`1 - σ(β·(logp(y_w) - ref(y_w))) + σ(β·(logp(y_l) - ref(y_l)))`",
  needsReference: true,
  trlLossType: "apo_zero",
  options: TRL_OPTIONS,
  losses(x, o) {
    const chosen = x.policyChosenLogps.sub(x.referenceChosenLogps!).mul(o.beta).sigmoid().neg().add(1);
    return chosen.add(x.policyRejectedLogps.sub(x.referenceRejectedLogps!).mul(o.beta).sigmoid());
  },
});

/** APO-down (arXiv 2408.06266 eq. 8): lower both, the rejected more: `σ(β u_w) + 1 - σ(β Δs)`. */
export const apoDown = defineLoss({
  name: "apo_down",
  title: "APO-down",
  equation: "`σ(β·(logp(y_w) - ref(y_w))) + 1 - σ(β·Δs)`",
  needsReference: true,
  trlLossType: "apo_down",
  options: F_OPTIONS,
  losses(x, o) {
    const chosen = x.policyChosenLogps.sub(x.referenceChosenLogps!).mul(o.beta).sigmoid();
    return chosen.add(scoreMargin(x, o).sigmoid().neg().add(1));
  },
});

/** DiscoPOP (arXiv 2406.08414 eq. 5): a blend of the logistic and exponential losses, `(1 - σ(z/τ))·(-logσ(z)) + σ(z/τ)·e^-z`, z = β Δs. */
export const discopop = defineLoss({
  name: "discopop",
  title: "DiscoPOP",
  equation: "`(1 - σ(z/τ))·(-logσ(z)) + σ(z/τ)·e^(-z)`, `z = β·Δs`",
  needsReference: true,
  trlLossType: "discopop",
  options: {
    discopopTau: {
      default: 0.05,
      check: "positive",
      symbol: "τ",
      keys: ["discopop_tau"],
      help: "DiscoPOP's temperature of the blend σ(z/τ) (the paper's 0.05)",
    },
    ...F_OPTIONS,
  },
  losses(x, o) {
    const z = scoreMargin(x, o);
    const blend = z.div(o.discopopTau).sigmoid();
    return z.logsigmoid().neg().mul(blend.neg().add(1)).add(z.neg().exp().mul(blend));
  },
});

/**
 * TRL's sigmoid_norm: DPO on the per-token scores, `-logσ(β (s_w/|y_w| - s_l/|y_l|))`. As ipo,
 * without token counts the log-probs are taken as per-token means already (dpo_length_norm: true).
 */
export const sigmoidNorm = defineLoss({
  name: "sigmoid_norm",
  title: "DPO, per token",
  equation: "`-logσ(β·(s_w/|y_w| - s_l/|y_l|))`",
  needsReference: true,
  trlLossType: "sigmoid_norm",
  options: F_OPTIONS,
  losses(x, o) {
    const [sw, sl] = perTokenScores(x, o);
    return sw.sub(sl).mul(o.beta).logsigmoid().neg();
  },
});

/** TRL's sft term: the chosen answers' NLL, token-mean over the batch (every pair carries the batch's value). */
export const sft = defineLoss({
  name: "sft",
  title: "SFT term",
  equation: "`-Σ_i logp_sum(y_w,i) / Σ_i |y_w,i|` (the batch's chosen-token NLL, for each pair)",
  needsReference: false,
  needsLengths: true,
  trlLossType: "sft",
  options: TRL_OPTIONS,
  losses: (x) => chosenTokenNll(x),
});

/** The TRL loss types a `loss_type` list may combine, by TRL's name. */
const TRL_TERMS = [
  dpo,
  robust,
  ipo,
  hinge,
  exoPair,
  ncaPair,
  bcoPair,
  sppoHard,
  aot,
  aotUnpaired,
  apoZero,
  apoDown,
  discopop,
  sigmoidNorm,
  sft,
] as const;
type Term = (typeof TRL_TERMS)[number];
const termByTrlName = new Map<string, Term>(TRL_TERMS.map((t) => [t.trlLossType!, t]));
/** Options a term's TRL name fixes, as its declaration's Math-style name sets them (TRL's `robust` is the rdpo form). */
function termSet(t: Term): { readonly [option: string]: unknown } {
  const config = (t as { config?: readonly ConfigName[] }).config;
  return config?.find((c) => c.value === t.trlLossType && c.style !== "textual" && !c.when)?.set ?? {};
}

/** The terms and weights of a `combined` loss's options; an error message when they are not valid. */
export function combinedTerms(o: {
  readonly [option: string]: unknown;
}): { terms: { trl: string; spec: Term; weight: number }[] } | { error: { option: string; message: string } } {
  const names = typeof o.lossTypes === "string" ? o.lossTypes.split(",").map((t) => t.trim()) : [];
  const bad = names.filter((n) => !termByTrlName.has(n));
  if (names.length === 0 || bad.length > 0) {
    return {
      error: {
        option: "lossTypes",
        message: `must list TRL loss types separated by commas (${[...termByTrlName.keys()].join(", ")})${bad.length ? `; ${bad.join(", ")} is not one` : ""}`,
      },
    };
  }
  const weights =
    typeof o.lossWeights === "string" ? o.lossWeights.split(",").map((w) => Number(w.trim())) : names.map(() => 1);
  if (weights.length !== names.length || weights.some((w) => !Number.isFinite(w))) {
    return {
      error: {
        option: "lossWeights",
        message: `must be ${names.length} finite number${names.length === 1 ? "" : "s"} separated by commas, one per loss type of lossTypes (${names.join(", ")})`,
      },
    };
  }
  return { terms: names.map((trl, i) => ({ trl, spec: termByTrlName.get(trl)!, weight: weights[i] })) };
}

const termsOf = (o: LossOptions) => {
  const r = combinedTerms(o);
  if ("error" in r) throw new Error(`combined: ${r.error.option} ${r.error.message}`); // validate() rejects this first
  return r.terms.map((t) => ({ ...t, options: { ...o, ...termSet(t.spec) } as LossOptions }));
};

/**
 * TRL's list form, `loss_type: [sigmoid, sft]` with `loss_weights` (MPO, arXiv 2411.10442, uses
 * [sigmoid, bco_pair, sft]): `Σ_k w_k L_k`. TRL sums the weighted batch means; the weighted sum
 * per pair has the same mean. Each term reads the options as the term alone would.
 */
export const combined = defineLoss({
  name: "combined",
  title: "weighted TRL losses",
  equation: "`Σ_k w_k·L_k` over the TRL loss types of a `loss_type` list, `w` = `loss_weights` (default all 1)",
  needsReference: true,
  needsLengths: (o) =>
    termsOf(o)
      .map((t) => {
        const need = t.spec.needsLengths;
        return typeof need === "function"
          ? need(t.options as never)
          : need
            ? `the ${t.trl} term of lossType combined`
            : null;
      })
      .find((r) => r) ?? null,
  config: [],
  selectedBy: "`loss_type`: a list of TRL loss types (`[sigmoid, sft]`), or one with `loss_weights`",
  options: {
    lossTypes: {
      type: "string",
      default: null,
      keys: [],
      required: 'the TRL loss types to combine, e.g. "sigmoid,sft"',
      help: "the TRL loss types summed, separated by commas (a YAML's loss_type list sets it)",
    },
    lossWeights: {
      type: "string",
      default: null,
      keys: ["loss_weights"],
      list: true,
      exclusive: true,
      help: "TRL's loss_weights: a weight per loss type of a loss_type list (in code, lossWeights separated by commas); unset: all 1",
    },
    ...TRL_OPTIONS,
  },
  validate(o) {
    const r = combinedTerms(o);
    if ("error" in r) return r.error;
    for (const t of r.terms) {
      const wrong = (
        t.spec as { validate?: (o: LossOptions) => { option: string; message: string } | null }
      ).validate?.({ ...o, ...termSet(t.spec) } as LossOptions);
      if (wrong) return { option: wrong.option, message: `${wrong.message} (the ${t.trl} term)` };
    }
    return null;
  },
  losses(x, o) {
    let total: Tensor | null = null;
    for (const t of termsOf(o)) {
      const out = (t.spec.losses as (x: LossInputs, o: LossOptions) => Tensor)(x, t.options).mul(t.weight); // [B]
      total = total ? total.add(out) : out;
    }
    return total!;
  },
});

// --- Other baselines ---------------------------------------------------------------------------

/**
 * DPOP (Smaug, arXiv 2402.13228 eq. 3; the reference Math trainer's `dpo_positive`): DPO with a
 * penalty whenever the policy's chosen log-prob falls below the reference's,
 * `-(1-e) logσ(β m - λ P) - e logσ(-β m + λ P)`, P = max(0, ref(y_w) - logp(y_w)). λ is read from
 * uni_dpo_nll_lambda and e from label_smoothing, as the Math trainer does.
 */
export const dpop = defineLoss({
  name: "dpop",
  aliases: ["dpo_positive"],
  title: "DPOP (Smaug)",
  equation: "`-(1-e)·logσ(β·m - λ·P) - e·logσ(-β·m + λ·P)`, `P = max(0, ref(y_w) - logp(y_w))`",
  needsReference: true,
  options: { nllLambda: NLL_LAMBDA, labelSmoothing: LABEL_SMOOTHING },
  losses(x, o) {
    const penalty = x.referenceChosenLogps!.sub(x.policyChosenLogps).clamp(0); // P [B]
    const z = margin(x).mul(o.beta).sub(penalty.mul(o.nllLambda));
    return { losses: smoothedSigmoid(z, o.labelSmoothing), metrics: { dpop_penalty: penalty } };
  },
});

/**
 * SimPO (arXiv 2405.14734 eq. 6): no reference model; log-probs length-normalised. The sigmoid
 * form applies label smoothing as the Textual reference does (the Math reference's SimPO has
 * none); rewards are beta logp, as the reference (and TRL's CPO/SimPO) log them. sft_weight adds
 * the chosen answers' token-mean NLL, as SimPO's own trainer does.
 */
export const simpo = defineLoss({
  name: "simpo",
  title: "SimPO",
  equation:
    "`sigmoid`: `-(1-e)·logσ(β·(dpi - r)) - e·logσ(-β·(dpi - r))`; `hinge`: `relu(1 - β·(dpi - r))`; plus `w_sft·NLL(y_w)`",
  needsReference: false,
  beta: { default: 2.0, mathDefault: 0.1 },
  options: {
    gammaBetaRatio: {
      default: 0.25,
      check: "finite",
      symbol: "r",
      keys: ["gamma_beta_ratio"],
      derived: {
        key: "simpo_gamma",
        mathDefault: 1.0,
        compute: (gamma, beta) => gamma / beta,
        text: "r = simpo_gamma / β",
        help: "SimPO's target margin gamma, as the Math trainer takes it (gamma_beta_ratio = simpo_gamma / beta)",
      },
      help: "SimPO's target margin over beta, gamma / beta",
    },
    simpoForm: {
      default: "sigmoid",
      values: ["sigmoid", "hinge"],
      keys: ["loss_type"],
      style: "textual",
      label: "SimPO's form",
      help: "SimPO's loss form (in a Textual-style YAML, loss_type)",
    },
    labelSmoothing: LABEL_SMOOTHING,
    sftWeight: {
      default: 0,
      check: "nonnegative",
      symbol: "w_sft",
      keys: ["sft_weight"],
      help: "SimPO's weight of the chosen answers' NLL (token mean over the batch); 0: none",
    },
  },
  readIn: { labelSmoothing: "textual" },
  needsLengths: (o) => (o.sftWeight > 0 ? "SimPO's sftWeight > 0 (the chosen answers' token-mean NLL)" : null),
  losses(x, o) {
    const z = policyMargin(x).sub(o.gammaBetaRatio).mul(o.beta); // β (dpi - r)
    const losses = o.simpoForm === "sigmoid" ? smoothedSigmoid(z, o.labelSmoothing) : z.neg().add(1).relu();
    return o.sftWeight > 0 ? losses.add(chosenTokenNll(x).mul(o.sftWeight)) : losses;
  },
});

/** log(1 - e^v) [B] for v < 0, as TRL's ORPO computes it (two branches, each exact on its side of -log 2). */
function log1mexp(v: Tensor): Tensor {
  const low = v.exp().neg().log1p(); // accurate for v < -log 2
  const high = v.expm1().neg().log(); // accurate near 0
  return torch.where(v.lt(-Math.LN2), low, high);
}

/**
 * ORPO (arXiv 2403.07691 eqs. 4-7; TRL's ORPOTrainer): no reference model; the chosen answers'
 * NLL plus λ times the odds-ratio loss, from the answers' mean log-probs lp:
 * `NLL(y_w) - λ logσ(log odds)`, log odds = (lp_w - lp_l) - (log(1 - e^lp_w) - log(1 - e^lp_l)).
 * λ is `beta`, as TRL's ORPOConfig names it. Logs nll_loss, log_odds_ratio and log_odds_chosen as TRL.
 */
export const orpo = defineLoss({
  name: "orpo",
  title: "ORPO",
  equation: "`NLL(y_w) - λ·logσ((lp_w - lp_l) - (log(1-e^lp_w) - log(1-e^lp_l)))`, `lp` mean log-probs, `λ` = `beta`",
  needsReference: false,
  needsLengths: true,
  losses(x, o) {
    const mean = (logps: Tensor, lengths: Tensor) => (x.logpsPerToken ? logps : logps.div(lengths.clamp(1)));
    const lw = mean(x.policyChosenLogps, x.chosenLengths!); // [B]
    const ll = mean(x.policyRejectedLogps, x.rejectedLengths!);
    const logOdds = lw.sub(ll).sub(log1mexp(lw).sub(log1mexp(ll)));
    const ratio = logOdds.logsigmoid();
    const nll = chosenTokenNll(x);
    return {
      losses: nll.sub(ratio.mul(o.beta)),
      metrics: { nll_loss: nll, log_odds_ratio: ratio, log_odds_chosen: logOdds },
    };
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
  config: [
    { value: "rpo" },
    { value: "sigmoid", style: "math", when: WITH_RPO_ALPHA },
    { value: "dpo", when: WITH_RPO_ALPHA },
  ],
  options: {
    rpoAlpha: {
      type: "number",
      default: null,
      check: "nonnegative",
      symbol: "α",
      keys: ["rpo_alpha"],
      exclusive: true,
      required: "the weight of the chosen NLL; the RPO paper uses 1.0",
      help: "weight of the chosen answer's NLL added to DPO (the reference has no default: unset means off)",
    },
  },
  losses: (x, o) => smoothedSigmoid(margin(x).mul(o.beta), 0).sub(x.policyChosenLogps.mul(o.rpoAlpha!)),
});

/** The built-in losses, in the order they are listed (README, errors). */
export const BUILTIN_LOSSES = [
  omniDpo,
  dpo,
  robust,
  ipo,
  hinge,
  simpo,
  rpo,
  exoPair,
  ncaPair,
  bcoPair,
  sppoHard,
  aot,
  aotUnpaired,
  apoZero,
  apoDown,
  discopop,
  sigmoidNorm,
  sft,
  combined,
  dpop,
  orpo,
] as const;
