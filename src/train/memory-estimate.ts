// Per-device memory of a training run before it starts, as DeepSpeed's estimate_zero*_model_states
// functions answer it, but for this trainer: what one rank holds at its peak (the end of
// backward) for the weights, the gradients and AdamW's state at each zero_stage, plus an
// estimate of the activations. The parameter count comes from config.json alone (the model's
// Linear layers, embeddings and norms, per architecture), so a 9B model is sized without
// allocating it.
//
// What each stage keeps per rank (N ranks, P trainable parameters of b bytes each):
//   stage 0 (DDP): weights, gradients P x b and, with several ranks, DDP's gradient buckets
//            (the flat copies the all-reduce runs on, kept from step to step: P x b more),
//            AdamW's two moments 2 P x b;
//   stage 1: the moments / N (the buckets stay);
//   stage 2: the gradients / N: each bucket of gradients is reduced to its owner as soon as
//            backward has made it final, and the others drop it; what is not final yet (about
//            one decoder layer's, and the embeddings', final only at the end) comes on top;
//   stage 3: the trainable weights / N too, plus what is gathered at the peak: with gradient
//            checkpointing one decoder layer's and the embeddings' and head's (the rest of
//            their weights, owned by other ranks), without it all of them (autograd keeps
//            every layer's for backward). LoRA's frozen base stays whole on every rank.
// Activations are an estimate (saved tensors per layer and token, the LM head's chunk), not exact.
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import type { RawConfig } from "../models/config.js";
import { resolveArchitecture } from "../models/registry.js";

/** One Linear layer of a decoder layer: its module name, fan-in, fan-out, and whether it has a bias. */
interface LinearShape {
  name: string;
  in: number;
  out: number;
  bias: boolean;
}

/** A model's parameters by kind, from config.json. */
export interface ModelShape {
  architecture: string;
  layers: number;
  hidden: number;
  intermediate: number;
  heads: number;
  vocab: number;
  /** Each decoder layer's Linear layers. */
  linears: LinearShape[];
  /** Each decoder layer's other parameters (norms; GPT-2's LayerNorm biases). */
  layerOther: number;
  /** Embeddings (tokens, GPT-2's positions), the final norm, and the LM head unless tied. */
  outside: number;
}

/** Every parameter of the model. */
export function parameterCount(s: ModelShape): number {
  const perLayer = s.linears.reduce((n, l) => n + l.in * l.out + (l.bias ? l.out : 0), 0) + s.layerOther;
  return s.layers * perLayer + s.outside;
}

/**
 * LoRA's adapter parameters: r x (in + out) for each targeted Linear of every layer (a target
 * names a layer, or the end of its dotted name, as PEFT matches target_modules).
 */
export function loraParameterCount(s: ModelShape, r: number, targets: readonly string[] | "all-linear"): number {
  const named = (l: LinearShape, t: string) => l.name === t || l.name.endsWith(`.${t}`);
  const chosen = s.linears.filter((l) => targets === "all-linear" || targets.some((t) => named(l, t)));
  if (chosen.length === 0) {
    throw new Error(
      `--lora-targets: none of ${(targets as string[]).join(", ")} is a layer of ${s.architecture} ` +
        `(its layers: ${s.linears.map((l) => l.name).join(", ")})`,
    );
  }
  return s.layers * chosen.reduce((n, l) => n + r * (l.in + l.out), 0);
}

