// transformers' LlamaTokenizerFast (and CodeLlama, Gemma) rebuild the post-processor of
// tokenizer.json from tokenizer_config's add_bos_token / add_eos_token (defaults true / false)
// when they load. This does the same, so such a config encodes here as it does in Python.
import { TokenizerError } from "./errors.js";
import type { JsonObject } from "./json-files.js";

const REBUILDING_CLASSES = new Set([
  "LlamaTokenizer",
  "LlamaTokenizerFast",
  "CodeLlamaTokenizer",
  "CodeLlamaTokenizerFast",
  "GemmaTokenizer",
  "GemmaTokenizerFast",
]);

/** Whether transformers rebuilds the post-processor for this tokenizer_class. */
export function rebuildsPostProcessor(tokenizerClass: string | undefined): boolean {
  return tokenizerClass !== undefined && REBUILDING_CLASSES.has(tokenizerClass);
}

interface Special {
  token: string;
  id: number;
}

/** TemplateProcessing that adds `bos` before and/or `eos` after each sequence, as LlamaTokenizerFast.update_post_processor. */
export function bosEosPostProcessor(
  addBos: boolean,
  addEos: boolean,
  bos: Special | undefined,
  eos: Special | undefined,
  where: string,
): JsonObject {
  if (addBos && !bos)
    throw new TokenizerError(`${where}: add_bos_token is true but the tokenizer has no bos_token in its vocabulary`);
  if (addEos && !eos)
    throw new TokenizerError(`${where}: add_eos_token is true but the tokenizer has no eos_token in its vocabulary`);
  const piece = (s: Special, typeId: number) => ({ SpecialToken: { id: s.token, type_id: typeId } });
  const seq = (id: "A" | "B", typeId: number) => ({ Sequence: { id, type_id: typeId } });
  const around = (id: "A" | "B", typeId: number) => [
    ...(addBos ? [piece(bos!, typeId)] : []),
    seq(id, typeId),
    ...(addEos ? [piece(eos!, typeId)] : []),
  ];
  const specials: JsonObject = {};
  if (addBos) specials[bos!.token] = { id: bos!.token, ids: [bos!.id], tokens: [bos!.token] };
  if (addEos) specials[eos!.token] = { id: eos!.token, ids: [eos!.id], tokens: [eos!.token] };
  return {
    type: "TemplateProcessing",
    single: around("A", 0),
    pair: [...around("A", 0), ...around("B", 1)],
    special_tokens: specials,
  };
}
