// Text generation for causal LMs: greedy or sampled (temperature, top-k, top-p), batched with
// left padding, with a KV cache, stopping on EOS or stop strings, reproducible under a seed.
import * as torch from "../torch/index.js";
import { KVCache } from "./cache.js";
import type { CausalLM } from "./causal-lm.js";
import type { ImageInputs } from "./qwen2-vl.js";
import { takesImages } from "./registry.js";
import { mulberry32 } from "../util/random.js";
import { holdPackedWeights } from "../nn/packing.js";

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
  /**
   * The prompts' images, for a model that takes them (Qwen2-VL): pixel values of every image, in
   * prompt order, and their grids; each prompt's image tokens stand for its images. They feed
   * the first step (the prefill); needs the KV cache, one sequence per prompt.
   */
  images?: ImageInputs | null;
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
  if (!(temperature >= 0 && Number.isFinite(temperature)))
    throw new Error(`generate: temperature must be a finite number >= 0 (0: greedy), got ${temperature}`);
  if (!Number.isInteger(topK) || topK < 0)
    throw new Error(`generate: topK must be an integer >= 0 (0: no limit), got ${topK}`);
  if (!(topP >= 0 && topP <= 1)) throw new Error(`generate: topP must be from 0 to 1, got ${topP}`);
  if (seed !== undefined && (!Number.isSafeInteger(seed) || seed < 0)) {
    throw new Error(`generate: seed must be an integer from 0 to ${Number.MAX_SAFE_INTEGER}, got ${seed}`);
  }
}

