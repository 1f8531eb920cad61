// Writes small, self-made tokenizer directories (tokenizer.json + tokenizer_config.json) for
// tests: no tokenizer can be downloaded here, so tests build their own. Three kinds, each laid
// out as the real models lay theirs out:
//   writeByteLevelTokenizer  GPT-2 byte-level BPE (<|endoftext|>); with chatTemplate "chatml"
//                            the Qwen2 layout (<|im_start|>, <|im_end|>, Qwen2's ChatML template)
//   writeLlama2Tokenizer     SentencePiece-style BPE as Llama 2 (<unk>, <s>, </s>, <0x00>..<0xFF>
//                            byte fallback, BOS added by the post-processor)
//   writeLlama3Tokenizer     Llama 3 byte-level BPE (<|begin_of_text|>, header tokens, <|eot_id|>)
// Merges are learned by a tiny deterministic BPE trainer over a built-in corpus, so every file is
// the same on every run and loads in Hugging Face's own `tokenizers` unchanged.
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

// ---------------------------------------------------------------------------------------------
// Chat templates, as shipped in the models' tokenizer_config.json.

/** Qwen2 / Qwen2.5-style ChatML template (Qwen2-Instruct): default system prompt when none is given. */
export const CHATML_TEMPLATE =
  "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}" +
  "{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}{% endif %}" +
  "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}" +
  "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

/** Meta-Llama-3-8B-Instruct's template. */
export const LLAMA3_TEMPLATE =
  "{% set loop_messages = messages %}{% for message in loop_messages %}" +
  "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}" +
  "{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}";

/** Llama-2-chat's template (its `\\n` are Jinja string escapes, as in the original file). */
export const LLAMA2_TEMPLATE =
  "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}" +
  "{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}" +
  "{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}" +
  "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}" +
  "{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}" +
  "{% else %}{% set content = message['content'] %}{% endif %}" +
  "{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}" +
  "{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}";

export type ChatTemplateName = "chatml" | "llama3" | "llama2";

const NAMED_TEMPLATES: Record<ChatTemplateName, string> = {
  chatml: CHATML_TEMPLATE,
  llama3: LLAMA3_TEMPLATE,
  llama2: LLAMA2_TEMPLATE,
};

/** A named template's text; any other string is taken as the template itself. */
export function chatTemplateText(t: ChatTemplateName | string): string {
  return (NAMED_TEMPLATES as Record<string, string>)[t] ?? t;
}

// ---------------------------------------------------------------------------------------------
// What the writers return.

export interface WrittenTokenizer {
  /** The directory written. */
  dir: string;
  /** Rows an embedding needs: the largest id plus one (base vocabulary and added tokens). */
  vocabSize: number;
  /** Every added token (content -> id). */
  specialTokens: Record<string, number>;
  bosTokenId: number | null;
  eosTokenId: number;
  /** The pad token id the tokenizer_config names; null when it names none. */
  padTokenId: number | null;
  /** The chat template written to tokenizer_config.json, if any. */
  chatTemplate: string | null;
}

export interface TokenizerWriterOptions {
  /** "chatml", "llama3", "llama2" or a template string; written as tokenizer_config.chat_template. */
  chatTemplate?: ChatTemplateName | string;
  /** BPE merges to learn from the corpus (default 100; fewer only if the corpus runs out of pairs seen twice). */
  numMerges?: number;
  /** Extra corpus text for the merges. */
  corpus?: string;
  /** Fields merged over the generated tokenizer_config.json (null deletes a field). */
  config?: Record<string, unknown>;
  /** More special tokens, appended after the standard ones. */
  extraSpecialTokens?: string[];
}

/** A fresh empty directory under the OS temp dir. */
export function tempTokenizerDir(prefix = "omni-dpo-tok-"): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

// ---------------------------------------------------------------------------------------------
// The corpus the merges are learned from.

export const DEFAULT_CORPUS = [
  "The quick brown fox jumps over the lazy dog. The dog sleeps, the fox runs.",
  "Hello world! Hello there, how are you today? I am fine, thank you.",
  "What is 12 plus 30? The answer is 42. What is 7 times 6? It is also 42.",
  "A language model predicts the next token in the sequence of tokens.",
  "The assistant answers the question of the user with a helpful answer.",
  "Preference optimisation trains the policy on chosen and rejected responses.",
  "  indented line\n\tand a tab\n\nand two newlines; then the end of the text.",
  "Hello world. Hello again, world. The world is large and the sea is deep.",
  "You are a helpful assistant. The user asks and the assistant answers.",
  "There is a reason for everything: the model learns what the data shows.",
  "Is this answer correct? Yes, it is correct. No, that one is not correct.",
  "Some numbers: 1, 2, 3, 10, 20, 30, 100, 2024. Some words: apple, banana, cherry.",
  "She said that they would go there together, and then they went home.",
].join("\n");

