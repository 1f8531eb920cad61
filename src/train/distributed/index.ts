// Data-parallel training on c10d: the environment a rank reads, the launcher, and the
// parallelism strategies the trainer composes (strategy.ts, strategies.ts).
export { distributedEnv, type DistributedEnv } from "./environment.js";
export { launch, launchProblems, watchLauncher, type LaunchOptions } from "./launcher.js";
export { SingleProcess, type ParallelStrategy, type GatheredState, type Interval } from "./strategy.js";
export { DataParallel } from "./data-parallel.js";
export { ZeroStage1, ShardedOptimizer } from "./zero.js";
export { ZeroStage2 } from "./zero2.js";
export { ZeroStage3 } from "./zero3.js";
export { ShardedWeights } from "./sharded-weights.js";
export { registerStrategy, registeredStrategies, strategyFor, type StrategyEntry } from "./strategies.js";
export { averageGradients, buckets, bucketSizes, overlapEnabled, BUCKET_BYTES } from "./gradients.js";
export { shardOf, strideOf, interleave } from "./sharding.js";
