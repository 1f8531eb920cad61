// The training configuration: a reference YAML (alignment-handbook / TRL / Uni-DPO keys, as
// they are) with `--set key=value` overrides, read against the table of recipe keys (keys.ts):
// types, defaults and rules come from there. An unknown key is an error with the nearest known
// key as a suggestion (a warning with allowUnknownKeys), wrong values are errors naming the
// file, the key and the value, and keys the trainer does not act on are, as the table says,
// warned about (tooling) or refused (they would change training).
import { existsSync } from "node:fs";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { readDatasetInfoEntry, type DatasetInfoEntry, type RankingColumns } from "../data/image-records.js";
import { isWithin } from "../util/paths.js";
import { readTextFile } from "../util/utf8.js";
import { isMap, isScalar, LineCounter, parse as parseYaml, parseDocument, visit } from "yaml";
import {
  objectiveConfigKeys,
  objectiveFromConfig,
  REFERENCE_LOSSES,
  type ResolvedPreferenceOptions,
} from "../objectives/index.js";
import { resolveLengthNorm } from "./length-norm.js";
import { nearestKey } from "../util/nearest.js";

export { nearestKey };
import {
  ALL_KEYS,
  fieldOf,
  LLAMA_FACTORY_KEYS,
  REPORTERS,
  specOf,
  SUPPORTED_KEYS,
  type KeySpec,
  type RecipeValues,
} from "./keys.js";

export interface TrainConfig extends Omit<RecipeValues, "dpoLengthNorm"> {
  /** dpo_length_norm as resolved: the recipe's, else as the trainer it is written for (length-norm.ts). */
  dpoLengthNorm: boolean;
  /** Why dpoLengthNorm has its value (the run header and the model card say it). */
  dpoLengthNormReason: string;
  objective: ResolvedPreferenceOptions;
  /** The objective's keys as the recipe gave them (to name what changed when a run resumes). */
  objectiveKeys: Record<string, unknown>;
  /** Where the YAML came from (relative paths in it resolve against its directory). */
  source: string;
  /** With `dataset`: each entry's file (a dataset_mixer path) and its dataset_info.json column names. */
  datasetColumns?: Record<string, Partial<RankingColumns>>;
}

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

/** A value as errors show it: JSON, but infinities and NaN (which JSON writes as null) by name. */
function shown(v: unknown): string {
  if (typeof v === "number" && !Number.isFinite(v)) {
    return Number.isNaN(v) ? "NaN (not a number)" : `${v} (not a finite number: beyond ±1.8e308)`;
  }
  return JSON.stringify(v);
}

function typed(key: string, spec: KeySpec, v: unknown, where: string): unknown {
  // Reference YAMLs are read by Python's HfArgumentParser, where `None` means unset.
  if (v === null || v === undefined || v === "None") return null;
  const bad = (expected: string) => new ConfigError(`${where}: key '${key}' must be ${expected}, got ${shown(v)}`);
  const numeric = typeof v === "string" && v.trim() !== "" ? Number(v) : v; // YAML 1.1 reads `1e-6` as a string
  switch (spec.kind) {
    case "path":
    case "string":
      if (typeof v !== "string") throw bad("a string");
      return v;
    case "enum":
      if (typeof v !== "string" || !spec.values!.includes(v)) throw bad(`one of ${spec.values!.join(", ")}`);
      return v;
    case "boolean":
      if (typeof v !== "boolean") throw bad("true or false");
      return v;
    case "number":
    case "steps":
      if (typeof numeric !== "number" || !Number.isFinite(numeric)) throw bad("a number");
      return numeric;
    case "integer":
      if (typeof numeric !== "number" || !Number.isInteger(numeric)) throw bad("an integer");
      return numeric;
    case "checkpoint":
      if (typeof v !== "string" && typeof v !== "boolean") throw bad("a path or true/false");
      return v;
    case "mixer": {
      if (typeof v === "string") return { [v]: 1 };
      if (Array.isArray(v) && v.every((x) => typeof x === "string")) return Object.fromEntries(v.map((p) => [p, 1]));
      if (typeof v !== "object" || Array.isArray(v)) throw bad("a mapping {path: fraction}");
      for (const [p, f] of Object.entries(v as Record<string, unknown>)) {
        if (typeof f !== "number" || !(f > 0 && f <= 1))
          throw new ConfigError(
            `${where}: dataset_mixer: fraction for '${p}' must be a number in (0, 1], got ${JSON.stringify(f)}`,
          );
      }
      return v;
    }
    case "list":
    case "mapping":
      return v; // checked by the key's own rule, where the trainer reads it
  }
}

