// The Llama family in one file: Llama 2/3 (TinyLlama, SmolLM), Qwen2 (q/k/v biases) and Mistral
// (sliding-window attention). Pre-norm RMSNorm blocks, rotary positions, grouped-query
// attention and a SwiGLU MLP; weight names are the Hugging Face checkpoint's. One model class
// with a subclass per architecture, as transformers names them; what differs between the three
// is read from config.json by llamaConfig.
import * as torch from "../torch/index.js";
import { Module, ModuleList, type ModuleTarget } from "../nn/module.js";
import { Embedding, Linear, RMSNorm, type Init } from "../nn/layers.js";
import { linear } from "../nn/packing.js";
import { applyRope, repeatKv, ropeCosSin, ropeInverseFrequencies, type RopeScaling } from "./attention.js";
import type { KVCache } from "./cache.js";
import { num, type RawConfig } from "./config.js";
import { DecoderLM, type DecoderLayer, type DecoderStep, type HiddenStatesOptions } from "./causal-lm.js";
import type { ArchitectureSpec } from "./architecture.js";

/** The members of the family; their config fields differ (see llamaConfig). */
export type LlamaFamily = "llama" | "qwen2" | "mistral";

/** What every layer of one forward call shares: the step, and the rotary cos/sin [B, 1, T, D]. */
export interface RotaryStep extends DecoderStep {
  readonly cos: torch.Tensor;
  readonly sin: torch.Tensor;
}

export interface LlamaConfig {
  vocabSize: number;
  hidden: number;
  intermediate: number;
  layers: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  eps: number;
  ropeTheta: number;
  ropeScaling: RopeScaling | null;
  maxPositions: number;
  tied: boolean;
  qkvBias: boolean;
  oBias: boolean;
  mlpBias: boolean;
  slidingWindow: number | null;
  attentionDropout: number;
  /** RMSNorm over head_dim on each query and key head before RoPE (Qwen3's q_norm / k_norm). */
  qkNorm: boolean;
  /** Per layer: whether it uses the sliding window (Qwen2 windows only layers >= max_window_layers). */
  slidingLayers: boolean[];
}

export function llamaConfig(raw: RawConfig, arch: LlamaFamily): LlamaConfig {
  const hidden = num(raw, "hidden_size");
  const heads = num(raw, "num_attention_heads");
  const act = (raw.hidden_act as string | undefined) ?? "silu";
  if (act !== "silu") throw new Error(`config.json: hidden_act '${act}' is not supported (silu only)`);
  const useWindow = arch === "mistral" || (arch === "qwen2" && raw.use_sliding_window === true);
  const layers = num(raw, "num_hidden_layers");
  // As transformers: an explicit layer_types wins; else Qwen2 windows the layers from
  // max_window_layers on, Mistral all of them.
  const layerTypes = raw.layer_types as string[] | undefined;
  const windowFrom = arch === "qwen2" ? num(raw, "max_window_layers", 28) : 0;
  const slidingLayers = Array.from(
    { length: layers },
    (_, i) => useWindow && (Array.isArray(layerTypes) ? layerTypes[i] === "sliding_attention" : i >= windowFrom),
  );
  // transformers 5 writes rope_theta and the scaling into one rope_parameters object.
  const ropeParameters = raw.rope_parameters as (RopeScaling & { rope_theta?: number }) | null | undefined;
  return {
    vocabSize: num(raw, "vocab_size"),
    hidden,
    intermediate: num(raw, "intermediate_size"),
    layers,
    heads,
    kvHeads: num(raw, "num_key_value_heads", heads),
    headDim: num(raw, "head_dim", Math.floor(hidden / heads)),
    eps: num(raw, "rms_norm_eps", 1e-6),
    ropeTheta: num(raw, "rope_theta", ropeParameters?.rope_theta ?? 10000),
    ropeScaling:
      (raw.rope_scaling as RopeScaling | null | undefined) ??
      (ropeParameters?.rope_type && ropeParameters.rope_type !== "default" ? ropeParameters : null),
    maxPositions: num(raw, "max_position_embeddings", 2048),
    tied: (raw.tie_word_embeddings as boolean | undefined) ?? false, // the default of all three configs
    // Only Llama's config has attention_bias / mlp_bias; Qwen2 always has q/k/v biases.
    qkvBias: arch === "qwen2" || (arch === "llama" && raw.attention_bias === true),
    oBias: arch === "llama" && raw.attention_bias === true,
    mlpBias: arch === "llama" && raw.mlp_bias === true,
    // MistralConfig's default window is 4096 when the field is absent.
    slidingWindow: useWindow
      ? ((raw.sliding_window as number | null | undefined) ??
        (arch === "mistral" && !("sliding_window" in raw) ? 4096 : null))
      : null,
    attentionDropout: num(raw, "attention_dropout", 0),
    slidingLayers,
    qkNorm: false,
  };
}

