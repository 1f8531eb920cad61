// `omni-dpo serve`: an OpenAI-compatible HTTP server over one model: GET /v1/models,
// POST /v1/completions (plain prompts) and POST /v1/chat/completions (messages rendered with the
// model's chat template; a vision-language model's also take images as data: URLs), with n,
// seed, temperature, top_p, top_k (vLLM's extension), max_tokens, stop and streaming
// (server-sent events). Every request's rows go to one
// ContinuousBatcher, so concurrent requests share decoding steps. A bad request gets OpenAI's
// error object with the field named (400), never a crash.
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { randomBytes } from "node:crypto";
import type { ChatMessage, Message } from "../text/chat-template.js";
import type { CausalLM } from "../models/causal-lm.js";
import { stopTokenIds } from "../models/generation-config.js";
import type { ImageInputs } from "../models/qwen2-vl.js";
import type { Qwen2VLProcessor, Tokenizer } from "../text/index.js";
import { ContinuousBatcher, type RowResult } from "./batcher.js";
import { type ChatWithImages, ContentPartError, readChatMessages } from "./chat-images.js";
import { promptIds } from "./prompt.js";
import { holdPackedWeights } from "../nn/packing.js";

export interface ServeOptions {
  /** The model's id in /v1/models and responses; requests naming another model get 404. */
  name: string;
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  maxBatch?: number;
  /** Called for each request served (method, path, status). */
  onRequest?: (line: string) => void;
  /**
   * A vision-language model's processor: chat messages may then hold image parts, rendered with
   * its chat template and encoded by it. Without one, an image part is refused (400, named).
   */
  processor?: Qwen2VLProcessor;
}

export interface RunningServer {
  url: string;
  port: number;
  batcher: ContinuousBatcher;
  close(): Promise<void>;
}

/** A 4xx answer: OpenAI's error object, naming the parameter at fault. */
class RequestError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly param: string | null = null,
    readonly code: string | null = null,
  ) {
    super(message);
  }
}

const MAX_BODY = 16 << 20;