/**
 * Parses `key=value` (the value read as YAML, so numbers and booleans come out typed). An empty
 * value (an unset shell variable, say) is an error: read as YAML it would be null, the key's
 * default, and the run would silently train with it. `None` still asks for the default.
 */
export function parseOverride(text: string): [string, unknown] {
  const eq = text.indexOf("=");
  if (eq <= 0) throw new ConfigError(`--set expects key=value, got '${text}'`);
  const key = text.slice(0, eq).trim();
  const raw = text.slice(eq + 1);
  if (raw.trim() === "")
    throw new ConfigError(`--set ${key}: the value is empty (give one, or None for the key's default)`);
  let value: unknown;
  try {
    value = parseYaml(raw);
  } catch (e) {
    throw new ConfigError(
      `--set ${key}: '${raw}' is not a YAML value (${(e as Error).message.split("\n")[0]!.replace(/:$/, "")})`,
    );
  }
  if (typeof value === "number" && !Number.isFinite(value))
    throw new ConfigError(`--set ${key}: '${raw}' is ${shown(value)}`);
  return [key, value];
}

/** report_to as {tracker: written here}; "none" (or an empty list) is none, "all" every tracker. */
export function reportedTo(v: unknown): Record<string, boolean> {
  const names = v === null || v === undefined ? [] : typeof v === "string" ? [v] : (v as string[]);
  const out: Record<string, boolean> = {};
  for (const name of names) {
    if (name === "none") continue;
    if (name === "all") for (const r of REPORTERS) out[r] = true;
    else out[name] = (REPORTERS as readonly string[]).includes(name);
  }
  return out;
}

export interface LoadedConfig {
  config: TrainConfig;
  warnings: string[];
}

export interface LoadOptions {
  /** Unknown keys are warnings instead of errors (the CLI's --allow-unknown-keys). */
  allowUnknownKeys?: boolean;
}

/** Whether a status key's value leaves it as if unset: None, its default, or false for a key whose default is None. */
function leftAtDefault(spec: KeySpec, v: unknown): boolean {
  if (v === null || v === undefined || v === "None" || (v === false && spec.default === null)) return true;
  return JSON.stringify(v) === JSON.stringify(spec.default);
}

/** How many unknown keys an error or warning lists (then a count of the rest). */
const LISTED_KEYS = 20;

/** A key as messages show it: a very long one cut short. */
const keyName = (key: string) => (key.length > 80 ? `${key.slice(0, 80)}… (${key.length} characters)` : key);

/**
 * A recipe's YAML. Keys repeated in one mapping are an error (they would silently take the last
 * value); the check here is linear, as the YAML library's own (uniqueKeys) is quadratic in the
 * number of keys: minutes for a file of a hundred thousand.
 */
function parseRecipe(text: string, source: string): unknown {
  const lines = new LineCounter();
  const doc = parseDocument(text, { uniqueKeys: false, lineCounter: lines });
  const error = doc.errors[0];
  if (error) throw new ConfigError(`${source}: not valid YAML (${error.message})`);
  visit(doc, {
    Map(_, map) {
      if (!isMap(map)) return;
      const seen = new Map<unknown, number>();
      for (const pair of map.items) {
        if (!isScalar(pair.key)) continue;
        const line = lines.linePos(pair.key.range?.[0] ?? 0).line;
        const first = seen.get(pair.key.value);
        if (first !== undefined) {
          throw new ConfigError(
            `${source}: line ${line}: key '${keyName(String(pair.key.value))}' repeats the one on line ${first}`,
          );
        }
        seen.set(pair.key.value, line);
      }
    },
  });
  try {
    return doc.toJS();
  } catch (e) {
    throw new ConfigError(`${source}: not valid YAML (${(e as Error).message})`);
  }
}

/** What to do with a Hub dataset id. */
export const HUB_HINT =
  "datasets are not downloaded: save it as JSONL or Parquet (datasets' to_json or to_parquet; docs/recipe-keys.md, TRL recipes) " +
  "and name the file";

/** "owner/name" that names no file: what a Hub dataset id looks like. */
function looksLikeHubId(p: string, baseDir: string): boolean {
  return /^[\w.-]+\/[\w.-]+$/.test(p) && !/\.(jsonl|json|parquet)$/i.test(p) && !existsSync(resolve(baseDir, p));
}

