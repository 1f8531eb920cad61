// objectiveFromConfig: the loss options a reference YAML (already parsed) asks for, read through
// the registered loss declarations.
//
// Two reference trainers write these YAMLs, and they read the loss keys differently
// (docs/method.md, "Two trainers"):
// - the Textual trainer (SimPO-derived): `pref_loss: uni_dpo | simpo` picks the loss, and
//   `loss_type: sigmoid | hinge` is SimPO's form;
// - the Math trainer (TRL-derived): `loss_type` picks the loss: `uni_dpo`, `simpo`,
//   `dpo_positive`, or one of TRL's loss types (`sigmoid`, `robust`, `ipo`, `hinge`, ..., or a
//   list of them with `loss_weights`), and `rpo_alpha` adds the chosen NLL.
// So: with `pref_loss` the Textual reading applies, with only `loss_type` the Math one; with
// neither, the loss is omni_dpo, read as the Textual trainer (whose default it is). Each reading
// has its trainer's defaults. A loss's declaration says which values name it in which reading
// (`config`), and each option which YAML keys set it (`keys`).
import { ObjectiveError } from "./errors.js";
import { resolvePreferenceOptions } from "./options.js";
import {
  allConfigKeys,
  DEFAULT_LOSS,
  lossSpec,
  registeredLosses,
  registeredOptions,
  type RegisteredLoss,
  type RegisteredOption,
} from "./registry.js";
import type { ConfigName, ConfigStyle, OptionValue } from "./spec.js";
import type { RegisteredLossOptions, ResolvedPreferenceOptions } from "./types.js";

type Config = Record<string, unknown>;

function fail(detail: string, fields: { key?: string; option?: string; loss?: string } = {}): never {
  throw new ObjectiveError("objectiveFromConfig", detail, fields);
}

/**
 * Keys that start with a loss's name but are not the objective's: the reference's log-prob
 * setting (sequence mean or sum), which the trainer reads.
 */
const NOT_OBJECTIVE_KEYS: ReadonlySet<string> = new Set(["dpo_length_norm"]);

const present = (v: unknown) => v !== undefined && v !== null;

/** As the reference reads a loss name or form: lower case, "-" to "_". */
const normalise = (s: string) => s.trim().toLowerCase().replace(/-/g, "_");

/** Typed reads of YAML values; each error names the key. */
class YamlReader {
  constructor(
    readonly config: Config,
    readonly style: ConfigStyle,
  ) {}

  has(key: string): boolean {
    return present(this.config[key]);
  }

  /** A number: numbers, or numeric strings (YAML 1.1 reads `1e-6` as a string). */
  number(key: string): number | undefined {
    const v = this.config[key];
    if (!present(v)) return undefined;
    if (typeof v === "number") {
      if (Number.isNaN(v)) fail(`${key} is NaN`, { key });
      return v;
    }
    if (typeof v === "string" && v.trim() !== "" && !Number.isNaN(Number(v))) return Number(v);
    return fail(`${key} must be a number, got ${JSON.stringify(v)}`, { key });
  }

  boolean(key: string): boolean | undefined {
    const v = this.config[key];
    if (!present(v)) return undefined;
    if (typeof v === "boolean") return v;
    if (typeof v === "string" && /^(true|false)$/i.test(v.trim())) return v.trim().toLowerCase() === "true";
    return fail(`${key} must be true or false, got ${JSON.stringify(v)}`, { key });
  }

  string(key: string): string | undefined {
    const v = this.config[key];
    if (!present(v)) return undefined;
    if (typeof v !== "string") fail(`${key} must be a string, got ${JSON.stringify(v)}`, { key });
    return v;
  }

  /** A list of names or numbers (a single value is a list of one); each item a string or a number. */
  list(key: string): string[] | undefined {
    const v = this.config[key];
    if (!present(v)) return undefined;
    const items = Array.isArray(v) ? v : [v];
    items.forEach((item, i) => {
      if (typeof item !== "string" && typeof item !== "number")
        fail(`${key}[${i}] must be a name or a number, got ${JSON.stringify(item)}`, { key });
      if (typeof item === "string" && item.includes(","))
        fail(`${key}[${i}] must be one item, got ${JSON.stringify(item)}`, { key });
    });
    if (items.length === 0) fail(`${key} is an empty list`, { key });
    return items.map((item) => String(item).trim());
  }

