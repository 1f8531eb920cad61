// Checking and aligning the inputs of preferenceLoss: which inputs a loss needs, their shapes,
// dtypes and values. Every error names the offending input.
import * as torch from "../torch/index.js";
import { Tensor, type DType } from "../torch/index.js";
import { REFERENCE_LOSSES, type PreferenceInputs, type ResolvedPreferenceOptions } from "./types.js";

export type TensorInputName =
  | "policyChosenLogps" | "policyRejectedLogps" | "referenceChosenLogps" | "referenceRejectedLogps"
  | "scoreChosen" | "scoreRejected";

/** The inputs a loss reads, cast to one floating dtype and moved to the policy's device. */
export interface AlignedInputs {
  batchSize: number;
  dtype: DType;
  policyChosenLogps: Tensor;
  policyRejectedLogps: Tensor;
  referenceChosenLogps: Tensor | null;
  referenceRejectedLogps: Tensor | null;
  scoreChosen: Tensor | null;
  scoreRejected: Tensor | null;
}

function fail(message: string): never {
  throw new Error(`preferenceLoss: ${message}`);
}

const FLOATING: ReadonlySet<DType> = new Set(["float64", "float32", "float16", "bfloat16"]);

/** PyTorch's promotion among floating dtypes (float16 with bfloat16 gives float32). */
function promoteFloat(a: DType, b: DType): DType {
  if (a === b) return a;
  if (a === "float64" || b === "float64") return "float64";
  return "float32";
}

/** The inputs `options` makes this loss read, and why (for the error when one is missing). */
export function requiredInputs(options: ResolvedPreferenceOptions): Map<TensorInputName, string> {
  const need = new Map<TensorInputName, string>([
    ["policyChosenLogps", "every loss"],
    ["policyRejectedLogps", "every loss"],
  ]);
  const t = options.lossType;
  if (REFERENCE_LOSSES.has(t)) {
    need.set("referenceChosenLogps", `lossType ${t} (its margin is relative to the reference model)`);
    need.set("referenceRejectedLogps", `lossType ${t} (its margin is relative to the reference model)`);
  }
  if (t === "omni_dpo") {
    if (options.useQualityWeight) {
      need.set("scoreChosen", "omni_dpo's quality weight w_qual (set useQualityWeight: false to ablate it)");
      need.set("scoreRejected", "omni_dpo's quality weight w_qual (set useQualityWeight: false to ablate it)");
    }
    if (options.nllLambda > 0 && !need.has("scoreChosen")) {
      need.set("scoreChosen", "omni_dpo's c-NLL gate [S_w >= tauGood] (set nllLambda: 0 to turn c-NLL off)");
    }
  }
  return need;
}

/**
 * Checks the inputs the loss needs (present, tensors, 1-D, one length, floating log-probs,
 * finite values when `options.validate`) and returns them aligned to one dtype and device.
 * The tensors it returns are new handles owned by the caller's tidy() scope.
 */
export function alignInputs(inputs: PreferenceInputs, options: ResolvedPreferenceOptions): AlignedInputs {
  if (inputs === null || typeof inputs !== "object") fail(`inputs must be an object of tensors, got ${inputs === null ? "null" : typeof inputs}`);
  const need = requiredInputs(options);
  const given = new Map<TensorInputName, Tensor>();
  for (const [name, why] of need) {
    const value = (inputs as unknown as Record<string, unknown>)[name];
    if (value === undefined || value === null) fail(`missing input ${name}, needed by ${why}`);
    if (!(value instanceof Tensor)) fail(`input ${name} must be a Tensor, got ${Array.isArray(value) ? "an array" : typeof value}`);
    if (value.isDisposed) fail(`input ${name} has been disposed`);
    if (value.ndim !== 1) fail(`input ${name} must be 1-D (one value per pair), got shape [${value.shape.join(", ")}]`);
    const isLogp = name.endsWith("Logps");
    if (isLogp && !FLOATING.has(value.dtype)) fail(`input ${name} must be a floating tensor, got ${value.dtype}`);
    if (!isLogp && value.dtype === "bool") fail(`input ${name} must be numeric, got bool`);
    given.set(name, value);
  }
  const pc = given.get("policyChosenLogps")!;
  const batchSize = pc.shape[0];
  for (const [name, t] of given) {
    if (t.shape[0] !== batchSize) {
      fail(`inputs have different lengths: policyChosenLogps has ${batchSize} pairs, ${name} has ${t.shape[0]}`);
    }
  }
  if (batchSize === 0) fail("the batch is empty (policyChosenLogps has length 0)");
  for (const key of ["policyChosenLogitsMean", "policyRejectedLogitsMean"] as const) {
    const v = inputs[key];
    if (v !== undefined && v !== null && (typeof v !== "number" || !Number.isFinite(v))) {
      fail(`input ${key} must be a finite number, got ${typeof v === "number" ? v : typeof v}`);
    }
  }

  const dtype = promoteFloat(pc.dtype, given.get("policyRejectedLogps")!.dtype);
  const device = pc.device;
  const align = (t: Tensor | undefined): Tensor | null => {
    if (!t) return null;
    if (t.dtype === dtype && t.device === device) return t;
    return t.to({ dtype, device });
  };
  const aligned: AlignedInputs = {
    batchSize, dtype,
    policyChosenLogps: align(pc)!,
    policyRejectedLogps: align(given.get("policyRejectedLogps"))!,
    referenceChosenLogps: align(given.get("referenceChosenLogps")),
    referenceRejectedLogps: align(given.get("referenceRejectedLogps")),
    scoreChosen: align(given.get("scoreChosen")),
    scoreRejected: align(given.get("scoreRejected")),
  };
  if (options.validate) checkFinite(aligned, [...given.keys()]);
  return aligned;
}

/** One read-back for all inputs: the count of NaN / infinite values in each. */
function checkFinite(aligned: AlignedInputs, names: TensorInputName[]): void {
  torch.tidy(() => torch.noGrad(() => {
    const rows = names.map((n) => aligned[n] as Tensor);
    const bad = torch.stack(rows).isfinite().logicalNot();
    const counts = bad.sum(1).toArray() as number[];
    const i = counts.findIndex((c) => c > 0);
    if (i < 0) return;
    const flags = bad.select(0, i).toArray() as boolean[];
    const first = flags.indexOf(true);
    const value = (rows[i].toArray() as number[])[first];
    fail(`input ${names[i]} has ${counts[i]} non-finite value${counts[i] === 1 ? "" : "s"} (NaN or infinite); ` +
      `the first is ${value} at index ${first}`);
  }));
}
