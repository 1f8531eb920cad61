// The flags that point a generating command at an OpenAI-compatible endpoint instead of the
// local model: shared by `generate`, `data build` and `eval`.
import { UsageError, positiveInt } from "./args.js";
import type { EndpointGenerator } from "../generation/endpoint.js";
import type { Generator } from "../generation/types.js";
import type { Tokenizer } from "../text/index.js";
import type { Device } from "../torch/index.js";

export const ENDPOINT_OPTIONS = {
  endpoint: { type: "string" },
  "endpoint-model": { type: "string" },
  "endpoint-concurrency": { type: "string" },
  "endpoint-key-env": { type: "string" },
  "endpoint-timeout": { type: "string" },
  "endpoint-retries": { type: "string" },
} as const;

export const JUDGE_OPTIONS = {
  "judge-endpoint": { type: "string" },
  "judge-model": { type: "string" },
  "judge-template": { type: "string" },
  "judge-retries": { type: "string" },
  "judge-max-tokens": { type: "string" },
} as const;

export const JUDGE_HELP = `
Scoring with an LLM judge behind an OpenAI-compatible server (instead of --reward-model):
  --judge-endpoint URL       its base URL (may be the same server as --endpoint)
  --judge-model NAME         the judge model it serves
  --judge-template FILE      the rubric, with {{prompt}} and {{response}} (default: the shipped
                             1-10 helpfulness rubric, assets/judge/helpfulness.txt)
  --judge-retries N          asks again after an unparseable verdict (default 2); a response
                             still unparsed is left unscored and counted, never fatal
  --judge-max-tokens N       tokens the judge may write (default 256)
  The verdict's last line must be "Rating: N" (N from 1 to 10). The key, concurrency, timeout
  and retries on errors are the --endpoint-* flags'.
`;

export const ENDPOINT_HELP = `
Generating through an OpenAI-compatible server (vLLM, SGLang, TGI, llama.cpp, Ollama, omni-dpo serve):
  --endpoint URL             its base URL, e.g. http://localhost:8000/v1; plain prompts go to
                             /completions, message lists to /chat/completions (its chat template)
  --endpoint-model NAME      the model name it serves (required with --endpoint)
  --endpoint-concurrency N   requests in flight at once (default 8)
  --endpoint-timeout S       seconds one attempt may take (default 600)
  --endpoint-retries N       retries on 408/409/429/5xx and connection errors, with exponential
                             backoff (default 4)
  --endpoint-key-env NAME    the environment variable holding the API key (default OPENAI_API_KEY;
                             none needed for a local server); the key is never printed
`;

type Values = Record<string, string | boolean | string[] | undefined>;

/** The LLM judge the flags ask for (a scorer), or null without --judge-endpoint. */
export async function judgeFromFlags(values: Values, command: string) {
  const str = (k: string) => values[k] as string | undefined;
  if (str("judge-endpoint") === undefined) {
    const stray = Object.keys(JUDGE_OPTIONS).find((k) => values[k] !== undefined);
    if (stray) throw new UsageError(`${command}: --${stray} needs --judge-endpoint URL`);
    return null;
  }
  if (!str("judge-model")) throw new UsageError(`${command}: --judge-endpoint needs --judge-model NAME`);
  const flags = { ...values, endpoint: str("judge-endpoint"), "endpoint-model": str("judge-model") };
  const judge = await endpointFromFlags(flags, command);
  const { llmJudgeScorer } = await import("../eval/llm-judge.js");
  return llmJudgeScorer(judge!, {
    templateFile: str("judge-template"),
    retries: positiveInt(str("judge-retries"), "--judge-retries", 2, true),
    maxTokens: positiveInt(str("judge-max-tokens"), "--judge-max-tokens", 256),
  });
}

/** The endpoint generator the flags ask for, or null without --endpoint. */
export async function endpointFromFlags(
  values: Values,
  command: string,
  maxPositions?: number,
): Promise<EndpointGenerator | null> {
  const str = (k: string) => values[k] as string | undefined;
  const url = str("endpoint");
  if (url === undefined) {
    const stray = Object.keys(ENDPOINT_OPTIONS).find((k) => k !== "endpoint" && values[k] !== undefined);
    if (stray) throw new UsageError(`${command}: --${stray} needs --endpoint URL`);
    return null;
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UsageError(`${command}: --endpoint must be a URL such as http://localhost:8000/v1, got '${url}'`);
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
    throw new UsageError(`${command}: --endpoint must be an http(s) URL, got '${url}'`);
  }
  const model = str("endpoint-model");
  if (!model) throw new UsageError(`${command}: --endpoint needs --endpoint-model NAME (the model the server serves)`);
  const keyEnv = str("endpoint-key-env") ?? "OPENAI_API_KEY";
  if (values["endpoint-key-env"] !== undefined && process.env[keyEnv] === undefined) {
    throw new UsageError(`${command}: --endpoint-key-env ${keyEnv}: that environment variable is not set`);
  }
  const { EndpointGenerator } = await import("../generation/endpoint.js");
  return new EndpointGenerator({
    baseURL: url.replace(/\/+$/, ""),
    model,
    apiKey: process.env[keyEnv],
    concurrency: positiveInt(str("endpoint-concurrency"), "--endpoint-concurrency", 8),
    timeoutMs: 1000 * positiveInt(str("endpoint-timeout"), "--endpoint-timeout", 600),
    maxRetries: positiveInt(str("endpoint-retries"), "--endpoint-retries", 4, true),
    maxPositions,
  });
}

/** What generates for a command: the local model or an endpoint, and what is known of the model. */
export interface Sampler {
  generator: Generator;
  /** The model's tokenizer: always for a local model; with --endpoint, when --model DIR names one. */
  tokenizer: Tokenizer | null;
  /** What the journal records as the sampler (a model directory, an endpoint and model name). */
  identity: string;
}

/**
 * The sampler the flags ask for: `--endpoint URL --endpoint-model NAME` (with --model DIR, if
 * given, read for its tokenizer and context only, so prompts are sized as a local run's), else the
 * local model of --model DIR on `device`.
 */
export async function samplerFromFlags(values: Values, command: string, device?: Device): Promise<Sampler> {
  const model = values.model as string | undefined;
  const { resolve } = await import("node:path");
  const { Tokenizer } = await import("../text/index.js");
  const { tokenizerDirectory } = await import("../models/peft.js");
  const { modelMaxPositions } = await import("../models/vocab.js");
  const endpoint = await endpointFromFlags(values, command, model ? modelMaxPositions(model) : undefined);
  if (endpoint) {
    const tokenizer = model ? Tokenizer.fromPretrainedSync(tokenizerDirectory(model)) : null;
    return { generator: endpoint, tokenizer, identity: endpoint.name };
  }
  if (!model) throw new UsageError(`${command}: --model DIR (or --endpoint URL --endpoint-model NAME) is required`);
  const { loadModel } = await import("../models/auto.js");
  const { LocalGenerator } = await import("../generation/local.js");
  const tokenizer = Tokenizer.fromPretrainedSync(tokenizerDirectory(model));
  const policy = loadModel(model, { device });
  return { generator: new LocalGenerator(policy, tokenizer, resolve(model)), tokenizer, identity: resolve(model) };
}
