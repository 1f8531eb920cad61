// Loading and saving causal language models in Hugging Face's layout: config.json,
// generation_config.json and safetensors weights, single-file or sharded. Which class, config
// parser and checkpoint naming rules apply comes from the architecture registry. A model saved
// here loads in transformers. Adapter directories (PEFT's layout, peft.ts) load and save here too:
// a base model with the adapter applied.
import { join } from "node:path";
import * as torch from "../torch/index.js";
import { Conv1D, type Init } from "../nn/layers.js";
import { loraOf } from "../nn/lora.js";
import type { Module } from "../nn/module.js";
import { parseModelConfig, readConfig, type RawConfig } from "./config.js";
import type { CausalLM } from "./causal-lm.js";
import { generationConfigFromModelConfig, readGenerationConfig, writeGenerationConfig } from "./generation-config.js";
import type { ArchitectureSpec } from "./architecture.js";
import { resolveArchitecture, takesImages } from "./registry.js";
import { loadCheckpoint, saveCheckpoint } from "./safetensors.js";
import { writeJsonAtomic, writingTo } from "../util/files.js";
import { Tokenizer } from "../text/index.js";
import {
  ADAPTER_CONFIG,
  applyAdapter,
  checkMergeOutput,
  isAdapterDirectory,
  readAdapterConfig,
  saveAdapter,
  tokenizerDirectory,
} from "./peft.js";

/** How a loaded checkpoint named its tensors, so saving writes the same names back. */
const layouts = new WeakMap<Module, { prefix: string; renames: Readonly<Record<string, string>> }>();

/** `name` with its longest prefix that is a key of `renames` replaced by that key's value. */
function renamed(name: string, renames: Readonly<Record<string, string>>): string {
  const key = Object.keys(renames)
    .filter((k) => name.startsWith(k))
    .sort((a, b) => b.length - a.length)[0];
  return key === undefined ? name : renames[key] + name.slice(key.length);
}

/** The inverse of a prefix map (parameter-name prefix -> stored prefix), for saving. */
function inverted(renames: Readonly<Record<string, string>>): Record<string, string> {
  return Object.fromEntries(Object.entries(renames).map(([stored, param]) => [param, stored]));
}

/** The spec's model for `config`, with its parsed config (the checkpoint rules read it). */
function build<C>(
  spec: ArchitectureSpec<C>,
  config: RawConfig,
  init: Init,
  where: string,
): { model: CausalLM; parsed: C } {
  const parsed = parseModelConfig((raw) => spec.parseConfig(raw), config, where);
  const model = new spec.model(config, parsed, init);
  if (model.architecture !== spec.name) {
    model.dispose();
    throw new Error(
      `${where}: architecture '${spec.name}' made a model that reports architecture '${model.architecture}'`,
    );
  }
  return { model, parsed };
}

/** A model of the config's architecture with fresh (random, seeded by manualSeed) weights. */
export function createModel(config: RawConfig, init: Init = {}): CausalLM {
  const { model } = build(resolveArchitecture(config), config, init, "config.json");
  try {
    model.generationConfig = generationConfigFromModelConfig(config);
  } catch (e) {
    model.dispose();
    throw e;
  }
  return model;
}

export interface LoadOptions {
  /**
   * Compute dtype; weights stored as F16/BF16/F32 are cast to it. "auto": the checkpoint's own,
   * as config.json's torch_dtype names it (float32 when it names none), as transformers' auto.
   * Default float32.
   */
  dtype?: torch.DType | "auto";
  /** Where the parameters live ("cpu", "cuda", "cuda:1"); default cpu. */
  device?: torch.Device;
}

export class AutoModelForCausalLM {
  /**
   * Loads config.json, generation_config.json and the safetensors weights of `dir`; the model
   * starts in eval mode. An adapter directory (adapter_config.json) loads its base model with
   * the adapter applied, as PEFT's AutoPeftModelForCausalLM does.
   */
  static async fromPretrained(dir: string, options: LoadOptions = {}): Promise<CausalLM> {
    return loadModel(dir, options);
  }
}

