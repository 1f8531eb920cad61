// Per-sequence log-probabilities of the response tokens, as the reference computes them:
// logits predict the next token (shift by one), prompt and padding labels (-100) do not count,
// and with length normalisation the sum becomes a mean over response tokens.
//
// Training, the reference, the cache and evaluation take them from the last hidden states, not
// from full logits: DPO needs only the response tokens' log-probs, so the final norm and the LM
// head run on the response positions only ([N, C] gathered from [2B, T, C]), in chunks of
// rows whose [chunk, V] logits are freed once their log-probs exist. Under grad, with a
// recompute tape, the chunks are tape segments (recomputed one at a time in backward), so no
// [*, V] tensor outlives its chunk; with gradient checkpointing the decoder layers are too.
// sequenceLogps (from full logits) is the same arithmetic, kept for the benchmark's
// HF-style side and as the tests' reference.
import * as torch from "../torch/index.js";
import type { CausalLM } from "../models/causal-lm.js";
import type { PaddedBatch } from "../data/tokenize.js";
import type { ImageInputs } from "../models/qwen2-vl.js";
import { takesImages } from "../models/registry.js";
import type { RecomputeTape } from "../nn/recompute.js";

/**
 * Response positions per LM-head chunk: [chunk, V] logits at a time, about 78 MB in float32 at
 * Qwen2.5's vocabulary (151936). A chunk's backward holds three or four [chunk, V] tensors at
 * once (the recomputed logits, the log-softmax, their gradients), so this bounds what the LM
 * head adds to the peak (about 0.3 GB here; 1024 rows cost 1.2 GB, measured by `bench train
 * --case qwen2`), while [128, hidden] x [hidden, V] is still a large, efficient matmul.
 */
export const LOGPROB_CHUNK_ROWS = 128;

export interface SequenceLogps {
  /** [N]: sum (or mean) of response-token log-probs per row. */
  logps: torch.Tensor;
  /** [N]: response tokens per row. */
  lengths: torch.Tensor;
}

export function sequenceLogps(logits: torch.Tensor, labels: torch.Tensor, lengthNorm: boolean): SequenceLogps {
  return torch.tidy(() => {
    const t = logits.shape[1];
    const shiftedLogits = logits.narrow(1, 0, t - 1);
    const shiftedLabels = labels.narrow(1, 1, t - 1);
    const tokenLogps = torch.tokenLogProbs(shiftedLogits, shiftedLabels);
    const lengths = shiftedLabels.ne(-100).sum(-1).to(tokenLogps.dtype); // not bf16 logits' dtype: it rounds counts above 256
    const sums = tokenLogps.sum(-1);
    return { logps: lengthNorm ? sums.div(lengths.clamp(1)) : sums, lengths };
  });
}

/** The concatenated batch as tensors: input ids, attention mask and labels [2B, T]. */
export function batchTensors(
  batch: PaddedBatch,
  device: torch.Device = "cpu",
): { inputIds: torch.Tensor; attentionMask: torch.Tensor; labels: torch.Tensor } {
  return {
    inputIds: torch.tensor(batch.inputIds, { dtype: "int64", device }),
    attentionMask: torch.tensor(batch.attentionMask, { dtype: "int64", device }),
    labels: torch.tensor(batch.labels, { dtype: "int64", device }),
  };
}

export interface ForwardResult {
  chosen: torch.Tensor;
  rejected: torch.Tensor;
  /**
   * Mean raw logit over the response tokens of the chosen and rejected halves, over the whole
   * vocabulary (TRL's logits/chosen, logits/rejected as current TRL defines them: the logits at
   * the positions its loss mask selects); 0 for a half without response tokens.
   */
  chosenLogitsMean: number;
  rejectedLogitsMean: number;
  /** Response tokens of each chosen / rejected answer [B] (the losses that work per token read them). */
  chosenLengths: torch.Tensor;
  rejectedLengths: torch.Tensor;
  /** With options.wpoWeights: WPO's weight of each chosen / rejected answer [B] (see wpoWeights), without gradient. */
  chosenWeights?: torch.Tensor;
  rejectedWeights?: torch.Tensor;
}

