// Text generation for causal LMs: greedy or sampled (temperature, top-k, top-p), batched with
// left padding, with a KV cache, stopping on EOS or stop strings, reproducible under a seed.
import * as torch from "../torch/index.js";
import { KVCache } from "./cache.js";
import type { CausalLM } from "./causal-lm.js";

export interface GenerateOptions {
  maxNewTokens?: number;
  /** 0 (default) decodes greedily; above 0 samples from softmax(logits / temperature). */
  temperature?: number;
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

export function generate(model: CausalLM, prompts: number[][], options: GenerateOptions = {}): GenerateResult {
  const maxNew = options.maxNewTokens ?? 64;
  const eos = new Set(options.eosTokenIds ?? []);
  const pad = options.padTokenId ?? options.eosTokenIds?.[0] ?? 0;
  const useCache = options.useCache ?? true;
  if (prompts.length === 0) return { tokens: [], finishReasons: [] };
  if (prompts.some((p) => p.length === 0)) throw new Error("generate: every prompt needs at least one token");
  if (options.stopStrings?.length && !options.decode) throw new Error("generate: stopStrings need a decode function");
  if (options.seed !== undefined) torch.manualSeed(options.seed);
  const longest = Math.max(...prompts.map((p) => p.length));
  if (longest + maxNew > model.maxPositions) {
    throw new Error(`generate: prompt (${longest}) + maxNewTokens (${maxNew}) exceeds the model's ${model.maxPositions} positions`);
  }

  const batch = prompts.length;
  // Left padding: every row's last prompt token sits in the last column.
  const ids = prompts.map((p) => [...new Array(longest - p.length).fill(pad), ...p]);
  const mask = prompts.map((p) => [...new Array(longest - p.length).fill(0), ...new Array(p.length).fill(1)]);
  const out: number[][] = prompts.map(() => []);
  const reasons: GenerateResult["finishReasons"] = prompts.map(() => "length");
  const done = new Array(batch).fill(false);
  const cache = useCache ? new KVCache(model.numLayers) : undefined;
  const wasTraining = model.training;
  const device = model.device;
  model.eval();
  try {
    torch.noGrad(() => {
      for (let step = 0; step < maxNew && done.includes(false); step++) {
        const next = torch.tidy(() => {
          const feed = cache && step > 0 ? ids.map((row) => [row[row.length - 1]]) : ids;
          const input = torch.tensor(feed, { dtype: "int64", device });
          const attention = torch.tensor(mask, { dtype: "int64", device });
          const logits = model.forward(input, { attentionMask: attention, cache });
          const last = logits.select(1, logits.shape[1] - 1).to("float32");
          return pickTokens(last, options);
        });
        for (let r = 0; r < batch; r++) {
          const token = done[r] ? pad : next[r];
          ids[r].push(token);
          mask[r].push(done[r] ? 0 : 1);
          if (done[r]) continue;
          out[r].push(token);
          if (eos.has(token)) { done[r] = true; reasons[r] = "eos"; continue; }
          if (options.stopStrings?.length) {
            const text = options.decode!(out[r]);
            if (options.stopStrings.some((s) => text.endsWith(s) || text.includes(s))) { done[r] = true; reasons[r] = "stop_string"; }
          }
        }
        options.onStep?.(step + 1);
      }
    });
  } finally {
    cache?.dispose();
    model.train(wasTraining);
  }
  return { tokens: out, finishReasons: reasons };
}

/** Chooses one token per row of logits [B, V]: argmax, or a sample after temperature/top-k/top-p. */
export function pickTokens(logits: torch.Tensor, options: Pick<GenerateOptions, "temperature" | "topK" | "topP">): number[] {
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
    return scores.softmax(-1).multinomial(1).squeeze(1).toArray() as number[];
  });
}
