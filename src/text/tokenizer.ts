// The Tokenizer the rest of omni-dpo relies on: a Hugging Face tokenizer directory
// (tokenizer.json, tokenizer_config.json, special_tokens_map.json, chat_template.jinja) behind a
// small stable API. Encoding and decoding are @huggingface/tokenizers (pure JavaScript, the
// tokenizers.js of transformers.js), which reads tokenizer.json as the Rust library does.
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Tokenizer as HfTokenizer } from "@huggingface/tokenizers";
import { renderChatTemplate, type ChatMessage, type RenderChatOptions } from "./chat-template.js";
import { ChatTemplateError, TokenizerError } from "./errors.js";
import { readJsonObject, readJsonObjectIfExists, readTextIfExists, type JsonObject } from "./json-files.js";
import { writeJsonAtomic } from "../util/files.js";
import { bosEosPostProcessor, rebuildsPostProcessor } from "./post-processor.js";
import {
  parseTokenizerConfig,
  SPECIAL_TOKEN_KEYS,
  type ParsedTokenizerConfig,
  type SpecialTokenKey,
} from "./tokenizer-config.js";

export interface EncodeOptions {
  /** Add what the post-processor adds (Llama: BOS; GPT-2: nothing). Default true, as transformers. */
  addSpecialTokens?: boolean;
}

export interface DecodeOptions {
  /** Drop special tokens (BOS, EOS, chat markers...). Default false. */
  skipSpecialTokens?: boolean;
  /** Tidy spaces before punctuation; default: tokenizer_config's clean_up_tokenization_spaces (else false). */
  cleanUpTokenizationSpaces?: boolean;
}

export interface ApplyChatTemplateOptions extends RenderChatOptions {
  /** A template name from tokenizer_config's list, or a template string; default: the tokenizer's. */
  chatTemplate?: string;
  /** Also tokenize the render (without adding special tokens: the template writes its own). */
  tokenize?: boolean;
}

export interface ChatEncoding {
  text: string;
  ids: number[];
}

/** What a tokenizer is built from: the contents of tokenizer.json and tokenizer_config.json. */
export interface TokenizerSource {
  tokenizerJson: JsonObject;
  tokenizerConfig?: JsonObject;
  specialTokensMap?: JsonObject;
  /** A chat_template.jinja, which wins over tokenizer_config's default template. */
  chatTemplateFile?: string;
  /** Named templates from additional_chat_templates/<name>.jinja. */
  additionalChatTemplates?: Record<string, string>;
  /** Where the files came from, for error messages. */
  dir?: string;
}

const TOKENIZER_JSON = "tokenizer.json";
const TOKENIZER_CONFIG = "tokenizer_config.json";
const SPECIAL_TOKENS_MAP = "special_tokens_map.json";
const CHAT_TEMPLATE_FILE = "chat_template.jinja";
const ADDITIONAL_TEMPLATES_DIR = "additional_chat_templates";

function missingTokenizerHint(dir: string): string {
  if (existsSync(join(dir, "tokenizer.model"))) {
    return (
      "found tokenizer.model: convert the SentencePiece model to tokenizer.json, e.g. in Python: " +
      "AutoTokenizer.from_pretrained(dir).save_pretrained(dir)"
    );
  }
  if (existsSync(join(dir, "vocab.json")) && existsSync(join(dir, "merges.txt"))) {
    return (
      "found vocab.json + merges.txt: convert them to tokenizer.json, e.g. in Python: " +
      "AutoTokenizer.from_pretrained(dir).save_pretrained(dir)"
    );
  }
  return existsSync(dir) ? "a Hugging Face tokenizer directory needs tokenizer.json" : "the directory does not exist";
}