  /** The value of one of an option's keys, as the option's type. */
  value(key: string, o: RegisteredOption): OptionValue | undefined {
    if (o.type === "number") return this.number(key);
    if (o.type === "boolean") return this.boolean(key);
    if (o.list) return this.list(key)?.join(",");
    const s = this.string(key);
    if (s === undefined || !o.values) return s;
    const v = normalise(s);
    if (!o.values.includes(v)) {
      const where = o.style === "textual" ? "with pref_loss, " : o.style === "math" ? "without pref_loss, " : "";
      const choices = o.values.length === 2 ? o.values.join(" or ") : `one of ${o.values.join(", ")}`;
      fail(
        `${where}${key} ${o.label ? `is ${o.label} and ` : ""}must be ${choices}, got ${JSON.stringify(this.config[key])}`,
        { key, option: o.name },
      );
    }
    return v;
  }

  /** An option's value from its keys in this reading, and the key it came from; aliases must agree. */
  option(o: RegisteredOption): { value: OptionValue; key: string } | undefined {
    if (o.style && o.style !== this.style) return undefined;
    let found: { value: OptionValue; key: string } | undefined;
    for (const key of o.keys) {
      const value = this.value(key, o);
      if (value === undefined) continue;
      if (found && found.value !== value) {
        fail(`${found.key} (${found.value}) and ${key} (${value}) disagree; give one of them`, { key, option: o.name });
      }
      found ??= { value, key };
    }
    return found;
  }
}

/** Levenshtein distance, for suggesting the key a typo meant. */
function distance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++)
      next[j] = Math.min(row[j] + 1, next[j - 1] + 1, row[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    row = next;
  }
  return row[b.length];
}

/** A key no loss reads but that starts with a loss's name is a typo: a default would silently replace it. */
function rejectUnknownKeys(config: Config, otherKeys: ReadonlySet<string>): void {
  const known = new Set(allConfigKeys().map((meanings) => meanings[0].key));
  const prefixes = registeredLosses().flatMap((l) => [l.name, ...l.aliases].map((p) => ({ prefix: `${p}_`, loss: l })));
  for (const key of Object.keys(config)) {
    if (known.has(key) || NOT_OBJECTIVE_KEYS.has(key) || otherKeys.has(key)) continue;
    const owner = prefixes.find((p) => key.startsWith(p.prefix));
    if (!owner) continue;
    // Only keys within 3 of its length can be within distance 3 (and a huge key is not compared at all).
    const closest = [...known]
      .filter((k) => Math.abs(k.length - key.length) <= 3)
      .map((k) => ({ k, d: distance(key, k) }))
      .sort((a, b) => a.d - b.d)[0];
    const hint = closest && closest.d <= 3 ? `; did you mean ${closest.k}?` : "";
    fail(
      `unknown key ${key}: it starts with ${owner.prefix} like a key of loss ${owner.loss.name}, but no loss reads it ` +
        `(a typo would otherwise fall back to a default)${hint}`,
      { key, loss: owner.loss.name },
    );
  }
}

interface Selection {
  loss: RegisteredLoss;
  name?: ConfigName;
}

/** The registered loss that sums TRL loss types (a YAML's loss_type list). */
const COMBINED = "combined";

/**
 * TRL's list form: in a Math-style YAML, `loss_type: [sigmoid, sft]`, or any loss_type with
 * `loss_weights`, is the combined loss of those TRL loss types.
 */
function selectList(yaml: YamlReader): (Selection & { terms: string }) | null {
  if (yaml.style !== "math" || !(Array.isArray(yaml.config.loss_type) || yaml.has("loss_weights"))) return null;
  const terms = yaml.list("loss_type")!.map(normalise);
  const known = new Map(registeredLosses().flatMap((l) => (l.trlLossType ? [[l.trlLossType, l] as const] : [])));
  const bad = terms.find((t) => !known.has(t));
  if (bad !== undefined) {
    fail(
      `loss_type ${JSON.stringify(yaml.config.loss_type)}: ${bad} cannot be a term of a loss_type list (with loss_weights); ` +
        `TRL's loss types are ${[...known.keys()].join(", ")}`,
      { key: "loss_type" },
    );
  }
  return { loss: lossSpec(COMBINED)!, terms: terms.join(",") };
}

