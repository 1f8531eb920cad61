// Callbacks: how code outside the training loop takes part in it, as the Hugging Face
// Trainer's TrainerCallback / TrainerControl (camelCased). The loop calls each callback's
// methods at fixed points with one event; a callback reads the run's state and may ask the loop
// to save a checkpoint or to stop by setting `control` flags. metrics.jsonl, TensorBoard, the
// pair log, early stopping and the CLI's progress bar are callbacks too: the trainer itself
// never branches on a tracker.
//
// Ranks: as in transformers, every callback runs on every process of a distributed run, with
// the same state (metrics rows are already the run's, reduced over the ranks); `state.
// isWorldProcessZero` says whether this process writes output_dir, which the built-in writers
// check. A callback must not itself call a collective. The loop makes control decisions agree:
// after each step a flag set on any rank counts on every rank.
import type { CausalLM } from "../../models/causal-lm.js";
import type { TrainConfig } from "../config.js";
import type { MetricRow } from "../metrics.js";

/** Where the run is (transformers' TrainerState, the part callbacks read). */
export interface TrainerRunState {
  /** Optimizer steps done. */
  globalStep: number;
  /** Epochs done, as a fraction (the HF trainer's epoch). */
  epoch: number;
  /** The run's total optimizer steps. */
  maxSteps: number;
  /** Every logged row so far (train and eval), the run's (transformers' log_history). */
  logHistory: MetricRow[];
  /** This process writes output_dir (rank 0; always with one process). */
  isWorldProcessZero: boolean;
  /** This process writes what its machine's processes share (local rank 0). */
  isLocalProcessZero: boolean;
  rank: number;
  worldSize: number;
  /** The checkpoint the run resumed from (onTrainBegin), else null. */
  resumedFrom: string | null;
}

/** What callbacks may ask of the loop (transformers' TrainerControl); the loop resets shouldSave after saving. */
export class TrainerControl {
  /** End training after this step, as its last: the final model is written (transformers' should_training_stop). */
  shouldTrainingStop = false;
  /** Save a checkpoint after this step (transformers' should_save). */
  shouldSave = false;
}

export interface TrainerEvent {
  state: TrainerRunState;
  control: TrainerControl;
  /** The policy being trained. */
  model: CausalLM;
  config: TrainConfig;
  /**
   * onLog: the row logged; onEvaluate: the eval row; onStepEnd: the step's `loss` (mean over its
   * micro-batches, this process's) and `learning_rate` (the next step's).
   */
  metrics?: MetricRow;
  /** onSave: the checkpoint written. */
  checkpoint?: string;
}

type Hook = (event: TrainerEvent) => void;

/** One process's share of a callback's evaluation: per-item sums and the item count (the loop averages over all). */
export interface EvaluationSums {
  sums: Record<string, number>;
  n: number;
}

/**
 * Each method is optional and synchronous, as transformers' (the loop does not await a promise
 * one returns: start asynchronous work of your own and let it finish on its own).
 */
export interface TrainerCallback {
  /** After setup (models, optimizer, resume point), before the first step. */
  onTrainBegin?: Hook;
  /** After each optimizer step, before its logging, evaluation and checkpoint. */
  onStepEnd?: Hook;
  /** Each row logged (train rows and eval rows), as written to metrics.jsonl. */
  onLog?: Hook;
  /** After each evaluation, with its row. */
  onEvaluate?: Hook;
  /** After each checkpoint is written. */
  onSave?: Hook;
  /** After the last step (and the final model), or when the run stops. Not after an error. */
  onTrainEnd?: Hook;
  /**
   * An evaluation of the callback's own (generation eval), asked after each step: this process's
   * share as sums and a count, or null when it does not evaluate at this step (every process must
   * answer alike). The loop combines the shares over the processes (the one collective a callback
   * takes part in, through the loop) and logs their means, `eval_`-prefixed, on the step's eval
   * row. The one method the loop awaits.
   */
  evaluationSums?: (event: TrainerEvent) => Promise<EvaluationSums | null> | EvaluationSums | null;
  /** When train() ends in any way, errors included: release files. */
  close?: () => void;
}

export type CallbackEvent = "onTrainBegin" | "onStepEnd" | "onLog" | "onEvaluate" | "onSave" | "onTrainEnd";

/** The callbacks of a run, called in order. */
export class CallbackList {
  constructor(readonly callbacks: TrainerCallback[]) {}

  call(name: CallbackEvent, event: TrainerEvent): void {
    for (const callback of this.callbacks) callback[name]?.(event);
  }

  /** Every callback's close(), even when one throws (the first error is rethrown after the rest). */
  close(): void {
    let error: unknown = null;
    for (const callback of this.callbacks) {
      try {
        callback.close?.();
      } catch (e) {
        error ??= e;
      }
    }
    if (error) throw error;
  }
}
