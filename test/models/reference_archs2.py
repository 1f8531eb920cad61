#!/usr/bin/env python3
"""An independent PyTorch reference of sequence-classification heads (and, with them, the
decoders they sit on), written from transformers' modeling code without transformers and
without looking at the TypeScript it checks. The checkpoint reading, masks, RMSNorm, rotary
helpers and the Llama / Qwen2 / Mistral bodies are reference_models.py's.

Sequence classification (transformers' GenericForSequenceClassification, which
LlamaForSequenceClassification, Qwen2ForSequenceClassification, ... are):
  * the base model's output (after the final norm) at every position, through score.weight
    [num_labels, hidden] (no bias): logits [B, T, num_labels];
  * pooled at each row's last non-padding token: with pad_token_id,
    argmax(arange(T) * (input_ids != pad_token_id)) (the rightmost non-pad token, so left and
    right padding both work); without it, the last token, and a batch of more than one row is
    an error;
  * position ids as transformers' forward makes them when none are given: 0..T-1 for every row
    (not from the attention mask; with rotary embeddings only differences of positions matter,
    so left-padded rows score the same either way).

Qwen3ForCausalLM (modeling_qwen3 / Qwen3Config):
  * Llama's block, with q_norm / k_norm: an RMSNorm over head_dim (weight [head_dim]) on each
    query and key head, after the projection and before RoPE; values are not normed;
  * attention_bias (default False) biases q, k, v and o alike; the MLP has no bias;
  * head_dim defaults to 128; sliding_window (default 4096) only with use_sliding_window, on
    the layers layer_types marks "sliding_attention" (by default those >= max_window_layers).

Phi3ForCausalLM (modeling_phi3 / Phi3Config / modeling_rope_utils):
  * qkv_proj [(H + 2 Hkv) D, C] split into q | k | v along the output; gate_up_proj [2 I, C]
    split into gate | up (chunk(2)), down(up * silu(gate)); no biases; rms_norm_eps 1e-5;
  * partial rotary: cos/sin cover int(head_dim * partial_rotary_factor) dimensions; only those
    leading dimensions of each head rotate, the rest pass through;
  * rope_scaling "longrope" ("su" / "yarn" are older names): inverse frequencies
    1 / (ext_i * theta^(2i / dim)), ext = long_factor when max(position_ids) + 1 >
    original_max_position_embeddings, else short_factor; cos/sin times the attention factor
    (rope_scaling.attention_factor, else sqrt(1 + ln(f) / ln(original_max)) with f =
    rope_scaling.factor or max_position_embeddings / original_max, 1 when f <= 1);
  * sliding_window (default None) on every layer.
Their logits use position ids from the attention mask, as reference_models.py's.

Use as a script: JSON on stdin
  {"cases": [{"task": "scores" | "logits", "dir": str, "input_ids": [[int]], "attention_mask": [[0|1]] | null}]}
prints on its last stdout line
  {"results": [{"shape": [B, num_labels] | [B, T, V], "values": [float, ...]}]}   (flattened, row-major)
"""
import math
import json
import sys

import torch
import torch.nn.functional as F

import reference_models as ref


# ---------------------------------------------------------------------------- Qwen3 and Phi-3

def linear(W, name, x, bias=False):
    return F.linear(x, W(name + ".weight"), W(name + ".bias") if bias else None)


def rotate(x, cos, sin):
    """RoPE on the leading cos.shape[-1] dimensions of x [B, n, T, D]; the rest pass through."""
    d = cos.shape[-1]
    rot, rest = x[..., :d], x[..., d:]
    return torch.cat([rot * cos + ref.rotate_half(rot) * sin, rest], dim=-1)


def phi3_rope(config, head_dim, position_ids):
    """(inverse frequencies, attention factor) of Phi-3's default or LongRoPE rotary embedding."""
    scaling = config.get("rope_scaling") or config.get("rope_parameters") or {}
    base = config.get("rope_theta") or scaling.get("rope_theta", 10000.0)
    partial = config.get("partial_rotary_factor") or scaling.get("partial_rotary_factor", 1.0)
    dim = int(head_dim * partial)
    shape = torch.arange(0, dim, 2, dtype=torch.int64).float() / dim
    kind = scaling.get("rope_type", scaling.get("type", "default"))
    if kind in ("su", "yarn"):
        kind = "longrope"
    if kind == "default":
        return 1.0 / (base ** shape), 1.0
    assert kind == "longrope", kind
    original = scaling.get("original_max_position_embeddings") or config.get("original_max_position_embeddings", 4096)
    factor = scaling.get("factor") or config["max_position_embeddings"] / original
    attention_factor = scaling.get("attention_factor")
    if attention_factor is None:
        attention_factor = 1.0 if factor <= 1.0 else math.sqrt(1 + math.log(factor) / math.log(original))
    seq_len = int(position_ids.max()) + 1
    ext = torch.tensor(scaling["long_factor"] if seq_len > original else scaling["short_factor"], dtype=torch.float32)
    return 1.0 / (ext * base ** shape), attention_factor