/** The loss a YAML names, in its reading. */
function selectLoss(yaml: YamlReader): Selection {
  const key = yaml.style === "textual" ? "pref_loss" : "loss_type";
  const raw = yaml.string(key);
  if (raw === undefined) return { loss: lossSpec(DEFAULT_LOSS)! };
  const value = normalise(raw);
  const candidates = registeredLosses().flatMap((loss) =>
    loss.config
      .filter((c) => c.value === value && (c.style === undefined || c.style === yaml.style))
      .map((name) => ({ loss, name })),
  );
  if (candidates.length === 0) {
    const names = [
      ...new Set(
        registeredLosses().flatMap((l) =>
          l.config.filter((c) => !c.when && (c.style ?? yaml.style) === yaml.style).map((c) => c.value),
        ),
      ),
    ];
    fail(`unknown ${key} ${JSON.stringify(yaml.config[key])}: not supported; expected ${names.join(", ")}`, { key });
  }
  const conditional = candidates.filter(
    (c) =>
      c.name.when &&
      (() => {
        const v = yaml.number(c.name.when!.key);
        return v !== undefined && c.name.when!.holds(v);
      })(),
  );
  if (conditional.length > 1) {
    fail(
      `${key} ${value} means ${conditional.map((c) => `${c.loss.name} with ${c.name.when!.text.replace(/`/g, "")}`).join(", and ")}; ` +
        `the YAML has both, which this project does not combine`,
      { key },
    );
  }
  const chosen = conditional[0] ?? candidates.find((c) => !c.name.when);
  if (!chosen) {
    fail(
      `${key} ${value} names ${candidates.map((c) => `${c.loss.name} only with ${c.name.when!.text.replace(/`/g, "")}`).join(", or ")}`,
      { key },
    );
  }
  return chosen;
}

export interface ObjectiveConfigOptions {
  /** Keys other parts of the program read (the trainer's): never taken for a mistyped loss key. */
  otherKeys?: Iterable<string>;
}

/**
 * The preferenceLoss options a reference YAML asks for, every default filled in: `pref_loss` /
 * `loss_type` pick the loss (see the top of this file), `beta` and each option's keys set its
 * options (README, "Preference objectives", lists them; objectiveConfigKeys() returns them).
 * Other keys (trainer settings) are left alone, except keys starting with a loss's name that no
 * loss reads (`simpo_gama`, `uni_dpo_tau_goood`), which are errors. Every error is an
 * ObjectiveError naming the key.
 *
 * TRL's conventions carry over as current TRL has them: `loss_type: sigmoid` ignores
 * `label_smoothing` (since TRL v0.29; `cdpo` is conservative DPO, lossType robust, variant
 * cdpo); `loss_type: robust` is TRL's unbiased rDPO (variant rdpo); a `loss_type` list, or
 * `loss_weights`, is lossType combined; `rpo_alpha` with `loss_type: sigmoid` is lossType rpo.
 */
