// Free functions over tensors: joining, selecting, and the neural-network building blocks.
import { callNamed, callTensor, callTensors, Tensor, type TensorOrScalar } from "./tensor.js";
import { hasOp } from "./ops.js";
import { tidy } from "./scope.js";
import { dtypeCode } from "./dtype.js";

export function cat(tensors: Tensor[], dim = 0): Tensor {
  return callTensor(
    "cat",
    tensors.map((t) => t.id),
    dim,
  );
}
export function stack(tensors: Tensor[], dim = 0): Tensor {
  return callTensor(
    "stack",
    tensors.map((t) => t.id),
    dim,
  );
}

/** Elementwise choice: `condition ? a : b`, with broadcasting; a and b may be numbers. */
export function where(condition: Tensor, a: TensorOrScalar, b: TensorOrScalar): Tensor {
  if (a instanceof Tensor && b instanceof Tensor) return callTensor("where.self", condition.id, a.id, b.id);
  if (a instanceof Tensor) return callTensor("where.ScalarOther", condition.id, a.id, b);
  if (b instanceof Tensor) return callTensor("where.ScalarSelf", condition.id, a, b.id);
  return callTensor("where.Scalar", condition.id, a, b);
}

export function matmul(a: Tensor, b: Tensor): Tensor {
  return a.matmul(b);
}
export function bmm(a: Tensor, b: Tensor): Tensor {
  return a.bmm(b);
}

/** y = x W^T + b, with W of shape [out, in] as in torch.nn.Linear. */
export function linear(input: Tensor, weight: Tensor, bias?: Tensor | null): Tensor {
  return callNamed("linear", { input: input.id, weight: weight.id, bias: bias?.id });
}

/** Rows of `weight` picked by integer `indices`. */
export function embedding(weight: Tensor, indices: Tensor, paddingIdx = -1): Tensor {
  return callTensor("embedding", weight.id, indices.id, paddingIdx, false, false);
}

/**
 * LayerNorm over the trailing `normalizedShape`. An input whose dtype differs from the weight's
 * (bf16 activations under autocast, float32 weights) is normalised in float32, as PyTorch's
 * autocast runs layer_norm, and the result stays float32.
 */
export function layerNorm(
  input: Tensor,
  normalizedShape: number[],
  weight?: Tensor | null,
  bias?: Tensor | null,
  eps = 1e-5,
): Tensor {
  const mixed = [weight, bias].some((t) => t && t.dtype !== input.dtype);
  if (mixed) {
    return tidy(() => layerNorm(input.to("float32"), normalizedShape, weight?.to("float32"), bias?.to("float32"), eps));
  }
  return callNamed("layer_norm", {
    input: input.id,
    normalized_shape: normalizedShape,
    weight: weight?.id,
    bias: bias?.id,
    eps,
  });
}

/**
 * RMSNorm over the last dimension, as Llama computes it: in float32, then cast back to the
 * input dtype before the weight multiplies.
 */
export function rmsNorm(input: Tensor, weight?: Tensor | null, eps = 1e-6): Tensor {
  return tidy(() => {
    const x = input.dtype === "float32" || input.dtype === "float64" ? input : input.to("float32");
    const normed = x.mul(x.square().mean(-1, true).add(eps).rsqrt()).to(input.dtype);
    return weight ? normed.mul(weight) : normed;
  });
}

export function softmax(input: Tensor, dim: number): Tensor {
  return input.softmax(dim);
}
export function logSoftmax(input: Tensor, dim: number): Tensor {
  return input.logSoftmax(dim);
}

export type Reduction = "none" | "mean" | "sum";
const REDUCTIONS: Record<Reduction, number> = { none: 0, mean: 1, sum: 2 };

/**
 * Cross-entropy of logits [N, C] (or [N, C, d...]) against class indices, as
 * torch.nn.functional.cross_entropy: targets equal to `ignoreIndex` do not count.
 */
export function crossEntropy(
  logits: Tensor,
  target: Tensor,
  options: {
    ignoreIndex?: number;
    reduction?: Reduction;
    labelSmoothing?: number;
    weight?: Tensor;
  } = {},
): Tensor {
  const reduction = REDUCTIONS[options.reduction ?? "mean"];
  if (reduction === undefined)
    throw new Error(`crossEntropy: reduction must be none, mean or sum, got ${options.reduction}`);
  return callNamed("cross_entropy_loss", {
    self: logits.id,
    target: target.id,
    weight: options.weight?.id,
    reduction,
    ignore_index: options.ignoreIndex ?? -100,
    label_smoothing: options.labelSmoothing ?? 0,
  });
}

