// ZeRO stage 3 (zero_stage: 3): the trainable weights sharded too, as DeepSpeed's stage 3 does
// it, on c10d's collectives. ZeRO-2 (zero2.ts) shards the gradients and the optimizer state by
// owner rank; here each owner also keeps the only copy of its parameters' float32 master weights
// (sharded-weights.ts). The model's layer loop gathers each decoder layer's weights from their
// owners just before the layer runs and frees them after; with gradient_checkpointing the layer
// is gathered again for its recomputation in backward and freed once backward is through it, so
// a rank holds its shard plus about one layer's weights. Embeddings, the final norm and the head
// ("outer") are gathered at the start of each forward and freed before the optimizer step (the
// head's chunks and a tied embedding are read to the end of backward). Without
// gradient_checkpointing autograd keeps every layer's weights for backward, so they are freed
// only at the step: the weights peak whole, as under stage 2.
//
// Gradients are reduced to their owners as under ZeRO-2 (each bucket within one layer, so a
// layer's weights are freed only after its bucket has gone); owners update their own weights and
// broadcast nothing. The arithmetic is ZeRO-2's, so the weights are DDP's. LoRA: only trainable
// parameters (the adapters) are sharded; the frozen base stays whole on every rank.
//
// Checkpoints are ZeRO-2's: the weights gathered on rank 0 (the usual Hugging Face files) and the
// optimizer's state gathered there, so a run resumes under stage 0, 1, 2 or 3 with the same
// number of ranks.
import type * as torch from "../../torch/index.js";
import { DecoderLM, type CausalLM } from "../../models/causal-lm.js";
import type { TrainConfig } from "../config.js";
import type { TrainOptimizer } from "../checkpoint.js";
import { ShardedWeights, type Part } from "./sharded-weights.js";
import type { GatheredState } from "./strategy.js";
import { ZeroStage2 } from "./zero2.js";

export class ZeroStage3 extends ZeroStage2 {
  override readonly name: string = "zero3";
  override readonly collectiveForward: boolean = true;
  #model: DecoderLM | null = null;
  #weights: ShardedWeights | null = null;
  /** Each sharded parameter's part (a layer's index, or "outer"), by the optimizer's order. */
  #partOf: Part[] = [];

  override begin(config: TrainConfig, status: (message: string) => void): void {
    if (config.syncRefModel) {
      throw new Error(
        `${config.source}: key 'sync_ref_model' cannot be used with zero_stage: 3 (the reference is updated from ` +
          "the whole policy, which no rank holds there); use zero_stage: 2",
      );
    }
    super.begin(config, status);
    if (!config.gradientCheckpointing && this.worldSize > 1) {
      status(
        `rank ${this.rank}: zero_stage 3 without gradient_checkpointing keeps every layer's gathered weights ` +
          "until the step (autograd reads them in backward); set gradient_checkpointing: true to free them per layer",
      );
    }
  }

  override end(): void {
    if (this.#model) this.#model.residency = null;
    super.end();
  }

  override prepareModel(model: CausalLM, seed: number): void {
    if (!(model instanceof DecoderLM))
      throw new Error(`zero_stage 3 shards decoder language models; ${model.constructor.name} is not one`);
    super.prepareModel(model, seed);
    this.#model = model;
  }

  protected override get broadcastsUpdates(): boolean {
    return false;
  }

  protected override bucketUnit(i: number): number {
    const part = this.#partOf[i];
    return part === "outer" ? -1 : part;
  }

  override wrapOptimizer(full: TrainOptimizer, status: (message: string) => void): TrainOptimizer {
    const wrapped = super.wrapOptimizer(full, (m) =>
      status(m.replace("ZeRO-2, gradients and optimizer state", "ZeRO-3, weights, gradients and optimizer state")),
    );
    const sharded = this.sharded;
    const model = this.#model;
    if (!sharded || !model) return wrapped;
    const params = sharded.paramGroups.flatMap((g) => g.params);
    const layerOf = new Map<torch.Tensor, number>();
    model.layerParameters().forEach((layer, i) => layer.forEach((p) => layerOf.set(p, i)));
    this.#partOf = params.map((p) => layerOf.get(p) ?? "outer");
    // The sync hooks the gradient accumulators, which record each weight's shape: made while whole.
    this.reducingSync();
    this.#weights = new ShardedWeights(this.group, params, sharded.owners, this.#partOf);
    model.residency = this.#weights;
    return wrapped;
  }

  /** ZeRO-2's, then every gathered copy freed: owners are about to update their weights. */
  override syncGradients(params: torch.Tensor[]): void {
    super.syncGradients(params);
    this.#weights?.releaseAll();
  }

  override gatherWeights(): { release(): void } {
    const weights = this.#weights;
    if (!weights) return { release() {} };
    weights.gatherOnMain();
    return { release: () => weights.releaseAll() };
  }

  /** ZeRO-2's (the optimizer's state and the RNG states) and the weights, on rank 0 until released. */
  override gatherCheckpoint(optimizer: TrainOptimizer): GatheredState {
    const weights = this.gatherWeights();
    const state = super.gatherCheckpoint(optimizer);
    return {
      rngStates: state.rngStates,
      release: () => {
        state.release();
        weights.release();
      },
    };
  }
}
