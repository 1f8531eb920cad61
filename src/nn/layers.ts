// The layers causal language models are made of. Weights use PyTorch's layouts and names.
import * as torch from "../torch/index.js";
import { Module } from "./module.js";
import { linear } from "./packing.js";

/** How new weights start: normal(0, std) by default; `empty` skips it when weights will be loaded. */
export interface Init {
  dtype?: torch.DType;
  std?: number;
  empty?: boolean;
}

export function normal(shape: number[], init: Init): torch.Tensor {
  if (init.empty) return torch.empty(shape, { dtype: init.dtype ?? "float32" });
  return torch.tidy(() => torch.randn(shape, { dtype: init.dtype ?? "float32" }).mul(init.std ?? 0.02));
}

/**
 * A term added to a layer's output, computed from its input x [..., in] and the layer's own
 * output y [..., out] (a LoRA adapter, src/nn/lora.ts); returns the new output [..., out].
 */
export type OutputAdapter = (x: torch.Tensor, y: torch.Tensor) => torch.Tensor;

/** y = x W^T + b with W [out, in] (torch.nn.Linear). */
export class Linear extends Module {
  /** Set by an adapter wrapped around this layer; null: the plain layer. */
  adapter: OutputAdapter | null = null;
  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    bias = true,
    init: Init = {},
  ) {
    super();
    this.param("weight", normal([outFeatures, inFeatures], init));
    if (bias) this.param("bias", torch.zeros([outFeatures], { dtype: init.dtype }));
  }
  get weight(): torch.Tensor {
    return this.get("weight");
  }
  forward(x: torch.Tensor): torch.Tensor {
    const y = linear(x, this.get("weight"), this.has("bias") ? this.get("bias") : null);
    return this.adapter ? this.adapter(x, y) : y;
  }
}

/**
 * GPT-2's Conv1D: y = x W + b with W [in, out], the transpose of Linear's layout. Checkpoints
 * store it this way, so the weight is kept as stored and transposed (a view) when used.
 */
export class Conv1D extends Module {
  /** Set by an adapter wrapped around this layer; null: the plain layer. */
  adapter: OutputAdapter | null = null;
  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    init: Init = {},
  ) {
    super();
    this.param("weight", normal([inFeatures, outFeatures], init));
    this.param("bias", torch.zeros([outFeatures], { dtype: init.dtype }));
  }
  get weight(): torch.Tensor {
    return this.get("weight");
  }
  forward(x: torch.Tensor): torch.Tensor {
    return torch.tidy(() => {
      const y = torch.linear(x, this.get("weight").t(), this.get("bias"));
      return this.adapter ? this.adapter(x, y) : y;
    });
  }
}

export class Embedding extends Module {
  constructor(
    readonly numEmbeddings: number,
    readonly dim: number,
    init: Init = {},
  ) {
    super();
    this.param("weight", normal([numEmbeddings, dim], init));
  }
  get weight(): torch.Tensor {
    return this.get("weight");
  }
  forward(ids: torch.Tensor): torch.Tensor {
    return torch.embedding(this.get("weight"), ids);
  }
}

export class LayerNorm extends Module {
  constructor(
    readonly dim: number,
    readonly eps = 1e-5,
    init: Init = {},
  ) {
    super();
    this.param("weight", torch.ones([dim], { dtype: init.dtype }));
    this.param("bias", torch.zeros([dim], { dtype: init.dtype }));
  }
  forward(x: torch.Tensor): torch.Tensor {
    return torch.layerNorm(x, [this.dim], this.get("weight"), this.get("bias"), this.eps);
  }
}

export class RMSNorm extends Module {
  constructor(
    readonly dim: number,
    readonly eps = 1e-6,
    init: Init = {},
  ) {
    super();
    this.param("weight", torch.ones([dim], { dtype: init.dtype }));
  }
  forward(x: torch.Tensor): torch.Tensor {
    return torch.rmsNorm(x, this.get("weight"), this.eps);
  }
}
