// The declaration of one architecture, in a module of its own: every architecture file imports
// this type, and the registry (which imports every architecture) reads it, so no type cycle.
import type { Init } from "../nn/layers.js";
import type { CausalLM } from "./causal-lm.js";
import type { RawConfig } from "./config.js";

/** Everything the loaders need to know about one architecture; `C` is its parsed config. */
export interface ArchitectureSpec<C = unknown> {
  /** The short name its models report as `architecture` ("gpt2", "llama"). */
  readonly name: string;
  /** config.json `architectures` class names it answers to ("LlamaForCausalLM"). */
  readonly architectures: readonly string[];
  /** config.json `model_type` values it answers to when no `architectures` entry is known. */
  readonly modelTypes: readonly string[];
  /** Reads the hyperparameters from config.json, with Hugging Face's defaults; errors name the field. */
  parseConfig(raw: RawConfig): C;
  /** The model class, built from config.json (kept, to be saved back) and the parsed config. */
  readonly model: new (raw: RawConfig, config: C, init: Init) => CausalLM;
  /**
   * Prefixes a checkpoint may leave off the parameter names (GPT-2's "transformer.": base-model
   * checkpoints store "h.0.attn..." where the LM has "transformer.h.0.attn..."). A checkpoint
   * loaded without one is saved back without it.
   */
  readonly optionalPrefixes?: readonly string[];
  /**
   * Other namings a checkpoint may use, each a map of stored-name prefix -> parameter-name
   * prefix (Qwen2-VL's newer { "model.language_model.": "model.", "model.visual.": "visual." }).
   * A checkpoint with any name under one of a layout's prefixes is read through that layout,
   * and saved back in it.
   */
  readonly checkpointLayouts?: readonly Readonly<Record<string, string>>[];
  /** The model takes images (forward's pixelValues / imageGridThw): AutoModelForImageTextToText loads it. */
  readonly takesImages?: boolean;
  /** Checkpoint names that alias a parameter when embeddings are tied (name -> the parameter): accepted when loading, not saved. */
  tiedWeights?(config: C): Readonly<Record<string, string>>;
  /** Checkpoint names that hold buffers rather than weights (skipped when loading). */
  readonly ignoredCheckpointNames?: RegExp;
  /**
   * config.json class names of its sequence-classification models
   * ("LlamaForSequenceClassification"): the decoder without the LM head, plus score.weight
   * (src/models/sequence-classification.ts). An architecture that lists any must implement
   * CausalLM.finalNorm, and keep its LM head (if untied) as the submodule named lm_head.
   */
  readonly sequenceClassifiers?: readonly string[];
  /**
   * The layers LoRA wraps when a recipe names none: PEFT's default for this model_type
   * (TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING), e.g. ["q_proj", "v_proj"]. Without
   * it, LoRA on this architecture needs its target modules named.
   */
  readonly loraTargetModules?: readonly string[];
}
