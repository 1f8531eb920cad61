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

/**
 * The engine's str.strip / lstrip / rstrip ignore their argument and strip whitespace; Python's
 * strip only the characters given, and templates rely on it (Qwen3's `content.lstrip('\n')`
 * keeps an answer's leading spaces). Calls with an argument are rewritten, in the parsed
 * template, into calls of PY_STRIP, which strips as Python does.
 */
const PY_STRIP = "__omni_dpo_py_strip";
const STRIPS = new Set(["strip", "lstrip", "rstrip"]);

interface Node { type?: string; [field: string]: unknown }

function rewriteStrips(node: unknown): void {
  if (!node || typeof node !== "object") return;
  if (Array.isArray(node)) { for (const n of node) rewriteStrips(n); return; }
  const n = node as Node;
  for (const v of Object.values(n)) rewriteStrips(v);
  const callee = n.callee as Node | undefined;
  const args = n.args as unknown[] | undefined;
  const name = (callee?.property as Node | undefined)?.value;
  if (n.type === "CallExpression" && callee?.type === "MemberExpression" && !callee.computed && typeof name === "string" && STRIPS.has(name) && args?.length === 1) {
    // The property node is an Identifier: its class makes the helper's name.
    const Identifier = (callee.property as object).constructor as new (value: string) => unknown;
    n.callee = new Identifier(PY_STRIP);
    n.args = [callee.object, ...args, new Identifier(`${PY_STRIP}_${name}`)];
  }
}

function pyStrip(value: unknown, chars: unknown, side: unknown): string {
  if (typeof value !== "string") throw new Error(`strip() on a ${value === undefined ? "undefined value" : typeof value}, not a string`);
  if (chars === null || chars === undefined) return side === "lstrip" ? value.trimStart() : side === "rstrip" ? value.trimEnd() : value.trim();
  if (typeof chars !== "string") throw new Error("strip() argument must be a string or none");
  let start = 0;
  let end = value.length;
  if (side !== "rstrip") while (start < end && chars.includes(value[start]!)) start++;
  if (side !== "lstrip") while (end > start && chars.includes(value[end - 1]!)) end--;
  return value.slice(start, end);
}

/** The helper and the names telling it which side, as template variables. */
const PY_STRIP_CONTEXT = Object.fromEntries([[PY_STRIP, pyStrip], ...[...STRIPS].map((s) => [`${PY_STRIP}_${s}`, s])]);

function compile(source: string): Template {
  let t = cache.get(source);
  if (t) return t;
  try {
    t = new Template(source);
    rewriteStrips(t.parsed);
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
    ...PY_STRIP_CONTEXT,
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
