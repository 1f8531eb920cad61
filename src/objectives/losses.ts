// The objectives, per pair, written as the public references compute them (Uni-DPO's trainers
// for omni_dpo and simpo, TRL's DPOTrainer for the DPO family), op for op where the order of
// floating-point operations could matter. Symbols as in OMNI_DPO.md:
//   dpi = logp(y_w) - logp(y_l),  dref = ref(y_w) - ref(y_l),  m = dpi - dref.
import type { Tensor } from "../torch/index.js";
import type { AlignedInputs } from "./inputs.js";
import type { ResolvedPreferenceOptions } from "./types.js";

export interface LossTerms {
  /** Per-pair loss [B], with gradient. */
  losses: Tensor;
  /** Detached per-pair implicit rewards. */
  chosenRewards: Tensor;
  rejectedRewards: Tensor;
  /** Omni-DPO only: the per-pair weights and gate as applied (detached), for the metrics. */
  wQual?: Tensor | null;
  wPerf?: Tensor | null;
  nllGate?: Tensor | null;
}

/** -(1-e) logsigmoid(z) - e logsigmoid(-z): TRL's `sigmoid` loss with label smoothing e (cDPO); e = 0 is DPO. */
function smoothedSigmoid(z: Tensor, e: number): Tensor {
  const main = z.logsigmoid().neg();
  if (e === 0) return main;
  return main.mul(1 - e).sub(z.neg().logsigmoid().mul(e));
}

/** Reference-based rewards beta (logp - ref), detached, as TRL and the reference log them. */
function referenceRewards(x: AlignedInputs, beta: number): [Tensor, Tensor] {
  return [
    x.policyChosenLogps.sub(x.referenceChosenLogps!).mul(beta).detach(),
    x.policyRejectedLogps.sub(x.referenceRejectedLogps!).mul(beta).detach(),
  ];
}

function margins(x: AlignedInputs): { dpi: Tensor; m: Tensor } {
  const dpi = x.policyChosenLogps.sub(x.policyRejectedLogps);
  const dref = x.referenceChosenLogps!.sub(x.referenceRejectedLogps!);
  return { dpi, m: dpi.sub(dref) };
}

/**
 * Omni-DPO (OMNI_DPO.md):
 *   w_qual = sigmoid(eta (S_w - S_l))
 *   w_perf = (1 - sigmoid(beta dpi - tau_ref)) ** gamma      <- policy margin dpi, not m
 *   L      = -w_qual w_perf logsigmoid(beta m) - lambda [ref(y_w) > logp(y_w)] [S_w >= tau_good] logp(y_w)
 * Gradients flow through w_perf (the reference does not stop them) unless
 * detachPerformanceWeight. w_qual is a function of data only. The c-NLL gate is built from
 * values (the reference uses clamp(sign(ref - logp), min=0), whose gradient is zero), so it
 * carries no gradient; the c-NLL term's gradient is -lambda * gate w.r.t. logp(y_w) only.
 * logp(y_w) is whatever the caller passed: length-normalised (the reference default) or summed.
 */
export function omniDpo(x: AlignedInputs, o: ResolvedPreferenceOptions): LossTerms {
  const { dpi, m } = margins(x);
  let weight: Tensor | null = null;
  let wQual: Tensor | null = null;
  let wPerf: Tensor | null = null;
  if (o.useQualityWeight) {
    wQual = x.scoreChosen!.sub(x.scoreRejected!).mul(o.qualEta).sigmoid();
    weight = wQual.neg();                        // the reference: -w_qual * w_perf * logsigmoid(...)
  }
  if (o.usePerformanceWeight) {
    wPerf = dpi.mul(o.beta).sub(o.tauRef).sigmoid().neg().add(1).pow(o.perfGamma);
    if (o.detachPerformanceWeight) wPerf = wPerf.detach();
    weight = weight ? weight.mul(wPerf) : wPerf.neg();
  }
  const logsig = m.mul(o.beta).logsigmoid();
  let losses = weight ? weight.mul(logsig) : logsig.neg();
  let gate: Tensor | null = null;
  if (o.nllLambda > 0) {
    const pc = x.policyChosenLogps.detach();
    gate = x.referenceChosenLogps!.gt(pc).logicalAnd(x.scoreChosen!.ge(o.tauGood)).to(x.dtype);
    losses = losses.sub(gate.mul(o.nllLambda).mul(x.policyChosenLogps));
  }
  const [chosenRewards, rejectedRewards] = referenceRewards(x, o.beta);
  return {
    losses, chosenRewards, rejectedRewards,
    wQual: wQual?.detach() ?? null, wPerf: wPerf?.detach() ?? null, nllGate: gate,
  };
}

