// The preference trainer over several processes (data parallelism on c10d), as the HF trainer
// runs under DDP: each rank trains on its shard of every epoch (shardOf), gradients are averaged
// before clipping and the step, so the weights stay identical on every rank; metrics are
// averaged before logging; rank 0 alone writes output_dir (metrics, checkpoints, the model).
// Each override below is one step of PreferenceTrainer; the step itself is unchanged.
import * as torch from "../../torch/index.js";
import { ProcessGroup, type Backend, type GradientSync } from "../../torch/distributed.js";
import { batchesOf } from "../../logprobs/pairs.js";
import { readTrainerState, restoreRngState, type TrainerState } from "../checkpoint.js";
import type { TrainConfig } from "../config.js";
import { MetricsSink, type MetricRow } from "../metrics.js";
import type { ReferenceSharding } from "../reference.js";
import type { ResumePlan } from "../resume.js";
import type { CausalLM } from "../../models/causal-lm.js";
import { PreferenceTrainer, type MicroBatchOutput, type TrainHooks, type TrainResult } from "../trainer.js";
import type { DistributedEnv } from "./environment.js";
import { averageGradients, bucketSizes, overlapEnabled } from "./gradients.js";
import { interleave, shardOf, strideOf } from "./sharding.js";
import { ShardedOptimizer } from "./zero.js";
import type { TrainOptimizer } from "../checkpoint.js";

/** Ranks other than 0 keep no metrics file: rank 0's is the run's. */
class NoMetricsFile extends MetricsSink {
  constructor() { super(""); }
  override write(): void {}
  override truncateAfter(): void {}
}

export class DistributedPreferenceTrainer extends PreferenceTrainer {
  group!: ProcessGroup;
  readonly env: DistributedEnv;
  /** Eval rows logged so far (each row's key list is shared under its own store key). */
  #evals = 0;
  /** The all-reduce overlapped with backward (made at the first step; null: off or one rank). */
  #sync: GradientSync | null = null;
  /** Buckets this run started during backward, and all it reduced (the overlap, for the log and tests). */
  overlap = { early: 0, buckets: 0 };
  /** OMNI_DPO_DDP_OVERLAP, read once at the start. */
  #overlapOn = true;

  constructor(config: TrainConfig, hooks: TrainHooks, env: DistributedEnv) {
    // A stop (Ctrl-C on any rank) is agreed at each step, so every rank checkpoints the same step.
    const self: { trainer?: DistributedPreferenceTrainer } = {};
    super(config, { ...hooks, shouldStop: () => self.trainer!.anyRank(hooks.shouldStop?.() ?? false) });
    self.trainer = this;
    this.env = env;
  }

  get rank(): number { return this.env.rank; }

  override get isMainProcess(): boolean { return this.rank === 0; }
  override get worldSize(): number { return this.env.worldSize; }

  /** The backend: --backend (OMNI_DPO_BACKEND), else by device: gloo on CPU, nccl on CUDA. */
  backend(): Backend {
    return this.env.backend ?? (this.chooseDevice() === "cpu" ? "gloo" : "nccl");
  }

  override async train(): Promise<TrainResult> {
    this.#overlapOn = overlapEnabled();
    this.group = ProcessGroup.init({
      rank: this.rank, worldSize: this.worldSize, masterAddr: this.env.masterAddr, masterPort: this.env.masterPort,
      backend: this.backend(), timeoutMs: this.config.ddpTimeout * 1000, socketIfname: this.env.socketIfname ?? undefined, storeServed: this.env.agentStore,
    });
    this.hooks.onStatus?.(`rank ${this.rank} of ${this.worldSize} joined (${this.group.backend}, ${this.env.masterAddr}:${this.env.masterPort})`);
    try {
      const result = await super.train();
      if (this.overlap.buckets) this.hooks.onStatus?.(`rank ${this.rank}: ${this.overlap.early} of ${this.overlap.buckets} gradient buckets started their all-reduce during backward`);
      return result;
    } finally {
      this.#sync?.destroy();
      this.#sync = null;
    }
  }

  /** Whether `mine` is true on any rank. */
  anyRank(mine: boolean): boolean {
    return torch.tidy(() => {
      const flag = torch.tensor([mine ? 1 : 0], { dtype: "int64" });
      this.group.allReduce([flag], "max");
      return flag.item() === 1;
    });
  }

  // ---- output_dir: rank 0's ------------------------------------------------------------

