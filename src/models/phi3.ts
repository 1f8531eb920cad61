// Phi-3 (Phi-3-mini/medium, Phi-3.5-mini, Phi-4-mini): the Llama block with fused projections
// (qkv_proj [(H + 2 Hkv) D, C] and gate_up_proj [2 I, C]), rotary embeddings on only the first
// partial_rotary_factor of each head, an optional sliding window on every layer, residual
// dropout (resid_pdrop), and LongRoPE (rope_scaling type "longrope", or the older "su"/"yarn"
// names): per-frequency short or long factors, chosen per forward call by whether the largest
// position reaches past original_max_position_embeddings, and cos/sin scaled by the attention
// factor. Weight names are the Hugging Face checkpoint's.
import * as torch from "../torch/index.js";
import { Module, ModuleList, type ModuleTarget } from "../nn/module.js";
import { Embedding, Linear, RMSNorm, type Init } from "../nn/layers.js";
import { linear } from "../nn/packing.js";
import { applyRope, repeatKv, ropeCosSin } from "./attention.js";
import type { KVCache } from "./cache.js";
import { num, type RawConfig } from "./config.js";
import { DecoderLM, type DecoderLayer, type DecoderStep } from "./causal-lm.js";
import type { ArchitectureSpec } from "./architecture.js";

/** LongRoPE's two frequency sets and the cos/sin scale. */
export interface LongRope {
  short: number[];
  long: number[];
  originalMax: number;
  attentionFactor: number;
}

export interface Phi3Config {
  vocabSize: number;
  hidden: number;
  intermediate: number;
  layers: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  /** The leading dimensions of each head that rotate: int(head_dim * partial_rotary_factor). */
  rotaryDim: number;
  eps: number;
  ropeTheta: number;
  longrope: LongRope | null;
  maxPositions: number;
  tied: boolean;
  slidingWindow: number | null;
  attentionDropout: number;
  residDropout: number;
}

type RopeFields = {
  rope_type?: string;
  type?: string;
  rope_theta?: number;
  partial_rotary_factor?: number;
  factor?: number;
  attention_factor?: number;
  original_max_position_embeddings?: number;
  short_factor?: unknown;
  long_factor?: unknown;
};

function factorList(v: unknown, key: string, length: number): number[] {
  if (!Array.isArray(v) || v.length !== length || !v.every((x) => typeof x === "number" && x > 0)) {
    throw new Error(
      `config.json: field rope_scaling.${key} must be a list of ${length} positive numbers (rotary dimensions / 2), got ${JSON.stringify(v)}`,
    );
  }
  return v;
}