function readSource(dir: string): TokenizerSource {
  const tokenizerJson = readJsonObject(join(dir, TOKENIZER_JSON), missingTokenizerHint(dir));
  const tokenizerConfig = readJsonObjectIfExists(join(dir, TOKENIZER_CONFIG));
  const specialTokensMap = readJsonObjectIfExists(join(dir, SPECIAL_TOKENS_MAP));
  const chatTemplateFile = readTextIfExists(join(dir, CHAT_TEMPLATE_FILE));
  const additionalChatTemplates: Record<string, string> = {};
  const extraDir = join(dir, ADDITIONAL_TEMPLATES_DIR);
  if (existsSync(extraDir)) {
    for (const name of readdirSync(extraDir).sort()) {
      if (name.endsWith(".jinja"))
        additionalChatTemplates[name.slice(0, -".jinja".length)] = readTextIfExists(join(extraDir, name))!;
    }
  }
  return {
    tokenizerJson,
    dir,
    ...(tokenizerConfig ? { tokenizerConfig } : {}),
    ...(specialTokensMap ? { specialTokensMap } : {}),
    ...(chatTemplateFile !== undefined ? { chatTemplateFile } : {}),
    additionalChatTemplates,
  };
}

/** A Hugging Face tokenizer: tokenizer.json for the text <-> ids mapping, tokenizer_config.json for the rest. */
export class Tokenizer {
  /** The directory it was loaded from, if any. */
  readonly dir: string | undefined;
  private readonly inner: HfTokenizer;
  private readonly tokenizerJson: JsonObject;
  private readonly rawConfig: JsonObject;
  private readonly parsed: ParsedTokenizerConfig;
  private readonly templates: Record<string, string>;
  /** The file each template by name came from, for errors. */
  private readonly templateFiles: Record<string, string>;
  private readonly specialIds: ReadonlySet<number>;
  private readonly size: number;
  private readonly boundaries: { bos: boolean; eos: boolean };

  /** Loads a tokenizer directory (tokenizer.json required; tokenizer_config.json and the rest optional). */
  static async fromPretrained(dir: string): Promise<Tokenizer> {
    return Tokenizer.fromPretrainedSync(dir);
  }

  /** fromPretrained without the promise. */
  static fromPretrainedSync(dir: string): Tokenizer {
    return new Tokenizer(readSource(dir));
  }

  /** Builds a tokenizer from file contents already in memory. */
  static fromJSON(tokenizerJson: JsonObject, tokenizerConfig: JsonObject = {}): Tokenizer {
    return new Tokenizer({ tokenizerJson, tokenizerConfig });
  }

