// Turning preference records into token ids exactly as the reference does (TRL's DPO
// tokenize_row, after the chat formatting of chat-format.ts): the prompt/answer boundary, BOS and
// EOS, truncation to max_length / max_prompt_length, and label masking of the prompt.
import type { Tokenizer } from "../text/index.js";
import { formatRecord, RenderingComparison, type ChatRendering, type FormattedPair } from "./chat-format.js";
import { DataError, mapRecords, where, type PreferenceRecord } from "./records.js";

export { formatRecord, type ChatRendering, type FormattedPair } from "./chat-format.js";

export const LABEL_PAD = -100;

export interface TokenizeOptions {
  maxLength: number;
  maxPromptLength: number;
  truncationMode: "keep_end" | "keep_start";
  /** Tokens kept of each answer (its start, EOS included), before max_length applies, as TRL's max_completion_length. */
  maxCompletionLength?: number;
  /** A Jinja chat template that replaces the tokenizer's own for conversational records. */
  chatTemplate?: string;
  /** Where chatTemplate comes from (e.g. "recipe.yaml: chat_template"), named in its errors. */
  chatTemplateSource?: string;
  /** How conversational records become text (chat-format.ts; default "trl"). */
  chatRendering?: ChatRendering;
  /** Told, once per call, when some records would render differently the other way. */
  onWarning?: (message: string) => void;
}

/** The reference's defaults (TRL DPOConfig). */
export const TOKENIZE_DEFAULTS: TokenizeOptions = { maxLength: 512, maxPromptLength: 128, truncationMode: "keep_end" };

export interface TokenizedPair {
  chosenInputIds: number[];
  chosenLabels: number[];
  rejectedInputIds: number[];
  rejectedLabels: number[];
  /** Prompt tokens kept (after truncation), and whether truncation cut anything. */
  promptLength: number;
  truncated: boolean;
  scoreChosen?: number;
  scoreRejected?: number;
  /** The record's `margin` (reward-model training). */
  margin?: number;
}

interface Answer {
  promptIds: number[];
  answerIds: number[];
}

/**
 * Tokenises prompt + answer together and splits at the prompt's length; when the tokenizer
 * merged the prompt's last token with the answer's first, the boundary moves back by one.
 */
function tokenizeAnswer(tokenizer: Tokenizer, prompt: string, answer: string, promptIds: number[]): Answer {
  const full = tokenizer.encode(prompt + answer, { addSpecialTokens: false });
  let start = promptIds.length;
  for (let i = 0; i < start; i++) {
    if (full[i] !== promptIds[i]) {
      start -= 1;
      break;
    }
  }
  return { promptIds: full.slice(0, start), answerIds: full.slice(start) };
}

/**
 * Characters per token assumed when bounding text before tokenising. Over hundreds of tokens no
 * vocabulary averages anywhere near 64 characters a token, so the text of a field beyond
 * max_length x 64 characters is cut by truncation anyway; tokenising it would only cost memory
 * (a 50 MB field is millions of token ids) for ids that are thrown away.
 */
export const CHARS_PER_TOKEN_BOUND = 64;

/**
 * The pair with every field cut to what max_length can keep, so that tokenising it gives the
 * same ids as tokenising the whole text and truncating. A field longer than
 * maxLength x CHARS_PER_TOKEN_BOUND characters keeps pieces of that many characters: an answer
 * its start (truncation keeps an answer's first tokens); a prompt its start and its end, joined
 * (keep_start keeps the first prompt tokens, keep_end the last, and the answer's boundary is
 * tokenised against the prompt's real end; the tokens at the join are in the part truncation
 * drops). Each piece must tokenise to at least 2 x maxLength tokens on its own, so every token
 * kept lies at least maxLength tokens from a cut and the same truncation applies; when a piece
 * falls short (very long tokens), the pieces double until it does or the field is whole.
 */
export function boundPair(
  pair: FormattedPair,
  tokenizer: Tokenizer,
  maxLength: number,
): { pair: FormattedPair; cut: boolean } {
  const prompt = boundField(pair.prompt, true, tokenizer, maxLength);
  const chosen = boundField(pair.chosen, false, tokenizer, maxLength);
  const rejected = boundField(pair.rejected, false, tokenizer, maxLength);
  const cut = prompt !== pair.prompt || chosen !== pair.chosen || rejected !== pair.rejected;
  return { pair: cut ? { prompt, chosen, rejected } : pair, cut };
}

function boundField(text: string, bothEnds: boolean, tokenizer: Tokenizer, maxLength: number): string {
  const enough = (piece: string) => tokenizer.encode(piece, { addSpecialTokens: false }).length >= 2 * maxLength;
  for (let chars = maxLength * CHARS_PER_TOKEN_BOUND; (bothEnds ? 2 * chars : chars) < text.length; chars *= 2) {
    const pieces = bothEnds ? [head(text, chars), tail(text, chars)] : [head(text, chars)];
    if (pieces.every(enough)) return pieces.join("");
  }
  return text;
}

/** The first `chars` UTF-16 units of `text`, one fewer rather than half a surrogate pair. */
function head(text: string, chars: number): string {
  const code = text.charCodeAt(chars - 1);
  return text.slice(0, code >= 0xd800 && code <= 0xdbff ? chars - 1 : chars);
}

/** The last `chars` UTF-16 units of `text`, one fewer rather than half a surrogate pair. */
function tail(text: string, chars: number): string {
  const start = text.length - chars;
  const code = text.charCodeAt(start);
  return text.slice(code >= 0xdc00 && code <= 0xdfff ? start + 1 : start);
}

/**
 * One pair's ids and labels, following TRL's DPOTrainer.tokenize_row step by step. Fields far
 * longer than max_length are cut first (boundPair), with the same result.
 */
