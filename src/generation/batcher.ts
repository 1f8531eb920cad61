// Continuous batching for `serve`: requests arrive at any time, and their rows share decoding
// steps. Each step first admits waiting rows (prefilled together, their KV cache then joined
// below the running batch's, the shorter side left-padded and masked), then decodes one token
// for every running row; rows that finish leave the batch and the cache at once, so a long
// answer never holds the short ones back. Between steps the event loop runs, so new requests
// join the next step. Each row samples from its own seeded stream (the in-process sampler's
// per-row streams), so an answer does not depend on what else is in the batch. A row with images
// (Qwen2-VL) is prefilled on its own, as its images feed only its prefill; it then decodes with
// the others (its M-RoPE offset travels with its cache row).
import * as torch from "../torch/index.js";
import { KVCache } from "../models/cache.js";
import type { CausalLM } from "../models/causal-lm.js";
import type { ImageInputs } from "../models/qwen2-vl.js";
import { pickTokens } from "../models/generate.js";
import { mulberry32 } from "../util/random.js";
import { holdPackedWeights } from "../nn/packing.js";

export interface RowRequest {
  ids: number[];
  maxTokens: number;
  temperature: number;
  topP: number;
  topK: number;
  /** Seeds this row's sampling stream. */
  seed: number;
  /** Text that ends the row; cut from the answer. */
  stop: string[];
  /** Streaming: called with each new piece of the answer's text. */
  onText?: (delta: string) => void;
  /** Aborted when the client has gone: the row leaves the batch at the next step. */
  signal?: AbortSignal;
  /** The images the prompt's image tokens stand for (a model that takes them); the caller disposes them. */
  images?: ImageInputs;
}

export interface RowResult {
  tokens: number[];
  text: string;
  finishReason: "eos" | "stop_string" | "length";
}

export interface BatcherOptions {
  eosTokenIds: number[];
  padTokenId: number;
  /** The answer's text from its tokens (special tokens skipped). */
  decode: (ids: number[]) => string;
  /** Rows decoded together at most (default 16); more wait for a row to leave. */
  maxBatch?: number;
}

interface Active {
  request: RowRequest;
  /** Left-padded ids as fed so far (prompt, then answer); the last one is not yet in the cache. */
  ids: number[];
  mask: number[];
  out: number[];
  stream: () => number;
  /** Characters of text already streamed. */
  sent: number;
  resolve: (r: RowResult) => void;
  reject: (e: Error) => void;
}

type Waiting = Omit<Active, "ids" | "mask" | "out" | "sent">;

export class ContinuousBatcher {
  readonly #model: CausalLM;
  readonly #options: Required<BatcherOptions>;
  readonly #eos: Set<number>;
  #waiting: Waiting[] = [];
  #running: Active[] = [];
  #cache: KVCache | null = null;
  #loop: Promise<void> | null = null;
  /** Decoding steps run so far, and the most rows one of them held (for tests and logs). */
  steps = 0;
  widest = 0;
  /** Admissions that joined rows to a batch already decoding. */
  joins = 0;

  constructor(model: CausalLM, options: BatcherOptions) {
    this.#model = model;
    this.#options = { maxBatch: 16, ...options };
    this.#eos = new Set(options.eosTokenIds);
    model.eval();
  }

  /** Rows waiting or decoding. */
  get pending(): number {
    return this.#waiting.length + this.#running.length;
  }

