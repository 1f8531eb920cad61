// report_to: tensorboard as a callback: each logged row as scalars in an event file under
// logging_dir (default output_dir/runs/<date>_<host>), written by the main process.
import { defaultLoggingDir, TensorBoardWriter } from "../tensorboard.js";
import type { TrainConfig } from "../config.js";
import type { TrainerCallback, TrainerEvent } from "./callback.js";

export class TensorBoardCallback implements TrainerCallback {
  #writer: TensorBoardWriter | null = null;

  constructor(readonly config: TrainConfig) {}

  onTrainBegin({ state }: TrainerEvent): void {
    if (!state.isWorldProcessZero) return;
    this.#writer = new TensorBoardWriter(this.config.loggingDir ?? defaultLoggingDir(this.config.outputDir));
  }

  onLog({ state, metrics }: TrainerEvent): void {
    if (metrics) this.#writer?.logRow(metrics, state.globalStep);
  }

  close(): void {
    this.#writer?.close();
    this.#writer = null;
  }
}