  override openOutputDir(): { release(): void } {
    const lock = this.rank === 0 ? super.openOutputDir() : { release() {} };
    this.group.barrier();
    return lock;
  }

  /** Rank 0 plans (it may delete checkpoints); the others follow its plan. */
  override planRun(): ResumePlan {
    const mine = this.rank === 0 ? super.planRun() : null;
    const shared = JSON.parse(this.group.shareString("omni-dpo/plan", mine && JSON.stringify({ dir: mine.dir, finished: mine.finished })));
    if (mine) return mine;
    return { dir: shared.dir, finished: shared.finished, state: shared.dir ? readTrainerState(shared.dir) : null };
  }

  override chooseDevice(): torch.Device {
    // Each process of a machine takes its own GPU, as torchrun's workers do.
    if (this.config.device === "auto" && torch.cuda.isAvailable()) return `cuda:${this.env.localRank}`;
    return super.chooseDevice();
  }

  override createMetricsSink(): MetricsSink {
    return this.rank === 0 ? super.createMetricsSink() : new NoMetricsFile();
  }

  // ---- data ----------------------------------------------------------------------------

  override epochBatches(epochIndex: number): number[][] {
    return batchesOf(shardOf(this.epochOrder(epochIndex), this.rank, this.worldSize), this.config.perDeviceTrainBatchSize);
  }

  override evalIndices(): number[] {
    return strideOf(super.evalIndices(), this.rank, this.worldSize);
  }

  override combineEvalSums(sums: Record<string, number>, n: number): { sums: Record<string, number>; n: number } {
    // Rank 0 always holds eval pair 0, so its metric names are the run's (a rank may have none).
    const keys = JSON.parse(this.group.shareString(`omni-dpo/eval-keys/${this.#evals++}`, JSON.stringify(Object.keys(sums)))) as string[];
    const totals = this.#sumOverRanks([n, ...keys.map((k) => sums[k] ?? 0)]);
    return { n: totals[0], sums: Object.fromEntries(keys.map((k, i) => [k, totals[i + 1]])) };
  }

  override referenceSharding(): ReferenceSharding {
    const { rank, worldSize } = this;
    return {
      all: (mine) => !this.anyRank(!mine),
      indices: (n) => strideOf(Array.from({ length: n }, (_, i) => i), rank, worldSize),
      gather: (mine, n) => {
        const per = Math.ceil(n / worldSize);
        const parts = torch.tidy(() => {
          const own = torch.zeros([2, per], { dtype: "float64" });  // [chosen | rejected, pairs], padded
          if (mine.chosen.length) own.narrow(1, 0, mine.chosen.length).copy_(torch.tensor([mine.chosen, mine.rejected], { dtype: "float64" }));
          return this.group.allGather(own).map((t) => t.toArray() as number[][]);
        });
        const counts = Array.from({ length: worldSize }, (_, r) => Math.max(0, Math.ceil((n - r) / worldSize)));
        return {
          chosen: interleave(parts.map((p, r) => p[0].slice(0, counts[r])), n),
          rejected: interleave(parts.map((p, r) => p[1].slice(0, counts[r])), n),
        };
      },
      writes: this.env.localRank === 0,
    };
  }

  // ---- the step ------------------------------------------------------------------------

  /** Identical starting weights everywhere (LoRA's random adapters included): rank 0's, as DDP broadcasts them. */
  override loadPolicy(checkpoint: string | null, device: torch.Device): CausalLM {
    const model = super.loadPolicy(checkpoint, device);
    torch.noGrad(() => this.group.broadcast(model.parameters(), 0));
    // From here each rank draws from its own stream (seed + rank), reproducible per rank.
    torch.manualSeed(this.config.seed + this.rank);
    return model;
  }

