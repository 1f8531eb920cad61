// The trainer's plain hooks (onLog, onProgress) as a callback: shorthands for the commonest
// callbacks, kept for the callers and tests written against them.
import type { MetricRow } from "../metrics.js";
import type { TrainerCallback, TrainerEvent } from "./callback.js";

export interface ProgressHooks {
  /** Each logged row (train and eval), as written to metrics.jsonl. */
  onLog?: (row: MetricRow) => void;
  /** After each optimizer step: the steps done, the total, and "loss L lr R". */
  onProgress?: (step: number, total: number, info: string) => void;
}

export class HooksCallback implements TrainerCallback {
  constructor(readonly hooks: ProgressHooks) {}

  onStepEnd({ state, metrics }: TrainerEvent): void {
    const loss = Number(metrics?.loss);
    const lr = Number(metrics?.learning_rate);
    this.hooks.onProgress?.(state.globalStep, state.maxSteps, `loss ${loss.toFixed(4)} lr ${lr.toExponential(2)}`);
  }

  onLog({ metrics }: TrainerEvent): void {
    if (metrics) this.hooks.onLog?.(metrics);
  }
}
