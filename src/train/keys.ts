// Every recipe key `omni-dpo train` knows, in one table: its type, default, help, where the
// default comes from, its group in `train --help`, how a change is treated on resume, and, for
// keys not (yet) acted on, that status. The TrainConfig type, the loader's validation and the
// help are all derived from it, so a key is written once. The objective's keys (beta, uni_dpo_*,
// loss_type...) belong to src/objectives and are listed from OBJECTIVE_CONFIG_KEYS.
//
// This module does not load LibTorch (the CLI prints help from it without the engine; the
// schedule and chat-format modules it reads have no engine import).
import { CHAT_RENDERINGS } from "../data/chat-format.js";
import { SCHEDULE_TYPES, scheduleKwargsProblem, type ScheduleType } from "../torch/optim/schedule.js";

export const GROUPS = ["model", "data", "optimisation", "schedule", "logging/saving", "objective"] as const;
export type Group = (typeof GROUPS)[number];

/**
 * Keys read but not acted on. None is ever accepted silently: set to anything but its default
 * (or false/None), a "warn" key (hardware or tooling this run does not use: hub, trackers,
 * kernels, memory savings that compute the same values) is ignored with a warning saying why, and an "error" key (it would change what training does,
 * and this trainer cannot) stops the run with an error naming it.
 */
export type KeyStatus = "warn" | "error";
export const STATUS_TEXT: Record<KeyStatus, string> = {
  warn: "Tooling this run does not use: ignored with a warning when set.",
  error: "Not supported: an error when set (it would change what training does).",
};

/**
 * How a changed value is treated when a run resumes from a checkpoint made with another value:
 * "hard" (data, batching, lengths: the saved data position would mean other examples) is always
 * refused; "soft" (optimisation, schedule, objective) is refused on an automatic resume and
 * accepted, with a warning, when resume_from_checkpoint names the checkpoint.
 */
export type ResumeCheck = "hard" | "soft";

/** Value kinds; "list" and "mapping" values are taken as given (a key that reads one checks it with `check`). */
export type Kind =
  "path" | "string" | "enum" | "number" | "integer" | "boolean" | "steps" | "mixer" | "checkpoint" | "list" | "mapping";

/** A rule beyond the type: returns what is wrong ("must be ...") or undefined. `all` holds every key's value, defaults filled. */
export type Check = (value: never, all: Record<string, unknown>) => string | undefined;

export interface KeySpec {
  kind: Kind;
  /** For "enum": the accepted values. */
  values?: readonly string[];
  /** Absent: the key is required. null: unset (Python's None). A key set to None takes its default. */
  default?: unknown;
  /** The value can end up null though its default is not (save_steps under save_strategy: "no"). */
  nullable?: true;
  group: Group;
  help: string;
  /** Where the default comes from. */
  follows: string;
  resume?: ResumeCheck;
  status?: KeyStatus;
  check?: Check;
}

const TA = "transformers 4.46 TrainingArguments";
const DPO = "TRL DPOConfig";
const HANDBOOK_MODEL = "alignment-handbook ModelArguments";
const HANDBOOK_DATA = "alignment-handbook DataArguments";
const UNI_DPO = "Uni-DPO UniDPOConfig";
const OURS = "omni-dpo";
const LLAMA_FACTORY = "LLaMA-Factory FinetuningArguments";

/** torch_dtype's values: transformers' names for the weights' dtype, and auto (the checkpoint's). */
export const TORCH_DTYPES = ["auto", "bfloat16", "float16", "float32", "float64"] as const;

const atLeast = (min: number) => (v: number) => (v < min ? `must be at least ${min}` : undefined);
const nonNegative = (v: number) => (v < 0 ? "must not be negative" : undefined);

/** logging/eval/save steps: a positive step count, or a fraction of the run's steps in (0, 1) (transformers' ratios). */
const stepsRule = (strategyKeys: string[]) => (v: number, all: Record<string, unknown>) => {
  if (strategyKeys.some((k) => all[k] === "no")) return undefined;
  const off = strategyKeys.length ? `, or set ${strategyKeys[0]}: "no"` : "";
  if (!(v > 0)) return `must be positive (a number of steps, or a fraction of the run in (0, 1))${off}`;
  if (v > 1 && !Number.isInteger(v)) return "must be a whole number of steps when above 1";
  return undefined;
};

const isNameList = (v: unknown) =>
  Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === "string" && x !== "");
const targetModulesRule = (v: unknown) =>
  (typeof v === "string" && v !== "") || isNameList(v) ? undefined : "must be a list of module names or all-linear";
const moduleListRule = (v: unknown) => (isNameList(v) ? undefined : "must be a list of module names");

/** logging/eval/save strategies: transformers' IntervalStrategy. */
export const STRATEGIES = ["no", "steps", "epoch"] as const;

/** The optimizers `optim` names (transformers' OptimizerNames) that this trainer runs exactly. */
export const OPTIMIZERS = ["adamw_torch", "adamw_torch_fused", "sgd"] as const;
const optimRule = (v: string) =>
  (OPTIMIZERS as readonly string[]).includes(v)
    ? undefined
    : v.startsWith("adafactor")
      ? "adafactor is not supported (no implementation here is checked against transformers' Adafactor); use adamw_torch or sgd"
      : `is not supported; supported: ${OPTIMIZERS.join(", ")}`;

const scheduleKwargsRule = (v: unknown, all: Record<string, unknown>) => {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return "must be a mapping of the schedule's options";
  return scheduleKwargsProblem(
    all.lr_scheduler_type as ScheduleType,
    v as Record<string, unknown>,
    all.learning_rate as number,
  );
};

/** report_to's values: trackers this trainer writes, and those it only warns about (config.ts). */
export const REPORTERS = ["tensorboard"] as const;
const reportToRule = (v: unknown) => {
  const names = typeof v === "string" ? [v] : v;
  return Array.isArray(names) && names.every((x) => typeof x === "string")
    ? undefined
    : "must be a tracker's name or a list of them";
};

/** model_init_kwargs that only change how from_pretrained loads (devices, remote code, kernels), not the weights. */
export const MODEL_INIT_TOOLING = [
  "trust_remote_code",
  "attn_implementation",
  "revision",
  "device_map",
  "low_cpu_mem_usage",
  "use_cache",
] as const;
const modelInitKwargsRule = (v: unknown, all: Record<string, unknown>) => {
  if (typeof v !== "object" || v === null || Array.isArray(v))
    return "must be a mapping of from_pretrained's arguments";
  const kwargs = v as Record<string, unknown>;
  const other = Object.keys(kwargs).filter(
    (k) => k !== "torch_dtype" && !(MODEL_INIT_TOOLING as readonly string[]).includes(k),
  );
  if (other.length)
    return `has ${other.join(", ")}, not supported here (torch_dtype is read; ${MODEL_INIT_TOOLING.join(", ")} are ignored)`;
  const dtype = kwargs.torch_dtype;
  if (dtype !== undefined && dtype !== null && !(TORCH_DTYPES as readonly unknown[]).includes(dtype)) {
    return `torch_dtype must be one of ${TORCH_DTYPES.join(", ")}`;
  }
  if (dtype != null && all.torch_dtype != null && all.torch_dtype !== dtype) {
    return `torch_dtype (${String(dtype)}) disagrees with the key torch_dtype (${String(all.torch_dtype)}); give one`;
  }
  return undefined;
};