// ---------------------------------------------------------------------------------------------
// A tiny BPE trainer: repeatedly merges the most frequent adjacent pair (ties: smallest pair).

function trainMerges(words: string[][], numMerges: number): [string, string][] {
  const counts = new Map<string, { symbols: string[]; n: number }>();
  for (const w of words) {
    const key = w.join("\u0000");
    const e = counts.get(key);
    if (e) e.n++;
    else counts.set(key, { symbols: [...w], n: 1 });
  }
  const entries = [...counts.values()];
  const merges: [string, string][] = [];
  while (merges.length < numMerges) {
    const pairs = new Map<string, number>();
    for (const { symbols, n } of entries) {
      for (let i = 0; i + 1 < symbols.length; i++) {
        const k = symbols[i] + "\u0000" + symbols[i + 1];
        pairs.set(k, (pairs.get(k) ?? 0) + n);
      }
    }
    let best: string | null = null;
    let bestN = 1; // a pair must occur at least twice
    for (const [k, n] of pairs) {
      if (n > bestN || (n === bestN && best !== null && k < best)) {
        best = k;
        bestN = n;
      }
    }
    if (best === null) break;
    const [a, b] = best.split("\u0000") as [string, string];
    merges.push([a, b]);
    for (const e of entries) {
      const out: string[] = [];
      for (let i = 0; i < e.symbols.length; i++) {
        if (i + 1 < e.symbols.length && e.symbols[i] === a && e.symbols[i + 1] === b) {
          out.push(a + b);
          i++;
        } else out.push(e.symbols[i]!);
      }
      e.symbols = out;
    }
  }
  return merges;
}

// GPT-2's reversible byte -> printable character map, and its vocabulary order for the 256 bytes.
function bytesToUnicode(): { order: number[]; map: string[] } {
  const bs: number[] = [];
  for (let b = 33; b <= 126; b++) bs.push(b);
  for (let b = 161; b <= 172; b++) bs.push(b);
  for (let b = 174; b <= 255; b++) bs.push(b);
  const cs = [...bs];
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n++);
    }
  }
  const map = new Array<string>(256);
  bs.forEach((b, i) => (map[b] = String.fromCodePoint(cs[i]!)));
  return { order: bs, map };
}

const GPT2_PATTERN = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;
/** Llama 3's pre-tokenizer regex, as in its tokenizer.json (Oniguruma syntax). */
export const LLAMA3_SPLIT_REGEX =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
/** Qwen2's pre-tokenizer regex (single digits). */
export const QWEN2_SPLIT_REGEX =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
// The same two as JavaScript regexes, for splitting the training corpus.
const LLAMA3_JS =
  /'(?:[sSdDmMtT]|[lL][lL]|[vV][eE]|[rR][eE])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+/gu;
const QWEN2_JS =
  /'(?:[sSdDmMtT]|[lL][lL]|[vV][eE]|[rR][eE])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+/gu;

function byteLevelVocab(corpus: string, split: RegExp, numMerges: number) {
  const { order, map } = bytesToUnicode();
  const enc = new TextEncoder();
  const words = (corpus.match(split) ?? []).map((w) => [...enc.encode(w)].map((b) => map[b]!));
  const merges = trainMerges(words, numMerges);
  const vocab: Record<string, number> = {};
  let next = 0;
  for (const b of order) vocab[map[b]!] = next++;
  for (const [a, b] of merges) if (!(a + b in vocab)) vocab[a + b] = next++;
  return { vocab, merges, size: next };
}

function addedToken(id: number, content: string, special = true) {
  return { id, content, single_word: false, lstrip: false, rstrip: false, normalized: !special, special };
}

function addedTokensDecoder(tokens: { id: number; content: string; special: boolean }[]) {
  const out: Record<string, unknown> = {};
  for (const t of tokens) {
    out[String(t.id)] = {
      content: t.content,
      lstrip: false,
      normalized: !t.special,
      rstrip: false,
      single_word: false,
      special: t.special,
    };
  }
  return out;
}

