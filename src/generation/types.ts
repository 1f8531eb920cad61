// Generation as one interface with two engines: the in-process sampler over a model directory
// (local.ts) and an OpenAI-compatible endpoint (endpoint.ts: vLLM, SGLang, TGI, llama.cpp,
// Ollama, or our own `omni-dpo serve`). Data building and evaluation take a Generator.
import type { Message } from "../text/chat-template.js";

/** One prompt to answer: plain text is continued as it is, a message list goes through the model's chat template. */
export interface GenerationRequest {
  prompt: string | Message[];
  /** Samples wanted (default 1; with `seeds`, one per seed). */
  n?: number;
  /**
   * One seed per sample: sample j is drawn from its own stream seeded by seeds[j], so it does not
   * depend on the other samples or requests (as vLLM's per-request seed).
   */
  seeds?: number[];
  /** Tokens to generate at most per sample. */
  maxTokens: number;
  /** 0 decodes greedily. */
  temperature: number;
  topP?: number;
  /** 0 or absent: no limit (an extension of the OpenAI protocol that vLLM and `serve` accept). */
  topK?: number;
  /** Text that ends a sample (kept out of the answer, as OpenAI's `stop`). */
  stop?: string[];
}

/**
 * Why a sample ended: "eos" (an end-of-sequence token), "stop_string" (one of `stop`),
 * "length" (maxTokens or the context), or "stop" (an endpoint said "stop": EOS or a stop string).
 */
export type FinishReason = "eos" | "stop_string" | "length" | "stop";

export interface GeneratedSample {
  text: string;
  /** Generated tokens (as the engine counts them). */
  tokens: number;
  finishReason: FinishReason;
}

export interface GenerateCallOptions {
  /** Makes the samples of requests without `seeds` repeatable. */
  seed?: number;
  /** Called as each sample arrives. */
  onSample?: () => void;
}

export interface Generator {
  /** What generates (a model directory, an endpoint URL and model): recorded in journals. */
  readonly name: string;
  /** The model's context in tokens when known (prompt + answer must fit it). */
  readonly maxPositions?: number;
  /**
   * Samples for every request, in order: result[i] holds request i's samples. `seed` makes the
   * samples of requests without `seeds` repeatable.
   */
  generate(requests: GenerationRequest[], options?: GenerateCallOptions): Promise<GeneratedSample[][]>;
  dispose?(): void;
}

/** The samples a request asks for. */
export function sampleCount(request: GenerationRequest): number {
  return request.seeds ? request.seeds.length : (request.n ?? 1);
}