export function tokenizePair(
  whole: FormattedPair,
  tokenizer: Tokenizer,
  options: TokenizeOptions,
  at = "record",
): TokenizedPair {
  const { maxLength, maxPromptLength, truncationMode } = options;
  const pair = boundPair(whole, tokenizer, maxLength).pair;
  const promptOnly = tokenizer.encode(pair.prompt, { addSpecialTokens: false });
  const chosen = tokenizeAnswer(tokenizer, pair.prompt, pair.chosen, promptOnly);
  const rejected = tokenizeAnswer(tokenizer, pair.prompt, pair.rejected, promptOnly);

  const differing = chosen.promptIds.reduce(
    (n, id, i) => n + (i < rejected.promptIds.length && id !== rejected.promptIds[i] ? 1 : 0),
    0,
  );
  if (differing > 1 || Math.abs(chosen.promptIds.length - rejected.promptIds.length) > 1) {
    throw new DataError([`${at}: chosen and rejected prompts tokenise differently beyond their last token`]);
  }

  const bos = tokenizer.bosTokenId;
  const eos = tokenizer.eosTokenId;
  if (eos === undefined) throw new DataError(["tokenizer has no eos_token; set one in tokenizer_config.json"]);
  // BOS goes in front of both prompts unless the (shorter) prompt already starts with it.
  const shared = promptOnly.slice(0, Math.min(chosen.promptIds.length, rejected.promptIds.length));
  const addBos = bos !== undefined && (shared.length === 0 || shared[0] !== bos);
  for (const a of [chosen, rejected]) {
    if (addBos) a.promptIds = [bos!, ...a.promptIds];
    if (a.answerIds.length === 0 || a.answerIds[a.answerIds.length - 1] !== eos) a.answerIds = [...a.answerIds, eos];
  }
  let cut = false;
  if (options.maxCompletionLength !== undefined) {
    for (const a of [chosen, rejected]) {
      if (a.answerIds.length > options.maxCompletionLength) {
        a.answerIds = a.answerIds.slice(0, options.maxCompletionLength);
        cut = true;
      }
    }
  }

  const longer = Math.max(chosen.answerIds.length, rejected.answerIds.length);
  let truncated = cut;
  for (const a of [chosen, rejected]) {
    if (a.promptIds.length + longer > maxLength) {
      a.promptIds =
        truncationMode === "keep_start" ? a.promptIds.slice(0, maxPromptLength) : a.promptIds.slice(-maxPromptLength);
      truncated = true;
    }
  }
  for (const a of [chosen, rejected]) {
    if (a.promptIds.length + longer > maxLength) {
      a.answerIds = a.answerIds.slice(0, maxLength - maxPromptLength);
      truncated = true;
    }
  }

  const sequence = (a: Answer) => ({
    ids: [...a.promptIds, ...a.answerIds],
    labels: [...new Array(a.promptIds.length).fill(LABEL_PAD), ...a.answerIds],
  });
  const c = sequence(chosen);
  const r = sequence(rejected);
  return {
    chosenInputIds: c.ids,
    chosenLabels: c.labels,
    rejectedInputIds: r.ids,
    rejectedLabels: r.labels,
    promptLength: chosen.promptIds.length,
    truncated,
  };
}

/**
 * Formats and tokenises every record; problems name the record's file and line. With onWarning,
 * each conversational record is rendered the other way too, and the records that differ are
 * reported in one warning.
 */
export function tokenizeRecords(
  records: PreferenceRecord[],
  tokenizer: Tokenizer,
  options: TokenizeOptions,
): TokenizedPair[] {
  const rendering = options.chatRendering ?? "trl";
  const comparison = options.onWarning ? new RenderingComparison(rendering) : null;
  const pairs = mapRecords(records, (record) => {
    const formatted = formatRecord(record, tokenizer, options.chatTemplate, rendering, options.chatTemplateSource);
    comparison?.compare(record, formatted, tokenizer, options.chatTemplate);
    const pair = tokenizePair(formatted, tokenizer, options, where(record.source));
    const margin = record.margin === undefined ? {} : { margin: record.margin };
    return { ...pair, scoreChosen: record.scoreChosen, scoreRejected: record.scoreRejected, ...margin };
  });
  const warning = comparison?.warning();
  if (warning) options.onWarning!(warning);
  return pairs;
}

export interface PaddedBatch {
  /** [2B, T]: the B chosen sequences, then the B rejected ones (one forward pass for both). */
  inputIds: number[][];
  attentionMask: number[][];
  labels: number[][];
  scoreChosen?: number[];
  scoreRejected?: number[];
}

/** Right-pads chosen and rejected sequences to one length and stacks them, chosen first. */
export function concatenatedBatch(pairs: TokenizedPair[], padTokenId: number): PaddedBatch {
  const rows = [
    ...pairs.map((p) => [p.chosenInputIds, p.chosenLabels]),
    ...pairs.map((p) => [p.rejectedInputIds, p.rejectedLabels]),
  ];
  const length = Math.max(...rows.map(([ids]) => ids.length));
  const pad = (xs: number[], value: number) => [...xs, ...new Array(length - xs.length).fill(value)];
  const scored = pairs.every((p) => p.scoreChosen !== undefined && p.scoreRejected !== undefined);
  return {
    inputIds: rows.map(([ids]) => pad(ids, padTokenId)),
    attentionMask: rows.map(([ids]) =>
      pad(
        ids.map(() => 1),
        0,
      ),
    ),
    labels: rows.map(([, labels]) => pad(labels, LABEL_PAD)),
    ...(scored
      ? { scoreChosen: pairs.map((p) => p.scoreChosen!), scoreRejected: pairs.map((p) => p.scoreRejected!) }
      : {}),
  };
}