class Attention extends Module {
  readonly q: Linear;
  readonly k: Linear;
  readonly v: Linear;
  readonly o: Linear;
  readonly qNorm: RMSNorm | null = null;
  readonly kNorm: RMSNorm | null = null;
  constructor(
    readonly c: LlamaConfig,
    readonly layer: number,
    init: Init,
  ) {
    super();
    this.q = this.module("q_proj", new Linear(c.hidden, c.heads * c.headDim, c.qkvBias, init));
    this.k = this.module("k_proj", new Linear(c.hidden, c.kvHeads * c.headDim, c.qkvBias, init));
    this.v = this.module("v_proj", new Linear(c.hidden, c.kvHeads * c.headDim, c.qkvBias, init));
    this.o = this.module("o_proj", new Linear(c.heads * c.headDim, c.hidden, c.oBias, init));
    if (c.qkNorm) {
      this.qNorm = this.module("q_norm", new RMSNorm(c.headDim, c.eps, init));
      this.kNorm = this.module("k_norm", new RMSNorm(c.headDim, c.eps, init));
    }
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
    const { heads, kvHeads, headDim } = this.c;
    const perHead = (y: torch.Tensor, n: number, norm: RMSNorm | null) => {
      const h = y.view(b, t, n, headDim); // [B, T, n, D]
      return (norm ? norm.forward(h) : h).transpose(1, 2); // [B, n, T, D]
    };
    const q = applyRope(perHead(this.q.forward(x), heads, this.qNorm), cos, sin); // [B, H, T, D]
    const k0 = applyRope(perHead(this.k.forward(x), kvHeads, this.kNorm), cos, sin); // [B, Hkv, T, D]
    const v0 = this.v.forward(x).view(b, t, kvHeads, headDim).transpose(1, 2); // [B, Hkv, T, D]
    const [k, v] = cache ? cache.update(this.layer, k0, v0) : [k0, v0]; // [B, Hkv, past + T, D]
    const dropoutP = this.training ? this.c.attentionDropout : 0;
    if (t === 1 && heads !== kvHeads && dropoutP === 0) {
      // One new token per row (a decoding step): the query heads that share a key/value head
      // attend it together as a group of queries, [B, Hkv, G, D], instead of the keys and values
      // being copied out to every head (repeatKv copies the whole cache each step). Head h is
      // group member h % G of key/value head h / G, as repeatKv orders them. The single query
      // sees every cached key, so only the given mask (padding, window) applies. Not with
      // attention dropout, whose draws would then differ from the path below.
      const group = heads / kvHeads;
      const grouped = q.reshape(b, kvHeads, group, headDim); // [B, Hkv, G, D]
      const y = torch.scaledDotProductAttention(grouped, k, v, { attnMask: mask, isCausal: false, dropoutP });
      return this.o.forward(y.reshape(b, 1, heads * headDim)); // [B, Hkv, G, D] -> [B, 1, C]
    }
    // Grouped-query attention: each key/value head serves heads / kvHeads query heads.
    const y = torch.scaledDotProductAttention(q, repeatKv(k, heads / kvHeads), repeatKv(v, heads / kvHeads), {
      attnMask: mask,
      isCausal: mask === null,
      dropoutP,
    }); // [B, H, T, D]
    return this.o.forward(y.transpose(1, 2).reshape(b, t, heads * headDim)); // [B, T, C]
  }
}

class MLP extends Module {
  readonly gate: Linear;
  readonly up: Linear;
  readonly down: Linear;
  constructor(c: LlamaConfig, init: Init) {
    super();
    this.gate = this.module("gate_proj", new Linear(c.hidden, c.intermediate, c.mlpBias, init));
    this.up = this.module("up_proj", new Linear(c.hidden, c.intermediate, c.mlpBias, init));
    this.down = this.module("down_proj", new Linear(c.intermediate, c.hidden, c.mlpBias, init));
  }
  forward(x: torch.Tensor): torch.Tensor {
    return this.down.forward(this.gate.forward(x).silu().mul(this.up.forward(x)));
  }
}

class LlamaDecoderLayer extends Module implements DecoderLayer<RotaryStep> {
  readonly attentionWindow: number | null;
  readonly inputNorm: RMSNorm;
  readonly attn: Attention;
  readonly postNorm: RMSNorm;
  readonly mlp: MLP;
  constructor(c: LlamaConfig, layer: number, init: Init) {
    super();
    this.attentionWindow = c.slidingLayers[layer] ? c.slidingWindow : null;
    this.inputNorm = this.module("input_layernorm", new RMSNorm(c.hidden, c.eps, init));
    this.attn = this.module("self_attn", new Attention(c, layer, init));
    this.postNorm = this.module("post_attention_layernorm", new RMSNorm(c.hidden, c.eps, init));
    this.mlp = this.module("mlp", new MLP(c, init));
  }
  forward(x: torch.Tensor, step: RotaryStep): torch.Tensor {
    const h = x.add(
      this.attn.forward(this.inputNorm.forward(x), step.cos, step.sin, step.mask(this.attentionWindow), step.cache),
    );
    return h.add(this.mlp.forward(this.postNorm.forward(h)));
  }
}

