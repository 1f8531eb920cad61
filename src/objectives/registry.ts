// The loss registry: every loss preferenceLoss and objectiveFromConfig know, the built-in ones
// first, then those added by registerLoss. A declaration is checked and normalised once, here;
// the option index and the table of YAML keys are kept up to date with each registration.
import { ObjectiveError } from "./errors.js";
import { BUILTIN_LOSSES } from "./losses.js";
import type {
  ConfigName,
  ConfigStyle,
  DerivedKey,
  LossInputs,
  LossOptions,
  LossResult,
  LossSpec,
  NumberCheck,
  OptionDecl,
  OptionDecls,
  OptionSpec,
  OptionValue,
  ScoreInput,
  TokenWork,
} from "./spec.js";
import type { Tensor } from "../torch/index.js";

/** An option as the registry holds it: every field filled in. */
export interface RegisteredOption {
  readonly name: string;
  readonly type: "number" | "boolean" | "string";
  readonly default: OptionValue;
  readonly mathDefault?: OptionValue;
  readonly values?: readonly string[];
  readonly list: boolean;
  readonly check: NumberCheck;
  readonly refine?: (value: OptionValue) => string | null;
  readonly required?: string;
  readonly help: string;
  readonly symbol?: string;
  readonly label?: string;
  readonly keys: readonly string[];
  readonly style?: ConfigStyle;
  readonly fromYaml?: (value: OptionValue) => OptionValue;
  readonly derived?: DerivedKey;
  readonly exclusive: boolean;
  /** Per-token work of the log-prob pass it asks for (OptionSpec.tokens). */
  readonly tokens?: TokenWork;
  /** The losses that declare it. */
  readonly losses: readonly string[];
}

/** A loss as the registry holds it. */
export interface RegisteredLoss {
  readonly name: string;
  readonly aliases: readonly string[];
  readonly title: string;
  readonly equation: string;
  readonly needsReference: boolean;
  /** The scores it reads under these options, each with the reason. */
  readonly scoresNeeded: (options: LossOptions) => Partial<Record<ScoreInput, string>>;
  /** Why it needs the answers' token counts under these options, or null. */
  readonly lengthsNeeded: (options: LossOptions) => string | null;
  /** How a YAML selects it when no config name does, for the README. */
  readonly selectedBy?: string;
  /** Its TRL DPOTrainer loss_type, when it is one (a possible term of a loss_type list). */
  readonly trlLossType?: string;
  readonly beta: { readonly default: number; readonly mathDefault?: number };
  /** Its own options, in declaration order. */
  readonly options: readonly RegisteredOption[];
  readonly losses: (inputs: LossInputs, options: LossOptions) => Tensor | LossResult;
  readonly config: readonly ConfigName[];
  /** Options it reads from a YAML in one reading only. */
  readonly readIn: Readonly<Record<string, ConfigStyle>>;
  readonly validate?: (options: LossOptions) => { option: string; message: string } | null;
  /** One of this package's own losses (listed in the README). */
  readonly builtin: boolean;
}

/** What one YAML key does. */
export interface ConfigKey {
  readonly key: string;
  /** "selector": pref_loss / loss_type; "beta"; an option's key; a key an option is derived from. */
  readonly kind: "selector" | "beta" | "option" | "derived";
  readonly option?: RegisteredOption;
  /** The reading in which it has this meaning; both when absent. */
  readonly style?: ConfigStyle;
  readonly losses: string[];
}

/** The loss of a YAML that names none, and of preferenceLoss without lossType (the Textual trainer's default). */
export const DEFAULT_LOSS = "omni_dpo";

/** Not options: the loss name and the input check switch. beta is every loss's option. */
const COMMON_OPTIONS = ["lossType", "beta", "validate"] as const;

const losses: RegisteredLoss[] = [];
const byName = new Map<string, RegisteredLoss>();
const options = new Map<string, RegisteredOption & { losses: string[] }>();
const sources = new Map<string, OptionDecl>();
/** Each YAML key's meanings (loss_type has two: the loss in a Math-style YAML, SimPO's form in a Textual one). */
const configKeys = new Map<string, ConfigKey[]>();