/** TR-DPO and reference_free need a reference of their own kind; what they cannot go with, as TRL. */
function referenceProblem(v: Record<string, unknown>): string | undefined {
  if (v.sync_ref_model) {
    if (v.use_peft)
      return "key 'sync_ref_model' cannot go with use_peft (the reference is the policy with its adapters off; as TRL)";
    if (v.precompute_ref_log_probs)
      return "key 'sync_ref_model' cannot go with precompute_ref_log_probs (the reference changes as it trains; as TRL)";
    if (v.reference_free) return "key 'sync_ref_model' cannot go with reference_free (there is no reference to sync)";
  }
  return undefined;
}

/** LLaMA-Factory's key names read as ours, or refused by name (keys.ts LLAMA_FACTORY_KEYS); in place. */
function renameLlamaFactoryKeys(raw: Record<string, unknown>, where: string): void {
  for (const [theirs, rule] of Object.entries(LLAMA_FACTORY_KEYS)) {
    if (!Object.hasOwn(raw, theirs)) continue;
    if ("refused" in rule)
      throw new ConfigError(`${where}: key '${theirs}' (LLaMA-Factory's) is not read: ${rule.refused}`);
    if (Object.hasOwn(raw, rule.ours)) {
      throw new ConfigError(
        `${where}: keys '${theirs}' (LLaMA-Factory's name) and '${rule.ours}' mean the same; give one`,
      );
    }
    raw[rule.ours] = raw[theirs];
    delete raw[theirs];
  }
  // LLaMA-Factory's pref_loss: sigmoid is DPO's loss; here pref_loss names the objective.
  if (raw.pref_loss === "sigmoid") {
    throw new ConfigError(`${where}: key 'pref_loss': LLaMA-Factory's "sigmoid" is DPO: write pref_loss: dpo`);
  }
}