export function phi3Config(raw: RawConfig): Phi3Config {
  const hidden = num(raw, "hidden_size");
  const heads = num(raw, "num_attention_heads");
  const act = (raw.hidden_act as string | undefined) ?? "silu";
  if (act !== "silu") throw new Error(`config.json: hidden_act '${act}' is not supported (silu only)`);
  const headDim = num(raw, "head_dim", Math.floor(hidden / heads));
  // transformers < 5 writes rope_scaling (and rope_theta beside it); 5 writes one rope_parameters.
  const rope = ((raw.rope_scaling ?? raw.rope_parameters) as RopeFields | null | undefined) ?? {};
  const partial = num(raw, "partial_rotary_factor", rope.partial_rotary_factor ?? 1);
  const rotaryDim = Math.floor(headDim * partial);
  if (!(rotaryDim >= 2 && rotaryDim % 2 === 0 && rotaryDim <= headDim)) {
    throw new Error(
      `config.json: field partial_rotary_factor ${partial} gives ${rotaryDim} rotary dimensions of head_dim ${headDim}; it must be an even number from 2 to head_dim`,
    );
  }
  const maxPositions = num(raw, "max_position_embeddings", 4096);
  let type = rope.rope_type ?? rope.type ?? "default";
  if (type === "su" || type === "yarn") type = "longrope"; // Phi3Config's older names for it
  let longrope: LongRope | null = null;
  if (type === "longrope") {
    const originalMax = rope.original_max_position_embeddings ?? num(raw, "original_max_position_embeddings", 4096);
    const factor = rope.factor ?? maxPositions / originalMax;
    longrope = {
      short: factorList(rope.short_factor, "short_factor", rotaryDim / 2),
      long: factorList(rope.long_factor, "long_factor", rotaryDim / 2),
      originalMax,
      attentionFactor:
        rope.attention_factor ?? (factor <= 1 ? 1 : Math.sqrt(1 + Math.log(factor) / Math.log(originalMax))),
    };
  } else if (type !== "default") {
    throw new Error(
      `config.json: field rope_scaling.rope_type '${type}' is not supported for Phi-3 (default or longrope)`,
    );
  }
  return {
    vocabSize: num(raw, "vocab_size"),
    hidden,
    intermediate: num(raw, "intermediate_size"),
    layers: num(raw, "num_hidden_layers"),
    heads,
    kvHeads: num(raw, "num_key_value_heads", heads),
    headDim,
    rotaryDim,
    eps: num(raw, "rms_norm_eps", 1e-5),
    ropeTheta: num(raw, "rope_theta", rope.rope_theta ?? 10000),
    longrope,
    maxPositions,
    tied: (raw.tie_word_embeddings as boolean | undefined) ?? false,
    slidingWindow: (raw.sliding_window as number | null | undefined) ?? null,
    attentionDropout: num(raw, "attention_dropout", 0),
    residDropout: num(raw, "resid_pdrop", 0),
  };
}

/** Inverse frequencies [rotaryDim / 2]: 1 / (factor_i * theta^(2i / rotaryDim)), factors 1 without LongRoPE. */
function inverseFrequencies(c: Phi3Config, factors: number[] | null): torch.Tensor {
  const half = c.rotaryDim / 2;
  const inv = Float32Array.from(
    { length: half },
    (_, i) => 1 / ((factors?.[i] ?? 1) * c.ropeTheta ** ((2 * i) / c.rotaryDim)),
  );
  return torch.tensor(inv);
}

/** What every layer of one forward call shares: the step, and the rotary cos/sin [B, 1, T, rotaryDim]. */
interface RotaryStep extends DecoderStep {
  readonly cos: torch.Tensor;
  readonly sin: torch.Tensor;
}

class Attention extends Module {
  readonly qkv: Linear;
  readonly o: Linear;
  constructor(
    readonly c: Phi3Config,
    readonly layer: number,
    init: Init,
  ) {
    super();
    this.qkv = this.module("qkv_proj", new Linear(c.hidden, (c.heads + 2 * c.kvHeads) * c.headDim, false, init));
    this.o = this.module("o_proj", new Linear(c.heads * c.headDim, c.hidden, false, init));
  }
  /** Rotates the first rotaryDim dimensions of each head [B, n, T, D] and passes the rest through. */
  #rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor): torch.Tensor {
    const { headDim, rotaryDim } = this.c;
    if (rotaryDim === headDim) return applyRope(x, cos, sin);
    const [rotated, passed] = x.split([rotaryDim, headDim - rotaryDim], -1);
    return torch.cat([applyRope(rotated, cos, sin), passed], -1);
  }
  /** x [B, T, C] -> [B, T, C]; mask [B, 1, T, past + T] or null (causal). */
  forward(
    x: torch.Tensor,
    cos: torch.Tensor,
    sin: torch.Tensor,
    mask: torch.Tensor | null,
    cache?: KVCache,
  ): torch.Tensor {
    const [b, t] = x.shape;
    const { heads, kvHeads, headDim } = this.c;
    const [q0, k0, v0] = this.qkv.forward(x).split([heads * headDim, kvHeads * headDim, kvHeads * headDim], -1);
    const q = this.#rope(q0.reshape(b, t, heads, headDim).transpose(1, 2), cos, sin); // [B, H, T, D]
    const k1 = this.#rope(k0.reshape(b, t, kvHeads, headDim).transpose(1, 2), cos, sin); // [B, Hkv, T, D]
    const v1 = v0.reshape(b, t, kvHeads, headDim).transpose(1, 2); // [B, Hkv, T, D]
    const [k, v] = cache ? cache.update(this.layer, k1, v1) : [k1, v1]; // [B, Hkv, past + T, D]
    const y = torch.scaledDotProductAttention(q, repeatKv(k, heads / kvHeads), repeatKv(v, heads / kvHeads), {
      attnMask: mask,
      isCausal: mask === null,
      dropoutP: this.training ? this.c.attentionDropout : 0,
    }); // [B, H, T, D]
    return this.o.forward(y.transpose(1, 2).reshape(b, t, heads * headDim)); // [B, T, C]
  }
}