/** Losses whose margin is reference-adjusted, so they need the reference model's log-probs. Live: registerLoss adds to it. */
export const REFERENCE_LOSSES: ReadonlySet<string> = new Set<string>();

/**
 * Every YAML key the objective reads, as a plain list. Live: registerLoss appends to it.
 * @deprecated use objectiveConfigKeys(), which says what each key is.
 */
export const OBJECTIVE_CONFIG_KEYS: readonly string[] = [];

const NAME = /^[a-z][a-z0-9_]*$/;
const OPTION_NAME = /^[A-Za-z][A-Za-z0-9_]*$/;
const CHECKS: readonly NumberCheck[] = ["positive", "nonnegative", "finite", "notNaN"];
const STYLES: readonly ConfigStyle[] = ["textual", "math"];

const overlaps = (a?: ConfigStyle, b?: ConfigStyle) => a === undefined || b === undefined || a === b;
const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/** Checks a declaration against what is registered, and normalises it; registers nothing. */
function normalise(spec: LossSpec, builtin: boolean): { loss: RegisteredLoss; newOptions: RegisteredOption[] } {
  const bad = (detail: string, fields: { option?: string; key?: string } = {}): never => {
    throw new ObjectiveError("registerLoss", detail, {
      loss: isPlainObject(spec) && typeof spec.name === "string" ? spec.name : undefined,
      ...fields,
    });
  };
  if (!isPlainObject(spec))
    bad(
      `a loss spec must be an object, got ${spec === null ? "null" : Array.isArray(spec) ? "an array" : typeof spec}`,
    );
  const { name } = spec;
  if (typeof name !== "string" || !NAME.test(name))
    bad(`name must be lower-case letters, digits and _, starting with a letter, got ${JSON.stringify(name)}`);
  const aliases = spec.aliases ?? [];
  if (!Array.isArray(aliases) || !aliases.every((a) => typeof a === "string" && NAME.test(a))) {
    bad(`loss ${name}: aliases must be names like its own, got ${JSON.stringify(spec.aliases)}`);
  }
  for (const n of [name, ...aliases]) {
    const taken = byName.get(n);
    if (taken)
      bad(`loss ${name}: the name ${n} is already registered${taken.name === n ? "" : ` (an alias of ${taken.name})`}`);
  }
  if (new Set([name, ...aliases]).size !== aliases.length + 1) bad(`loss ${name}: aliases repeat a name`);
  if (typeof spec.needsReference !== "boolean")
    bad(`loss ${name}: needsReference must be true or false, got ${JSON.stringify(spec.needsReference)}`);
  if (typeof spec.losses !== "function")
    bad(`loss ${name}: losses must be a function (inputs, options) => per-pair losses [B]`);
  for (const field of ["title", "equation"] as const) {
    if (spec[field] !== undefined && typeof spec[field] !== "string") bad(`loss ${name}: ${field} must be a string`);
  }
  if (spec.validate !== undefined && typeof spec.validate !== "function")
    bad(`loss ${name}: validate must be a function`);
  if (spec.selectedBy !== undefined && typeof spec.selectedBy !== "string")
    bad(`loss ${name}: selectedBy must be a string`);
  const needsScores = spec.needsScores ?? false;
  if (typeof needsScores !== "boolean" && typeof needsScores !== "function")
    bad(`loss ${name}: needsScores must be true, false or a function of the options`);
  const needsLengths = spec.needsLengths ?? false;
  if (typeof needsLengths !== "boolean" && typeof needsLengths !== "function")
    bad(`loss ${name}: needsLengths must be true, false or a function of the options`);
  if (spec.trlLossType !== undefined && (typeof spec.trlLossType !== "string" || !NAME.test(spec.trlLossType)))
    bad(`loss ${name}: trlLossType must be a TRL loss_type name`);
  const trlTaken = spec.trlLossType === undefined ? undefined : losses.find((l) => l.trlLossType === spec.trlLossType);
  if (trlTaken) bad(`loss ${name}: TRL's loss_type ${spec.trlLossType} is already loss ${trlTaken.name}`);

  // Options: beta may be declared among them (as its default) or as spec.beta.
  const decls = spec.options ?? {};
  if (!isPlainObject(decls)) bad(`loss ${name}: options must be an object mapping option names to defaults`);
  let betaDecl: LossSpec["beta"] = spec.beta;
  const own: RegisteredOption[] = [];
  const newOptions: RegisteredOption[] = [];
  for (const [option, decl] of Object.entries(decls as OptionDecls)) {
    if (option === "beta") {
      if (betaDecl !== undefined) bad(`loss ${name}: beta is declared twice (spec.beta and options.beta)`, { option });
      betaDecl = decl as number;
      continue;
    }
    if (!OPTION_NAME.test(option))
      bad(`loss ${name}: option name ${JSON.stringify(option)} must be letters, digits and _`, { option });
    if ((COMMON_OPTIONS as readonly string[]).includes(option))
      bad(`loss ${name}: ${option} is not an option a loss can declare`, { option });
    const existing = options.get(option);
    if (existing) {
      // One name, one meaning: losses share an option only by sharing its declaration.
      if (sources.get(option) !== decl) {
        bad(
          `loss ${name}: option ${option} is already an option of ${existing.losses.join(", ")}; give it another name`,
          { option },
        );
      }
      own.push(existing);
      continue;
    }
    const normal = normaliseOption(name, option, decl, bad);
    own.push(normal);
    newOptions.push(normal);
  }
  const beta = normaliseBeta(name, betaDecl, bad);

  // YAML keys of the new options must not mean something else already (in an overlapping reading).
  const pending = new Map<string, RegisteredOption>();
  for (const o of newOptions) {
    for (const key of [...o.keys, ...(o.derived ? [o.derived.key] : [])]) {
      const clash = (configKeys.get(key) ?? []).find((c) => overlaps(c.style, o.style));
      if (clash) {
        const what =
          clash.kind === "option"
            ? `sets option ${clash.option!.name}`
            : clash.kind === "derived"
              ? `determines option ${clash.option!.name}`
              : `is ${clash.kind === "beta" ? "beta" : "the loss selector"}`;
        bad(`loss ${name}: option ${o.name}'s YAML key ${key} already ${what}`, { option: o.name, key });
      }
      const twice = pending.get(key);
      if (twice && overlaps(twice.style, o.style))
        bad(`loss ${name}: YAML key ${key} is given to two of its options`, { key });
      pending.set(key, o);
    }
  }

  const readIn = spec.readIn ?? {};
  if (!isPlainObject(readIn)) bad(`loss ${name}: readIn must map option names to textual or math`);
  for (const [option, style] of Object.entries(readIn)) {
    if (!own.some((o) => o.name === option))
      bad(`loss ${name}: readIn names ${option}, which is not one of its options`, { option });
    if (!STYLES.includes(style as ConfigStyle))
      bad(`loss ${name}: readIn.${option} must be textual or math, got ${JSON.stringify(style)}`, { option });
  }

  const config: readonly ConfigName[] = spec.config ?? [name, ...aliases].map((value) => ({ value }));
  if (!Array.isArray(config)) bad(`loss ${name}: config must be a list of names ({ value, style?, when?, set? })`);
  for (const entry of config) normaliseConfigName(name, entry, own, pending, bad);
  for (const entry of config) {
    if (entry.when) continue;
    for (const other of losses) {
      const clash = other.config.find((c) => !c.when && c.value === entry.value && overlaps(c.style, entry.style));
      if (clash) bad(`loss ${name}: a YAML naming ${entry.value} already means loss ${other.name}`);
    }
    if (config.some((c) => c !== entry && !c.when && c.value === entry.value && overlaps(c.style, entry.style))) {
      bad(`loss ${name}: config names ${entry.value} twice`);
    }
  }

  const scoresNeeded =
    typeof needsScores === "function"
      ? (needsScores as (o: LossOptions) => Partial<Record<ScoreInput, string>>)
      : needsScores
        ? () => ({ scoreChosen: `lossType ${name}`, scoreRejected: `lossType ${name}` })
        : () => ({});
  const lengthsNeeded =
    typeof needsLengths === "function"
      ? (needsLengths as (o: LossOptions) => string | null)
      : () => (needsLengths ? `lossType ${name}` : null);
  const loss: RegisteredLoss = {
    name,
    aliases: [...aliases],
    title: spec.title ?? name,
    equation: spec.equation ?? "",
    needsReference: spec.needsReference,
    scoresNeeded,
    lengthsNeeded,
    ...(spec.trlLossType !== undefined ? { trlLossType: spec.trlLossType } : {}),
    ...(spec.selectedBy !== undefined ? { selectedBy: spec.selectedBy } : {}),
    beta,
    options: own,
    losses: spec.losses as RegisteredLoss["losses"],
    config: config.map((c) => ({ ...c })),
    readIn: { ...readIn } as Record<string, ConfigStyle>,
    validate: spec.validate as RegisteredLoss["validate"],
    builtin,
  };
  return { loss, newOptions };
}

