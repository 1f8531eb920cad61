// The training configuration: a reference YAML (alignment-handbook / TRL / Uni-DPO keys, as
// they are) with `--set key=value` overrides, read against the table of recipe keys (keys.ts):
// types, defaults and rules come from there. Unknown keys are warned about by name, wrong
// values are errors naming the file, the key and the value, and keys the trainer does not act
// on yet are accepted as the table says (with a warning, or silently).
import { existsSync, realpathSync } from "node:fs";
import { basename, dirname, isAbsolute, join, resolve } from "node:path";
import { readTextFile } from "../util/utf8.js";
import { parse as parseYaml } from "yaml";
import { objectiveConfigKeys, objectiveFromConfig, type ResolvedPreferenceOptions } from "../objectives/index.js";
import { ALL_KEYS, fieldOf, specOf, SUPPORTED_KEYS, type KeySpec, type RecipeValues } from "./keys.js";

export interface TrainConfig extends RecipeValues {
  objective: ResolvedPreferenceOptions;
  /** The objective's keys as the recipe gave them (to name what changed when a run resumes). */
  objectiveKeys: Record<string, unknown>;
  /** Where the YAML came from (relative paths in it resolve against its directory). */
  source: string;
}

export class ConfigError extends Error {
  constructor(message: string) { super(message); this.name = "ConfigError"; }
}

function typed(key: string, spec: KeySpec, v: unknown, where: string): unknown {
  // Reference YAMLs are read by Python's HfArgumentParser, where `None` means unset.
  if (v === null || v === undefined || v === "None") return null;
  const bad = (expected: string) => new ConfigError(`${where}: key '${key}' must be ${expected}, got ${JSON.stringify(v)}`);
  const numeric = typeof v === "string" && v.trim() !== "" ? Number(v) : v;  // YAML 1.1 reads `1e-6` as a string
  switch (spec.kind) {
    case "path":
    case "string": if (typeof v !== "string") throw bad("a string"); return v;
    case "enum": if (typeof v !== "string" || !spec.values!.includes(v)) throw bad(`one of ${spec.values!.join(", ")}`); return v;
    case "boolean": if (typeof v !== "boolean") throw bad("true or false"); return v;
    case "number":
    case "steps": if (typeof numeric !== "number" || !Number.isFinite(numeric)) throw bad("a number"); return numeric;
    case "integer": if (typeof numeric !== "number" || !Number.isInteger(numeric)) throw bad("an integer"); return numeric;
    case "checkpoint": if (typeof v !== "string" && typeof v !== "boolean") throw bad("a path or true/false"); return v;
    case "mixer": {
      if (typeof v === "string") return { [v]: 1 };
      if (Array.isArray(v) && v.every((x) => typeof x === "string")) return Object.fromEntries(v.map((p) => [p, 1]));
      if (typeof v !== "object" || Array.isArray(v)) throw bad("a mapping {path: fraction}");
      for (const [p, f] of Object.entries(v as Record<string, unknown>)) {
        if (typeof f !== "number" || !(f > 0 && f <= 1)) throw new ConfigError(`${where}: dataset_mixer: fraction for '${p}' must be a number in (0, 1], got ${JSON.stringify(f)}`);
      }
      return v;
    }
    case "list":
    case "mapping": return v;  // checked by the key's own rule, where the trainer reads it
  }
}

/** Parses `key=value` (the value read as YAML, so numbers and booleans come out typed). */
export function parseOverride(text: string): [string, unknown] {
  const eq = text.indexOf("=");
  if (eq <= 0) throw new ConfigError(`--set expects key=value, got '${text}'`);
  return [text.slice(0, eq).trim(), parseYaml(text.slice(eq + 1))];
}

/** A path with symlinks resolved, also when it does not exist yet (its nearest existing ancestor is resolved). */
function realPath(p: string): string {
  let head = resolve(p);
  const tail: string[] = [];
  while (!existsSync(head) && dirname(head) !== head) {
    tail.unshift(basename(head));
    head = dirname(head);
  }
  return join(realpathSync(head), ...tail);
}

