// Chat templates rendered as Hugging Face transformers renders them (apply_chat_template):
// Jinja with trim_blocks and lstrip_blocks, given `messages`, `add_generation_prompt`, `tools`,
// `documents`, the special tokens by name (bos_token, eos_token, ...) and raise_exception /
// strftime_now. The engine is @huggingface/jinja, the one transformers.js uses, run under a budget
// (see BoundedInterpreter) so that a template that loops without end fails instead of exhausting memory.
import { Environment, Interpreter, Template } from "@huggingface/jinja";
import { ChatTemplateError } from "./errors.js";

/** One chat turn. `content` is usually a string; lists of parts pass through to the template. */
/** A conversation turn as preference data and prompts hold it: a role and plain text. */
export interface Message {
  role: string;
  content: string;
}

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
  /** Where the template comes from (a file, or a file and key), named in errors. */
  templateSource?: string;
}

/**
 * Bounds on one render. A chat render takes some tens of steps per message and its text is the
 * size of the conversation; these leave room for conversations far beyond any context length, and
 * stop a template that loops without end (range(10**8), nested loops, a string or list doubled in a
 * loop) within about a second, long before it could exhaust the heap.
 */
export const RENDER_LIMITS = {
  /**
   * Steps: one per expression evaluated and per item a loop goes over, ITERATION_STEPS per loop
   * iteration run.
   */
  steps: 500_000,
  /** Characters in any one string the template builds, its output included. */
  chars: 16 * 1024 * 1024,
  /** Items in any one list the template builds (range() included). */
  items: 100_000,
  /** Milliseconds, for the few operations whose cost no step shows (`x in list` over a long list, in a loop). */
  ms: 5_000,
};

/** A loop iteration (a scope, its `loop` variables, the body) costs the engine about as much as 8 expressions. */
const ITERATION_STEPS = 8;

/** A render over budget; renderChatTemplate turns it into a ChatTemplateError naming the template. */
class RenderLimitError extends Error {}

/**
 * The engine's runtime classes as used here (its runtime.d.ts imports "./runtime" without an
 * extension, which NodeNext resolution cannot follow, so they would be typed `any`).
 */
interface RuntimeValue {
  type: string;
  value: unknown;
}
interface EngineInterpreter {
  run(program: unknown): RuntimeValue;
  evaluate(statement: unknown, environment: unknown): RuntimeValue;
}
const EngineInterpreter = Interpreter as unknown as new (environment: unknown) => EngineInterpreter;

/** The expressions that for-loops iterate over, marked at compile time: their items are charged as steps. */
const LOOP_ITERABLES = new WeakSet<object>();

function markLoopIterables(node: unknown): void {
  if (!node || typeof node !== "object") return;
  if (Array.isArray(node)) {
    for (const n of node) markLoopIterables(n);
    return;
  }
  const n = node as Node;
  for (const v of Object.values(n)) markLoopIterables(v);
  const iterable = n.type === "For" ? (n.iterable as Node) : undefined;
  if (iterable) LOOP_ITERABLES.add(iterable.type === "SelectExpression" ? (iterable.lhs as object) : iterable);
}

/**
 * The engine's interpreter, charging every evaluation, every loop iteration (each runs the loop's
 * body block, even an empty one) and every item a loop goes over to a step budget, and refusing
 * strings and lists over their size bounds as soon as they are built.
 */
class BoundedInterpreter extends EngineInterpreter {
  private steps = 0;
  private nextClockCheck = 0;
  private readonly deadline = performance.now() + RENDER_LIMITS.ms;

  charge(steps: number): void {
    this.steps += steps;
    if (this.steps > RENDER_LIMITS.steps) {
      throw new RenderLimitError(`it ran more than ${RENDER_LIMITS.steps} steps (a loop without end?)`);
    }
    if (this.steps >= this.nextClockCheck) {
      this.nextClockCheck = this.steps + 256;
      if (performance.now() > this.deadline)
        throw new RenderLimitError(`it ran longer than ${RENDER_LIMITS.ms / 1000} s`);
    }
  }

  override evaluate(statement: unknown, environment: unknown): RuntimeValue {
    this.charge(1);
    const value = super.evaluate(statement, environment);
    const content = value.value;
    if (typeof content === "string" && content.length > RENDER_LIMITS.chars) {
      throw new RenderLimitError(`it built a string of more than ${RENDER_LIMITS.chars} characters`);
    }
    if (Array.isArray(content) && content.length > RENDER_LIMITS.items) {
      throw new RenderLimitError(`it built a list of more than ${RENDER_LIMITS.items} items`);
    }
    if (LOOP_ITERABLES.has(statement as object)) {
      this.charge(Array.isArray(content) ? content.length : content instanceof Map ? content.size : 0);
    }
    return value;
  }

  static {
    // evaluateBlock is private in the engine's types: wrapped on this class's prototype only.
    const proto = BoundedInterpreter.prototype as unknown as { evaluateBlock(...args: unknown[]): unknown };
    const block = proto.evaluateBlock;
    proto.evaluateBlock = function (this: BoundedInterpreter, ...args: unknown[]) {
      this.charge(ITERATION_STEPS);
      return block.apply(this, args);
    };
  }
}