function normaliseBeta(
  loss: string,
  decl: LossSpec["beta"],
  bad: (detail: string, fields?: { option?: string }) => never,
): RegisteredLoss["beta"] {
  const positive = (v: unknown) => typeof v === "number" && Number.isFinite(v) && v > 0;
  if (decl === undefined) return { default: 0.1 }; // TRL's DPOConfig
  if (typeof decl === "number") {
    if (!positive(decl))
      bad(`loss ${loss}: its default beta must be a finite number > 0, got ${decl}`, { option: "beta" });
    return { default: decl };
  }
  if (
    !isPlainObject(decl) ||
    !positive(decl.default) ||
    (decl.mathDefault !== undefined && !positive(decl.mathDefault))
  ) {
    bad(
      `loss ${loss}: beta must be a number > 0 or { default, mathDefault? } of such numbers, got ${JSON.stringify(decl)}`,
      { option: "beta" },
    );
  }
  return { default: decl.default, ...(decl.mathDefault !== undefined ? { mathDefault: decl.mathDefault } : {}) };
}

function normaliseOption(
  loss: string,
  name: string,
  decl: OptionDecl,
  bad: (detail: string, fields?: { option?: string; key?: string }) => never,
): RegisteredOption & { losses: string[] } {
  const where = `loss ${loss}: option ${name}`;
  const fail = (detail: string): never => bad(`${where}: ${detail}`, { option: name });
  const spec: OptionSpec = isPlainObject(decl) ? (decl as OptionSpec) : { default: decl as OptionValue };
  if (!isPlainObject(decl) && !["number", "boolean", "string"].includes(typeof decl)) {
    fail(
      `its declaration must be a default (a number, true/false or a string) or an option spec, got ${decl === null ? "null" : typeof decl}`,
    );
  }
  const declared: unknown = spec.type ?? (spec.default === null ? undefined : typeof spec.default);
  if (declared !== "number" && declared !== "boolean" && declared !== "string") {
    return fail(
      spec.default === null
        ? "a null default needs a type (number, boolean or string)"
        : `its default must be a number, true/false or a string, got ${typeof spec.default}`,
    );
  }
  const type = declared;
  const fits = (v: unknown) => v === null || typeof v === type;
  if (!fits(spec.default) || (spec.mathDefault !== undefined && !fits(spec.mathDefault)))
    fail(`its defaults must be of type ${type}`);
  if (type === "number" && typeof spec.default === "number" && Number.isNaN(spec.default)) fail("its default is NaN");
  if (spec.values !== undefined) {
    if (
      type !== "string" ||
      !Array.isArray(spec.values) ||
      spec.values.length === 0 ||
      !spec.values.every((v) => typeof v === "string")
    ) {
      fail("values must be a non-empty list of strings, for a string option");
    }
    for (const d of [spec.default, spec.mathDefault])
      if (typeof d === "string" && !spec.values.includes(d))
        fail(`its default ${JSON.stringify(d)} is not one of its values`);
  }
  if (spec.check !== undefined && !CHECKS.includes(spec.check)) fail(`check must be one of ${CHECKS.join(", ")}`);
  if (spec.list !== undefined && (typeof spec.list !== "boolean" || (spec.list && (type !== "string" || spec.values))))
    fail("list must be true or false, and true only on a string option without values");
  for (const field of ["refine", "fromYaml"] as const)
    if (spec[field] !== undefined && typeof spec[field] !== "function") fail(`${field} must be a function`);
  for (const field of ["required", "help", "symbol", "label"] as const)
    if (spec[field] !== undefined && typeof spec[field] !== "string") fail(`${field} must be a string`);
  const keys = spec.keys ?? [name];
  if (!Array.isArray(keys) || !keys.every((k) => typeof k === "string" && NAME.test(k)))
    fail(`keys must be YAML keys (lower case, digits, _), got ${JSON.stringify(spec.keys)}`);
  if (spec.style !== undefined && !STYLES.includes(spec.style)) fail("style must be textual or math");
  if (spec.tokens !== undefined && !(["answerWeights", "lengthWeight"] as unknown[]).includes(spec.tokens))
    fail("tokens must be answerWeights or lengthWeight");
  if (spec.tokens === "answerWeights" && type !== "boolean") fail("tokens: answerWeights is a boolean option's");
  if (spec.tokens === "lengthWeight" && type !== "number") fail("tokens: lengthWeight is a number option's");
  const d = spec.derived;
  if (
    d !== undefined &&
    (!isPlainObject(d) ||
      typeof d.key !== "string" ||
      !NAME.test(d.key) ||
      typeof d.compute !== "function" ||
      type !== "number")
  ) {
    fail("derived must be { key, help, compute(value, beta), text } on a number option");
  }
  return {
    name,
    type,
    default: spec.default,
    ...(spec.mathDefault !== undefined ? { mathDefault: spec.mathDefault } : {}),
    ...(spec.values ? { values: [...spec.values] } : {}),
    list: spec.list === true,
    check: spec.check ?? "finite",
    refine: spec.refine as RegisteredOption["refine"],
    required: spec.required,
    help: spec.help ?? "",
    symbol: spec.symbol,
    label: spec.label,
    keys: [...keys],
    style: spec.style,
    fromYaml: spec.fromYaml as RegisteredOption["fromYaml"],
    derived: d,
    exclusive: spec.exclusive === true,
    tokens: spec.tokens,
    losses: [],
  };
}

