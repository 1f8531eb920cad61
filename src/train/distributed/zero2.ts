// ZeRO stage 2 (zero_stage: 2): the optimizer's state and the gradients sharded across ranks,
// as DeepSpeed's stage 2 does it, on c10d's collectives. Every trainable parameter has one owner
// rank (ZeRO-1's ownersOf). The gradient sync's reduce mode (native/src/grad_sync.h) runs during
// every micro-batch's backward: as soon as backward has made a bucket of one owner's gradients
// final, they are summed into the owner's copy (c10d's reduce) and the other ranks drop theirs
// (buckets in the model's reverse registration order: see syncOrder).
// An owner's gradients thus add up the ranks' and the step's micro-batches; it divides them by
// the world size at the step. A rank holds its share of the gradients and of AdamW's moments,
// plus what backward has not made final yet; the compute weights stay whole on every rank (the
// float32 master weights when torch_dtype is float32, bf16 autocast computing from them).
// Clipping takes the norm over the shards (each rank's sum of squares, all-reduced), and the
// owners update their parameters and broadcast them, as under ZeRO-1.
//
// The arithmetic of every update is plain DDP's (the same sums in another order, divided by the
// world size, the same norm to rounding), so the weights are DDP's. Checkpoints are ZeRO-1's:
// the optimizer's state gathered on rank 0 in the usual files, so a run resumes under stage 0,
// 1 or 2.
import * as torch from "../../torch/index.js";
import { plainBackprop, type Backprop } from "../../nn/recompute.js";
import type { TrainOptimizer } from "../checkpoint.js";
import type { GradientSync } from "../../torch/distributed.js";
import type { TrainConfig } from "../config.js";
import type { CausalLM } from "../../models/causal-lm.js";
import { BUCKET_BYTES } from "./gradients.js";
import { ShardedOptimizer, ZeroStage1 } from "./zero.js";

const BYTES: Partial<Record<torch.DType, number>> = { float64: 8, float32: 4, bfloat16: 2, float16: 2 };

export class ZeroStage2 extends ZeroStage1 {
  override readonly name: string = "zero2";
  /** The sharded optimizer (null with one rank): its parameters and their owners. */
  #sharded: ShardedOptimizer<torch.AdamWOptions | torch.SGDOptions> | null = null;
  /** The reducing gradient sync (made at the first backward), and whether a micro-batch armed it. */
  #sync: GradientSync | null = null;
  #armed = false;
  #bucketBytes = BUCKET_BYTES;
  /** The policy (its registration order is backward's, reversed). */
  #model: CausalLM | null = null;

  override prepareModel(model: CausalLM, seed: number): void {
    super.prepareModel(model, seed);
    this.#model = model;
  }

  override begin(config: TrainConfig, status: (message: string) => void): void {
    super.begin(config, status);
    this.#bucketBytes = (config.ddpBucketCapMb ?? 25) * 1024 * 1024;
  }

  override end(): void {
    this.#sync?.destroy();
    this.#sync = null;
    super.end();
  }

  override wrapOptimizer(full: TrainOptimizer, status: (message: string) => void): TrainOptimizer {
    const wrapped = super.wrapOptimizer(full, (m) =>
      status(m.replace("ZeRO-1, optimizer state", "ZeRO-2, gradients and optimizer state")),
    );
    this.#sharded = wrapped instanceof ShardedOptimizer ? wrapped : null;
    return wrapped;
  }

  /** Every micro-batch reduces as backward goes (each owner's gradients sum the step's micro-batches). */
  override accumulateBackprop(_params: torch.Tensor[]): Backprop {
    return this.#reducing();
  }

  override lastBackprop(_params: torch.Tensor[]): Backprop {
    return this.#reducing();
  }

  /** The sharded optimizer (null with one rank). */
  protected get sharded(): ShardedOptimizer<torch.AdamWOptions | torch.SGDOptions> | null {
    return this.#sharded;
  }

