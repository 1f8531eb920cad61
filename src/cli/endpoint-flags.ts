// The flags that point a generating command at an OpenAI-compatible endpoint instead of the
// local model: shared by `generate`, `data build` and `eval`.
import { UsageError, positiveInt } from "./args.js";
import type { EndpointGenerator } from "../generation/endpoint.js";

export const ENDPOINT_OPTIONS = {
  endpoint: { type: "string" }, "endpoint-model": { type: "string" }, "endpoint-concurrency": { type: "string" },
  "endpoint-key-env": { type: "string" }, "endpoint-timeout": { type: "string" }, "endpoint-retries": { type: "string" },
} as const;

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

/** The endpoint generator the flags ask for, or null without --endpoint. */
export async function endpointFromFlags(values: Values, command: string, maxPositions?: number): Promise<EndpointGenerator | null> {
  const str = (k: string) => values[k] as string | undefined;
  const url = str("endpoint");
  if (url === undefined) {
    const stray = Object.keys(ENDPOINT_OPTIONS).find((k) => k !== "endpoint" && values[k] !== undefined);
    if (stray) throw new UsageError(`${command}: --${stray} needs --endpoint URL`);
    return null;
  }
  let parsed: URL;
  try { parsed = new URL(url); } catch { throw new UsageError(`${command}: --endpoint must be a URL such as http://localhost:8000/v1, got '${url}'`); }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") throw new UsageError(`${command}: --endpoint must be an http(s) URL, got '${url}'`);
  const model = str("endpoint-model");
  if (!model) throw new UsageError(`${command}: --endpoint needs --endpoint-model NAME (the model the server serves)`);
  const keyEnv = str("endpoint-key-env") ?? "OPENAI_API_KEY";
  if (values["endpoint-key-env"] !== undefined && process.env[keyEnv] === undefined) {
    throw new UsageError(`${command}: --endpoint-key-env ${keyEnv}: that environment variable is not set`);
  }
  const { EndpointGenerator } = await import("../generation/endpoint.js");
  return new EndpointGenerator({
    baseURL: url.replace(/\/+$/, ""), model, apiKey: process.env[keyEnv],
    concurrency: positiveInt(str("endpoint-concurrency"), "--endpoint-concurrency", 8),
    timeoutMs: 1000 * positiveInt(str("endpoint-timeout"), "--endpoint-timeout", 600),
    maxRetries: positiveInt(str("endpoint-retries"), "--endpoint-retries", 4, true), maxPositions,
  });
}
