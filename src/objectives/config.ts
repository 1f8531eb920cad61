// objectiveFromConfig: the loss options a reference YAML (already parsed) asks for.
//
// Two references write these YAMLs, and they read the loss keys differently:
// - Uni-DPO's text trainer (Textual/, SimPO-derived): `pref_loss: uni_dpo | simpo` picks the
//   loss, and `loss_type: sigmoid | hinge` is SimPO's form (ignored by uni_dpo).
// - Uni-DPO's math trainer (Math/, TRL-derived): `loss_type` picks the loss: `uni_dpo`, `simpo`,
//   or one of TRL's DPO losses (`sigmoid`, `robust`, `ipo`, `hinge`), and `rpo_alpha` adds
//   the chosen NLL to it.
// So: when `pref_loss` is present the text reading applies, otherwise the math/TRL reading.
// With neither key the loss is omni_dpo (the text trainer's default). `omni_dpo` is accepted
// wherever `uni_dpo` is (as a value and as the key prefix `omni_dpo_*`), and so are this
// project's own loss names (dpo, robust, ipo, hinge, simpo, rpo, omni_dpo).
import { resolvePreferenceOptions } from "./options.js";
import { LOSS_TYPES, type LossType, type PreferenceLossOptions, type ResolvedPreferenceOptions, type SimpoForm } from "./types.js";

function fail(message: string): never {
  throw new Error(`objectiveFromConfig: ${message}`);
}

/** The config's keys that set loss options (for documentation and the trainer's key checks). */
export const OBJECTIVE_CONFIG_KEYS: readonly string[] = [
  "pref_loss", "loss_type", "beta", "label_smoothing", "gamma_beta_ratio", "simpo_gamma", "rpo_alpha",
  ...["qual_eta", "tau_ref", "perf_gamma", "nll_lambda", "tau_good", "use_qual_weight", "use_perf_weight", "detach_perf_weight"]
    .flatMap((k) => [`uni_dpo_${k}`, `omni_dpo_${k}`]),
];

type Config = Record<string, unknown>;

/** The YAML key of each option, for error messages. */
const YAML_KEY: Record<string, string> = {
  beta: "beta", qualEta: "uni_dpo_qual_eta", tauRef: "uni_dpo_tau_ref", perfGamma: "uni_dpo_perf_gamma",
  nllLambda: "uni_dpo_nll_lambda", tauGood: "uni_dpo_tau_good", labelSmoothing: "label_smoothing",
  gammaBetaRatio: "gamma_beta_ratio", rpoAlpha: "rpo_alpha",
};

const present = (v: unknown) => v !== undefined && v !== null;

/** A number from YAML: numbers, or numeric strings (YAML 1.1 reads `1e-6` as a string). */
function numberAt(config: Config, key: string): number | undefined {
  const v = config[key];
  if (!present(v)) return undefined;
  if (typeof v === "number") {
    if (Number.isNaN(v)) fail(`${key} is NaN`);
    return v;
  }
  if (typeof v === "string" && v.trim() !== "" && !Number.isNaN(Number(v))) return Number(v);
  return fail(`${key} must be a number, got ${JSON.stringify(v)}`);
}

function boolAt(config: Config, key: string): boolean | undefined {
  const v = config[key];
  if (!present(v)) return undefined;
  if (typeof v === "boolean") return v;
  if (typeof v === "string" && /^(true|false)$/i.test(v.trim())) return v.trim().toLowerCase() === "true";
  return fail(`${key} must be true or false, got ${JSON.stringify(v)}`);
}

function stringAt(config: Config, key: string): string | undefined {
  const v = config[key];
  if (!present(v)) return undefined;
  if (typeof v !== "string") fail(`${key} must be a string, got ${JSON.stringify(v)}`);
  return v.trim().toLowerCase().replace(/-/g, "_");   // as the reference: lower(), "-" -> "_"
}

