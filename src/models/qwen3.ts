// Qwen3 (Qwen3-0.6B ... 32B dense): the Llama block with an RMSNorm over head_dim on every query
// and key head before RoPE (q_norm / k_norm), no q/k/v bias unless attention_bias (which then
// biases o_proj too, as LlamaAttention), head_dim 128 unless given, and Qwen2's sliding-window
// rules (use_sliding_window, max_window_layers, layer_types). The layers are llama.ts's.
import type { Init } from "../nn/layers.js";
import { num, type RawConfig } from "./config.js";
import { familySpec, llamaConfig, LlamaForCausalLM, type LlamaConfig } from "./llama.js";

export function qwen3Config(raw: RawConfig): LlamaConfig {
  const c = llamaConfig(raw, "qwen2");
  const bias = raw.attention_bias === true;
  // Qwen3Config: sliding_window defaults to 4096, and is dropped unless use_sliding_window.
  const window = raw.use_sliding_window === true ? num(raw, "sliding_window", 4096) : null;
  return {
    ...c,
    headDim: num(raw, "head_dim", 128),
    qkvBias: bias,
    oBias: bias,
    mlpBias: false,
    slidingWindow: window,
    qkNorm: true,
  };
}

export class Qwen3ForCausalLM extends LlamaForCausalLM {
  override readonly architecture: string = "qwen3";
  constructor(config: RawConfig, c: LlamaConfig = qwen3Config(config), init: Init = {}) {
    super(config, c, init);
  }
}

export const QWEN3 = familySpec("qwen3", "Qwen3", Qwen3ForCausalLM, qwen3Config);
