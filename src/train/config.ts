// The training configuration: a reference YAML (alignment-handbook / TRL / Uni-DPO keys, as
// they are), `--set key=value` overrides, defaults from transformers' TrainingArguments and
// TRL's DPOConfig. Unknown keys are warned about by name, wrong types are errors naming the
// key, and settings for hardware this machine lacks are accepted with a warning.
import { readFileSync, existsSync } from "node:fs";
import { dirname, isAbsolute, resolve } from "node:path";
import { parse as parseYaml } from "yaml";
import { objectiveFromConfig, OBJECTIVE_CONFIG_KEYS, type ResolvedPreferenceOptions } from "../objectives/index.js";
import type { ScheduleType } from "../torch/index.js";

export interface TrainConfig {
  modelNameOrPath: string;
  refModel: string | null;
  outputDir: string;
  datasetMixer: Record<string, number>;
  evalFile: string | null;
  testSplitSize: number;
  chatTemplate: string | null;
  maxLength: number;
  maxPromptLength: number;
  truncationMode: "keep_end" | "keep_start";
  learningRate: number;
  lrSchedulerType: ScheduleType;
  warmupRatio: number;
  warmupSteps: number;
  weightDecay: number;
  adamBeta1: number;
  adamBeta2: number;
  adamEpsilon: number;
  numTrainEpochs: number;
  maxSteps: number;
  perDeviceTrainBatchSize: number;
  perDeviceEvalBatchSize: number;
  gradientAccumulationSteps: number;
  maxGradNorm: number;
  seed: number;
  loggingSteps: number;
  evalSteps: number | null;
  saveSteps: number | null;
  saveTotalLimit: number | null;
  /** true: from the latest checkpoint in output_dir; a path: from it; false: never; null: automatically when output_dir has one. */
  resumeFromCheckpoint: string | boolean | null;
  /** Start afresh even when output_dir holds checkpoints (deleting them). */
  overwriteOutputDir: boolean;
  /** Use only the first N records of each split (the reference's max_samples). */
  maxSamples: number | null;
  /** "cpu", "cuda" or "cuda:N"; "auto" (default) takes CUDA when LibTorch has it, as the HF trainer does. */
  device: string;
  precomputeRefLogProbs: boolean;
  dpoLengthNorm: boolean;
  objective: ResolvedPreferenceOptions;
  /** Where the YAML came from (relative paths in it resolve against its directory). */
  source: string;
}

type Kind = "string" | "number" | "integer" | "boolean" | "mixer" | "stringOrBool";

/** Every key the trainer reads, its type, and its default (undefined = required). */
const KEYS: Record<string, { kind: Kind; default?: unknown }> = {
  model_name_or_path: { kind: "string" },
  ref_model: { kind: "string", default: null },
  output_dir: { kind: "string" },
  dataset_mixer: { kind: "mixer" },
  eval_file: { kind: "string", default: null },
  test_split_size: { kind: "number", default: 0 },
  chat_template: { kind: "string", default: null },
  max_length: { kind: "integer", default: 512 },
  max_prompt_length: { kind: "integer", default: 128 },
  truncation_mode: { kind: "string", default: "keep_end" },
  learning_rate: { kind: "number", default: 5e-7 },
  lr_scheduler_type: { kind: "string", default: "linear" },
  warmup_ratio: { kind: "number", default: 0 },
  warmup_steps: { kind: "integer", default: 0 },
  weight_decay: { kind: "number", default: 0 },
  adam_beta1: { kind: "number", default: 0.9 },
  adam_beta2: { kind: "number", default: 0.999 },
  adam_epsilon: { kind: "number", default: 1e-8 },
  num_train_epochs: { kind: "number", default: 3 },
  max_steps: { kind: "integer", default: -1 },
  per_device_train_batch_size: { kind: "integer", default: 8 },
  per_device_eval_batch_size: { kind: "integer", default: 8 },
  gradient_accumulation_steps: { kind: "integer", default: 1 },
  max_grad_norm: { kind: "number", default: 1 },
  seed: { kind: "integer", default: 42 },
  logging_steps: { kind: "integer", default: 10 },
  eval_steps: { kind: "integer", default: null },
  save_steps: { kind: "integer", default: 500 },
  save_total_limit: { kind: "integer", default: null },
  resume_from_checkpoint: { kind: "stringOrBool", default: null },
  precompute_ref_log_probs: { kind: "boolean", default: false },
  overwrite_output_dir: { kind: "boolean", default: false },
  device: { kind: "string", default: "auto" },
  max_samples: { kind: "integer", default: null },
  dpo_length_norm: { kind: "boolean", default: true },
  eval_strategy: { kind: "string", default: null },
  evaluation_strategy: { kind: "string", default: null },
  save_strategy: { kind: "string", default: null },
};