  submit(request: RowRequest): Promise<RowResult> {
    if (request.ids.length === 0) return Promise.reject(new Error("a prompt needs at least one token"));
    if (request.ids.length + request.maxTokens > this.#model.maxPositions) {
      return Promise.reject(
        new Error(
          `prompt (${request.ids.length} tokens) + max_tokens (${request.maxTokens}) ` +
            `exceeds the model's ${this.#model.maxPositions} positions`,
        ),
      );
    }
    return new Promise((resolve, reject) => {
      this.#waiting.push({ request, stream: mulberry32(request.seed), resolve, reject });
      // One decoding loop at a time: a request arriving while it runs joins its batch. It starts
      // after the event loop's current round, so requests that arrived together (a client
      // sending its prompts at once) are prefilled together rather than one, then the rest.
      if (this.#loop === null)
        this.#loop = new Promise((resolve) => setImmediate(resolve))
          .then(() => this.#run())
          .finally(() => {
            this.#loop = null;
          });
    });
  }

  async #run(): Promise<void> {
    // Packed linear weights while rows decode (src/nn/packing.ts); `serve` holds them for its
    // whole life, so a new burst of requests does not pack again.
    const releasePacks = holdPackedWeights(this.#model);
    try {
      await this.#decodeWhileBusy();
    } finally {
      releasePacks();
    }
  }

  async #decodeWhileBusy(): Promise<void> {
    while (this.#waiting.length || this.#running.length) {
      try {
        torch.noGrad(() => {
          this.#admit();
          this.#step();
        });
      } catch (e) {
        // An engine error fails the rows in flight, never the server: the next request starts clean.
        const error = e instanceof Error ? e : new Error(String(e));
        for (const row of this.#running) row.reject(error);
        this.#running = [];
        this.#cache?.dispose();
        this.#cache = null;
      }
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  /** Prefills waiting rows (as many as fit) and joins them to the running batch. */
  #admit(): void {
    const room = this.#options.maxBatch - this.#running.length;
    if (room <= 0 || this.#waiting.length === 0) return;
    // A row with images is prefilled alone; rows without join together up to the next one with.
    const withImages = (w: Waiting) => w.request.images !== undefined;
    const firstImage = this.#waiting.findIndex(withImages);
    const take = firstImage === 0 ? 1 : firstImage > 0 ? Math.min(room, firstImage) : room;
    const joining = this.#waiting.splice(0, take).filter((w) => !this.#cancelled(w));
    if (joining.length === 0) return;
    const longest = Math.max(...joining.map((w) => w.request.ids.length));
    const rows: Active[] = joining.map((w) => {
      const padding = longest - w.request.ids.length;
      return {
        ...w,
        out: [],
        sent: 0,
        ids: [...new Array(padding).fill(this.#options.padTokenId), ...w.request.ids],
        mask: [...new Array(padding).fill(0), ...new Array(w.request.ids.length).fill(1)],
      };
    });
    const cache = new KVCache(this.#model.numLayers);
    try {
      const next = this.#forward(
        rows,
        cache,
        rows.map((r) => r.ids),
        rows[0].request.images,
      );
      // Both sides left-padded to one cache length, as the caches are joined: a running row's
      // last id is not cached yet, a joining row's first answer token is appended below.
      const width = Math.max(longest, this.#cache?.length ?? 0);
      for (const r of [...this.#running, ...rows]) {
        const padding = width - (r.ids.length - (r.out.length > 0 ? 1 : 0));
        if (padding === 0) continue;
        r.ids = [...new Array(padding).fill(this.#options.padTokenId), ...r.ids];
        r.mask = [...new Array(padding).fill(0), ...r.mask];
      }
      if (this.#cache) {
        this.#cache.append(cache);
        this.joins++;
      } else this.#cache = cache;
      this.#running.push(...rows);
      this.#accept(next, this.#running.length - rows.length);
    } catch (e) {
      cache.dispose();
      for (const r of rows) r.reject(e instanceof Error ? e : new Error(String(e)));
      throw e;
    }
  }

  /** One token for every running row. */
  #step(): void {
    if (this.#running.length === 0 || !this.#cache) return;
    const next = this.#forward(
      this.#running,
      this.#cache,
      this.#running.map((r) => [r.ids[r.ids.length - 1]]),
    );
    this.#accept(next, 0);
  }

  /** Runs the model over `feed` [B, T] with the rows' masks (a prefill: its images) and picks each row's next token. */
  #forward(rows: Active[], cache: KVCache, feed: number[][], images?: ImageInputs): number[] {
    this.steps++;
    this.widest = Math.max(this.widest, rows.length);
    const device = this.#model.device;
    return torch.tidy(() => {
      const input = torch.tensor(feed, { dtype: "int64", device }); // [B, T]
      const attention = torch.tensor(
        rows.map((r) => r.mask),
        { dtype: "int64", device },
      ); // [B, past + T]
      // The head on the last position only, as the in-process sampler does.
      const options = { attentionMask: attention, cache, ...images };
      const hidden = this.#model.hiddenStates(input, options); // [B, T, C]
      const last = this.#model.logitsFromHidden(hidden.select(1, hidden.shape[1] - 1)).to("float32"); // [B, V]
      return pickPerRow(
        last,
        rows.map((r) => r.request),
        rows.map((r) => r.stream),
      );
    });
  }

  /** Appends tokens to the running rows from `first` on, finishes rows that are done, and compacts. */
  #accept(tokens: number[], first: number): void {
    const keep: number[] = [];
    this.#running.forEach((row, i) => {
      if (this.#cancelled(row)) return;
      if (i < first) {
        keep.push(i);
        return;
      }
      const token = tokens[i - first];
      row.ids.push(token);
      row.mask.push(1);
      row.out.push(token);
      const finish = this.#finish(row, token);
      if (finish) row.resolve(finish);
      else keep.push(i);
    });
    if (keep.length === this.#running.length) return;
    this.#running = keep.map((i) => this.#running[i]);
    if (this.#running.length === 0) {
      this.#cache?.dispose();
      this.#cache = null;
      return;
    }
    let firstColumn = 0;
    while (this.#running.every((r) => r.mask[firstColumn] === 0)) firstColumn++;
    for (const r of this.#running) {
      r.ids = r.ids.slice(firstColumn);
      r.mask = r.mask.slice(firstColumn);
    }
    const index = torch.tensor(keep, { dtype: "int64", device: this.#model.device });
    try {
      this.#cache!.compact(index, firstColumn);
    } finally {
      index.dispose();
    }
  }

  /** Whether the row's client has gone (then the row is rejected and must leave). */
  #cancelled(row: Waiting): boolean {
    if (!row.request.signal?.aborted) return false;
    row.reject(new Error("the request was cancelled"));
    return true;
  }

  /** The row's result when its last token ends it, else null (streaming what is safe to show). */
  #finish(row: Active, token: number): RowResult | null {
    const { request } = row;
    const eos = this.#eos.has(token);
    const answer = eos ? row.out.slice(0, -1) : row.out;
    let text = this.#options.decode(answer);
    let reason: RowResult["finishReason"] | null = eos ? "eos" : null;
    const cut = firstStop(text, request.stop);
    if (cut >= 0) {
      text = text.slice(0, cut);
      reason = "stop_string";
    }
    if (!reason && row.out.length >= request.maxTokens) reason = "length";
    if (request.onText) {
      // Held back while it could still become a stop string or is half a character.
      const halfCharacter = text.endsWith("\uFFFD") ? 1 : 0;
      const hold = reason ? 0 : Math.max(0, ...request.stop.map((s) => s.length - 1)) + halfCharacter;
      const upTo = Math.max(row.sent, text.length - hold);
      if (upTo > row.sent) request.onText(text.slice(row.sent, upTo));
      row.sent = upTo;
    }
    return reason ? { tokens: row.out, text, finishReason: reason } : null;
  }
}

/** Where the first stop string starts in `text`, or -1. */
function firstStop(text: string, stops: string[]): number {
  let at = -1;
  for (const s of stops) {
    const i = s ? text.indexOf(s) : -1;
    if (i >= 0 && (at < 0 || i < at)) at = i;
  }
  return at;
}

/**
 * One token per row of `logits` [B, V], each row with its own settings: rows are grouped by
 * (temperature, top-p, top-k) and each group sampled by the in-process sampler, one uniform
 * from each row's stream per step (greedy rows draw one too, as generate() does).
 */
export function pickPerRow(logits: torch.Tensor, requests: RowRequest[], streams: (() => number)[]): number[] {
  const uniforms = streams.map((s) => s());
  const groups = new Map<string, number[]>();
  requests.forEach((r, i) => {
    const key = r.temperature <= 0 ? "greedy" : `${r.temperature}|${r.topP}|${r.topK}`;
    groups.set(key, [...(groups.get(key) ?? []), i]);
  });
  const out = new Array<number>(requests.length);
  for (const rows of groups.values()) {
    const r = requests[rows[0]];
    const picked = torch.tidy(() => {
      const index = torch.tensor(rows, { dtype: "int64", device: logits.device });
      const sub = rows.length === requests.length ? logits : logits.indexSelect(0, index); // [B', V]
      const settings = { temperature: r.temperature, topP: r.topP, topK: r.topK };
      return pickTokens(sub, settings, r.temperature > 0 ? rows.map((i) => uniforms[i]) : undefined);
    });
    rows.forEach((row, n) => {
      out[row] = picked[n];
    });
  }
  return out;
}