export function generate(model: CausalLM, given: number[][], options: GenerateOptions = {}): GenerateResult {
  const n = options.numReturnSequences ?? 1;
  const penalty = options.repetitionPenalty ?? 1;
  if (!Number.isInteger(n) || n < 1)
    throw new Error(`generate: numReturnSequences must be a positive integer, got ${n}`);
  if (!(penalty > 0)) throw new Error(`generate: repetitionPenalty must be above 0, got ${penalty}`);
  const temperature =
    options.doSample === false ? 0 : options.doSample && !(options.temperature! > 0) ? 1 : (options.temperature ?? 0);
  if (n > 1 && temperature === 0) {
    throw new Error(
      "generate: numReturnSequences above 1 needs sampling (doSample, or temperature > 0): greedy decoding returns one sequence",
    );
  }
  if (n > 1 && options.rowSeeds)
    throw new Error("generate: rowSeeds gives one seed per prompt; with numReturnSequences, use seed");
  if (n > 1 && typeof options.maxNewTokens === "object")
    options = { ...options, maxNewTokens: options.maxNewTokens.flatMap((m) => new Array(n).fill(m)) };
  options = { ...options, temperature };
  // As transformers expands input_ids: each prompt n times in a row.
  const prompts = n > 1 ? given.flatMap((p) => new Array<number[]>(n).fill(p)) : given;
  const limits =
    typeof options.maxNewTokens === "object"
      ? options.maxNewTokens
      : prompts.map(() => (options.maxNewTokens as number | undefined) ?? 64);
  const maxNew = Math.max(0, ...limits);
  const eos = new Set(options.eosTokenIds ?? []);
  const pad = options.padTokenId ?? options.eosTokenIds?.[0] ?? 0;
  const useCache = options.useCache ?? true;
  if (prompts.length === 0) return { tokens: [], finishReasons: [] };
  if (limits.length !== prompts.length)
    throw new Error(`generate: maxNewTokens has ${limits.length} limits for ${prompts.length} prompts`);
  if (prompts.some((p) => p.length === 0)) throw new Error("generate: every prompt needs at least one token");
  if (options.stopStrings?.length && !options.decode) throw new Error("generate: stopStrings need a decode function");
  checkSampling(options);
  const images = options.images ?? undefined;
  if (images) {
    if (!takesImages(model))
      throw new Error(`generate: images given to a model of architecture '${model.architecture}', which takes none`);
    if (!useCache) throw new Error("generate: images need the KV cache (useCache true)");
    if (n > 1) throw new Error("generate: images with numReturnSequences above 1: repeat the prompts instead");
    if (limits.some((m) => m < 1))
      throw new Error("generate: with images, every prompt needs maxNewTokens of 1 or more");
  }
  if (options.seed !== undefined) torch.manualSeed(options.seed);
  const longest = Math.max(...prompts.map((p) => p.length));
  prompts.forEach((p, r) => {
    if (p.length + limits[r] > model.maxPositions) {
      throw new Error(
        `generate: prompt (${p.length}) + maxNewTokens (${limits[r]}) exceeds the model's ${model.maxPositions} positions`,
      );
    }
  });

  // Left padding: every row's last prompt token sits in the last column. `rows` maps the rows
  // still generating to their prompt; finished rows leave the batch (and the cache) so they stop
  // costing compute, and columns that are padding in every remaining row are dropped.
  let rows = prompts.map((_, r) => r).filter((r) => limits[r] > 0);
  let ids = rows.map((r) => [...new Array(longest - prompts[r].length).fill(pad), ...prompts[r]]);
  let mask = rows.map((r) => [
    ...new Array(longest - prompts[r].length).fill(0),
    ...new Array(prompts[r].length).fill(1),
  ]);
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
  // Linear weights packed for the length of the call (src/nn/packing.ts); `serve` holds them for
  // its whole life. Not with ZeRO-3's sharded weights: a pack of every layer would hold the whole
  // model on each process, which is what sharding avoids.
  const releasePacks = model.residency ? () => {} : holdPackedWeights(model);
  try {
    torch.noGrad(() => {
      for (let step = 0; step < maxNew && rows.length > 0; step++) {
        const uniforms = streams ? rows.map((r) => streams[r]()) : undefined;
        const next = torch.tidy(() => {
          const feed = cache && step > 0 ? ids.map((row) => [row[row.length - 1]]) : ids;
          const input = torch.tensor(feed, { dtype: "int64", device });
          const attention = torch.tensor(mask, { dtype: "int64", device });
          // The head on the last position only: a prefill's other positions need no logits.
          const prefill = step === 0 ? images : undefined;
          const hidden = model.hiddenStates(input, { ...prefill, attentionMask: attention, cache }); // [B', T, C]
          let last = model.logitsFromHidden(hidden.select(1, hidden.shape[1] - 1)).to("float32"); // [B', V]
          if (penalty !== 1)
            last = applyRepetitionPenalty(
              last,
              rows.map((r) => [...prompts[r], ...out[r]]),
              penalty,
            );
          return pickTokens(last, options, uniforms);
        });
        const keep: number[] = [];
        rows.forEach((r, i) => {
          const token = next[i];
          ids[i].push(token);
          mask[i].push(1);
          out[r].push(token);
          if (eos.has(token)) {
            reasons[r] = "eos";
            return;
          }
          if (options.stopStrings?.length) {
            const text = options.decode!(out[r]);
            if (options.stopStrings.some((s) => text.endsWith(s) || text.includes(s))) {
              reasons[r] = "stop_string";
              return;
            }
          }
          if (out[r].length < limits[r]) keep.push(i);
        });
        options.onStep?.(step + 1);
        if (keep.length === rows.length || keep.length === 0) {
          if (keep.length === 0) rows = [];
          continue;
        }
        rows = keep.map((i) => rows[i]);
        ids = keep.map((i) => ids[i]);
        mask = keep.map((i) => mask[i]);
        let firstColumn = 0;
        while (mask.every((m) => m[firstColumn] === 0)) firstColumn++;
        if (firstColumn > 0) {
          ids = ids.map((row) => row.slice(firstColumn));
          mask = mask.map((m) => m.slice(firstColumn));
        }
        if (cache) {
          const index = torch.tensor(keep, { dtype: "int64", device });
          try {
            cache.compact(index, firstColumn);
          } finally {
            index.dispose();
          }
        }
      }
    });
  } finally {
    releasePacks();
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
    const index = torch.tensor(
      seen.map((s) => [...s, ...new Array(width - s.length).fill(0)]),
      { dtype: "int64", device },
    ); // [B, W]
    const ones = torch.tensor(
      seen.map((s) => [...s.map(() => 1), ...new Array(width - s.length).fill(0)]),
      { dtype: "float32", device },
    );
    const seenMask = torch.zerosLike(logits, { dtype: "float32" }).scatterAdd(1, index, ones).gt(0); // [B, V]
    const penalised = torch.where(logits.lt(0), logits.mul(penalty), logits.div(penalty)); // [B, V]
    return torch.where(seenMask, penalised, logits);
  });
}

