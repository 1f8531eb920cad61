// The architecture registry: one declaration per architecture (the config.json names it answers
// to, its class, its config parser, its checkpoint naming rules), read by createModel,
// loadModel and saveModel. Adding an architecture is a file that exports its spec and one line
// in BUILT_IN below; code outside the package adds its own with registerArchitecture. The spec's
// type lives in architecture.ts, which the architectures import (this module imports them all).
import type { ArchitectureSpec } from "./architecture.js";
import type { CausalLM } from "./causal-lm.js";
import { isModelDirectory, readConfig, type RawConfig } from "./config.js";
import { GEMMA2 } from "./gemma2.js";
import { isAdapterDirectory, readAdapterConfig } from "./peft.js";
import { GEMMA3_TEXT } from "./gemma3.js";
import { GPT2 } from "./gpt2.js";
import { LLAMA, MISTRAL, QWEN2 } from "./llama.js";
import { PHI3 } from "./phi3.js";
import { QWEN3 } from "./qwen3.js";
import { QWEN2_VL } from "./qwen2-vl.js";

// Registered specs have different parsed-config types; each is only ever called with its own.
type AnySpec = ArchitectureSpec<any>;

const BUILT_IN: AnySpec[] = [GPT2, LLAMA, QWEN2, MISTRAL, QWEN3, PHI3, GEMMA2, GEMMA3_TEXT, QWEN2_VL];

const byName = new Map<string, AnySpec>();
const byClass = new Map<string, AnySpec>();
const byModelType = new Map<string, AnySpec>();
const byClassifierClass = new Map<string, AnySpec>();

function isStringList(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((s) => typeof s === "string" && s.length > 0);
}

/**
 * Adds an architecture: config.json files naming one of its `architectures` (or, failing that,
 * its `modelTypes`) then create, load and save through it. A name, class or model_type that
 * another spec already answers to is an error.
 */
export function registerArchitecture<C>(spec: ArchitectureSpec<C>): void {
  const what = `registerArchitecture(${typeof spec?.name === "string" ? `'${spec.name}'` : "spec"})`;
  if (typeof spec !== "object" || spec === null) throw new Error(`${what}: the spec must be an object`);
  if (typeof spec.name !== "string" || !spec.name) throw new Error(`${what}: name must be a non-empty string`);
  if (!isStringList(spec.architectures)) throw new Error(`${what}: architectures must be a list of class names`);
  if (!isStringList(spec.modelTypes)) throw new Error(`${what}: modelTypes must be a list of model_type names`);
  if (spec.architectures.length + spec.modelTypes.length === 0)
    throw new Error(`${what}: give at least one class name or model_type`);
  if (typeof spec.parseConfig !== "function") throw new Error(`${what}: parseConfig must be a function`);
  if (typeof spec.model !== "function") throw new Error(`${what}: model must be a class`);
  if (spec.optionalPrefixes !== undefined && !isStringList(spec.optionalPrefixes))
    throw new Error(`${what}: optionalPrefixes must be a list of strings`);
  if (spec.tiedWeights !== undefined && typeof spec.tiedWeights !== "function")
    throw new Error(`${what}: tiedWeights must be a function`);
  if (spec.ignoredCheckpointNames !== undefined && !(spec.ignoredCheckpointNames instanceof RegExp))
    throw new Error(`${what}: ignoredCheckpointNames must be a RegExp`);
  if (spec.sequenceClassifiers !== undefined && !isStringList(spec.sequenceClassifiers))
    throw new Error(`${what}: sequenceClassifiers must be a list of class names`);
  if (spec.checkpointLayouts !== undefined && !Array.isArray(spec.checkpointLayouts))
    throw new Error(`${what}: checkpointLayouts must be a list of prefix maps`);
  if (spec.loraTargetModules !== undefined && !isStringList(spec.loraTargetModules)) {
    throw new Error(`${what}: loraTargetModules must be a list of module names`);
  }
  const taken = byName.get(spec.name);
  if (taken) throw new Error(`${what}: an architecture named '${spec.name}' is already registered`);
  // Causal-LM and classifier class names share one namespace.
  const classes = [...spec.architectures, ...(spec.sequenceClassifiers ?? [])];
  for (const [i, cls] of classes.entries()) {
    const other = byClass.get(cls) ?? byClassifierClass.get(cls) ?? (classes.indexOf(cls) < i ? spec : undefined);
    if (other) throw new Error(`${what}: class ${cls} is already registered, by '${other.name}'`);
  }
  for (const type of spec.modelTypes) {
    const other = byModelType.get(type);
    if (other) throw new Error(`${what}: model_type '${type}' is already registered, by '${other.name}'`);
  }
  byName.set(spec.name, spec);
  for (const cls of spec.architectures) byClass.set(cls, spec);
  for (const cls of spec.sequenceClassifiers ?? []) byClassifierClass.set(cls, spec);
  for (const type of spec.modelTypes) byModelType.set(type, spec);
}