export class AutoModelForImageTextToText {
  /**
   * Loads a vision-language model (Qwen2VLForConditionalGeneration) as AutoModelForCausalLM
   * does; a model of an architecture that takes no images is an error naming the directory.
   */
  static async fromPretrained(dir: string, options: LoadOptions = {}): Promise<CausalLM> {
    const model = loadModel(dir, options);
    if (!takesImages(model)) {
      model.dispose();
      throw new Error(
        `${join(dir, "config.json")}: architecture '${model.architecture}' takes no images; ` +
          "load it with AutoModelForCausalLM",
      );
    }
    return model;
  }
}

/** The floating dtype config.json's torch_dtype names ("auto" loading), float32 when it names none. */
function configDtype(config: RawConfig): torch.DType {
  const named = (config as { torch_dtype?: unknown }).torch_dtype;
  return named === "bfloat16" || named === "float16" || named === "float32" ? named : "float32";
}

export function loadModel(dir: string, options: LoadOptions = {}): CausalLM {
  if (isAdapterDirectory(dir)) return loadAdapterModel(dir, options);
  const configFile = join(dir, "config.json");
  const config = readConfig(dir);
  const spec = resolveArchitecture(config, configFile);
  const generation = readGenerationConfig(dir) ?? generationConfigFromModelConfig(config, configFile);
  const dtype = loadDtype(config, options);
  const { model, parsed } = build(spec, config, { dtype, empty: true }, configFile);
  try {
    loadWeights(dir, model, spec, parsed, dtype, config.architectures?.[0] ?? spec.name);
    model.generationConfig = generation;
    if (options.device && options.device !== "cpu") model.to(options.device);
    return model.eval() as CausalLM;
  } catch (e) {
    model.dispose();
    throw e;
  }
}

/**
 * Loads an adapter directory as PEFT's AutoPeftModelForCausalLM does: the base model named by
 * base_model_name_or_path, with the adapter's layers wrapped and its weights loaded (in eval
 * mode, float32 adapters). A base that does not match (layers the adapter names that it lacks,
 * other shapes, a missing or extra tensor) is an error naming the file and the tensor.
 */
export function loadAdapterModel(dir: string, options: LoadOptions = {}): CausalLM {
  const config = readAdapterConfig(dir);
  if (config.taskType !== "CAUSAL_LM") {
    throw new Error(
      `${join(dir, ADAPTER_CONFIG)}: field task_type is ${config.taskType}: a sequence classifier's adapter ` +
        "(a reward model); load it with AutoModelForSequenceClassification",
    );
  }
  if (isAdapterDirectory(config.baseDir)) {
    throw new Error(
      `${join(dir, ADAPTER_CONFIG)}: base_model_name_or_path '${config.baseModelNameOrPath}' is itself an adapter; name a full model`,
    );
  }
  const model = loadModel(config.baseDir, options);
  try {
    applyAdapter(model, dir, config);
    return model.eval() as CausalLM;
  } catch (e) {
    model.dispose();
    throw e;
  }
}

/** The compute dtype LoadOptions ask for, given config.json. */
export function loadDtype(config: RawConfig, options: LoadOptions): torch.DType {
  return options.dtype === "auto" ? configDtype(config) : (options.dtype ?? "float32");
}

/** A head tensor a checkpoint must hold, checked before the rest for a clearer error. */
export interface RequiredHead {
  tensor: string;
  kind: string;
}

/**
 * Fills every parameter of `model` (built by `spec` with `parsed`) from the checkpoint in
 * `dir`, by name; names `what` (the class) in the one error listing missing, unexpected and
 * misshapen tensors (or, first, the missing `head`). Remembers the naming so saving writes it back.
 */
