// Data parallelism on c10d, as the HF trainer runs under DDP: each rank trains on its shard of
// every epoch (shardOf, as PyTorch's DistributedSampler), gradients are averaged before clipping
// and the step so the weights stay identical on every rank, metrics are averaged before they are
// logged, and rank 0 alone writes output_dir. Every collective of a data-parallel run is a
// method here (or of the ZeRO-1 strategy over it, zero.ts).
import * as torch from "../../torch/index.js";
import { ProcessGroup, type Backend, type GradientSync } from "../../torch/distributed.js";
import { plainBackprop, type Backprop } from "../../nn/recompute.js";
import type { CausalLM } from "../../models/causal-lm.js";
import type { TrainConfig } from "../config.js";
import type { TrainerState, TrainOptimizer } from "../checkpoint.js";
import type { MetricRow } from "../metrics.js";
import type { ReferenceSharding } from "../reference.js";
import type { DistributedEnv } from "./environment.js";
import { averageGradients, bucketSizes, overlapEnabled } from "./gradients.js";
import { interleave, shardOf, strideOf } from "./sharding.js";
import { SingleProcess, type GatheredState, type Interval, type ParallelStrategy } from "./strategy.js";

export class DataParallel implements ParallelStrategy {
  readonly name: string = "ddp";
  readonly rank: number;
  readonly worldSize: number;
  readonly isMainProcess: boolean;
  readonly isLocalMainProcess: boolean;
  readonly collectiveForward: boolean = false;
  group!: ProcessGroup;
  /** Buckets this run started during backward, and all it reduced (the overlap, for the log and tests). */
  readonly overlap = { early: 0, buckets: 0 };
  /** The all-reduce overlapped with backward (made at the first step; null: off or one rank). */
  #sync: GradientSync | null = null;
  /** OMNI_DPO_DDP_OVERLAP, read once at the start. */
  #overlapOn = true;
  #bucketBytes = 25 * 1024 * 1024;
  #status: (message: string) => void = () => {};
  /** Eval rows reduced so far (each one's key list is shared under its own store key). */
  #evals = 0;

  constructor(readonly env: DistributedEnv) {
    this.rank = env.rank;
    this.worldSize = env.worldSize;
    this.isMainProcess = env.rank === 0;
    this.isLocalMainProcess = env.localRank === 0;
  }

  device(config: TrainConfig): torch.Device {
    // Each process of a machine takes its own GPU, as torchrun's workers do.
    if (config.device === "auto" && torch.cuda.isAvailable()) return `cuda:${this.env.localRank}`;
    return new SingleProcess().device(config);
  }

  /** The backend: --backend (OMNI_DPO_BACKEND), else by device: gloo on CPU, nccl on CUDA. */
  backend(config: TrainConfig): Backend {
    return this.env.backend ?? (this.device(config) === "cpu" ? "gloo" : "nccl");
  }

  begin(config: TrainConfig, status: (message: string) => void): void {
    this.#status = status;
    this.#overlapOn = overlapEnabled();
    this.#bucketBytes = (config.ddpBucketCapMb ?? 25) * 1024 * 1024;
    const { env } = this;
    this.group = ProcessGroup.init({
      rank: this.rank,
      worldSize: this.worldSize,
      masterAddr: env.masterAddr,
      masterPort: env.masterPort,
      backend: this.backend(config),
      timeoutMs: config.ddpTimeout * 1000,
      socketIfname: env.socketIfname ?? undefined,
      storeServed: env.agentStore,
    });
    const where = `${this.group.backend}, ${env.masterAddr}:${env.masterPort}`;
    status(`rank ${this.rank} of ${this.worldSize} joined (${where})`);
  }

  end(): void {
    if (this.overlap.buckets) {
      const { early, buckets } = this.overlap;
      const what = "gradient buckets started their all-reduce during backward";
      this.#status(`rank ${this.rank}: ${early} of ${buckets} ${what}`);
    }
    this.#sync?.destroy();
    this.#sync = null;
  }

  // ---- data ----------------------------------------------------------------------------

  shardEpoch(order: number[]): number[] {
    return shardOf(order, this.rank, this.worldSize);
  }

  shardEval(indices: number[]): number[] {
    return strideOf(indices, this.rank, this.worldSize);
  }

  referenceSharding(): ReferenceSharding {
    const { rank, worldSize } = this;
    return {
      all: (mine) => !this.anyProcess([!mine])[0],
      indices: (n) =>
        strideOf(
          Array.from({ length: n }, (_, i) => i),
          rank,
          worldSize,
        ),
      gather: (mine, n) => {
        const per = Math.ceil(n / worldSize);
        const parts = torch.tidy(() => {
          const own = torch.zeros([2, per], { dtype: "float64" }); // [chosen | rejected, pairs], padded
          if (mine.chosen.length) {
            const values = torch.tensor([mine.chosen, mine.rejected], { dtype: "float64" }); // [2, own pairs]
            own.narrow(1, 0, mine.chosen.length).copy_(values);
          }
          return this.group.allGather(own).map((t) => t.toArray() as number[][]);
        });
        const counts = Array.from({ length: worldSize }, (_, r) => Math.max(0, Math.ceil((n - r) / worldSize)));
        return {
          chosen: interleave(
            parts.map((p, r) => p[0].slice(0, counts[r])),
            n,
          ),
          rejected: interleave(
            parts.map((p, r) => p[1].slice(0, counts[r])),
            n,
          ),
        };
      },
      writes: this.isLocalMainProcess,
    };
  }