def new_decoder_hidden(arch, config, W, input_ids, attention_mask, position_ids, dtype):
    """Qwen3 / Phi-3 base model output (after the final norm), [B, T, hidden]."""
    hidden = config["hidden_size"]
    n_heads = config["num_attention_heads"]
    n_kv = config.get("num_key_value_heads") or n_heads
    eps = config.get("rms_norm_eps", 1e-6 if arch == "qwen3" else 1e-5)
    assert config.get("hidden_act", "silu") == "silu"
    b, t = input_ids.shape
    if arch == "qwen3":
        head_dim = config.get("head_dim", 128)
        inv_freq, attention_factor = ref.rope_inverse_frequencies(config, head_dim)
        window = config.get("sliding_window", 4096) if config.get("use_sliding_window", False) else None
        types = config.get("layer_types") or [
            "sliding_attention" if window is not None and i >= config.get("max_window_layers", 28) else "full_attention"
            for i in range(config["num_hidden_layers"])]
        windows = [window if types[i] == "sliding_attention" else None for i in range(config["num_hidden_layers"])]
    else:
        head_dim = config.get("head_dim") or hidden // n_heads
        inv_freq, attention_factor = phi3_rope(config, head_dim, position_ids)
        windows = [config.get("sliding_window")] * config["num_hidden_layers"]
    freqs = (inv_freq[None, :, None].float().expand(b, -1, 1) @ position_ids[:, None, :].float()).transpose(1, 2)
    emb = torch.cat((freqs, freqs), dim=-1)
    cos = (emb.cos() * attention_factor).to(dtype).unsqueeze(1)  # [B, 1, T, rotary dims]
    sin = (emb.sin() * attention_factor).to(dtype).unsqueeze(1)

    h = F.embedding(input_ids, W("model.embed_tokens.weight"))
    for i, window in enumerate(windows):
        p = f"model.layers.{i}."
        mask = ref.additive_mask(attention_mask, t, dtype, window)
        x = ref.rms_norm(h, W(p + "input_layernorm.weight"), eps)
        if arch == "qwen3":
            bias = config.get("attention_bias", False)
            q = linear(W, p + "self_attn.q_proj", x, bias).view(b, t, -1, head_dim)
            k = linear(W, p + "self_attn.k_proj", x, bias).view(b, t, -1, head_dim)
            v = linear(W, p + "self_attn.v_proj", x, bias).view(b, t, -1, head_dim).transpose(1, 2)
            q = ref.rms_norm(q, W(p + "self_attn.q_norm.weight"), eps).transpose(1, 2)
            k = ref.rms_norm(k, W(p + "self_attn.k_norm.weight"), eps).transpose(1, 2)
        else:
            bias = False
            qkv = linear(W, p + "self_attn.qkv_proj", x)
            qn, kn = n_heads * head_dim, n_kv * head_dim
            q = qkv[..., :qn].reshape(b, t, -1, head_dim).transpose(1, 2)
            k = qkv[..., qn:qn + kn].reshape(b, t, -1, head_dim).transpose(1, 2)
            v = qkv[..., qn + kn:].reshape(b, t, -1, head_dim).transpose(1, 2)
        assert q.shape[1] == n_heads and k.shape[1] == n_kv and v.shape[1] == n_kv
        q, k = rotate(q, cos, sin), rotate(k, cos, sin)
        k, v = ref.repeat_kv(k, n_heads // n_kv), ref.repeat_kv(v, n_heads // n_kv)
        scores = torch.matmul(q, k.transpose(2, 3)) * (head_dim ** -0.5) + mask
        probs = F.softmax(scores, dim=-1, dtype=torch.float32).to(q.dtype)
        y = torch.matmul(probs, v).transpose(1, 2).reshape(b, t, -1)
        h = h + linear(W, p + "self_attn.o_proj", y, bias)
        x = ref.rms_norm(h, W(p + "post_attention_layernorm.weight"), eps)
        if arch == "qwen3":
            m = linear(W, p + "mlp.down_proj", F.silu(linear(W, p + "mlp.gate_proj", x)) * linear(W, p + "mlp.up_proj", x))
        else:
            gate, up = linear(W, p + "mlp.gate_up_proj", x).chunk(2, dim=-1)
            m = linear(W, p + "mlp.down_proj", up * F.silu(gate))
        h = h + m
    return ref.rms_norm(h, W("model.norm.weight"), eps)


ARCHS2 = {"Qwen3": "qwen3", "Phi3": "phi3"}


def body_hidden(config, W, input_ids, attention_mask, position_ids, dtype):
    """The base model's last hidden states [B, T, hidden] of the architecture config names."""
    classes = [c.replace("ForSequenceClassification", "ForCausalLM") for c in config.get("architectures") or []]
    for prefix, arch in ARCHS2.items():
        if f"{prefix}ForCausalLM" in classes or (not classes and config.get("model_type") == arch):
            return new_decoder_hidden(arch, config, W, input_ids, attention_mask, position_ids, dtype)
    if "Gemma2ForCausalLM" in classes:
        import reference_gemma
        return reference_gemma.gemma_hidden("gemma2", config, W, input_ids, attention_mask, position_ids, dtype)
    arch = ref.architecture_of({**config, "architectures": classes})
    if arch == "gpt2":
        raise ValueError("GPT-2 classifiers are not part of this reference")
    return ref.llama_hidden(arch, config, W, input_ids, attention_mask, position_ids, dtype)


def causal_lm_logits(model_dir, input_ids, attention_mask=None, dtype=torch.float32):
    """Logits [B, T, V] of a Qwen3 or Phi-3 causal LM; position ids from the mask."""
    config, tensors = ref.load_directory(model_dir)
    input_ids = torch.as_tensor(input_ids, dtype=torch.int64)
    if attention_mask is None:
        attention_mask = torch.ones_like(input_ids)
    attention_mask = torch.as_tensor(attention_mask, dtype=torch.int64)
    position_ids = ref.positions_from_mask(attention_mask)
    W = ref.Weights(tensors, dtype, ignore=lambda n: "rotary_emb." in n)
    with torch.no_grad():
        h = body_hidden(config, W, input_ids, attention_mask, position_ids, dtype)
        if config.get("tie_word_embeddings", False):
            head = W("model.embed_tokens.weight")
        else:
            head = W("lm_head.weight")
        logits = F.linear(h, head)
        W.check_all_used()
        return logits


def sequence_scores(model_dir, input_ids, attention_mask=None, dtype=torch.float32):
    config, tensors = ref.load_directory(model_dir)
    input_ids = torch.as_tensor(input_ids, dtype=torch.int64)
    b, t = input_ids.shape
    if attention_mask is None:
        attention_mask = torch.ones_like(input_ids)
    attention_mask = torch.as_tensor(attention_mask, dtype=torch.int64)
    position_ids = torch.arange(t).unsqueeze(0).expand(b, t)
    W = ref.Weights(tensors, dtype, ignore=lambda n: n.endswith("rotary_emb.inv_freq"))
    with torch.no_grad():
        hidden = body_hidden(config, W, input_ids, attention_mask, position_ids, dtype)
        logits = F.linear(hidden, W("score.weight"))  # [B, T, L]
        W.check_all_used()
        pad = config.get("pad_token_id")
        if pad is None and b != 1:
            raise ValueError("Cannot handle batch sizes > 1 if no padding token is defined.")
        if pad is None:
            last = torch.full((b,), t - 1, dtype=torch.int64)
        else:
            non_pad = (input_ids != pad).to(torch.int32)
            last = (torch.arange(t, dtype=torch.int32) * non_pad).argmax(-1)
        return logits[torch.arange(b), last]  # [B, L]


def main():
    request = json.load(sys.stdin)
    torch.set_num_threads(1)
    results = []
    for case in request["cases"]:
        task = {"scores": sequence_scores, "logits": causal_lm_logits}[case["task"]]
        out = task(case["dir"], case["input_ids"], case.get("attention_mask"))
        results.append({"shape": list(out.shape), "values": out.reshape(-1).double().tolist()})
    print(json.dumps({"results": results}))


if __name__ == "__main__":
    main()