/** `uni_dpo_<name>` or `omni_dpo_<name>`; both present and different is an error. */
function omniKey<T>(config: Config, name: string, read: (c: Config, k: string) => T | undefined): T | undefined {
  const a = read(config, `uni_dpo_${name}`);
  const b = read(config, `omni_dpo_${name}`);
  if (a !== undefined && b !== undefined && a !== b) {
    fail(`uni_dpo_${name} (${a}) and omni_dpo_${name} (${b}) disagree; give one of them`);
  }
  return a ?? b;
}

const OMNI_NAMES = new Set(["uni_dpo", "omni_dpo", "unidpo", "omnidpo"]);

interface Selection { lossType: LossType; robustVariant?: "cdpo" | "rdpo"; simpoForm?: SimpoForm; trlStyle: boolean }

function selectLoss(config: Config): Selection {
  const pref = stringAt(config, "pref_loss");
  const lt = stringAt(config, "loss_type");
  const own = (v: string) => (LOSS_TYPES as readonly string[]).includes(v);
  if (pref !== undefined) {
    // Text reference: loss_type is SimPO's form, Literal["sigmoid", "hinge"].
    if (lt !== undefined && lt !== "sigmoid" && lt !== "hinge") {
      fail(`with pref_loss, loss_type is SimPO's form and must be sigmoid or hinge, got ${JSON.stringify(config.loss_type)}`);
    }
    if (OMNI_NAMES.has(pref)) return { lossType: "omni_dpo", trlStyle: false };
    if (pref === "simpo") return { lossType: "simpo", simpoForm: (lt ?? "sigmoid") as SimpoForm, trlStyle: false };
    if (own(pref)) return { lossType: pref as LossType, trlStyle: false };
    return fail(`unknown pref_loss ${JSON.stringify(config.pref_loss)}; expected uni_dpo (or omni_dpo), simpo, ${LOSS_TYPES.join(", ")}`);
  }
  if (lt === undefined) return { lossType: "omni_dpo", trlStyle: false };
  if (OMNI_NAMES.has(lt)) return { lossType: "omni_dpo", trlStyle: true };
  switch (lt) {
    case "sigmoid": case "dpo": return { lossType: "dpo", trlStyle: true };
    case "robust": return { lossType: "robust", robustVariant: "rdpo", trlStyle: true };  // TRL's robust is rDPO
    case "cdpo": return { lossType: "robust", robustVariant: "cdpo", trlStyle: true };
    case "ipo": return { lossType: "ipo", trlStyle: true };
    case "hinge": return { lossType: "hinge", trlStyle: true };
    case "simpo": return { lossType: "simpo", simpoForm: "sigmoid", trlStyle: true };
    case "rpo": return { lossType: "rpo", trlStyle: true };
  }
  return fail(`loss_type ${JSON.stringify(config.loss_type)} is not supported; expected uni_dpo (or omni_dpo), simpo, ` +
    `sigmoid (DPO), robust, cdpo, ipo, hinge, rpo`);
}

/**
 * The preferenceLoss options a reference YAML asks for, every default filled in. Keys:
 * `pref_loss` / `loss_type` (see the top of this file), `beta`, `uni_dpo_qual_eta`,
 * `uni_dpo_tau_ref`, `uni_dpo_perf_gamma`, `uni_dpo_nll_lambda`, `uni_dpo_tau_good` (or
 * `omni_dpo_*`), `gamma_beta_ratio` (else `simpo_gamma / beta` where the math reference's
 * `simpo_gamma` is given), `label_smoothing`, `rpo_alpha`; and this project's ablation keys
 * `uni_dpo_use_qual_weight`, `uni_dpo_use_perf_weight`, `uni_dpo_detach_perf_weight`.
 * Other keys (trainer settings) are left alone.
 *
 * TRL's conventions carry over exactly: `loss_type: sigmoid` with `label_smoothing` > 0 is
 * cDPO (lossType robust, variant cdpo); `loss_type: robust` is TRL's unbiased rDPO (variant
 * rdpo); `rpo_alpha` with `loss_type: sigmoid` is lossType rpo.
 */
