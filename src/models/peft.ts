// LoRA adapters on disk in PEFT's layout, so an adapter trained here loads in PEFT unchanged and
// one trained with PEFT loads here: adapter_config.json (peft_type LORA, r, lora_alpha,
// target_modules, base_model_name_or_path, ...) and adapter_model.safetensors, whose tensor
// names are the model's with PEFT's "base_model.model." in front and no adapter name
// ("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight").
import { existsSync, mkdirSync } from "node:fs";
import { isAbsolute, join, resolve } from "node:path";
import * as torch from "../torch/index.js";
import { attachLora, checkLoraSettings, loraOf, PEFT_NAMES, type LoraModel, type LoraSettings, type SettingNames } from "../nn/lora.js";
import type { Module } from "../nn/module.js";
import { readJsonObjectFile } from "../util/utf8.js";
import { writeJsonAtomic, writingTo } from "../util/files.js";
import { Tokenizer } from "../text/index.js";
import type { CausalLM } from "./causal-lm.js";
import { isModelDirectory, loadModel, saveModel, type LoadOptions } from "./auto.js";
import { loadSafetensors, saveSafetensors } from "./safetensors.js";

export const ADAPTER_CONFIG = "adapter_config.json";
export const ADAPTER_WEIGHTS = "adapter_model.safetensors";
/** What PEFT's PeftModelForCausalLM puts before the model's own parameter names. */
const PEFT_PREFIX = "base_model.model.";
/** Settings named as errors about adapter_config.json name them ("field r"). */
const FIELDS = Object.fromEntries(Object.entries(PEFT_NAMES).map(([k, v]) => [k, `field ${v}`])) as SettingNames;

/** PEFT's default target_modules per model_type, for a LoRA config that names none. */
const DEFAULT_TARGETS: Readonly<Record<string, readonly string[]>> = {
  gpt2: ["c_attn"], llama: ["q_proj", "v_proj"], mistral: ["q_proj", "v_proj"], qwen2: ["q_proj", "v_proj"],
  qwen3: ["q_proj", "v_proj"], phi3: ["qkv_proj"],
};

/** PEFT's default target_modules for a model's config.json model_type; an unknown type is an error asking for the list. */
export function defaultTargetModules(model: CausalLM, key = "target_modules"): readonly string[] {
  const type = String(model.config.model_type ?? model.architecture);
  const targets = DEFAULT_TARGETS[type] ?? DEFAULT_TARGETS[model.architecture];
  if (!targets) throw new Error(`${key}: no default for model_type '${type}'; name the layers (or all-linear)`);
  return targets;
}

/** A directory holding a PEFT adapter (adapter_config.json) rather than a whole model. */
export function isAdapterDirectory(dir: string): boolean {
  return existsSync(join(dir, ADAPTER_CONFIG));
}

export interface AdapterConfig {
  settings: LoraSettings;
  /** base_model_name_or_path as written. */
  baseModelNameOrPath: string;
  /** The base model's directory: base_model_name_or_path as given when it exists, else relative to the adapter's directory. */
  baseDir: string;
}

/** Reads and checks adapter_config.json; errors name the file and the field. */
export function readAdapterConfig(dir: string): AdapterConfig {
  const file = join(dir, ADAPTER_CONFIG);
  const raw = readJsonObjectFile(file);
  const field = (key: string, what: string) => new Error(`${file}: field ${key} ${what}, got ${JSON.stringify(raw[key])}`);
  if (raw.peft_type !== "LORA") throw field("peft_type", "must be \"LORA\" (the only adapter type supported)");
  if (raw.task_type !== undefined && raw.task_type !== null && raw.task_type !== "CAUSAL_LM") throw field("task_type", "must be \"CAUSAL_LM\"");
  // PEFT features that change the computation and are not implemented here: refused, never ignored.
  if (raw.use_dora === true) throw field("use_dora", "is not supported (LoRA only)");
  if ((raw.bias ?? "none") !== "none") throw field("bias", "is not supported (only \"none\": no trained biases)");
  for (const key of ["rank_pattern", "alpha_pattern"]) {
    const v = raw[key];
    if (v !== undefined && v !== null && (typeof v !== "object" || Object.keys(v).length > 0)) throw field(key, "is not supported (one r and lora_alpha for every layer)");
  }
  for (const key of ["layers_to_transform", "layers_pattern"]) {
    if (raw[key] !== undefined && raw[key] !== null) throw field(key, "is not supported (target_modules alone picks the layers)");
  }
  const base = raw.base_model_name_or_path;
  if (typeof base !== "string" || base === "") throw field("base_model_name_or_path", "must name the base model's directory");
  const targets = raw.target_modules;
  const settings: LoraSettings = {
    r: raw.r as number,
    alpha: (raw.lora_alpha ?? 8) as number,
    dropout: (raw.lora_dropout ?? 0) as number,
    targetModules: (targets ?? []) as string[] | string,
    modulesToSave: (raw.modules_to_save ?? []) as string[],
    useRslora: (raw.use_rslora ?? false) as boolean,
  };
  checkLoraSettings(settings, file, FIELDS);
  const candidates = isAbsolute(base) ? [base] : [resolve(base), resolve(dir, base)];
  const baseDir = candidates.find(isModelDirectory);
  if (!baseDir) {
    throw new Error(`${file}: field base_model_name_or_path '${base}' is not a model directory here (no config.json in ${[...new Set(candidates)].join(" or ")}); ` +
      "models are local directories: point it at the base model the adapter was trained on");
  }
  return { settings, baseModelNameOrPath: base, baseDir };
}