export const RECIPE_KEYS = {
  // --- model
  model_name_or_path: {
    kind: "path",
    group: "model",
    follows: HANDBOOK_MODEL,
    resume: "soft",
    help: "The Hugging Face model directory to start from (config.json, safetensors weights, tokenizer).",
  },
  ref_model: {
    kind: "path",
    default: null,
    group: "model",
    follows: UNI_DPO,
    resume: "soft",
    help: "The frozen reference model's directory; None: the starting weights (model_name_or_path).",
  },
  device: {
    kind: "string",
    default: "auto",
    group: "model",
    follows: OURS,
    help: "cpu, cuda or cuda:N; auto takes CUDA when LibTorch has it, as the HF trainer does.",
  },
  torch_dtype: {
    kind: "enum",
    values: TORCH_DTYPES,
    default: null,
    group: "model",
    follows: HANDBOOK_MODEL,
    resume: "soft",
    help: "The dtype the policy and reference are loaded, trained and saved in: bfloat16, float16, float32, float64 (exactness checks), or auto (the checkpoint's, from its config.json); None: float32. Without LoRA, bf16 weights are trained directly (AdamW state in bf16), as transformers does.",
  },
  attn_implementation: {
    kind: "string",
    default: null,
    group: "model",
    follows: HANDBOOK_MODEL,
    status: "warn",
    help: "Attention kernel (eager, sdpa, flash_attention_2); attention is LibTorch's scaled_dot_product_attention here, the same function.",
  },
  use_flash_attention_2: {
    kind: "boolean",
    default: false,
    group: "model",
    follows: HANDBOOK_MODEL,
    status: "warn",
    help: "Older spelling of attn_implementation: flash_attention_2.",
  },
  load_in_4bit: {
    kind: "boolean",
    default: false,
    group: "model",
    follows: HANDBOOK_MODEL,
    status: "error",
    help: "Load the model quantised to 4 bits (QLoRA).",
  },
  load_in_8bit: {
    kind: "boolean",
    default: false,
    group: "model",
    follows: HANDBOOK_MODEL,
    status: "error",
    help: "Load the model quantised to 8 bits.",
  },
  freeze_vision_tower: {
    kind: "boolean",
    default: true,
    group: "model",
    follows: LLAMA_FACTORY,
    resume: "hard",
    help: "Vision-language models (Qwen2-VL): keep the vision tower's weights fixed. No effect on a text-only model.",
  },
  freeze_multi_modal_projector: {
    kind: "boolean",
    default: true,
    group: "model",
    follows: LLAMA_FACTORY,
    resume: "hard",
    help:
      "Vision-language models (Qwen2-VL): keep the projector (the patch merger from vision features to text " +
      "embeddings) fixed. No effect on a text-only model.",
  },
  use_peft: {
    kind: "boolean",
    default: false,
    group: "model",
    follows: HANDBOOK_MODEL,
    resume: "hard",
    help: "Train LoRA adapters (float32) on the frozen model instead of the full model; the reference is the same network with its adapters off, and the output is a PEFT adapter (adapter_config.json, adapter_model.safetensors).",
  },
  lora_r: {
    kind: "integer",
    default: 16,
    group: "model",
    follows: HANDBOOK_MODEL,
    resume: "hard",
    check: (v: number) => (v <= 0 ? "must be a positive integer" : undefined),
    help: "With use_peft: the adapters' rank r.",
  },
  lora_alpha: {
    kind: "number",
    default: 32,
    group: "model",
    follows: HANDBOOK_MODEL,
    resume: "hard",
    help: "With use_peft: the adapters' update is scaled by lora_alpha / lora_r (lora_alpha / sqrt(lora_r) with use_rslora).",
  },
  lora_dropout: {
    kind: "number",
    default: 0.05,
    group: "model",
    follows: HANDBOOK_MODEL,
    resume: "soft",
    check: (v: number) => (v < 0 || v >= 1 ? "must lie in [0, 1)" : undefined),
    help: "With use_peft: dropout on the adapters' input in training mode (off here, as TRL's disable_dropout turns every dropout off).",
  },
  lora_target_modules: {
    kind: "list",
    default: null,
    group: "model",
    follows: HANDBOOK_MODEL,
    resume: "hard",
    check: (v: unknown) => targetModulesRule(v),
    help: "With use_peft: the layers that get adapters: a list of module names (q_proj, v_proj, ...; a layer matches its full name or its last part), or all-linear (every linear layer but the output head); None: PEFT's default for the architecture.",
  },
  lora_modules_to_save: {
    kind: "list",
    default: null,
    group: "model",
    follows: HANDBOOK_MODEL,
    resume: "hard",
    check: (v: unknown) => moduleListRule(v),
    help: "With use_peft: modules trained in full beside the adapters (e.g. lm_head) and saved whole in the adapter.",
  },
  use_rslora: {
    kind: "boolean",
    default: false,
    group: "model",
    follows: "TRL ModelConfig",
    resume: "hard",
    help: "With use_peft: rank-stabilised LoRA, scaling by lora_alpha / sqrt(lora_r).",
  },
  model_revision: {
    kind: "string",
    default: "main",
    group: "model",
    follows: HANDBOOK_MODEL,
    status: "warn",
    help: "Hub revision of the model (models are local directories here).",
  },
  trust_remote_code: {
    kind: "boolean",
    default: false,
    group: "model",
    follows: HANDBOOK_MODEL,
    status: "warn",
    help: "Run a hub model's own Python code (architectures come from the registry here).",
  },
  use_ref_model: {
    kind: "boolean",
    default: null,
    group: "model",
    follows: UNI_DPO,
    help: "Whether a reference model is used: as in the reference (UniDPOConfig.__post_init__), decided by the loss whatever the YAML says (no reference for SimPO and ORPO).",
  },
  disable_dropout: {
    kind: "boolean",
    default: true,
    group: "model",
    follows: DPO,
    check: (v: boolean) =>
      v
        ? undefined
        : "false is not supported (dropout stays off in the policy: the recomputed LM-head chunks and checkpointed layers must see the same forward)",
    help: "Dropout off in the policy (and the LoRA adapters), as TRL does by default; false is an error.",
  },
  model_init_kwargs: {
    kind: "mapping",
    default: null,
    group: "model",
    follows: DPO,
    resume: "soft",
    check: (v: unknown, all) => modelInitKwargsRule(v, all),
    help:
      "TRL's keyword arguments for from_pretrained: torch_dtype is read (as the torch_dtype key; both set must agree); " +
      `${MODEL_INIT_TOOLING.join(", ")} change nothing here and are ignored; any other is an error.`,
  },
  use_dora: {
    kind: "boolean",
    default: false,
    group: "model",
    follows: "PEFT LoraConfig",
    status: "error",
    help: "DoRA (weight-decomposed LoRA): not implemented here; plain LoRA would train another update.",
  },
  lora_task_type: {
    kind: "string",
    default: "CAUSAL_LM",
    group: "model",
    follows: "TRL ModelConfig",
    resume: "hard",
    check: (v: string) =>
      v === "CAUSAL_LM" ? undefined : "must be CAUSAL_LM (the adapters here are for causal language models)",
    help: "PEFT's task type of the adapters: CAUSAL_LM, the only one trained here (written to adapter_config.json).",
  },
  router_aux_loss_coef: {
    kind: "number",
    default: 0.001,
    group: "model",
    follows: DPO,
    status: "warn",
    help: "Weight of a mixture-of-experts router's load-balancing loss; no architecture here has a router, so there is none.",
  },
  use_liger_kernel: {
    kind: "boolean",
    default: false,
    group: "model",
    follows: TA,
    status: "warn",
    help:
      "Liger's fused kernels save memory by never materialising the full logits; the chunked log-prob path here " +
      "already avoids them, with the same values.",
  },
  use_logits_to_keep: {
    kind: "boolean",
    default: false,
    group: "model",
    follows: "TRL DPOConfig (<= 0.19)",
    status: "warn",
    help:
      "Compute logits only from the first answer token on; the chunked log-prob path here already computes " +
      "only what the answers need, with the same values.",
  },
  padding_free: {
    kind: "boolean",
    default: false,
    group: "model",
    follows: DPO,
    status: "warn",
    help:
      "Pack a batch without padding to save memory; padding here is masked out of the loss, so it trains the same " +
      "(current TRL turns padding_free off too).",
  },
  pad_to_multiple_of: {
    kind: "integer",
    default: null,
    group: "model",
    follows: DPO,
    status: "warn",
    help: "Pad batches to a multiple of N tokens (for tensor cores); padding is masked, so the loss is the same.",
  },
  activation_offloading: {
    kind: "boolean",
    default: false,
    group: "model",
    follows: DPO,
    status: "warn",
    help:
      "Keep activations in CPU memory between forward and backward; a memory saving with the same gradients " +
      "(gradient_checkpointing saves memory here).",
  },
  pad_token: {
    kind: "string",
    default: null,
    group: "model",
    follows: "TRL DPOConfig (deprecated)",
    status: "warn",
    help: "The padding token; padding is masked, so it does not change training (padding_value sets the id used).",
  },

  // --- data
  dataset_mixer: {
    kind: "mixer",
    default: null,
    group: "data",
    follows: HANDBOOK_DATA,
    resume: "hard",
    help: "Preference files (JSONL, JSON or Parquet) and the fraction of each to use: {path: fraction}, a path, or a list of paths. Required unless train_data_path is given.",
  },
  dataset: {
    kind: "list",
    default: null,
    group: "data",
    follows: "LLaMA-Factory DataArguments",
    resume: "hard",
    check: (v: unknown) =>
      (typeof v === "string" && v.trim() !== "") ||
      (Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === "string" && x.trim() !== ""))
        ? undefined
        : "must name entries of dataset_info.json (a name, names separated by commas, or a list)",
    help:
      "LLaMA-Factory's training data: entries of dataset_dir/dataset_info.json (ranking image pairs, alpaca " +
      "formatting, their columns mapping), read as dataset_mixer {file: 1.0} each; instead of dataset_mixer.",
  },
  dataset_dir: {
    kind: "path",
    default: null,
    group: "data",
    follows: "LLaMA-Factory DataArguments",
    resume: "hard",
    help:
      "The folder holding dataset_info.json and its entries' files (LLaMA-Factory's dataset_dir); None: " +
      "the folder data beside the recipe (LLaMA-Factory's default, data, read from where it runs).",
  },
  media_dir: {
    kind: "path",
    default: null,
    group: "data",
    follows: "LLaMA-Factory DataArguments",
    resume: "hard",
    help:
      "The folder relative image paths of image pairs are read from; None: dataset_dir with `dataset`, " +
      "else each data file's folder.",
  },
  image_max_pixels: {
    kind: "integer",
    default: 768 * 768,
    group: "data",
    follows: "LLaMA-Factory ProcessorArguments",
    resume: "hard",
    check: atLeast(28 * 28),
    help: "Image pairs: an image above this many pixels is scaled down (aspect kept) before the processor sees it.",
  },
  image_min_pixels: {
    kind: "integer",
    default: 32 * 32,
    group: "data",
    follows: "LLaMA-Factory ProcessorArguments",
    resume: "hard",
    check: atLeast(1),
    help: "Image pairs: an image below this many pixels is scaled up (aspect kept) before the processor sees it.",
  },
  train_data_path: {
    kind: "path",
    default: null,
    group: "data",
    follows: "Uni-DPO Math ScriptArgs",
    resume: "hard",
    help: "The Math recipe's training file (JSONL of prompt, chosen, rejected, scores), read whole and in order; instead of dataset_mixer.",
  },
  eval_data_path: {
    kind: "path",
    default: null,
    group: "data",
    follows: "Uni-DPO Math ScriptArgs",
    help: "The Math recipe's held-out preference file (as eval_file); eot_token and sanity_check apply to it too.",
  },
  eot_token: {
    kind: "string",
    default: "",
    group: "data",
    follows: "Uni-DPO Math ScriptArgs",
    resume: "hard",
    help: 'Appended to every chosen and rejected answer (text records) that does not already end with it, as the Math data.py does; "": nothing.',
  },
  sanity_check: {
    kind: "boolean",
    default: false,
    group: "data",
    follows: "Uni-DPO Math ScriptArgs",
    resume: "hard",
    help: "Use only the first 100 records of each split, as the Math data.py does.",
  },
  max_training_samples: {
    kind: "integer",
    default: -1,
    group: "data",
    follows: "Uni-DPO Math ScriptArgs",
    resume: "hard",
    help: "Use only the first N training records (after sanity_check); -1 (or any value <= 0): all. More than there are is an error, as datasets' select is.",
  },
  eval_file: {
    kind: "path",
    default: null,
    group: "data",
    follows: OURS,
    help: "A held-out preference file to evaluate on.",
  },
  test_split_size: {
    kind: "number",
    default: 0,
    group: "data",
    follows: OURS,
    resume: "hard",
    help: "Without eval_file: the share (below 1) or number of training pairs held out for evaluation.",
  },
  max_samples: {
    kind: "integer",
    default: null,
    group: "data",
    follows: UNI_DPO,
    resume: "hard",
    help: "Use only the first N records of each split.",
  },
  chat_template: {
    kind: "string",
    default: null,
    group: "data",
    follows: HANDBOOK_DATA,
    resume: "hard",
    help: "A Jinja chat template for conversational records; None: the tokenizer's.",
  },
  chat_rendering: {
    kind: "enum",
    values: CHAT_RENDERINGS,
    default: "trl",
    group: "data",
    follows: "TRL DPOTrainer (apply_chat_template)",
    resume: "hard",
    help: "How conversational records become text. trl: the prompt with the generation prompt, the answer as what prompt + answer renders beyond it (what the model sees in a chat). reference: the Uni-DPO reference's (alignment-handbook's) rendering, an empty system turn and each answer rendered alone, for exact parity with it. Records the two render differently are counted in a warning.",
  },
  max_length: {
    kind: "integer",
    default: 512,
    group: "data",
    follows: "TRL 0.12 DPOTrainer (DPOConfig's None means 512)",
    resume: "hard",
    check: atLeast(1),
    help: "Tokens of prompt plus answer kept per sequence.",
  },
  max_prompt_length: {
    kind: "integer",
    default: 128,
    group: "data",
    follows: "TRL 0.12 DPOTrainer (DPOConfig's None means 128)",
    resume: "hard",
    check: (v: number, all) =>
      v >= (all.max_length as number) ? `must be below max_length (${all.max_length})` : undefined,
    help: "Prompt tokens kept when prompt plus answer exceed max_length.",
  },
  truncation_mode: {
    kind: "enum",
    values: ["keep_end", "keep_start"],
    default: "keep_end",
    group: "data",
    follows: DPO,
    resume: "hard",
    help: "Which end of a too-long prompt is kept.",
  },
  dataset_splits: {
    kind: "list",
    default: ["train", "test"],
    group: "data",
    follows: HANDBOOK_DATA,
    status: "warn",
    help: "Hub dataset splits (files are read whole here).",
  },
  dataset_configs: {
    kind: "list",
    default: null,
    group: "data",
    follows: HANDBOOK_DATA,
    status: "warn",
    help: "Hub dataset configurations.",
  },
  preprocessing_num_workers: {
    kind: "integer",
    default: null,
    group: "data",
    follows: HANDBOOK_DATA,
    status: "warn",
    help: "Worker processes for tokenisation (one process here).",
  },
  dataloader_num_workers: {
    kind: "integer",
    default: 0,
    group: "data",
    follows: TA,
    status: "warn",
    help: "Worker processes for data loading (one process here).",
  },
  auto_insert_empty_system_msg: {
    kind: "boolean",
    default: true,
    group: "data",
    follows: HANDBOOK_DATA,
    resume: "hard",
    check: (v: boolean) =>
      v
        ? undefined
        : "false is not supported (an empty system message is inserted when the chat template knows a system role)",
    help: "An empty system message before conversations, when the chat template knows a system role; false is an error.",
  },
  truncation_side: {
    kind: "string",
    default: null,
    group: "data",
    follows: HANDBOOK_MODEL,
    status: "warn",
    help: "Tokenizer truncation side; DPO's tokenisation cuts by truncation_mode (in TRL too), so it has no effect.",
  },
  padding_side: {
    kind: "enum",
    values: ["left", "right"],
    default: null,
    group: "data",
    follows: HANDBOOK_MODEL,
    help: "Tokenizer padding side: left or right give the same training, as in TRL, whose DPO collator pads every batch itself (answers on the right, masked).",
  },
  label_pad_token_id: {
    kind: "integer",
    default: -100,
    group: "data",
    follows: DPO,
    check: (v: number) =>
      v >= 0 ? "must be negative (a label no token has: the prompt and padding are masked by it)" : undefined,
    help: "The label that masks the prompt and padding out of the loss; any negative value trains the same.",
  },
  padding_value: {
    kind: "integer",
    default: null,
    group: "data",
    follows: DPO,
    check: nonNegative,
    help: "The token id batches are padded with (masked, so it does not change the loss); None: the tokenizer's pad token, else EOS.",
  },
  remove_unused_columns: {
    kind: "boolean",
    default: true,
    group: "data",
    follows: TA,
    status: "warn",
    help: "Drop dataset columns the model does not take (only prompt, chosen, rejected and scores are read here).",
  },
  is_llama3: {
    kind: "boolean",
    default: false,
    group: "data",
    follows: "Uni-DPO recipes",
    status: "warn",
    help: "Llama 3 chat formatting in the reference's scripts (the tokenizer's chat template decides here).",
  },
  max_completion_length: {
    kind: "integer",
    default: null,
    group: "data",
    follows: DPO,
    resume: "hard",
    check: atLeast(1),
    help: "Tokens kept of each answer (its start, EOS included), as TRL cuts completions, before max_length applies; None: no separate limit.",
  },
  dataset_name: {
    kind: "path",
    default: null,
    group: "data",
    follows: "TRL ScriptArguments",
    resume: "hard",
    help:
      "TRL's training dataset: here a local preference file (JSONL, JSON or Parquet), used whole, as dataset_mixer " +
      "{file: 1.0}. A Hub id is an error: datasets are not downloaded; save the dataset to a file (docs/data.md).",
  },
  dataset_num_proc: {
    kind: "integer",
    default: null,
    group: "data",
    follows: DPO,
    status: "warn",
    help: "Processes for tokenising the dataset; one process tokenises here, with the same result.",
  },
  max_target_length: {
    kind: "integer",
    default: null,
    group: "data",
    follows: "TRL DPOConfig (<= 0.11)",
    status: "warn",
    help:
      "The target's length limit of encoder-decoder models only (TRL ignores it for decoder-only models, the only " +
      "kind here); max_completion_length limits answers.",
  },

  // --- optimisation
  learning_rate: {
    kind: "number",
    default: 5e-7,
    group: "optimisation",
    follows: `${OURS} (alignment-handbook's DPO recipes; ${TA}: 5e-5)`,
    resume: "soft",
    check: nonNegative,
    help: "AdamW's peak learning rate.",
  },
  weight_decay: {
    kind: "number",
    default: 0,
    group: "optimisation",
    follows: TA,
    resume: "soft",
    check: nonNegative,
    help: "AdamW's decoupled weight decay, on weights of two or more dimensions only (not biases or norm weights).",
  },
  adam_beta1: {
    kind: "number",
    default: 0.9,
    group: "optimisation",
    follows: TA,
    resume: "soft",
    help: "AdamW's beta1.",
  },
  adam_beta2: {
    kind: "number",
    default: 0.999,
    group: "optimisation",
    follows: TA,
    resume: "soft",
    help: "AdamW's beta2.",
  },
  adam_epsilon: {
    kind: "number",
    default: 1e-8,
    group: "optimisation",
    follows: TA,
    resume: "soft",
    help: "AdamW's epsilon.",
  },
  max_grad_norm: {
    kind: "number",
    default: 1,
    group: "optimisation",
    follows: TA,
    resume: "soft",
    help: "Gradient clipping norm; 0 turns clipping off.",
  },
  per_device_train_batch_size: {
    kind: "integer",
    default: 8,
    group: "optimisation",
    follows: TA,
    resume: "hard",
    check: atLeast(1),
    help: "Pairs per micro-batch (each runs chosen and rejected together: twice as many rows).",
  },
  per_device_eval_batch_size: {
    kind: "integer",
    default: 8,
    group: "optimisation",
    follows: TA,
    check: atLeast(1),
    help: "Pairs per evaluation batch.",
  },
  gradient_accumulation_steps: {
    kind: "integer",
    default: 1,
    group: "optimisation",
    follows: TA,
    resume: "hard",
    check: atLeast(1),
    help: "Micro-batches per optimizer step.",
  },
  seed: {
    kind: "integer",
    default: 42,
    group: "optimisation",
    follows: TA,
    resume: "hard",
    help: "Seeds the data order, the split and the RNG.",
  },
  bf16: {
    kind: "boolean",
    default: false,
    group: "optimisation",
    follows: TA,
    resume: "soft",
    help: "bfloat16 mixed precision: forwards under autocast (matmuls in bf16), float32 master weights, AdamW state and loss. Fast on CUDA; slower than float32 on most CPUs.",
  },
  fp16: {
    kind: "boolean",
    default: false,
    group: "optimisation",
    follows: TA,
    status: "error",
    help: "float16 mixed precision (bf16 is supported).",
  },
  tf32: {
    kind: "boolean",
    default: null,
    group: "optimisation",
    follows: TA,
    status: "warn",
    help: "TF32 matmuls on Ampere and later GPUs (float32 matmuls stay full precision here).",
  },
  bf16_full_eval: {
    kind: "boolean",
    default: false,
    group: "optimisation",
    follows: TA,
    help: "Evaluation forwards under bfloat16 autocast even without bf16 (with bf16 they are anyway, as in transformers). The weights stay as loaded; transformers casts the model to bf16 instead.",
  },
  fp16_full_eval: {
    kind: "boolean",
    default: false,
    group: "optimisation",
    follows: TA,
    status: "error",
    help: "Evaluate in float16.",
  },
  gradient_checkpointing: {
    kind: "boolean",
    default: false,
    group: "optimisation",
    follows: TA,
    help: "Recompute each decoder layer in backward from its input instead of keeping its activations: less memory, about one more forward per step; same gradients.",
  },
  gradient_checkpointing_kwargs: {
    kind: "mapping",
    default: null,
    group: "optimisation",
    follows: TA,
    check: (v: unknown) =>
      typeof v !== "object" || v === null || Array.isArray(v)
        ? "must be a mapping"
        : Object.keys(v).filter((k) => k !== "use_reentrant").length
          ? `supports only use_reentrant (got ${Object.keys(v).join(", ")})`
          : undefined,
    help: "Options of PyTorch's checkpoint: use_reentrant only, which changes how, not what, it recomputes (layers are recomputed from their saved input here, with the same gradients).",
  },
  torch_compile: {
    kind: "boolean",
    default: false,
    group: "optimisation",
    follows: TA,
    status: "warn",
    help: "Compile the model with torch.compile.",
  },
  deepspeed: {
    kind: "path",
    default: null,
    group: "optimisation",
    follows: TA,
    status: "warn",
    help: "A DeepSpeed config file.",
  },
  fsdp: {
    kind: "string",
    default: "",
    group: "optimisation",
    follows: TA,
    status: "warn",
    help: "Fully sharded data parallel options.",
  },
  fsdp_config: {
    kind: "path",
    default: null,
    group: "optimisation",
    follows: TA,
    status: "warn",
    help: "An FSDP config file.",
  },
  local_rank: {
    kind: "integer",
    default: -1,
    group: "optimisation",
    follows: TA,
    help: "This process's rank on its machine in a distributed run (its GPU: cuda:local_rank); the launcher's LOCAL_RANK wins, as in transformers. -1: from the launcher.",
  },
  ddp_timeout: {
    kind: "integer",
    default: 1800,
    group: "optimisation",
    follows: TA,
    check: atLeast(1),
    help: "Seconds a distributed rendezvous or collective may wait for the other ranks before the run fails with an error naming the rank.",
  },
  ddp_bucket_cap_mb: {
    kind: "number",
    default: null,
    group: "optimisation",
    follows: TA,
    check: (v: number) => (v <= 0 ? "must be above 0" : undefined),
    help: "Size of the buckets (MB) gradients are flattened into and all-reduced in, across ranks; None: 25, as DistributedDataParallel.",
  },
  // --- transformers TrainingArguments beyond those above: what each would change here.
  save_safetensors: {
    kind: "boolean",
    default: true,
    group: "optimisation",
    follows: TA,
    status: "warn",
    help: "Save in safetensors rather than pickle; everything is written as safetensors here.",
  },
  dataloader_pin_memory: {
    kind: "boolean",
    default: true,
    group: "optimisation",
    follows: TA,
    status: "warn",
    help: "Page-locked host memory for faster copies to the GPU; a speed setting, same batches.",
  },
  dataloader_persistent_workers: {
    kind: "boolean",
    default: false,
    group: "optimisation",
    follows: TA,
    status: "warn",
    help: "Keep data-loading workers alive between epochs; one process loads data here.",
  },
  dataloader_prefetch_factor: {
    kind: "integer",
    default: null,
    group: "optimisation",
    follows: TA,
    status: "warn",
    help: "Batches each data-loading worker prefetches; one process loads data here.",
  },
  eval_accumulation_steps: {
    kind: "integer",
    default: null,
    group: "optimisation",
    follows: TA,
    status: "warn",
    help: "Move eval predictions to the CPU every N steps (memory); evaluation keeps only its metrics here.",
  },
  torch_empty_cache_steps: {
    kind: "integer",
    default: null,
    group: "optimisation",
    follows: TA,
    status: "warn",
    help: "Empty the CUDA cache every N steps (memory); the same training.",
  },
  include_num_input_tokens_seen: {
    kind: "boolean",
    default: false,
    group: "logging/saving",
    follows: TA,
    status: "warn",
    help: "Count input tokens in trainer_state.json; rows log tokens_per_second here instead.",
  },
  disable_tqdm: {
    kind: "boolean",
    default: false,
    group: "logging/saving",
    follows: TA,
    status: "warn",
    help: "Hide the progress bar; train() takes quiet: true, and the CLI draws no bar with --json.",
  },
  full_determinism: {
    kind: "boolean",
    default: false,
    group: "optimisation",
    follows: TA,
    status: "warn",
    help: "Deterministic CUDA kernels; runs here are seeded and resume exactly, with LibTorch's default kernels.",
  },
  save_on_each_node: {
    kind: "boolean",
    default: false,
    group: "logging/saving",
    follows: TA,
    status: "warn",
    help: "Write checkpoints on every machine; rank 0 writes output_dir here (use a shared file system).",
  },
  hub_token: {
    kind: "string",
    default: null,
    group: "logging/saving",
    follows: TA,
    status: "warn",
    help: "A Hugging Face hub token (never used: nothing is uploaded).",
  },
  ddp_backend: {
    kind: "string",
    default: null,
    group: "optimisation",
    follows: TA,
    status: "warn",
    help: "The collective backend; `omni-dpo train --backend gloo|nccl` picks it here.",
  },
  label_smoothing_factor: {
    kind: "number",
    default: 0,
    group: "optimisation",
    follows: TA,
    status: "warn",
    help:
      "transformers' label smoothing of the LM loss, which TRL's DPOTrainer does not use either (its loss is " +
      "its own); DPO's label smoothing is the objective's label_smoothing key.",
  },
  dataloader_drop_last: {
    kind: "boolean",
    default: false,
    group: "optimisation",
    follows: TA,
    status: "error",
    help: "Drop the last incomplete batch of each epoch; the last batch is always trained here.",
  },
  group_by_length: {
    kind: "boolean",
    default: false,
    group: "optimisation",
    follows: TA,
    status: "error",
    help: "Batch examples of similar length together; the order here is a seeded shuffle, as TRL's default.",
  },
  neftune_noise_alpha: {
    kind: "number",
    default: null,
    group: "optimisation",
    follows: TA,
    status: "error",
    help: "NEFTune's noise on the input embeddings: not implemented here.",
  },
  use_cpu: {
    kind: "boolean",
    default: false,
    group: "optimisation",
    follows: TA,
    status: "error",
    help: "Train on the CPU: set device: cpu instead.",
  },
  eval_on_start: {
    kind: "boolean",
    default: false,
    group: "schedule",
    follows: TA,
    status: "error",
    help: "An evaluation before the first step: not supported (evaluations follow eval_strategy and the last step).",
  },
  ddp_find_unused_parameters: {
    kind: "boolean",
    default: null,
    group: "optimisation",
    follows: TA,
    status: "warn",
    help:
      "Let DistributedDataParallel look for parameters without a gradient; every gradient here is all-reduced from " +
      "one flat buffer (unused ones as zeros), so nothing needs finding.",
  },
  zero_stage: {
    kind: "integer",
    default: 0,
    group: "optimisation",
    follows: OURS,
    check: (v: number) =>
      v >= 0 && v <= 3
        ? undefined
        : "must be 0 (off), 1 (ZeRO-1: optimizer state sharded), 2 (ZeRO-2: gradients too) or 3 (ZeRO-3: weights too)",
    help: "1: ZeRO stage 1 over several ranks: each rank keeps the optimizer state (AdamW's moments) of its share of the parameters only, updates those and broadcasts them (PyTorch's ZeroRedundancyOptimizer); the same weights as without it. 2: ZeRO stage 2, the gradients sharded too (each reduced to its owner only, the others dropped). 3: ZeRO stage 3, the trainable weights sharded too (each decoder layer's gathered from their owners just before it runs, and again for its recomputation with gradient_checkpointing, freed after). 0: every rank keeps the whole state. Checkpoints hold the whole state either way.",
  },
  optim: {
    kind: "string",
    default: "adamw_torch",
    group: "optimisation",
    follows: TA,
    resume: "hard",
    check: (v: string) => optimRule(v),
    help: `The optimizer: ${OPTIMIZERS.join(", ")} (adamw_torch_fused is the same update as adamw_torch; sgd is torch.optim.SGD with learning_rate and weight_decay, no momentum, as transformers makes it). Others, adafactor included, are an error.`,
  },

  // --- schedule
  num_train_epochs: {
    kind: "number",
    default: 3,
    group: "schedule",
    follows: TA,
    resume: "soft",
    check: (v: number, all) =>
      (all.max_steps as number) <= 0 && !(v > 0)
        ? "must be positive when max_steps is not set (max_steps <= 0)"
        : undefined,
    help: "Passes over the training pairs (fractions allowed); max_steps > 0 wins.",
  },
  max_steps: {
    kind: "integer",
    default: -1,
    group: "schedule",
    follows: TA,
    resume: "soft",
    help: "Optimizer steps in the run; -1 (or any value <= 0): from num_train_epochs.",
  },
  lr_scheduler_type: {
    kind: "enum",
    values: SCHEDULE_TYPES,
    default: "linear",
    group: "schedule",
    follows: TA,
    resume: "soft",
    help: "Learning-rate schedule, as transformers' get_scheduler (lr_scheduler_kwargs for their options).",
  },
  lr_scheduler_kwargs: {
    kind: "mapping",
    default: {},
    group: "schedule",
    follows: TA,
    resume: "soft",
    check: (v: unknown, all) => scheduleKwargsRule(v, all),
    help: "The schedule's options, transformers' names: num_cycles (cosine, cosine_with_restarts, cosine_with_min_lr), min_lr or min_lr_rate (cosine_with_min_lr), lr_end and power (polynomial), timescale (inverse_sqrt), num_stable_steps, num_decay_steps, min_lr_ratio, decay_type (warmup_stable_decay).",
  },
  warmup_ratio: {
    kind: "number",
    default: 0,
    group: "schedule",
    follows: TA,
    resume: "soft",
    check: (v: number) => (v < 0 || v > 1 ? "must lie in [0, 1]" : undefined),
    help: "Warmup as a share of the run's steps (rounded up); warmup_steps > 0 wins.",
  },
  warmup_steps: {
    kind: "integer",
    default: 0,
    group: "schedule",
    follows: TA,
    resume: "soft",
    check: nonNegative,
    help: "Warmup steps.",
  },
  eval_strategy: {
    kind: "enum",
    values: STRATEGIES,
    default: null,
    group: "schedule",
    follows: TA,
    help: "no: no evaluation; steps: every eval_steps; epoch: at the end of each epoch; None: every eval_steps when set; with eval data, always at the end of training too.",
  },
  evaluation_strategy: {
    kind: "enum",
    values: STRATEGIES,
    default: null,
    group: "schedule",
    follows: "transformers < 4.46 TrainingArguments",
    help: "Older name of eval_strategy.",
  },
  eval_steps: {
    kind: "steps",
    default: null,
    group: "schedule",
    follows: TA,
    check: stepsRule(["eval_strategy", "evaluation_strategy"]),
    help: "Evaluate every N steps, or every fraction of the run in (0, 1); None: only at the end.",
  },
  eval_generation_file: {
    kind: "path",
    default: null,
    group: "schedule",
    follows: OURS,
    help:
      "Held-out prompts the policy answers during training (generation eval): a math benchmark file (problem or " +
      "question, and its answer) for eval_generation_task math, a prompt file for winrate. Logs eval_gen_accuracy " +
      "(or eval_gen_win_rate) and eval_gen_mean_length at eval_generation_steps and at the end, on the eval rows " +
      "(metric_for_best_model may name them).",
  },
  eval_generation_task: {
    kind: "enum",
    values: ["math", "winrate"],
    default: "math",
    group: "schedule",
    follows: OURS,
    check: (v: string, all: Record<string, unknown>) =>
      v === "winrate" && all.eval_generation_file !== null && all.eval_generation_reward_model === null
        ? "winrate needs eval_generation_reward_model (the judge)"
        : undefined,
    help:
      "math: greedy answers graded against the gold answers as `omni-dpo eval --task math` grades them; winrate: " +
      "greedy answers judged by eval_generation_reward_model against the starting model's (generated once), as " +
      "`omni-dpo eval --task winrate --reward-model` judges them (eval_gen_win_rate, ties half).",
  },
  eval_generation_reward_model: {
    kind: "path",
    default: null,
    group: "schedule",
    follows: OURS,
    help: "The reward model that judges eval_generation_task winrate (a *ForSequenceClassification directory).",
  },
  eval_generation_steps: {
    kind: "steps",
    default: null,
    group: "schedule",
    follows: OURS,
    check: stepsRule([]),
    help: "Generation eval every N steps (or fraction of the run); None: at eval_steps (and always at the end).",
  },
  eval_generation_samples: {
    kind: "integer",
    default: null,
    group: "schedule",
    follows: OURS,
    check: atLeast(1),
    help: "How many of eval_generation_file's prompts (the first N); None: all. Split across the ranks under DDP.",
  },
  eval_generation_max_new_tokens: {
    kind: "integer",
    default: 256,
    group: "schedule",
    follows: OURS,
    check: atLeast(1),
    help: "New tokens per generation-eval answer, at most (greedy decoding).",
  },
  eval_generation_prompt_template: {
    kind: "string",
    default: null,
    group: "schedule",
    follows: OURS,
    help: "Text with {input} for the question, or chat (the tokenizer's template); None: the qwen25-math-cot prompt.",
  },
  eval_generation_batch_size: {
    kind: "integer",
    default: 16,
    group: "schedule",
    follows: OURS,
    check: atLeast(1),
    help: "Generations per batch in generation eval.",
  },
  iterations: {
    kind: "mapping",
    default: null,
    group: "data",
    follows: OURS,
    check: () => "belongs to omni-dpo iterate (its rounds); run this recipe with omni-dpo iterate, or remove the block",
    help: "omni-dpo iterate's rounds (sampling, scoring, training, evaluation; see omni-dpo iterate --help).",
  },
  do_eval: {
    kind: "boolean",
    default: null,
    group: "schedule",
    follows: TA,
    help: "false: no evaluation at all, even with eval data (as the Math script, which builds none); None or true: the eval data, when there are any, are evaluated.",
  },
  do_train: {
    kind: "boolean",
    default: null,
    group: "schedule",
    follows: TA,
    check: (v: boolean) =>
      v === false ? "false (evaluation only) is not what omni-dpo train does; use omni-dpo eval" : undefined,
    help: "Train: None or true (false is an error: omni-dpo eval evaluates).",
  },
  early_stopping_patience: {
    kind: "integer",
    default: null,
    group: "schedule",
    follows: "transformers EarlyStoppingCallback",
    check: atLeast(1),
    help: "Stop training after this many evaluations in a row without metric_for_best_model improving by more than early_stopping_threshold; the final model is the last step's. Needs eval data. None: never stop early.",
  },
  early_stopping_threshold: {
    kind: "number",
    default: 0,
    group: "schedule",
    follows: "transformers EarlyStoppingCallback",
    check: nonNegative,
    help: "How much metric_for_best_model must improve on its best to count as an improvement (early_stopping_patience).",
  },
  metric_for_best_model: {
    kind: "string",
    default: null,
    group: "schedule",
    follows: TA,
    help: "The eval metric early stopping watches, with or without its eval_ prefix (loss, rewards/accuracies...); None: loss.",
  },
  greater_is_better: {
    kind: "boolean",
    default: null,
    group: "schedule",
    follows: TA,
    help: "Whether a larger metric_for_best_model is better; None: false for loss, true for any other metric, as transformers.",
  },
  load_best_model_at_end: {
    kind: "boolean",
    default: false,
    group: "schedule",
    follows: TA,
    help:
      "Track the best checkpoint by metric_for_best_model (None: loss) and write its model to output_dir at the end, " +
      "as transformers: checkpoint rotation (save_total_limit) never deletes it, and trainer_state.json names it. Needs " +
      "eval data, evaluation at every checkpoint (save_strategy as eval_strategy, save_steps a multiple of eval_steps).",
  },
  generate_during_eval: {
    kind: "boolean",
    default: false,
    group: "schedule",
    follows: DPO,
    status: "warn",
    help: "Sample generations while evaluating and log them to Weights & Biases or Comet (neither is used here).",
  },

  // --- logging/saving
  output_dir: {
    kind: "path",
    group: "logging/saving",
    follows: TA,
    help: "Where metrics.jsonl, checkpoints and the trained model go; never the starting or reference model's directory.",
  },
  overwrite_output_dir: {
    kind: "boolean",
    default: false,
    group: "logging/saving",
    follows: TA,
    help: "Start afresh even when output_dir holds checkpoints or a finished run (deleting the checkpoints).",
  },
  resume_from_checkpoint: {
    kind: "checkpoint",
    default: null,
    group: "logging/saving",
    follows: TA,
    help: "A checkpoint directory to resume from (accepting changed optimisation, schedule and objective settings, with a warning); true: the latest in output_dir; None: the latest automatically, as alignment-handbook's scripts do; false: never.",
  },
  logging_steps: {
    kind: "steps",
    default: 10,
    group: "logging/saving",
    follows: `${OURS} (${TA}: 500)`,
    check: stepsRule(["logging_strategy"]),
    help: "Log averaged metrics every N steps (or every fraction of the run in (0, 1)) to metrics.jsonl and the console.",
  },
  pair_logging_steps: {
    kind: "steps",
    default: 0.1,
    group: "logging/saving",
    follows: OURS,
    check: stepsRule([]),
    help: "Log each sampled pair's w_qual, w_perf, margin and c-NLL gate to pair_log.jsonl every N steps (or every fraction of the run in (0, 1); default 0.1: ten times a run, and at its last step). Each log runs the sample through the policy, about pair_log_samples / 3 training pairs' compute: logging it with every metrics row (pair_logging_steps = logging_steps) can double a run's time.",
  },
  pair_log_samples: {
    kind: "integer",
    default: 256,
    group: "logging/saving",
    follows: OURS,
    check: nonNegative,
    help: "How many training pairs (a fixed sample, drawn with the seed) pair_log.jsonl follows through the run, for `omni-dpo dashboard`; 0: no pair log.",
  },
  save_strategy: {
    kind: "enum",
    values: STRATEGIES,
    default: null,
    group: "logging/saving",
    follows: TA,
    help: "no: no checkpoints (the final model is still written); steps (None: the same): every save_steps and at the end; epoch: at the end of each epoch (and so at the end).",
  },
  save_steps: {
    kind: "steps",
    default: 500,
    nullable: true,
    group: "logging/saving",
    follows: TA,
    check: stepsRule(["save_strategy"]),
    help: "Checkpoint every N steps, or every fraction of the run in (0, 1); a final checkpoint is written at the end.",
  },
  save_total_limit: {
    kind: "integer",
    default: null,
    group: "logging/saving",
    follows: TA,
    check: nonNegative,
    help: "Checkpoints kept (the oldest are deleted); None or 0: all.",
  },
  precompute_ref_log_probs: {
    kind: "boolean",
    default: false,
    group: "logging/saving",
    follows: DPO,
    help: "Compute the reference log-probs once and cache them in output_dir/ref_logps_cache, so only the policy is in memory.",
  },
  precompute_ref_batch_size: {
    kind: "integer",
    default: null,
    group: "logging/saving",
    follows: DPO,
    check: atLeast(1),
    help: "Pairs per batch when precomputing the reference log-probs; None: per_device_eval_batch_size.",
  },
  logging_strategy: {
    kind: "enum",
    values: STRATEGIES,
    default: "steps",
    group: "logging/saving",
    follows: TA,
    help: "no: no train rows; steps: every logging_steps; epoch: at the end of each epoch. The last step is always logged.",
  },
  logging_first_step: {
    kind: "boolean",
    default: false,
    group: "logging/saving",
    follows: TA,
    help: "Log the first step too.",
  },
  log_level: {
    kind: "string",
    default: "passive",
    group: "logging/saving",
    follows: TA,
    status: "warn",
    help: "Python logging level (the console shows progress, warnings and logged rows here).",
  },
  report_to: {
    kind: "list",
    default: null,
    group: "logging/saving",
    follows: TA,
    check: (v: unknown) => reportToRule(v),
    help: "Trackers: tensorboard (event files under logging_dir), none; others (wandb, comet_ml, mlflow...) are warned about and skipped. metrics.jsonl is always written. None: none (transformers 5's default).",
  },
  logging_dir: {
    kind: "path",
    default: null,
    group: "logging/saving",
    follows: TA,
    help: "TensorBoard's directory; None: output_dir/runs/<date>_<host>, as transformers names it.",
  },
  run_name: {
    kind: "string",
    default: null,
    group: "logging/saving",
    follows: TA,
    help: "The run's name, in the model card and TensorBoard's run directory; None: output_dir.",
  },
  wandb_project: {
    kind: "string",
    default: null,
    group: "logging/saving",
    follows: "Uni-DPO recipes",
    status: "warn",
    help: "Weights & Biases project.",
  },
  wandb_key: {
    kind: "string",
    default: "",
    group: "logging/saving",
    follows: "Uni-DPO Math TrainingArgs",
    status: "warn",
    help: "A Weights & Biases API key (never used here).",
  },
  save_only_model: {
    kind: "boolean",
    default: false,
    group: "logging/saving",
    follows: TA,
    status: "warn",
    help: "Checkpoints without optimizer state (they always hold it here, for exact resume).",
  },
  push_to_hub: {
    kind: "boolean",
    default: false,
    group: "logging/saving",
    follows: TA,
    status: "warn",
    help: "Upload the model to the Hugging Face hub.",
  },
  hub_model_id: {
    kind: "string",
    default: null,
    group: "logging/saving",
    follows: TA,
    status: "warn",
    help: "Hub repository to upload to.",
  },
  hub_strategy: {
    kind: "string",
    default: "every_save",
    group: "logging/saving",
    follows: TA,
    status: "warn",
    help: "When to upload.",
  },
  hub_private_repo: {
    kind: "boolean",
    default: false,
    group: "logging/saving",
    follows: TA,
    status: "warn",
    help: "Make the hub repository private.",
  },
  output_hub: {
    kind: "string",
    default: null,
    group: "logging/saving",
    follows: "Uni-DPO recipes",
    status: "warn",
    help: "Hub destination.",
  },

  // --- objective: the loss's own keys come from OBJECTIVE_CONFIG_KEYS; this one is how log-probs are taken.
  reference_free: {
    kind: "boolean",
    default: false,
    group: "objective",
    follows: "TRL DPOConfig (<= 0.20)",
    resume: "soft",
    help:
      "Train against a uniform reference: every reference log-prob is 0 (no reference model is loaded), as TRL's " +
      "reference_free.",
  },
  sync_ref_model: {
    kind: "boolean",
    default: false,
    group: "objective",
    follows: DPO,
    resume: "soft",
    help:
      "TR-DPO: every ref_model_sync_steps steps the reference becomes ref_model_mixup_alpha * policy + (1 - alpha) " +
      "* reference, as TRL's SyncRefModelCallback; checkpoints keep the reference (ref_model/) so a resume goes on " +
      "with it. Not with use_peft or precompute_ref_log_probs (as TRL).",
  },
  ref_model_mixup_alpha: {
    kind: "number",
    default: 0.6,
    group: "objective",
    follows: DPO,
    resume: "soft",
    check: (v: number) => (v < 0 || v > 1 ? "must lie in [0, 1]" : undefined),
    help: "TR-DPO's alpha: the policy's share of the synced reference (sync_ref_model).",
  },
  ref_model_sync_steps: {
    kind: "integer",
    default: 512,
    group: "objective",
    follows: DPO,
    resume: "soft",
    check: atLeast(1),
    help: "TR-DPO's tau: the reference is synced every this many optimizer steps (sync_ref_model).",
  },
  dpo_length_norm: {
    kind: "boolean",
    default: null,
    group: "objective",
    follows: `${UNI_DPO} (true) and ${DPO} (false)`,
    resume: "soft",
    help:
      "Sequence log-prob as the mean over answer tokens (true) or their sum (false). None: as the trainer the recipe " +
      "is written for: true (the Uni-DPO reference trainers' mean) when the recipe has a Uni-DPO marker (pref_loss, a " +
      "uni_dpo_*/omni_dpo_* key, loss_type: uni_dpo, a Math trainer key such as train_data_path, or a loss TRL's " +
      "DPOTrainer does not have, omni_dpo by default); false (TRL's sum) for a recipe of TRL / transformers keys only. " +
      "The run header and the model card say which, and why.",
  },
  center_rewards_coefficient: {
    kind: "number",
    default: null,
    group: "objective",
    follows: "TRL RewardConfig",
    resume: "soft",
    help:
      "train-rm only: weight of the penalty mean((r_chosen + r_rejected)^2) that keeps rewards centred on 0 " +
      "(Eisenstein et al. 2023; TRL recommends 0.01); None: no penalty.",
  },
} as const satisfies Record<string, KeySpec>;