export function objectiveFromConfig(config: Record<string, unknown>): ResolvedPreferenceOptions {
  if (config === null || typeof config !== "object" || Array.isArray(config)) {
    fail(`config must be an object (a parsed YAML mapping), got ${config === null ? "null" : Array.isArray(config) ? "an array" : typeof config}`);
  }
  const sel = selectLoss(config);
  const options: PreferenceLossOptions = { lossType: sel.lossType };
  const beta = numberAt(config, "beta");
  if (beta !== undefined) options.beta = beta;

  const labelSmoothing = numberAt(config, "label_smoothing");
  const rpoAlpha = numberAt(config, "rpo_alpha");

  if (sel.lossType === "omni_dpo") {
    const set = (key: keyof PreferenceLossOptions, v: number | boolean | undefined) => { if (v !== undefined) (options as Record<string, unknown>)[key] = v; };
    set("qualEta", omniKey(config, "qual_eta", numberAt));
    set("tauRef", omniKey(config, "tau_ref", numberAt));
    set("perfGamma", omniKey(config, "perf_gamma", numberAt));
    set("nllLambda", omniKey(config, "nll_lambda", numberAt));
    set("tauGood", omniKey(config, "tau_good", numberAt));
    set("useQualityWeight", omniKey(config, "use_qual_weight", boolAt));
    set("usePerformanceWeight", omniKey(config, "use_perf_weight", boolAt));
    set("detachPerformanceWeight", omniKey(config, "detach_perf_weight", boolAt));
    // The reference applies c-NLL only when lambda > 0; a negative lambda means off there.
    if (options.nllLambda !== undefined && options.nllLambda < 0) options.nllLambda = 0;
  }

  if (sel.lossType === "dpo" && labelSmoothing !== undefined && labelSmoothing > 0) {
    // TRL's sigmoid loss with label smoothing is conservative DPO.
    options.lossType = "robust";
    options.robustVariant = "cdpo";
  }
  if (options.lossType === "robust") {
    options.robustVariant = sel.robustVariant ?? options.robustVariant ?? "cdpo";
    if (labelSmoothing !== undefined) options.labelSmoothing = labelSmoothing;
  }

  if (sel.lossType === "simpo") {
    options.simpoForm = sel.simpoForm;
    const ratio = numberAt(config, "gamma_beta_ratio");
    const simpoGamma = numberAt(config, "simpo_gamma");
    if (ratio !== undefined) options.gammaBetaRatio = ratio;
    else if (simpoGamma !== undefined) options.gammaBetaRatio = simpoGamma / (beta ?? 2.0);
    // The text reference's SimPO sigmoid form applies label_smoothing; the math one does not.
    if (!sel.trlStyle && labelSmoothing !== undefined && sel.simpoForm === "sigmoid") options.labelSmoothing = labelSmoothing;
  }

  if (rpoAlpha !== undefined) {
    if (sel.lossType === "rpo") options.rpoAlpha = rpoAlpha;
    else if (options.lossType === "dpo") { options.lossType = "rpo"; options.rpoAlpha = rpoAlpha; }
    else {
      fail(`rpo_alpha is supported with the DPO loss only (loss_type: sigmoid without label_smoothing), ` +
        `not with ${options.lossType === "robust" ? "label_smoothing > 0" : `loss ${options.lossType}`}`);
    }
  }

  try {
    return resolvePreferenceOptions(options);
  } catch (err) {
    const message = (err as Error).message.replace(/^preferenceLoss: /, "");
    const option = /option (\w+)/.exec(message)?.[1];
    const key = option ? YAML_KEY[option] : undefined;
    throw new Error(`objectiveFromConfig: ${message}${key ? ` (YAML key ${key})` : ""}`);
  }
}