/** Where each loaded adapter model's base came from, so saving it again writes the same base. */
const bases = new WeakMap<Module, string>();

/**
 * Loads an adapter directory as PEFT's AutoPeftModelForCausalLM does: the base model named by
 * base_model_name_or_path, with the adapter's layers wrapped and its weights loaded (in eval
 * mode, float32 adapters). A base that does not match (layers the adapter names that it lacks,
 * other shapes, a missing or extra tensor) is an error naming the file and the tensor.
 */
export function loadAdapterModel(dir: string, options: LoadOptions = {}): CausalLM {
  const config = readAdapterConfig(dir);
  if (isAdapterDirectory(config.baseDir)) throw new Error(`${join(dir, ADAPTER_CONFIG)}: base_model_name_or_path '${config.baseModelNameOrPath}' is itself an adapter; name a full model`);
  const model = loadModel(config.baseDir, options);
  try {
    const lora = attachLora(model, config.settings, `${join(dir, ADAPTER_CONFIG)} (base ${config.baseDir})`, FIELDS);
    loadAdapterWeights(lora, join(dir, ADAPTER_WEIGHTS), config.baseDir);
    bases.set(model, config.baseModelNameOrPath);
    return model.eval() as CausalLM;
  } catch (e) {
    loraOf(model)?.detach();
    model.dispose();
    throw e;
  }
}

/** Copies adapter_model.safetensors into the adapters; every tensor must have its parameter, and every parameter its tensor. */
export function loadAdapterWeights(lora: LoraModel, file: string, baseDir = "the base model"): void {
  if (!existsSync(file)) throw new Error(`${file}: not found (an adapter directory needs its weights beside ${ADAPTER_CONFIG})`);
  const tensors = loadSafetensors(file, { dtype: "float32" });
  try {
    const own = new Map(lora.namedParameters());
    const problems: string[] = [];
    const loaded = new Set<string>();
    for (const [stored, t] of tensors) {
      const name = stored.startsWith(PEFT_PREFIX) ? stored.slice(PEFT_PREFIX.length) : null;
      const target = name === null ? undefined : own.get(name);
      if (name === null) problems.push(`tensor ${stored} does not start with '${PEFT_PREFIX}' (PEFT's names for a causal LM)`);
      else if (!target) problems.push(`tensor ${stored} has no adapter parameter in the base model (${baseDir}): it names a layer the base model lacks or one target_modules does not cover`);
      else if (target.shape.join() !== t.shape.join()) problems.push(`tensor ${stored} has shape [${t.shape.join(", ")}], the base model's layer needs [${target.shape.join(", ")}] (is ${baseDir} the model this adapter was trained on?)`);
      else loaded.add(name);
    }
    const missing = [...own.keys()].filter((n) => !loaded.has(n) && !problems.some((p) => p.includes(`${PEFT_PREFIX}${n} `)));
    if (missing.length) problems.push(`missing tensors: ${missing.map((n) => PEFT_PREFIX + n).join(", ")}`);
    if (problems.length) throw new Error(`${file}: the adapter does not match its base model:\n  ${problems.join("\n  ")}`);
    torch.noGrad(() => {
      for (const [stored, t] of tensors) {
        const p = own.get(stored.slice(PEFT_PREFIX.length))!;
        p.copy_(t.to({ device: p.device }));
      }
    });
  } finally {
    for (const t of tensors.values()) t.dispose();
  }
}