  constructor(source: TokenizerSource) {
    this.dir = source.dir;
    const where = (file: string) => (source.dir ? join(source.dir, file) : file);
    const tj = source.tokenizerJson;
    if (typeof tj.model !== "object" || tj.model === null) {
      throw new TokenizerError(
        `${where(TOKENIZER_JSON)} has no "model" section: it is not a Hugging Face tokenizer.json`,
      );
    }
    if (tj.added_tokens !== undefined && !Array.isArray(tj.added_tokens)) {
      throw new TokenizerError(`${where(TOKENIZER_JSON)}: "added_tokens" must be a list`);
    }
    this.rawConfig = { ...(source.tokenizerConfig ?? {}) };
    this.parsed = parseTokenizerConfig(this.rawConfig, source.specialTokensMap, {
      config: where(TOKENIZER_CONFIG),
      specialTokensMap: where(SPECIAL_TOKENS_MAP),
    });
    this.templates = { ...this.parsed.chatTemplates, ...source.additionalChatTemplates };
    this.templateFiles = Object.fromEntries(
      Object.keys(this.templates).map((name) => [
        name,
        name in (source.additionalChatTemplates ?? {})
          ? where(join(ADDITIONAL_TEMPLATES_DIR, `${name}.jinja`))
          : where(TOKENIZER_CONFIG),
      ]),
    );
    if (source.chatTemplateFile !== undefined) {
      this.templates.default = source.chatTemplateFile;
      this.templateFiles.default = where(CHAT_TEMPLATE_FILE);
    }

    // The fields tokenizers.js requires, defaulted as the Rust library defaults them.
    const json: JsonObject = {
      normalizer: null,
      pre_tokenizer: null,
      post_processor: null,
      decoder: null,
      ...tj,
      added_tokens: tj.added_tokens ?? [],
    };
    if (rebuildsPostProcessor(this.parsed.tokenizerClass)) {
      const idIn = (token: string | undefined) => {
        if (token === undefined) return undefined;
        const added = (json.added_tokens as JsonObject[]).find((t) => t.content === token);
        const vocab = (json.model as JsonObject).vocab;
        const id = added ? added.id : vocab && !Array.isArray(vocab) ? (vocab as JsonObject)[token] : undefined;
        return typeof id === "number" ? { token, id } : undefined;
      };
      json.post_processor = bosEosPostProcessor(
        this.parsed.addBosToken ?? true,
        this.parsed.addEosToken ?? false,
        idIn(this.parsed.specialTokens.bos_token),
        idIn(this.parsed.specialTokens.eos_token),
        where(TOKENIZER_CONFIG),
      );
    }
    this.tokenizerJson = json;
    const libConfig: JsonObject = {
      clean_up_tokenization_spaces: this.parsed.cleanUpTokenizationSpaces,
      additional_special_tokens: this.parsed.additionalSpecialTokens,
      ...Object.fromEntries(Object.entries(this.parsed.specialTokens)),
    };
    for (const key of ["remove_space", "do_lowercase_and_remove_accent"]) {
      if (this.rawConfig[key] !== undefined) libConfig[key] = this.rawConfig[key];
    }
    try {
      this.inner = new HfTokenizer(json, libConfig);
    } catch (e) {
      throw new TokenizerError(`${where(TOKENIZER_JSON)}: cannot build the tokenizer: ${(e as Error).message}`, {
        cause: e,
      });
    }

    const vocab = this.inner.get_vocab(true);
    let size = 0;
    for (const id of vocab.values()) size = Math.max(size, id + 1);
    this.size = size;
    const special = new Set<number>();
    for (const [id, token] of this.inner.get_added_tokens_decoder()) if (token.special) special.add(id);
    for (const t of [...Object.values(this.parsed.specialTokens), ...this.parsed.additionalSpecialTokens]) {
      const id = this.inner.token_to_id(t);
      if (id !== undefined) special.add(id);
    }
    this.specialIds = special;
    const probe = this.encode("", { addSpecialTokens: true });
    this.boundaries = {
      bos: this.bosTokenId !== undefined && probe[0] === this.bosTokenId,
      eos:
        this.eosTokenId !== undefined &&
        probe.length > (probe[0] === this.bosTokenId ? 1 : 0) &&
        probe[probe.length - 1] === this.eosTokenId,
    };
  }

  // ----- encoding -----

  /** Token ids of `text`. Special tokens written in the text (e.g. "<|im_end|>") become their single ids. */
  encode(text: string, options: EncodeOptions = {}): number[] {
    if (typeof text !== "string") throw new TokenizerError(`encode expects a string, got ${typeof text}`);
    return this.inner.encode(text, { add_special_tokens: options.addSpecialTokens ?? true }).ids;
  }

  /** encode over a list of texts. */
  batchEncode(texts: readonly string[], options: EncodeOptions = {}): number[][] {
    return texts.map((t) => this.encode(t, options));
  }

  /** The token strings of `text` (without added BOS/EOS unless asked), for inspection. */
  tokenize(text: string, options: EncodeOptions = {}): string[] {
    return this.inner.tokenize(text, { add_special_tokens: options.addSpecialTokens ?? false });
  }

  /** The text of `ids`. Ids outside the vocabulary are skipped, as the Rust library does. */
  decode(ids: ArrayLike<number | bigint>, options: DecodeOptions = {}): string {
    const list: number[] = [];
    for (let i = 0; i < ids.length; i++) {
      const id = Number(ids[i]);
      if (!Number.isInteger(id))
        throw new TokenizerError(`decode expects integer ids, got ${String(ids[i])} at position ${i}`);
      if (
        id >= 0 &&
        this.inner.id_to_token(id) !== undefined &&
        !(options.skipSpecialTokens && this.specialIds.has(id))
      )
        list.push(id);
    }
    if (list.length === 0) return "";
    return this.inner.decode(list, {
      skip_special_tokens: options.skipSpecialTokens ?? false,
      clean_up_tokenization_spaces: options.cleanUpTokenizationSpaces ?? this.parsed.cleanUpTokenizationSpaces,
    });
  }

