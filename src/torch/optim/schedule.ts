// Learning-rate schedules with Hugging Face transformers' semantics (get_scheduler and the
// lambdas of optimization.py): the multiplier for step s is applied to each group's initial
// learning rate, starting at s = 0 when the scheduler is made, and advanced by step() after each
// optimizer step. Each type takes the options transformers passes it through
// lr_scheduler_kwargs (constant, constant_with_warmup and inverse_sqrt take none there).
import type { GroupOptions, Optimizer } from "./optimizer.js";

/** transformers' SchedulerType names, but reduce_lr_on_plateau (driven by an eval metric, not by the step). */
export const SCHEDULE_TYPES = [
  "linear",
  "cosine",
  "cosine_with_restarts",
  "polynomial",
  "constant",
  "constant_with_warmup",
  "inverse_sqrt",
  "cosine_with_min_lr",
  "cosine_warmup_with_min_lr",
  "warmup_stable_decay",
] as const;
export type ScheduleType = (typeof SCHEDULE_TYPES)[number];

/** The lr_scheduler_kwargs each type accepts (transformers' argument names). */
export const SCHEDULE_KWARGS: Record<ScheduleType, readonly string[]> = {
  linear: [],
  cosine: ["num_cycles"],
  cosine_with_restarts: ["num_cycles"],
  polynomial: ["lr_end", "power"],
  constant: [],
  constant_with_warmup: [],
  inverse_sqrt: [],
  cosine_with_min_lr: ["num_cycles", "min_lr", "min_lr_rate"],
  cosine_warmup_with_min_lr: ["num_cycles", "min_lr", "min_lr_rate", "warmup_lr_rate"],
  warmup_stable_decay: [
    "num_decay_steps",
    "num_stable_steps",
    "warmup_type",
    "decay_type",
    "min_lr_ratio",
    "num_cycles",
  ],
};

const WSD_SHAPES = ["linear", "cosine", "1-sqrt"] as const;

export interface ScheduleOptions {
  type: ScheduleType;
  /** Optimizer steps in the whole run (needed by every decaying type). */
  totalSteps?: number;
  warmupSteps?: number;
  /** Warmup as a share of totalSteps, rounded up as transformers does; warmupSteps wins if both. */
  warmupRatio?: number;
  /** Cosine half-periods over the decay (transformers' num_cycles, default 0.5), or hard restarts (cosine_with_restarts, default 1). */
  numCycles?: number;
  /** The optimizer's default learning rate (transformers' optimizer.defaults["lr"]): polynomial's lr_end and min_lr are relative to it. */
  baseLr?: number;
  /** The type's other lr_scheduler_kwargs, by transformers' names (min_lr, lr_end, power, num_decay_steps, ...). */
  kwargs?: Record<string, unknown>;
}

/** What is wrong with `kwargs` for `type` (unknown names, wrong types, missing ones), or undefined. */
export function scheduleKwargsProblem(
  type: ScheduleType,
  kwargs: Record<string, unknown>,
  baseLr?: number,
): string | undefined {
  const allowed = SCHEDULE_KWARGS[type];
  const unknown = Object.keys(kwargs).filter((k) => !allowed.includes(k));
  if (unknown.length)
    return `${type} takes ${allowed.length ? allowed.join(", ") : "no lr_scheduler_kwargs"} (got ${unknown.join(", ")})`;
  for (const [k, v] of Object.entries(kwargs)) {
    const shape = k === "warmup_type" || k === "decay_type";
    if (
      shape
        ? !(WSD_SHAPES as readonly unknown[]).includes(v)
        : v !== null && (typeof v !== "number" || !Number.isFinite(v))
    ) {
      return `${k} must be ${shape ? WSD_SHAPES.join(", ") : "a number"}, got ${JSON.stringify(v)}`;
    }
  }
  if (type === "cosine_with_min_lr" || type === "cosine_warmup_with_min_lr") {
    const given = ["min_lr", "min_lr_rate"].filter((k) => kwargs[k] !== undefined && kwargs[k] !== null);
    if (given.length !== 1) return `${type} needs exactly one of min_lr or min_lr_rate`;
  }
  if (type === "warmup_stable_decay" && typeof kwargs.num_decay_steps !== "number")
    return "warmup_stable_decay needs num_decay_steps";
  if (type === "polynomial" && baseLr !== undefined && !(baseLr > ((kwargs.lr_end as number | undefined) ?? 1e-7))) {
    return `polynomial: lr_end (${(kwargs.lr_end as number | undefined) ?? 1e-7}) must be smaller than the learning rate (${baseLr})`;
  }
  return undefined;
}