/**
 * Writes `model`'s adapter in PEFT's layout (adapter_config.json and adapter_model.safetensors,
 * adapter tensors only, as they are: float32). `baseModelNameOrPath` defaults to where the
 * model's adapter was loaded from.
 */
export function saveAdapter(model: Module, dir: string, options: { baseModelNameOrPath?: string } = {}): void {
  const lora = loraOf(model);
  if (!lora) throw new Error(`saveAdapter: the model has no LoRA adapters`);
  const base = options.baseModelNameOrPath ?? bases.get(model);
  if (!base) throw new Error(`saveAdapter(${dir}): give baseModelNameOrPath (the model was not loaded from an adapter directory)`);
  const s = lora.settings;
  writingTo(dir, () => {
    mkdirSync(dir, { recursive: true });
    torch.tidy(() => saveSafetensors(join(dir, ADAPTER_WEIGHTS), lora.namedParameters().map(([n, p]) => [PEFT_PREFIX + n, p.detach()])));
    // PEFT's LoraConfig fields (peft 0.13); the ones this project does not use at their defaults.
    writeJsonAtomic(join(dir, ADAPTER_CONFIG), {
      alpha_pattern: {}, auto_mapping: null, base_model_name_or_path: base, bias: "none",
      fan_in_fan_out: lora.layers.some((l) => l.layer.constructor.name === "Conv1D"), inference_mode: true, init_lora_weights: true,
      layer_replication: null, layers_pattern: null, layers_to_transform: null, loftq_config: {}, lora_alpha: s.alpha, lora_dropout: s.dropout,
      megatron_config: null, megatron_core: "megatron.core", modules_to_save: s.modulesToSave.length ? [...s.modulesToSave] : null,
      peft_type: "LORA", r: s.r, rank_pattern: {}, revision: null,
      target_modules: typeof s.targetModules === "string" ? s.targetModules : [...s.targetModules],
      task_type: "CAUSAL_LM", use_dora: false, use_rslora: s.useRslora,
    });
  });
}

/** Saves a model the way it was trained: its adapter (PEFT's layout) when it has one, else the whole model (Hugging Face's). */
export function savePretrained(model: CausalLM, dir: string, options: { baseModelNameOrPath?: string } = {}): void {
  if (loraOf(model)) saveAdapter(model, dir, options);
  else saveModel(model, dir);
}

/** The directory a model directory's tokenizer is read from: its own, else (an adapter without one) its base model's. */
export function tokenizerDirectory(dir: string): string {
  if (!isAdapterDirectory(dir) || existsSync(join(dir, "tokenizer.json"))) return dir;
  return readAdapterConfig(dir).baseDir;
}

export interface MergeOptions {
  /** Store the merged weights in this dtype; default: the base model's. */
  dtype?: torch.DType;
}

/**
 * Folds the LoRA adapter in `adapterDir` into its base model and writes the merged model, a
 * plain Hugging Face checkpoint with the tokenizer, to `outDir` (PEFT's merge_and_unload, then
 * save_pretrained). Neither the base model's directory nor the adapter's is changed; writing
 * over either is an error. Returns the number of merged layers and the base model's directory.
 */
export async function mergeAdapter(adapterDir: string, outDir: string, options: MergeOptions = {}): Promise<{ layers: number; baseDir: string }> {
  const result = mergeAdapterDirectory(adapterDir, outDir, options);
  const tokenizer = await Tokenizer.fromPretrained(tokenizerDirectory(adapterDir));
  await tokenizer.save(outDir);
  return result;
}

/**
 * Merges an adapter into its base model (W + scaling · B A in every wrapped layer,
 * modules_to_save's trained weights) and writes the plain Hugging Face checkpoint to `outDir`
 * (PEFT's merge_and_unload then save_pretrained). Returns the merged layer count.
 */
export function mergeAdapterDirectory(adapterDir: string, outDir: string, options: { dtype?: torch.DType } = {}): { layers: number; baseDir: string } {
  if (!isAdapterDirectory(adapterDir)) throw new Error(`${adapterDir}: not an adapter directory (no ${ADAPTER_CONFIG})`);
  const { baseDir } = readAdapterConfig(adapterDir);
  if (resolve(outDir) === resolve(baseDir) || resolve(outDir) === resolve(adapterDir)) {
    throw new Error(`--out ${outDir} is the ${resolve(outDir) === resolve(baseDir) ? "base model's" : "adapter's"} directory; merging would overwrite it`);
  }
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