export function loadWeights<C>(
  dir: string,
  model: Module,
  spec: ArchitectureSpec<C>,
  parsed: C,
  dtype: torch.DType,
  what: string,
  head?: RequiredHead,
): void {
  let tensors = new Map<string, torch.Tensor>();
  try {
    tensors = loadCheckpoint(dir, { dtype });
    // Another naming of the same model (a checkpoint layout): read under the parameters' names.
    const stored = [...tensors.keys()];
    const renames =
      (spec.checkpointLayouts ?? []).find((l) => stored.some((n) => Object.keys(l).some((k) => n.startsWith(k)))) ?? {};
    if (Object.keys(renames).length) tensors = new Map([...tensors].map(([n, t]) => [renamed(n, renames), t]));
    if (head && !tensors.has(head.tensor)) {
      throw new Error(
        `${dir}: no ${head.kind}: the checkpoint has no tensor ${head.tensor}, which ${what} needs` +
          (tensors.has("lm_head.weight") ? " (it holds lm_head.weight: a causal-LM checkpoint?)" : ""),
      );
    }
    // Names and shapes up front: setParameter frees the tensors it replaces.
    const shapes = new Map(model.namedParameters().map(([n, p]) => [n, p.shape.join()]));
    const tied = spec.tiedWeights?.(parsed) ?? {};
    // A prefix the checkpoint left off: some stored name is a parameter's name without it.
    const names = [...tensors.keys()];
    const prefix =
      (spec.optionalPrefixes ?? []).find((p) => names.some((n) => !shapes.has(n) && shapes.has(p + n))) ?? "";
    const unexpected: string[] = [];
    const misshapen: string[] = [];
    const loaded = new Set<string>();
    for (const [name, t] of tensors) {
      const target = shapes.has(prefix + name) ? prefix + name : name;
      const shape = shapes.get(target);
      if (shape !== undefined && shape !== t.shape.join()) {
        misshapen.push(`${name} [${t.shape}] (model: [${shape}])`);
        loaded.add(target);
      } else if (shape !== undefined) {
        model.setParameter(target, t);
        loaded.add(target);
        tensors.delete(name);
      } else if (!spec.ignoredCheckpointNames?.test(name) && !(name in tied)) {
        unexpected.push(name);
      }
    }
    const missing = [...shapes.keys()].filter((n) => !loaded.has(n));
    if (missing.length || unexpected.length || misshapen.length) {
      throw new Error(
        `${dir}: checkpoint does not match ${what}` +
          (missing.length ? `\n  missing tensors: ${missing.join(", ")}` : "") +
          (unexpected.length ? `\n  unexpected tensors: ${unexpected.join(", ")}` : "") +
          (misshapen.length ? `\n  tensors of the wrong shape: ${misshapen.join(", ")}` : ""),
      );
    }
    layouts.set(model, { prefix, renames });
  } finally {
    for (const t of tensors.values()) t.dispose();
  }
}

export interface SaveOptions {
  /** Shard above this many bytes (default 5 GB, as transformers). */
  maxShardBytes?: number;
  /** Store weights in this dtype (e.g. bfloat16 to halve the size); default: as they are. */
  dtype?: torch.DType;
  /**
   * A model with LoRA adapters: true writes the merged model (W + scaling · B A, a plain Hugging
   * Face checkpoint; the model keeps its adapters); default false writes the adapter (PEFT's layout).
   */
  merged?: boolean;
  /** The adapter's base_model_name_or_path; default: where the adapter was loaded from. */
  baseModelNameOrPath?: string;
}

/**
 * Writes config.json, generation_config.json and the weights, with the names the model was
 * loaded with. A model with LoRA adapters is written as what it is: its adapter directory
 * (adapter_config.json, adapter_model.safetensors), or with `merged: true` the merged model.
 */
export function saveModel(model: CausalLM, dir: string, options: SaveOptions = {}): void {
  if (loraOf(model) && !options.merged) {
    saveAdapter(model, dir, { baseModelNameOrPath: options.baseModelNameOrPath });
    return;
  }
  const dtype = saveWeights(model, dir, options);
  writeJsonAtomic(join(dir, "config.json"), { ...model.config, torch_dtype: dtype });
  writeGenerationConfig(dir, model.generationConfig);
}