/**
 * Chooses one token per row of logits [B, V]: argmax, or a sample after temperature/top-k/top-p,
 * drawn by the global generator, or, given one uniform in [0, 1) per row, by inverting that
 * row's cumulative distribution (so each row's draw depends on its own uniform only).
 *
 * Top-p needs the most likely tokens in order only up to where they reach p: the cutoff is
 * found per row on the host (topPCutoff, linear time), not by sorting the whole vocabulary each
 * step (a sort of [B, V] cost more than the rest of a decoding step). Tokens tied with the last
 * kept one are all kept.
 */
export function pickTokens(
  logits: torch.Tensor,
  options: Pick<GenerateOptions, "temperature" | "topK" | "topP">,
  uniforms?: number[],
): number[] {
  const temperature = options.temperature ?? 0;
  if (temperature <= 0) return torch.tidy(() => logits.argmax(-1).toArray() as number[]);
  const [rows, vocab] = logits.shape;
  const k = options.topK ?? 0;
  const p = options.topP ?? 1;
  const probs = torch.tidy(() => {
    let scores = logits.div(temperature);
    if (k > 0 && k < vocab) {
      const kth = scores.topk(k, -1).values.narrow(1, k - 1, 1);
      scores = scores.maskedFill(scores.lt(kth), -Infinity);
    }
    return scores.softmax(-1).to("float32"); // [B, V]
  });
  try {
    const q = probs.data() as Float32Array; // B * V, row-major
    const row = (r: number) => q.subarray(r * vocab, (r + 1) * vocab);
    const cutoffs = Array.from({ length: rows }, (_, r) => (p < 1 ? topPSelection(row(r), p) : null));
    if (uniforms) return cutoffs.map((c, r) => inverseCdf(row(r), c, uniforms[r]));
    return torch.tidy(() => {
      const kept =
        p < 1
          ? probs.maskedFill(
              probs.lt(
                torch.tensor(
                  cutoffs.map((c) => [c!.cut]),
                  { dtype: "float32", device: logits.device },
                ),
              ),
              0,
            )
          : probs;
      return kept.multinomial(1).squeeze(1).toArray() as number[];
    });
  } finally {
    probs.dispose();
  }
}

/** What top-p keeps of one row: the tokens with probability >= `cut`, whose probabilities sum to `mass`. */
interface TopPSelection {
  cut: number;
  mass: number;
}

/**
 * The smallest probability top-p keeps in one row: going down from the most likely token, a
 * token is kept while the tokens above it sum to less than p.
 */
export function topPCutoff(row: Float32Array, p: number): number {
  return topPSelection(row, p).cut;
}

// Buckets of probabilities by the top bits of their float32 pattern: for non-negative floats the
// bit pattern grows with the value, so bits >>> 15 (the exponent and 7 mantissa bits, 1/128 of an
// octave wide) orders the buckets as the values. 2^16 of them cover every non-negative float32.
const BUCKET_SHIFT = 15;
const bucketMass = new Float64Array(1 << 16);
let scratch = new Float32Array(0); // the cutoff bucket's tokens, reordered by the selection

/**
 * topPCutoff's selection, in two passes over the row instead of a sort: the mass per bucket
 * (above), walked down from the highest bucket until it reaches p, finds the bucket holding
 * the cutoff; only that bucket's tokens are then ordered exactly (a weighted quickselect).
 */