export async function startServer(
  model: CausalLM,
  tokenizer: Tokenizer,
  options: ServeOptions,
): Promise<RunningServer> {
  const eos = stopTokenIds(model.generationConfig, tokenizer.eosTokenId);
  const batcher = new ContinuousBatcher(model, {
    eosTokenIds: eos,
    padTokenId: tokenizer.padTokenId ?? eos[0] ?? 0,
    maxBatch: options.maxBatch,
    decode: (ids) => tokenizer.decode(ids, { skipSpecialTokens: true }),
  });
  const created = Math.floor(Date.now() / 1000);

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<number> => {
    const path = (req.url ?? "/").split("?")[0].replace(/\/+$/, "");
    if (path === "/v1/models" || path === "/models") {
      if (req.method !== "GET") throw new RequestError(405, `${path} takes GET`);
      const entry = { id: options.name, object: "model", created, owned_by: "omni-dpo" };
      return json(res, 200, { object: "list", data: [entry] });
    }
    const chat = path === "/v1/chat/completions" || path === "/chat/completions";
    if (!chat && path !== "/v1/completions" && path !== "/completions") {
      throw new RequestError(
        404,
        `no route ${req.method} ${path}; ` + "this server has /v1/models, /v1/completions and /v1/chat/completions",
      );
    }
    if (req.method !== "POST") throw new RequestError(405, `${path} takes POST`);
    const body = await readBody(req);
    const params = parseParams(body, chat, options.name, options.processor !== undefined);
    const prompts = chat ? [params.chat!.messages] : (params.prompts as (string | number[])[]);
    // A chat with images: its ids through the processor (pads expanded), its pixels for its prefill.
    let images: ImageInputs | undefined;
    const encoded = prompts.map((p) => {
      if (Array.isArray(p) && typeof p[0] === "number") return p as number[];
      try {
        if (chat && options.processor) {
          const processor = options.processor;
          const text = processor.applyChatTemplate(p as ChatMessage[], { addGenerationPrompt: true });
          const out = processor.encode({ text, images: params.chat!.images });
          const ids = (out.inputIds.toArray() as number[][])[0]!; // [T]
          out.inputIds.dispose();
          out.attentionMask.dispose();
          if (out.pixelValues && out.imageGridThw) {
            const device = model.device;
            images = { pixelValues: out.pixelValues.to({ device }), imageGridThw: out.imageGridThw.to({ device }) };
            out.pixelValues.dispose();
            out.imageGridThw.dispose();
          }
          return ids;
        }
        return promptIds(tokenizer, p as string | Message[]);
      } catch (e) {
        throw new RequestError(400, (e as Error).message, chat ? "messages" : "prompt");
      }
    });
    try {
      return await answer(req, res, chat, params, encoded, images);
    } finally {
      images?.pixelValues?.dispose();
      images?.imageGridThw?.dispose();
    }
  };

  const answer = async (
    req: IncomingMessage,
    res: ServerResponse,
    chat: boolean,
    params: Params,
    encoded: number[][],
    images: ImageInputs | undefined,
  ): Promise<number> => {
    const vocab = model.vocabSize;
    encoded.forEach((ids, i) => {
      const param = chat ? "messages" : "prompt";
      if (ids.length === 0) throw new RequestError(400, `prompt ${i} encodes to no tokens`, param);
      if (ids.some((t) => !Number.isInteger(t) || t < 0 || t >= vocab)) {
        throw new RequestError(400, `prompt ${i}: token ids must be in [0, ${vocab})`, "prompt");
      }
    });
    const maxTokens = encoded.map((ids) => {
      const room = model.maxPositions - ids.length;
      const wanted = params.maxTokens ?? (chat ? room : 16);
      if (ids.length + wanted > model.maxPositions) {
        throw new RequestError(
          400,
          `this model's context holds ${model.maxPositions} tokens; ` +
            `the prompt takes ${ids.length} ` +
            `and max_tokens asks for ${wanted}`,
          "max_tokens",
          "context_length_exceeded",
        );
      }
      return wanted;
    });
    // A client that hangs up takes its rows out of the batch (they would run to max_tokens).
    const gone = new AbortController();
    res.on("close", () => {
      if (!res.writableFinished) gone.abort();
    });
    const signal = gone.signal;
    const id = `${chat ? "chatcmpl" : "cmpl"}-${randomBytes(12).toString("hex")}`;
    const baseSeed = params.seed ?? randomBytes(4).readUInt32LE(0);
    // Choice k = prompt p, sample j (OpenAI's order); sample j of a seeded request uses seed + j.
    const choices = encoded.flatMap((ids, p) =>
      Array.from({ length: params.n }, (_, j) => ({ ids, p, j, index: p * params.n + j })),
    );
    const head = { id, created: Math.floor(Date.now() / 1000), model: options.name };
    const object = chat ? "chat.completion" : "text_completion";
    if (params.stream) {
      res.writeHead(200, {
        "content-type": "text/event-stream",
        "cache-control": "no-store",
        connection: "keep-alive",
      });
      let closed = false;
      res.on("close", () => {
        closed = true;
      });
      const send = (payload: unknown) => {
        if (!closed) res.write(`data: ${JSON.stringify(payload)}\n\n`);
      };
      const chunkObject = chat ? "chat.completion.chunk" : "text_completion";
      const piece = (index: number, text: string, finish: string | null, first = false) =>
        send({
          ...head,
          object: chunkObject,
          choices: [
            chat
              ? {
                  index,
                  delta: first ? { role: "assistant", content: text } : { content: text },
                  finish_reason: finish,
                  logprobs: null,
                }
              : { index, text, finish_reason: finish, logprobs: null },
          ],
        });
      if (chat) for (const c of choices) piece(c.index, "", null, true);
      const results = await Promise.allSettled(
        choices.map((c) =>
          batcher
            .submit({
              ids: c.ids,
              maxTokens: maxTokens[c.p],
              temperature: params.temperature,
              topP: params.topP,
              topK: params.topK,
              seed: (baseSeed + c.j) >>> 0,
              stop: params.stop,
              signal,
              images,
              onText: (delta) => piece(c.index, delta, null),
            })
            .then((r) => {
              piece(c.index, "", finishReason(r));
              return r;
            }),
        ),
      );
      const failed = results.find((r) => r.status === "rejected");
      const reason = (failed as PromiseRejectedResult | undefined)?.reason as Error | undefined;
      if (failed) send({ error: errorBody(500, reason?.message ?? "generation failed") });
      if (params.includeUsage) {
        const done = results.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
        send({ ...head, object: chunkObject, choices: [], usage: usage(encoded, done) });
      }
      if (!closed) res.end("data: [DONE]\n\n");
      return 200;
    }
    let results: RowResult[];
    try {
      results = await Promise.all(
        choices.map((c) =>
          batcher.submit({
            ids: c.ids,
            maxTokens: maxTokens[c.p],
            temperature: params.temperature,
            topP: params.topP,
            topK: params.topK,
            seed: (baseSeed + c.j) >>> 0,
            stop: params.stop,
            signal,
            images,
          }),
        ),
      );
    } catch (e) {
      throw new RequestError(500, `generation failed: ${(e as Error).message}`);
    }
    return json(res, 200, {
      ...head,
      object,
      choices: results.map((r, k) =>
        chat
          ? {
              index: k,
              message: { role: "assistant", content: r.text },
              finish_reason: finishReason(r),
              logprobs: null,
            }
          : { index: k, text: r.text, finish_reason: finishReason(r), logprobs: null },
      ),
      usage: usage(encoded, results),
    });
  };

  const server = createServer((req, res) => {
    handle(req, res).then(
      (status) => options.onRequest?.(`${req.method} ${req.url} ${status}`),
      (e: unknown) => {
        const err =
          e instanceof RequestError
            ? e
            : new RequestError(500, `internal error: ${(e as Error)?.message ?? String(e)}`);
        if (!res.headersSent) json(res, err.status, { error: errorBody(err.status, err.message, err.param, err.code) });
        else res.end();
        options.onRequest?.(`${req.method} ${req.url} ${err.status} ${err.message}`);
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, options.host ?? "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const host = options.host ?? "127.0.0.1";
  // The model's linear weights stay packed while the server runs (src/nn/packing.ts).
  const releasePacks = holdPackedWeights(model);
  return {
    url: `http://${host.includes(":") ? `[${host}]` : host}:${port}/v1`,
    port,
    batcher,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => {
          releasePacks();
          resolve();
        });
        server.closeAllConnections();
      }),
  };
}

function finishReason(r: RowResult): "stop" | "length" {
  return r.finishReason === "length" ? "length" : "stop";
}

/** Token counts as OpenAI gives them: each prompt once, every choice's answer. */
function usage(encoded: number[][], results: RowResult[]) {
  const prompt = encoded.reduce((s, ids) => s + ids.length, 0);
  const completion = results.reduce((s, r) => s + r.tokens.length, 0);
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
}

function errorBody(status: number, message: string, param: string | null = null, code: string | null = null) {
  const type = status === 404 ? "not_found_error" : status >= 500 ? "server_error" : "invalid_request_error";
  return { message, type, param, code };
}

function json(res: ServerResponse, status: number, body: unknown): number {
  res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
  return status;
}

async function readBody(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) throw new RequestError(413, `request body over ${MAX_BODY} bytes`);
    chunks.push(chunk as Buffer);
  }
  let body: unknown;
  try {
    body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
  } catch (e) {
    throw new RequestError(400, `the request body is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new RequestError(400, "the request body must be a JSON object");
  }
  return body as Record<string, unknown>;
}

interface Params {
  prompts?: (string | number[])[];
  /** A chat's messages (image parts as {type: "image"}) and its images' pixels. */
  chat?: ChatWithImages;
  n: number;
  seed?: number;
  temperature: number;
  topP: number;
  topK: number;
  maxTokens?: number;
  stop: string[];
  stream: boolean;
  includeUsage: boolean;
}

/** The request's sampling parameters, checked field by field (OpenAI's defaults where absent). */
function parseParams(body: Record<string, unknown>, chat: boolean, served: string, takesImages: boolean): Params {
  const bad = (param: string, what: string) =>
    new RequestError(400, `'${param}' ${what}, got ${JSON.stringify(body[param])}`, param);
  const num = (param: string, fallback: number, ok: (x: number) => boolean, what: string): number => {
    const v = body[param];
    if (v === undefined || v === null) return fallback;
    if (typeof v !== "number" || !Number.isFinite(v) || !ok(v)) throw bad(param, what);
    return v;
  };
  const int = (param: string, ok: (x: number) => boolean, what: string): number | undefined => {
    const v = body[param];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== "number" || !Number.isInteger(v) || !ok(v)) throw bad(param, what);
    return v;
  };
  if (body.model !== undefined && body.model !== served) {
    const message = `The model '${String(body.model)}' does not exist; this server serves '${served}'`;
    throw new RequestError(404, message, "model", "model_not_found");
  }
  let prompts: (string | number[])[] | undefined;
  let chatMessages: Params["chat"];
  if (chat) {
    const m = body.messages;
    if (!Array.isArray(m) || m.length === 0) throw bad("messages", "must be a non-empty list of {role, content}");
    try {
      chatMessages = readChatMessages(m, takesImages);
    } catch (e) {
      if (e instanceof ContentPartError) throw new RequestError(400, e.message, e.param);
      throw e;
    }
  } else {
    const p = body.prompt;
    const tokens = (x: unknown) => Array.isArray(x) && x.length > 0 && x.every((t) => Number.isInteger(t));
    if (typeof p === "string") prompts = [p];
    else if (tokens(p)) prompts = [p as number[]];
    else if (Array.isArray(p) && p.length > 0 && p.every((x) => typeof x === "string" || tokens(x))) {
      prompts = p as (string | number[])[];
    } else throw bad("prompt", "must be a string, a list of strings, or token ids");
  }
  const stop = body.stop;
  let stops: string[] = [];
  if (typeof stop === "string") stops = [stop];
  else if (Array.isArray(stop) && stop.length <= 4 && stop.every((s) => typeof s === "string")) {
    stops = stop as string[];
  } else if (stop !== undefined && stop !== null) throw bad("stop", "must be a string or a list of up to 4 strings");
  for (const [param, value] of Object.entries({ stream: body.stream, echo: body.echo })) {
    if (value !== undefined && value !== null && typeof value !== "boolean") throw bad(param, "must be true or false");
  }
  if (body.echo === true) throw bad("echo", "is not supported");
  const unsupported = [
    "logprobs",
    "top_logprobs",
    "best_of",
    "suffix",
    "logit_bias",
    "tools",
    "functions",
    "response_format",
  ].find((k) => body[k] !== undefined && body[k] !== null && body[k] !== false && !(k === "best_of" && body[k] === 1));
  if (unsupported) throw bad(unsupported, "is not supported by omni-dpo serve");
  const maxKey = chat && body.max_completion_tokens !== undefined ? "max_completion_tokens" : "max_tokens";
  const options = body.stream_options;
  if (options !== undefined && options !== null && (typeof options !== "object" || Array.isArray(options))) {
    throw bad("stream_options", "must be an object");
  }
  return {
    prompts,
    chat: chatMessages,
    n: int("n", (x) => x >= 1 && x <= 128, "must be an integer from 1 to 128") ?? 1,
    seed: int("seed", (x) => Number.isSafeInteger(x), "must be an integer"),
    temperature: num("temperature", 1, (x) => x >= 0 && x <= 2, "must be a number from 0 to 2"),
    topP: num("top_p", 1, (x) => x > 0 && x <= 1, "must be a number in (0, 1]"),
    topK: Math.max(0, int("top_k", (x) => x >= -1, "must be an integer (-1 or 0: no limit)") ?? 0),
    maxTokens: int(maxKey, (x) => x >= 1, "must be a positive integer"),
    stop: stops,
    stream: body.stream === true,
    includeUsage: (options as { include_usage?: unknown } | undefined)?.include_usage === true,
  };
}