for (const spec of BUILT_IN) registerArchitecture(spec);

/** The class names of every registered architecture, in registration order. */
export function supportedArchitectures(): string[] {
  return [...byClass.keys()];
}

/**
 * The spec a config.json answers to: its first `architectures` entry that is registered, else
 * its `model_type`. Anything else is an error, naming `where`, that lists the supported classes.
 */
export function resolveArchitecture(config: RawConfig, where = "config.json"): AnySpec {
  const classes: unknown = config.architectures;
  if (classes !== undefined && classes !== null && !isStringList(classes)) {
    throw new Error(`${where}: field architectures must be a list of class names, got ${JSON.stringify(classes)}`);
  }
  for (const cls of classes ?? []) {
    const spec = byClass.get(cls);
    if (spec) return spec;
  }
  const type = config.model_type;
  if (typeof type === "string" && byModelType.has(type)) return byModelType.get(type)!;
  const what = classes?.length ? `architectures ${JSON.stringify(classes)}` : `model_type '${type ?? "(none)"}'`;
  throw new Error(`${where}: unsupported ${what}; supported: ${supportedArchitectures().join(", ")}`);
}

/** The sequence-classification class names of every registered architecture, in registration order. */
export function supportedSequenceClassifiers(): string[] {
  return [...byClassifierClass.keys()];
}

/**
 * The spec, and the classifier class name to save under, for a sequence-classification model
 * of this config.json: its first `architectures` entry registered as a classifier; else the
 * first registered causal-LM class, or else its `model_type`, of an architecture that has
 * classifiers (a causal-LM checkpoint then fails to load for want of score.weight, naming it).
 */
export function resolveSequenceClassifier(
  config: RawConfig,
  where = "config.json",
): { spec: AnySpec; className: string } {
  const classes: unknown = config.architectures;
  if (classes !== undefined && classes !== null && !isStringList(classes)) {
    throw new Error(`${where}: field architectures must be a list of class names, got ${JSON.stringify(classes)}`);
  }
  for (const cls of classes ?? []) {
    const spec = byClassifierClass.get(cls);
    if (spec) return { spec, className: cls };
  }
  const type = config.model_type;
  const spec =
    (classes ?? []).map((c) => byClass.get(c)).find((s) => s?.sequenceClassifiers?.length) ??
    (typeof type === "string" ? byModelType.get(type) : undefined);
  if (spec?.sequenceClassifiers?.length) return { spec, className: spec.sequenceClassifiers[0] };
  const what = classes?.length ? `architectures ${JSON.stringify(classes)}` : `model_type '${type ?? "(none)"}'`;
  throw new Error(
    `${where}: no sequence-classification model for ${what}; supported: ${supportedSequenceClassifiers().join(", ")}`,
  );
}

/**
 * The layers LoRA wraps when a recipe names none: the model's architecture's `loraTargetModules`
 * (PEFT's default for its model_type). An architecture without one is an error, naming `key`,
 * that asks for the list.
 */
export function defaultLoraTargets(model: CausalLM, key = "target_modules"): readonly string[] {
  const targets = byName.get(model.architecture)?.loraTargetModules;
  if (!targets)
    throw new Error(`${key}: no default for architecture '${model.architecture}'; name the layers (or all-linear)`);
  return targets;
}

/** Whether the model's architecture takes images (a vision-language model such as Qwen2-VL). */
export function takesImages(model: CausalLM): boolean {
  return byName.get(model.architecture)?.takesImages === true;
}

/**
 * Whether a model directory's config.json (a LoRA adapter's: its base model's) names an
 * architecture that takes images, before loading it; false for an unsupported or unreadable
 * config, which the load reports in its own words.
 */
export function directoryTakesImages(dir: string): boolean {
  try {
    const model = isAdapterDirectory(dir) ? readAdapterConfig(dir).baseDir : dir;
    return isModelDirectory(model) && resolveArchitecture(readConfig(model)).takesImages === true;
  } catch {
    return false;
  }
}