function topPSelection(row: Float32Array, p: number): TopPSelection {
  // top-p 0 keeps the most likely token only (transformers keeps at least one).
  if (!(p > 0)) {
    const top = row.reduce((m, x) => (x > m ? x : m), -Infinity);
    return { cut: top, mass: row.reduce((s, x) => (x === top ? s + x : s), 0) };
  }
  const bits = new Uint32Array(row.buffer, row.byteOffset, row.length);
  let lowest = bucketMass.length;
  let highest = -1;
  for (let i = 0; i < row.length; i++) {
    if (!(row[i] > 0)) continue; // zeros (and NaN) are never kept
    const b = bits[i] >>> BUCKET_SHIFT;
    bucketMass[b] += row[i];
    if (b < lowest) lowest = b;
    if (b > highest) highest = b;
  }
  if (highest < 0) return { cut: Infinity, mass: 0 }; // no token has probability above 0
  let above = 0; // the mass of the buckets above the one being looked at (< p)
  let bucket = highest;
  while (bucket > lowest && above + bucketMass[bucket] < p) above += bucketMass[bucket--];
  bucketMass.fill(0, lowest, highest + 1);
  let n = 0;
  if (scratch.length < row.length) scratch = new Float32Array(row.length);
  for (let i = 0; i < row.length; i++) if (row[i] > 0 && bits[i] >>> BUCKET_SHIFT === bucket) scratch[n++] = row[i];
  const candidates = scratch.subarray(0, n);
  const { cut, keptMass } = weightedSelect(candidates, p - above);
  return { cut, mass: above + keptMass };
}

/**
 * Within `a` (one bucket's tokens, reordered in place): the smallest value kept when going down
 * from the largest, each kept while the ones above it sum to less than `p`, and the mass of all
 * tokens >= it. Partitions around pivots (quickselect weighted by probability), so only the part
 * holding the cutoff is visited again. When all of `a` sums to less than p, its smallest value.
 */
function weightedSelect(a: Float32Array, p: number): { cut: number; keptMass: number } {
  let lo = 0; // [lo, hi) holds the candidates
  let hi = a.length;
  let above = 0; // the mass of tokens known to rank above every candidate (< p)
  for (;;) {
    const pivot = a[lo + ((hi - lo) >> 1)];
    // Three-way partition: [lo, i) above the pivot, [i, j) equal to it, [k, hi) below it.
    let i = lo;
    let j = lo;
    let k = hi;
    let higherMass = 0;
    while (j < k) {
      const x = a[j];
      if (x > pivot) {
        a[j] = a[i];
        a[i] = x;
        i++;
        j++;
        higherMass += x;
      } else if (x < pivot) {
        k--;
        a[j] = a[k];
        a[k] = x;
      } else j++;
    }
    // The first token at the pivot already has p above it: the cutoff is among the higher ones.
    if (above + higherMass >= p && i > lo) {
      hi = i;
      continue;
    }
    above += higherMass + (j - i) * pivot;
    if (above >= p || k === hi) return { cut: pivot, keptMass: above };
    lo = k;
  }
}

/**
 * The token where a row's cumulative probability, over the tokens kept (probability >= cut,
 * > 0; all of them without a cut), first exceeds u times their mass.
 */
function inverseCdf(row: Float32Array, kept: TopPSelection | null, u: number): number {
  const cut = kept?.cut ?? 0;
  let total = kept?.mass;
  if (total === undefined) {
    total = 0;
    for (let i = 0; i < row.length; i++) if (row[i] > 0) total += row[i];
  }
  const target = u * total;
  let sum = 0;
  let last = 0;
  for (let i = 0; i < row.length; i++) {
    if (!(row[i] > 0 && row[i] >= cut)) continue;
    sum += row[i];
    last = i;
    if (sum > target) return i;
  }
  return last; // rounding at the top
}
