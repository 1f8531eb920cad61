// Text generation for causal LMs: greedy or sampled (temperature, top-k, top-p), batched with
// left padding, with a KV cache, stopping on EOS or stop strings, reproducible under a seed.
import * as torch from "../torch/index.js";
import { KVCache } from "./cache.js";
import type { CausalLM } from "./causal-lm.js";
import { mulberry32 } from "../util/random.js";

export interface GenerateOptions {
  /** At most this many new tokens per prompt: one number, or one per prompt. */
  maxNewTokens?: number | number[];
  /** 0 (default) decodes greedily; above 0 samples from softmax(logits / temperature). */
  temperature?: number;
  /**
   * transformers' do_sample: false decodes greedily whatever the temperature; true samples (with
   * temperature 1 unless given). Unset: sample when temperature > 0.
   */
  doSample?: boolean;
  /**
   * transformers' repetition_penalty (CTRL's): each token already in the row (its prompt and what
   * it generated) has its logit divided by the penalty when positive, multiplied when negative,
   * before temperature, top-k and top-p. 1 (default): none.
   */
  repetitionPenalty?: number;
  /**
   * transformers' num_return_sequences: that many sequences per prompt, sampled independently
   * (needs sampling, as transformers without beam search); result rows are prompt 0's sequences,
   * then prompt 1's...
   */
  numReturnSequences?: number;
  /** Sample only among the k most likely tokens (0 = no limit). */
  topK?: number;
  /** Sample only from the smallest set of tokens whose probability reaches p (1 = no limit). */
  topP?: number;
  /** Token ids that end a sequence (it is kept in the output). */
  eosTokenIds?: number[];
  /** Fills rows that finished early and the left padding of the prompt batch. */
  padTokenId?: number;
  /** Text that ends a sequence; needs `decode`. The stop string is kept in the output. */
  stopStrings?: string[];
  decode?: (ids: number[]) => string;
  /** Seeds the sampler (torch.manualSeed) so a run can be repeated. */
  seed?: number;
  /**
   * One seed per prompt: each row samples from its own stream, so what a prompt generates does
   * not depend on the other prompts of the batch or on their order (as vLLM's per-request seed).
   */
  rowSeeds?: number[];
  /** Reuse keys and values of earlier positions (default true); false recomputes everything. */
  useCache?: boolean;
  /** Called after each step with the number of tokens generated so far. */
  onStep?: (step: number) => void;
}

export interface GenerateResult {
  /** The generated ids per prompt (without the prompt, without padding). */
  tokens: number[][];
  finishReasons: ("eos" | "stop_string" | "length")[];
}

/** The sampling options in the ranges transformers' warpers accept (its errors, named here by option). */
function checkSampling(o: GenerateOptions): void {
  const { temperature = 0, topK = 0, topP = 1, seed } = o;
  if (!(temperature >= 0 && Number.isFinite(temperature))) throw new Error(`generate: temperature must be a finite number >= 0 (0: greedy), got ${temperature}`);
  if (!Number.isInteger(topK) || topK < 0) throw new Error(`generate: topK must be an integer >= 0 (0: no limit), got ${topK}`);
  if (!(topP >= 0 && topP <= 1)) throw new Error(`generate: topP must be from 0 to 1, got ${topP}`);
  if (seed !== undefined && (!Number.isSafeInteger(seed) || seed < 0)) {
    throw new Error(`generate: seed must be an integer from 0 to ${Number.MAX_SAFE_INTEGER}, got ${seed}`);
  }
}

