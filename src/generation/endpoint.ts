// The endpoint engine: any OpenAI-compatible server (vLLM, SGLang, TGI, llama.cpp's server,
// Ollama, `omni-dpo serve`) through the official `openai` client. Plain prompts go to
// /completions, message lists to /chat/completions (the server applies its own chat template).
// Samples with their own seeds are one request each (the protocol has one seed per request);
// unseeded samples are asked for with `n` in one request, and any the server does not return
// are asked for one at a time. The client retries 408/409/429/5xx and connection errors with
// exponential backoff (honouring Retry-After) and times each attempt out.
import OpenAI from "openai";
import type { Message } from "../text/chat-template.js";
import {
  sampleCount,
  type FinishReason,
  type GenerateCallOptions,
  type GeneratedSample,
  type GenerationRequest,
  type Generator,
} from "./types.js";

export interface EndpointOptions {
  /** The OpenAI-compatible base URL, e.g. http://localhost:8000/v1. */
  baseURL: string;
  /** The model name the server knows. */
  model: string;
  /** The API key (from an environment variable; never logged). */
  apiKey?: string;
  /** Requests in flight at once (default 8). */
  concurrency?: number;
  /** Milliseconds one attempt may take (default 600000). */
  timeoutMs?: number;
  /** Retries after the first attempt (default 4). */
  maxRetries?: number;
  /** The served model's context, when known (its config.json), so answers are sized to fit. */
  maxPositions?: number;
}

export class EndpointError extends Error {
  /** The HTTP status the server answered with; null: no HTTP answer (or none to report). */
  readonly status: number | null;
  constructor(message: string, status: number | null = null) {
    super(message);
    this.status = status;
  }
}

/** One HTTP call's worth of work: request `i`, sample slots `slots` (n = slots.length), an optional seed. */
interface Call {
  i: number;
  slots: number[];
  seed?: number;
}

export class EndpointGenerator implements Generator {
  readonly name: string;
  readonly maxPositions?: number;
  readonly #client: OpenAI;
  readonly #options: EndpointOptions;
  readonly #concurrency: number;
  /** Requests sent, including those repeated for missing samples (for logs and tests). */
  calls = 0;

  constructor(options: EndpointOptions) {
    this.#options = options;
    this.name = `endpoint ${options.baseURL} model ${options.model}`;
    this.#concurrency = options.concurrency ?? 8;
    this.maxPositions = options.maxPositions;
    this.#client = new OpenAI({
      baseURL: options.baseURL,
      apiKey: options.apiKey || "EMPTY",
      maxRetries: options.maxRetries ?? 4,
      timeout: options.timeoutMs ?? 600_000,
    });
  }

  /** Nothing to free: the server holds the model. */
  dispose(): void {}

  async generate(requests: GenerationRequest[], options: GenerateCallOptions = {}): Promise<GeneratedSample[][]> {
    const results: GeneratedSample[][] = requests.map((r) => new Array(sampleCount(r)));
    const calls: Call[] = requests.flatMap((r, i): Call[] => {
      if (r.seeds) return r.seeds.map((seed, j) => ({ i, slots: [j], seed }));
      const slots = Array.from({ length: sampleCount(r) }, (_, j) => j);
      return slots.length ? [{ i, slots, seed: options.seed === undefined ? undefined : options.seed + i }] : [];
    });
    await pool(calls, this.#concurrency, async (call) => {
      let slots = call.slots;
      let seed = call.seed;
      while (slots.length) {
        const got = await this.#call(requests[call.i], slots.length, seed);
        got.slice(0, slots.length).forEach((sample, n) => {
          results[call.i][slots[n]] = sample;
          options.onSample?.();
        });
        // A server that ignores n returns fewer: the rest are asked for one by one (next seeds).
        slots = slots.slice(got.length);
        if (got.length === 0) throw new EndpointError(`${this.name}: the server returned no choices`);
        if (seed !== undefined) seed += got.length;
      }
    });
    return results;
  }

  async #call(request: GenerationRequest, n: number, seed: number | undefined): Promise<GeneratedSample[]> {
    this.calls++;
    const common = {
      model: this.#options.model,
      max_tokens: request.maxTokens,
      temperature: request.temperature,
      ...(request.topP !== undefined && request.topP < 1 ? { top_p: request.topP } : {}),
      ...(n > 1 ? { n } : {}),
      ...(seed !== undefined ? { seed } : {}),
      ...(request.stop?.length ? { stop: request.stop } : {}),
      // top_k is vLLM's (and serve's) extension of the protocol: sent only when asked for.
      ...(request.topK ? { top_k: request.topK } : {}),
    };
    try {
      if (typeof request.prompt === "string") {
        const r = await this.#client.completions.create({ ...common, prompt: request.prompt, stream: false });
        const choices = [...r.choices].sort((a, b) => a.index - b.index);
        return choices.map((c) => sample(c.text, c.finish_reason, r.usage?.completion_tokens, choices.length));
      }
      const messages = request.prompt.map((m: Message) => ({ role: m.role, content: m.content }));
      const r = await this.#client.chat.completions.create({
        ...common,
        messages: messages as OpenAI.ChatCompletionMessageParam[],
        stream: false,
      });
      const choices = [...r.choices].sort((a, b) => a.index - b.index);
      const tokens = r.usage?.completion_tokens;
      return choices.map((c) => sample(c.message.content ?? "", c.finish_reason, tokens, choices.length));
    } catch (e) {
      throw this.#describe(e);
    }
  }

  /** An error naming the endpoint, the model and the HTTP status (never the key). */
  #describe(e: unknown): Error {
    if (e instanceof OpenAI.APIError) {
      const status = e.status === undefined ? "no response" : `HTTP ${e.status}`;
      const retries = this.#options.maxRetries ?? 4;
      return new EndpointError(
        `${this.name}: ${status}: ${e.message}` +
          (e.status === undefined || e.status === 429 || e.status >= 500 ? ` (after ${retries} retries)` : ""),
        e.status ?? null,
      );
    }
    return e instanceof Error ? e : new Error(String(e));
  }
}

function sample(text: string, finish: string | null, completionTokens: number | undefined, n: number): GeneratedSample {
  const reason: FinishReason = finish === "length" ? "length" : "stop";
  // Servers count the tokens of all n choices together; shared evenly when there are several.
  return { text, finishReason: reason, tokens: completionTokens === undefined ? 0 : Math.round(completionTokens / n) };
}

/** Runs `work` over `items` with at most `limit` at once; the first failure rejects (the rest finish first). */
async function pool<T>(items: T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: unknown = null;
  const worker = async () => {
    while (next < items.length && failure === null) {
      const item = items[next++];
      try {
        await work(item);
      } catch (e) {
        failure ??= e;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failure !== null) throw failure;
}
