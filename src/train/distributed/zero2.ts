// ZeRO stage 2 (zero_stage: 2): the optimizer's state and the gradients sharded across ranks,
// as DeepSpeed's stage 2 does it on c10d's collectives. Every trainable parameter has one owner
// rank (ZeRO-1's ownersOf). After the step's backward each parameter's gradient is reduced
// (summed, c10d's reduce) into its owner only and divided by the world size there; the other
// ranks drop it at once. So from there to the next backward (clipping, the optimizer's step) a
// rank holds only its own share of the gradients and of AdamW's moments. During backward every
// rank still builds the whole gradient (DeepSpeed frees each bucket as backward fills it: not
// done here, so the peak at the end of backward is ZeRO-1's). The compute weights stay whole on
// every rank (they are the float32 master weights when torch_dtype is float32, bf16 autocast
// computing from them). Clipping takes the norm over the shards (each rank's sum of squares,
// all-reduced), the owners update their parameters and broadcast them, as under ZeRO-1.
//
// The arithmetic of every update is plain DDP's (the same sum, divided by the world size, the
// same norm to rounding), so the weights are DDP's. Checkpoints are ZeRO-1's: the optimizer's
// state gathered on rank 0 in the usual files, so a run resumes under stage 0, 1 or 2.
import * as torch from "../../torch/index.js";
import { plainBackprop, type Backprop } from "../../nn/recompute.js";
import type { TrainOptimizer } from "../checkpoint.js";
import { ShardedOptimizer, ZeroStage1 } from "./zero.js";

export class ZeroStage2 extends ZeroStage1 {
  override readonly name: string = "zero2";
  /** The sharded optimizer (null with one rank): its parameters and their owners. */
  #sharded: ShardedOptimizer<torch.AdamWOptions | torch.SGDOptions> | null = null;

  override wrapOptimizer(full: TrainOptimizer, status: (message: string) => void): TrainOptimizer {
    const wrapped = super.wrapOptimizer(full, (m) => status(m.replace("ZeRO-1, optimizer state", "ZeRO-2, gradients and optimizer state")));
    this.#sharded = wrapped instanceof ShardedOptimizer ? wrapped : null;
    return wrapped;
  }

  /** Plain backward: the gradients are reduced to their owners after it (syncGradients). */
  override lastBackprop(_params: torch.Tensor[]): Backprop {
    return plainBackprop;
  }

  /**
   * Each gradient summed into its owner's copy, in place (one c10d reduce per parameter, all
   * started before any is awaited: no flat bucket, whose copy would be as large as the
   * gradients), and divided by the world size there; the other ranks drop theirs. A parameter
   * without a gradient counts as a zero one (another rank may have one), as under DDP.
   */
  override syncGradients(_params: torch.Tensor[]): void {
    const sharded = this.#sharded;
    if (!sharded) return;
    const params = sharded.paramGroups.flatMap((g) => g.params);
    torch.noGrad(() => torch.tidy(() => {
      const flights = params.map((p, i) => {
        const grad = (p.grad = (p.grad ?? torch.zerosLike(p)).contiguous())!;
        return { p, owner: sharded.owners[i], grad, work: this.group.reduceAsync(grad, sharded.owners[i], "sum") };
      });
      for (const { p, owner, grad, work } of flights) {
        work.wait();
        if (owner === this.rank) grad.div_(this.worldSize);
        else p.grad = null;
      }
    }));
  }

  /**
   * The joint norm over every rank's shard: each rank's sum of squares all-reduced, then each
   * owner scales its own gradients by clip_grad_norm_'s coefficient.
   */
  override clipGradients(params: torch.Tensor[], maxNorm: number): number {
    if (!this.#sharded) return super.clipGradients(params, maxNorm);
    return torch.noGrad(() => torch.tidy(() => {
      const grads = params.map((p) => p.grad).filter((g): g is torch.Tensor => g !== null);
      const squares = torch.tensor([grads.reduce((sum, g) => sum + g.norm(2).pow(2).item(), 0)], { dtype: "float64" });
      this.group.allReduce([squares], "sum");
      const norm = Math.sqrt(squares.item());
      // As clipGradNorm (PyTorch): min(maxNorm / (norm + 1e-6), 1); a NaN norm poisons the gradients.
      const coef = Math.min(maxNorm / (norm + 1e-6), 1);
      if (!(coef >= 1)) for (const g of grads) g.mul_(Number.isNaN(norm) ? NaN : coef);
      return norm;
    }));
  }
}
