// tokenizer_config.json (and special_tokens_map.json) as Hugging Face transformers reads them:
// special tokens given as strings or as AddedToken objects ({"content": ...}), chat templates
// given as one string or as a list of {name, template}, and the flags that change encoding.
import { TokenizerError } from "./errors.js";
import type { JsonObject } from "./json-files.js";

/** The named special-token slots of a Hugging Face tokenizer, in transformers' order. */
export const SPECIAL_TOKEN_KEYS = [
  "bos_token",
  "eos_token",
  "unk_token",
  "sep_token",
  "pad_token",
  "cls_token",
  "mask_token",
] as const;
export type SpecialTokenKey = (typeof SPECIAL_TOKEN_KEYS)[number];

/** transformers' VERY_LARGE_INTEGER: model_max_length at or above it means "no limit". */
const NO_LIMIT = 1e29;

export interface ParsedTokenizerConfig {
  /** Special-token contents by slot; a slot that is unset or null is absent. */
  specialTokens: Partial<Record<SpecialTokenKey, string>>;
  additionalSpecialTokens: string[];
  /** Chat templates by name; a single template string is named "default". */
  chatTemplates: Record<string, string>;
  addBosToken?: boolean;
  addEosToken?: boolean;
  /** Whether decode tidies spaces before punctuation (transformers' default: false). */
  cleanUpTokenizationSpaces: boolean;
  /** model_max_length; Infinity when unset or transformers' "no limit" value. */
  modelMaxLength: number;
  tokenizerClass?: string;
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  return typeof value === "object"
    ? 'an object without a string "content"'
    : `${typeof value} ${JSON.stringify(value)}`;
}

/** A special token's text: the string itself, or the `content` of an AddedToken object; null/absent: undefined. */
export function tokenContent(value: unknown, where: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === "string") return value;
  if (typeof value === "object" && !Array.isArray(value) && typeof (value as JsonObject).content === "string") {
    return (value as JsonObject).content as string;
  }
  throw new TokenizerError(`${where}: expected a string or {"content": string}, found ${describe(value)}`);
}

/** chat_template as a string (named "default") or a list of {name, template}. */
export function parseChatTemplates(value: unknown, where: string): Record<string, string> {
  if (value === undefined || value === null) return {};
  if (typeof value === "string") return { default: value };
  if (Array.isArray(value)) {
    const out: Record<string, string> = {};
    value.forEach((entry, i) => {
      const e = entry as JsonObject | null;
      if (!e || typeof e !== "object" || typeof e.name !== "string" || typeof e.template !== "string") {
        throw new TokenizerError(`${where}: chat_template[${i}] must be {"name": string, "template": string}`);
      }
      out[e.name] = e.template;
    });
    return out;
  }
  throw new TokenizerError(
    `${where}: chat_template must be a string or a list of {"name", "template"}, found ${describe(value)}`,
  );
}

function optionalBoolean(config: JsonObject, key: string, where: string): boolean | undefined {
  const v = config[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "boolean") throw new TokenizerError(`${where}: ${key} must be true or false, found ${describe(v)}`);
  return v;
}

function tokenList(value: unknown, where: string): string[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw new TokenizerError(`${where}: additional_special_tokens must be a list`);
  return value.map((v, i) => {
    const s = tokenContent(v, `${where}: additional_special_tokens[${i}]`);
    if (s === undefined) throw new TokenizerError(`${where}: additional_special_tokens[${i}] is null`);
    return s;
  });
}

/**
 * Reads the fields this package uses from tokenizer_config.json. Values in special_tokens_map.json,
 * when given, win over the config's, as in transformers' from_pretrained.
 */
export function parseTokenizerConfig(
  config: JsonObject,
  specialTokensMap: JsonObject | undefined,
  files: { config: string; specialTokensMap?: string } = { config: "tokenizer_config.json" },
): ParsedTokenizerConfig {
  const specialTokens: Partial<Record<SpecialTokenKey, string>> = {};
  const mapFile = files.specialTokensMap ?? "special_tokens_map.json";
  for (const key of SPECIAL_TOKEN_KEYS) {
    const fromMap = specialTokensMap?.[key];
    const v =
      fromMap !== undefined && fromMap !== null
        ? tokenContent(fromMap, `${mapFile}: ${key}`)
        : tokenContent(config[key], `${files.config}: ${key}`);
    if (v !== undefined) specialTokens[key] = v;
  }
  const additional =
    specialTokensMap?.additional_special_tokens !== undefined
      ? tokenList(specialTokensMap.additional_special_tokens, mapFile)
      : tokenList(config.additional_special_tokens, files.config);
  const maxLen = config.model_max_length;
  const tokenizerClass = typeof config.tokenizer_class === "string" ? config.tokenizer_class : undefined;
  const clean = optionalBoolean(config, "clean_up_tokenization_spaces", files.config);
  return {
    specialTokens,
    additionalSpecialTokens: additional,
    chatTemplates: parseChatTemplates(config.chat_template, files.config),
    addBosToken: optionalBoolean(config, "add_bos_token", files.config),
    addEosToken: optionalBoolean(config, "add_eos_token", files.config),
    cleanUpTokenizationSpaces: clean ?? false,
    modelMaxLength: typeof maxLen === "number" && maxLen > 0 && maxLen < NO_LIMIT ? maxLen : Infinity,
    ...(tokenizerClass === undefined ? {} : { tokenizerClass }),
  };
}
