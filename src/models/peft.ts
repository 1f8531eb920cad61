// LoRA adapters on disk in PEFT's layout, so an adapter trained here loads in PEFT unchanged and
// one trained with PEFT loads here: adapter_config.json (peft_type LORA, r, lora_alpha,
// target_modules, base_model_name_or_path, ...) and adapter_model.safetensors, whose tensor
// names are the model's with PEFT's "base_model.model." in front and no adapter name
// ("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"). This module is the
// adapter format only; loading a base model under an adapter and saving either kind is auto.ts's.
import { existsSync, mkdirSync, readdirSync, statSync } from "node:fs";
import { isAbsolute, join, resolve } from "node:path";
import * as torch from "../torch/index.js";
import {
  attachLora,
  checkLoraSettings,
  loraOf,
  PEFT_NAMES,
  type LoraModel,
  type LoraSettings,
  type SettingNames,
} from "../nn/lora.js";
import type { Module } from "../nn/module.js";
import { readJsonObjectFile } from "../util/utf8.js";
import { writeJsonAtomic, writingTo } from "../util/files.js";
import { realPath } from "../util/paths.js";
import { isModelDirectory } from "./config.js";
import { loadSafetensors, saveSafetensors } from "./safetensors.js";

export const ADAPTER_CONFIG = "adapter_config.json";
export const ADAPTER_WEIGHTS = "adapter_model.safetensors";
/** What PEFT's PeftModelForCausalLM puts before the model's own parameter names. */
const PEFT_PREFIX = "base_model.model.";
/** Settings named as errors about adapter_config.json name them ("field r"). */
const FIELDS = Object.fromEntries(Object.entries(PEFT_NAMES).map(([k, v]) => [k, `field ${v}`])) as SettingNames;

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
  /** PEFT's task_type: a causal LM's adapter, or a sequence classifier's (a reward model's, its score head in modules_to_save). */
  taskType: AdapterTask;
}

export type AdapterTask = "CAUSAL_LM" | "SEQ_CLS";

/** Reads and checks adapter_config.json; errors name the file and the field. */
export function readAdapterConfig(dir: string): AdapterConfig {
  const file = join(dir, ADAPTER_CONFIG);
  const raw = readJsonObjectFile(file);
  const field = (key: string, what: string) =>
    new Error(`${file}: field ${key} ${what}, got ${JSON.stringify(raw[key])}`);
  if (raw.peft_type !== "LORA") throw field("peft_type", 'must be "LORA" (the only adapter type supported)');
  const taskType = (raw.task_type ?? "CAUSAL_LM") as AdapterTask;
  if (taskType !== "CAUSAL_LM" && taskType !== "SEQ_CLS") throw field("task_type", 'must be "CAUSAL_LM" or "SEQ_CLS"');
  // PEFT features that change the computation and are not implemented here: refused, never ignored.
  if (raw.use_dora === true) throw field("use_dora", "is not supported (LoRA only)");
  if ((raw.bias ?? "none") !== "none") throw field("bias", 'is not supported (only "none": no trained biases)');
  for (const key of ["rank_pattern", "alpha_pattern"]) {
    const v = raw[key];
    if (v !== undefined && v !== null && (typeof v !== "object" || Object.keys(v).length > 0))
      throw field(key, "is not supported (one r and lora_alpha for every layer)");
  }
  for (const key of ["layers_to_transform", "layers_pattern"]) {
    if (raw[key] !== undefined && raw[key] !== null)
      throw field(key, "is not supported (target_modules alone picks the layers)");
  }
  const base = raw.base_model_name_or_path;
  if (typeof base !== "string" || base === "")
    throw field("base_model_name_or_path", "must name the base model's directory");
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
    throw new Error(
      `${file}: field base_model_name_or_path '${base}' is not a model directory here (no config.json in ${[...new Set(candidates)].join(" or ")}); ` +
        "models are local directories: point it at the base model the adapter was trained on",
    );
  }
  return { settings, baseModelNameOrPath: base, baseDir, taskType };
}

/** Where each loaded adapter model's base came from, so saving it again writes the same base. */
const bases = new WeakMap<Module, string>();

/**
 * Wraps `model`'s layers as the adapter in `dir` says (`config`, read by readAdapterConfig) and
 * loads its weights; saving the model later writes the same base_model_name_or_path. A model
 * that does not match is an error naming the file and the tensor, with the model left unwrapped.
 */
export function applyAdapter(model: Module, dir: string, config: AdapterConfig): void {
  try {
    const lora = attachLora(model, config.settings, `${join(dir, ADAPTER_CONFIG)} (base ${config.baseDir})`, FIELDS);
    loadAdapterWeights(lora, join(dir, ADAPTER_WEIGHTS), config.baseDir);
    bases.set(model, config.baseModelNameOrPath);
  } catch (e) {
    loraOf(model)?.detach();
    throw e;
  }
}

