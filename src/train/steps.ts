// The training path both loops share, the preference trainer's and SFT's (sft.ts): the epoch
// order of the examples, the walk over epochs and accumulation groups (from a resume position),
// the optimizer with the HF trainer's decay groups, and one optimizer step (clip, step, zero the
// gradients, advance the schedule). What differs between them is only the loss of a micro-batch.
import * as torch from "../torch/index.js";
import type { CausalLM } from "../models/causal-lm.js";
import { shuffled } from "../data/mixer.js";
import type { TrainOptimizer } from "./checkpoint.js";
import { NonFiniteMetricError } from "./metrics.js";
import { decayGroups } from "./optimizer.js";

/** Epoch `epochIndex`'s order of `n` examples: a shuffle seeded by seed + epochIndex. */
export function epochOrder(n: number, seed: number, epochIndex: number): number[] {
  return shuffled(
    Array.from({ length: n }, (_, i) => i),
    seed + epochIndex,
  );
}

/** Where a run is in its data: the epoch, and the next micro-batch in it. */
export interface DataPosition {
  epochIndex: number;
  nextBatch: number;
}

export interface StepGroup {
  /** The step's micro-batches (up to the accumulation count; fewer at an epoch's end). */
  group: number[][];
  /** The epoch's micro-batch count. */
  epochLength: number;
  /** This group ends its epoch. */
  epochEnd: boolean;
}

/**
 * The optimizer steps' micro-batch groups from `position` on: `accumulation` consecutive
 * micro-batches of `epochBatches(epoch)` each, over `epochs` epochs, until `finished()`.
 * `position` moves on as each group is handed out (so a checkpoint taken in the step records
 * the next one), and to the next epoch when one is used up.
 */
export function* stepGroups(
  position: DataPosition,
  epochs: number,
  epochBatches: (epochIndex: number) => number[][],
  accumulation: number,
  finished: () => boolean,
): Generator<StepGroup> {
  for (; position.epochIndex < epochs && !finished(); position.epochIndex++, position.nextBatch = 0) {
    const batches = epochBatches(position.epochIndex);
    while (position.nextBatch < batches.length && !finished()) {
      const group = batches.slice(position.nextBatch, position.nextBatch + accumulation);
      position.nextBatch += group.length;
      yield { group, epochLength: batches.length, epochEnd: position.nextBatch >= batches.length };
    }
  }
}

export interface OptimizerSettings {
  /** adamw_torch, adamw_torch_fused or sgd (keys.ts checks the recipe's). */
  optim: string;
  learningRate: number;
  weightDecay: number;
  adamBeta1: number;
  adamBeta2: number;
  adamEpsilon: number;
}

/**
 * The optimizer `optim` names over `model`'s trainable parameters (all of them, or the LoRA
 * adapters; in their dtype, as PyTorch keeps its state), with the HF trainer's decay groups:
 * AdamW (adamw_torch; adamw_torch_fused is the same update in one kernel), or plain SGD with
 * only the learning rate and the groups' weight decay, as transformers builds torch.optim.SGD.
 */
export function createOptimizer(model: CausalLM, s: OptimizerSettings): TrainOptimizer {
  const groups = decayGroups(model, s.weightDecay)
    .map((g) => ({ ...g, params: g.params.filter((p) => p.requiresGrad) }))
    .filter((g) => g.params.length > 0);
  if (s.optim === "sgd") return new torch.SGD(groups, { lr: s.learningRate, weightDecay: s.weightDecay });
  return new torch.AdamW(groups, {
    lr: s.learningRate,
    betas: [s.adamBeta1, s.adamBeta2],
    eps: s.adamEpsilon,
    weightDecay: s.weightDecay,
  });
}

/**
 * One update from the accumulated gradients of `params`: clipped to `maxGradNorm` (0 or less:
 * not clipped), the optimizer's step, the gradients zeroed, the schedule advanced. Returns the
 * pre-clip norm and the step's learning rate. A NaN or infinite norm is an error naming `step`,
 * before the weights change. `clip` clips and returns the norm (a distributed strategy's, where
 * each process holds only its shard of the gradients).
 */
export function applyOptimizerStep(
  params: torch.Tensor[],
  optimizer: TrainOptimizer,
  scheduler: torch.LRScheduler,
  maxGradNorm: number,
  step: number,
  clip: (params: torch.Tensor[], maxNorm: number) => number = torch.clipGradNorm,
): { gradNorm: number; learningRate: number } {
  const gradNorm = clip(params, maxGradNorm > 0 ? maxGradNorm : Infinity);
  if (!Number.isFinite(gradNorm)) {
    optimizer.zeroGrad();
    throw new NonFiniteMetricError(`step ${step}: grad_norm is ${gradNorm}; the weights were not updated`);
  }
  const learningRate = scheduler.getLastLr()[0];
  optimizer.step();
  optimizer.zeroGrad();
  scheduler.step();
  return { gradNorm, learningRate };
}

/** logging/eval/save steps as a count: a fraction of the run (below 1) rounded up, or the count given. */
export function resolveSteps(steps: number | null, totalSteps: number): number | null {
  if (steps === null) return null;
  return steps < 1 ? Math.ceil(steps * totalSteps) : steps;
}
