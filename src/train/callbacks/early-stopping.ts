// Early stopping, as transformers' EarlyStoppingCallback: after each evaluation, the metric
// (metric_for_best_model, eval_-prefixed) counts as improved when it beats the best so far in
// the better direction by more than early_stopping_threshold; after early_stopping_patience
// evaluations in a row without improvement, training stops (its last step is then the run's
// last: the final model and checkpoint are written). Every rank sees the same eval row, so
// every rank decides alike; the loop agrees on the stop anyway.
//
// Its counters are not saved: a resumed run rebuilds them from the log history it resumes with,
// so stopping does not depend on where the run was interrupted.
import type { TrainConfig } from "../config.js";
import type { MetricRow } from "../metrics.js";
import type { TrainerCallback, TrainerEvent } from "./callback.js";

export interface EarlyStoppingOptions {
  patience: number;
  threshold?: number;
  /** The eval metric, with or without its eval_ prefix; default loss. */
  metric?: string;
  /** Default: false for loss, true otherwise. */
  greaterIsBetter?: boolean;
}

export class EarlyStoppingCallback implements TrainerCallback {
  readonly metric: string;
  readonly greaterIsBetter: boolean;
  readonly threshold: number;
  best: number | null = null;
  /** Evaluations in a row without improvement. */
  waited = 0;

  constructor(readonly options: EarlyStoppingOptions) {
    const name = options.metric ?? "loss";
    this.metric = name.startsWith("eval_") ? name : `eval_${name}`;
    this.greaterIsBetter = options.greaterIsBetter ?? !(this.metric === "eval_loss");
    this.threshold = options.threshold ?? 0;
  }

  /** The recipe's early stopping, or null when early_stopping_patience is unset. */
  static fromConfig(config: TrainConfig): EarlyStoppingCallback | null {
    if (config.earlyStoppingPatience === null) return null;
    return new EarlyStoppingCallback({
      patience: config.earlyStoppingPatience,
      threshold: config.earlyStoppingThreshold,
      metric: config.metricForBestModel ?? undefined,
      greaterIsBetter: config.greaterIsBetter ?? undefined,
    });
  }

  onTrainBegin({ state }: TrainerEvent): void {
    this.best = null;
    this.waited = 0;
    for (const row of state.logHistory) if (this.metric in row) this.#see(row);
  }

  onEvaluate({ metrics, control, config }: TrainerEvent): void {
    if (!metrics) return;
    // A generation-eval metric is only on the rows of eval_generation_steps; a pair-eval row between them is not its.
    if (this.metric.startsWith("eval_gen_") && !(this.metric in metrics) && !("eval_gen_mean_length" in metrics))
      return;
    if (!(this.metric in metrics)) {
      const known = Object.keys(metrics)
        .filter((k) => k.startsWith("eval_"))
        .map((k) => k.slice(5));
      const name = this.metric.slice("eval_".length);
      throw new Error(
        `${config.source}: key 'metric_for_best_model': ${name} is not an evaluation metric; ` +
          `the evaluation logs ${known.join(", ")}`,
      );
    }
    this.#see(metrics);
    if (this.waited >= this.options.patience) control.shouldTrainingStop = true;
  }

  /** As transformers: the counter compares with the best before this row; the best moves on any gain, however small. */
  #see(row: MetricRow): void {
    const value = Number(row[this.metric]);
    const better = this.best === null || (this.greaterIsBetter ? value > this.best : value < this.best);
    const improved = this.best === null || (better && Math.abs(value - this.best) > this.threshold);
    this.waited = improved ? 0 : this.waited + 1;
    if (better) this.best = value;
  }
}
