// The one pair-batching loop, shared by training, the reference log-prob cache and `eval`:
// pairs in batches -> one padded batch of chosen then rejected rows (concatenatedBatch) -> one
// forward -> per-pair sequence log-probs (the LM head on response positions only, in chunks).
import * as torch from "../torch/index.js";
import type { CausalLM } from "../models/causal-lm.js";
import { concatenatedBatch, type PaddedBatch, type TokenizedPair } from "../data/tokenize.js";
import { concatenatedForward, type ForwardResult, type LogpsOptions } from "./forward.js";

/** Consecutive slices of at most `size` items, in order (the last may be shorter). */
export function batchesOf<T>(items: readonly T[], size: number): T[][] {
  if (!Number.isInteger(size) || size < 1) throw new RangeError(`batch size must be a positive integer, got ${size}`);
  const out: T[][] = [];
  for (let start = 0; start < items.length; start += size) out.push(items.slice(start, start + size));
  return out;
}

export interface PairForward extends ForwardResult {
  /** The padded batch the forward ran on ([2B, T] as lists: chosen rows, then rejected rows), with the pairs' scores. */
  batch: PaddedBatch;
}

/**
 * One forward over the pairs' chosen and rejected sequences together; gradients as the
 * caller's grad mode, recorded for recomputation on `options.recompute` when given (training).
 */
export function forwardPairs(
  model: CausalLM,
  pairs: TokenizedPair[],
  padTokenId: number,
  lengthNorm: boolean,
  options: LogpsOptions = {},
): PairForward {
  const batch = concatenatedBatch(pairs, padTokenId);
  return { ...concatenatedForward(model, batch, lengthNorm, options), batch };
}

/** Per-pair log-probs of the chosen and rejected answers, in the pairs' order. */
export interface PairLogps {
  chosen: number[];
  rejected: number[];
}

/**
 * Per-pair log-probs of every pair, `batchSize` pairs per forward, under noGrad; `onBatch` gets
 * the pairs done; `options.ldAlpha` as the policy's (LD-DPO weighs the reference alike).
 */
export function pairLogps(
  model: CausalLM,
  pairs: TokenizedPair[],
  padTokenId: number,
  lengthNorm: boolean,
  batchSize: number,
  onBatch?: (done: number) => void,
  options: Pick<LogpsOptions, "ldAlpha"> = {},
): PairLogps {
  const out: PairLogps = { chosen: [], rejected: [] };
  let done = 0;
  torch.noGrad(() => {
    for (const slice of batchesOf(pairs, batchSize)) {
      torch.tidy(() => {
        const r = forwardPairs(model, slice, padTokenId, lengthNorm, options);
        out.chosen.push(...(r.chosen.toArray() as number[])); // [B]
        out.rejected.push(...(r.rejected.toArray() as number[])); // [B]
      });
      done += slice.length;
      onBatch?.(done);
    }
  });
  return out;
}
