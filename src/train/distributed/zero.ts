// ZeRO stage 1 (zero_stage: 1): the optimizer's state sharded across ranks, as PyTorch's
// torch.distributed.optim.ZeroRedundancyOptimizer does it. Every parameter has one owner rank
// (within each parameter group, largest first, to the rank holding the fewest elements so far);
// each rank keeps AdamW's moments (or SGD's momentum) for its own parameters only and updates
// only those, from the gradients every rank already holds averaged (so clipping, which needs
// them all, is unchanged); then each owner broadcasts its updated parameters to the others.
// The update of each parameter is the same arithmetic as without sharding, so the weights are
// identical to plain DDP's.
//
// Checkpoints hold the whole state, as plain DDP's do (same files, so a run can resume with or
// without sharding): gatherState() collects it on rank 0 before it writes, and each rank keeps
// its own share of what it reads back.
import * as torch from "../../torch/index.js";
import type { ProcessGroup } from "../../torch/distributed.js";
import type { GroupOptions, OptimizerStateDict, ParamGroupSpec } from "../../torch/optim/optimizer.js";
import type { TrainOptimizer } from "../checkpoint.js";
import { DataParallel } from "./data-parallel.js";
import type { GatheredState } from "./strategy.js";

/** Owner rank of each parameter of `groups` (by position, across groups). */
export function ownersOf(groups: readonly { params: readonly torch.Tensor[] }[], worldSize: number): number[] {
  const owners: number[] = [];
  const load = new Array<number>(worldSize).fill(0);
  for (const g of groups) {
    const base = owners.length;
    const order = g.params.map((p, i) => ({ i, n: p.numel() })).sort((a, b) => b.n - a.n || a.i - b.i);
    for (const { i, n } of order) {
      let r = 0;
      for (let k = 1; k < worldSize; k++) if (load[k] < load[r]) r = k;
      owners[base + i] = r;
      load[r] += n;
    }
  }
  return owners;
}

/** A parameter's state entries: tensors shaped like it, and numbers (AdamW's step). */
export interface StateLayout {
  tensors: string[];
  numbers: string[];
}

export class ShardedOptimizer<O extends GroupOptions> extends torch.Optimizer<O> {
  /** The optimizer over this rank's own parameters; its groups mirror this one's. */
  readonly local: torch.Optimizer<O>;
  readonly owners: number[];
  readonly #group: ProcessGroup;
  readonly #layout: StateLayout;
  /** Global position -> position in `local` (only for owned parameters). */
  readonly #localIndex = new Map<number, number>();
  /** Each parameter's shape when sharded (ZeRO-3 empties the ones a rank does not own later). */
  readonly #shapes: number[][];
  #gathered: OptimizerStateDict | null = null;

  /**
   * Shards `full` (made over every trainable parameter, before any step) across the group's
   * ranks; `makeLocal` makes the same kind of optimizer over this rank's share, whose state
   * entries are `layout`'s.
   */
  constructor(
    full: torch.Optimizer<O>,
    group: ProcessGroup,
    makeLocal: (groups: ParamGroupSpec<O>[]) => torch.Optimizer<O>,
    layout: StateLayout,
    /** Whether step() broadcasts each owner's updated parameters (ZeRO-3's ranks keep only their own). */
    readonly broadcastsUpdates = true,
  ) {
    // The full optimizer's groups, hyperparameters included (each group's own override the defaults).
    super(full.paramGroups, full.paramGroups[0]);
    this.#group = group;
    this.#layout = layout;
    this.owners = ownersOf(this.paramGroups, group.worldSize);
    this.#shapes = this.paramGroups.flatMap((g) => g.params.map((p) => [...p.shape]));
    let position = 0;
    let local = 0;
    this.local = makeLocal(
      this.paramGroups.map((g) => ({
        ...g,
        params: g.params.filter(() => {
          const mine = this.owners[position] === group.rank;
          if (mine) this.#localIndex.set(position, local++);
          position++;
          return mine;
        }),
      })),
    );
    this.local.paramGroups.forEach((g, i) => {
      g.initialLr = this.paramGroups[i].initialLr;
    });
  }

  protected update(): void {
    throw new Error("ShardedOptimizer updates through step()");
  }

  /** The local optimizer takes this one's hyperparameters (the schedule sets the learning rate here), steps, and every owner broadcasts its parameters. */
  override step(): void {
    this.local.paramGroups.forEach((g, i) => {
      const { params: _p, initialLr: _i, ...hyper } = this.paramGroups[i];
      Object.assign(g, structuredClone(hyper));
    });
    this.local.step();
    if (!this.broadcastsUpdates) return;
    // Each owner's parameters in place, one broadcast each (all started, then awaited): no flat
    // copy, whose transient size (the owner's share of the weights) would eat into what the
    // sharding saves.
    torch.noGrad(() => {
      const params = this.paramGroups.flatMap((g) => g.params);
      for (let owner = 0; owner < this.#group.worldSize; owner++) {
        const owned = params.filter((_, i) => this.owners[i] === owner);
        if (owned.length) this.#group.broadcast(owned, owner);
      }
    });
  }