/** Keys for hardware or services this machine does not have: accepted, with a warning. */
const HARDWARE_KEYS = new Set([
  "bf16", "fp16", "tf32", "bf16_full_eval", "fp16_full_eval", "use_flash_attention_2", "attn_implementation",
  "deepspeed", "torch_compile", "gradient_checkpointing", "gradient_checkpointing_kwargs", "ddp_timeout",
  "torch_dtype", "load_in_4bit", "load_in_8bit", "fsdp", "fsdp_config", "local_rank", "dataloader_num_workers",
]);
/** Keys that only matter to tools this project replaces (hub, trackers): silently accepted. */
const IGNORED_KEYS = new Set([
  "hub_model_id", "push_to_hub", "hub_strategy", "hub_private_repo", "report_to", "run_name", "logging_first_step",
  "do_eval", "do_train", "use_ref_model", "remove_unused_columns", "preprocessing_num_workers", "dataset_splits",
  "log_level", "logging_strategy", "save_only_model", "optim", "model_revision", "trust_remote_code", "use_peft",
  "dataset_configs", "auto_insert_empty_system_msg", "truncation_side", "padding_side", "wandb_project", "output_hub",
  "is_llama3", "generate_during_eval", "disable_dropout", "label_pad_token_id", "padding_value",
]);

export class ConfigError extends Error {
  constructor(message: string) { super(message); this.name = "ConfigError"; }
}

function typed(key: string, kind: Kind, v: unknown, where: string): unknown {
  // Reference YAMLs are read by Python's HfArgumentParser, where `None` means unset.
  if (v === null || v === undefined || v === "None") return null;
  const bad = (expected: string) => new ConfigError(`${where}: key '${key}' must be ${expected}, got ${JSON.stringify(v)}`);
  switch (kind) {
    case "string": if (typeof v !== "string") throw bad("a string"); return v;
    case "boolean": if (typeof v !== "boolean") throw bad("true or false"); return v;
    case "number": {
      const n = typeof v === "string" && v.trim() !== "" ? Number(v) : v;
      if (typeof n !== "number" || !Number.isFinite(n)) throw bad("a number");
      return n;
    }
    case "integer": {
      const n = typeof v === "string" && v.trim() !== "" ? Number(v) : v;
      if (typeof n !== "number" || !Number.isInteger(n)) throw bad("an integer");
      return n;
    }
    case "stringOrBool": if (typeof v !== "string" && typeof v !== "boolean") throw bad("a path or true/false"); return v;
    case "mixer": {
      if (typeof v === "string") return { [v]: 1 };
      if (Array.isArray(v) && v.every((x) => typeof x === "string")) return Object.fromEntries(v.map((p) => [p, 1]));
      if (typeof v !== "object" || Array.isArray(v)) throw bad("a mapping {path: fraction}");
      for (const [p, f] of Object.entries(v as Record<string, unknown>)) {
        if (typeof f !== "number" || !(f > 0 && f <= 1)) throw new ConfigError(`${where}: dataset_mixer: fraction for '${p}' must be a number in (0, 1], got ${JSON.stringify(f)}`);
      }
      return v;
    }
  }
}

