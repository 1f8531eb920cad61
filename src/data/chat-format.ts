// Preference records rendered to plain text (prompt, chosen, rejected) through the chat
// template, in one of two ways (the recipe key chat_rendering):
//   "trl"        as TRL renders a conversational pair (data_utils.apply_chat_template): the prompt
//                with the generation prompt, prompt + answer as one conversation, the answer
//                being the difference. What the template writes around an answer in a real chat
//                is what is trained: Gemma-3's role alternation holds, Qwen3's empty
//                <think></think> block is part of the answer.
//   "reference"  as the Uni-DPO reference (alignment-handbook's formatting): an empty system
//                message before the prompt when the template knows a system role, each answer's
//                messages rendered alone with a leading BOS stripped.
import type { Tokenizer } from "../text/index.js";
import { DataError, where, type Message, type PreferenceRecord, type Text } from "./records.js";

export const CHAT_RENDERINGS = ["trl", "reference"] as const;
export type ChatRendering = (typeof CHAT_RENDERINGS)[number];

/** The template a record renders with (the tokenizer's when undefined) and where it comes from. */
interface TemplateChoice {
  chatTemplate: string | undefined;
  templateSource: string | undefined;
}

export interface FormattedPair {
  prompt: string;
  chosen: string;
  rejected: string;
}

/**
 * `record` as text: plain-text records as they are, conversational ones through the chat template
 * (`chatTemplate`, from `templateSource` as errors name it, or else the tokenizer's own).
 */
export function formatRecord(
  record: PreferenceRecord,
  tokenizer: Tokenizer,
  chatTemplate?: string,
  rendering: ChatRendering = "trl",
  templateSource?: string,
): FormattedPair {
  const template = { chatTemplate, templateSource };
  const { prompt, chosen, rejected } = record;
  if (typeof chosen === "string" && typeof rejected === "string") {
    if (typeof prompt !== "string") {
      if (prompt === null) throw new DataError([`${where(record.source)}: field 'prompt': missing`]);
      return { prompt: render(prompt, tokenizer, template, record, { addGenerationPrompt: true }), chosen, rejected };
    }
    return { prompt, chosen, rejected };
  }
  return rendering === "trl" ? formatTrl(record, tokenizer, template) : formatReference(record, tokenizer, template);
}

/** Whether the record goes through the chat template with message-list answers (where the two renderings can differ). */
export function isConversationalPair(record: PreferenceRecord): boolean {
  return Array.isArray(record.chosen) && Array.isArray(record.rejected);
}

/**
 * The prompt messages and each answer's messages, as TRL's maybe_extract_prompt splits them: a
 * message-list prompt is kept; otherwise the prompt is the longest run of messages chosen and
 * rejected share (a string prompt beside full conversations, UltraFeedback's layout, is not
 * used). A string prompt beside answer-only turns becomes the user's message (TRL has no prompt
 * to render there).
 */
function splitConversation(record: PreferenceRecord): { prompt: Message[]; chosen: Message[]; rejected: Message[] } {
  const chosen = record.chosen as Message[];
  const rejected = record.rejected as Message[];
  if (Array.isArray(record.prompt))
    return {
      prompt: record.prompt,
      chosen: answerAfter(record.prompt, chosen),
      rejected: answerAfter(record.prompt, rejected),
    };
  if (typeof record.prompt === "string" && chosen.length < 2 && rejected.length < 2) {
    return { prompt: [{ role: "user", content: record.prompt }], chosen, rejected };
  }
  const shorter = Math.min(chosen.length, rejected.length);
  let shared = 0;
  while (shared < shorter && sameMessage(chosen[shared]!, rejected[shared]!)) shared++;
  // As extract_prompt's loop: identical up to the shorter one, the last shared message is an answer.
  if (shared === shorter) shared = shorter - 1;
  return { prompt: chosen.slice(0, shared), chosen: chosen.slice(shared), rejected: rejected.slice(shared) };
}

/**
 * An answer's own turns: answers may repeat the prompt's conversation before their turn (as
 * `data build` writes them, and UltraFeedback does); the answer is then what follows it.
 */