/** Zeroes elements with probability p and scales the rest by 1/(1-p), in training only. */
export function dropout(input: Tensor, p: number, training = true): Tensor {
  if (p < 0 || p > 1) throw new Error(`dropout probability must be in [0, 1], got ${p}`);
  return callTensor("dropout", input.id, p, training);
}

export interface AttentionOptions {
  /** Boolean mask (true = may attend) or additive float mask, broadcastable to [B, H, Tq, Tk]. */
  attnMask?: Tensor | null;
  isCausal?: boolean;
  dropoutP?: number;
}

/**
 * softmax(Q K^T / sqrt(d) + mask) V over q [B, H, Tq, d], k and v [B, H, Tk, d].
 * Uses LibTorch's fused kernel where this version has one. Causal and padding masks combine:
 * a boolean mask becomes an additive mask with the dtype's lowest finite value rather than
 * -inf, so a fully masked row (a left-padding position) yields finite values, not NaN.
 */
export function scaledDotProductAttention(q: Tensor, k: Tensor, v: Tensor, options: AttentionOptions = {}): Tensor {
  return tidy(() => {
    const dropoutP = options.dropoutP ?? 0;
    let mask = options.attnMask ?? null;
    let isCausal = options.isCausal ?? false;
    const [tq, tk] = [q.shape[q.ndim - 2], k.shape[k.ndim - 2]];
    // Causal masks align the last query with the last key (query i of tq sees keys up to
    // tk - tq + i), as a KV cache needs. LibTorch versions disagree on how is_causal aligns
    // them, so it is used only when the lengths are equal and no other mask is given.
    if (isCausal && (mask || tq !== tk)) {
      const causal = callNamed("ones", { size: [tq, tk], dtype: dtypeCode("bool"), device: q.device }).tril(tk - tq);
      mask = mask
        ? mask.dtype === "bool"
          ? causal.logicalAnd(mask)
          : mask.maskedFill(causal.logicalNot(), -Infinity)
        : causal;
      isCausal = false;
    }
    if (mask && mask.dtype === "bool") {
      const lowest =
        { float64: -Number.MAX_VALUE, float16: -65504, bfloat16: -3.3895313892515355e38 }[q.dtype as string] ??
        -3.4028234663852886e38;
      mask = callNamed("zeros", { size: mask.shape, dtype: dtypeCode(q.dtype), device: q.device }).maskedFill(
        mask.logicalNot(),
        lowest,
      );
    }
    const maskId = mask ? mask.id : null;
    if (hasOp("scaled_dot_product_attention")) {
      return callNamed("scaled_dot_product_attention", {
        query: q.id,
        key: k.id,
        value: v.id,
        attn_mask: maskId,
        dropout_p: dropoutP,
        is_causal: isCausal,
      });
    }
    if (hasOp("_scaled_dot_product_attention")) {
      // LibTorch 1.13's name; it also returns the attention weights (empty unless asked for).
      return callTensors("_scaled_dot_product_attention", q.id, k.id, v.id, maskId, dropoutP, false, isCausal)[0];
    }
    throw new Error("this LibTorch has no scaled dot-product attention operator");
  });
}

/**
 * Log-probability of each label under logits: logits [N, T, V], labels [N, T] (int64) ->
 * [N, T], with 0 where the label is `ignoreIndex`.
 *
 * Computed as logits[label] - logsumexp(logits): backward needs only the logits (alive anyway)
 * and the [N, T] normaliser, so no [N, T, V] log-softmax copy is kept alive between forward
 * and backward, which is where a DPO step's memory goes.
 *
 * bfloat16 and float16 logits (bf16 weights, or autocast, whose CPU policy leaves logsumexp in
 * the input's dtype) are taken in float32, as transformers upcasts logits before the loss: a
 * bf16 logsumexp over a vocabulary is off in the third digit. The result is then float32.
 */
export function tokenLogProbs(logits: Tensor, labels: Tensor, ignoreIndex = -100): Tensor {
  if (logits.ndim !== labels.ndim + 1) {
    throw new Error(
      `tokenLogProbs: logits must have one more dimension than labels, got [${logits.shape}] and [${labels.shape}]`,
    );
  }
  return tidy(() => {
    if (logits.dtype === "bfloat16" || logits.dtype === "float16") logits = logits.to("float32"); // [N, T, V]
    const ignored = labels.eq(ignoreIndex);
    const picked = logits.gather(-1, labels.maskedFill(ignored, 0).unsqueeze(-1)).squeeze(-1);
    return picked.sub(logits.logsumexp(-1)).maskedFill(ignored, 0);
  });
}