/** The model's shape from its config.json (as parsed by its architecture, with transformers' defaults). */
export function modelShape(raw: RawConfig, where = "config.json"): ModelShape {
  const spec = resolveArchitecture(raw, where);
  const c = spec.parseConfig(raw) as Record<string, number | boolean>;
  const n = (k: string) => c[k] as number;
  if (spec.name === "gpt2") {
    const [e, inner, v] = [n("nEmbd"), n("nInner"), n("vocabSize")];
    return {
      architecture: spec.name,
      layers: n("nLayer"),
      hidden: e,
      intermediate: inner,
      heads: n("nHead"),
      vocab: v,
      linears: [
        { name: "attn.c_attn", in: e, out: 3 * e, bias: true },
        { name: "attn.c_proj", in: e, out: e, bias: true },
        { name: "mlp.c_fc", in: e, out: inner, bias: true },
        { name: "mlp.c_proj", in: inner, out: e, bias: true },
      ],
      layerOther: 4 * e, // two LayerNorms, weight and bias
      outside: v * e + n("nPositions") * e + 2 * e + (c.tied ? 0 : v * e),
    };
  }
  const [h, inter, heads, kv, d, v] = [
    n("hidden"),
    n("intermediate"),
    n("heads"),
    n("kvHeads"),
    n("headDim"),
    n("vocabSize"),
  ];
  const gemma = spec.name.startsWith("gemma");
  const qkvBias = gemma ? c.attentionBias === true : c.qkvBias === true;
  const oBias = gemma ? c.attentionBias === true : c.oBias === true;
  const mlpBias = !gemma && c.mlpBias === true;
  const attention: LinearShape[] =
    spec.name === "phi3"
      ? [
          { name: "qkv_proj", in: h, out: (heads + 2 * kv) * d, bias: false },
          { name: "o_proj", in: heads * d, out: h, bias: false },
        ]
      : [
          { name: "q_proj", in: h, out: heads * d, bias: qkvBias },
          { name: "k_proj", in: h, out: kv * d, bias: qkvBias },
          { name: "v_proj", in: h, out: kv * d, bias: qkvBias },
          { name: "o_proj", in: heads * d, out: h, bias: oBias },
        ];
  const mlp: LinearShape[] =
    spec.name === "phi3"
      ? [
          { name: "gate_up_proj", in: h, out: 2 * inter, bias: false },
          { name: "down_proj", in: inter, out: h, bias: false },
        ]
      : [
          { name: "gate_proj", in: h, out: inter, bias: mlpBias },
          { name: "up_proj", in: h, out: inter, bias: mlpBias },
          { name: "down_proj", in: inter, out: h, bias: mlpBias },
        ];
  // Norms: two per layer (Gemma four), Qwen3's and Gemma 3's per-head q_norm and k_norm.
  const layerOther = (gemma ? 4 : 2) * h + (c.qkNorm === true ? 2 * d : 0);
  return {
    architecture: spec.name,
    layers: n("layers"),
    hidden: h,
    intermediate: inter,
    heads,
    vocab: v,
    linears: [...attention, ...mlp],
    layerOther,
    outside: v * h + h + (c.tied ? 0 : v * h),
  };
}