  /** decode over a list of id sequences. */
  batchDecode(batch: readonly ArrayLike<number | bigint>[], options: DecodeOptions = {}): string[] {
    return batch.map((ids) => this.decode(ids, options));
  }

  tokenToId(token: string): number | undefined {
    return this.inner.token_to_id(token);
  }

  idToToken(id: number): string | undefined {
    return this.inner.id_to_token(id);
  }

  /** Rows an embedding needs: the largest id plus one, added tokens included (transformers' len(tokenizer)). */
  get vocabSize(): number {
    return this.size;
  }

  // ----- special tokens -----

  get bosToken(): string | undefined {
    return this.parsed.specialTokens.bos_token;
  }
  get eosToken(): string | undefined {
    return this.parsed.specialTokens.eos_token;
  }
  get unkToken(): string | undefined {
    return this.parsed.specialTokens.unk_token;
  }
  /** The pad token; the EOS token when the config names none (the usual choice for preference training). */
  get padToken(): string | undefined {
    return this.parsed.specialTokens.pad_token ?? this.eosToken;
  }

  get bosTokenId(): number | undefined {
    return this.idOf(this.bosToken);
  }
  get eosTokenId(): number | undefined {
    return this.idOf(this.eosToken);
  }
  get unkTokenId(): number | undefined {
    return this.idOf(this.unkToken);
  }
  /** The pad token's id, falling back to EOS's as padToken does. */
  get padTokenId(): number | undefined {
    return this.idOf(this.padToken);
  }
  /** Whether the config names a pad token of its own (padToken falls back to EOS otherwise). */
  get hasOwnPadToken(): boolean {
    return this.parsed.specialTokens.pad_token !== undefined;
  }

  /** Whether encode(text) with special tokens starts with BOS (Llama: yes; GPT-2, Qwen2: no). */
  get addBosToken(): boolean {
    return this.boundaries.bos;
  }
  /** Whether encode(text) with special tokens ends with EOS. */
  get addEosToken(): boolean {
    return this.boundaries.eos;
  }

  /** The special tokens by name as templates see them (bos_token, eos_token, ..., additional_special_tokens). */
  get specialTokensMap(): Readonly<Record<string, string | readonly string[]>> {
    const out: Record<string, string | readonly string[]> = { ...this.parsed.specialTokens };
    if (this.parsed.additionalSpecialTokens.length > 0)
      out.additional_special_tokens = [...this.parsed.additionalSpecialTokens];
    return out;
  }

  /** Ids of every special token (added tokens marked special and the named special tokens), sorted. */
  get allSpecialIds(): number[] {
    return [...this.specialIds].sort((a, b) => a - b);
  }

  isSpecialId(id: number): boolean {
    return this.specialIds.has(id);
  }

  /** model_max_length from the config; Infinity when unset. */
  get modelMaxLength(): number {
    return this.parsed.modelMaxLength;
  }

  // ----- chat templates -----

  /** The default chat template, if the tokenizer has one. */
  get chatTemplate(): string | undefined {
    return this.templates.default;
  }

  /** All chat templates by name ("default" for the main one). */
  get chatTemplates(): Readonly<Record<string, string>> {
    return { ...this.templates };
  }

  /** Sets (or, with undefined, removes) a chat template; save() writes it. */
  setChatTemplate(template: string | undefined, name = "default"): void {
    delete this.templateFiles[name];
    if (template === undefined) delete this.templates[name];
    else this.templates[name] = template;
  }

  /**
   * Renders a conversation with the chat template, as transformers' apply_chat_template:
   * the template gets messages, add_generation_prompt, tools, documents, bos_token, eos_token
   * and the other special tokens. With `tokenize: true` also returns the ids (encoded without
   * adding special tokens, since the template writes them).
   */
  applyChatTemplate(
    messages: readonly ChatMessage[],
    options?: ApplyChatTemplateOptions & { tokenize?: false },
  ): string;
  applyChatTemplate(
    messages: readonly ChatMessage[],
    options: ApplyChatTemplateOptions & { tokenize: true },
  ): ChatEncoding;
  applyChatTemplate(messages: readonly ChatMessage[], options: ApplyChatTemplateOptions): string | ChatEncoding;
  applyChatTemplate(messages: readonly ChatMessage[], options: ApplyChatTemplateOptions = {}): string | ChatEncoding {
    const { template, source } = this.selectTemplate(options.chatTemplate, options.tools);
    const templateSource = options.templateSource ?? source;
    const text = renderChatTemplate(template, messages, this.specialTokensMap, { ...options, templateSource });
    return options.tokenize ? { text, ids: this.encode(text, { addSpecialTokens: false }) } : text;
  }

