// The parallelism strategies, each declared once: a run without WORLD_SIZE is one process; a
// rank of a distributed run takes the strategy registered for the recipe's zero_stage. A new
// strategy is a module implementing ParallelStrategy and one registerStrategy call below (and
// its zero_stage value allowed in keys.ts).
import type { TrainConfig } from "../config.js";
import { DataParallel } from "./data-parallel.js";
import { distributedEnv, type DistributedEnv } from "./environment.js";
import { SingleProcess, type ParallelStrategy } from "./strategy.js";
import { ZeroStage1 } from "./zero.js";
import { ZeroStage2 } from "./zero2.js";
import { ZeroStage3 } from "./zero3.js";

export interface StrategyEntry {
  name: string;
  /** The recipe's zero_stage this strategy serves in a distributed run. */
  zeroStage: number;
  create(env: DistributedEnv): ParallelStrategy;
}

const REGISTRY = new Map<number, StrategyEntry>();

export function registerStrategy(entry: StrategyEntry): void {
  const taken = REGISTRY.get(entry.zeroStage);
  if (taken) throw new Error(`zero_stage ${entry.zeroStage} already has a strategy (${taken.name})`);
  REGISTRY.set(entry.zeroStage, entry);
}

export function registeredStrategies(): StrategyEntry[] {
  return [...REGISTRY.values()];
}

registerStrategy({ name: "ddp", zeroStage: 0, create: (env) => new DataParallel(env) });
registerStrategy({ name: "zero1", zeroStage: 1, create: (env) => new ZeroStage1(env) });
registerStrategy({ name: "zero2", zeroStage: 2, create: (env) => new ZeroStage2(env) });
registerStrategy({ name: "zero3", zeroStage: 3, create: (env) => new ZeroStage3(env) });

/** The strategy this process runs: from its environment (WORLD_SIZE, RANK...) and the recipe's zero_stage. */
export function strategyFor(
  config: TrainConfig,
  env: DistributedEnv | null = distributedEnv(process.env, config.localRank),
): ParallelStrategy {
  if (!env) return new SingleProcess();
  const entry = REGISTRY.get(config.zeroStage);
  if (!entry) {
    const known = registeredStrategies()
      .map((e) => `${e.zeroStage} (${e.name})`)
      .join(", ");
    throw new Error(`zero_stage: ${config.zeroStage} has no parallelism strategy (registered: ${known})`);
  }
  return entry.create(env);
}
