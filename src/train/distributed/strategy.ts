// How the trainer's processes work together: the one object that owns every collective. The
// trainer runs the same steps for 1..N processes (as accelerate and nanoGPT do) and asks its
// strategy wherever processes must agree or share: which pairs this process trains on, the
// gradients before the step, the optimizer (sharded or not), a metrics row, whether to stop or
// save, the state a checkpoint holds, and barriers. Nothing else in the trainer looks at ranks,
// and no collective happens anywhere but in a strategy's methods, each called by every rank at
// the same point (a method called by one rank alone would deadlock the others).
//
// SingleProcess is the identity for all of it. Data-parallel strategies are in
// data-parallel.ts (DDP), zero.ts (ZeRO-1), zero2.ts (ZeRO-2) and zero3.ts (ZeRO-3);
// strategies.ts registers them.
import * as torch from "../../torch/index.js";
import { plainBackprop, type Backprop } from "../../nn/recompute.js";
import type { CausalLM } from "../../models/causal-lm.js";
import type { TrainConfig } from "../config.js";
import type { TrainerState, TrainOptimizer } from "../checkpoint.js";
import type { MetricRow } from "../metrics.js";
import type { ReferenceSharding } from "../reference.js";

/** A train row's interval on this process: its attention-mask tokens and its training seconds. */
export interface Interval {
  tokens: number;
  seconds: number;
}

/** What a checkpoint needs from every process, gathered on the main one; release() frees it once written. */
export interface GatheredState {
  /** Every rank's RNG state (base64), in rank order; absent with one process. */
  rngStates?: string[];
  release(): void;
}

export interface ParallelStrategy {
  /** The registry's name ("single", "ddp", "zero1", "zero2", "zero3"). */
  readonly name: string;
  readonly rank: number;
  readonly worldSize: number;
  /** Whether this process writes output_dir (transformers' is_world_process_zero). */
  readonly isMainProcess: boolean;
  /** Whether this process writes what one machine's processes share (is_local_process_zero). */
  readonly isLocalMainProcess: boolean;
  /**
   * Whether every forward of the policy takes every process (ZeRO-3 gathers each layer's weights
   * from their owners): what the main process alone would compute (the pair log) runs on all.
   */
  readonly collectiveForward: boolean;

  /** The device this process trains on (`device: auto` picks this process's GPU). */
  device(config: TrainConfig): torch.Device;
  /** Joins the other processes; before anything else. `status` gets what the user should see. */
  begin(config: TrainConfig, status: (message: string) => void): void;
  /** Frees what begin() and the steps made; after everything else (also after an error). */
  end(): void;

  /** This process's share of an epoch's order of training pairs. */
  shardEpoch(order: number[]): number[];
  /** This process's share of the eval pairs (each pair evaluated once over all processes). */
  shardEval(indices: number[]): number[];
  /** How precomputing the reference's log-probs splits across processes; undefined: not at all. */
  referenceSharding(): ReferenceSharding | undefined;
  /** The main process's `value` on every process (the run plan, which only it may make). */
  fromMain(key: string, value: string | null): string;

  /** Makes the freshly loaded policy the same on every process and seeds this process's RNG stream. */
  prepareModel(model: CausalLM, seed: number): void;
  /** The optimizer the trainer steps: `full` itself, or a sharded one over it. */
  wrapOptimizer(full: TrainOptimizer, status: (message: string) => void): TrainOptimizer;
  /** How the step's last micro-batch backpropagates over `params` (the trainable parameters). */
  lastBackprop(params: torch.Tensor[]): Backprop;
  /** How each micro-batch before the step's last backpropagates (DDP: locally, as no_sync; ZeRO-2: reducing). */
  accumulateBackprop(params: torch.Tensor[]): Backprop;
  /** Makes the gradients of `params` the mean over processes; before clipping and the step. */
  syncGradients(params: torch.Tensor[]): void;
  /**
   * Clips the gradients of `params` (after syncGradients) to a joint norm of at most `maxNorm`,
   * as torch.nn.utils.clip_grad_norm_, and returns the norm before clipping: the whole model's
   * on every process, also where each holds only its shard of the gradients (ZeRO-2).
   */
  clipGradients(params: torch.Tensor[], maxNorm: number): number;

  /** A train row of this process's averages as the run's (every process's together). */
  reduceTrainRow(row: MetricRow, interval: Interval): MetricRow;
  /** This process's eval sums (metric x pairs) and pair count as the whole evaluation's. */
  reduceEvalSums(sums: Record<string, number>, n: number): { sums: Record<string, number>; n: number };
  /** Each flag as true when it is true on any process (a stop or save every process then takes). */
  anyProcess(flags: boolean[]): boolean[];
  /** Waits until every process is here. */
  barrier(): void;

  /** What a checkpoint needs from every process, gathered for the main one (which writes it). */
  gatherCheckpoint(optimizer: TrainOptimizer): GatheredState;
  /** The policy's whole weights on the main process (to write the model) until release(); ZeRO-3 gathers them. */
  gatherWeights(): { release(): void };
  /** The RNG state this process resumes with from a checkpoint's state. */
  rngStateOf(state: TrainerState): string;
}

/** One process: every collective is the identity. */
export class SingleProcess implements ParallelStrategy {
  readonly name: string = "single";
  readonly rank: number = 0;
  readonly worldSize: number = 1;
  readonly isMainProcess: boolean = true;
  readonly isLocalMainProcess: boolean = true;
  readonly collectiveForward: boolean = false;

  device(config: TrainConfig): torch.Device {
    const cuda = torch.cuda.isAvailable();
    const device = config.device === "auto" ? (cuda ? "cuda" : "cpu") : torch.toDevice(config.device);
    if (device !== "cpu" && !cuda) throw new Error(`device: ${device} was asked for, but this LibTorch has no CUDA`);
    return device;
  }

  begin(_config: TrainConfig, _status: (message: string) => void): void {}
  end(): void {}
  shardEpoch(order: number[]): number[] {
    return order;
  }
  shardEval(indices: number[]): number[] {
    return indices;
  }
  referenceSharding(): ReferenceSharding | undefined {
    return undefined;
  }
  fromMain(_key: string, value: string | null): string {
    return value!;
  }
  prepareModel(_model: CausalLM, _seed: number): void {}
  wrapOptimizer(full: TrainOptimizer): TrainOptimizer {
    return full;
  }
  lastBackprop(): Backprop {
    return plainBackprop;
  }
  accumulateBackprop(): Backprop {
    return plainBackprop;
  }
  syncGradients(): void {}
  clipGradients(params: torch.Tensor[], maxNorm: number): number {
    return torch.clipGradNorm(params, maxNorm);
  }
  reduceTrainRow(row: MetricRow): MetricRow {
    return row;
  }
  reduceEvalSums(sums: Record<string, number>, n: number): { sums: Record<string, number>; n: number } {
    return { sums, n };
  }
  anyProcess(flags: boolean[]): boolean[] {
    return flags;
  }
  barrier(): void {}
  gatherCheckpoint(): GatheredState {
    return { release() {} };
  }
  gatherWeights(): { release(): void } {
    return { release() {} };
  }
  rngStateOf(state: TrainerState): string {
    return state.rngState;
  }
}