/** Copies adapter_model.safetensors into the adapters; every tensor must have its parameter, and every parameter its tensor. */
export function loadAdapterWeights(lora: LoraModel, file: string, baseDir = "the base model"): void {
  if (!existsSync(file))
    throw new Error(`${file}: not found (an adapter directory needs its weights beside ${ADAPTER_CONFIG})`);
  const tensors = loadSafetensors(file, { dtype: "float32" });
  try {
    const own = new Map(lora.namedParameters());
    const problems: string[] = [];
    const loaded = new Set<string>();
    for (const [stored, t] of tensors) {
      const name = stored.startsWith(PEFT_PREFIX) ? stored.slice(PEFT_PREFIX.length) : null;
      const target = name === null ? undefined : own.get(name);
      if (name === null)
        problems.push(`tensor ${stored} does not start with '${PEFT_PREFIX}' (PEFT's names for a causal LM)`);
      else if (!target)
        problems.push(
          `tensor ${stored} has no adapter parameter in the base model (${baseDir}): it names a layer the base model lacks or one target_modules does not cover`,
        );
      else if (target.shape.join() !== t.shape.join())
        problems.push(
          `tensor ${stored} has shape [${t.shape.join(", ")}], the base model's layer needs [${target.shape.join(", ")}] (is ${baseDir} the model this adapter was trained on?)`,
        );
      else loaded.add(name);
    }
    const missing = [...own.keys()].filter(
      (n) => !loaded.has(n) && !problems.some((p) => p.includes(`${PEFT_PREFIX}${n} `)),
    );
    if (missing.length) problems.push(`missing tensors: ${missing.map((n) => PEFT_PREFIX + n).join(", ")}`);
    if (problems.length)
      throw new Error(`${file}: the adapter does not match its base model:\n  ${problems.join("\n  ")}`);
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
export function saveAdapter(
  model: Module,
  dir: string,
  options: { baseModelNameOrPath?: string; taskType?: AdapterTask } = {},
): void {
  const lora = loraOf(model);
  if (!lora) throw new Error(`saveAdapter: the model has no LoRA adapters`);
  const base = options.baseModelNameOrPath ?? bases.get(model);
  if (!base)
    throw new Error(
      `saveAdapter(${dir}): give baseModelNameOrPath (the model was not loaded from an adapter directory)`,
    );
  const s = lora.settings;
  writingTo(dir, () => {
    mkdirSync(dir, { recursive: true });
    torch.tidy(() =>
      saveSafetensors(
        join(dir, ADAPTER_WEIGHTS),
        lora.namedParameters().map(([n, p]) => [PEFT_PREFIX + n, p.detach()]),
      ),
    );
    // PEFT's LoraConfig fields (peft 0.13); the ones this project does not use at their defaults.
    writeJsonAtomic(join(dir, ADAPTER_CONFIG), {
      alpha_pattern: {},
      auto_mapping: null,
      base_model_name_or_path: base,
      bias: "none",
      fan_in_fan_out: lora.layers.some((l) => l.layer.constructor.name === "Conv1D"),
      inference_mode: true,
      init_lora_weights: true,
      layer_replication: null,
      layers_pattern: null,
      layers_to_transform: null,
      loftq_config: {},
      lora_alpha: s.alpha,
      lora_dropout: s.dropout,
      megatron_config: null,
      megatron_core: "megatron.core",
      modules_to_save: s.modulesToSave.length ? [...s.modulesToSave] : null,
      peft_type: "LORA",
      r: s.r,
      rank_pattern: {},
      revision: null,
      target_modules: typeof s.targetModules === "string" ? s.targetModules : [...s.targetModules],
      task_type: options.taskType ?? "CAUSAL_LM",
      use_dora: false,
      use_rslora: s.useRslora,
    });
  });
}

/** The directory a model directory's tokenizer is read from: its own, else (an adapter without one) its base model's. */
export function tokenizerDirectory(dir: string): string {
  if (!isAdapterDirectory(dir) || existsSync(join(dir, "tokenizer.json"))) return dir;
  return readAdapterConfig(dir).baseDir;
}

/** The files that make a directory hold a model (a full checkpoint or an adapter). */
function modelFiles(dir: string): string[] {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) return [];
  const isModelFile = (n: string) =>
    n === "config.json" || n === ADAPTER_CONFIG || n.endsWith(".safetensors") || n.endsWith(".safetensors.index.json");
  return readdirSync(dir).filter(isModelFile);
}

/**
 * Where a merge may write: never the adapter's or the base model's directory (after resolving
 * links), and a directory that already holds a model only with `force`.
 */
export function checkMergeOutput(outDir: string, adapterDir: string, baseDir: string, force: boolean): void {
  for (const [name, dir] of [
    ["the adapter's", adapterDir],
    ["the base model's", baseDir],
  ] as const) {
    if (realPath(outDir) === realPath(dir)) {
      throw new Error(`--out ${outDir} is ${name} directory; merging would overwrite it (--force does not allow this)`);
    }
  }
  const held = modelFiles(outDir);
  if (held.length && !force) {
    const shown = `${held.slice(0, 4).join(", ")}${held.length > 4 ? ", ..." : ""}`;
    throw new Error(
      `--out ${outDir} already holds a model (${shown}); ` +
        "merging would replace it. Choose an empty or new directory, or pass --force to replace it",
    );
  }
}
