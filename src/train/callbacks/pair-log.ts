// output_dir/pair_log.jsonl as a callback (see ../pair-log.ts for the format): every
// pair_logging_steps and at the last step, the main process runs the fixed sample of training
// pairs through the policy (no gradient) and appends each pair's margin and the loss's per-pair
// values. With pair_log_samples: 0 it only removes an earlier run's file.
import { rmSync } from "node:fs";
import { join } from "node:path";
import { PAIR_LOG_FILE, PairLog, type PairLogHeader } from "../pair-log.js";
import type { TrainerCallback, TrainerEvent } from "./callback.js";

/** The sample's values now: margins and the loss's per-pair metrics, in the ids' order. */
export type PairValuesOf = (ids: number[]) => { margins: number[]; metrics: Record<string, number[] | number> };

export class PairLogCallback implements TrainerCallback {
  readonly #log: PairLog | null;

  /** `header` null: no pair log this run; `every`: the resolved pair_logging_steps. */
  constructor(
    readonly outputDir: string,
    header: PairLogHeader | null,
    readonly every: number | null,
    readonly valuesOf: PairValuesOf,
    /** Whether computing the values takes every process (ZeRO-3's forwards): then all compute, the main one writes. */
    readonly collective = false,
  ) {
    this.#log = header ? new PairLog(join(outputDir, PAIR_LOG_FILE), header) : null;
  }

  onTrainBegin({ state }: TrainerEvent): void {
    if (!state.isWorldProcessZero) return;
    if (this.#log) this.#log.open(state.resumedFrom ? state.globalStep : -1);
    // An earlier run's file, not this one's.
    else if (!state.resumedFrom) rmSync(join(this.outputDir, PAIR_LOG_FILE), { force: true });
  }

  onStepEnd({ state }: TrainerEvent): void {
    if (!this.#log || (!state.isWorldProcessZero && !this.collective) || this.every === null) return;
    const step = state.globalStep;
    if (step % this.every !== 0 && step < state.maxSteps) return;
    const { margins, metrics } = this.valuesOf(this.#log.header.ids);
    if (!state.isWorldProcessZero) return;
    this.#log.write(step, Math.round(state.epoch * 1e4) / 1e4, margins, metrics);
  }
}