  /** The template to render with, and where it comes from (a file; "the tokenizer" when built in memory). */
  private selectTemplate(
    requested: string | undefined,
    tools: unknown[] | null | undefined,
  ): { template: string; source: string } {
    const named = (name: string) => ({
      template: this.templates[name]!,
      source: this.templateFiles[name] ?? (name === "default" ? "the tokenizer" : `the tokenizer's template "${name}"`),
    });
    if (requested !== undefined) {
      return this.templates[requested] !== undefined
        ? named(requested)
        : { template: requested, source: "the chatTemplate given" };
    }
    if (tools && this.templates.tool_use !== undefined) return named("tool_use");
    if (this.templates.default !== undefined) return named("default");
    const names = Object.keys(this.templates);
    const source = this.dir ? ` in ${this.dir}` : "";
    throw new ChatTemplateError(
      `this tokenizer has no chat template${source}` +
        (names.length > 0
          ? ` named "default" (it has: ${names.join(", ")}; pass one with { chatTemplate: name })`
          : "") +
        `. Supply one: applyChatTemplate(messages, { chatTemplate: "<jinja template>" }), tokenizer.setChatTemplate(template), ` +
        `or a "chat_template" field in ${TOKENIZER_CONFIG} (or a ${CHAT_TEMPLATE_FILE} file)`,
    );
  }

  // ----- saving -----

  /** Writes tokenizer.json, tokenizer_config.json and special_tokens_map.json into `dir` (created if needed). */
  async save(dir: string): Promise<void> {
    this.saveSync(dir);
  }

  /** save without the promise. */
  saveSync(dir: string): void {
    mkdirSync(dir, { recursive: true });
    writeJsonAtomic(join(dir, TOKENIZER_JSON), this.tokenizerJson);
    const config: JsonObject = { ...this.rawConfig };
    delete config.chat_template;
    const names = Object.keys(this.templates);
    if (names.length === 1 && names[0] === "default") config.chat_template = this.templates.default;
    else if (names.length > 0) config.chat_template = names.map((name) => ({ name, template: this.templates[name] }));
    for (const key of SPECIAL_TOKEN_KEYS) {
      const value = this.parsed.specialTokens[key as SpecialTokenKey];
      // Keep the config's own form (string or AddedToken object) when it names the same token.
      if (value === undefined) continue;
      const raw = config[key];
      const same =
        typeof raw === "string"
          ? raw === value
          : raw !== null && typeof raw === "object" && (raw as JsonObject).content === value;
      if (!same) config[key] = value;
    }
    if (this.parsed.additionalSpecialTokens.length > 0 && config.additional_special_tokens === undefined) {
      config.additional_special_tokens = [...this.parsed.additionalSpecialTokens];
    }
    writeJsonAtomic(join(dir, TOKENIZER_CONFIG), config);
    const map: JsonObject = { ...this.parsed.specialTokens };
    if (this.parsed.additionalSpecialTokens.length > 0)
      map.additional_special_tokens = [...this.parsed.additionalSpecialTokens];
    writeJsonAtomic(join(dir, SPECIAL_TOKENS_MAP), map);
    // A chat_template.jinja left in `dir` would win over the config's template when loading.
    const jinja = join(dir, CHAT_TEMPLATE_FILE);
    if (existsSync(jinja)) {
      if (this.templates.default !== undefined) writeFileSync(jinja, this.templates.default);
      else rmSync(jinja);
    }
  }

  private idOf(token: string | undefined): number | undefined {
    return token === undefined ? undefined : this.inner.token_to_id(token);
  }
}
