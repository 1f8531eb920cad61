// The task's tokenizer: one token per character of the task's alphabet, plus <pad> <s> </s> <unk>,
// in Hugging Face's tokenizer.json form (a BPE model without merges, no pre-tokenizer, a Fuse
// decoder so decode(encode(x)) === x with spaces kept; BOS added by a TemplateProcessing
// post-processor, no EOS added). It loads in @huggingface/tokenizers and in transformers alike.
import { Tokenizer } from "../../../src/text/index.js";
import type { JsonObject } from "../../../src/text/json-files.js";

/** Special tokens, ids 0..3 in this order. */
export const ARITH_SPECIAL_TOKENS = { pad: "<pad>", bos: "<s>", eos: "</s>", unk: "<unk>" } as const;

/** Every character the task writes: prompts "Q:47+85=", steps "7+5+0=12 12-7-0=5 7*6+0=42 P=282 A=-35", ".". */
export const ARITH_ALPHABET: readonly string[] = [..." +-*.:=0123456789APQ"];

/** tokenizer.json and tokenizer_config.json of the task's tokenizer, as objects. */
export function arithTokenizerFiles(): { tokenizerJson: JsonObject; tokenizerConfig: JsonObject } {
  const specials = [
    ARITH_SPECIAL_TOKENS.pad,
    ARITH_SPECIAL_TOKENS.bos,
    ARITH_SPECIAL_TOKENS.eos,
    ARITH_SPECIAL_TOKENS.unk,
  ];
  const vocab: Record<string, number> = {};
  for (const token of [...specials, ...ARITH_ALPHABET]) vocab[token] = Object.keys(vocab).length;
  const added = specials.map((content, id) => ({
    id,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  }));
  const bos = ARITH_SPECIAL_TOKENS.bos;
  const tokenizerJson: JsonObject = {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: null,
    pre_tokenizer: null,
    post_processor: {
      type: "TemplateProcessing",
      single: [{ SpecialToken: { id: bos, type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }],
      pair: [
        { SpecialToken: { id: bos, type_id: 0 } },
        { Sequence: { id: "A", type_id: 0 } },
        { SpecialToken: { id: bos, type_id: 1 } },
        { Sequence: { id: "B", type_id: 1 } },
      ],
      special_tokens: { [bos]: { id: bos, ids: [vocab[bos]!], tokens: [bos] } },
    },
    decoder: { type: "Fuse" },
    model: {
      type: "BPE",
      dropout: null,
      unk_token: ARITH_SPECIAL_TOKENS.unk,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      vocab,
      merges: [],
    },
  };
  const addedTokensDecoder: JsonObject = {};
  for (const t of added) {
    addedTokensDecoder[String(t.id)] = {
      content: t.content,
      lstrip: false,
      normalized: false,
      rstrip: false,
      single_word: false,
      special: true,
    };
  }
  const tokenizerConfig: JsonObject = {
    add_bos_token: true,
    add_eos_token: false,
    added_tokens_decoder: addedTokensDecoder,
    bos_token: ARITH_SPECIAL_TOKENS.bos,
    eos_token: ARITH_SPECIAL_TOKENS.eos,
    pad_token: ARITH_SPECIAL_TOKENS.pad,
    unk_token: ARITH_SPECIAL_TOKENS.unk,
    clean_up_tokenization_spaces: false,
    model_max_length: 512,
    padding_side: "right",
    tokenizer_class: "PreTrainedTokenizerFast",
  };
  return { tokenizerJson, tokenizerConfig };
}

/** The task's tokenizer, built in memory. */
export function arithTokenizer(): Tokenizer {
  const { tokenizerJson, tokenizerConfig } = arithTokenizerFiles();
  return Tokenizer.fromJSON(tokenizerJson, tokenizerConfig);
}

/** Writes the task's tokenizer into `dir` (tokenizer.json, tokenizer_config.json, special_tokens_map.json) and returns it. */
export function writeArithTokenizer(dir: string): Tokenizer {
  const tokenizer = arithTokenizer();
  tokenizer.saveSync(dir);
  return tokenizer;
}