class MLP extends Module {
  readonly gateUp: Linear;
  readonly down: Linear;
  constructor(
    readonly c: Phi3Config,
    init: Init,
  ) {
    super();
    this.gateUp = this.module("gate_up_proj", new Linear(c.hidden, 2 * c.intermediate, false, init));
    this.down = this.module("down_proj", new Linear(c.intermediate, c.hidden, false, init));
  }
  forward(x: torch.Tensor): torch.Tensor {
    const [gate, up] = this.gateUp.forward(x).split(this.c.intermediate, -1); // [B, T, I] each
    return this.down.forward(up.mul(gate.silu()));
  }
}

class Phi3DecoderLayer extends Module implements DecoderLayer<RotaryStep> {
  readonly attentionWindow: number | null;
  readonly inputNorm: RMSNorm;
  readonly attn: Attention;
  readonly postNorm: RMSNorm;
  readonly mlp: MLP;
  constructor(
    readonly c: Phi3Config,
    layer: number,
    init: Init,
  ) {
    super();
    this.attentionWindow = c.slidingWindow;
    this.inputNorm = this.module("input_layernorm", new RMSNorm(c.hidden, c.eps, init));
    this.attn = this.module("self_attn", new Attention(c, layer, init));
    this.postNorm = this.module("post_attention_layernorm", new RMSNorm(c.hidden, c.eps, init));
    this.mlp = this.module("mlp", new MLP(c, init));
  }
  forward(x: torch.Tensor, step: RotaryStep): torch.Tensor {
    const dropout = (y: torch.Tensor) =>
      this.training && this.c.residDropout > 0 ? torch.dropout(y, this.c.residDropout, true) : y;
    const h = x.add(
      dropout(
        this.attn.forward(this.inputNorm.forward(x), step.cos, step.sin, step.mask(this.attentionWindow), step.cache),
      ),
    );
    return h.add(dropout(this.mlp.forward(this.postNorm.forward(h))));
  }
}

class Decoder extends Module {
  readonly embed: Embedding;
  readonly layers: Phi3DecoderLayer[];
  readonly norm: RMSNorm;
  constructor(c: Phi3Config, init: Init) {
    super();
    this.embed = this.module("embed_tokens", new Embedding(c.vocabSize, c.hidden, init));
    this.layers = this.module(
      "layers",
      new ModuleList(Array.from({ length: c.layers }, (_, i) => new Phi3DecoderLayer(c, i, init))),
    ).items;
    this.norm = this.module("norm", new RMSNorm(c.hidden, c.eps, init));
  }
}

export class Phi3ForCausalLM extends DecoderLM<RotaryStep> {
  readonly architecture: string = "phi3";
  readonly model: Decoder;
  readonly lmHead: Linear | null;
  /** Inverse frequencies: the short (or only) set, and LongRoPE's long one (float32, on the model's device). */
  #frequencies: { short: torch.Tensor; long: torch.Tensor | null };