/** Python's range, refusing more than RENDER_LIMITS.items items before building them. */
function boundedRange(start: number, stop?: number, step = 1): number[] {
  if (stop === undefined) [start, stop] = [0, start];
  if (![start, stop, step].every(Number.isInteger)) throw new Error("range() arguments must be integers");
  if (step === 0) throw new Error("range() step must not be zero");
  const count = Math.max(0, Math.ceil((stop - start) / step));
  if (count > RENDER_LIMITS.items) throw new RenderLimitError(`it asked for range() of ${count} items`);
  return Array.from({ length: count }, (_, i) => start + i * step);
}

const MONTHS = [
  "January",
  "February",
  "March",
  "April",
  "May",
  "June",
  "July",
  "August",
  "September",
  "October",
  "November",
  "December",
];
const DAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];

/** strftime_now(format) as transformers gives it: the local time, formatted as Python's strftime (C locale). */
function strftimeNow(format: string): string {
  const d = new Date();
  const pad = (n: number) => String(n).padStart(2, "0");
  const fields: Record<string, () => string> = {
    Y: () => String(d.getFullYear()),
    y: () => pad(d.getFullYear() % 100),
    m: () => pad(d.getMonth() + 1),
    d: () => pad(d.getDate()),
    H: () => pad(d.getHours()),
    M: () => pad(d.getMinutes()),
    S: () => pad(d.getSeconds()),
    B: () => MONTHS[d.getMonth()]!,
    b: () => MONTHS[d.getMonth()]!.slice(0, 3),
    A: () => DAYS[d.getDay()]!,
    a: () => DAYS[d.getDay()]!.slice(0, 3),
    "%": () => "%",
  };
  return String(format).replace(/%(.)/g, (token, c: string) => fields[c]?.() ?? token);
}

/** The globals transformers gives every template (the engine's own, with range bounded). */
const GLOBALS: Record<string, unknown> = {
  true: true,
  false: false,
  none: null,
  True: true,
  False: false,
  None: null,
  raise_exception: (message: unknown) => {
    throw new Error(String(message));
  },
  range: boundedRange,
  strftime_now: strftimeNow,
};

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

interface Node {
  type?: string;
  [field: string]: unknown;
}

function rewriteStrips(node: unknown): void {
  if (!node || typeof node !== "object") return;
  if (Array.isArray(node)) {
    for (const n of node) rewriteStrips(n);
    return;
  }
  const n = node as Node;
  for (const v of Object.values(n)) rewriteStrips(v);
  const callee = n.callee as Node | undefined;
  const args = n.args as unknown[] | undefined;
  const name = (callee?.property as Node | undefined)?.value;
  if (
    n.type === "CallExpression" &&
    callee?.type === "MemberExpression" &&
    !callee.computed &&
    typeof name === "string" &&
    STRIPS.has(name) &&
    args?.length === 1
  ) {
    // The property node is an Identifier: its class makes the helper's name.
    const Identifier = (callee.property as object).constructor as new (value: string) => unknown;
    n.callee = new Identifier(PY_STRIP);
    n.args = [callee.object, ...args, new Identifier(`${PY_STRIP}_${name}`)];
  }
}

function pyStrip(value: unknown, chars: unknown, side: unknown): string {
  if (typeof value !== "string")
    throw new Error(`strip() on a ${value === undefined ? "undefined value" : typeof value}, not a string`);
  if (chars === null || chars === undefined)
    return side === "lstrip" ? value.trimStart() : side === "rstrip" ? value.trimEnd() : value.trim();
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
    markLoopIterables(t.parsed);
  } catch (e) {
    throw new ChatTemplateError(`chat template does not parse: ${(e as Error).message}`, { cause: e });
  }
  if (cache.size >= CACHE_LIMIT) cache.delete(cache.keys().next().value as string);
  cache.set(source, t);
  return t;
}

/** Template.render, with the interpreter under budget. */
function renderBounded(template: Template, context: Record<string, unknown>): string {
  const env = new Environment();
  for (const [name, value] of Object.entries({ ...GLOBALS, ...context })) env.set(name, value);
  return new BoundedInterpreter(env).run(template.parsed).value as string;
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
    throw new ChatTemplateError(
      "addGenerationPrompt and continueFinalMessage cannot both be set: one starts a new turn, the other continues the last",
    );
  }
  if (continueFinal && messages.length === 0)
    throw new ChatTemplateError("continueFinalMessage needs at least one message");
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
  for (const reserved of [...Object.keys(GLOBALS), "namespace"]) delete context[reserved];
  let rendered: string;
  try {
    rendered = renderBounded(compiled, context);
  } catch (e) {
    const from = options.templateSource ? ` from ${options.templateSource}` : "";
    if (e instanceof RenderLimitError) {
      throw new ChatTemplateError(`chat template${from} stopped: ${e.message}`, { cause: e });
    }
    throw new ChatTemplateError(`chat template${from} failed: ${(e as Error).message}`, { cause: e });
  }
  if (continueFinal) {
    const text = finalText(messages);
    const stripped = text.trim();
    if (text.length > 0 && rendered.includes(text)) {
      rendered = rendered.slice(0, rendered.lastIndexOf(text) + text.length);
    } else if (rendered.includes(stripped)) {
      rendered = rendered.slice(0, rendered.lastIndexOf(stripped) + stripped.length);
    } else {
      throw new ChatTemplateError(
        "continueFinalMessage is set but the final message does not appear in the rendered chat",
      );
    }
  }
  return rendered;
}
