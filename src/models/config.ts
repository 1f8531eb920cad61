// config.json: the raw hyperparameter object every architecture reads its fields from, and the
// typed reads of its fields (with Hugging Face's defaults) that the config parsers share.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { readJsonObjectFile } from "../util/utf8.js";

/** The raw config.json object; each architecture's config parser reads what it needs from it. */
export type RawConfig = Record<string, unknown> & { architectures?: string[]; model_type?: string };

/** A Hugging Face model directory: one holding config.json. */
export function isModelDirectory(dir: string): boolean {
  return existsSync(join(dir, "config.json"));
}

export function readConfig(dir: string): RawConfig {
  const file = join(dir, "config.json");
  if (!existsSync(file)) throw new Error(`${dir}: no config.json (is this a Hugging Face model directory?)`);
  return readJsonObjectFile(file) as RawConfig;
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

/** config.json integers that size the model: each, when given, must be a positive integer (transformers' names). */
const SIZE_FIELDS = [
  "vocab_size",
  "hidden_size",
  "intermediate_size",
  "num_hidden_layers",
  "num_attention_heads",
  "num_key_value_heads",
  "head_dim",
  "max_position_embeddings",
  "n_embd",
  "n_layer",
  "n_head",
  "n_inner",
  "n_positions",
  "sliding_window",
  "num_labels",
];

/**
 * Parses config.json with an architecture's parser, checked first: the size integers are
 * positive integers, and the heads divide as attention needs (num_attention_heads a multiple of
 * num_key_value_heads; hidden_size of num_attention_heads where head_dim is derived from them).
 * Every error names `where` (the file) and the field, so a zero never reaches the engine as a
 * division ("got -nan").
 */
export function parseModelConfig<C>(parse: (raw: RawConfig) => C, raw: RawConfig, where: string): C {
  for (const field of SIZE_FIELDS) {
    const v = raw[field];
    if (v === undefined || v === null) continue;
    if (typeof v !== "number" || !Number.isInteger(v) || v <= 0) {
      throw new Error(`${where}: field ${field} must be a positive integer, got ${JSON.stringify(v)}`);
    }
  }
  // GPT-2 names them n_embd and n_head.
  const gpt2 = raw.n_embd !== undefined || raw.n_head !== undefined;
  const [hiddenKey, headsKey] = gpt2 ? ["n_embd", "n_head"] : ["hidden_size", "num_attention_heads"];
  const [hidden, heads, kvHeads] = [raw[hiddenKey], raw[headsKey], raw.num_key_value_heads] as (number | undefined)[];
  if (heads !== undefined && kvHeads !== undefined && heads % kvHeads !== 0) {
    throw new Error(
      `${where}: field ${headsKey} ${heads} is not a multiple of num_key_value_heads ${kvHeads}: ` +
        "each key/value head serves a whole group of query heads",
    );
  }
  const derivedHeadDim = raw.head_dim === undefined || raw.head_dim === null;
  // Gemma's head_dim defaults to 256, whatever the hidden size.
  const gemma = typeof raw.model_type === "string" && raw.model_type.startsWith("gemma");
  if (hidden !== undefined && heads !== undefined && derivedHeadDim && !gemma && hidden % heads !== 0) {
    throw new Error(
      `${where}: field ${hiddenKey} (${hidden}) must be a multiple of ${headsKey} (${heads}): ` +
        `each head gets ${hiddenKey} / ${headsKey} dimensions`,
    );
  }
  try {
    return parse(raw);
  } catch (e) {
    // The parsers name the file "config.json"; here its path is known.
    const message = (e as Error).message;
    const named = message.startsWith("config.json: ") && where !== "config.json";
    throw named ? new Error(`${where}: ${message.slice("config.json: ".length)}`, { cause: e }) : e;
  }
}
