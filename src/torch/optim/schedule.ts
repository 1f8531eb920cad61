// Learning-rate schedules with Hugging Face transformers' semantics (get_scheduler): the
// multiplier for step s is applied to each group's initial learning rate, starting at s = 0
// when the scheduler is made, and advanced by step() after each optimizer step.
import type { GroupOptions, Optimizer } from "./optimizer.js";

export type ScheduleType = "constant" | "constant_with_warmup" | "linear" | "cosine";

export interface ScheduleOptions {
  type: ScheduleType;
  /** Optimizer steps in the whole run (needed by linear and cosine). */
  totalSteps?: number;
  warmupSteps?: number;
  /** Warmup as a share of totalSteps, rounded up as transformers does; warmupSteps wins if both. */
  warmupRatio?: number;
  /** Cosine half-periods over the decay (transformers' num_cycles, default 0.5). */
  numCycles?: number;
}

/** The learning-rate multiplier at `step`, as transformers' schedule lambdas compute it. */
export function scheduleMultiplier(options: ScheduleOptions, step: number): number {
  const total = options.totalSteps ?? 0;
  const warmup = warmupStepsOf(options);
  switch (options.type) {
    case "constant": return 1;
    case "constant_with_warmup": return step < warmup ? step / Math.max(1, warmup) : 1;
    case "linear":
      if (step < warmup) return step / Math.max(1, warmup);
      return Math.max(0, (total - step) / Math.max(1, total - warmup));
    case "cosine": {
      if (step < warmup) return step / Math.max(1, warmup);
      const progress = (step - warmup) / Math.max(1, total - warmup);
      return Math.max(0, 0.5 * (1 + Math.cos(Math.PI * (options.numCycles ?? 0.5) * 2 * progress)));
    }
    default:
      throw new Error(`unknown lr_scheduler_type '${(options as { type: string }).type}'; expected constant, constant_with_warmup, linear or cosine`);
  }
}

export function warmupStepsOf(options: ScheduleOptions): number {
  if (options.warmupSteps !== undefined && options.warmupSteps > 0) return options.warmupSteps;
  if (options.warmupRatio !== undefined) {
    if (options.warmupRatio < 0 || options.warmupRatio > 1) throw new Error(`warmup_ratio must be in [0, 1], got ${options.warmupRatio}`);
    return Math.ceil((options.totalSteps ?? 0) * options.warmupRatio);
  }
  return 0;
}

export class LRScheduler {
  #step = 0;

  constructor(readonly optimizer: Optimizer<GroupOptions>, readonly options: ScheduleOptions) {
    if ((options.type === "linear" || options.type === "cosine") && !(options.totalSteps && options.totalSteps > 0)) {
      throw new Error(`${options.type} schedule needs totalSteps > 0`);
    }
    scheduleMultiplier(options, 0);  // validates the type
    this.apply();
  }

  /** Advances one optimizer step and sets each group's learning rate. */
  step(): void { this.#step += 1; this.apply(); }

  get lastStep(): number { return this.#step; }
  /** The learning rates in force now, one per parameter group. */
  getLastLr(): number[] { return this.optimizer.paramGroups.map((g) => g.lr); }

  stateDict(): { step: number } { return { step: this.#step }; }
  loadStateDict(state: { step: number }): void { this.#step = state.step; this.apply(); }

  private apply(): void {
    const m = scheduleMultiplier(this.options, this.#step);
    for (const g of this.optimizer.paramGroups) g.lr = g.initialLr * m;
  }
}