export function generate(model: CausalLM, given: number[][], options: GenerateOptions = {}): GenerateResult {
  const n = options.numReturnSequences ?? 1;
  const penalty = options.repetitionPenalty ?? 1;
  if (!Number.isInteger(n) || n < 1) throw new Error(`generate: numReturnSequences must be a positive integer, got ${n}`);
  if (!(penalty > 0)) throw new Error(`generate: repetitionPenalty must be above 0, got ${penalty}`);
  const temperature = options.doSample === false ? 0 : options.doSample && !(options.temperature! > 0) ? 1 : options.temperature ?? 0;
  if (n > 1 && temperature === 0) {
    throw new Error("generate: numReturnSequences above 1 needs sampling (doSample, or temperature > 0): greedy decoding returns one sequence");
  }
  if (n > 1 && options.rowSeeds) throw new Error("generate: rowSeeds gives one seed per prompt; with numReturnSequences, use seed");
  if (n > 1 && typeof options.maxNewTokens === "object") options = { ...options, maxNewTokens: options.maxNewTokens.flatMap((m) => new Array(n).fill(m)) };
  options = { ...options, temperature };
  // As transformers expands input_ids: each prompt n times in a row.
  const prompts = n > 1 ? given.flatMap((p) => new Array<number[]>(n).fill(p)) : given;
  const limits = typeof options.maxNewTokens === "object" ? options.maxNewTokens : prompts.map(() => (options.maxNewTokens as number | undefined) ?? 64);
  const maxNew = Math.max(0, ...limits);
  const eos = new Set(options.eosTokenIds ?? []);
  const pad = options.padTokenId ?? options.eosTokenIds?.[0] ?? 0;
  const useCache = options.useCache ?? true;
  if (prompts.length === 0) return { tokens: [], finishReasons: [] };
  if (limits.length !== prompts.length) throw new Error(`generate: maxNewTokens has ${limits.length} limits for ${prompts.length} prompts`);
  if (prompts.some((p) => p.length === 0)) throw new Error("generate: every prompt needs at least one token");
  if (options.stopStrings?.length && !options.decode) throw new Error("generate: stopStrings need a decode function");
  checkSampling(options);
  if (options.seed !== undefined) torch.manualSeed(options.seed);
  const longest = Math.max(...prompts.map((p) => p.length));
  prompts.forEach((p, r) => {
    if (p.length + limits[r] > model.maxPositions) {
      throw new Error(`generate: prompt (${p.length}) + maxNewTokens (${limits[r]}) exceeds the model's ${model.maxPositions} positions`);
    }
  });

  // Left padding: every row's last prompt token sits in the last column. `rows` maps the rows
  // still generating to their prompt; finished rows leave the batch (and the cache) so they stop
  // costing compute, and columns that are padding in every remaining row are dropped.
  let rows = prompts.map((_, r) => r).filter((r) => limits[r] > 0);
  let ids = rows.map((r) => [...new Array(longest - prompts[r].length).fill(pad), ...prompts[r]]);
  let mask = rows.map((r) => [...new Array(longest - prompts[r].length).fill(0), ...new Array(prompts[r].length).fill(1)]);
  const out: number[][] = prompts.map(() => []);
  const reasons: GenerateResult["finishReasons"] = prompts.map(() => "length");
  // Per-row streams: a row's samples depend on its own seed only, not on the rows beside it.
  const streams = options.rowSeeds ? prompts.map((_, r) => mulberry32(options.rowSeeds![r])) : null;
  if (options.rowSeeds && options.rowSeeds.length !== prompts.length) {
    throw new Error(`generate: rowSeeds has ${options.rowSeeds.length} seeds for ${prompts.length} prompts`);
  }
  const cache = useCache ? new KVCache(model.numLayers) : undefined;
  const wasTraining = model.training;
  const device = model.device;
  model.eval();
  try {
    torch.noGrad(() => {
      for (let step = 0; step < maxNew && rows.length > 0; step++) {
        const uniforms = streams ? rows.map((r) => streams[r]()) : undefined;
        const next = torch.tidy(() => {
          const feed = cache && step > 0 ? ids.map((row) => [row[row.length - 1]]) : ids;
          const input = torch.tensor(feed, { dtype: "int64", device });
          const attention = torch.tensor(mask, { dtype: "int64", device });
          const logits = model.forward(input, { attentionMask: attention, cache });   // [B', T, V]
          let last = logits.select(1, logits.shape[1] - 1).to("float32");              // [B', V]
          if (penalty !== 1) last = applyRepetitionPenalty(last, rows.map((r) => [...prompts[r], ...out[r]]), penalty);
          return pickTokens(last, options, uniforms);
        });
        const keep: number[] = [];
        rows.forEach((r, i) => {
          const token = next[i];
          ids[i].push(token);
          mask[i].push(1);
          out[r].push(token);
          if (eos.has(token)) { reasons[r] = "eos"; return; }
          if (options.stopStrings?.length) {
            const text = options.decode!(out[r]);
            if (options.stopStrings.some((s) => text.endsWith(s) || text.includes(s))) { reasons[r] = "stop_string"; return; }
          }
          if (out[r].length < limits[r]) keep.push(i);
        });
        options.onStep?.(step + 1);
        if (keep.length === rows.length || keep.length === 0) { if (keep.length === 0) rows = []; continue; }
        rows = keep.map((i) => rows[i]);
        ids = keep.map((i) => ids[i]);
        mask = keep.map((i) => mask[i]);
        let firstColumn = 0;
        while (mask.every((m) => m[firstColumn] === 0)) firstColumn++;
        if (firstColumn > 0) { ids = ids.map((row) => row.slice(firstColumn)); mask = mask.map((m) => m.slice(firstColumn)); }
        if (cache) {
          const index = torch.tensor(keep, { dtype: "int64", device });
          try { cache.compact(index, firstColumn); } finally { index.dispose(); }
        }
      }
    });
  } finally {
    cache?.dispose();
    model.train(wasTraining);
  }
  return { tokens: out, finishReasons: reasons };
}

