// The trackers report_to names, each a callback made from the recipe. A new tracker is a
// callback module and one entry here (and its name in keys.ts's REPORTERS).
import { reportedTo, type TrainConfig } from "../config.js";
import type { TrainerCallback } from "./callback.js";
import { TensorBoardCallback } from "./tensorboard.js";

export const TRACKERS: Record<string, (config: TrainConfig) => TrainerCallback> = {
  tensorboard: (config) => new TensorBoardCallback(config),
};

/** The callbacks of the trackers `report_to` names (those this package has; config.ts warns about the rest). */
export function trackerCallbacks(config: TrainConfig): TrainerCallback[] {
  return Object.entries(reportedTo(config.reportTo))
    .filter(([name, on]) => on && TRACKERS[name])
    .map(([name]) => TRACKERS[name](config));
}
