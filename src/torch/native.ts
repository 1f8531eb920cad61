// Loads the N-API addon (native/) on first use and describes its surface. Nothing above
// src/torch/ touches this module directly.
//
// Loading is lazy so that the parts of omni-dpo that need no tensors (tokenizers, the data
// tools) work where the addon is not built: importing the package loads nothing native, and the
// first tensor operation loads the addon or says why it cannot.
import { createRequire } from "node:module";
import { existsSync, readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { packageRoot } from "../util/package-root.js";
import { TorchError } from "./errors.js";

export interface NativeMemory {
  tensors: number;
  bytes: number;
  cpuAllocated: number;
  cpuPeak: number;
}
export interface NativeBuildInfo {
  torchVersion: string;
  cuda: boolean;
  cudaDevices: number;
  parallelInfo: string;
  /** Whether linear weights can be prepacked for oneDNN (native/src/packed_linear.h). */
  packedLinear: boolean;
}

/** What native/src/addon.cc exports. Tensor ids are plain numbers naming slots in its store. */
export interface NativeAddon {
  op(name: string, overload: string): number;
  hasOp(name: string, overload: string): boolean;
  schema(handle: number): string;
  call(handle: number, ...args: unknown[]): any;
  free(id: number): void;
  meta(id: number): [number, string, boolean, ...number[]];
  numel(id: number): number;
  setData(id: number, src: number): void;
  fromBuffer(data: ArrayBufferView | ArrayBuffer, dtype: number, shape: number[]): number;
  toBuffer(id: number): ArrayBuffer;
  viewBuffer(id: number): ArrayBuffer;
  readInto(id: number, fd: number, position: number): number;
  requiresGrad(id: number, value?: boolean): boolean;
  isLeaf(id: number): boolean;
  /** The gradient's id; `known` when that slot still holds this very gradient. */
  grad(id: number, known: number): number | null;
  setGrad(id: number, grad: number | null): void;
  backward(id: number, grad: number | null, retainGraph: boolean, createGraph: boolean): void;
  gradEnabled(value?: boolean): boolean;
  /** Autocast state of "cpu" or "cuda": [enabled, dtype code]. */
  autocastState(device: string): [boolean, number];
  /** Sets it and counts the nesting; returns the state it replaced, for autocastExit. */
  autocastEnter(device: string, enabled: boolean, dtype: number): [boolean, number];
  autocastExit(device: string, enabled: boolean, dtype: number): void;
  numThreads(value?: number): number;
  manualSeed(seed: number): void;
  rngState(id?: number): number | undefined;
  memory(resetPeak?: boolean): NativeMemory;
  buildInfo(): NativeBuildInfo;
  configure(errorClass: typeof TorchError, maxThreads: number): void;
  // c10d (native/src/distributed.h): handles are plain numbers; collectives work in place.
  distHasBackend(backend: string): boolean;
  distStore(host: string, port: number, worldSize: number, isServer: boolean, timeoutMs: number): number;
  distStoreSet(store: number, key: string, value: string): void;
  distStoreGet(store: number, key: string): string;
  distStoreAdd(store: number, key: string, delta: number): number;
  distGroup(
    store: number,
    rank: number,
    worldSize: number,
    backend: string,
    timeoutMs: number,
    host: string,
    ifname: string,
  ): number;
  distDestroy(group: number): void;
  /** Returns a work handle for distWait. */
  distAllreduce(group: number, ids: number[], op: string): number;
  distBroadcast(group: number, ids: number[], root: number): number;
  distReduce(group: number, id: number, root: number, op: string): number;
  distAllgather(group: number, id: number): number[];
  distBarrier(group: number): void;
  distWait(work: number): void;
  // native/src/grad_sync.h: the all-reduce of gradient buckets overlapped with backward.
  gradSyncCreate(group: number, paramIds: number[], bucketSizes: number[], owners?: number[]): number;
  gradSyncArm(sync: number): void;
  gradSyncBackward(sync: number, rootId: number, gradId: number | null, laterIds: number[]): void;
  /** Returns how many buckets started during backward. */
  gradSyncFinish(sync: number): number;
  gradSyncStarted(sync: number): number;
  gradSyncDestroy(sync: number): void;
  /** A pack's handle, or 0 when the weight cannot be packed. */
  packedLinearCreate(weightId: number, biasId: number | null): number;
  packedLinearForward(pack: number, inputId: number): number;
  packedLinearBytes(pack: number): number;
  packedLinearDestroy(pack: number): void;
}

/**
 * The most threads LibTorch may be given (setNumThreads, OMP_NUM_THREADS). OpenMP allocates per
 * thread up front, so an absurd count ends the process at the next parallel op.
 */
export const MAX_THREADS = Math.max(1024, 4 * availableParallelism());

/** Where the addon is looked for: OMNI_DPO_ADDON (a built omni_torch.node), else this package's build. */
export function addonPath(): string {
  return process.env.OMNI_DPO_ADDON || join(packageRoot(), "native", "build", "Release", "omni_torch.node");
}

/** What the engine did about OpenBLAS's core type before LibTorch loaded (README, "How it is built"). */
export interface BlasSetup {
  coretype: string | null;
  chosenByEngine: boolean;
}
let blas: BlasSetup | null = null;

/** The BLAS setup, settled when the addon loads (it loads here if it has not yet). */
export function blasSetup(): BlasSetup {
  addon();
  return blas!;
}

/**
 * OpenBLAS 0.3.21 (Debian 12) does not recognise recent AVX-512 CPUs and falls back to its
 * slowest kernels; SkylakeX kernels run them about five times faster. OpenBLAS reads the
 * variable once, when it loads, so it must be set before the addon (and LibTorch) load.
 * A user's own setting is left alone.
 */
function chooseBlasCoreType(): BlasSetup {
  const own = process.env.OPENBLAS_CORETYPE;
  if (own) return { coretype: own, chosenByEngine: false };
  let flags: string;
  try {
    flags = readFileSync("/proc/cpuinfo", "utf8");
  } catch {
    return { coretype: null, chosenByEngine: false };
  }
  if (/\bavx512f\b/.test(flags) && /\bavx512bw\b/.test(flags)) {
    process.env.OPENBLAS_CORETYPE = "SkylakeX";
    return { coretype: "SkylakeX", chosenByEngine: true };
  }
  return { coretype: null, chosenByEngine: false };
}

/** OMP_NUM_THREADS as OpenMP reads it (a count, or a comma-separated list for nested levels), checked against MAX_THREADS. */
function checkOmpNumThreads(): void {
  const value = process.env.OMP_NUM_THREADS;
  if (value === undefined || value.trim() === "") return;
  const ok = value
    .split(",")
    .every((part) => /^\s*\d+\s*$/.test(part) && Number(part) >= 1 && Number(part) <= MAX_THREADS);
  if (!ok) {
    throw new Error(
      `omni-dpo: OMP_NUM_THREADS=${value} is not a thread count from 1 to ${MAX_THREADS}; ` +
        "set it to a whole number in that range (or unset it to use every core)",
    );
  }
}

let loaded: NativeAddon | null = null;

function addon(): NativeAddon {
  if (loaded) return loaded;
  blas ??= chooseBlasCoreType();
  checkOmpNumThreads();
  const file = addonPath();
  if (!existsSync(file)) {
    throw new Error(
      `omni-dpo: the native addon is not built (${file} is missing).\n` +
        "  Build it with `npm rebuild omni-dpo` where omni-dpo is installed, `npm run build:native` in a checkout\n" +
        "  (needs LibTorch: `apt-get install libtorch-dev libopenblas0-pthread`, or LIBTORCH=<dir>).",
    );
  }
  let a: NativeAddon;
  try {
    a = createRequire(import.meta.url)(file) as NativeAddon;
  } catch (e) {
    throw new Error(
      `omni-dpo: the native addon ${file} could not be loaded: ${(e as Error).message}\n` +
        "  Rebuild it with `npm run build:native` against the LibTorch this machine has.",
      { cause: e },
    );
  }
  a.configure(TorchError, MAX_THREADS);
  // LibTorch's own default can be a single thread; use every core unless the user said otherwise.
  if (!process.env.OMP_NUM_THREADS) a.numThreads(availableParallelism());
  loaded = a;
  native = a;
  return a;
}

/**
 * The addon. Until the first use this is a stand-in that loads it; from then on the binding
 * is the addon itself (an ES module live binding), so calls cost nothing extra.
 */
export let native: NativeAddon = new Proxy({} as NativeAddon, {
  get: (_target, name) => (addon() as unknown as Record<string | symbol, unknown>)[name],
});
