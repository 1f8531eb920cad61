// The console's view of a training run, as a training callback: a progress bar with the step's
// loss and learning rate, and each eval row printed as it is logged (not with --json). The CLI
// installs it on the process that speaks for the run (rank 0).
import type { TrainerCallback, TrainerEvent } from "./callback.js";
import { formatRow, Progress } from "../../util/progress.js";

export class ConsoleProgressCallback implements TrainerCallback {
  #bar: Progress | null = null;

  constructor(readonly printEvalRows: boolean) {}

  onStepEnd({ state, metrics }: TrainerEvent): void {
    const info = `loss ${Number(metrics?.loss).toFixed(4)} lr ${Number(metrics?.learning_rate).toExponential(2)}`;
    (this.#bar ??= new Progress("training", state.maxSteps, true)).update(state.globalStep, info);
  }

  onEvaluate({ metrics }: TrainerEvent): void {
    if (this.printEvalRows && metrics) console.error(formatRow(metrics));
  }
}