function answerAfter(prompt: readonly Message[], answer: Message[]): Message[] {
  return answer.length > prompt.length && prompt.every((m, i) => sameMessage(answer[i]!, m))
    ? answer.slice(prompt.length)
    : answer;
}

function sameMessage(a: Message, b: Message): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

function commonPrefix(a: string, b: string): string {
  let i = 0;
  while (i < a.length && i < b.length && a.charCodeAt(i) === b.charCodeAt(i)) i++;
  return a.slice(0, i);
}

/** TRL's rendering: the answer is what prompt + answer renders to beyond the prompt rendered with its generation prompt. */
function formatTrl(record: PreferenceRecord, tokenizer: Tokenizer, template: TemplateChoice): FormattedPair {
  const at = where(record.source);
  const split = splitConversation(record);
  const last = split.prompt[split.prompt.length - 1];
  if (!last)
    throw new DataError([
      `${at}: field 'chosen': chosen and rejected differ from their first message, so there is no prompt`,
    ]);
  if (last.role !== "user" && last.role !== "tool" && last.role !== "assistant") {
    throw new DataError([
      `${at}: field 'prompt': the prompt's last message must be the user's (or a tool's, or an assistant's to continue), got role '${last.role}'`,
    ]);
  }
  // A prompt ending with the assistant's words is continued, not answered in a new turn.
  const open = last.role === "assistant" ? { continueFinalMessage: true } : { addGenerationPrompt: true };
  const promptText = render(split.prompt, tokenizer, template, record, open);
  const chosenText = render([...split.prompt, ...split.chosen], tokenizer, template, record);
  const rejectedText = render([...split.prompt, ...split.rejected], tokenizer, template, record);
  // Templates whose generation prompt differs from how a written answer opens (DeepSeek-R1's)
  // would leave a piece of it in the prompt: TRL keeps only what both renders share.
  const prompt = commonPrefix(commonPrefix(promptText, chosenText), rejectedText);
  let chosen = chosenText.slice(prompt.length);
  let rejected = rejectedText.slice(prompt.length);
  const trailer = unconditionalGenerationPrompt(split.prompt, promptText, tokenizer, template);
  if (trailer) {
    if (chosen.endsWith(trailer)) chosen = chosen.slice(0, -trailer.length);
    if (rejected.endsWith(trailer)) rejected = rejected.slice(0, -trailer.length);
  }
  return { prompt, chosen, rejected };
}

/**
 * The opening of an assistant turn that the template writes after every conversation, asked for
 * or not (the first Meta-Llama-3-Instruct template did: `<|start_header_id|>assistant<|end_header_id|>`
 * after the last message, without `{% if add_generation_prompt %}`), or null. TRL keeps it at the
 * end of every answer, where the model would learn to open a new turn after answering; it is
 * dropped there. Found as what the template renders for no messages at all, when it renders the
 * prompt the same with and without add_generation_prompt and the prompt ends with it.
 */
function unconditionalGenerationPrompt(
  prompt: Message[],
  withGenerationPrompt: string,
  tokenizer: Tokenizer,
  template: TemplateChoice,
): string | null {
  try {
    const without = tokenizer.applyChatTemplate(
      prompt.map((m) => ({ ...m })),
      { ...template, addGenerationPrompt: false },
    );
    if (without !== withGenerationPrompt) return null;
    const trailer = tokenizer.applyChatTemplate([], { ...template, addGenerationPrompt: false });
    return trailer.trim() !== "" && withGenerationPrompt.endsWith(trailer) ? trailer : null;
  } catch {
    return null; // a template that cannot render no messages writes nothing unasked
  }
}

/**
 * The Uni-DPO reference's rendering (alignment-handbook's apply_chat_template): prompt = every
 * message before the answer (with an empty system message first when the template knows a
 * system role), each answer = its messages rendered alone with a leading BOS stripped. For most
 * templates prompt + answer is then the whole conversation; a template that writes a default
 * system prompt in front of every render (Qwen2's) repeats it before the answer, exactly as the
 * reference does.
 */
