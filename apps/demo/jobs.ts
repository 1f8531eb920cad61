// The demo's units of work, as plain data: each is sent to a worker process (apps/demo/runs.ts)
// and answered with its result, so a job holds everything it needs.
import type { Pair, ScoredSamples } from "../../src/index.js";
import type { ArithProblem } from "../tasks/arith/index.js";

/** K samples per prompt from the starting policy, scored by the verifier and the noisy process judge. */
export interface SampleJob {
  kind: "sample";
  id: string;
  sftDir: string;
  prompts: string[];
  samples: number;
  temperature: number;
  judgeNoise: number;
  seed: number;
}

/** One training run through the trainer, then greedy correctness on `evaluate`. */
export interface TrainJob {
  kind: "train";
  id: string;
  /** The recipe, as a YAML file would give it (output_dir included). */
  recipe: Record<string, unknown>;
  evaluate: ArithProblem[];
  /** Keep output_dir's logs (metrics, pair log) for the report; the weights are always removed. */
  keepLogs: boolean;
}

/** The rm pipeline's reward model, trained by train-rm's trainer and kept in output_dir. */
export interface RewardModelJob {
  kind: "reward-model";
  id: string;
  /** The recipe, as a YAML file would give it (output_dir included). */
  recipe: Record<string, unknown>;
}

/** A reward model's pairwise accuracy on judge-labelled pairs it never trained on. */
export interface RewardAccuracyJob {
  kind: "reward-accuracy";
  id: string;
  dir: string;
  pairs: Pair[];
}

/** The reward model in `dir` scoring every sample of `samples`. */
export interface RewardScoreJob {
  kind: "reward-score";
  id: string;
  dir: string;
  samples: ScoredSamples;
}

export type Job = SampleJob | TrainJob | RewardModelJob | RewardAccuracyJob | RewardScoreJob;
export type JobResult<J extends Job> = J extends SampleJob
  ? ScoredSamples
  : J extends TrainJob
    ? TrainResult
    : J extends RewardModelJob
      ? { seconds: number }
      : J extends RewardAccuracyJob
        ? number
        : number[][];
type TrainResult = { correct: number[]; seconds: number };