export interface LoadedConfig { config: TrainConfig; warnings: string[] }

/** Reads a YAML file (or an already-parsed object) with overrides into a checked TrainConfig. */
export function loadTrainConfig(source: string | Record<string, unknown>, overrides: [string, unknown][] = []): LoadedConfig {
  let raw: Record<string, unknown>;
  let where = "config";
  let baseDir = process.cwd();
  if (typeof source === "string") {
    where = source;
    if (!existsSync(source)) throw new ConfigError(`${source}: file not found`);
    const text = readTextFile(source, (m) => new ConfigError(m));
    let parsed: unknown;
    try { parsed = parseYaml(text); } catch (e) { throw new ConfigError(`${source}: not valid YAML (${(e as Error).message})`); }
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new ConfigError(`${source}: expected a mapping of keys to values`);
    raw = parsed as Record<string, unknown>;
    baseDir = dirname(resolve(source));
  } else {
    raw = { ...source };
  }
  for (const [k, v] of overrides) raw[k] = v;

  const warnings: string[] = [];
  const values: Record<string, unknown> = {};
  const objectiveKeys: Record<string, unknown> = {};
  const objectiveNames = new Set(objectiveConfigKeys().map((k) => k.key));
  for (const [key, v] of Object.entries(raw)) {
    const spec = specOf(key);
    if (spec?.status === "warn") {
      if (v !== false && v !== null) warnings.push(`${where}: key '${key}' is for hardware or tooling this run does not use; ignored`);
    } else if (spec?.status === "ignored") {
      // hub, trackers and tooling this project replaces
    } else if (spec) {
      values[key] = typed(key, spec, v, where);
    } else if (objectiveNames.has(key)) {
      if (v !== undefined) objectiveKeys[key] = v;
    } else {
      warnings.push(`${where}: unknown key '${key}' ignored`);
    }
  }
  for (const key of SUPPORTED_KEYS) {
    if (values[key] === undefined || values[key] === null) {
      const spec = specOf(key)!;
      if (!("default" in spec)) throw new ConfigError(`${where}: missing required key '${key}'`);
      values[key] = spec.default;
    }
  }
  for (const key of SUPPORTED_KEYS) {
    const v = values[key];
    const problem = v === null ? undefined : specOf(key)!.check?.(v as never, values);
    if (problem) throw new ConfigError(`${where}: key '${key}' ${problem}, got ${JSON.stringify(v)}`);
  }
  let objective: ResolvedPreferenceOptions;
  try { objective = objectiveFromConfig(raw, { otherKeys: ALL_KEYS }); } catch (e) { throw new ConfigError(`${where}: ${(e as Error).message}`); }

  // Paths resolve against the YAML's directory, as the reference scripts run from theirs.
  const path = (p: string) => (isAbsolute(p) ? p : resolve(baseDir, p));
  const fields: Record<string, unknown> = {};
  for (const key of SUPPORTED_KEYS) {
    const v = values[key];
    const kind = specOf(key)!.kind;
    fields[fieldOf(key)] = v === null ? null
      : kind === "path" || (kind === "checkpoint" && typeof v === "string") ? path(v as string)
      : kind === "mixer" ? Object.fromEntries(Object.entries(v as Record<string, number>).map(([p, f]) => [path(p), f]))
      : v;
  }
  const config = { ...fields, objective, objectiveKeys, source: where } as TrainConfig;
  if ((config.evalStrategy ?? config.evaluationStrategy) === "no") config.evalSteps = null;
  if (config.saveStrategy === "no") config.saveSteps = null;

  // Writing the run's output over the model it starts from (or compares against) destroys it.
  const out = realPath(config.outputDir);
  for (const [key, dir] of [["model_name_or_path", config.modelNameOrPath], ["ref_model", config.refModel]] as const) {
    if (dir !== null && realPath(dir) === out) {
      throw new ConfigError(`${where}: output_dir (${config.outputDir}) is the directory of ${key} (${dir}): training would overwrite that model; choose another output_dir`);
    }
  }
  return { warnings, config };
}
