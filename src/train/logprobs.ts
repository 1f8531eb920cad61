// Per-sequence log-probabilities of the response tokens, as the reference computes them:
// logits predict the next token (shift by one), prompt and padding labels (-100) do not count,
// and with length normalisation the sum becomes a mean over response tokens.
import * as torch from "../torch/index.js";
import type { CausalLM } from "../models/causal-lm.js";
import type { PaddedBatch } from "../data/tokenize.js";

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
    const lengths = shiftedLabels.ne(-100).sum(-1).to(tokenLogps.dtype);  // not bf16 logits' dtype: it rounds counts above 256
    const sums = tokenLogps.sum(-1);
    return { logps: lengthNorm ? sums.div(lengths.clamp(1)) : sums, lengths };
  });
}

/** The concatenated batch as tensors: input ids, attention mask and labels [2B, T]. */
export function batchTensors(batch: PaddedBatch, device: torch.Device = "cpu"): { inputIds: torch.Tensor; attentionMask: torch.Tensor; labels: torch.Tensor } {
  return {
    inputIds: torch.tensor(batch.inputIds, { dtype: "int64", device }),
    attentionMask: torch.tensor(batch.attentionMask, { dtype: "int64", device }),
    labels: torch.tensor(batch.labels, { dtype: "int64", device }),
  };
}

export interface ForwardResult {
  chosen: torch.Tensor;
  rejected: torch.Tensor;
  /** Mean raw logit over the chosen and rejected halves (TRL's logits/chosen, logits/rejected). */
  chosenLogitsMean: number;
  rejectedLogitsMean: number;
}

/** One forward pass over chosen and rejected together; splits the per-sequence log-probs. */
export function concatenatedForward(model: CausalLM, batch: PaddedBatch, lengthNorm: boolean): ForwardResult {
  return torch.tidy(() => {
    const { inputIds, attentionMask, labels } = batchTensors(batch, model.device);
    const logits = model.forward(inputIds, { attentionMask });
    const { logps } = sequenceLogps(logits, labels, lengthNorm);
    const half = batch.inputIds.length / 2;
    const [chosenLogitsMean, rejectedLogitsMean] = torch.noGrad(() => [
      logits.narrow(0, 0, half).mean().item(), logits.narrow(0, half, half).mean().item(),
    ]);
    return { chosen: logps.narrow(0, 0, half), rejected: logps.narrow(0, half, half), chosenLogitsMean, rejectedLogitsMean };
  });
}
