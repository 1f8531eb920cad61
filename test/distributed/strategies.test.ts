// The parallelism strategies' registry: a process without WORLD_SIZE is one process; a rank
// takes the strategy registered for its recipe's zero_stage; a stage registered twice is an
// error naming both. (What each strategy does is tested by ddp-equality, zero and faults.)
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  registerStrategy,
  registeredStrategies,
  strategyFor,
  SingleProcess,
  DataParallel,
  ZeroStage1,
  ZeroStage2,
  ZeroStage3,
} from "../../src/train/distributed/index.js";
import { distributedEnv } from "../../src/train/distributed/environment.js";
import { loadTrainConfig, type TrainConfig } from "../../src/train/config.js";

const env = distributedEnv({ WORLD_SIZE: "2", RANK: "1", MASTER_ADDR: "127.0.0.1", MASTER_PORT: "29500" })!;
const config = (zeroStage: number) => ({ zeroStage, localRank: -1 }) as TrainConfig;

describe("parallelism strategies", () => {
  it("one process without WORLD_SIZE; DDP, ZeRO-1, ZeRO-2 or ZeRO-3 by zero_stage in a distributed run", () => {
    assert.ok(strategyFor(config(0), null) instanceof SingleProcess);
    const ddp = strategyFor(config(0), env);
    assert.ok(ddp instanceof DataParallel && !(ddp instanceof ZeroStage1));
    assert.deepEqual(
      [ddp.name, ddp.rank, ddp.worldSize, ddp.isMainProcess, ddp.isLocalMainProcess],
      ["ddp", 1, 2, false, false],
    );
    const zero1 = strategyFor(config(1), env);
    assert.ok(zero1 instanceof ZeroStage1 && !(zero1 instanceof ZeroStage2));
    const zero2 = strategyFor(config(2), env);
    assert.ok(zero2 instanceof ZeroStage2 && !(zero2 instanceof ZeroStage3));
    assert.ok(strategyFor(config(3), env) instanceof ZeroStage3);
    assert.deepEqual(
      registeredStrategies()
        .map((e) => [e.zeroStage, e.name])
        .slice(0, 4),
      [
        [0, "ddp"],
        [1, "zero1"],
        [2, "zero2"],
        [3, "zero3"],
      ],
    );
  });

  it("a stage without a strategy, or registered twice, is an error naming it", () => {
    assert.throws(
      () => strategyFor(config(9), env),
      /zero_stage: 9 has no parallelism strategy \(registered: 0 \(ddp\), 1 \(zero1\), 2 \(zero2\), 3 \(zero3\)/,
    );
    assert.throws(
      () => registerStrategy({ name: "other", zeroStage: 1, create: (e) => new DataParallel(e) }),
      /zero_stage 1 already has a strategy \(zero1\)/,
    );
  });

  it("a recipe's zero_stage outside the registered stages is an error naming the key and the stages", () => {
    const recipe = { model_name_or_path: "m", train_data_path: "d.jsonl", output_dir: "o" };
    assert.equal(loadTrainConfig({ ...recipe, zero_stage: 3 }).config.zeroStage, 3);
    assert.throws(
      () => loadTrainConfig({ ...recipe, zero_stage: 4 }),
      /key 'zero_stage' must be 0 \(off\), 1 \(ZeRO-1: optimizer state sharded\), 2 \(ZeRO-2: gradients too\) or 3 \(ZeRO-3: weights too\), got 4/,
    );
  });
});