  /**
   * Every rank: each parameter's state broadcast from its owner, kept on rank 0 for the next
   * stateDict() (the checkpoint), dropped at once elsewhere. Collective: all ranks call it together.
   */
  gatherState(): void {
    this.#dropGathered();
    const params = this.paramGroups.flatMap((g) => g.params);
    const mine = this.local.stateDict().state;
    const keep = this.#group.rank === 0;
    const state: OptimizerStateDict["state"] = {};
    torch.noGrad(() => {
      params.forEach((p, i) => {
        const owner = this.owners[i];
        const own = owner === this.#group.rank ? mine[this.#localIndex.get(i)!] : undefined;
        // [has state, its numbers...]: whether there is anything to send (a parameter never stepped has none).
        const header = torch.tidy(() => {
          const h = torch.tensor([own ? 1 : 0, ...this.#layout.numbers.map((k) => (own ? (own[k] as number) : 0))], {
            dtype: "float64",
          });
          this.#group.broadcast([h], owner);
          return h.toArray() as number[];
        });
        if (header[0] !== 1) return;
        const entry: Record<string, torch.Tensor | number> = {};
        this.#layout.numbers.forEach((k, j) => {
          entry[k] = header[j + 1];
        });
        for (const k of this.#layout.tensors) {
          const t = own
            ? (own[k] as torch.Tensor).detach().contiguous().clone()
            : torch.empty(this.#shapes[i], { dtype: p.dtype, device: p.device });
          this.#group.broadcast([t], owner);
          // Rank 0 keeps the whole state in host memory, one parameter's at a time on the device
          // (the whole of it there would double the optimizer's device memory while saving).
          if (keep) entry[k] = t.device === "cpu" ? t.keep() : torch.tidy(() => t.to({ device: "cpu" })).keep();
          if (!keep || t.device !== "cpu") t.dispose();
        }
        if (keep) state[i] = entry;
      });
    });
    let start = 0;
    const paramGroups = this.paramGroups.map(({ params: groupParams, ...hyper }) => {
      const indices = groupParams.map((_, j) => start + j);
      start += groupParams.length;
      return { ...structuredClone(hyper), params: indices };
    });
    this.#gathered = keep ? { state, paramGroups } : null;
  }

  /** The whole state in PyTorch's layout (its tensors in host memory): rank 0, after gatherState() (the checkpoint's). */
  override stateDict(): OptimizerStateDict {
    if (!this.#gathered)
      throw new Error(
        `rank ${this.#group.rank}: the sharded optimizer's state is gathered on rank 0 by gatherState() before a checkpoint`,
      );
    return this.#gathered;
  }

  /** Takes this rank's share of a whole state (a checkpoint's, from any number of ranks or none). */
  override loadStateDict(dict: OptimizerStateDict): void {
    if (dict.paramGroups.length !== this.paramGroups.length) {
      throw new Error(
        `loadStateDict: ${dict.paramGroups.length} parameter groups saved, optimizer has ${this.paramGroups.length}`,
      );
    }
    const state: OptimizerStateDict["state"] = {};
    for (const [key, entry] of Object.entries(dict.state)) {
      const local = this.#localIndex.get(Number(key));
      if (local !== undefined) state[local] = entry;
    }
    let next = 0;
    const localGroups = this.local.paramGroups.map((g, i) => {
      const { params: _p, ...hyper } = dict.paramGroups[i];
      return { ...hyper, params: g.params.map(() => next++) };
    });
    this.local.loadStateDict({ state, paramGroups: localGroups });
    this.paramGroups.forEach((group, g) => {
      const { params: _p, ...hyper } = dict.paramGroups[g];
      Object.assign(group, hyper);
    });
  }

  /** Frees the gathered state (after the checkpoint is written). */
  releaseGathered(): void {
    this.#dropGathered();
  }

  #dropGathered(): void {
    if (!this.#gathered) return;
    for (const s of Object.values(this.#gathered.state))
      for (const v of Object.values(s)) if (v instanceof torch.Tensor) v.dispose();
    this.#gathered = null;
  }

  override dispose(): void {
    this.#dropGathered();
    this.local.dispose();
    super.dispose();
  }
}

/** DDP with the optimizer's state sharded (zero_stage: 1); everything else is DDP's. */
export class ZeroStage1 extends DataParallel {
  override readonly name: string = "zero1";

  /** Whether every rank needs the parameters each owner updates (all stages but 3). */
  protected get broadcastsUpdates(): boolean {
    return true;
  }

  /** With several ranks, a ShardedOptimizer over `full` (AdamW or SGD); with one, `full`. */
  override wrapOptimizer(full: TrainOptimizer, status: (message: string) => void): TrainOptimizer {
    if (this.worldSize === 1) return full;
    const lr = full.paramGroups[0].lr;
    const sharded =
      full instanceof torch.AdamW
        ? new ShardedOptimizer(
            full,
            this.group,
            (groups) => new torch.AdamW(groups),
            { tensors: ["expAvg", "expAvgSq"], numbers: ["step"] },
            this.broadcastsUpdates,
          )
        : full instanceof torch.SGD
          ? new ShardedOptimizer(
              full,
              this.group,
              (groups) => new torch.SGD(groups, { lr }),
              { tensors: ["momentumBuffer"], numbers: [] },
              this.broadcastsUpdates,
            )
          : null;
    if (!sharded) throw new Error(`zero_stage ${this.name.slice(4)} shards AdamW and SGD only`);
    const params = sharded.paramGroups.flatMap((g) => g.params);
    const mine = params.filter((_, i) => sharded.owners[i] === this.rank).reduce((n, p) => n + p.numel(), 0);
    const all = params.reduce((n, p) => n + p.numel(), 0);
    status(
      `rank ${this.rank}: ZeRO-1, optimizer state for ${mine} of ${all} parameter elements (${((100 * mine) / all).toFixed(1)}%)`,
    );
    return sharded;
  }

  /** DDP's RNG states, and the optimizer's state from every owner, kept on rank 0 until released. */
  override gatherCheckpoint(optimizer: TrainOptimizer): GatheredState {
    const sharded = optimizer instanceof ShardedOptimizer ? optimizer : null;
    sharded?.gatherState();
    const { rngStates } = super.gatherCheckpoint(optimizer);
    return { rngStates, release: () => sharded?.releaseGathered() };
  }
}
