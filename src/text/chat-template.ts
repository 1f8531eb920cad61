// Chat templates rendered as Hugging Face transformers renders them (apply_chat_template):
// Jinja with trim_blocks and lstrip_blocks, given `messages`, `add_generation_prompt`, `tools`,
// `documents`, the special tokens by name (bos_token, eos_token, ...) and raise_exception /
// strftime_now. The engine is @huggingface/jinja, the one transformers.js uses.
import { Template } from "@huggingface/jinja";
import { ChatTemplateError } from "./errors.js";

/** One chat turn. `content` is usually a string; lists of parts pass through to the template. */
export interface ChatMessage {
  role: string;
  content: unknown;
  [key: string]: unknown;
}

export interface RenderChatOptions {
  /** Append the opening of an assistant turn (default false). */
  addGenerationPrompt?: boolean;
  /**
   * Cut the render right after the last message's content, so that generation continues that
   * message instead of starting a new one (transformers' continue_final_message; default false).
   */
  continueFinalMessage?: boolean;
  /** Tool (function) schemas, given to the template as `tools` (default null). */
  tools?: unknown[] | null;
  /** Documents for retrieval templates, given as `documents` (default null). */
  documents?: unknown[] | null;
  /** More template variables (transformers' **kwargs); they win over the special tokens. */
  context?: Record<string, unknown>;
}

const cache = new Map<string, Template>();
const CACHE_LIMIT = 64;

function compile(source: string): Template {
  let t = cache.get(source);
  if (t) return t;
  try {
    t = new Template(source);
  } catch (e) {
    throw new ChatTemplateError(`chat template does not parse: ${(e as Error).message}`, { cause: e });
  }
  if (cache.size >= CACHE_LIMIT) cache.delete(cache.keys().next().value as string);
  cache.set(source, t);
  return t;
}

function finalText(messages: readonly ChatMessage[]): string {
  const content = messages[messages.length - 1]!.content;
  if (typeof content === "string") return content;
  if (Array.isArray(content)) {
    for (let i = content.length - 1; i >= 0; i--) {
      const part = content[i] as { text?: unknown } | null;
      if (part && typeof part === "object" && typeof part.text === "string") return part.text;
    }
  }
  throw new ChatTemplateError("continueFinalMessage is set but the final message has no text to continue");
}

/**
 * Renders `template` over `messages`. `specialTokens` maps names (bos_token, eos_token, ...,
 * additional_special_tokens) to their text, as transformers' special_tokens_map.
 */
export function renderChatTemplate(
  template: string,
  messages: readonly ChatMessage[],
  specialTokens: Readonly<Record<string, string | readonly string[]>>,
  options: RenderChatOptions = {},
): string {
  if (!Array.isArray(messages)) throw new ChatTemplateError("messages must be an array of {role, content}");
  messages.forEach((m, i) => {
    if (!m || typeof m !== "object" || typeof m.role !== "string") {
      throw new ChatTemplateError(`messages[${i}] must be an object with a string "role"`);
    }
  });
  const addGenerationPrompt = options.addGenerationPrompt ?? false;
  const continueFinal = options.continueFinalMessage ?? false;
  if (addGenerationPrompt && continueFinal) {
    throw new ChatTemplateError("addGenerationPrompt and continueFinalMessage cannot both be set: one starts a new turn, the other continues the last");
  }
  if (continueFinal && messages.length === 0) throw new ChatTemplateError("continueFinalMessage needs at least one message");
  const compiled = compile(template);
  // raise_exception and strftime_now are the engine's own globals.
  const context: Record<string, unknown> = {
    ...specialTokens,
    ...options.context,
    messages,
    tools: options.tools ?? null,
    documents: options.documents ?? null,
    add_generation_prompt: addGenerationPrompt,
  };
  for (const reserved of ["raise_exception", "strftime_now", "range", "namespace"]) delete context[reserved];
  let rendered: string;
  try {
    rendered = compiled.render(context);
  } catch (e) {
    throw new ChatTemplateError(`chat template failed: ${(e as Error).message}`, { cause: e });
  }
  if (continueFinal) {
    const text = finalText(messages);
    const stripped = text.trim();
    if (text.length > 0 && rendered.includes(text)) {
      rendered = rendered.slice(0, rendered.lastIndexOf(text) + text.length);
    } else if (rendered.includes(stripped)) {
      rendered = rendered.slice(0, rendered.lastIndexOf(stripped) + stripped.length);
    } else {
      throw new ChatTemplateError("continueFinalMessage is set but the final message does not appear in the rendered chat");
    }
  }
  return rendered;
}
