// The one pair-batching loop, shared by training, the reference log-prob cache and `eval`:
// pairs in batches -> one padded batch of chosen then rejected rows (concatenatedBatch) -> one
// forward -> per-pair sequence log-probs (the LM head on response positions only, in chunks).
import * as torch from "../torch/index.js";
import type { CausalLM } from "../models/causal-lm.js";
import { concatenatedBatch, type PaddedBatch, type TokenizedPair } from "../data/tokenize.js";
import { imagePairBatch, type ImageTokenizeOptions, type ImageTokenizedPair } from "../data/image-tokenize.js";
import type { Qwen2VLProcessor } from "../text/index.js";
import type { ImageInputs } from "../models/qwen2-vl.js";
import { concatenatedForward, type ForwardResult, type LogpsOptions } from "./forward.js";

/** Consecutive slices of at most `size` items, in order (the last may be shorter). */
export function batchesOf<T>(items: readonly T[], size: number): T[][] {
  if (!Number.isInteger(size) || size < 1) throw new RangeError(`batch size must be a positive integer, got ${size}`);
  const out: T[][] = [];
  for (let start = 0; start < items.length; start += size) out.push(items.slice(start, start + size));
  return out;
}

/**
 * How image pairs get their pixels at each forward: the model's processor and the size bounds the
 * pairs were tokenised with (their pads were counted for those sizes). Pixels are made per batch
 * from the files, so a data set's images are never all in memory at once.
 */
export interface PairVision {
  processor: Qwen2VLProcessor;
  options: ImageTokenizeOptions;
}

/** Options of a forward over pairs: the log-prob options, and the vision settings image pairs need. */
export interface PairForwardOptions extends Omit<LogpsOptions, "images"> {
  vision?: PairVision | null;
}

const hasImages = (p: TokenizedPair): p is ImageTokenizedPair =>
  ((p as Partial<ImageTokenizedPair>).images?.length ?? 0) > 0;

/**
 * The padded batch of `pairs` and, when any pair carries images, their pixel values and grids as
 * tensors on `device` (every pair's images, chosen rows first: imagePairBatch's order).
 */
export function pairBatch(
  pairs: TokenizedPair[],
  padTokenId: number,
  vision: PairVision | null | undefined,
  device: torch.Device,
): { batch: PaddedBatch; images: ImageInputs | null } {
  if (!pairs.some(hasImages)) return { batch: concatenatedBatch(pairs, padTokenId), images: null };
  if (!vision) throw new Error("these pairs carry images: their forward needs the model's processor (vision)");
  const b = imagePairBatch(pairs as ImageTokenizedPair[], vision.processor, padTokenId, vision.options);
  const patches = b.pixelValues.length / b.patchDim;
  const { pixelValues: _pixels, patchDim: _dim, imageGridThw: _grids, ...batch } = b;
  return {
    batch,
    images: {
      pixelValues: torch.tensor(b.pixelValues, { shape: [patches, b.patchDim], device }), // [patches, 3*2*14*14]
      imageGridThw: torch.tensor(b.imageGridThw, { dtype: "int64", device }), // [images, 3]
    },
  };
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
  options: PairForwardOptions = {},
): PairForward {
  const { vision, ...logps } = options;
  const { batch, images } = pairBatch(pairs, padTokenId, vision, model.device);
  try {
    return { ...concatenatedForward(model, batch, lengthNorm, { ...logps, images }), batch };
  } finally {
    images?.pixelValues?.dispose();
    images?.imageGridThw?.dispose();
  }
}

/** Per-pair log-probs of the chosen and rejected answers, in the pairs' order. */
export interface PairLogps {
  chosen: number[];
  rejected: number[];
}

/**
 * Per-pair log-probs of every pair, `batchSize` pairs per forward, under noGrad; `onBatch` gets
 * the pairs done; `options.ldAlpha` as the policy's (LD-DPO weighs the reference alike);
 * `options.vision` for image pairs.
 */
export function pairLogps(
  model: CausalLM,
  pairs: TokenizedPair[],
  padTokenId: number,
  lengthNorm: boolean,
  batchSize: number,
  onBatch?: (done: number) => void,
  options: Pick<PairForwardOptions, "ldAlpha" | "vision"> = {},
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
