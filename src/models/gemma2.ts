// Gemma 2 (Gemma2ForCausalLM), and the decoder Gemma 3's text model shares with it (gemma3.ts).
// What sets Gemma apart from Llama, as transformers' modeling_gemma2.py computes it:
//   * the token embeddings are multiplied by sqrt(hidden_size), a constant rounded to the
//     embedding's dtype first (a bf16 model multiplies by bf16(sqrt(C)));
//   * RMSNorm scales by (1 + weight), in float32, and casts back last;
//   * four norms per layer: around the attention (input_layernorm, post_attention_layernorm)
//     and around the MLP (pre_feedforward_layernorm, post_feedforward_layernorm);
//   * a GeGLU MLP with gelu-tanh;
//   * attention scores scaled by query_pre_attn_scalar^-0.5 and, in Gemma 2, soft-capped
//     (tanh(s / c) * c) before the mask and the float32 softmax (eager attention);
//   * sliding-window attention on alternating layers (layer_types when config.json has it);
//   * the final logits soft-capped by final_logit_softcapping, inside the head, so the chunked
//     log-prob path (logitsFromHidden) caps them too.
// Gemma 3 adds a per-head RMSNorm on queries and keys (before RoPE) and a different rotary
// base on its sliding layers; both are options of the decoder here.
import * as torch from "../torch/index.js";
import { Module, ModuleList, type ModuleTarget } from "../nn/module.js";
import { Embedding, Linear, type Init } from "../nn/layers.js";
import { linear } from "../nn/packing.js";
import { applyRope, repeatKv, ropeCosSin, ropeInverseFrequencies, type RopeScaling } from "./attention.js";
import type { KVCache } from "./cache.js";
import { num, type RawConfig } from "./config.js";
import { DecoderLM, type DecoderLayer, type DecoderStep } from "./causal-lm.js";
import type { ArchitectureSpec } from "./architecture.js";

/** One rotary embedding: its base and optional scaling. */
export interface GemmaRope {
  theta: number;
  scaling: RopeScaling | null;
}

export interface GemmaConfig {
  vocabSize: number;
  hidden: number;
  intermediate: number;
  layers: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  eps: number;
  maxPositions: number;
  tied: boolean;
  attentionBias: boolean;
  attentionDropout: number;
  /** The MLP's gelu: "tanh" (gelu_pytorch_tanh) or "none" (exact gelu). */
  gelu: "tanh" | "none";
  /** The attention scores' scale, query_pre_attn_scalar^-0.5. */
  attentionScale: number;
  /** attn_logit_softcapping and final_logit_softcapping; null: no capping. */
  attentionSoftcap: number | null;
  finalSoftcap: number | null;
  slidingWindow: number | null;
  /** Per layer: whether it is a sliding ("local") layer. */
  slidingLayers: boolean[];
  /** The rotary embedding of full-attention ("global") layers, and of sliding ("local") ones. */
  globalRope: GemmaRope;
  localRope: GemmaRope;
  /** Gemma 3: q_norm and k_norm (per-head RMSNorm on queries and keys before RoPE). */
  qkNorm: boolean;
}

const GELUS: Record<string, "tanh" | "none"> = { gelu_pytorch_tanh: "tanh", gelu: "none" };

/** A positive number or null (soft-capping, the window): 0 and null both mean off, as in transformers' checks. */
export function optionalPositive(raw: RawConfig, key: string, fallback: number | null): number | null {
  if (!(key in raw)) return fallback;
  const v = raw[key];
  if (v === null || v === 0) return null;
  if (typeof v !== "number" || !(v > 0))
    throw new Error(`config.json: field ${key} must be a positive number or null, got ${JSON.stringify(v)}`);
  return v;
}

/**
 * Which layers slide: layer_types when config.json has it (transformers' current form), else
 * every `pattern`-th layer is global and the others slide (Gemma 2: pattern 2, so even layers
 * slide; Gemma 3: sliding_window_pattern, 6 by default).
 */
export function gemmaSlidingLayers(raw: RawConfig, layers: number, pattern: number): boolean[] {
  const types = raw.layer_types;
  if (types !== undefined && types !== null) {
    if (
      !Array.isArray(types) ||
      types.length !== layers ||
      !types.every((t) => t === "sliding_attention" || t === "full_attention")
    ) {
      throw new Error(
        `config.json: field layer_types must list ${layers} entries (num_hidden_layers), each "sliding_attention" or "full_attention", got ${JSON.stringify(types)}`,
      );
    }
    return types.map((t) => t === "sliding_attention");
  }
  return Array.from({ length: layers }, (_, i) => (i + 1) % pattern !== 0);
}