/** config.json of a model directory, or a config file itself. */
export function readModelConfig(path: string): RawConfig {
  const file = statSync(path, { throwIfNoEntry: false })?.isDirectory() ? join(path, "config.json") : path;
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    throw new Error(
      `${file}: cannot read the model's config (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
      {
        cause: e,
      },
    );
  }
  try {
    const raw = JSON.parse(text) as unknown;
    if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw new Error("not a JSON object");
    return raw as RawConfig;
  } catch (e) {
    throw new Error(`${file}: not a model config (${(e as Error).message})`, { cause: e });
  }
}

export interface MemoryEstimateOptions {
  zeroStage: number;
  worldSize: number;
  /** torch_dtype: the weights' (and full fine-tuning's gradients' and moments') dtype. */
  dtype: "float32" | "bfloat16" | "float16" | "float64";
  /** bf16: true (autocast): the activations are bf16; the weights stay `dtype`. */
  bf16: boolean;
  /** LoRA adapters (float32, as PEFT makes them) instead of full fine-tuning. */
  lora: { r: number; targets: readonly string[] | "all-linear" } | null;
  gradientCheckpointing: boolean;
  /** Tokens per sequence and pairs per device (each pair is two sequences: chosen and rejected). */
  seq: number;
  batch: number;
}

export interface MemoryEstimate {
  parameters: number;
  trainableParameters: number;
  per_device_bytes: { weights: number; gradients: number; optimizer: number; activations: number; total: number };
  /** What a rank holds of the gradients (buckets included) between their reduction and the step (stage 2: its shard). */
  gradients_after_reduce_bytes: number;
  /** What a rank holds of the weights between steps (stage 3: its shard of the trainable ones, and the frozen ones). */
  weights_between_steps_bytes: number;
}

const BYTES = { float64: 8, float32: 4, bfloat16: 2, float16: 2 } as const;
/** The stages this trainer has (zero_stage's values). */
export const ZERO_STAGES = [0, 1, 2, 3] as const;
/** The LM head's logits are computed (and recomputed in backward) in chunks of this many tokens. */
const LOGIT_CHUNK_TOKENS = 1024;

/** Per-device bytes of a run of the model `shape` with `o`'s settings. */
export function estimateMemory(shape: ModelShape, o: MemoryEstimateOptions): MemoryEstimate {
  if (!(ZERO_STAGES as readonly number[]).includes(o.zeroStage)) {
    throw new Error(`--zero-stage ${o.zeroStage}: this trainer has stages ${ZERO_STAGES.join(", ")}`);
  }
  if (!Number.isInteger(o.worldSize) || o.worldSize < 1)
    throw new Error(`--world-size must be a positive integer, not ${o.worldSize}`);
  const total = parameterCount(shape);
  const adapters = o.lora ? loraParameterCount(shape, o.lora.r, o.lora.targets) : 0;
  const trainable = o.lora ? adapters : total;
  const weightBytes = BYTES[o.dtype];
  const trainableBytes = o.lora ? 4 : weightBytes;
  const shards = o.worldSize;
  const allWeights = total * weightBytes + adapters * 4;
  const sharded = (bytes: number) => Math.ceil(bytes / shards);
  // DDP's buckets (stages 0 and 1 with several ranks) double the gradients' bytes; stage 2
  // holds its shard plus what backward has not made final yet: one layer's and the embeddings'.
  const perLayer = o.lora ? adapters / shape.layers : (total - shape.outside) / shape.layers;
  const unreduced = (perLayer + (o.lora ? 0 : shape.outside)) * trainableBytes;
  const buckets = o.zeroStage <= 1 && o.worldSize > 1 ? trainable * trainableBytes : 0;
  const gradients =
    o.zeroStage >= 2 && o.worldSize > 1
      ? Math.min(trainable * trainableBytes, sharded(trainable * trainableBytes) + unreduced)
      : trainable * trainableBytes + buckets;
  const optimizer = o.zeroStage >= 1 ? sharded(2 * trainable * trainableBytes) : 2 * trainable * trainableBytes;
  // Stage 3: each rank owns 1/N of the trainable weights; at the peak the others' share of what
  // is gathered (one layer and the outer weights with checkpointing, else every layer) is added.
  const stage3 = o.zeroStage >= 3 && o.worldSize > 1;
  const trainableWeights = trainable * trainableBytes;
  const betweenSteps = stage3 ? allWeights - trainableWeights + sharded(trainableWeights) : allWeights;
  const gathered = o.gradientCheckpointing
    ? (perLayer + (o.lora ? 0 : shape.outside)) * trainableBytes
    : trainableWeights;
  const weights = stage3
    ? Math.min(allWeights, betweenSteps + Math.ceil((gathered * (shards - 1)) / shards))
    : allWeights;
  const activations = activationBytes(shape, o);
  return {
    parameters: total,
    trainableParameters: trainable,
    per_device_bytes: {
      weights,
      gradients,
      optimizer,
      activations,
      total: weights + gradients + optimizer + activations,
    },
    gradients_after_reduce_bytes: o.zeroStage >= 2 ? sharded(trainable * trainableBytes) : gradients,
    weights_between_steps_bytes: betweenSteps,
  };
}

/**
 * Saved activations, estimated: per decoder layer and token about 10 hidden-sized tensors (the
 * norms' inputs and outputs, q, k, v, the attention's output, the residuals) and 4
 * intermediate-sized ones (gate, up, the activation, their product), plus the attention
 * weights (heads x sequence per token); with gradient checkpointing one hidden-sized input per
 * layer plus one layer's whole set while it is recomputed; plus a chunk of float32 logits.
 */
function activationBytes(s: ModelShape, o: MemoryEstimateOptions): number {
  const tokens = 2 * o.batch * o.seq; // chosen and rejected in one forward
  const bytes = o.bf16 ? 2 : BYTES[o.dtype];
  const perLayerToken = 10 * s.hidden + 4 * s.intermediate + s.heads * o.seq;
  const layers = o.gradientCheckpointing ? s.layers * s.hidden + perLayerToken : s.layers * perLayerToken;
  const logits = Math.min(tokens, LOGIT_CHUNK_TOKENS) * s.vocab * 4 * 2; // the chunk and its gradient
  return tokens * layers * bytes + logits;
}

/** Bytes as GiB with two decimals. */
export function gib(bytes: number): string {
  return `${(bytes / 2 ** 30).toFixed(2)} GiB`;
}