function writeDir(
  dir: string,
  tokenizer: unknown,
  config: Record<string, unknown>,
  overrides?: Record<string, unknown>,
) {
  mkdirSync(dir, { recursive: true });
  const cfg: Record<string, unknown> = { ...config };
  for (const [k, v] of Object.entries(overrides ?? {})) {
    if (v === null) delete cfg[k];
    else cfg[k] = v;
  }
  writeFileSync(join(dir, "tokenizer.json"), JSON.stringify(tokenizer, null, 2) + "\n");
  writeFileSync(join(dir, "tokenizer_config.json"), JSON.stringify(cfg, null, 2) + "\n");
  return cfg;
}

function byteLevelDecoder() {
  return { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true };
}

function bpeModel(
  vocab: Record<string, number>,
  merges: [string, string][],
  arrays: boolean,
  extra: Record<string, unknown> = {},
) {
  return {
    type: "BPE",
    dropout: null,
    unk_token: null,
    continuing_subword_prefix: null,
    end_of_word_suffix: null,
    fuse_unk: false,
    byte_fallback: false,
    ...extra,
    vocab,
    merges: arrays ? merges : merges.map(([a, b]) => `${a} ${b}`),
  };
}

// ---------------------------------------------------------------------------------------------
// (a) GPT-2 byte-level BPE; with chatTemplate "chatml" the Qwen2 layout; "llama3" gives Llama 3.

/**
 * A byte-level BPE tokenizer. Without a chat template: GPT-2 (<|endoftext|> is bos, eos and unk;
 * no pad; no BOS added). With `chatTemplate: "chatml"`: Qwen2 (Split + ByteLevel pre-tokenizer,
 * NFC, <|endoftext|> <|im_start|> <|im_end|>; eos <|im_end|>, pad <|endoftext|>, no bos).
 * With `chatTemplate: "llama3"`: the same as writeLlama3Tokenizer. Any other string is written
 * as the template of a GPT-2 layout.
 */
export function writeByteLevelTokenizer(dir: string, options: TokenizerWriterOptions = {}): WrittenTokenizer {
  if (options.chatTemplate === "llama3") return writeLlama3Tokenizer(dir, options);
  const chatml = options.chatTemplate === "chatml";
  const corpus = DEFAULT_CORPUS + (options.corpus ? "\n" + options.corpus : "");
  const { vocab, merges, size } = byteLevelVocab(corpus, chatml ? QWEN2_JS : GPT2_PATTERN, options.numMerges ?? 100);
  const specials = [
    chatml ? ["<|endoftext|>", "<|im_start|>", "<|im_end|>"] : ["<|endoftext|>"],
    options.extraSpecialTokens ?? [],
  ].flat();
  const added = specials.map((s, i) => addedToken(size + i, s));
  const ids = Object.fromEntries(added.map((t) => [t.content, t.id]));
  const template = options.chatTemplate === undefined ? null : chatTemplateText(options.chatTemplate);
  const tokenizer = chatml
    ? {
        version: "1.0",
        truncation: null,
        padding: null,
        added_tokens: added,
        normalizer: { type: "NFC" },
        pre_tokenizer: {
          type: "Sequence",
          pretokenizers: [
            { type: "Split", pattern: { Regex: QWEN2_SPLIT_REGEX }, behavior: "Isolated", invert: false },
            { type: "ByteLevel", add_prefix_space: false, trim_offsets: false, use_regex: false },
          ],
        },
        post_processor: { type: "ByteLevel", add_prefix_space: false, trim_offsets: false, use_regex: false },
        decoder: { type: "ByteLevel", add_prefix_space: false, trim_offsets: false, use_regex: false },
        model: bpeModel(vocab, merges, true, { ignore_merges: false }),
      }
    : {
        // GPT-2 keeps <|endoftext|> in its base vocabulary as well.
        version: "1.0",
        truncation: null,
        padding: null,
        added_tokens: added,
        normalizer: null,
        pre_tokenizer: { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true },
        post_processor: { type: "ByteLevel", add_prefix_space: true, trim_offsets: false, use_regex: true },
        decoder: byteLevelDecoder(),
        model: bpeModel({ ...vocab, ...ids }, merges, false, { continuing_subword_prefix: "", end_of_word_suffix: "" }),
      };
  const config: Record<string, unknown> = chatml
    ? {
        add_prefix_space: false,
        added_tokens_decoder: addedTokensDecoder(added),
        additional_special_tokens: ["<|im_start|>", "<|im_end|>"],
        bos_token: null,
        chat_template: template,
        clean_up_tokenization_spaces: false,
        eos_token: "<|im_end|>",
        errors: "replace",
        model_max_length: 32768,
        pad_token: "<|endoftext|>",
        split_special_tokens: false,
        tokenizer_class: "Qwen2Tokenizer",
        unk_token: null,
      }
    : {
        add_prefix_space: false,
        bos_token: "<|endoftext|>",
        eos_token: "<|endoftext|>",
        unk_token: "<|endoftext|>",
        model_max_length: 1024,
        tokenizer_class: "GPT2Tokenizer",
        ...(template === null ? {} : { chat_template: template }),
      };
  const cfg = writeDir(dir, tokenizer, config, options.config);
  return summary(
    dir,
    added,
    size,
    cfg,
    chatml ? null : ids["<|endoftext|>"]!,
    ids[chatml ? "<|im_end|>" : "<|endoftext|>"]!,
    chatml ? ids["<|endoftext|>"]! : null,
  );
}