/** The fields Gemma 2 and Gemma 3 read alike, with the defaults their configs share (max_position_embeddings: theirs differ). */
export function gemmaCommonConfig(
  raw: RawConfig,
  maxPositions: number,
): Omit<GemmaConfig, "attentionSoftcap" | "finalSoftcap" | "slidingLayers" | "globalRope" | "localRope" | "qkNorm"> {
  const hidden = num(raw, "hidden_size");
  const heads = num(raw, "num_attention_heads");
  // Hub configs carry hidden_act too, but Gemma 2 and 3 configs read only hidden_activation.
  const act = (raw.hidden_activation as string | null | undefined) ?? "gelu_pytorch_tanh";
  const gelu = GELUS[act];
  if (!gelu) throw new Error(`config.json: hidden_activation '${act}' is not supported (gelu_pytorch_tanh or gelu)`);
  if (raw.use_bidirectional_attention === true)
    throw new Error("config.json: use_bidirectional_attention (EmbeddingGemma) is not supported: this is a causal LM");
  const kvHeads = num(raw, "num_key_value_heads", heads);
  if (heads % kvHeads !== 0)
    throw new Error(`config.json: num_attention_heads ${heads} is not a multiple of num_key_value_heads ${kvHeads}`);
  const headDim = num(raw, "head_dim", 256);
  return {
    vocabSize: num(raw, "vocab_size"),
    hidden,
    intermediate: num(raw, "intermediate_size"),
    layers: num(raw, "num_hidden_layers"),
    heads,
    kvHeads,
    headDim,
    eps: num(raw, "rms_norm_eps", 1e-6),
    maxPositions: num(raw, "max_position_embeddings", maxPositions),
    tied: raw.tie_word_embeddings !== false, // both configs default to tied
    attentionBias: raw.attention_bias === true,
    attentionDropout: num(raw, "attention_dropout", 0),
    gelu,
    attentionScale: num(raw, "query_pre_attn_scalar", 256) ** -0.5,
    slidingWindow: optionalPositive(raw, "sliding_window", 4096),
  };
}

export function gemma2Config(raw: RawConfig): GemmaConfig {
  const common = gemmaCommonConfig(raw, 8192);
  // transformers 5 writes rope_theta into rope_parameters.
  const params = raw.rope_parameters as (RopeScaling & { rope_theta?: number }) | null | undefined;
  const scaling =
    (raw.rope_scaling as RopeScaling | null | undefined) ??
    (params?.rope_type && params.rope_type !== "default" ? params : null);
  const rope: GemmaRope = { theta: num(raw, "rope_theta", params?.rope_theta ?? 10000), scaling };
  return {
    ...common,
    attentionSoftcap: optionalPositive(raw, "attn_logit_softcapping", 50),
    finalSoftcap: optionalPositive(raw, "final_logit_softcapping", 30),
    slidingLayers: gemmaSlidingLayers(raw, common.layers, 2),
    globalRope: rope,
    localRope: rope,
    qkNorm: false,
  };
}

/** Gemma's RMSNorm: x / rms(x) * (1 + weight), in float32 (float64 stays float64), cast to x's dtype at the end. */
export class GemmaRMSNorm extends Module {
  constructor(
    readonly dim: number,
    readonly eps = 1e-6,
    init: Init = {},
  ) {
    super();
    // Zero is the identity here (the scale is 1 + weight), as transformers initialises it.
    this.param("weight", torch.zeros([dim], { dtype: init.dtype }));
  }
  forward(x: torch.Tensor): torch.Tensor {
    return torch.tidy(() => {
      const wide = atLeastFloat32(x.dtype);
      const xf = x.to(wide); // [..., D]
      const normed = xf.mul(xf.square().mean(-1, true).add(this.eps).rsqrt()); // [..., D]
      return normed.mul(this.get("weight").to(wide).add(1)).to(x.dtype);
    });
  }
}

/** float32 for the 16-bit dtypes (where transformers upcasts), else the dtype itself. */
function atLeastFloat32(dtype: torch.DType): torch.DType {
  return dtype === "float64" ? "float64" : "float32";
}

/** The most negative finite value of a float dtype (finfo.min): masked scores, finite so fully masked rows stay finite. */
function lowest(dtype: torch.DType): number {
  return (
    { float64: -Number.MAX_VALUE, float16: -65504, bfloat16: -3.3895313892515355e38 }[dtype as string] ??
    -3.4028234663852886e38
  );
}

