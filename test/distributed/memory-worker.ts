// One rank of a 2-rank training run that measures what it holds, for the memory estimator's
// test: LibTorch's CPU allocator's bytes (torch.memory().cpuAllocated, every tensor LibTorch
// holds) when the optimizer is made (the weights alone), at step 2 before and after the
// gradients are reduced, and after step 2; the allocator's peak over step 2; and the bytes of
// this rank's optimizer state tensors. Prints one JSON line. Usage: node memory-worker.js RECIPE.yaml
import { torch } from "../../src/index.js";
import { loadTrainConfig } from "../../src/train/config.js";
import { PreferenceTrainer } from "../../src/train/trainer.js";
import { strategyFor } from "../../src/train/distributed/strategies.js";
import type { TrainOptimizer } from "../../src/train/checkpoint.js";
import { ShardedOptimizer } from "../../src/train/distributed/zero.js";

const bytes = () => torch.memory().cpuAllocated;
const seen: Record<string, number> = {};
const { config } = loadTrainConfig(process.argv[2]);
const strategy = strategyFor(config);
const sync = strategy.syncGradients.bind(strategy);
let step = 0;
strategy.syncGradients = (params) => {
  if (step === 1) seen.beforeReduce = bytes();
  sync(params);
  if (step === 1) seen.afterReduce = bytes();
  if (step === 1 && process.env.DEBUG_GRADS)
    seen.gradBytes = torch.tidy(() => params.reduce((n, p) => n + (p.grad ? p.grad.numel() * 4 : 0), 0));
};

class MeasuringTrainer extends PreferenceTrainer {
  override createOptimizer(): TrainOptimizer {
    seen.weights = bytes();
    return super.createOptimizer();
  }
  override optimizerStep(): { gradNorm: number; learningRate: number } {
    const r = super.optimizerStep();
    // The allocator's peak over step 2 (its forward, backward and update).
    if (step === 0) torch.takeCpuPeak();
    if (step === 1) seen.stepPeak = torch.takeCpuPeak();
    if (step++ === 1) {
      seen.afterStep = bytes();
      // The state this rank's optimizer keeps (ZeRO's: its local optimizer over its share).
      const own = this.optimizer instanceof ShardedOptimizer ? this.optimizer.local : this.optimizer;
      seen.optimizerState = Object.values(own.stateDict().state)
        .flatMap((entry) => Object.values(entry))
        .reduce((n: number, v) => n + (v instanceof torch.Tensor ? v.numel() * 4 : 0), 0);
    }
    return r;
  }
}

await new MeasuringTrainer(config, { strategy }).train();
console.log(JSON.stringify({ rank: strategy.rank, ...seen }));
