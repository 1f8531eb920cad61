// ZeRO-3's weights: every trainable parameter has one owner rank (ZeRO-1's ownersOf), which alone
// keeps its data (the float32 master weights); on the other ranks the parameter object stays,
// with its autograd identity and its optimizer slot, but holds an empty tensor. A part (a decoder
// layer, or "outer": the embeddings, final norm and head) is made whole on every rank just before
// it runs, each owner broadcasting its parameters (c10d broadcast), and emptied after: the
// model's layer loop asks for it (ParameterResidency, src/models/causal-lm.ts).
//
// Emptying goes through setData (PyTorch's `p.data = ...`): the parameter's shape changes to
// [0], but autograd checks a gradient against the shape its accumulator recorded when it was
// made, so the accumulators are made (by the gradient sync) while every weight is whole.
import * as torch from "../../torch/index.js";
import type { ProcessGroup } from "../../torch/distributed.js";
import type { ParameterResidency } from "../../models/causal-lm.js";

export type Part = number | "outer";

export class ShardedWeights implements ParameterResidency {
  /** Each parameter's whole shape (recorded while whole). */
  readonly #shapes: number[][];
  /** The parameters of each part, by index into `params`. */
  readonly #parts = new Map<Part, number[]>();
  /** Each parameter's part. */
  readonly #partOf: readonly Part[];
  /** Parts whose weights are whole on this rank now. */
  readonly #resident = new Set<Part>();

  /**
   * `params` (all whole now) and their `owners`; `partOf[i]` is parameter i's part. Empties
   * what this rank does not own.
   */
  constructor(
    readonly group: ProcessGroup,
    readonly params: readonly torch.Tensor[],
    readonly owners: readonly number[],
    partOf: readonly Part[],
  ) {
    this.#shapes = params.map((p) => [...p.shape]);
    this.#partOf = partOf;
    partOf.forEach((part, i) => {
      const list = this.#parts.get(part) ?? [];
      list.push(i);
      this.#parts.set(part, list);
    });
    for (const part of this.#parts.keys()) this.#resident.add(part);
    this.releaseAll();
  }

  /** Elements of the parameters rank `rank` owns. */
  ownedElements(rank: number): number {
    return this.#shapes.reduce((n, s, i) => n + (this.owners[i] === rank ? s.reduce((a, b) => a * b, 1) : 0), 0);
  }

  gather(part: Part): void {
    if (this.#resident.has(part)) return;
    const indices = this.#parts.get(part);
    if (!indices) return;
    this.#resident.add(part);
    const rank = this.group.rank;
    torch.noGrad(() =>
      torch.tidy(() => {
        for (const i of indices) if (this.owners[i] !== rank) this.#fill(i);
        // One broadcast per owner, each starting every tensor's before waiting for any.
        for (let owner = 0; owner < this.group.worldSize; owner++) {
          const owned = indices.filter((i) => this.owners[i] === owner).map((i) => this.params[i]);
          if (owned.length) this.group.broadcast(owned, owner);
        }
      }),
    );
  }

  release(part: Part): void {
    if (!this.#resident.delete(part)) return;
    const rank = this.group.rank;
    torch.tidy(() => {
      for (const i of this.#parts.get(part) ?? []) {
        if (this.owners[i] === rank) continue;
        const p = this.params[i];
        p.setData(torch.empty([0], { dtype: p.dtype, device: p.device }));
      }
    });
  }

  /** Frees every gathered copy: before each optimizer step (a copy would go stale) and after a save. */
  releaseAll(): void {
    for (const part of [...this.#resident]) this.release(part);
  }

  /**
   * Every weight whole on rank 0 (to write a checkpoint), one parameter at a time from its
   * owner; another rank receives only what passes through it (more than 2 ranks: a broadcast
   * reaches every rank) and frees it at once. releaseAll() frees them after.
   */
  gatherOnMain(): void {
    const rank = this.group.rank;
    torch.noGrad(() =>
      this.params.forEach((p, i) => {
        const owner = this.owners[i];
        if (owner === 0 || this.#isResident(i)) {
          // Rank 0 has it, or every rank has it whole (its part is gathered): the same on every rank.
          return;
        }
        if (rank === 0) {
          torch.tidy(() => this.#fill(i));
          this.group.broadcast([p], owner);
        } else if (rank === owner) {
          this.group.broadcast([p], owner);
        } else {
          torch.tidy(() =>
            this.group.broadcast([torch.empty(this.#shapes[i], { dtype: p.dtype, device: p.device })], owner),
          );
        }
      }),
    );
    // Rank 0 now holds every part whole; releaseAll() empties them again.
    if (rank === 0) for (const part of this.#parts.keys()) this.#resident.add(part);
  }

  #isResident(i: number): boolean {
    return this.#resident.has(this.#partOf[i]);
  }

  /** Parameter i gets fresh whole-sized storage (its values come from the owner's broadcast). */
  #fill(i: number): void {
    const p = this.params[i];
    p.setData(torch.empty(this.#shapes[i], { dtype: p.dtype, device: p.device }));
  }
}