/**
 * Eager attention as transformers' eager_attention_forward: scores q k^T * scale [B, H, T, S],
 * soft-capped when `softcap` is set, masked (mask [B, 1, T, S] boolean, true = may attend; null: causal, T = S),
 * softmax in float32 (or float64), times v. q [B, H, T, D]; k, v [B, H, S, D] (already repeated for GQA).
 */
function eagerAttention(
  q: torch.Tensor,
  k: torch.Tensor,
  v: torch.Tensor,
  mask: torch.Tensor | null,
  scale: number,
  softcap: number | null,
  dropoutP: number,
): torch.Tensor {
  return torch.tidy(() => {
    let scores = q.matmul(k.transpose(2, 3)).mul(scale); // [B, H, T, S]
    if (softcap !== null) scores = scores.div(softcap).tanh().mul(softcap);
    const [t, s] = [q.shape[2], k.shape[2]];
    const allowed = mask ?? torch.ones([t, s], { dtype: "bool", device: q.device }).tril(s - t); // [B, 1, T, S] or [T, S]
    scores = scores.maskedFill(allowed.logicalNot(), lowest(scores.dtype));
    let probs = scores.to(atLeastFloat32(scores.dtype)).softmax(-1).to(q.dtype); // [B, H, T, S]
    if (dropoutP > 0) probs = torch.dropout(probs, dropoutP, true);
    return probs.matmul(v); // [B, H, T, D]
  });
}

/** What every layer of one forward call shares: the step, and cos/sin [B, 1, T, D] of the global and the local rotary embedding. */
interface GemmaStep extends DecoderStep {
  readonly globalCos: torch.Tensor;
  readonly globalSin: torch.Tensor;
  readonly localCos: torch.Tensor;
  readonly localSin: torch.Tensor;
}

class Attention extends Module {
  readonly q: Linear;
  readonly k: Linear;
  readonly v: Linear;
  readonly o: Linear;
  readonly qNorm: GemmaRMSNorm | null;
  readonly kNorm: GemmaRMSNorm | null;
  constructor(
    readonly c: GemmaConfig,
    readonly layer: number,
    init: Init,
  ) {
    super();
    this.q = this.module("q_proj", new Linear(c.hidden, c.heads * c.headDim, c.attentionBias, init));
    this.k = this.module("k_proj", new Linear(c.hidden, c.kvHeads * c.headDim, c.attentionBias, init));
    this.v = this.module("v_proj", new Linear(c.hidden, c.kvHeads * c.headDim, c.attentionBias, init));
    this.o = this.module("o_proj", new Linear(c.heads * c.headDim, c.hidden, c.attentionBias, init));
    this.qNorm = c.qkNorm ? this.module("q_norm", new GemmaRMSNorm(c.headDim, c.eps, init)) : null;
    this.kNorm = c.qkNorm ? this.module("k_norm", new GemmaRMSNorm(c.headDim, c.eps, init)) : null;
  }
  /** x [B, T, C] -> [B, T, C]; cos/sin [B, 1, T, D]; mask [B, 1, T, past + T] or null (causal). */
  forward(
    x: torch.Tensor,
    cos: torch.Tensor,
    sin: torch.Tensor,
    mask: torch.Tensor | null,
    cache?: KVCache,
  ): torch.Tensor {
    const [b, t] = x.shape;
    const { heads, kvHeads, headDim, attentionScale, attentionSoftcap } = this.c;
    let q = this.q.forward(x).view(b, t, heads, headDim).transpose(1, 2); // [B, H, T, D]
    let k0 = this.k.forward(x).view(b, t, kvHeads, headDim).transpose(1, 2); // [B, Hkv, T, D]
    const v0 = this.v.forward(x).view(b, t, kvHeads, headDim).transpose(1, 2); // [B, Hkv, T, D]
    if (this.qNorm && this.kNorm) {
      q = this.qNorm.forward(q);
      k0 = this.kNorm.forward(k0);
    }
    q = applyRope(q, cos, sin);
    k0 = applyRope(k0, cos, sin);
    const [k, v] = cache ? cache.update(this.layer, k0, v0) : [k0, v0]; // [B, Hkv, past + T, D]
    const groups = heads / kvHeads;
    const dropoutP = this.training ? this.c.attentionDropout : 0;
    // The fused kernel scales by 1/sqrt(D) and cannot soft-cap; otherwise eager attention, as
    // transformers' eager path computes it (pre-scaling q instead would round it in bf16).
    const fused = attentionSoftcap === null && Math.abs(attentionScale * Math.sqrt(headDim) - 1) < 1e-12;
    const y = fused // [B, H, T, D]
      ? torch.scaledDotProductAttention(q, repeatKv(k, groups), repeatKv(v, groups), {
          attnMask: mask,
          isCausal: mask === null,
          dropoutP,
        })
      : eagerAttention(q, repeatKv(k, groups), repeatKv(v, groups), mask, attentionScale, attentionSoftcap, dropoutP);
    return this.o.forward(y.transpose(1, 2).reshape(b, t, heads * headDim)); // [B, T, C]
  }
}