  constructor(
    readonly config: RawConfig,
    readonly c: Phi3Config = phi3Config(config),
    init: Init = {},
  ) {
    super();
    this.model = this.module("model", new Decoder(c, init));
    this.lmHead = c.tied ? null : this.module("lm_head", new Linear(c.hidden, c.vocabSize, false, init));
    this.#frequencies = {
      short: inverseFrequencies(c, c.longrope?.short ?? null).keep(),
      long: c.longrope ? inverseFrequencies(c, c.longrope.long).keep() : null,
    };
  }

  get vocabSize(): number {
    return this.c.vocabSize;
  }
  get maxPositions(): number {
    return this.c.maxPositions;
  }
  protected get decoderLayers(): readonly Phi3DecoderLayer[] {
    return this.model.layers;
  }

  protected embed(inputIds: torch.Tensor): torch.Tensor {
    return this.model.embed.forward(inputIds); // [B, T, C]
  }

  /**
   * cos and sin [B, 1, T, rotaryDim] for the step's positions. LongRoPE, as transformers: the
   * long factors when this call's largest position + 1 exceeds original_max_position_embeddings.
   * A cache filled within the original context holds keys rotated with the short factors;
   * transformers recomputes it at the switch, so reusing it here would differ: refused.
   */
  protected override prepare(step: DecoderStep, hidden: torch.Tensor): RotaryStep {
    const { longrope } = this.c;
    const reach = longrope ? step.positions.max().item() + 1 : 0;
    const long = longrope !== null && reach > longrope.originalMax;
    if (long && step.past > 0 && step.past <= longrope.originalMax) {
      throw new Error(
        `LongRoPE: this step reaches position ${reach}, past original_max_position_embeddings ${longrope.originalMax}, ` +
          `with ${step.past} cached positions rotated by the short factors; run it without the KV cache (generate's useCache: false) or prefill past the original context`,
      );
    }
    const frequencies = long ? this.#frequencies.long! : this.#frequencies.short;
    const [cos, sin] = ropeCosSin(frequencies, step.positions, hidden.dtype, longrope?.attentionFactor ?? 1);
    return { ...step, cos, sin };
  }

  finalNorm(hidden: torch.Tensor): torch.Tensor {
    return this.model.norm.forward(hidden);
  }

  protected head(hidden: torch.Tensor): torch.Tensor {
    const h = this.finalNorm(hidden);
    return this.lmHead ? this.lmHead.forward(h) : linear(h, this.model.embed.weight, null);
  }

  /** Moves the parameters; the frequencies follow the device only (they stay float32). */
  override to(target: ModuleTarget): this {
    super.to(target);
    const move = (t: torch.Tensor) => {
      if (t.device === this.device) return t;
      const moved = t.to({ device: this.device }).keep();
      t.dispose();
      return moved;
    };
    this.#frequencies = {
      short: move(this.#frequencies.short),
      long: this.#frequencies.long && move(this.#frequencies.long),
    };
    return this;
  }

  override dispose(): void {
    super.dispose();
    this.#frequencies.short.dispose();
    this.#frequencies.long?.dispose();
  }
}

export const PHI3: ArchitectureSpec<Phi3Config> = {
  name: "phi3",
  architectures: ["Phi3ForCausalLM"],
  sequenceClassifiers: ["Phi3ForSequenceClassification"],
  modelTypes: ["phi3"],
  parseConfig: phi3Config,
  model: Phi3ForCausalLM,
  // PEFT's mapping has no phi3 entry (it asks for the list); the fused attention projection,
  // as GPT-2's c_attn, is this project's default.
  loraTargetModules: ["qkv_proj"],
  tiedWeights: (c): Record<string, string> => (c.tied ? { "lm_head.weight": "model.embed_tokens.weight" } : {}),
  ignoredCheckpointNames: /\.rotary_emb\.(inv_freq|long_inv_freq|original_inv_freq)$/,
};
