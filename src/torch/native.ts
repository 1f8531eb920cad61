// Loads the N-API addon (native/) and describes its surface. Nothing above src/torch/ touches
// this module directly.
import { createRequire } from "node:module";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { packageRoot } from "../util/package-root.js";

export interface NativeMemory { tensors: number; bytes: number }
export interface NativeBuildInfo { torchVersion: string; cuda: boolean; cudaDevices: number; parallelInfo: string }

/** What native/src/addon.cc exports. Tensor ids are plain numbers naming slots in its store. */
export interface NativeAddon {
  op(name: string, overload: string): number;
  hasOp(name: string, overload: string): boolean;
  schema(handle: number): string;
  call(handle: number, ...args: unknown[]): any;
  free(id: number): void;
  isLive(id: number): boolean;
  meta(id: number): [number, string, boolean, ...number[]];
  numel(id: number): number;
  fromBuffer(data: ArrayBufferView | ArrayBuffer, dtype: number, shape: number[], copy: boolean): number;
  toBuffer(id: number): ArrayBuffer;
  viewBuffer(id: number): ArrayBuffer;
  requiresGrad(id: number, value?: boolean): boolean;
  isLeaf(id: number): boolean;
  grad(id: number): number | null;
  setGrad(id: number, grad: number | null): void;
  backward(id: number, grad: number | null, retainGraph: boolean, createGraph: boolean): void;
  gradEnabled(value?: boolean): boolean;
  numThreads(value?: number): number;
  manualSeed(seed: number): void;
  rngState(id?: number): number | undefined;
  memory(): NativeMemory;
  buildInfo(): NativeBuildInfo;
}

/** What the engine did about OpenBLAS's core type before LibTorch loaded (README, "How it is built"). */
export interface BlasSetup { coretype: string | null; chosenByEngine: boolean }
export const blasSetup: BlasSetup = chooseBlasCoreType();

/**
 * OpenBLAS 0.3.21 (Debian 12) does not recognise recent AVX-512 CPUs and falls back to its
 * slowest kernels; SkylakeX kernels run them about five times faster. OpenBLAS reads the
 * variable once, when it loads, so it must be set before the addon (and LibTorch) load.
 * A user's own setting is left alone.
 */
function chooseBlasCoreType(): BlasSetup {
  const own = process.env.OPENBLAS_CORETYPE;
  if (own) return { coretype: own, chosenByEngine: false };
  let flags = "";
  try { flags = readFileSync("/proc/cpuinfo", "utf8"); } catch { return { coretype: null, chosenByEngine: false }; }
  if (/\bavx512f\b/.test(flags) && /\bavx512bw\b/.test(flags)) {
    process.env.OPENBLAS_CORETYPE = "SkylakeX";
    return { coretype: "SkylakeX", chosenByEngine: true };
  }
  return { coretype: null, chosenByEngine: false };
}

function load(): NativeAddon {
  const file = join(packageRoot(), "native", "build", "Release", "omni_torch.node");
  if (!existsSync(file)) {
    throw new Error(`omni-dpo: the native addon is not built (${file} is missing).\n` +
      "  Build it with `npm run build:native` (needs LibTorch: `apt-get install libtorch-dev`, or LIBTORCH=<dir>).");
  }
  return createRequire(import.meta.url)(file) as NativeAddon;
}

export const native: NativeAddon = load();