export function objectiveFromConfig(
  config: Record<string, unknown>,
  options: ObjectiveConfigOptions = {},
): ResolvedPreferenceOptions {
  if (config === null || typeof config !== "object" || Array.isArray(config)) {
    fail(
      `config must be an object (a parsed YAML mapping), got ${config === null ? "null" : Array.isArray(config) ? "an array" : typeof config}`,
    );
  }
  rejectUnknownKeys(config, new Set(options.otherKeys ?? []));
  const style: ConfigStyle = present(config.pref_loss) || !present(config.loss_type) ? "textual" : "math";
  const yaml = new YamlReader(config, style);
  const list = selectList(yaml);
  const { loss, name } = list ?? selectLoss(yaml);
  // A combined loss reads its terms' options too, each as the term alone would.
  const termLosses = list ? list.terms.split(",").map((t) => registeredLosses().find((l) => l.trlLossType === t)!) : [];
  const readOptions = [...new Set([...loss.options, ...termLosses.flatMap((l) => l.options)])];

  // Every objective key present is read, whichever loss it belongs to, so a bad value is never ignored.
  for (const o of registeredOptions()) {
    yaml.option(o);
    if (o.derived) yaml.number(o.derived.key);
  }
  for (const o of registeredOptions()) {
    if (!o.exclusive || readOptions.includes(o)) continue;
    const key = o.keys.find((k) => yaml.has(k));
    if (key)
      fail(`${key} is an option of ${o.losses.join(", ")} only, not of loss ${loss.name}`, {
        key,
        option: o.name,
        loss: loss.name,
      });
  }

  const chosen: RegisteredLossOptions = { lossType: loss.name };
  const keyOf = new Map<string, string>([["beta", "beta"]]); // option -> the YAML key it came from
  const beta = yaml.number("beta") ?? (style === "math" ? loss.beta.mathDefault : undefined);
  if (beta !== undefined) chosen.beta = beta;
  if (list) {
    chosen.lossTypes = list.terms;
    keyOf.set("lossTypes", "loss_type");
  }
  for (const o of readOptions) {
    if (o.keys.length) keyOf.set(o.name, o.keys[0]);
    if (loss.readIn[o.name] && loss.readIn[o.name] !== style) continue;
    const given = yaml.option(o);
    let value: OptionValue | undefined = given?.value;
    if (given) keyOf.set(o.name, given.key);
    if (value === undefined && o.derived) {
      const d = o.derived;
      const source = yaml.number(d.key) ?? (style === "math" ? d.mathDefault : d.default);
      if (source !== undefined) {
        value = d.compute(source, chosen.beta ?? loss.beta.default);
        keyOf.set(o.name, d.key);
      }
    }
    if (value === undefined && style === "math" && o.mathDefault !== undefined) value = o.mathDefault;
    if (value !== undefined && value !== null && o.fromYaml) value = o.fromYaml(value);
    if (value !== undefined) chosen[o.name] = value;
  }
  Object.assign(chosen, name?.set);

  try {
    return resolvePreferenceOptions(chosen);
  } catch (err) {
    if (!(err instanceof ObjectiveError) || err.option === undefined) throw err;
    const key = keyOf.get(err.option);
    fail(`${err.detail}${key ? ` (YAML key ${key})` : ""}`, {
      option: err.option,
      ...(key ? { key } : {}),
      loss: loss.name,
    });
  }
}

export interface ObjectiveConfigKey {
  key: string;
  /** The default in code and in a Textual-style YAML (per loss for beta; null: unset). */
  default: unknown;
  /** The default in a Math-style YAML, where it differs. */
  mathDefault?: unknown;
  help: string;
  /** The losses that read it. */
  losses: string[];
}

/** Every YAML key the objective reads, with its default, what it does and which losses read it. Live: includes registered losses. */
export function objectiveConfigKeys(): ObjectiveConfigKey[] {
  const byLoss = (f: (l: RegisteredLoss) => number | undefined) =>
    Object.fromEntries(registeredLosses().flatMap((l) => (f(l) === undefined ? [] : [[l.name, f(l)]])));
  return allConfigKeys().map((meanings) => {
    const { key } = meanings[0];
    const losses = [...new Set(meanings.flatMap((m) => m.losses))];
    const first = meanings[0];
    if (first.kind === "selector" && key === "pref_loss") {
      return {
        key,
        default: null,
        losses,
        help: "the loss, as the Textual trainer names it (uni_dpo, simpo, ...); present, it makes the YAML Textual-style",
      };
    }
    if (first.kind === "selector") {
      return {
        key,
        default: null,
        losses,
        help: "without pref_loss, the loss, as the Math trainer and TRL name it (uni_dpo, sigmoid, ipo, ...); with pref_loss, SimPO's form (sigmoid or hinge)",
      };
    }
    if (first.kind === "beta") {
      return {
        key,
        default: byLoss((l) => l.beta.default),
        mathDefault: byLoss((l) => l.beta.mathDefault),
        losses,
        help: "β, the temperature of the implicit reward (every loss; its default depends on the loss)",
      };
    }
    const o = first.option!;
    if (first.kind === "derived") {
      const d = o.derived!;
      return {
        key,
        default: d.default ?? null,
        ...(d.mathDefault !== undefined ? { mathDefault: d.mathDefault } : {}),
        losses,
        help: d.help,
      };
    }
    const alias = o.keys.indexOf(key) > 0 ? ` (same as ${o.keys[0]})` : "";
    return {
      key,
      default: o.default,
      ...(o.mathDefault !== undefined ? { mathDefault: o.mathDefault } : {}),
      losses,
      help: `${o.help || `option ${o.name}`}${alias}`,
    };
  });
}