class Decoder extends Module {
  readonly embed: Embedding;
  readonly layers: LlamaDecoderLayer[];
  readonly norm: RMSNorm;
  constructor(c: LlamaConfig, init: Init) {
    super();
    this.embed = this.module("embed_tokens", new Embedding(c.vocabSize, c.hidden, init));
    this.layers = this.module(
      "layers",
      new ModuleList(Array.from({ length: c.layers }, (_, i) => new LlamaDecoderLayer(c, i, init))),
    ).items;
    this.norm = this.module("norm", new RMSNorm(c.hidden, c.eps, init));
  }
}

export class LlamaForCausalLM extends DecoderLM<RotaryStep> {
  readonly architecture: string = "llama";
  readonly model: Decoder;
  readonly lmHead: Linear | null;
  #inverseFrequencies: torch.Tensor;

  constructor(
    readonly config: RawConfig,
    readonly c: LlamaConfig = llamaConfig(config, "llama"),
    init: Init = {},
  ) {
    super();
    this.model = this.module("model", new Decoder(c, init));
    this.lmHead = c.tied ? null : this.module("lm_head", new Linear(c.hidden, c.vocabSize, false, init));
    this.#inverseFrequencies = ropeInverseFrequencies(c.headDim, c.ropeTheta, c.ropeScaling).keep();
  }

  get vocabSize(): number {
    return this.c.vocabSize;
  }
  get maxPositions(): number {
    return this.c.maxPositions;
  }
  /** The rotary inverse frequencies [D/2], float32, on the model's device. */
  protected get inverseFrequencies(): torch.Tensor {
    return this.#inverseFrequencies;
  }
  protected get decoderLayers(): readonly LlamaDecoderLayer[] {
    return this.model.layers;
  }

  protected embed(inputIds: torch.Tensor, _step?: DecoderStep, _options?: HiddenStatesOptions): torch.Tensor {
    return this.model.embed.forward(inputIds); // [B, T, C]
  }

  /** cos and sin [B, 1, T, D] for the step's positions, once for all layers. */
  protected override prepare(
    step: DecoderStep,
    hidden: torch.Tensor,
    _inputIds?: torch.Tensor,
    _options?: HiddenStatesOptions,
  ): RotaryStep {
    const [cos, sin] = ropeCosSin(this.#inverseFrequencies, step.positions, hidden.dtype);
    return { ...step, cos, sin };
  }

  finalNorm(hidden: torch.Tensor): torch.Tensor {
    return this.model.norm.forward(hidden);
  }

  protected head(hidden: torch.Tensor): torch.Tensor {
    const h = this.finalNorm(hidden);
    return this.lmHead ? this.lmHead.forward(h) : linear(h, this.model.embed.weight, null);
  }

  /**
   * Moves the parameters and the rotary frequencies. The frequencies follow the device only:
   * they stay float32 (as transformers computes them), and ropeCosSin casts cos/sin to the
   * hidden states' dtype.
   */
  override to(target: ModuleTarget): this {
    super.to(target);
    if (this.#inverseFrequencies.device !== this.device) {
      const moved = this.#inverseFrequencies.to({ device: this.device }).keep();
      this.#inverseFrequencies.dispose();
      this.#inverseFrequencies = moved;
    }
    return this;
  }

  override dispose(): void {
    super.dispose();
    this.#inverseFrequencies.dispose();
  }
}

export class Qwen2ForCausalLM extends LlamaForCausalLM {
  override readonly architecture: string = "qwen2";
  constructor(config: RawConfig, c: LlamaConfig = llamaConfig(config, "qwen2"), init: Init = {}) {
    super(config, c, init);
  }
}

export class MistralForCausalLM extends LlamaForCausalLM {
  override readonly architecture: string = "mistral";
  constructor(config: RawConfig, c: LlamaConfig = llamaConfig(config, "mistral"), init: Init = {}) {
    super(config, c, init);
  }
}

/**
 * The declarations of a Llama-like architecture (class names from transformers' `prefix`):
 * names config.json answers to, class, config parser, checkpoint rules.
 */
export function familySpec(
  name: string,
  prefix: string,
  model: ArchitectureSpec<LlamaConfig>["model"],
  parseConfig: (raw: RawConfig) => LlamaConfig,
): ArchitectureSpec<LlamaConfig> {
  return {
    name,
    architectures: [`${prefix}ForCausalLM`],
    sequenceClassifiers: [`${prefix}ForSequenceClassification`],
    modelTypes: [name],
    parseConfig,
    model,
    // PEFT's default for llama, mistral, qwen2 and qwen3 alike.
    loraTargetModules: ["q_proj", "v_proj"],
    tiedWeights: (c): Record<string, string> => (c.tied ? { "lm_head.weight": "model.embed_tokens.weight" } : {}),
    // Older checkpoints store the rotary frequencies, which are computed from the config here.
    ignoredCheckpointNames: /\.rotary_emb\.inv_freq$/,
  };
}

export const LLAMA = familySpec("llama", "Llama", LlamaForCausalLM, (raw) => llamaConfig(raw, "llama"));
export const QWEN2 = familySpec("qwen2", "Qwen2", Qwen2ForCausalLM, (raw) => llamaConfig(raw, "qwen2"));
export const MISTRAL = familySpec("mistral", "Mistral", MistralForCausalLM, (raw) => llamaConfig(raw, "mistral"));
