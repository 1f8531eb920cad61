// generation_config.json: the token ids that end, start and pad a model's generations, read
// when a model directory is loaded and written when one is saved, as transformers does. A
// directory without the file takes the ids from config.json (transformers'
// GenerationConfig.from_model_config).
import { existsSync } from "node:fs";
import { readJsonObjectFile } from "../util/utf8.js";
import { join } from "node:path";
import { writeJsonAtomic } from "../util/files.js";
import type { RawConfig } from "./config.js";

export const GENERATION_CONFIG_FILE = "generation_config.json";

export interface GenerationConfig {
  /** Ids that end a generation: `eos_token_id`, one id or a list (Llama 3 and Qwen2.5 instruct models list several). */
  eosTokenIds: number[];
  bosTokenId?: number;
  padTokenId?: number;
  /** The generation_config.json these came from, or null when derived from config.json. */
  file: string | null;
  /** The file's other fields (sampling defaults, transformers_version, ...), written back as they were. */
  extra: Record<string, unknown>;
}

const ID_KEYS = ["eos_token_id", "bos_token_id", "pad_token_id"] as const;

/** A token id, or undefined for an absent or null field; anything else is an error naming `where` and the field. */
function tokenId(value: unknown, where: string, key: string): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === "number" && Number.isSafeInteger(value) && value >= 0) return value;
  throw new Error(`${where}: field ${key} must be a token id (a non-negative integer), got ${JSON.stringify(value)}`);
}

function eosIds(value: unknown, where: string): number[] {
  if (!Array.isArray(value)) {
    const id = tokenId(value, where, "eos_token_id");
    return id === undefined ? [] : [id];
  }
  return value.map((v, i) => {
    if (typeof v === "number" && Number.isSafeInteger(v) && v >= 0) return v;
    throw new Error(
      `${where}: field eos_token_id[${i}] must be a token id (a non-negative integer), got ${JSON.stringify(v)}`,
    );
  });
}

/** The ids config.json names: what a model without generation_config.json generates with. */
export function generationConfigFromModelConfig(config: RawConfig, where = "config.json"): GenerationConfig {
  return {
    eosTokenIds: eosIds(config.eos_token_id, where),
    bosTokenId: tokenId(config.bos_token_id, where, "bos_token_id"),
    padTokenId: tokenId(config.pad_token_id, where, "pad_token_id"),
    file: null,
    extra: {},
  };
}

/** Reads `dir`/generation_config.json; null when the directory has none. */
export function readGenerationConfig(dir: string): GenerationConfig | null {
  const file = join(dir, GENERATION_CONFIG_FILE);
  if (!existsSync(file)) return null;
  const fields = readJsonObjectFile(file);
  const extra = Object.fromEntries(Object.entries(fields).filter(([k]) => !(ID_KEYS as readonly string[]).includes(k)));
  return { ...generationConfigFromModelConfig(fields, file), file, extra };
}

/**
 * Writes `dir`/generation_config.json with the ids and the other fields of `config`, keys sorted
 * as transformers writes them. One EOS id is written as a number, several as a list. A config
 * derived from config.json is marked `_from_model_config`, as transformers marks it.
 */
export function writeGenerationConfig(dir: string, config: GenerationConfig): void {
  const out: Record<string, unknown> = { ...config.extra };
  if (config.file === null) out._from_model_config = true;
  if (config.bosTokenId !== undefined) out.bos_token_id = config.bosTokenId;
  if (config.eosTokenIds.length)
    out.eos_token_id = config.eosTokenIds.length === 1 ? config.eosTokenIds[0] : config.eosTokenIds;
  if (config.padTokenId !== undefined) out.pad_token_id = config.padTokenId;
  const sorted = Object.fromEntries(Object.entries(out).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  writeJsonAtomic(join(dir, GENERATION_CONFIG_FILE), sorted);
}

/**
 * The ids generation stops on: the generation_config.json's EOS ids, or, where the model
 * directory had no such file (or it names none), the tokenizer's EOS token.
 */
export function stopTokenIds(config: GenerationConfig, tokenizerEosTokenId: number | undefined): number[] {
  if (config.file !== null && config.eosTokenIds.length) return [...config.eosTokenIds];
  return tokenizerEosTokenId === undefined ? [] : [tokenizerEosTokenId];
}