  /** The trainable parameters in DDP's bucket order (reverse registration: backward reaches the last ones first) and the bucket cap. */
  #bucketing(): { params: torch.Tensor[]; bucketBytes: number } {
    return { params: this.policy.parameters().filter((p) => p.requiresGrad).reverse(), bucketBytes: (this.config.ddpBucketCapMb ?? 25) * 1024 * 1024 };
  }

  /**
   * The step's last micro-batch starts each bucket's all-reduce as soon as backward has made its
   * gradients final (earlier micro-batches accumulate locally, as under DDP's no_sync).
   */
  override backward(out: MicroBatchOutput, scale: number, last: boolean): void {
    if (!last || this.worldSize === 1 || !this.#overlapOn) return super.backward(out, scale, last);
    if (!this.#sync) {
      const { params, bucketBytes } = this.#bucketing();
      this.#sync = this.group.gradientSync(params, bucketSizes(params, bucketBytes));
    }
    const sync = this.#sync;
    sync.arm();
    super.backward(out, scale, last, (root, grad, later) => sync.backward(root, grad, later));
  }

  /** With zero_stage: 1 (and several ranks) the optimizer's state is sharded (src/train/distributed/zero.ts). */
  override createOptimizer(): TrainOptimizer {
    const full = super.createOptimizer();
    if (this.config.zeroStage !== 1 || this.worldSize === 1) return full;
    const sharded = new ShardedOptimizer(full as never, this.group);
    const params = sharded.paramGroups.flatMap((g) => g.params);
    const mine = params.filter((_, i) => sharded.owners[i] === this.rank).reduce((n, p) => n + p.numel(), 0);
    const all = params.reduce((n, p) => n + p.numel(), 0);
    this.hooks.onStatus?.(`rank ${this.rank}: ZeRO-1, optimizer state for ${mine} of ${all} parameter elements (${(100 * mine / all).toFixed(1)}%)`);
    return sharded as unknown as TrainOptimizer;
  }

  override optimizerStep(): { gradNorm: number; learningRate: number } {
    if (this.#sync && this.worldSize > 1 && this.#overlapOn) {
      this.overlap.early += this.#sync.finish();
      this.overlap.buckets += this.#sync.bucketCount;
    } else {
      const { params, bucketBytes } = this.#bucketing();
      averageGradients(this.group, params, bucketBytes);
    }
    return super.optimizerStep();
  }

  #maxOverRanks(value: number): number {
    return torch.tidy(() => {
      const t = torch.tensor([value], { dtype: "float64" });
      this.group.allReduce([t], "max");
      return t.item();
    });
  }

  #sumOverRanks(values: number[]): number[] {
    return torch.tidy(() => {
      const t = torch.tensor(values, { dtype: "float64" });
      this.group.allReduce([t], "sum");
      return t.toArray() as number[];
    });
  }

  /**
   * Train rows: every metric averaged over the ranks, but tokens_per_second: the run's, every
   * rank's tokens over the slowest rank's seconds (the interval's wall time: each waits for the
   * others at every all-reduce); eval rows are already whole. Rank 0 writes.
   */
  override log(row: MetricRow): void {
    const isEval = Object.keys(row).some((k) => k.startsWith("eval_"));
    let out = row;
    if (!isEval) {
      const keys = Object.keys(row).filter((k) => typeof row[k] === "number" && k !== "step" && k !== "epoch" && k !== "tokens_per_second");
      const totals = this.#sumOverRanks([this.lastInterval.tokens, ...keys.map((k) => row[k] as number)]);
      const seconds = this.#maxOverRanks(this.lastInterval.seconds);
      const mean = Object.fromEntries(keys.map((k, i) => [k, totals[i + 1] / this.worldSize]));
      out = { ...row, ...mean, ...("tokens_per_second" in row ? { tokens_per_second: totals[0] / Math.max(seconds, 1e-9) } : {}) };
    }
    if (this.rank === 0) super.log(out);
  }

  // ---- checkpoints and the model: rank 0 writes -------------------------------------------

  override trainerState(): TrainerState {
    const state = super.trainerState();
    const rngStates = torch.tidy(() => this.group.allGather(torch.getRngState()).map((t) => Buffer.from(t.data() as Uint8Array).toString("base64")));
    return { ...state, rngStates };
  }

  override async save(): Promise<string> {
    // Sharded state comes to rank 0 first, every rank taking part, before rank 0 writes.
    const sharded = this.optimizer instanceof ShardedOptimizer ? this.optimizer : null;
    sharded?.gatherState();
    if (this.rank === 0) {
      try {
        this.checkpoint = await super.save();
      } finally {
        sharded?.releaseGathered();
      }
    } else {
      this.trainerState();  // its gather needs every rank
      this.checkpoint = `${this.config.outputDir}/checkpoint-${this.globalStep}`;
    }
    // The others wait here while rank 0 writes (not in the next step, whose time it is not).
    this.group.barrier();
    return this.checkpoint;
  }

  override resume(dir: string, state: TrainerState): void {
    super.resume(dir, state);
    const own = state.rngStates?.[this.rank];
    if (own) restoreRngState(own);
  }

  override async saveFinalModel(): Promise<void> {
    if (this.rank === 0) await super.saveFinalModel();
  }
}
