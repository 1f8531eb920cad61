// Argument helpers shared by the commands: usage errors and number parsing.
export class UsageError extends Error {}

export interface Command {
  help: string;
  /** Help of a subcommand (`omni-dpo data inspect --help`), when it has its own. */
  subcommandHelp?: Record<string, string>;
  run: (argv: string[]) => Promise<number>;
}

export function positiveInt(text: string | undefined, name: string, fallback: number, allowZero = false): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n < (allowZero ? 0 : 1))
    throw new UsageError(`${name} must be a${allowZero ? " non-negative" : " positive"} integer, got '${text}'`);
  return n;
}

/** `--top-p`: a probability in [0, 1], as transformers' top-p warper requires (1: no cut). */
export function probability(text: string | undefined, name: string, fallback: number): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (text.trim() === "" || !(n >= 0 && n <= 1))
    throw new UsageError(`${name} must be a probability from 0 to 1, got '${text}'`);
  return n;
}

/** A seed: an integer from 0 to 2^53 - 1, the range manualSeed and the sampler's streams take exactly. */
export function seedInt(text: string | undefined, name: string, fallback: number): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (text.trim() === "" || !Number.isSafeInteger(n) || n < 0) {
    throw new UsageError(`${name} must be an integer from 0 to ${Number.MAX_SAFE_INTEGER} (2^53 - 1), got '${text}'`);
  }
  return n;
}

export function nonNegative(text: string | undefined, name: string, fallback: number): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isFinite(n) || n < 0) throw new UsageError(`${name} must be a non-negative number, got '${text}'`);
  return n;
}

/** `--device`: cpu, cuda or cuda:N; "auto" (the default) takes CUDA when LibTorch has it. */
export async function resolveDevice(flag: string | undefined): Promise<"cpu" | "cuda" | `cuda:${number}`> {
  const torch = await import("../torch/index.js");
  const want = flag ?? "auto";
  if (want === "auto") return torch.cuda.isAvailable() ? "cuda" : "cpu";
  if (want !== "cpu" && !/^cuda(:\d+)?$/.test(want))
    throw new UsageError(`--device must be auto, cpu, cuda or cuda:N, got '${want}'`);
  if (want !== "cpu" && !torch.cuda.isAvailable()) throw new UsageError(`--device ${want}: this LibTorch has no CUDA`);
  return want as "cpu" | "cuda" | `cuda:${number}`;
}

/** One metrics row as `key=value` pairs for the console. */
export { formatRow } from "../util/progress.js";