function summary(
  dir: string,
  added: { id: number; content: string }[],
  baseSize: number,
  cfg: Record<string, unknown>,
  bos: number | null,
  eos: number,
  pad: number | null,
): WrittenTokenizer {
  const specialTokens = Object.fromEntries(added.map((t) => [t.content, t.id]));
  const vocabSize = Math.max(baseSize, ...added.map((t) => t.id + 1));
  const chatTemplate = typeof cfg.chat_template === "string" ? cfg.chat_template : null;
  return { dir, vocabSize, specialTokens, bosTokenId: bos, eosTokenId: eos, padTokenId: pad, chatTemplate };
}

// ---------------------------------------------------------------------------------------------
// (c) Llama 3 byte-level BPE.

/**
 * A Llama-3-style tokenizer: Split(Llama 3 regex) + ByteLevel, ignore_merges, BOS
 * <|begin_of_text|> added by a TemplateProcessing post-processor; special tokens
 * <|begin_of_text|> <|end_of_text|> <|start_header_id|> <|end_header_id|> <|eot_id|>;
 * eos <|eot_id|> (as the Instruct model), no pad. Chat template: Llama 3's unless another is given.
 */
export function writeLlama3Tokenizer(dir: string, options: TokenizerWriterOptions = {}): WrittenTokenizer {
  const corpus = DEFAULT_CORPUS + (options.corpus ? "\n" + options.corpus : "");
  const { vocab, merges, size } = byteLevelVocab(corpus, LLAMA3_JS, options.numMerges ?? 100);
  const specials = [
    "<|begin_of_text|>",
    "<|end_of_text|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eot_id|>",
    ...(options.extraSpecialTokens ?? []),
  ];
  const added = specials.map((s, i) => addedToken(size + i, s));
  const bos = added[0]!.id;
  const tokenizer = {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: null,
    pre_tokenizer: {
      type: "Sequence",
      pretokenizers: [
        { type: "Split", pattern: { Regex: LLAMA3_SPLIT_REGEX }, behavior: "Isolated", invert: false },
        { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: false },
      ],
    },
    post_processor: {
      type: "Sequence",
      processors: [
        { type: "ByteLevel", add_prefix_space: true, trim_offsets: false, use_regex: true },
        {
          type: "TemplateProcessing",
          single: [{ SpecialToken: { id: "<|begin_of_text|>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }],
          pair: [
            { SpecialToken: { id: "<|begin_of_text|>", type_id: 0 } },
            { Sequence: { id: "A", type_id: 0 } },
            { SpecialToken: { id: "<|begin_of_text|>", type_id: 1 } },
            { Sequence: { id: "B", type_id: 1 } },
          ],
          special_tokens: {
            "<|begin_of_text|>": { id: "<|begin_of_text|>", ids: [bos], tokens: ["<|begin_of_text|>"] },
          },
        },
      ],
    },
    decoder: byteLevelDecoder(),
    model: bpeModel(vocab, merges, false, { ignore_merges: true }),
  };
  const template = chatTemplateText(options.chatTemplate ?? "llama3");
  const config = {
    added_tokens_decoder: addedTokensDecoder(added),
    bos_token: "<|begin_of_text|>",
    chat_template: template,
    clean_up_tokenization_spaces: false,
    eos_token: "<|eot_id|>",
    model_input_names: ["input_ids", "attention_mask"],
    model_max_length: 1000000000000000019884624838656,
    tokenizer_class: "PreTrainedTokenizerFast",
  };
  const cfg = writeDir(dir, tokenizer, config, options.config);
  return summary(dir, added, size, cfg, bos, added[4]!.id, null);
}

// ---------------------------------------------------------------------------------------------
// (b) Llama 2 SentencePiece-style BPE.

export interface Llama2WriterOptions extends TokenizerWriterOptions {
  /**
   * "legacy" (default): Llama 2's own file, a Prepend("▁") + Replace(" " -> "▁") normalizer and no
   * pre-tokenizer. "metaspace": the newer layout (tokenizers >= 0.14, Mistral, legacy=false
   * Llama) with a Metaspace pre-tokenizer, prepend_scheme "first".
   */
  layout?: "legacy" | "metaspace";
}

/**
 * A Llama-2-style tokenizer: <unk>=0, <s>=1, </s>=2, byte tokens <0x00>..<0xFF> = 3..258, then
 * merged pieces and single characters; byte_fallback for anything else (newlines, accents,
 * emoji, CJK). BOS added by the post-processor; tokenizer_config in Llama 2's form with
 * AddedToken objects ({"__type": "AddedToken", "content": ...}) for the special tokens, no pad.
 * Chat template: only when asked for (`chatTemplate: "llama2"` is Llama-2-chat's).
 */
export function writeLlama2Tokenizer(dir: string, options: Llama2WriterOptions = {}): WrittenTokenizer {
  const corpus = DEFAULT_CORPUS + (options.corpus ? "\n" + options.corpus : "");
  const normalized = ("\u2581" + corpus).replaceAll(" ", "\u2581");
  // Newlines and tabs stay byte-fallback tokens, so no merge may contain them.
  const words = normalized
    .split(/[\n\t]/)
    .map((line) => (line.startsWith("\u2581") ? line : "\u2581" + line))
    .flatMap((line) => line.match(/\u2581[^\u2581]*|[^\u2581]+/gu) ?? [])
    .map((w) => [...w]);
  const merges = trainMerges(words, options.numMerges ?? 100);
  const vocab: Record<string, number> = { "<unk>": 0, "<s>": 1, "</s>": 2 };
  let next = 3;
  for (let b = 0; b < 256; b++) vocab[`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`] = next++;
  for (const [a, b] of merges) if (!(a + b in vocab)) vocab[a + b] = next++;
  // Single characters come last, as in Llama's vocabulary; newline and tab are left to bytes.
  const chars = [...new Set([...("\u2581" + normalized)])].filter((c) => c !== "\n" && c !== "\t").sort();
  for (const c of chars) if (!(c in vocab)) vocab[c] = next++;
  const base = next;
  const added = [addedToken(0, "<unk>"), addedToken(1, "<s>"), addedToken(2, "</s>")];
  for (const s of options.extraSpecialTokens ?? []) added.push(addedToken(next++, s));
  const legacy = (options.layout ?? "legacy") === "legacy";
  const tokenizer = {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: legacy
      ? {
          type: "Sequence",
          normalizers: [
            { type: "Prepend", prepend: "\u2581" },
            { type: "Replace", pattern: { String: " " }, content: "\u2581" },
          ],
        }
      : null,
    pre_tokenizer: legacy ? null : { type: "Metaspace", replacement: "\u2581", prepend_scheme: "first", split: false },
    post_processor: {
      type: "TemplateProcessing",
      single: [{ SpecialToken: { id: "<s>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }],
      pair: [
        { SpecialToken: { id: "<s>", type_id: 0 } },
        { Sequence: { id: "A", type_id: 0 } },
        { SpecialToken: { id: "<s>", type_id: 1 } },
        { Sequence: { id: "B", type_id: 1 } },
      ],
      special_tokens: { "<s>": { id: "<s>", ids: [1], tokens: ["<s>"] } },
    },
    decoder: {
      type: "Sequence",
      decoders: [
        { type: "Replace", pattern: { String: "\u2581" }, content: " " },
        { type: "ByteFallback" },
        { type: "Fuse" },
        { type: "Strip", content: " ", start: 1, stop: 0 },
      ],
    },
    model: bpeModel(vocab, merges, false, { unk_token: "<unk>", fuse_unk: true, byte_fallback: true }),
  };
  const tok = (content: string) => ({
    __type: "AddedToken",
    content,
    lstrip: false,
    normalized: false,
    rstrip: false,
    single_word: false,
  });
  const config: Record<string, unknown> = {
    add_bos_token: true,
    add_eos_token: false,
    bos_token: tok("<s>"),
    clean_up_tokenization_spaces: false,
    eos_token: tok("</s>"),
    legacy: legacy,
    model_max_length: 1000000000000000019884624838656,
    pad_token: null,
    sp_model_kwargs: {},
    tokenizer_class: "LlamaTokenizer",
    unk_token: tok("<unk>"),
  };
  if (options.chatTemplate !== undefined) config.chat_template = chatTemplateText(options.chatTemplate);
  const cfg = writeDir(dir, tokenizer, config, options.config);
  return summary(dir, added, base, cfg, 1, 2, null);
}