/** Reads a YAML file (or an already-parsed object) with overrides into a checked TrainConfig. */
export function loadTrainConfig(
  source: string | Record<string, unknown>,
  overrides: [string, unknown][] = [],
  options: LoadOptions = {},
): LoadedConfig {
  let raw: Record<string, unknown>;
  let where = "config";
  let baseDir = process.cwd();
  if (typeof source === "string") {
    where = source;
    if (!existsSync(source)) throw new ConfigError(`${source}: file not found`);
    const text = readTextFile(source, (m) => new ConfigError(m));
    const parsed = parseRecipe(text, source);
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed))
      throw new ConfigError(`${source}: expected a mapping of keys to values`);
    raw = parsed as Record<string, unknown>;
    baseDir = dirname(resolve(source));
  } else {
    raw = { ...source };
  }
  for (const [k, v] of overrides) raw[k] = v;
  renameLlamaFactoryKeys(raw, where);
  // A key's value as errors place it: the recipe's, or --set's.
  const overridden = new Set(overrides.map(([k]) => k));
  const whereOf = (key: string) => (overridden.has(key) ? `--set ${key}` : where);

  const warnings: string[] = [];
  const values: Record<string, unknown> = {};
  const objectiveKeys: Record<string, unknown> = {};
  const objectiveNames = new Set(objectiveConfigKeys().map((k) => k.key));
  const unknown: string[] = [];
  for (const [key, v] of Object.entries(raw)) {
    const spec = specOf(key);
    if (spec?.status === "warn") {
      if (!leftAtDefault(spec, v))
        warnings.push(
          `${where}: key '${key}' changes nothing in this run (tooling, hardware or memory use); ignored (${spec.help})`,
        );
    } else if (spec?.status === "error") {
      if (!leftAtDefault(spec, v))
        throw new ConfigError(
          `${where}: key '${key}' (${JSON.stringify(v)}) is not supported: ${spec.help} It would change what training does; remove it or set it to ${JSON.stringify(spec.default)}`,
        );
    } else if (spec) {
      values[key] = typed(key, spec, v, whereOf(key));
    } else if (objectiveNames.has(key)) {
      if (v !== undefined) objectiveKeys[key] = v;
    } else {
      unknown.push(key);
    }
  }
  // The first LISTED_KEYS by name, with a suggestion (an edit distance to every known key: not for all of a huge list).
  const listed = unknown.slice(0, LISTED_KEYS).map((key) => {
    const near = nearestKey(key, [...ALL_KEYS, ...objectiveNames]);
    return `${whereOf(key)}: unknown key '${keyName(key)}'${near ? ` (did you mean '${near}'?)` : ""}`;
  });
  const more = unknown.length > LISTED_KEYS ? `, and ${unknown.length - LISTED_KEYS} more unknown keys` : "";
  if (unknown.length && !options.allowUnknownKeys) {
    throw new ConfigError(
      `${listed.join("; ")}${more}. A misspelt key would train with the default instead; fix it, or pass --allow-unknown-keys to ignore unknown keys with a warning`,
    );
  }
  warnings.push(...listed.map((u) => `${u} ignored (--allow-unknown-keys)`));
  if (more) warnings.push(`${where}: ${unknown.length - LISTED_KEYS} more unknown keys ignored (--allow-unknown-keys)`);
  for (const key of SUPPORTED_KEYS) {
    if (values[key] === undefined || values[key] === null) {
      const spec = specOf(key)!;
      if (!("default" in spec)) throw new ConfigError(`${where}: missing required key '${key}'`);
      values[key] = spec.default;
    }
  }
  // The training data: alignment-handbook's dataset_mixer, TRL's dataset_name (a file here), the Math recipe's
  // train_data_path, or LLaMA-Factory's dataset (entries of a dataset_info.json).
  const dataKeys = ["dataset_mixer", "dataset_name", "train_data_path", "dataset"].filter((k) => values[k] !== null);
  if (!dataKeys.length)
    throw new ConfigError(
      `${where}: missing required key 'dataset_mixer' ` +
        "(or TRL's dataset_name, the Math recipe's train_data_path, or LLaMA-Factory's dataset)",
    );
  if (dataKeys.length > 1)
    throw new ConfigError(
      `${where}: keys ${dataKeys.map((k) => `'${k}'`).join(" and ")} ${dataKeys.length === 2 ? "both" : "all"} name training data; give one`,
    );
  if (values.dataset_name !== null) values.dataset_mixer = { [values.dataset_name as string]: 1 };
  // TRL's dataset_name is nearly always a Hub id; a missing dataset_mixer file gets the same hint when read (trainer.ts).
  if (typeof values.dataset_name === "string" && looksLikeHubId(values.dataset_name, baseDir)) {
    throw new ConfigError(
      `${where}: key 'dataset_name': '${values.dataset_name}' is not a file here and looks like a Hugging Face ` +
        `Hub dataset id; ${HUB_HINT}`,
    );
  }
  const initKwargs = (values.model_init_kwargs as Record<string, unknown> | null) ?? {};
  if (initKwargs.torch_dtype != null && values.torch_dtype === null) values.torch_dtype = initKwargs.torch_dtype;
  for (const k of Object.keys(initKwargs).filter((k) => k !== "torch_dtype")) {
    warnings.push(
      `${where}: key 'model_init_kwargs.${k}' changes nothing in this run (tooling, hardware or memory use); ignored (models load from local directories, with LibTorch's attention)`,
    );
  }
  if (values.eval_file !== null && values.eval_data_path !== null)
    throw new ConfigError(`${where}: keys 'eval_file' and 'eval_data_path' both name evaluation data; give one`);
  for (const key of SUPPORTED_KEYS) {
    const v = values[key];
    const problem = v === null ? undefined : specOf(key)!.check?.(v as never, values);
    if (problem) throw new ConfigError(`${whereOf(key)}: key '${key}' ${problem}, got ${shown(v)}`);
  }
  const reference = referenceProblem(values);
  if (reference) throw new ConfigError(`${where}: ${reference}`);
  for (const [key, v] of Object.entries(reportedTo(values.report_to)))
    if (!v)
      warnings.push(
        `${where}: report_to: ${key} is not available here; skipped (metrics.jsonl holds every logged row)`,
      );
  let objective: ResolvedPreferenceOptions;
  try {
    objective = objectiveFromConfig(raw, { otherKeys: ALL_KEYS });
  } catch (e) {
    throw new ConfigError(`${where}: ${(e as Error).message}`);
  }
  for (const key of ["sync_ref_model", "reference_free"]) {
    if (values[key] && !REFERENCE_LOSSES.has(objective.lossType)) {
      throw new ConfigError(
        `${where}: key '${key}' needs a loss with a reference model; ${objective.lossType} has none`,
      );
    }
  }

  // Paths resolve against the YAML's directory, as the reference scripts run from theirs.
  const path = (p: string) => (isAbsolute(p) ? p : resolve(baseDir, p));
  const fields: Record<string, unknown> = {};
  for (const key of SUPPORTED_KEYS) {
    const v = values[key];
    const kind = specOf(key)!.kind;
    fields[fieldOf(key)] =
      v === null
        ? null
        : kind === "path" || (kind === "checkpoint" && typeof v === "string")
          ? path(v as string)
          : kind === "mixer"
            ? Object.fromEntries(Object.entries(v as Record<string, number>).map(([p, f]) => [path(p), f]))
            : v;
  }
  const datasetColumns: TrainConfig["datasetColumns"] = {};
  if (values.dataset !== null) {
    // LLaMA-Factory's dataset: each name an entry of dataset_dir/dataset_info.json, read as dataset_mixer {file: 1}.
    fields.datasetDir ??= path("data");
    const info = join(fields.datasetDir as string, "dataset_info.json");
    const names = typeof values.dataset === "string" ? values.dataset.split(",") : (values.dataset as string[]);
    const mixer: Record<string, number> = {};
    for (const name of names.map((n) => n.trim())) {
      let entry: DatasetInfoEntry;
      try {
        entry = readDatasetInfoEntry(info, name);
      } catch (e) {
        throw new ConfigError(`${whereOf("dataset")}: key 'dataset': ${(e as Error).message}`);
      }
      if (!existsSync(entry.file)) {
        throw new ConfigError(
          `${whereOf("dataset")}: key 'dataset': ${info}: '${name}': field 'file_name': ${entry.file}: file not found`,
        );
      }
      if (Object.hasOwn(mixer, entry.file)) {
        throw new ConfigError(`${whereOf("dataset")}: key 'dataset': '${name}' names ${entry.file} a second time`);
      }
      mixer[entry.file] = 1;
      datasetColumns[entry.file] = entry.columns;
    }
    fields.datasetMixer = mixer;
    // LLaMA-Factory's media_dir defaults to dataset_dir.
    fields.mediaDir ??= fields.datasetDir;
  }
  const lengthNorm = resolveLengthNorm(raw, objective, values.dpo_length_norm as boolean | null);
  fields.dpoLengthNorm = lengthNorm.value;
  const config = {
    ...fields,
    dpoLengthNormReason: lengthNorm.reason,
    objective,
    objectiveKeys,
    source: where,
    datasetColumns,
  } as TrainConfig;
  if ((config.evalStrategy ?? config.evaluationStrategy) === "no") config.evalSteps = null;
  if (config.saveStrategy === "no" || config.saveStrategy === "epoch") config.saveSteps = null;
  // transformers: eval_strategy steps without eval_steps evaluates every logging_steps.
  if ((config.evalStrategy ?? config.evaluationStrategy) === "steps" && config.evalSteps === null)
    config.evalSteps = config.loggingSteps;

  checkOutputDir(config, where);
  return { warnings, config };
}