/** Parses `key=value` (the value read as YAML, so numbers and booleans come out typed). */
export function parseOverride(text: string): [string, unknown] {
  const eq = text.indexOf("=");
  if (eq <= 0) throw new ConfigError(`--set expects key=value, got '${text}'`);
  return [text.slice(0, eq).trim(), parseYaml(text.slice(eq + 1))];
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
    let parsed: unknown;
    try { parsed = parseYaml(readFileSync(source, "utf8")); } catch (e) { throw new ConfigError(`${source}: not valid YAML (${(e as Error).message})`); }
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new ConfigError(`${source}: expected a mapping of keys to values`);
    raw = parsed as Record<string, unknown>;
    baseDir = dirname(resolve(source));
  } else {
    raw = { ...source };
  }
  for (const [k, v] of overrides) raw[k] = v;

  const warnings: string[] = [];
  const values: Record<string, unknown> = {};
  const objectiveKeys = new Set(OBJECTIVE_CONFIG_KEYS);
  for (const [key, v] of Object.entries(raw)) {
    if (KEYS[key]) values[key] = typed(key, KEYS[key].kind, v, where);
    else if (HARDWARE_KEYS.has(key)) { if (v !== false && v !== null) warnings.push(`${where}: key '${key}' is for hardware or tooling this run does not use; ignored`); }
    else if (!IGNORED_KEYS.has(key) && !objectiveKeys.has(key)) warnings.push(`${where}: unknown key '${key}' ignored`);
  }
  for (const [key, spec] of Object.entries(KEYS)) {
    if (values[key] === undefined || values[key] === null) {
      if (spec.default === undefined) throw new ConfigError(`${where}: missing required key '${key}'`);
      values[key] = spec.default;
    }
  }
  const path = (p: string) => (isAbsolute(p) ? p : resolve(baseDir, p));
  const mode = values.truncation_mode as string;
  if (mode !== "keep_end" && mode !== "keep_start") throw new ConfigError(`${where}: key 'truncation_mode' must be keep_end or keep_start, got '${mode}'`);
  const schedule = values.lr_scheduler_type as string;
  if (!["constant", "constant_with_warmup", "linear", "cosine"].includes(schedule)) {
    throw new ConfigError(`${where}: key 'lr_scheduler_type' must be constant, constant_with_warmup, linear or cosine, got '${schedule}'`);
  }
  for (const key of ["per_device_train_batch_size", "per_device_eval_batch_size", "gradient_accumulation_steps", "max_length", "logging_steps"]) {
    if ((values[key] as number) < 1) throw new ConfigError(`${where}: key '${key}' must be at least 1, got ${values[key]}`);
  }
  if ((values.max_prompt_length as number) >= (values.max_length as number)) {
    throw new ConfigError(`${where}: key 'max_prompt_length' (${values.max_prompt_length}) must be below max_length (${values.max_length})`);
  }
  const strategy = (values.eval_strategy ?? values.evaluation_strategy) as string | null;
  let objective: ResolvedPreferenceOptions;
  try { objective = objectiveFromConfig(raw); } catch (e) { throw new ConfigError(`${where}: ${(e as Error).message}`); }
  const resume = values.resume_from_checkpoint as string | boolean | null;
  return {
    warnings,
    config: {
      modelNameOrPath: path(values.model_name_or_path as string),
      refModel: values.ref_model ? path(values.ref_model as string) : null,
      outputDir: path(values.output_dir as string),
      datasetMixer: Object.fromEntries(Object.entries(values.dataset_mixer as Record<string, number>).map(([p, f]) => [path(p), f])),
      evalFile: values.eval_file ? path(values.eval_file as string) : null,
      testSplitSize: values.test_split_size as number,
      chatTemplate: values.chat_template as string | null,
      maxLength: values.max_length as number,
      maxPromptLength: values.max_prompt_length as number,
      truncationMode: mode,
      learningRate: values.learning_rate as number,
      lrSchedulerType: schedule as ScheduleType,
      warmupRatio: values.warmup_ratio as number,
      warmupSteps: values.warmup_steps as number,
      weightDecay: values.weight_decay as number,
      adamBeta1: values.adam_beta1 as number,
      adamBeta2: values.adam_beta2 as number,
      adamEpsilon: values.adam_epsilon as number,
      numTrainEpochs: values.num_train_epochs as number,
      maxSteps: values.max_steps as number,
      perDeviceTrainBatchSize: values.per_device_train_batch_size as number,
      perDeviceEvalBatchSize: values.per_device_eval_batch_size as number,
      gradientAccumulationSteps: values.gradient_accumulation_steps as number,
      maxGradNorm: values.max_grad_norm as number,
      seed: values.seed as number,
      loggingSteps: values.logging_steps as number,
      evalSteps: strategy === "no" ? null : (values.eval_steps as number | null),
      saveSteps: values.save_strategy === "no" ? null : (values.save_steps as number | null),
      saveTotalLimit: values.save_total_limit as number | null,
      resumeFromCheckpoint: typeof resume === "string" ? path(resume) : resume,
      precomputeRefLogProbs: values.precompute_ref_log_probs as boolean,
      overwriteOutputDir: values.overwrite_output_dir as boolean,
      maxSamples: values.max_samples as number | null,
      device: values.device as string,
      dpoLengthNorm: values.dpo_length_norm as boolean,
      objective,
      source: where,
    },
  };
}
