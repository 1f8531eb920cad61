// preferenceLoss: the one entry point to the preference objectives.
import * as torch from "../torch/index.js";
import { Tensor } from "../torch/index.js";
import { ObjectiveError } from "./errors.js";
import { alignInputs, weighted } from "./inputs.js";
import { computeMetrics, implicitRewards, STANDARD_METRICS } from "./metrics.js";
import { resolvePreferenceOptions } from "./options.js";
import { lossSpec, type RegisteredLoss } from "./registry.js";
import type { LossInputs, LossOptions, LossResult } from "./spec.js";
import type {
  DeclaredLossOptions,
  LossOptionsInCode,
  PreferenceInputs,
  ResolvedPreferenceOptions,
  PreferenceLossOptions,
  PreferenceLossOutput,
} from "./types.js";

/** Runs the loss's function and checks what it returns: losses [B], and metrics of known kinds. */
function runLoss(loss: RegisteredLoss, x: LossInputs, options: LossOptions): Required<LossResult> {
  const out = loss.losses(x, options);
  const result: LossResult = out instanceof Tensor ? { losses: out } : out;
  const fail = (detail: string): never => {
    throw new ObjectiveError("preferenceLoss", `loss ${loss.name}: ${detail}`, { loss: loss.name });
  };
  if (result === null || typeof result !== "object" || !(result.losses instanceof Tensor)) {
    fail("losses() must return the per-pair losses (a Tensor [B]) or { losses, metrics? }");
  }
  const { losses } = result;
  if (losses.ndim !== 1 || losses.shape[0] !== x.batchSize)
    fail(`losses() returned shape [${losses.shape.join(", ")}], expected [${x.batchSize}] (one loss per pair)`);
  if (!["float64", "float32", "float16", "bfloat16"].includes(losses.dtype))
    fail(`losses() returned a ${losses.dtype} tensor, expected a floating one`);
  const metrics = result.metrics ?? {};
  for (const [name, v] of Object.entries(metrics)) {
    if (STANDARD_METRICS.includes(name)) fail(`metric ${name} is one of the standard metrics every loss logs`);
    if (!(v instanceof Tensor) && typeof v !== "number") fail(`metric ${name} must be a Tensor [B] or a number`);
  }
  return { losses, metrics };
}

/**
 * The preference loss of a batch of B pairs.
 *
 * ```ts
 * const out = preferenceLoss(
 *   { policyChosenLogps, policyRejectedLogps, referenceChosenLogps, referenceRejectedLogps, scoreChosen, scoreRejected },
 *   { lossType: "omni_dpo", beta: 2, qualEta: 0.7, tauRef: 0.8, perfGamma: 3, nllLambda: 0.001, tauGood: 3.2 });
 * out.loss.backward();
 * ```
 * Inputs are 1-D tensors of length B; the loss is computed in the promoted dtype of the two
 * policy log-prob tensors, on their device (other inputs are cast and moved there). Options a
 * loss does not use are ignored; inputs it needs and lacks are an error naming them. Every
 * intermediate tensor is freed before it returns; the caller owns (and disposes, or tidies)
 * losses, loss, chosenRewards and rejectedRewards.
 */
export function preferenceLoss(
  inputs: PreferenceInputs,
  options?: PreferenceLossOptions | DeclaredLossOptions,
): PreferenceLossOutput;
export function preferenceLoss(inputs: PreferenceInputs, options: ResolvedPreferenceOptions): PreferenceLossOutput;
export function preferenceLoss(inputs: PreferenceInputs, options: LossOptionsInCode = {}): PreferenceLossOutput {
  const resolved = resolvePreferenceOptions(options as PreferenceLossOptions);
  const loss = lossSpec(resolved.lossType)!;
  return torch.tidy(() => {
    const x = alignInputs(inputs, resolved);
    const { losses: raw, metrics: own } = runLoss(loss, x, resolved as LossOptions);
    // WPO (TRL's use_weighting): every term of the loss times the pair's weight, a constant.
    const losses = weighted(resolved) ? raw.mul(x.chosenWeights!.mul(x.rejectedWeights!).detach()) : raw;
    const [chosenRewards, rejectedRewards] = implicitRewards(x, resolved.beta, loss.needsReference);
    const metrics = computeMetrics(inputs, x, chosenRewards, rejectedRewards, own);
    return { losses, loss: losses.mean(), chosenRewards, rejectedRewards, metrics };
  });
}

/** Per-pair values of a batch, read back as plain numbers (no gradient): what the dashboard's pair view plots. */
export interface PairValues {
  /** Implicit reward margin per pair, chosen - rejected: the pair is fitted when it is above 0. */
  margins: number[];
  /** The loss's own metrics per pair (Omni-DPO: w_qual, w_perf, nll_gate); a number where the loss gives a constant (a weight switched off). */
  metrics: Record<string, number[] | number>;
}

/**
 * The per-pair margins and own metrics of preferenceLoss (the same loss function, so the
 * values are those it averages into rewards/margins, w_qual, w_perf and nll_gate), without
 * gradient and with every tensor freed.
 */
export function pairValues(inputs: PreferenceInputs, options?: PreferenceLossOptions | DeclaredLossOptions): PairValues;
export function pairValues(inputs: PreferenceInputs, options: ResolvedPreferenceOptions): PairValues;
export function pairValues(inputs: PreferenceInputs, options: LossOptionsInCode = {}): PairValues {
  const resolved = resolvePreferenceOptions(options as PreferenceLossOptions);
  const loss = lossSpec(resolved.lossType)!;
  return torch.noGrad(() =>
    torch.tidy(() => {
      const x = alignInputs(inputs, resolved);
      const { metrics: own } = runLoss(loss, x, resolved as LossOptions);
      const [chosenRewards, rejectedRewards] = implicitRewards(x, resolved.beta, loss.needsReference);
      const read = (t: Tensor) => t.detach().to("float64").toArray() as number[]; // [B]
      const metrics: Record<string, number[] | number> = {};
      for (const [name, v] of Object.entries(own)) metrics[name] = typeof v === "number" ? v : read(v);
      return { margins: read(chosenRewards.sub(rejectedRewards)), metrics };
    }),
  );
}