class MLP extends Module {
  readonly gate: Linear;
  readonly up: Linear;
  readonly down: Linear;
  constructor(
    readonly c: GemmaConfig,
    init: Init,
  ) {
    super();
    this.gate = this.module("gate_proj", new Linear(c.hidden, c.intermediate, false, init));
    this.up = this.module("up_proj", new Linear(c.hidden, c.intermediate, false, init));
    this.down = this.module("down_proj", new Linear(c.intermediate, c.hidden, false, init));
  }
  /** GeGLU: down(gelu(gate(x)) * up(x)), [B, T, C] -> [B, T, C]. */
  forward(x: torch.Tensor): torch.Tensor {
    return this.down.forward(this.gate.forward(x).gelu(this.c.gelu).mul(this.up.forward(x)));
  }
}

class GemmaDecoderLayer extends Module implements DecoderLayer<GemmaStep> {
  readonly attentionWindow: number | null;
  readonly sliding: boolean;
  readonly inputNorm: GemmaRMSNorm;
  readonly attn: Attention;
  readonly postAttentionNorm: GemmaRMSNorm;
  readonly preFeedforwardNorm: GemmaRMSNorm;
  readonly mlp: MLP;
  readonly postFeedforwardNorm: GemmaRMSNorm;
  constructor(c: GemmaConfig, layer: number, init: Init) {
    super();
    this.sliding = c.slidingLayers[layer];
    this.attentionWindow = this.sliding ? c.slidingWindow : null;
    this.inputNorm = this.module("input_layernorm", new GemmaRMSNorm(c.hidden, c.eps, init));
    this.attn = this.module("self_attn", new Attention(c, layer, init));
    this.postAttentionNorm = this.module("post_attention_layernorm", new GemmaRMSNorm(c.hidden, c.eps, init));
    this.preFeedforwardNorm = this.module("pre_feedforward_layernorm", new GemmaRMSNorm(c.hidden, c.eps, init));
    this.mlp = this.module("mlp", new MLP(c, init));
    this.postFeedforwardNorm = this.module("post_feedforward_layernorm", new GemmaRMSNorm(c.hidden, c.eps, init));
  }
  forward(x: torch.Tensor, step: GemmaStep): torch.Tensor {
    const [cos, sin] = this.sliding ? [step.localCos, step.localSin] : [step.globalCos, step.globalSin];
    const a = this.attn.forward(this.inputNorm.forward(x), cos, sin, step.mask(this.attentionWindow), step.cache);
    const h = x.add(this.postAttentionNorm.forward(a)); // [B, T, C]
    return h.add(this.postFeedforwardNorm.forward(this.mlp.forward(this.preFeedforwardNorm.forward(h))));
  }
}

class Decoder extends Module {
  readonly embed: Embedding;
  readonly layers: GemmaDecoderLayer[];
  readonly norm: GemmaRMSNorm;
  constructor(c: GemmaConfig, init: Init) {
    super();
    this.embed = this.module("embed_tokens", new Embedding(c.vocabSize, c.hidden, init));
    this.layers = this.module(
      "layers",
      new ModuleList(Array.from({ length: c.layers }, (_, i) => new GemmaDecoderLayer(c, i, init))),
    ).items;
    this.norm = this.module("norm", new GemmaRMSNorm(c.hidden, c.eps, init));
  }
}

export class Gemma2ForCausalLM extends DecoderLM<GemmaStep> {
  readonly architecture: string = "gemma2";
  readonly model: Decoder;
  readonly lmHead: Linear | null;
  /** Rotary inverse frequencies [D/2] of global and local layers (one tensor when they agree). */
  #globalFrequencies: torch.Tensor;
  #localFrequencies: torch.Tensor;

