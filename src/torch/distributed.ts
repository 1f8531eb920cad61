// torch.distributed for omni-dpo: a TCPStore rendezvous and a c10d process group (Gloo on CPU,
// NCCL on CUDA when this LibTorch has it), bound in native/src/distributed.cc. Ranks are
// processes (one per device), never worker threads: the tensor engine belongs to one thread.
//
// Collectives block the calling process until every rank has joined them; a rank that died or
// a collective slower than `timeoutMs` becomes a DistributedError here, never a hang or a crash.
import { native } from "./native.js";
import { Tensor } from "./tensor.js";

export type Backend = "gloo" | "nccl";
export type ReduceOp = "sum" | "max" | "min" | "product";
export const BACKENDS: readonly Backend[] = ["gloo", "nccl"];

/** A collective or the rendezvous failed; names this process's rank and what it was doing. */
export class DistributedError extends Error {
  constructor(
    readonly rank: number,
    readonly worldSize: number,
    readonly operation: string,
    readonly detail: string,
  ) {
    super(`rank ${rank} of ${worldSize}: ${operation} failed: ${detail}`);
    this.name = "DistributedError";
  }
}

export interface ProcessGroupOptions {
  rank: number;
  worldSize: number;
  /** Where rank 0 serves the rendezvous store (MASTER_ADDR, MASTER_PORT). */
  masterAddr: string;
  masterPort: number;
  backend: Backend;
  /** Every rendezvous and collective fails after this long (ddp_timeout). */
  timeoutMs: number;
  /** Gloo's network interface (GLOO_SOCKET_IFNAME); default: the master address's kind (loopback stays on loopback). */
  socketIfname?: string;
  /** The store at masterAddr:masterPort is already served (torchrun's agent: TORCHELASTIC_USE_AGENT_STORE); rank 0 connects to it too. */
  storeServed?: boolean;
}

/** Whether this build of the addon has `backend` (Gloo needs libgloo-dev at build time; NCCL a CUDA LibTorch). */
export function hasBackend(backend: Backend): boolean {
  return native.distHasBackend(backend);
}

/** An asynchronous collective in flight: wait() before reading (or freeing) its tensors. */
export class Work {
  #handle: number | null;
  constructor(
    handle: number,
    readonly done: (fn: () => void) => void,
  ) {
    this.#handle = handle;
  }
  wait(): void {
    if (this.#handle === null) return;
    const h = this.#handle;
    this.#handle = null;
    this.done(() => native.distWait(h));
  }
}

export class ProcessGroup {
  #group: number | null;
  readonly #store: number;

  private constructor(
    readonly rank: number,
    readonly worldSize: number,
    readonly backend: Backend,
    store: number,
    group: number,
  ) {
    this.#store = store;
    this.#group = group;
  }

  /** Joins the group: rank 0 serves the store at masterAddr:masterPort (unless storeServed), the others connect (retrying until the timeout). */
  static init(o: ProcessGroupOptions): ProcessGroup {
    if (!Number.isInteger(o.worldSize) || o.worldSize < 1)
      throw new Error(`world size must be a positive integer, not ${o.worldSize}`);
    if (!Number.isInteger(o.rank) || o.rank < 0 || o.rank >= o.worldSize)
      throw new Error(`rank must be an integer from 0 to ${o.worldSize - 1}, not ${o.rank}`);
    if (!BACKENDS.includes(o.backend))
      throw new Error(`backend must be one of ${BACKENDS.join(", ")}, not '${o.backend}'`);
    if (!hasBackend(o.backend)) {
      throw new Error(
        o.backend === "gloo"
          ? "this build of the addon has no Gloo backend: install libgloo-dev and rebuild it (npm run build:native)"
          : "this LibTorch has no NCCL backend (it needs a CUDA build of LibTorch: set LIBTORCH and rebuild the addon)",
      );
    }
    const where = `rendezvous at ${o.masterAddr}:${o.masterPort}`;
    const attempt = <T>(what: string, fn: () => T): T => {
      try {
        return fn();
      } catch (e) {
        throw new DistributedError(o.rank, o.worldSize, what, (e as Error).message);
      }
    };
    const store = attempt(where, () =>
      native.distStore(o.masterAddr, o.masterPort, o.worldSize, o.rank === 0 && !o.storeServed, o.timeoutMs),
    );
    const group = attempt(`${o.backend} process group (${where})`, () =>
      native.distGroup(store, o.rank, o.worldSize, o.backend, o.timeoutMs, o.masterAddr, o.socketIfname ?? ""),
    );
    return new ProcessGroup(o.rank, o.worldSize, o.backend, store, group);
  }

  get group(): number {
    if (this.#group === null) throw new Error(`rank ${this.rank}: the process group was destroyed`);
    return this.#group;
  }

  #run<T>(operation: string, fn: () => T): T {
    try {
      return fn();
    } catch (e) {
      if (e instanceof DistributedError) throw e;
      throw new DistributedError(
        this.rank,
        this.worldSize,
        operation,
        `${(e as Error).message} ` + "(another rank probably exited or stopped answering; its own log says why)",
      );
    }
  }

  /** Reduces each of `tensors` (contiguous; the same shapes and dtypes on every rank) in place across ranks. */
  allReduce(tensors: Tensor[], op: ReduceOp = "sum"): void {
    const works = tensors.map((t) => this.allReduceAsync(t, op));
    for (const w of works) w.wait();
  }

