// GPT-2 (GPT2LMHeadModel), readable in one file. Weight names and layouts are the Hugging Face
// checkpoint's: Conv1D projections store [in, out]; the LM head is tied to the token embedding.
import * as torch from "../torch/index.js";
import { Module, ModuleList } from "../nn/module.js";
import { Conv1D, Embedding, LayerNorm, Linear, type Init } from "../nn/layers.js";
import { linear } from "../nn/packing.js";
import type { KVCache } from "./cache.js";
import { num, type RawConfig } from "./config.js";
import { DecoderLM, type DecoderLayer, type DecoderStep } from "./causal-lm.js";
import type { ArchitectureSpec } from "./architecture.js";

export interface GPT2Config {
  vocabSize: number;
  nPositions: number;
  nEmbd: number;
  nLayer: number;
  nHead: number;
  nInner: number;
  eps: number;
  dropout: number;
  activation: string;
  scaleAttnWeights: boolean;
  scaleByInverseLayerIdx: boolean;
  tied: boolean;
}

export function gpt2Config(raw: RawConfig): GPT2Config {
  const nEmbd = num(raw, "n_embd", 768);
  const act = (raw.activation_function as string | undefined) ?? "gelu_new";
  if (!["gelu_new", "gelu", "gelu_pytorch_tanh", "relu"].includes(act))
    throw new Error(`config.json: activation_function '${act}' is not supported`);
  return {
    vocabSize: num(raw, "vocab_size", 50257),
    nPositions: num(raw, "n_positions", 1024),
    nEmbd,
    nLayer: num(raw, "n_layer", 12),
    nHead: num(raw, "n_head", 12),
    nInner: num(raw, "n_inner", 4 * nEmbd),
    eps: num(raw, "layer_norm_epsilon", 1e-5),
    dropout: num(raw, "resid_pdrop", 0.1),
    activation: act,
    scaleAttnWeights: raw.scale_attn_weights !== false,
    scaleByInverseLayerIdx: raw.scale_attn_by_inverse_layer_idx === true,
    tied: raw.tie_word_embeddings !== false,
  };
}

class Attention extends Module {
  readonly cAttn: Conv1D;
  readonly cProj: Conv1D;
  constructor(
    readonly c: GPT2Config,
    readonly layer: number,
    init: Init,
  ) {
    super();
    this.cAttn = this.module("c_attn", new Conv1D(c.nEmbd, 3 * c.nEmbd, init));
    this.cProj = this.module("c_proj", new Conv1D(c.nEmbd, c.nEmbd, init));
  }
  /** x [B, T, C] -> [B, T, C]; mask [B, 1, T, past + T] or null (causal). */
  forward(x: torch.Tensor, mask: torch.Tensor | null, cache?: KVCache): torch.Tensor {
    const [b, t] = x.shape;
    const heads = this.c.nHead;
    const d = this.c.nEmbd / heads;
    // [B, T, 3C] -> three [B, T, C] -> [B, H, T, D] each
    const [q, k0, v0] = this.cAttn
      .forward(x)
      .split(this.c.nEmbd, 2)
      .map((p) => p.view(b, t, heads, d).transpose(1, 2));
    const [k, v] = cache ? cache.update(this.layer, k0, v0) : [k0, v0]; // [B, H, past + T, D]
    const p = this.training ? this.c.dropout : 0;
    // The kernel divides by sqrt(d); GPT-2's options change that scale, so q absorbs the difference.
    const scale = (this.c.scaleAttnWeights ? 1 : Math.sqrt(d)) / (this.c.scaleByInverseLayerIdx ? this.layer + 1 : 1);
    const y = torch.scaledDotProductAttention(scale === 1 ? q : q.mul(scale), k, v, {
      attnMask: mask,
      isCausal: mask === null,
      dropoutP: p,
    }); // [B, H, T, D]
    return this.cProj.forward(y.transpose(1, 2).reshape(b, t, this.c.nEmbd)); // [B, T, C]
  }
}

class MLP extends Module {
  readonly fc: Conv1D;
  readonly proj: Conv1D;
  constructor(
    readonly c: GPT2Config,
    init: Init,
  ) {
    super();
    this.fc = this.module("c_fc", new Conv1D(c.nEmbd, c.nInner, init));
    this.proj = this.module("c_proj", new Conv1D(c.nInner, c.nEmbd, init));
  }
  forward(x: torch.Tensor): torch.Tensor {
    const a = this.fc.forward(x);
    const act = this.c.activation === "relu" ? a.relu() : a.gelu(this.c.activation === "gelu" ? "none" : "tanh");
    return this.proj.forward(act);
  }
}

