// Packed linear weights while a model generates on CPU: a hold on a module makes every linear()
// over one of its parameters, outside autograd, run on a copy of the weight packed once for
// oneDNN's matmul (torch.PackedLinear) instead of at::linear, whose BLAS repacks the whole weight
// on every call. Decoding steps multiply a few rows by every weight, so this is where a step's
// time goes: bench generate runs about 1.5x faster with it. A pack costs as much memory as its
// weight, and lives until the last hold naming that weight is released; packs are made on first
// use, so a hold costs nothing for weights it never multiplies by. A pack is made only while
// twice its size is free (MemAvailable): a model too large to copy keeps at least half of what
// is left for activations and the KV cache, and its later layers run unpacked.
//
// OMNI_DPO_PACKED_LINEAR=0 turns packing off (every linear() is torch.linear).
import { freemem } from "node:os";
import * as torch from "../torch/index.js";
import type { Module } from "./module.js";

interface Packed {
  bias: torch.Tensor | null;
  pack: torch.PackedLinear | null; // null: the weight cannot be packed (dtype, device, build)
}

/** Weights some hold names, with how many holds name each. */
const held = new Map<torch.Tensor, number>();
const packs = new Map<torch.Tensor, Packed>();

/** Whether holds pack at all: not under OMNI_DPO_PACKED_LINEAR=0. */
function packingOn(): boolean {
  return process.env.OMNI_DPO_PACKED_LINEAR !== "0";
}

/** Whether generation on `device` runs on packed weights here: CPU, a build with oneDNN, packing on. */
export function packsWeightsOn(device: torch.Device): boolean {
  return device === "cpu" && packingOn() && torch.buildInfo().packedLinear;
}

/**
 * While held (until the returned function is called), linear() calls over `module`'s parameters
 * run on packed weights when no gradient is recorded. Holds nest and may overlap; the release is
 * safe to call twice.
 */
export function holdPackedWeights(module: Module): () => void {
  if (!packingOn()) return () => {};
  const params = module.parameters();
  for (const p of params) held.set(p, (held.get(p) ?? 0) + 1);
  let released = false;
  return () => {
    if (released) return;
    released = true;
    for (const p of params) {
      const n = held.get(p)! - 1;
      if (n > 0) {
        held.set(p, n);
        continue;
      }
      held.delete(p);
      packs.get(p)?.pack?.dispose();
      packs.delete(p);
    }
  };
}

/** Runs `fn` under a hold on `module` (holdPackedWeights). */
export function withPackedWeights<T>(module: Module, fn: () => T): T {
  const release = holdPackedWeights(module);
  try {
    return fn();
  } finally {
    release();
  }
}

/** Bytes held by packed copies of weights now. */
export function packedBytes(): number {
  let total = 0;
  for (const { pack } of packs.values()) total += pack?.bytes ?? 0;
  return total;
}

/**
 * y = x W^T + b (torch.linear): on W's packed copy while a hold names W and gradients are off,
 * else torch.linear itself.
 */
export function linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | null): torch.Tensor {
  if (held.size === 0 || !held.has(weight) || torch.isGradEnabled()) return torch.linear(x, weight, bias);
  let packed = packs.get(weight);
  if (packed === undefined) {
    const roomFor = 2 * weight.numel() * 4 <= freemem(); // float32: 4 bytes a weight
    packed = { bias, pack: roomFor ? torch.PackedLinear.create(weight, bias) : null };
    packs.set(weight, packed);
  }
  return packed.pack && packed.bias === bias ? packed.pack.forward(x) : torch.linear(x, weight, bias);
}
