// Process-wide engine settings: gradient mode, threads, random seeds, devices, build facts.
import { blasSetup, MAX_THREADS, native } from "./native.js";
import { Tensor } from "./tensor.js";

/** Runs `fn` with gradient recording off (PyTorch's torch.no_grad()), restoring it after. */
export function noGrad<T>(fn: () => T): T {
  const before = native.gradEnabled(false);
  try {
    return fn();
  } finally {
    native.gradEnabled(before);
  }
}

/** Runs `fn` with gradient recording on, even inside noGrad(). */
export function enableGrad<T>(fn: () => T): T {
  const before = native.gradEnabled(true);
  try {
    return fn();
  } finally {
    native.gradEnabled(before);
  }
}

export function isGradEnabled(): boolean {
  return native.gradEnabled();
}

/**
 * Threads LibTorch uses inside one op. Defaults to the machine's cores (or OMP_NUM_THREADS).
 * At most 1024, or 4 per core on machines with more than 256 (a count OpenMP cannot allocate
 * would end the process at the next parallel op).
 */
export function setNumThreads(n: number): void {
  if (!Number.isInteger(n) || n < 1 || n > MAX_THREADS) {
    throw new Error(`setNumThreads: expected an integer from 1 to ${MAX_THREADS}, got ${n}`);
  }
  native.numThreads(n);
}
export function getNumThreads(): number {
  return native.numThreads();
}

/** Seeds the default CPU generator (and CUDA's, where present), as torch.manual_seed. */
export function manualSeed(seed: number): void {
  if (!Number.isInteger(seed) || seed < 0) throw new Error(`manualSeed: expected a non-negative integer, got ${seed}`);
  native.manualSeed(seed);
}

/** The default generator's state as a uint8 tensor, for checkpoints. */
export function getRngState(): Tensor {
  return new Tensor(native.rngState() as number);
}
export function setRngState(state: Tensor): void {
  native.rngState(state.id);
}

export const cuda = {
  isAvailable(): boolean {
    return native.buildInfo().cuda;
  },
  deviceCount(): number {
    return native.buildInfo().cudaDevices;
  },
};

/** What LibTorch this is and how it was set up: version, CUDA, threads, BLAS core type. */
export function buildInfo(): {
  torchVersion: string;
  cuda: boolean;
  threads: number;
  openblasCoretype: string | null;
  coretypeChosenByEngine: boolean;
  /** Whether linear weights can be prepacked for oneDNN's matmul (PackedLinear). */
  packedLinear: boolean;
} {
  const info = native.buildInfo();
  const blas = blasSetup();
  return {
    torchVersion: info.torchVersion,
    cuda: info.cuda,
    threads: native.numThreads(),
    openblasCoretype: blas.coretype,
    coretypeChosenByEngine: blas.chosenByEngine,
    packedLinear: info.packedLinear,
  };
}