  /** Starts reducing `tensor` (a flat bucket, say) without waiting: wait() on the Work before reading or freeing it. */
  allReduceAsync(tensor: Tensor, op: ReduceOp = "sum"): Work {
    const handle = this.#run("allReduce", () => native.distAllreduce(this.group, [tensor.id], op));
    return new Work(handle, (fn) => this.#run("allReduce", fn));
  }

  /** Copies root's `tensors` into every rank's, in place. */
  broadcast(tensors: Tensor[], root = 0): void {
    const works = tensors.map(
      (t) =>
        new Work(
          this.#run("broadcast", () => native.distBroadcast(this.group, [t.id], root)),
          (fn) => this.#run("broadcast", fn),
        ),
    );
    for (const w of works) w.wait();
  }

  /**
   * Starts reducing `tensor` (contiguous; the same shape and dtype on every rank) into root's
   * copy, as c10d's reduce: only root's holds the result (the others' are left unspecified).
   * wait() on the Work before reading or freeing it.
   */
  reduceAsync(tensor: Tensor, root: number, op: ReduceOp = "sum"): Work {
    if (typeof native.distReduce !== "function") {
      throw new Error(
        "this build of the addon predates c10d's reduce (ZeRO-2 needs it): rebuild it with npm run build:native",
      );
    }
    const handle = this.#run("reduce", () => native.distReduce(this.group, tensor.id, root, op));
    return new Work(handle, (fn) => this.#run("reduce", fn));
  }

  /** Every rank's `tensor` (same shape and dtype on all), rank r's at index r. The caller owns them. */
  allGather(tensor: Tensor): Tensor[] {
    return this.#run("allGather", () => native.distAllgather(this.group, tensor.id)).map((id) => new Tensor(id));
  }

  /** Returns when every rank has reached it. */
  barrier(): void {
    this.#run("barrier", () => native.distBarrier(this.group));
  }

  /** Rank 0's `value` on every rank, through the rendezvous store (small strings: settings, a decision). */
  shareString(key: string, value: string | null): string {
    return this.#run(`store '${key}'`, () => {
      if (this.rank === 0) native.distStoreSet(this.#store, key, value ?? "");
      return native.distStoreGet(this.#store, key);
    });
  }

  /**
   * Gradient averaging overlapped with backward (native/src/grad_sync.h) for `params` (distinct
   * leaves that require grad), bucketSizes[k] of them in bucket k, in order: reverse registration
   * order, as DistributedDataParallel, so the first buckets fill first in backward.
   * With `owners` (a rank per bucket: ZeRO-2), each bucket is summed into its owner's gradients
   * only (c10d reduce), the others drop theirs as it starts, and finish() leaves the owner the
   * sum, not divided (arm every micro-batch: the sums add up over the step).
   */
  gradientSync(params: Tensor[], bucketSizes: number[], owners?: number[]): GradientSync {
    // Reduce mode came with distReduce: an addon without it would ignore `owners` (all-reduce).
    if (owners && typeof native.distReduce !== "function") {
      throw new Error(
        "this build of the addon predates c10d's reduce (ZeRO-2 needs it): rebuild it with npm run build:native",
      );
    }
    const handle = native.gradSyncCreate(
      this.group,
      params.map((p) => p.id),
      bucketSizes,
      owners,
    );
    return new GradientSync(handle, bucketSizes.length, (operation, fn) => this.#run(operation, fn));
  }

  /** Leaves the group (its connections close). Not needed before exiting. */
  destroy(): void {
    if (this.#group === null) return;
    native.distDestroy(this.#group);
    this.#group = null;
  }
}

/**
 * One step's gradient averaging while backward runs: arm() before the step's last micro-batch
 * (earlier ones accumulate locally, DDP's no_sync), every backward call of that micro-batch
 * through backward(), then finish() before reading the gradients (clipping, the optimizer).
 */
export class GradientSync {
  #handle: number | null;

  constructor(
    handle: number,
    readonly bucketCount: number,
    readonly run: <T>(operation: string, fn: () => T) => T,
  ) {
    this.#handle = handle;
  }

  get handle(): number {
    if (this.#handle === null) throw new Error("the gradient sync was destroyed");
    return this.#handle;
  }

  arm(): void {
    native.gradSyncArm(this.handle);
  }

  /**
   * root.backward(grad), starting each bucket's all-reduce as soon as its gradients are final.
   * `later`: the tensors later backward calls of this step will backpropagate from (or through):
   * a parameter they reach is not final after this call.
   */
  backward(root: Tensor, grad: Tensor | null, later: Tensor[]): void {
    native.gradSyncBackward(
      this.handle,
      root.id,
      grad ? grad.id : null,
      later.map((t) => t.id),
    );
  }

  /** Waits for every bucket and leaves each gradient's mean over the ranks; returns how many buckets started during backward. */
  finish(): number {
    return this.run("allReduce", () => native.gradSyncFinish(this.handle));
  }

  /** Buckets whose all-reduce has started in this step so far. */
  started(): number {
    return native.gradSyncStarted(this.handle);
  }

  /** Removes the hooks. */
  destroy(): void {
    if (this.#handle === null) return;
    native.gradSyncDestroy(this.#handle);
    this.#handle = null;
  }
}
