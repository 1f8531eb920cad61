// Tiny Gemma 2 and Gemma 3 text configs for the model tests, each switching on what sets the
// architecture apart at a size where it shows: soft-capping with small caps, a sliding window
// shorter than the test sequences, GQA, head_dim != hidden / heads, query_pre_attn_scalar !=
// head_dim; Gemma 3's local/global rotary bases, linear rope scaling, transformers 5's
// rope_parameters. And a random model of one (every parameter random, norms included).
import { torch, createModel, type CausalLM } from "../../src/index.js";
import type { RawConfig } from "../../src/models/config.js";

const base = {
  vocab_size: 97,
  hidden_size: 32,
  intermediate_size: 48,
  num_hidden_layers: 3,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  head_dim: 16,
  max_position_embeddings: 64,
  rms_norm_eps: 1e-6,
};

export const GEMMA_CONFIGS: Record<string, RawConfig> = {
  // Layers 0 and 2 slide (window 3), layer 1 is global; tied head (the default). hidden_act is
  // there as on the hub, with a value Gemma does not read (hidden_activation wins).
  gemma2: {
    architectures: ["Gemma2ForCausalLM"],
    model_type: "gemma2",
    ...base,
    hidden_act: "gelu",
    hidden_activation: "gelu_pytorch_tanh",
    query_pre_attn_scalar: 24,
    attn_logit_softcapping: 2.0,
    final_logit_softcapping: 3.0,
    sliding_window: 3,
    rope_theta: 10000,
  },
  "gemma2 (layer_types, untied head, attention_bias, exact gelu)": {
    architectures: ["Gemma2ForCausalLM"],
    model_type: "gemma2",
    ...base,
    hidden_activation: "gelu",
    query_pre_attn_scalar: 16,
    attn_logit_softcapping: 1.5,
    final_logit_softcapping: 4.0,
    sliding_window: 4,
    layer_types: ["full_attention", "sliding_attention", "sliding_attention"],
    tie_word_embeddings: false,
    attention_bias: true,
  },
  // sliding_window_pattern 3 over 4 layers: 0, 1 and 3 local, 2 global (linear-scaled rope).
  gemma3_text: {
    architectures: ["Gemma3ForCausalLM"],
    model_type: "gemma3_text",
    ...base,
    num_hidden_layers: 4,
    hidden_activation: "gelu_pytorch_tanh",
    query_pre_attn_scalar: 24,
    sliding_window: 4,
    sliding_window_pattern: 3,
    rope_theta: 1000000,
    rope_local_base_freq: 10000,
    rope_scaling: { rope_type: "linear", factor: 4 },
    final_logit_softcapping: null,
    attn_logit_softcapping: null,
  },
  // As Gemma-3-1B: query_pre_attn_scalar = head_dim and no caps, so attention takes the fused kernel.
  "gemma3_text (query_pre_attn_scalar = head_dim: fused attention)": {
    architectures: ["Gemma3ForCausalLM"],
    model_type: "gemma3_text",
    ...base,
    hidden_activation: "gelu_pytorch_tanh",
    query_pre_attn_scalar: 16,
    sliding_window: 4,
    sliding_window_pattern: 3,
    rope_theta: 1000000,
    rope_local_base_freq: 10000,
    final_logit_softcapping: null,
    attn_logit_softcapping: null,
  },
  "gemma3_text (transformers 5 rope_parameters, layer_types, both soft-caps)": {
    architectures: ["Gemma3ForCausalLM"],
    model_type: "gemma3_text",
    ...base,
    hidden_activation: "gelu_pytorch_tanh",
    query_pre_attn_scalar: 16,
    sliding_window: 3,
    layer_types: ["sliding_attention", "full_attention", "sliding_attention"],
    rope_parameters: {
      full_attention: { rope_type: "linear", factor: 2, rope_theta: 50000 },
      sliding_attention: { rope_type: "default", rope_theta: 1000 },
    },
    final_logit_softcapping: 3.0,
    attn_logit_softcapping: 2.0,
  },
};

/** A model of `config` with every parameter normal(0, 0.2), norm weights too (Gemma scales by 1 + weight). */
export function randomGemma(config: RawConfig, seed: number, dtype: torch.DType = "float32"): CausalLM {
  torch.manualSeed(seed);
  const model = createModel(config, { dtype, empty: true });
  torch.noGrad(() =>
    torch.tidy(() => {
      for (const [name, p] of model.namedParameters())
        model.setParameter(name, torch.randn(p.shape, { dtype }).mul(0.2));
    }),
  );
  return model.eval();
}