class Block extends Module implements DecoderLayer {
  readonly attentionWindow = null;
  readonly ln1: LayerNorm;
  readonly attn: Attention;
  readonly ln2: LayerNorm;
  readonly mlp: MLP;
  constructor(
    readonly c: GPT2Config,
    layer: number,
    init: Init,
  ) {
    super();
    this.ln1 = this.module("ln_1", new LayerNorm(c.nEmbd, c.eps, init));
    this.attn = this.module("attn", new Attention(c, layer, init));
    this.ln2 = this.module("ln_2", new LayerNorm(c.nEmbd, c.eps, init));
    this.mlp = this.module("mlp", new MLP(c, init));
  }
  forward(x: torch.Tensor, step: DecoderStep): torch.Tensor {
    const p = this.training ? this.c.dropout : 0;
    const h = x.add(
      torch.dropout(this.attn.forward(this.ln1.forward(x), step.mask(null), step.cache), p, this.training),
    );
    return h.add(torch.dropout(this.mlp.forward(this.ln2.forward(h)), p, this.training));
  }
}

class Transformer extends Module {
  readonly wte: Embedding;
  readonly wpe: Embedding;
  readonly h: Block[];
  readonly lnF: LayerNorm;
  constructor(c: GPT2Config, init: Init) {
    super();
    this.wte = this.module("wte", new Embedding(c.vocabSize, c.nEmbd, init));
    this.wpe = this.module("wpe", new Embedding(c.nPositions, c.nEmbd, { ...init, std: 0.01 }));
    this.h = this.module("h", new ModuleList(Array.from({ length: c.nLayer }, (_, i) => new Block(c, i, init)))).items;
    this.lnF = this.module("ln_f", new LayerNorm(c.nEmbd, c.eps, init));
  }
}

export class GPT2LMHeadModel extends DecoderLM {
  readonly architecture = "gpt2";
  readonly transformer: Transformer;
  readonly lmHead: Linear | null;

  constructor(
    readonly config: RawConfig,
    readonly c: GPT2Config = gpt2Config(config),
    init: Init = {},
  ) {
    super();
    this.transformer = this.module("transformer", new Transformer(c, init));
    this.lmHead = c.tied ? null : this.module("lm_head", new Linear(c.nEmbd, c.vocabSize, false, init));
  }

  get vocabSize(): number {
    return this.c.vocabSize;
  }
  get maxPositions(): number {
    return this.c.nPositions;
  }
  protected get decoderLayers(): readonly Block[] {
    return this.transformer.h;
  }

  protected embed(inputIds: torch.Tensor, step: DecoderStep): torch.Tensor {
    const total = step.past + step.length;
    if (total > this.c.nPositions)
      throw new Error(`sequence of ${total} tokens exceeds GPT-2's n_positions ${this.c.nPositions}`);
    const h = this.transformer.wte.forward(inputIds).add(this.transformer.wpe.forward(step.positions)); // [B, T, C]
    return torch.dropout(h, this.training ? this.c.dropout : 0, this.training);
  }

  protected head(hidden: torch.Tensor): torch.Tensor {
    const out = this.transformer.lnF.forward(hidden);
    return this.lmHead ? this.lmHead.forward(out) : linear(out, this.transformer.wte.weight, null);
  }
}

export const GPT2: ArchitectureSpec<GPT2Config> = {
  name: "gpt2",
  architectures: ["GPT2LMHeadModel"],
  modelTypes: ["gpt2"],
  parseConfig: gpt2Config,
  model: GPT2LMHeadModel,
  // PEFT's default: the fused query-key-value projection.
  loraTargetModules: ["c_attn"],
  // GPT2Model checkpoints (and some GPT2LMHeadModel ones) store "h.0...", "wte.weight" without it.
  optionalPrefixes: ["transformer."],
  // The head shares the token embedding; checkpoints may still store it.
  tiedWeights: (c): Record<string, string> => (c.tied ? { "lm_head.weight": "transformer.wte.weight" } : {}),
  // The causal-mask buffers of older checkpoints.
  ignoredCheckpointNames: /\.attn\.(bias|masked_bias)$/,
};