function formatReference(record: PreferenceRecord, tokenizer: Tokenizer, choice: TemplateChoice): FormattedPair {
  const { prompt } = record;
  const chosenMessages = record.chosen as Message[];
  const rejectedMessages = record.rejected as Message[];
  let promptMessages: Message[];
  let chosenTurn: Message[];
  let rejectedTurn: Message[];
  if (Array.isArray(prompt)) {
    promptMessages = [...prompt];
    chosenTurn = answerAfter(prompt, chosenMessages);
    rejectedTurn = answerAfter(prompt, rejectedMessages);
  } else if (typeof prompt === "string" && chosenMessages.length < 2) {
    // Only the answer turn is given: the string prompt becomes the user's message.
    promptMessages = [{ role: "user", content: prompt }];
    chosenTurn = chosenMessages.slice(-1);
    rejectedTurn = rejectedMessages.slice(-1);
  } else {
    // As alignment-handbook: a prompt that is not a message list (UltraFeedback's string prompt)
    // is not used; the conversation before the answer is chosen[:-1], system messages included.
    promptMessages = chosenMessages.slice(0, -1);
    chosenTurn = chosenMessages.slice(-1);
    rejectedTurn = rejectedMessages.slice(-1);
  }
  const template = choice.chatTemplate ?? tokenizer.chatTemplate;
  if (
    template &&
    (template.includes("system") || template.includes("<|im_start|>")) &&
    promptMessages[0]?.role !== "system"
  ) {
    promptMessages.unshift({ role: "system", content: "" });
  }
  const bos = tokenizer.bosToken;
  const strip = (s: string) => (bos && s.startsWith(bos) ? s.slice(bos.length) : s);
  return {
    prompt: render(promptMessages, tokenizer, choice, record),
    chosen: strip(render(chosenTurn, tokenizer, choice, record)),
    rejected: strip(render(rejectedTurn, tokenizer, choice, record)),
  };
}

function render(
  messages: Text,
  tokenizer: Tokenizer,
  template: TemplateChoice,
  record: PreferenceRecord,
  open: { addGenerationPrompt?: boolean; continueFinalMessage?: boolean } = {},
): string {
  if (typeof messages === "string") return messages;
  try {
    return tokenizer.applyChatTemplate(
      messages.map((m) => ({ ...m })),
      { ...template, ...open },
    );
  } catch (e) {
    throw new DataError([
      `${where(record.source)}: cannot render the conversation with the chat template: ${(e as Error).message}`,
    ]);
  }
}

/** Records whose two renderings differ, gathered into one warning (null when none do). */
export class RenderingComparison {
  private differing = 0;
  private compared = 0;
  private first: string | null = null;

  constructor(private readonly rendering: ChatRendering) {}

  /** Renders `record` the other way too and counts a difference (or the other way failing). */
  compare(
    record: PreferenceRecord,
    formatted: FormattedPair,
    tokenizer: Tokenizer,
    chatTemplate: string | undefined,
  ): void {
    if (!isConversationalPair(record)) return;
    this.compared++;
    const other: ChatRendering = this.rendering === "trl" ? "reference" : "trl";
    let detail: string | null;
    try {
      const o = formatRecord(record, tokenizer, chatTemplate, other);
      const field = (["prompt", "chosen", "rejected"] as const).find((f) => o[f] !== formatted[f]);
      detail = field
        ? `${field} ${JSON.stringify(clip(formatted[field], 60))} here, ${JSON.stringify(clip(o[field], 60))} with ${other}`
        : null;
    } catch (e) {
      detail = `the ${other} rendering fails: ${(e as Error).message}`;
    }
    if (detail === null) return;
    this.differing++;
    this.first ??= `${where(record.source)}: ${detail}`;
  }

  warning(): string | null {
    if (this.differing === 0) return null;
    const why =
      this.rendering === "trl"
        ? "chat_rendering: reference renders as the Uni-DPO reference does, for exact parity with it"
        : "chat_rendering: trl renders as TRL does";
    return (
      `chat_rendering ${this.rendering}: ${this.differing} of ${this.compared} conversational records render differently with ` +
      `chat_rendering ${this.rendering === "trl" ? "reference" : "trl"} (first, ${this.first}); ${why}`
    );
  }
}

function clip(s: string, max = 160): string {
  return s.length <= max ? s : `${s.slice(0, max / 2)}...${s.slice(-max / 2)}`;
}