  /**
   * The order the sync's buckets take the sharded optimizer's parameters in (indices into them):
   * the model's reverse registration order, as DDP's (backward reaches the last layers first),
   * not the optimizer's, whose groups put every norm and bias after the weights: buckets start in
   * order, so one waiting for the first layer's norms would hold every gradient to the end.
   */
  protected syncOrder(params: torch.Tensor[]): number[] {
    const position = new Map(this.#model?.parameters().map((p, i) => [p, i]));
    const at = (i: number) => position.get(params[i]) ?? i;
    return params.map((_, i) => i).sort((a, b) => at(b) - at(a));
  }

  /** The unit parameter `i` (of the sharded optimizer's) belongs to: a bucket never spans two. */
  protected bucketUnit(_i: number): number {
    return 0;
  }

  /**
   * Arms the sync for this micro-batch (finishing the previous one's, whose backward is over)
   * and returns the backward that reduces each bucket to its owner as soon as it is final.
   */
  #reducing(): Backprop {
    const sync = this.reducingSync();
    if (!sync) return plainBackprop;
    if (this.#armed) sync.finish();
    sync.arm();
    this.#armed = true;
    return (root, grad, later) => sync.backward(root, grad, later);
  }

  /**
   * The gradient sync in reduce mode (null with one rank), made on first use: buckets of one
   * owner, dtype and unit, in syncOrder's order, each up to ddp_bucket_cap_mb.
   */
  protected reducingSync(): GradientSync | null {
    const sharded = this.#sharded;
    if (!sharded) return null;
    if (!this.#sync) {
      // Backward's order, one owner per bucket.
      const params = sharded.paramGroups.flatMap((g) => g.params);
      const order = this.syncOrder(params);
      const sizes: number[] = [];
      const owners: number[] = [];
      let bytes = 0;
      order.forEach((i, k) => {
        const size = params[i].numel() * (BYTES[params[i].dtype] ?? 8);
        const previous = k > 0 ? order[k - 1] : -1;
        const same =
          previous >= 0 &&
          sharded.owners[previous] === sharded.owners[i] &&
          params[previous].dtype === params[i].dtype &&
          this.bucketUnit(previous) === this.bucketUnit(i) &&
          bytes + size <= this.#bucketBytes;
        if (same) {
          sizes[sizes.length - 1]++;
          bytes += size;
        } else {
          sizes.push(1);
          owners.push(sharded.owners[i]);
          bytes = size;
        }
      });
      this.#sync = this.group.gradientSync(
        order.map((i) => params[i]),
        sizes,
        owners,
      );
    }
    return this.#sync;
  }

  /**
   * Waits for the last buckets; each owner then holds the sum of its parameters' gradients
   * over the ranks and the step's micro-batches, and divides it by the world size (the others
   * hold none of them).
   */
  override syncGradients(_params: torch.Tensor[]): void {
    const sharded = this.#sharded;
    if (!sharded || !this.#sync) return;
    if (this.#armed) this.#sync.finish();
    this.#armed = false;
    // In a tidy scope: the handles p.grad makes are freed with it (one kept would keep the gradient).
    torch.noGrad(() =>
      torch.tidy(() =>
        sharded.paramGroups
          .flatMap((g) => g.params)
          .forEach((p, i) => {
            if (sharded.owners[i] === this.rank) p.grad?.div_(this.worldSize);
            else p.grad = null;
          }),
      ),
    );
  }

  /**
   * The joint norm over every rank's shard: each rank's sum of squares all-reduced, then each
   * owner scales its own gradients by clip_grad_norm_'s coefficient.
   */
  override clipGradients(params: torch.Tensor[], maxNorm: number): number {
    if (!this.#sharded) return super.clipGradients(params, maxNorm);
    return torch.noGrad(() =>
      torch.tidy(() => {
        const grads = params.map((p) => p.grad).filter((g): g is torch.Tensor => g !== null);
        const squares = torch.tensor([grads.reduce((sum, g) => sum + g.norm(2).pow(2).item(), 0)], {
          dtype: "float64",
        });
        this.group.allReduce([squares], "sum");
        const norm = Math.sqrt(squares.item());
        // As clipGradNorm (PyTorch): min(maxNorm / (norm + 1e-6), 1); a NaN norm poisons the gradients.
        const coef = Math.min(maxNorm / (norm + 1e-6), 1);
        if (!(coef >= 1)) for (const g of grads) g.mul_(Number.isNaN(norm) ? NaN : coef);
        return norm;
      }),
    );
  }
}