export interface LogpsOptions {
  /**
   * Under grad: records the LM head's chunks (and with gradientCheckpointing the decoder
   * layers) for recomputation; the caller runs recompute.backward() after loss.backward().
   * Without it, a forward under grad keeps every chunk's logits for backward.
   */
  recompute?: RecomputeTape | null;
  /** Recompute each decoder layer in backward from its input (needs `recompute`). */
  gradientCheckpointing?: boolean;
  /** Response positions per LM-head chunk (default LOGPROB_CHUNK_ROWS). */
  chunkRows?: number;
  /**
   * Also return WPO's answer weights (arXiv 2406.11827 eq. 2, as TRL's use_weighting computes
   * them): exp of the mean over the answer's tokens of logp_t - log Σ_v p_v², where
   * log Σ_v p_v² = logsumexp(2 z) - 2 logsumexp(z) of the position's logits z. Each chunk
   * computes its positions' term from its own [chunk, V] logits, without gradient.
   */
  wpoWeights?: boolean;
  /**
   * LD-DPO (TRL's ld_alpha): each answer's tokens past the shorter answer of its pair (row r
   * and row r ± B) count ldAlpha times in its log-prob; null or undefined: off.
   */
  ldAlpha?: number | null;
  /**
   * The batch's images, for a model that takes them (Qwen2-VL): pixel values of every image in
   * row order and their grids; the rows' image tokens stand for them.
   */
  images?: ImageInputs | null;
}

/** The response tokens of a batch, row by row: flat position (row * T + t) of each logit used, its label and its row. */
interface ResponsePositions {
  flat: number[];
  targets: number[];
  rows: number[];
  /** Response tokens per row. */
  perRow: number[];
}

function responsePositions(labels: number[][]): ResponsePositions {
  const out: ResponsePositions = { flat: [], targets: [], rows: [], perRow: [] };
  labels.forEach((row, r) => {
    let n = 0;
    // The logit at t predicts the token at t + 1.
    for (let t = 0; t + 1 < row.length; t++) {
      if (row[t + 1] === -100) continue;
      out.flat.push(r * row.length + t);
      out.targets.push(row[t + 1]);
      out.rows.push(r);
      n++;
    }
    out.perRow.push(n);
  });
  return out;
}

/**
 * LD-DPO's weight of each response position [N]: 1 for an answer's first min(|y_w|, |y_l|)
 * tokens (the pair's shared length), alpha for the rest, as TRL's shared and tail masks.
 */
function ldTokenWeights(pos: ResponsePositions, alpha: number): number[] {
  const half = pos.perRow.length / 2;
  const shared = pos.perRow.map((_, r) => Math.min(pos.perRow[r % half], pos.perRow[(r % half) + half]));
  const weights: number[] = [];
  let row = -1;
  let k = 0;
  for (const r of pos.rows) {
    if (r !== row) {
      row = r;
      k = 0;
    }
    weights.push(k++ < shared[r] ? 1 : alpha);
  }
  return weights;
}

/**
 * One forward pass over chosen and rejected together (the batch's first half, then its second);
 * splits the per-sequence log-probs. Gradients as the caller's grad mode, through `recompute`
 * when given.
 */
