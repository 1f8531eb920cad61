// output_dir/metrics.jsonl as a callback: every logged row, one JSON object a line, written by
// the main process as it happens (an interrupted run keeps its rows); a resumed run first drops
// the rows after its checkpoint's step (they are redone).
import { join } from "node:path";
import { MetricsSink } from "../metrics.js";
import type { TrainerCallback, TrainerEvent } from "./callback.js";

export const METRICS_FILE = "metrics.jsonl";

export class MetricsFileCallback implements TrainerCallback {
  readonly sink: MetricsSink;

  constructor(outputDir: string) {
    this.sink = new MetricsSink(join(outputDir, METRICS_FILE));
  }

  onTrainBegin({ state }: TrainerEvent): void {
    if (state.isWorldProcessZero) this.sink.truncateAfter(state.resumedFrom ? state.globalStep : -1);
  }

  onLog({ state, metrics }: TrainerEvent): void {
    if (state.isWorldProcessZero && metrics) this.sink.write(metrics);
  }
}