function normaliseConfigName(
  loss: string,
  entry: ConfigName,
  own: readonly RegisteredOption[],
  pendingKeys: Map<string, RegisteredOption>,
  bad: (detail: string) => never,
): void {
  if (!isPlainObject(entry) || typeof entry.value !== "string" || !NAME.test(entry.value)) {
    bad(
      `loss ${loss}: each config name needs a value as a YAML normalises it (lower case, "_"), got ${JSON.stringify(entry)}`,
    );
  }
  if (entry.style !== undefined && !STYLES.includes(entry.style))
    bad(`loss ${loss}: config name ${entry.value}: style must be textual or math`);
  if (entry.when !== undefined) {
    const w = entry.when;
    const option = isPlainObject(w)
      ? (pendingKeys.get(w.key) ?? configKeys.get(w.key)?.find((c) => c.kind === "option")?.option)
      : undefined;
    if (!isPlainObject(w) || typeof w.holds !== "function" || typeof w.text !== "string" || option?.type !== "number") {
      bad(
        `loss ${loss}: config name ${entry.value}: when must be { key, holds(value), text } on a number option's YAML key`,
      );
    }
  }
  for (const [option, value] of Object.entries(entry.set ?? {})) {
    const o = own.find((x) => x.name === option);
    if (!o || (value !== null && typeof value !== o.type) || (o.values && !o.values.includes(value as string))) {
      bad(`loss ${loss}: config name ${entry.value}: set.${option} must be a valid value of one of its options`);
    }
  }
}