  constructor(
    readonly config: RawConfig,
    readonly c: GemmaConfig = gemma2Config(config),
    init: Init = {},
  ) {
    super();
    this.model = this.module("model", new Decoder(c, init));
    this.lmHead = c.tied ? null : this.module("lm_head", new Linear(c.hidden, c.vocabSize, false, init));
    this.#globalFrequencies = ropeInverseFrequencies(c.headDim, c.globalRope.theta, c.globalRope.scaling).keep();
    this.#localFrequencies =
      c.localRope === c.globalRope
        ? this.#globalFrequencies
        : ropeInverseFrequencies(c.headDim, c.localRope.theta, c.localRope.scaling).keep();
  }

  get vocabSize(): number {
    return this.c.vocabSize;
  }
  get maxPositions(): number {
    return this.c.maxPositions;
  }
  protected get decoderLayers(): readonly GemmaDecoderLayer[] {
    return this.model.layers;
  }

  /** Embeddings [B, T, C] times sqrt(C), the constant in the embedding's dtype as transformers makes it. */
  protected embed(inputIds: torch.Tensor): torch.Tensor {
    return torch.tidy(() => {
      const h = this.model.embed.forward(inputIds); // [B, T, C]
      return h.mul(torch.full([], Math.sqrt(this.c.hidden), { dtype: h.dtype, device: h.device }));
    });
  }

  protected override prepare(step: DecoderStep, hidden: torch.Tensor): GemmaStep {
    const [globalCos, globalSin] = ropeCosSin(this.#globalFrequencies, step.positions, hidden.dtype);
    const [localCos, localSin] =
      this.#localFrequencies === this.#globalFrequencies
        ? [globalCos, globalSin]
        : ropeCosSin(this.#localFrequencies, step.positions, hidden.dtype);
    return { ...step, globalCos, globalSin, localCos, localSin };
  }

  /** The final norm alone (a sequence classifier's input: no LM head, no soft-capping). */
  finalNorm(hidden: torch.Tensor): torch.Tensor {
    return this.model.norm.forward(hidden);
  }

  /** The final norm, the LM head and the final soft-capping: [..., C] -> [..., V]. */
  protected head(hidden: torch.Tensor): torch.Tensor {
    return torch.tidy(() => {
      const h = this.finalNorm(hidden);
      const logits = this.lmHead ? this.lmHead.forward(h) : linear(h, this.model.embed.weight, null);
      const cap = this.c.finalSoftcap;
      return cap === null ? logits : logits.div(cap).tanh().mul(cap);
    });
  }

  /** Moves the parameters and the rotary frequencies (which stay float32, as transformers keeps them). */
  override to(target: ModuleTarget): this {
    super.to(target);
    const move = (t: torch.Tensor) => {
      if (t.device === this.device) return t;
      const moved = t.to({ device: this.device }).keep();
      t.dispose();
      return moved;
    };
    const shared = this.#localFrequencies === this.#globalFrequencies;
    this.#globalFrequencies = move(this.#globalFrequencies);
    this.#localFrequencies = shared ? this.#globalFrequencies : move(this.#localFrequencies);
    return this;
  }

  override dispose(): void {
    super.dispose();
    this.#globalFrequencies.dispose();
    if (this.#localFrequencies !== this.#globalFrequencies) this.#localFrequencies.dispose();
  }
}

/** The checkpoint rules both Gemma architectures share. */
export function gemmaSpec(
  name: string,
  className: string,
  modelType: string,
  parseConfig: (raw: RawConfig) => GemmaConfig,
  model: ArchitectureSpec<GemmaConfig>["model"],
  sequenceClassifiers: readonly string[] = [],
): ArchitectureSpec<GemmaConfig> {
  return {
    name,
    architectures: [className],
    modelTypes: [modelType],
    parseConfig,
    model,
    sequenceClassifiers,
    // PEFT's default for gemma2 and gemma3_text.
    loraTargetModules: ["q_proj", "v_proj"],
    tiedWeights: (c): Record<string, string> => (c.tied ? { "lm_head.weight": "model.embed_tokens.weight" } : {}),
    ignoredCheckpointNames: /\.rotary_emb(_local)?\.inv_freq$/,
  };
}

export const GEMMA2 = gemmaSpec("gemma2", "Gemma2ForCausalLM", "gemma2", gemma2Config, Gemma2ForCausalLM, [
  "Gemma2ForSequenceClassification",
]);
