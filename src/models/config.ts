// config.json: which architecture a checkpoint is, and its hyperparameters with Hugging Face's
// defaults filled in. An unsupported architecture is an error that lists the supported ones.
import { readFileSync, existsSync } from "node:fs";
import { join } from "node:path";

export type Architecture = "gpt2" | "llama" | "qwen2" | "mistral";

const BY_CLASS: Record<string, Architecture> = {
  GPT2LMHeadModel: "gpt2", LlamaForCausalLM: "llama", Qwen2ForCausalLM: "qwen2", MistralForCausalLM: "mistral",
};
const BY_MODEL_TYPE: Record<string, Architecture> = { gpt2: "gpt2", llama: "llama", qwen2: "qwen2", mistral: "mistral" };
export const SUPPORTED = Object.keys(BY_CLASS);

/** The raw config.json object; the models read what they need from it. */
export type RawConfig = Record<string, unknown> & { architectures?: string[]; model_type?: string };

export function readConfig(dir: string): RawConfig {
  const file = join(dir, "config.json");
  if (!existsSync(file)) throw new Error(`${dir}: no config.json (is this a Hugging Face model directory?)`);
  try {
    return JSON.parse(readFileSync(file, "utf8")) as RawConfig;
  } catch (e) {
    throw new Error(`${file}: not valid JSON (${(e as Error).message})`);
  }
}

export function architectureOf(config: RawConfig, where = "config.json"): Architecture {
  for (const cls of config.architectures ?? []) if (BY_CLASS[cls]) return BY_CLASS[cls];
  if (config.model_type && BY_MODEL_TYPE[config.model_type]) return BY_MODEL_TYPE[config.model_type];
  const what = config.architectures?.length ? `architectures ${JSON.stringify(config.architectures)}` : `model_type '${config.model_type ?? "(none)"}'`;
  throw new Error(`${where}: unsupported ${what}; supported: ${SUPPORTED.join(", ")}`);
}

/** Reads a numeric field, with a default; a present field of the wrong type is an error. */
export function num(config: RawConfig, key: string, fallback?: number): number {
  const v = config[key];
  if (v === undefined || v === null) {
    if (fallback === undefined) throw new Error(`config.json: missing field ${key}`);
    return fallback;
  }
  if (typeof v !== "number") throw new Error(`config.json: field ${key} must be a number, got ${JSON.stringify(v)}`);
  return v;
}