/**
 * Refuses an output_dir that would overwrite or delete an input of the run: a model (policy or
 * reference) equal to output_dir, inside it (a checkpoint of an earlier run, which rotation and
 * overwrite_output_dir delete), or holding it; a data file inside it. Paths are compared with
 * links resolved, before anything is written or deleted.
 */
function checkOutputDir(config: TrainConfig, where: string): void {
  const out = config.outputDir;
  const models: [string, string | null][] = [
    ["model_name_or_path", config.modelNameOrPath],
    ["ref_model", config.refModel],
  ];
  const data: [string, string | null][] = [
    ["train_data_path", config.trainDataPath],
    ["eval_data_path", config.evalDataPath],
    ["eval_file", config.evalFile],
    ...Object.keys(config.datasetMixer ?? {}).map((p): [string, string] => ["dataset_mixer", p]),
  ];
  for (const [key, input] of [...models, ...data]) {
    if (input === null) continue;
    const model = models.some(([k]) => k === key);
    const problem = isWithin(input, out)
      ? isWithin(out, input)
        ? "is the directory of"
        : "contains"
      : model && isWithin(out, input)
        ? "lies inside"
        : null;
    if (problem) {
      throw new ConfigError(
        `${where}: output_dir (${out}) ${problem} ${key} (${input}): ` +
          "the run writes and deletes files there (checkpoints, overwrite_output_dir, save_total_limit), " +
          "which would destroy that input; choose an output_dir apart from it",
      );
    }
  }
}