export type RecipeKey = keyof typeof RECIPE_KEYS;
type Table = typeof RECIPE_KEYS;

/** Keys the trainer acts on (no status). */
export type SupportedKey = { [K in RecipeKey]: Table[K] extends { status: KeyStatus } ? never : K }[RecipeKey];

/** snake_case to camelCase, as a type: "per_device_train_batch_size" -> "perDeviceTrainBatchSize". */
type Camel<S extends string> = S extends `${infer H}_${infer T}` ? `${H}${Capitalize<Camel<T>>}` : S;

/** What each kind holds once read (paths resolved, steps possibly a fraction of the run). */
interface KindValue {
  path: string;
  string: string;
  number: number;
  integer: number;
  boolean: boolean;
  steps: number;
  mixer: Record<string, number>;
  checkpoint: string | boolean;
  list: unknown[];
  mapping: Record<string, unknown>;
}
type ValueOf<S> =
  | (S extends { kind: "enum"; values: readonly (infer V)[] }
      ? V
      : S extends { kind: infer K extends keyof KindValue }
        ? KindValue[K]
        : never)
  | (S extends { default: null } | { nullable: true } ? null : never);

/** The values of the keys the trainer acts on, by camelCase name, typed from the table. */
export type RecipeValues = { -readonly [K in SupportedKey as Camel<K>]: ValueOf<Table[K]> };