/** The learning-rate multiplier at `step`, as transformers' schedule lambdas compute it. */
export function scheduleMultiplier(options: ScheduleOptions, step: number): number {
  const total = options.totalSteps ?? 0;
  const warmup = warmupStepsOf(options);
  const kw = options.kwargs ?? {};
  const num = (k: string, d: number) => (typeof kw[k] === "number" ? (kw[k] as number) : d);
  const cycles = options.numCycles ?? num("num_cycles", options.type === "cosine_with_restarts" ? 1 : 0.5);
  const linearWarmup = step / Math.max(1, warmup);
  const progress = (step - warmup) / Math.max(1, total - warmup);
  const minLrRate = () => (typeof kw.min_lr === "number" ? kw.min_lr / (options.baseLr ?? 1) : num("min_lr_rate", 0));
  switch (options.type) {
    case "constant":
      return 1;
    case "constant_with_warmup":
      return step < warmup ? linearWarmup : 1;
    case "linear":
      if (step < warmup) return linearWarmup;
      return Math.max(0, (total - step) / Math.max(1, total - warmup));
    case "cosine":
      if (step < warmup) return linearWarmup;
      return Math.max(0, 0.5 * (1 + Math.cos(Math.PI * cycles * 2 * progress)));
    case "cosine_with_restarts":
      if (step < warmup) return linearWarmup;
      if (progress >= 1) return 0;
      return Math.max(0, 0.5 * (1 + Math.cos(Math.PI * ((cycles * progress) % 1))));
    case "polynomial": {
      if (step < warmup) return linearWarmup;
      const lrInit = options.baseLr ?? 1;
      const lrEnd = num("lr_end", 1e-7);
      if (step > total) return lrEnd / lrInit;
      const remaining = 1 - (step - warmup) / (total - warmup);
      return ((lrInit - lrEnd) * remaining ** num("power", 1) + lrEnd) / lrInit;
    }
    case "inverse_sqrt": {
      if (step < warmup) return linearWarmup;
      const timescale = warmup || 10_000; // transformers passes no timescale through get_scheduler
      return 1 / Math.sqrt((step + timescale - warmup) / timescale);
    }
    case "cosine_with_min_lr": {
      if (step < warmup) return linearWarmup;
      const rate = minLrRate();
      return Math.max(0, 0.5 * (1 + Math.cos(Math.PI * cycles * 2 * progress)) * (1 - rate) + rate);
    }
    case "cosine_warmup_with_min_lr": {
      // Warmup counts from 1 (the first step already has a rate), and the decay one step ahead.
      if (step < warmup) {
        if (typeof kw.warmup_lr_rate !== "number") return (step + 1) / Math.max(1, warmup);
        return kw.warmup_lr_rate + ((1 - kw.warmup_lr_rate) * step) / Math.max(1, warmup - 1);
      }
      const rate = minLrRate();
      const p = (step - warmup + 1) / Math.max(1, total - warmup);
      return Math.max(0, 0.5 * (1 + Math.cos(Math.PI * cycles * 2 * p)) * (1 - rate) + rate);
    }
    case "warmup_stable_decay": {
      const decaySteps = num("num_decay_steps", 0);
      const stableSteps = typeof kw.num_stable_steps === "number" ? kw.num_stable_steps : total - warmup - decaySteps;
      const minRatio = num("min_lr_ratio", 0);
      const shape = (kind: unknown, p: number, rising: boolean) =>
        kind === "linear"
          ? rising
            ? p
            : 1 - p
          : kind === "1-sqrt"
            ? rising
              ? 1 - Math.sqrt(1 - p)
              : 1 - Math.sqrt(p)
            : rising
              ? 0.5 * (1 - Math.cos(Math.PI * p))
              : 0.5 * (1 + Math.cos(Math.PI * cycles * 2 * p));
      if (step < warmup)
        return Math.max(
          0,
          shape(kw.warmup_type ?? "linear", step / Math.max(1, warmup), true) * (1 - minRatio) + minRatio,
        );
      if (step < warmup + stableSteps) return 1;
      if (step < warmup + stableSteps + decaySteps) {
        const p = (step - warmup - stableSteps) / Math.max(1, decaySteps);
        return Math.max(0, shape(kw.decay_type ?? "cosine", p, false) * (1 - minRatio) + minRatio);
      }
      return minRatio;
    }
    default:
      throw new Error(
        `unknown lr_scheduler_type '${(options as { type: string }).type}'; expected one of ${SCHEDULE_TYPES.join(", ")}`,
      );
  }
}

export function warmupStepsOf(options: ScheduleOptions): number {
  if (options.warmupSteps !== undefined && options.warmupSteps > 0) return options.warmupSteps;
  if (options.warmupRatio !== undefined) {
    if (options.warmupRatio < 0 || options.warmupRatio > 1)
      throw new Error(`warmup_ratio must be in [0, 1], got ${options.warmupRatio}`);
    return Math.ceil((options.totalSteps ?? 0) * options.warmupRatio);
  }
  return 0;
}

/** Types whose multiplier depends on the run's length. */
const NEEDS_TOTAL: readonly ScheduleType[] = [
  "linear",
  "cosine",
  "cosine_with_restarts",
  "polynomial",
  "cosine_with_min_lr",
  "cosine_warmup_with_min_lr",
];

export class LRScheduler {
  #step = 0;

  constructor(
    readonly optimizer: Optimizer<GroupOptions>,
    readonly options: ScheduleOptions,
  ) {
    if (NEEDS_TOTAL.includes(options.type) && !(options.totalSteps && options.totalSteps > 0)) {
      throw new Error(`${options.type} schedule needs totalSteps > 0`);
    }
    if (!(SCHEDULE_TYPES as readonly string[]).includes(options.type)) scheduleMultiplier(options, 0); // names the unknown type
    const problem = scheduleKwargsProblem(options.type, options.kwargs ?? {}, options.baseLr);
    if (problem) throw new Error(`lr_scheduler_kwargs: ${problem}`);
    this.apply();
  }

  /** Advances one optimizer step and sets each group's learning rate. */
  step(): void {
    this.#step += 1;
    this.apply();
  }

  get lastStep(): number {
    return this.#step;
  }
  /** The learning rates in force now, one per parameter group. */
  getLastLr(): number[] {
    return this.optimizer.paramGroups.map((g) => g.lr);
  }

  stateDict(): { step: number } {
    return { step: this.#step };
  }
  loadStateDict(state: { step: number }): void {
    this.#step = state.step;
    this.apply();
  }

  private apply(): void {
    const m = scheduleMultiplier(this.options, this.#step);
    for (const g of this.optimizer.paramGroups) g.lr = g.initialLr * m;
  }
}
