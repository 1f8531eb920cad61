// Options of preferenceLoss: defaults (the reference's code defaults) and validation.
import {
  DEFAULT_BETA, LOSS_TYPES, OMNI_DPO_DEFAULTS, SIMPO_DEFAULTS,
  type LossType, type PreferenceLossOptions, type ResolvedPreferenceOptions,
} from "./types.js";

const KNOWN_OPTIONS: ReadonlySet<string> = new Set<keyof PreferenceLossOptions>([
  "lossType", "beta", "qualEta", "tauRef", "perfGamma", "nllLambda", "tauGood", "useQualityWeight",
  "usePerformanceWeight", "detachPerformanceWeight", "labelSmoothing", "robustVariant", "gammaBetaRatio",
  "simpoForm", "rpoAlpha", "validate",
]);

function fail(message: string): never {
  throw new Error(`preferenceLoss: ${message}`);
}

type Check = "positive" | "nonnegative" | "finite" | "notNaN";

function num(options: PreferenceLossOptions, key: keyof PreferenceLossOptions, fallback: number, check: Check): number {
  const v = options[key];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== "number") fail(`option ${key} must be a number, got ${typeof v} (${JSON.stringify(v)})`);
  if (Number.isNaN(v)) fail(`option ${key} is NaN`);
  if (check !== "notNaN" && !Number.isFinite(v)) fail(`option ${key} must be finite, got ${v}`);
  if (check === "positive" && !(v > 0)) fail(`option ${key} must be > 0, got ${v}`);
  if (check === "nonnegative" && !(v >= 0)) fail(`option ${key} must be >= 0, got ${v}`);
  return v;
}

function bool(options: PreferenceLossOptions, key: keyof PreferenceLossOptions, fallback: boolean): boolean {
  const v = options[key];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== "boolean") fail(`option ${key} must be true or false, got ${JSON.stringify(v)}`);
  return v;
}

function oneOf<T extends string>(options: PreferenceLossOptions, key: keyof PreferenceLossOptions, allowed: readonly T[], fallback: T): T {
  const v = options[key];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== "string" || !allowed.includes(v as T)) {
    fail(`option ${key} must be one of ${allowed.join(", ")}, got ${JSON.stringify(v)}`);
  }
  return v as T;
}

/**
 * Fills in the defaults and checks every option given (options a loss type does not use are
 * checked too, then ignored). Unknown option names are an error, so a misspelt option cannot
 * silently fall back to its default.
 */
export function resolvePreferenceOptions(options: PreferenceLossOptions = {}): ResolvedPreferenceOptions {
  if (options === null || typeof options !== "object") fail(`options must be an object, got ${options === null ? "null" : typeof options}`);
  for (const key of Object.keys(options)) {
    if (!KNOWN_OPTIONS.has(key)) fail(`unknown option '${key}'; known options: ${[...KNOWN_OPTIONS].join(", ")}`);
  }
  const lossType = oneOf<LossType>(options, "lossType", LOSS_TYPES, "omni_dpo");
  const robustVariant = oneOf(options, "robustVariant", ["cdpo", "rdpo"] as const, "cdpo");
  const labelSmoothing = num(options, "labelSmoothing", 0, "nonnegative");
  // rDPO divides by (1 - 2e); cDPO's e is a probability that the label is flipped.
  if (lossType === "robust" && robustVariant === "rdpo" && !(labelSmoothing < 0.5)) {
    fail(`option labelSmoothing must be < 0.5 for the rdpo form of robust (it divides by 1 - 2e), got ${labelSmoothing}`);
  }
  if (!(labelSmoothing <= 1)) fail(`option labelSmoothing must be in [0, 1], got ${labelSmoothing}`);
  const rpoAlphaGiven = options.rpoAlpha !== undefined && options.rpoAlpha !== null;
  if (lossType === "rpo" && !rpoAlphaGiven) {
    fail("lossType rpo needs option rpoAlpha (the weight of the chosen NLL; the RPO paper uses 1.0)");
  }
  return {
    lossType,
    beta: num(options, "beta", DEFAULT_BETA[lossType], "positive"),
    qualEta: num(options, "qualEta", OMNI_DPO_DEFAULTS.qualEta, "nonnegative"),
    tauRef: num(options, "tauRef", OMNI_DPO_DEFAULTS.tauRef, "finite"),
    perfGamma: num(options, "perfGamma", OMNI_DPO_DEFAULTS.perfGamma, "nonnegative"),
    nllLambda: num(options, "nllLambda", OMNI_DPO_DEFAULTS.nllLambda, "nonnegative"),
    // tauGood may be +-Infinity: never / always open by score.
    tauGood: num(options, "tauGood", OMNI_DPO_DEFAULTS.tauGood, "notNaN"),
    useQualityWeight: bool(options, "useQualityWeight", true),
    usePerformanceWeight: bool(options, "usePerformanceWeight", true),
    detachPerformanceWeight: bool(options, "detachPerformanceWeight", false),
    labelSmoothing,
    robustVariant,
    gammaBetaRatio: num(options, "gammaBetaRatio", SIMPO_DEFAULTS.gammaBetaRatio, "finite"),
    simpoForm: oneOf(options, "simpoForm", ["sigmoid", "hinge"] as const, SIMPO_DEFAULTS.simpoForm),
    rpoAlpha: rpoAlphaGiven ? num(options, "rpoAlpha", 0, "nonnegative") : null,
    validate: bool(options, "validate", true),
  };
}
