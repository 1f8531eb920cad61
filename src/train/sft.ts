// Supervised fine-tuning on (prompt, completion) pairs: next-token cross-entropy on the
// completion tokens only. The demo uses it to make the starting policy; it shares the
// optimizer's decay groups, schedule and batching conventions of the preference trainer.
import * as torch from "../torch/index.js";
import type { CausalLM } from "../models/causal-lm.js";
import type { Tokenizer } from "../text/index.js";
import { shuffled } from "../data/mixer.js";
import { decayGroups } from "./optimizer.js";

export interface SftExample { prompt: string; completion: string }

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
export function sftTrain(model: CausalLM, tokenizer: Tokenizer, examples: SftExample[], options: SftOptions = {}): number[] {
  const batchSize = options.batchSize ?? 32;
  const pad = tokenizer.padTokenId ?? tokenizer.eosTokenId ?? 0;
  const rows = examples.map((e) => sftTokens(tokenizer, e));
  const perEpoch = Math.ceil(rows.length / batchSize);
  const total = options.maxSteps ?? perEpoch * (options.epochs ?? 1);
  const stop = Math.min(total, options.stopAtStep ?? total);
  const weightDecay = options.weightDecay ?? 0.01;
  const optimizer = new torch.AdamW(decayGroups(model, weightDecay), { lr: options.learningRate ?? 3e-3, weightDecay });
  const scheduler = new torch.LRScheduler(optimizer, { type: "cosine", totalSteps: total, warmupRatio: options.warmupRatio ?? 0.05 });
  const losses: number[] = [];
  model.train();
  try {
    for (let step = 0, epoch = 0; step < stop; epoch++) {
      const order = shuffled(rows.map((_, i) => i), (options.seed ?? 0) + epoch);
      for (let b = 0; b < order.length && step < stop; b += batchSize, step++) {
        const batch = order.slice(b, b + batchSize).map((i) => rows[i]);
        const length = Math.max(...batch.map((r) => r.ids.length));
        const loss = torch.tidy(() => {
          const device = model.device;
          const ids = torch.tensor(batch.map((r) => [...r.ids, ...new Array(length - r.ids.length).fill(pad)]), { dtype: "int64", device });
          const mask = torch.tensor(batch.map((r) => [...r.ids.map(() => 1), ...new Array(length - r.ids.length).fill(0)]), { dtype: "int64", device });
          const labels = torch.tensor(batch.map((r) => [...r.labels, ...new Array(length - r.labels.length).fill(-100)]), { dtype: "int64", device });
          const logits = model.forward(ids, { attentionMask: mask });
          const v = logits.shape[2];
          const l = torch.crossEntropy(logits.narrow(1, 0, length - 1).reshape(-1, v), labels.narrow(1, 1, length - 1).reshape(-1));
          l.backward();
          return l.item();
        });
        torch.clipGradNorm(model.parameters(), options.maxGradNorm ?? 1);
        optimizer.step();
        optimizer.zeroGrad();
        scheduler.step();
        losses.push(loss);
        options.onStep?.(step + 1, stop, loss);
      }
    }
  } finally {
    optimizer.dispose();
    model.eval();
  }
  return losses;
}