  fromMain(key: string, value: string | null): string {
    return this.group.shareString(`omni-dpo/${key}`, this.isMainProcess ? value : null);
  }

  // ---- the step ------------------------------------------------------------------------

  /** Identical starting weights everywhere (LoRA's random adapters included): rank 0's, as DDP broadcasts them. */
  prepareModel(model: CausalLM, seed: number): void {
    torch.noGrad(() => this.group.broadcast(model.parameters(), 0));
    // From here each rank draws from its own stream (seed + rank), reproducible per rank.
    torch.manualSeed(seed + this.rank);
  }

  wrapOptimizer(full: TrainOptimizer, _status: (message: string) => void): TrainOptimizer {
    return full;
  }

  /** The trainable parameters in DDP's bucket order: reverse registration (backward reaches the last ones first). */
  #bucketOrder(params: torch.Tensor[]): torch.Tensor[] {
    return [...params].reverse();
  }

  /**
   * The step's last micro-batch starts each bucket's all-reduce as soon as backward has made its
   * gradients final (earlier micro-batches accumulate locally, as under DDP's no_sync).
   */
  lastBackprop(params: torch.Tensor[]): Backprop {
    if (this.worldSize === 1 || !this.#overlapOn) return plainBackprop;
    if (!this.#sync) {
      const ordered = this.#bucketOrder(params);
      this.#sync = this.group.gradientSync(ordered, bucketSizes(ordered, this.#bucketBytes));
    }
    const sync = this.#sync;
    sync.arm();
    return (root, grad, later) => sync.backward(root, grad, later);
  }

  /** Earlier micro-batches accumulate locally (DDP's no_sync). */
  accumulateBackprop(_params: torch.Tensor[]): Backprop {
    return plainBackprop;
  }

  syncGradients(params: torch.Tensor[]): void {
    if (this.#sync && this.worldSize > 1 && this.#overlapOn) {
      this.overlap.early += this.#sync.finish();
      this.overlap.buckets += this.#sync.bucketCount;
    } else {
      averageGradients(this.group, this.#bucketOrder(params), this.#bucketBytes);
    }
  }

  clipGradients(params: torch.Tensor[], maxNorm: number): number {
    return torch.clipGradNorm(params, maxNorm);
  }

  // ---- metrics and control -------------------------------------------------------------

  /**
   * Every metric averaged over the ranks, but tokens_per_second: the run's, every rank's tokens
   * over the slowest rank's seconds (the interval's wall time: each waits for the others at every
   * all-reduce).
   */
  reduceTrainRow(row: MetricRow, interval: Interval): MetricRow {
    const keys = Object.keys(row).filter(
      (k) => typeof row[k] === "number" && k !== "step" && k !== "epoch" && k !== "tokens_per_second",
    );
    const totals = this.#sum([interval.tokens, ...keys.map((k) => row[k] as number)]);
    const seconds = torch.tidy(() => {
      const t = torch.tensor([interval.seconds], { dtype: "float64" });
      this.group.allReduce([t], "max");
      return t.item();
    });
    const mean = Object.fromEntries(keys.map((k, i) => [k, totals[i + 1] / this.worldSize]));
    const reduced: MetricRow = { ...row, ...mean };
    if ("tokens_per_second" in row) reduced.tokens_per_second = totals[0] / Math.max(seconds, 1e-9);
    return reduced;
  }

  reduceEvalSums(sums: Record<string, number>, n: number): { sums: Record<string, number>; n: number } {
    // Rank 0 always holds eval pair 0, so its metric names are the run's (a rank may have none).
    const shared = this.group.shareString(`omni-dpo/eval-keys/${this.#evals++}`, JSON.stringify(Object.keys(sums)));
    const keys = JSON.parse(shared) as string[];
    const totals = this.#sum([n, ...keys.map((k) => sums[k] ?? 0)]);
    return { n: totals[0], sums: Object.fromEntries(keys.map((k, i) => [k, totals[i + 1]])) };
  }

  anyProcess(flags: boolean[]): boolean[] {
    return torch.tidy(() => {
      const t = torch.tensor(
        flags.map((f) => (f ? 1 : 0)),
        { dtype: "int64" },
      );
      this.group.allReduce([t], "max");
      return (t.toArray() as number[]).map((v) => v === 1);
    });
  }

  barrier(): void {
    this.group.barrier();
  }

  #sum(values: number[]): number[] {
    return torch.tidy(() => {
      const t = torch.tensor(values, { dtype: "float64" });
      this.group.allReduce([t], "sum");
      return t.toArray() as number[];
    });
  }

  // ---- checkpoints ---------------------------------------------------------------------

  gatherCheckpoint(_optimizer: TrainOptimizer): GatheredState {
    const rngStates = torch.tidy(() =>
      this.group.allGather(torch.getRngState()).map((t) => Buffer.from(t.data() as Uint8Array).toString("base64")),
    );
    return { rngStates, release() {} };
  }

  /** Every rank holds the whole weights. */
  gatherWeights(): { release(): void } {
    return { release() {} };
  }

  rngStateOf(state: TrainerState): string {
    return state.rngStates?.[this.rank] ?? state.rngState;
  }
}