export function concatenatedForward(
  model: CausalLM,
  batch: PaddedBatch,
  lengthNorm: boolean,
  options: LogpsOptions = {},
): ForwardResult {
  const chunkRows = options.chunkRows ?? LOGPROB_CHUNK_ROWS;
  if (!Number.isInteger(chunkRows) || chunkRows < 1)
    throw new RangeError(`chunkRows must be a positive integer, got ${chunkRows}`);
  const tape = options.recompute ?? null;
  if (options.gradientCheckpointing && !tape)
    throw new Error("gradient checkpointing needs a recompute tape (options.recompute) to run backward with");
  return torch.tidy(() => {
    const device = model.device;
    const { inputIds, attentionMask } = batchTensors(batch, device);
    const rowCount = batch.inputIds.length;
    const half = rowCount / 2;
    const length = batch.inputIds[0].length;
    const pos = responsePositions(batch.labels);
    const chosenTokens = pos.perRow.slice(0, half).reduce((a, b) => a + b, 0);
    if (options.images && !takesImages(model))
      throw new Error(`images given to a model of architecture '${model.architecture}', which takes none`);
    const hidden = model.hiddenStates(inputIds, {
      ...options.images,
      attentionMask,
      recompute: options.gradientCheckpointing ? tape! : undefined,
    }); // [2B, T, C]
    const [, , width] = hidden.shape;
    // Log-probs of half-precision logits are float32 (tokenLogProbs upcasts), and so are their sums
    // and the token counts (bf16 rounds counts above 256).
    const dtype = hidden.dtype === "bfloat16" || hidden.dtype === "float16" ? "float32" : hidden.dtype;
    const flat = torch.tensor(pos.flat, { dtype: "int64", device }); // [N]
    const gather = (h: torch.Tensor) => h.reshape([rowCount * length, width]).indexSelect(0, flat); // [N, C]
    const picked = tape ? tape.segment(hidden, gather) : gather(hidden); // [N, C]
    tape?.hold(flat);

    const logitSums = [0, 0]; // chosen half, rejected half
    const logSquareSums: number[] = []; // [N] with wpoWeights: log Σ_v p_v² per response position
    let vocab = 0;
    const pieces: torch.Tensor[] = [];
    for (let start = 0; start < pos.flat.length; start += chunkRows) {
      const n = Math.min(chunkRows, pos.flat.length - start);
      const targets = torch.tensor(pos.targets.slice(start, start + n), { dtype: "int64", device }); // [n]
      const run = (x: torch.Tensor) => torch.tokenLogProbs(model.logitsFromHidden(x.narrow(0, start, n)), targets); // [n]
      // The forward also sums the chunk's logits per position, for the logits/* metrics.
      const first = (x: torch.Tensor) =>
        torch.tidy(() => {
          const logits = model.logitsFromHidden(x.narrow(0, start, n)); // [n, V]
          vocab = logits.shape[1];
          const sums = torch.noGrad(() => logits.sum(-1).toArray() as number[]);
          sums.forEach((v, i) => {
            logitSums[start + i < chosenTokens ? 0 : 1] += v;
          });
          if (options.wpoWeights) {
            torch.noGrad(() => {
              const square = logits.mul(2).logsumexp(-1).sub(logits.logsumexp(-1).mul(2)); // [n]
              logSquareSums.push(...(square.toArray() as number[]));
            });
          }
          return torch.tokenLogProbs(logits, targets);
        });
      if (tape) {
        tape.hold(targets);
        pieces.push(tape.segment(picked, run, first, { group: "lm-head" }));
      } else {
        pieces.push(first(picked));
      }
    }
    const tokenLogps = pieces.length ? torch.cat(pieces, 0) : torch.zeros([0], { dtype, device }); // [N]
    const rows = torch.tensor(pos.rows, { dtype: "int64", device }); // [N]
    const weighted =
      options.ldAlpha == null
        ? tokenLogps
        : tokenLogps.mul(torch.tensor(ldTokenWeights(pos, options.ldAlpha), { dtype, device })); // [N]
    const sums = torch.zeros([rowCount], { dtype, device }).scatterAdd(0, rows, weighted); // [2B]
    const lengths = torch.tensor(pos.perRow, { dtype, device }); // [2B]
    const logps = lengthNorm ? sums.div(lengths.clamp(1)) : sums;
    const rejectedTokens = pos.flat.length - chosenTokens;
    let weights: torch.Tensor | null = null; // [2B]
    if (options.wpoWeights) {
      weights = torch.noGrad(() => {
        const aligned = tokenLogps.detach().sub(torch.tensor(logSquareSums, { dtype, device })); // [N]
        return torch.zeros([rowCount], { dtype, device }).scatterAdd(0, rows, aligned).div(lengths.clamp(1)).exp();
      });
    }
    return {
      ...(weights ? { chosenWeights: weights.narrow(0, 0, half), rejectedWeights: weights.narrow(0, half, half) } : {}),
      chosen: logps.narrow(0, 0, half),
      rejected: logps.narrow(0, half, half),
      chosenLengths: lengths.narrow(0, 0, half),
      rejectedLengths: lengths.narrow(0, half, half),
      chosenLogitsMean: chosenTokens ? logitSums[0] / (chosenTokens * vocab) : 0,
      rejectedLogitsMean: rejectedTokens ? logitSums[1] / (rejectedTokens * vocab) : 0,
    };
  });
}