/**
 * transformers' RepetitionPenaltyLogitsProcessor on logits [B, V]: for each token id in `seen[b]`,
 * logit / penalty when positive, logit * penalty otherwise; other logits unchanged.
 */
export function applyRepetitionPenalty(logits: torch.Tensor, seen: number[][], penalty: number): torch.Tensor {
  return torch.tidy(() => {
    const width = Math.max(1, ...seen.map((s) => s.length));
    const device = logits.device;
    // Which ids each row has seen, as a mask [B, V]: ones scattered at its ids (padding entries add 0).
    const index = torch.tensor(seen.map((s) => [...s, ...new Array(width - s.length).fill(0)]), { dtype: "int64", device });   // [B, W]
    const ones = torch.tensor(seen.map((s) => [...s.map(() => 1), ...new Array(width - s.length).fill(0)]), { dtype: "float32", device });
    const seenMask = torch.zerosLike(logits, { dtype: "float32" }).scatterAdd(1, index, ones).gt(0);                          // [B, V]
    const penalised = torch.where(logits.lt(0), logits.mul(penalty), logits.div(penalty));                                     // [B, V]
    return torch.where(seenMask, penalised, logits);
  });
}

/**
 * Chooses one token per row of logits [B, V]: argmax, or a sample after temperature/top-k/top-p,
 * drawn by the global generator, or, given one uniform in [0, 1) per row, by inverting that
 * row's cumulative distribution (so each row's draw depends on its own uniform only).
 */
export function pickTokens(logits: torch.Tensor, options: Pick<GenerateOptions, "temperature" | "topK" | "topP">, uniforms?: number[]): number[] {
  const temperature = options.temperature ?? 0;
  return torch.tidy(() => {
    if (temperature <= 0) return (logits.argmax(-1).toArray() as number[]);
    let scores = logits.div(temperature);
    const vocab = scores.shape[1];
    const k = options.topK ?? 0;
    if (k > 0 && k < vocab) {
      const kth = scores.topk(k, -1).values.narrow(1, k - 1, 1);
      scores = scores.maskedFill(scores.lt(kth), -Infinity);
    }
    const p = options.topP ?? 1;
    if (p < 1) {
      const { values, indices } = scores.sort(-1, true);
      const probs = values.softmax(-1);
      // Drop a token when the tokens ranked above it already reach p (transformers' top-p);
      // the most likely token always stays.
      const before = probs.cumsum(-1).sub(probs);
      const dropSorted = before.ge(p).logicalAnd(torch.arange(0, vocab, 1, { device: logits.device }).gt(0));
      const drop = torch.zerosLike(dropSorted, { dtype: "uint8" }).scatterAdd(1, indices, dropSorted.to("uint8")).to("bool");
      scores = scores.maskedFill(drop, -Infinity);
    }
    const probs = scores.softmax(-1);                                                        // [B, V]
    if (!uniforms) return probs.multinomial(1).squeeze(1).toArray() as number[];
    // The first token whose cumulative probability exceeds u; tokens of probability 0 never are
    // (their cumulative value equals the one before). The clamp covers rounding at the top.
    const cdf = probs.to("float64").cumsum(-1);                                              // [B, V]
    const u = torch.tensor(uniforms.map((x) => [x]), { dtype: "float64", device: logits.device });   // [B, 1]
    return cdf.le(u).sum(-1).clamp(null, vocab - 1).toArray() as number[];
  });
}
