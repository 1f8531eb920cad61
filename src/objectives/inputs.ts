// Checking and aligning the inputs of preferenceLoss: which inputs a loss needs (from its
// declaration), their shapes, dtypes and values. Every error names the offending input.
import * as torch from "../torch/index.js";
import { Tensor, type DType } from "../torch/index.js";
import { ObjectiveError } from "./errors.js";
import { lossSpec } from "./registry.js";
import type { LossInputs } from "./spec.js";
import type { PreferenceInputs, ResolvedPreferenceOptions } from "./types.js";

export type TensorInputName =
  | "policyChosenLogps"
  | "policyRejectedLogps"
  | "referenceChosenLogps"
  | "referenceRejectedLogps"
  | "scoreChosen"
  | "scoreRejected"
  | "chosenLengths"
  | "rejectedLengths"
  | "chosenWeights"
  | "rejectedWeights";

const LENGTHS = ["chosenLengths", "rejectedLengths"] as const;

function fail(detail: string, input?: string): never {
  throw new ObjectiveError("preferenceLoss", detail, input === undefined ? {} : { input });
}

const FLOATING: ReadonlySet<DType> = new Set(["float64", "float32", "float16", "bfloat16"]);

/** PyTorch's promotion among floating dtypes (float16 with bfloat16 gives float32). */
function promoteFloat(a: DType, b: DType): DType {
  if (a === b) return a;
  if (a === "float64" || b === "float64") return "float64";
  return "float32";
}

/** What the log-prob pass computes per token for `options`' loss (its options' `tokens` declarations). */
export interface TokenNeeds {
  /** Each answer's WPO weight (chosenWeights / rejectedWeights). */
  answerWeights: boolean;
  /** LD-DPO's alpha for the tokens past the shorter answer's length; null: every token counts once. */
  lengthWeight: number | null;
}

export function tokenNeeds(options: ResolvedPreferenceOptions): TokenNeeds {
  const needs: TokenNeeds = { answerWeights: false, lengthWeight: null };
  for (const option of lossSpec(options.lossType)?.options ?? []) {
    const value = (options as Record<string, unknown>)[option.name];
    if (option.tokens === "answerWeights" && value === true) needs.answerWeights = true;
    if (option.tokens === "lengthWeight" && typeof value === "number") needs.lengthWeight = value;
  }
  return needs;
}

/** Does the loss multiply each pair's loss by WPO's weights (TRL's use_weighting)? */
export function weighted(options: ResolvedPreferenceOptions): boolean {
  return tokenNeeds(options).answerWeights;
}

/** The inputs `options` makes its loss read, in input order, each with why (for the error when one is missing). */
export function requiredInputs(options: ResolvedPreferenceOptions): Map<TensorInputName, string> {
  const loss = lossSpec(options.lossType);
  if (!loss) fail(`unknown lossType ${JSON.stringify(options.lossType)}`);
  const need = new Map<TensorInputName, string>([
    ["policyChosenLogps", "every loss"],
    ["policyRejectedLogps", "every loss"],
  ]);
  if (loss.needsReference) {
    const why = `lossType ${loss.name} (its margin is relative to the reference model)`;
    need.set("referenceChosenLogps", why);
    need.set("referenceRejectedLogps", why);
  }
  const scores = loss.scoresNeeded(options);
  for (const name of ["scoreChosen", "scoreRejected"] as const) if (scores[name]) need.set(name, scores[name]);
  const lengths = loss.lengthsNeeded(options);
  if (lengths) for (const name of LENGTHS) need.set(name, `${lengths} (the answers' token counts)`);
  if (weighted(options))
    for (const name of ["chosenWeights", "rejectedWeights"] as const)
      need.set(name, `useWeighting (WPO's answer weights) with lossType ${loss.name}`);
  return need;
}

/**
 * Checks the inputs the loss needs (present, tensors, 1-D, one length, floating log-probs,
 * finite values when `options.validate`) and returns them aligned to one dtype and device.
 * The tensors it returns are new handles owned by the caller's tidy() scope.
 */
