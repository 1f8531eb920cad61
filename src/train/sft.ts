// Supervised fine-tuning on (prompt, completion) pairs: next-token cross-entropy on the
// completion tokens only. The demo uses it to make the starting policy. It runs the preference
// trainer's training path (steps.ts: the epoch order, the walk over steps, the optimizer with
// its decay groups, the clipped optimizer step); only its micro-batch loss is its own.
import * as torch from "../torch/index.js";
import type { CausalLM } from "../models/causal-lm.js";
import type { Tokenizer } from "../text/index.js";
import { batchesOf } from "../logprobs/pairs.js";
import { applyOptimizerStep, createOptimizer, epochOrder, stepGroups } from "./steps.js";

export interface SftExample {
  prompt: string;
  completion: string;
}

export interface SftOptions {
  epochs?: number;
  maxSteps?: number;
  /** Stop after this many steps while the schedule still spans maxSteps (a checkpoint taken mid-schedule). */
  stopAtStep?: number;
  batchSize?: number;
  learningRate?: number;
  weightDecay?: number;
  warmupRatio?: number;
  maxGradNorm?: number;
  seed?: number;
  onStep?: (step: number, total: number, loss: number) => void;
}

/** Token ids and labels (-100 over the prompt) for one example, EOS appended. */
export function sftTokens(tokenizer: Tokenizer, example: SftExample): { ids: number[]; labels: number[] } {
  const prompt = tokenizer.encode(example.prompt);
  const completion = tokenizer.encode(example.completion, { addSpecialTokens: false });
  const eos = tokenizer.eosTokenId;
  const answer = eos !== undefined ? [...completion, eos] : completion;
  return { ids: [...prompt, ...answer], labels: [...prompt.map(() => -100), ...answer] };
}

/** Trains `model` in place; returns the loss of each step. */
export function sftTrain(
  model: CausalLM,
  tokenizer: Tokenizer,
  examples: SftExample[],
  options: SftOptions = {},
): number[] {
  const batchSize = options.batchSize ?? 32;
  const pad = tokenizer.padTokenId ?? tokenizer.eosTokenId ?? 0;
  const rows = examples.map((e) => sftTokens(tokenizer, e));
  const perEpoch = Math.ceil(rows.length / batchSize);
  const total = options.maxSteps ?? perEpoch * (options.epochs ?? 1);
  const stop = Math.min(total, options.stopAtStep ?? total);
  if (stop > 0 && rows.length === 0) throw new Error(`sftTrain: ${stop} steps asked for, but there are no examples`);
  const optimizer = createOptimizer(model, {
    optim: "adamw_torch",
    learningRate: options.learningRate ?? 3e-3,
    weightDecay: options.weightDecay ?? 0.01,
    adamBeta1: 0.9,
    adamBeta2: 0.999,
    adamEpsilon: 1e-8,
  });
  const scheduler = new torch.LRScheduler(optimizer, {
    type: "cosine",
    totalSteps: total,
    warmupRatio: options.warmupRatio ?? 0.05,
  });
  const trainable = model.parameters().filter((p) => p.requiresGrad);
  const losses: number[] = [];
  model.train();
  try {
    // Epochs until the steps are done (maxSteps may span several), one micro-batch a step.
    const epochBatches = (epoch: number) => batchesOf(epochOrder(rows.length, options.seed ?? 0, epoch), batchSize);
    const steps = stepGroups({ epochIndex: 0, nextBatch: 0 }, Infinity, epochBatches, 1, () => losses.length >= stop);
    for (const {
      group: [indices],
    } of steps) {
      const loss = torch.tidy(() => {
        const l = completionLoss(
          model,
          indices.map((i) => rows[i]),
          pad,
        );
        l.backward();
        return l.item();
      });
      applyOptimizerStep(trainable, optimizer, scheduler, options.maxGradNorm ?? 1, losses.length + 1);
      losses.push(loss);
      options.onStep?.(losses.length, stop, loss);
    }
  } finally {
    optimizer.dispose();
    model.eval();
  }
  return losses;
}

/** Mean next-token cross-entropy over the completion tokens of `batch` (rows padded to the longest). */
function completionLoss(model: CausalLM, batch: { ids: number[]; labels: number[] }[], pad: number): torch.Tensor {
  const length = Math.max(...batch.map((r) => r.ids.length));
  const device = model.device;
  const padded = (xs: number[], value: number) => [...xs, ...new Array(length - xs.length).fill(value)];
  const ids = torch.tensor(
    batch.map((r) => padded(r.ids, pad)),
    { dtype: "int64", device },
  ); // [B, T]
  const mask = torch.tensor(
    batch.map((r) =>
      padded(
        r.ids.map(() => 1),
        0,
      ),
    ),
    { dtype: "int64", device },
  ); // [B, T]
  const labels = torch.tensor(
    batch.map((r) => padded(r.labels, -100)),
    { dtype: "int64", device },
  ); // [B, T]
  const logits = model.forward(ids, { attentionMask: mask }); // [B, T, V]
  const v = logits.shape[2];
  // Position t predicts token t + 1.
  const predicted = logits.narrow(1, 0, length - 1).reshape(-1, v); // [B (T - 1), V]
  return torch.crossEntropy(predicted, labels.narrow(1, 1, length - 1).reshape(-1));
}
