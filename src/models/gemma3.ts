// Gemma 3's text model (Gemma3ForCausalLM, model_type gemma3_text: Gemma-3-270M/1B, and the
// text towers' checkpoints), on Gemma 2's decoder (gemma2.ts) with what modeling_gemma3.py
// changes: q_norm and k_norm (Gemma RMSNorm per head, before RoPE); five sliding ("local")
// layers to one global by default (sliding_window_pattern 6, or layer_types); local layers
// rotate with rope_local_base_freq (10000) and no scaling, global ones with rope_theta (1e6)
// and rope_scaling; no attention soft-capping by default, final_logit_softcapping optional.
import type { RopeScaling } from "./attention.js";
import { num, type RawConfig } from "./config.js";
import {
  Gemma2ForCausalLM,
  gemmaCommonConfig,
  gemmaSlidingLayers,
  gemmaSpec,
  optionalPositive,
  type GemmaConfig,
  type GemmaRope,
} from "./gemma2.js";
import type { Init } from "../nn/layers.js";

/** The rope_scaling types Gemma 3's global layers may use here. */
const SCALINGS = ["default", "linear"];

function checkedScaling(scaling: RopeScaling | null | undefined, field: string): RopeScaling | null {
  if (scaling === null || scaling === undefined) return null;
  if (typeof scaling !== "object")
    throw new Error(`config.json: field ${field} must be an object or null, got ${JSON.stringify(scaling)}`);
  const kind = scaling.rope_type ?? scaling.type ?? "default";
  if (!SCALINGS.includes(kind))
    throw new Error(
      `config.json: field ${field}: rope type '${kind}' is not supported for gemma3_text (supported: ${SCALINGS.join(", ")})`,
    );
  if (kind === "linear" && !(typeof scaling.factor === "number" && scaling.factor > 0)) {
    throw new Error(
      `config.json: field ${field}: linear scaling needs a positive factor, got ${JSON.stringify(scaling.factor)}`,
    );
  }
  return kind === "default" ? null : scaling;
}

type LayerRope = RopeScaling & { rope_theta?: number };

export function gemma3TextConfig(raw: RawConfig): GemmaConfig {
  const common = gemmaCommonConfig(raw, 131072);
  // transformers 5 writes one rope_parameters entry per layer type; older configs write
  // rope_theta, rope_scaling (global layers) and rope_local_base_freq.
  const params = raw.rope_parameters as
    { full_attention?: LayerRope; sliding_attention?: LayerRope } | null | undefined;
  const perType = params && typeof params === "object" && ("full_attention" in params || "sliding_attention" in params);
  const globalRope: GemmaRope = perType
    ? {
        theta: params!.full_attention?.rope_theta ?? 1e6,
        scaling: checkedScaling(params!.full_attention, "rope_parameters.full_attention"),
      }
    : {
        theta: num(raw, "rope_theta", 1e6),
        scaling: checkedScaling(raw.rope_scaling as RopeScaling | null | undefined, "rope_scaling"),
      };
  const localRope: GemmaRope = perType
    ? {
        theta: params!.sliding_attention?.rope_theta ?? 10000,
        scaling: checkedScaling(params!.sliding_attention, "rope_parameters.sliding_attention"),
      }
    : { theta: num(raw, "rope_local_base_freq", 10000), scaling: null };
  const pattern = num(raw, "sliding_window_pattern", 6);
  if (!Number.isInteger(pattern) || pattern < 1)
    throw new Error(`config.json: field sliding_window_pattern must be a positive whole number, got ${pattern}`);
  return {
    ...common,
    attentionSoftcap: optionalPositive(raw, "attn_logit_softcapping", null),
    finalSoftcap: optionalPositive(raw, "final_logit_softcapping", null),
    slidingLayers: gemmaSlidingLayers(raw, common.layers, pattern),
    globalRope,
    localRope,
    qkNorm: true,
  };
}

export class Gemma3ForCausalLM extends Gemma2ForCausalLM {
  override readonly architecture: string = "gemma3_text";
  constructor(config: RawConfig, c: GemmaConfig = gemma3TextConfig(config), init: Init = {}) {
    super(config, c, init);
  }
}

export const GEMMA3_TEXT = gemmaSpec(
  "gemma3_text",
  "Gemma3ForCausalLM",
  "gemma3_text",
  gemma3TextConfig,
  Gemma3ForCausalLM,
);
