// What every decoder architecture here shares: position ids (padding-aware), the attention
// mask (causal, padding, optional sliding window, KV-cache offset), and rotary embeddings.
// Shapes: B batch rows, T new tokens, past cached tokens, H query heads, Hkv key/value heads,
// D head size.
import * as torch from "../torch/index.js";

/**
 * Position ids [B, T] for `t` new tokens after `past` cached ones. With an attention mask
 * [B, past + t] (1 = token, 0 = padding), positions count real tokens only, so left-padded
 * rows start at 0 as Hugging Face's generate() does (padding positions get 1; they are masked).
 */
export function positionIds(
  batch: number,
  t: number,
  past: number,
  attentionMask?: torch.Tensor | null,
  device: torch.Device = "cpu",
): torch.Tensor {
  return torch.tidy(() => {
    if (!attentionMask)
      return torch
        .arange(past, past + t, 1, { device })
        .unsqueeze(0)
        .expand(batch, t);
    const pos = attentionMask.to("int64").cumsum(-1).sub(1).maskedFill(attentionMask.eq(0), 1); // [B, past + T]
    return pos.slice(1, past, past + t); // [B, T]
  });
}

/**
 * The boolean attention mask [B, 1, T, past + T] (true = may attend), or null when plain
 * causal attention over the whole sequence suffices (the fused kernel's fast path).
 */
export function attentionMask(
  batch: number,
  t: number,
  past: number,
  paddingMask?: torch.Tensor | null,
  slidingWindow?: number | null,
  device: torch.Device = "cpu",
): torch.Tensor | null {
  const total = past + t;
  const windowed = slidingWindow != null && total > slidingWindow;
  if (!paddingMask && past === 0 && !windowed) return null;
  return torch.tidy(() => {
    const q = torch.arange(past, total, 1, { device }).unsqueeze(1); // query positions [T, 1]
    const k = torch.arange(0, total, 1, { device }).unsqueeze(0); // key positions [1, total]
    let allowed = k.le(q); // causal [T, total]
    if (windowed) allowed = allowed.logicalAnd(q.sub(k).lt(slidingWindow!));
    let mask = allowed.unsqueeze(0).unsqueeze(0); // [1, 1, T, total]
    if (paddingMask) mask = mask.logicalAnd(paddingMask.to("bool").reshape(batch, 1, 1, total)); // padding keys [B, 1, 1, total]
    return mask.expand(batch, 1, t, total); // [B, 1, T, total]
  });
}

export interface RopeScaling {
  rope_type?: string;
  type?: string;
  factor?: number;
  low_freq_factor?: number;
  high_freq_factor?: number;
  original_max_position_embeddings?: number;
}

/** Rotary inverse frequencies [D/2], with Llama 3's frequency-dependent or linear scaling when configured. */
export function ropeInverseFrequencies(headDim: number, theta: number, scaling?: RopeScaling | null): torch.Tensor {
  const inv = new Float64Array(headDim / 2);
  for (let i = 0; i < headDim / 2; i++) inv[i] = 1 / theta ** ((2 * i) / headDim);
  const kind = scaling?.rope_type ?? scaling?.type;
  if (kind === "llama3") {
    const factor = scaling!.factor ?? 8;
    const low = scaling!.low_freq_factor ?? 1;
    const high = scaling!.high_freq_factor ?? 4;
    const oldContext = scaling!.original_max_position_embeddings ?? 8192;
    const lowWavelen = oldContext / low;
    const highWavelen = oldContext / high;
    for (let i = 0; i < inv.length; i++) {
      const wavelen = (2 * Math.PI) / inv[i];
      if (wavelen > lowWavelen) inv[i] = inv[i] / factor;
      else if (wavelen >= highWavelen) {
        const smooth = (oldContext / wavelen - low) / (high - low);
        inv[i] = (1 - smooth) * (inv[i] / factor) + smooth * inv[i];
      }
    }
  } else if (kind === "linear") {
    // Position interpolation: positions divided by the factor, i.e. every frequency.
    const factor = scaling!.factor ?? 1;
    for (let i = 0; i < inv.length; i++) inv[i] = inv[i] / factor;
  } else if (kind && kind !== "default") {
    throw new Error(`rope_scaling of type '${kind}' is not supported (supported: llama3, linear)`);
  }
  // Hugging Face computes the frequencies in float32; match it.
  return torch.tensor(Float32Array.from(inv));
}

/**
 * cos and sin [B, 1, T, D] for the given positions [B, T], times `scale` (a rope type's
 * attention factor) in float32 before the cast, as transformers scales them.
 */
export function ropeCosSin(
  inverseFrequencies: torch.Tensor,
  positions: torch.Tensor,
  dtype: torch.DType,
  scale = 1,
): [torch.Tensor, torch.Tensor] {
  return torch.tidy(() => {
    const freqs = positions.to("float32").unsqueeze(-1).mul(inverseFrequencies); // [B, T, D/2]
    const emb = torch.cat([freqs, freqs], -1).unsqueeze(1); // [B, 1, T, D]
    const scaled = (t: torch.Tensor) => (scale === 1 ? t : t.mul(scale));
    return [scaled(emb.cos()).to(dtype), scaled(emb.sin()).to(dtype)];
  });
}

/**
 * x * cos + rotate_half(x) * sin, with rotate_half(x) = [-x2, x1] (the Hugging Face layout):
 * x [B, H, T, D] (or Hkv heads), cos and sin [B, 1, T, D] broadcast over the heads.
 */
export function applyRope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor): torch.Tensor {
  return torch.tidy(() => {
    const half = x.shape[x.ndim - 1] / 2;
    const [x1, x2] = x.split(half, -1); // [B, H, T, D/2] each
    return x.mul(cos).add(torch.cat([x2.neg(), x1], -1).mul(sin));
  });
}

/** Repeats key/value heads for grouped-query attention: [B, Hkv, T, D] -> [B, Hkv*n, T, D]. */
export function repeatKv(x: torch.Tensor, n: number): torch.Tensor {
  if (n === 1) return x.clone();
  const [b, h, t, d] = x.shape;
  return torch.tidy(() =>
    x
      .unsqueeze(2)
      .expand(b, h, n, t, d)
      .reshape(b, h * n, t, d),
  ); // via [B, Hkv, n, T, D]
}
