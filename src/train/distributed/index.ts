// Data-parallel training on c10d: the environment a rank reads, the launcher, and the trainer.
export { distributedEnv, type DistributedEnv } from "./environment.js";
export { launch, launchProblems, watchLauncher, type LaunchOptions } from "./launcher.js";
export { DistributedPreferenceTrainer } from "./trainer.js";
export { averageGradients, buckets, bucketSizes, overlapEnabled, BUCKET_BYTES } from "./gradients.js";
export { shardOf, strideOf, interleave } from "./sharding.js";

import type { TrainConfig } from "../config.js";
import { PreferenceTrainer, type TrainHooks, type TrainResult } from "../trainer.js";
import { distributedEnv } from "./environment.js";
import { DistributedPreferenceTrainer } from "./trainer.js";

/** Trains as this process's environment says: one rank of a distributed run (WORLD_SIZE set), else alone. */
export function trainHere(config: TrainConfig, hooks: TrainHooks = {}): Promise<TrainResult> {
  const env = distributedEnv(process.env, config.localRank);
  return env ? new DistributedPreferenceTrainer(config, hooks, env).train() : new PreferenceTrainer(config, hooks).train();
}