function addConfigKey(
  key: string,
  kind: ConfigKey["kind"],
  loss: string,
  option?: RegisteredOption,
  style?: ConfigStyle,
): void {
  let meanings = configKeys.get(key);
  if (!meanings) {
    configKeys.set(key, (meanings = []));
    (OBJECTIVE_CONFIG_KEYS as string[]).push(key);
  }
  const found = meanings.find((c) => c.kind === kind && c.option === option);
  if (found) {
    if (!found.losses.includes(loss)) found.losses.push(loss);
  } else {
    meanings.push({ key, kind, option, style, losses: [loss] });
  }
}

function commit(loss: RegisteredLoss, newOptions: RegisteredOption[], decls: OptionDecls): void {
  losses.push(loss);
  for (const n of [loss.name, ...loss.aliases]) byName.set(n, loss);
  // TRL's loss_type name works in code as in a YAML (lossType: "sigmoid" is dpo), unless it names another loss.
  if (loss.trlLossType && !byName.has(loss.trlLossType)) byName.set(loss.trlLossType, loss);
  for (const o of newOptions) {
    options.set(o.name, o as RegisteredOption & { losses: string[] });
    sources.set(o.name, decls[o.name]);
  }
  for (const o of loss.options) options.get(o.name)!.losses.push(loss.name);
  if (loss.needsReference) (REFERENCE_LOSSES as Set<string>).add(loss.name);
  // Every loss reads the selectors and beta; then its options' keys.
  addConfigKey("pref_loss", "selector", loss.name);
  addConfigKey("loss_type", "selector", loss.name, undefined, "math");
  addConfigKey("beta", "beta", loss.name);
  for (const o of loss.options) {
    for (const key of o.keys) addConfigKey(key, "option", loss.name, o, o.style);
    if (o.derived) addConfigKey(o.derived.key, "derived", loss.name, o);
  }
  for (const c of loss.config) {
    if (!c.when) continue;
    const meaning = configKeys.get(c.when.key)!.find((m) => m.kind === "option")!;
    if (!meaning.losses.includes(loss.name)) meaning.losses.push(loss.name);
  }
}