/** The camelCase field of a key, as RecipeValues names it. */
export function fieldOf(key: string): string {
  return key.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

export function specOf(key: string): KeySpec | undefined {
  return Object.hasOwn(RECIPE_KEYS, key) ? (RECIPE_KEYS as Record<string, KeySpec>)[key] : undefined;
}

export const ALL_KEYS = Object.keys(RECIPE_KEYS) as RecipeKey[];
export const SUPPORTED_KEYS = ALL_KEYS.filter((k) => !specOf(k)!.status) as SupportedKey[];

/**
 * LLaMA-Factory's names for keys (its `--stage dpo` arguments, which the reference's multimodal
 * recipe uses): read as the key they mean, or refused with what to write instead.
 */
export const LLAMA_FACTORY_KEYS: Record<string, { ours: string } | { refused: string }> = {
  pref_beta: { ours: "beta" },
  // true: the mean log-prob over answer tokens, as Uni-DPO's dpo_length_norm.
  dpo_average_log_prob: { ours: "dpo_length_norm" },
  cutoff_len: {
    refused:
      "set max_length instead: on image pairs (a vision-language model) it is cutoff_len, with LLaMA-Factory's " +
      "rule (the answer kept first); on text, TRL's rule applies with max_prompt_length",
  },
  template: {
    refused:
      "the chat format comes from the model directory's chat template (chat_template to replace it); " +
      "Qwen2-VL's own template is LLaMA-Factory's qwen2_vl",
  },
};