/** Writes the weights of `model` (with the names it was loaded with); returns the dtype stored. */
export function saveWeights(model: Module, dir: string, options: SaveOptions = {}): torch.DType {
  const prefix = layouts.get(model)?.prefix ?? "";
  const renames = inverted(layouts.get(model)?.renames ?? {});
  return torch.tidy(() => {
    const merged = mergedWeights(model);
    const entries: [string, torch.Tensor][] = model
      .namedParameters()
      .filter(([name]) => !isAdapterTensor(name))
      .map(([name, p]) => {
        const unprefixed = prefix && name.startsWith(prefix) ? name.slice(prefix.length) : name;
        const stored = renamed(unprefixed, renames);
        const value = merged.get(name) ?? p.detach();
        return [stored, options.dtype && options.dtype !== value.dtype ? value.to(options.dtype) : value];
      });
    saveCheckpoint(dir, entries, { maxShardBytes: options.maxShardBytes });
    return options.dtype ?? entries[0]?.[1].dtype ?? "float32";
  });
}

/** Saves a model the way it was trained: its adapter (PEFT's layout) when it has one, else the whole model (Hugging Face's). */
export function savePretrained(model: CausalLM, dir: string, options: { baseModelNameOrPath?: string } = {}): void {
  if (loraOf(model)) saveAdapter(model, dir, options);
  else saveModel(model, dir);
}

/**
 * Merges an adapter into its base model (W + scaling · B A in every wrapped layer,
 * modules_to_save's trained weights) and writes the plain Hugging Face checkpoint to `outDir`
 * (PEFT's merge_and_unload then save_pretrained). Returns the merged layer count.
 */
export function mergeAdapterDirectory(
  adapterDir: string,
  outDir: string,
  options: { dtype?: torch.DType; force?: boolean } = {},
): { layers: number; baseDir: string } {
  if (!isAdapterDirectory(adapterDir))
    throw new Error(`${adapterDir}: not an adapter directory (no ${ADAPTER_CONFIG})`);
  const { baseDir } = readAdapterConfig(adapterDir);
  checkMergeOutput(outDir, adapterDir, baseDir, options.force ?? false);
  const model = loadAdapterModel(adapterDir);
  try {
    const lora = loraOf(model)!;
    const layers = lora.layers.length;
    lora.mergeAndUnload();
    writingTo(outDir, () => saveModel(model, outDir, { dtype: options.dtype }));
    return { layers, baseDir };
  } finally {
    model.dispose();
  }
}

export interface MergeOptions {
  /** Store the merged weights in this dtype; default: the base model's. */
  dtype?: torch.DType;
  /** Write into an --out that already holds a model (never the base's or the adapter's own directory). */
  force?: boolean;
}

/**
 * Folds the LoRA adapter in `adapterDir` into its base model and writes the merged model, a
 * plain Hugging Face checkpoint with the tokenizer, to `outDir` (PEFT's merge_and_unload, then
 * save_pretrained). Neither the base model's directory nor the adapter's is changed; writing
 * over either is an error. Returns the number of merged layers and the base model's directory.
 */
export async function mergeAdapter(
  adapterDir: string,
  outDir: string,
  options: MergeOptions = {},
): Promise<{ layers: number; baseDir: string }> {
  const result = mergeAdapterDirectory(adapterDir, outDir, options);
  const tokenizer = await Tokenizer.fromPretrained(tokenizerDirectory(adapterDir));
  await tokenizer.save(outDir);
  return result;
}

/** A LoRA adapter's own tensors (lora_A / lora_B of a wrapped layer), left out of a merged model. */
const isAdapterTensor = (name: string) => /\.lora_[AB]\./.test(name);

/** With LoRA adapters: each wrapped layer's weight with scaling · B A added (as mergeAndUnload), by parameter name; the model is left as it is. */
function mergedWeights(model: Module): Map<string, torch.Tensor> {
  const lora = loraOf(model);
  const out = new Map<string, torch.Tensor>();
  if (!lora) return out;
  const names = new Map(model.namedParameters().map(([n, p]) => [p, n]));
  for (const l of lora.layers) {
    const w = l.layer.weight;
    const delta = l.b.weight.matmul(l.a.weight).mul(lora.scaling); // [out, in]
    const oriented = l.layer instanceof Conv1D ? delta.t() : delta; // as W is stored
    out.set(
      names.get(w)!,
      w
        .detach()
        .to({ dtype: "float32" })
        .add(oriented.detach().to({ device: w.device }))
        .to({ dtype: w.dtype }),
    );
  }
  return out;
}