/**
 * Adds a loss to preferenceLoss (`lossType: <name>`) and to objectiveFromConfig
 * (`loss_type: <name>` or `pref_loss: <name>`, its options by their names). The minimum is
 * `{ name, needsReference, options, losses }`: `options` maps option names to defaults (beta is
 * always an option), and `losses(inputs, options)` returns the per-pair losses [B] from the 1-D
 * tensors preferenceLoss takes. The loss gets the standard reward metrics. A name already
 * registered, or a bad declaration, is an ObjectiveError naming what is wrong.
 */
export function registerLoss<const O extends OptionDecls>(spec: LossSpec<O>): RegisteredLoss {
  const { loss, newOptions } = normalise(spec as unknown as LossSpec, false);
  commit(loss, newOptions, (spec.options ?? {}) as OptionDecls);
  return loss;
}

for (const spec of BUILTIN_LOSSES) {
  const { loss, newOptions } = normalise(spec as unknown as LossSpec, true);
  commit(loss, newOptions, (spec as LossSpec).options ?? {});
}

/** The loss of a name or alias, or undefined. */
export function lossSpec(name: string): RegisteredLoss | undefined {
  return byName.get(name);
}

/** Every registered loss, built-in ones first, in registration order. */
export function registeredLosses(): readonly RegisteredLoss[] {
  return losses;
}

/** Every option of every registered loss, in registration order. */
export function registeredOptions(): readonly RegisteredOption[] {
  return [...options.values()];
}

/** The option names preferenceLoss accepts. */
export function optionNames(): string[] {
  return [...COMMON_OPTIONS.slice(0, 2), ...options.keys(), COMMON_OPTIONS[2]];
}

/** What a YAML key means (one entry per reading where it means different things); [] when the objective does not read it. */
export function configKey(key: string): readonly ConfigKey[] {
  return configKeys.get(key) ?? [];
}

/** Every YAML key the objective reads, in registration order, with its meanings. */
export function allConfigKeys(): readonly (readonly ConfigKey[])[] {
  return [...configKeys.values()];
}

/** Does this loss (a lossType, or resolved options) need the reference model's log-probs? */
export function needsReference(loss: string | { lossType: string }): boolean {
  const name = typeof loss === "string" ? loss : loss.lossType;
  const spec = byName.get(name);
  if (!spec)
    throw new ObjectiveError("preferenceLoss", `unknown lossType ${JSON.stringify(name)}`, { option: "lossType" });
  return spec.needsReference;
}