export function alignInputs(inputs: PreferenceInputs, options: ResolvedPreferenceOptions): LossInputs {
  if (inputs === null || typeof inputs !== "object")
    fail(`inputs must be an object of tensors, got ${inputs === null ? "null" : typeof inputs}`);
  const need = requiredInputs(options);
  // Token counts are read whenever given (ipo uses them when present), and checked like the rest.
  const raw = inputs as unknown as Record<string, unknown>;
  for (const name of LENGTHS) {
    if (!need.has(name) && raw[name] !== undefined && raw[name] !== null) need.set(name, "the caller");
  }
  const withLengths = need.has("chosenLengths") || need.has("rejectedLengths");
  const given = new Map<TensorInputName, Tensor>();
  for (const [name, why] of need) {
    const value = (inputs as unknown as Record<string, unknown>)[name];
    if (value === undefined || value === null) fail(`missing input ${name}, needed by ${why}`, name);
    if (!(value instanceof Tensor))
      fail(`input ${name} must be a Tensor, got ${Array.isArray(value) ? "an array" : typeof value}`, name);
    if (value.isDisposed) fail(`input ${name} has been disposed`, name);
    if (value.ndim !== 1)
      fail(`input ${name} must be 1-D (one value per pair), got shape [${value.shape.join(", ")}]`, name);
    const isLogp = name.endsWith("Logps");
    if (isLogp && !FLOATING.has(value.dtype)) fail(`input ${name} must be a floating tensor, got ${value.dtype}`, name);
    if (name.endsWith("Weights") && !FLOATING.has(value.dtype))
      fail(`input ${name} must be a floating tensor, got ${value.dtype}`, name);
    if (name.endsWith("Lengths") && value.dtype !== "int64" && value.dtype !== "int32" && !FLOATING.has(value.dtype))
      fail(`input ${name} must be numeric token counts, got ${value.dtype}`, name);
    if (!isLogp && value.dtype === "bool") fail(`input ${name} must be numeric, got bool`, name);
    given.set(name, value);
  }
  if (withLengths && typeof inputs.logpsPerToken !== "boolean") {
    fail(
      `input logpsPerToken must be true or false with chosenLengths / rejectedLengths (are the log-probs per-token means or sums?), got ${JSON.stringify(inputs.logpsPerToken)}`,
      "logpsPerToken",
    );
  }
  const pc = given.get("policyChosenLogps")!;
  const batchSize = pc.shape[0];
  for (const [name, t] of given) {
    if (t.shape[0] !== batchSize) {
      fail(`inputs have different lengths: policyChosenLogps has ${batchSize} pairs, ${name} has ${t.shape[0]}`, name);
    }
  }
  if (batchSize === 0) fail("the batch is empty (policyChosenLogps has length 0)", "policyChosenLogps");
  for (const key of ["policyChosenLogitsMean", "policyRejectedLogitsMean"] as const) {
    const v = inputs[key];
    if (v !== undefined && v !== null && (typeof v !== "number" || !Number.isFinite(v))) {
      fail(`input ${key} must be a finite number, got ${typeof v === "number" ? v : typeof v}`, key);
    }
  }

  const dtype = promoteFloat(pc.dtype, given.get("policyRejectedLogps")!.dtype);
  const device = pc.device;
  const align = (t: Tensor | undefined): Tensor | null => {
    if (!t) return null;
    if (t.dtype === dtype && t.device === device) return t;
    return t.to({ dtype, device });
  };
  const aligned: LossInputs = {
    batchSize,
    dtype,
    policyChosenLogps: align(pc)!,
    policyRejectedLogps: align(given.get("policyRejectedLogps"))!,
    referenceChosenLogps: align(given.get("referenceChosenLogps")),
    referenceRejectedLogps: align(given.get("referenceRejectedLogps")),
    scoreChosen: align(given.get("scoreChosen")),
    scoreRejected: align(given.get("scoreRejected")),
    chosenWeights: align(given.get("chosenWeights")),
    rejectedWeights: align(given.get("rejectedWeights")),
    chosenLengths: align(given.get("chosenLengths")),
    rejectedLengths: align(given.get("rejectedLengths")),
    logpsPerToken: withLengths ? (inputs.logpsPerToken as boolean) : null,
  };
  if (options.validate) checkFinite(aligned, [...given.keys()]);
  if (options.validate && withLengths) checkCounts(aligned);
  return aligned;
}

/** One read-back for all inputs: the count of NaN / infinite values in each. */
function checkFinite(aligned: LossInputs, names: TensorInputName[]): void {
  torch.tidy(() =>
    torch.noGrad(() => {
      const rows = names.map((n) => aligned[n] as Tensor);
      const bad = torch.stack(rows).isfinite().logicalNot();
      const counts = bad.sum(1).toArray() as number[];
      const i = counts.findIndex((c) => c > 0);
      if (i < 0) return;
      const flags = bad.select(0, i).toArray() as boolean[];
      const first = flags.indexOf(true);
      const value = (rows[i].toArray() as number[])[first];
      fail(
        `input ${names[i]} has ${counts[i]} non-finite value${counts[i] === 1 ? "" : "s"} (NaN or infinite); ` +
          `the first is ${value} at index ${first}`,
        names[i],
      );
    }),
  );
}

/** Token counts must be whole numbers >= 0 (one read-back). */
function checkCounts(aligned: LossInputs): void {
  torch.tidy(() =>
    torch.noGrad(() => {
      for (const name of LENGTHS) {
        const t = aligned[name];
        if (!t) continue;
        const bad = t.lt(0).logicalOr(t.ne(t.round())).sum().item();
        if (bad > 0)
          fail(
            `input ${name} must hold token counts (whole numbers >= 0); ${bad} value${bad === 1 ? " is" : "s are"} not`,
            name,
          );
      }
    }),
  );
}