/** DPO (sigmoid): -logsigmoid(beta m). */
export function dpo(x: AlignedInputs, o: ResolvedPreferenceOptions): LossTerms {
  const { m } = margins(x);
  const [chosenRewards, rejectedRewards] = referenceRewards(x, o.beta);
  return { losses: smoothedSigmoid(m.mul(o.beta), 0), chosenRewards, rejectedRewards };
}

/**
 * robust with label smoothing e.
 *   cdpo (default, OMNI_DPO.md): -(1-e) logsigmoid(beta m) - e logsigmoid(-beta m)
 *        (TRL's `sigmoid` loss with label_smoothing e, conservative DPO)
 *   rdpo: ((1-e)(-logsigmoid(beta m)) + e logsigmoid(-beta m)) / (1 - 2e)   (TRL's `robust`)
 */
export function robust(x: AlignedInputs, o: ResolvedPreferenceOptions): LossTerms {
  const { m } = margins(x);
  const z = m.mul(o.beta);
  const e = o.labelSmoothing;
  const losses = o.robustVariant === "cdpo"
    ? smoothedSigmoid(z, e)
    : z.logsigmoid().neg().mul(1 - e).add(z.neg().logsigmoid().mul(e)).div(1 - 2 * e);
  const [chosenRewards, rejectedRewards] = referenceRewards(x, o.beta);
  return { losses, chosenRewards, rejectedRewards };
}

/** IPO: (m - 1/(2 beta))^2. The IPO paper, and TRL, use length-normalised log-probs. */
export function ipo(x: AlignedInputs, o: ResolvedPreferenceOptions): LossTerms {
  const { m } = margins(x);
  const [chosenRewards, rejectedRewards] = referenceRewards(x, o.beta);
  return { losses: m.sub(1 / (2 * o.beta)).pow(2), chosenRewards, rejectedRewards };
}

/** Hinge (SLiC): relu(1 - beta m). */
export function hinge(x: AlignedInputs, o: ResolvedPreferenceOptions): LossTerms {
  const { m } = margins(x);
  const [chosenRewards, rejectedRewards] = referenceRewards(x, o.beta);
  return { losses: m.mul(o.beta).neg().add(1).relu(), chosenRewards, rejectedRewards };
}

/**
 * SimPO (no reference model; log-probs length-normalised):
 *   sigmoid: -(1-e) logsigmoid(beta (dpi - ratio)) - e logsigmoid(-beta (dpi - ratio))   (e = labelSmoothing, default 0)
 *   hinge:   relu(1 - beta (dpi - ratio))
 * ratio = gammaBetaRatio. Rewards are beta logp, as the reference (and TRL's CPO/SimPO) log them.
 */
export function simpo(x: AlignedInputs, o: ResolvedPreferenceOptions): LossTerms {
  const logits = x.policyChosenLogps.sub(x.policyRejectedLogps).sub(o.gammaBetaRatio);
  const losses = o.simpoForm === "sigmoid"
    ? smoothedSigmoid(logits.mul(o.beta), o.labelSmoothing)
    : logits.mul(o.beta).neg().add(1).relu();
  return {
    losses,
    chosenRewards: x.policyChosenLogps.mul(o.beta).detach(),
    rejectedRewards: x.policyRejectedLogps.mul(o.beta).detach(),
  };
}

/**
 * RPO: DPO plus alpha times the NLL of the chosen response, -logsigmoid(beta m) - alpha logp(y_w).
 * TRL adds alpha times the chosen responses' token-mean cross-entropy; from sequence log-probs
 * the per-pair NLL is -logp(y_w), which with length-normalised log-probs IS the per-token mean
 * cross-entropy of that response. (TRL's batch term averages over all chosen tokens of the
 * batch, so it weights pairs by length; the two agree when the chosen lengths are equal.)
 */
export function rpo(x: AlignedInputs, o: ResolvedPreferenceOptions): LossTerms {
  const base = dpo(x, o);
  return { ...base, losses: base.losses.sub(x.policyChosenLogps.mul(o.rpoAlpha!)) };
}

export const LOSSES = { omni_dpo: omniDpo, dpo, robust, ipo, hinge, simpo, rpo } as const;
