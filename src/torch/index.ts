// The tensor API: `import { torch } from "omni-dpo"`. Names follow PyTorch, camelCased.
export { Tensor, type NestedArray, type Scalar, type TensorOrScalar, type MaxResult } from "./tensor.js";
export type { DType, Device, TypedArray } from "./dtype.js";
export { isDevice, toDevice } from "./dtype.js";
export { TorchError } from "./errors.js";
export {
  tensor,
  fromBuffer,
  readInto,
  zeros,
  ones,
  full,
  empty,
  arange,
  rand,
  randn,
  randint,
  randperm,
  zerosLike,
  onesLike,
  fullLike,
  randLike,
  randnLike,
  type TensorOptions,
} from "./creation.js";
export {
  cat,
  stack,
  where,
  matmul,
  bmm,
  linear,
  embedding,
  layerNorm,
  rmsNorm,
  softmax,
  logSoftmax,
  crossEntropy,
  dropout,
  scaledDotProductAttention,
  tokenLogProbs,
  type Reduction,
  type AttentionOptions,
} from "./functional.js";
export { tidy, dispose, memory, takeCpuPeak } from "./scope.js";
export {
  noGrad,
  enableGrad,
  isGradEnabled,
  setNumThreads,
  getNumThreads,
  manualSeed,
  getRngState,
  setRngState,
  cuda,
  buildInfo,
} from "./runtime.js";
export { autocast, autocastState, type AutocastOptions } from "./autocast.js";
export { hasOp, schemaOf } from "./ops.js";
export { PackedLinear } from "./packed-linear.js";
export {
  Optimizer,
  AdamW,
  SGD,
  clipGradNorm,
  type AdamWOptions,
  type SGDOptions,
  type ParamGroupSpec,
  type OptimizerStateDict,
} from "./optim/optimizer.js";
export {
  LRScheduler,
  scheduleMultiplier,
  warmupStepsOf,
  SCHEDULE_TYPES,
  scheduleKwargsProblem,
  type ScheduleOptions,
  type ScheduleType,
} from "./optim/schedule.js";

import type { Tensor } from "./tensor.js";
/** Exempts `t` from the enclosing tidy(): the caller owns it and disposes it. */
export function keep<T extends Tensor>(t: T): T {
  return t.keep();
}
export * as distributed from "./distributed.js";
