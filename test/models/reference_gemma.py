#!/usr/bin/env python3
"""An independent PyTorch reference of Gemma2ForCausalLM and Gemma3ForCausalLM (gemma3_text).

Written from transformers' modeling_gemma2.py / modeling_gemma3.py (eager attention) and their
configuration files, without transformers and without looking at the TypeScript it checks.
The checkpoint reader (safetensors, plain or sharded) and generate()'s position ids come from
reference_models.py beside this file; everything Gemma-specific is here:

  * embeddings times sqrt(hidden_size), the constant made a tensor of the hidden dtype first;
  * Gemma RMSNorm: x * rsqrt(mean(x^2) + eps) * (1 + weight), in float32, cast back at the end;
  * per layer: input_layernorm -> attention -> post_attention_layernorm -> residual,
    pre_feedforward_layernorm -> GeGLU MLP (gelu tanh) -> post_feedforward_layernorm -> residual;
  * attention: scores q k^T * query_pre_attn_scalar^-0.5, then soft-capping
    tanh(s / c) * c (attn_logit_softcapping), then the additive mask (finfo.min), softmax in
    float32; GQA by repeat_kv; Gemma 3 applies q_norm / k_norm (per head) before RoPE;
  * sliding layers: config.layer_types, else Gemma 2's every other layer from layer 0 and
    Gemma 3's (i + 1) % sliding_window_pattern != 0; a sliding query i sees keys j with
    i - sliding_window < j <= i;
  * RoPE base rope_theta (Gemma 3 global layers: with rope_scaling linear dividing the
    frequencies by its factor), Gemma 3 local layers rope_local_base_freq; transformers 5's
    rope_parameters (per layer type for Gemma 3) too;
  * final logits soft-capped by final_logit_softcapping when set; head tied by default.

Script protocol as reference_models.py: JSON on stdin
  {"cases": [{"dir": str, "input_ids": [[int]], "attention_mask": [[0|1]] | null,
              "dtype": "float32" | "float64" | "bfloat16"}]}
prints {"results": [{"shape": [B, T, V], "logits": [float, ...]}]} on its last line.
"""
import json
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reference_models import Weights, load_directory, positions_from_mask, repeat_kv, rotate_half  # noqa: E402


def gemma_rms_norm(x, weight, eps):
    out = x.float()
    out = out * torch.rsqrt(out.pow(2).mean(-1, keepdim=True) + eps)
    out = out * (1.0 + weight.float())
    return out.type_as(x)


def inverse_frequencies(head_dim, base, scaling):
    inv = 1.0 / (base ** (torch.arange(0, head_dim, 2, dtype=torch.int64).float() / head_dim))
    kind = (scaling or {}).get("rope_type", (scaling or {}).get("type", "default"))
    if kind == "linear":
        inv = inv / scaling["factor"]
    elif kind != "default":
        raise ValueError(f"rope type {kind} not in the reference")
    return inv


def cos_sin(inv, position_ids, dtype):
    freqs = (inv[None, :, None].float().expand(position_ids.shape[0], -1, 1) @ position_ids[:, None, :].float()).transpose(1, 2)
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos().to(dtype).unsqueeze(1), emb.sin().to(dtype).unsqueeze(1)  # [B, 1, T, D]


def additive_mask(attention_mask, t, dtype, window):
    q = torch.arange(t).view(t, 1)
    k = torch.arange(t).view(1, t)
    allowed = k <= q
    if window is not None:
        allowed = allowed & (k > q - window)
    allowed = allowed.view(1, 1, t, t) & attention_mask.bool().view(-1, 1, 1, t)
    return torch.zeros(allowed.shape, dtype=dtype).masked_fill(~allowed, torch.finfo(dtype).min)


def gemma_logits(arch, config, tensors, input_ids, attention_mask, position_ids, dtype):
    W = Weights(tensors, dtype, ignore=lambda n: n.endswith("inv_freq"))
    h = gemma_hidden(arch, config, W, input_ids, attention_mask, position_ids, dtype)
    embed = W("model.embed_tokens.weight")
    if config.get("tie_word_embeddings", True):
        head = embed
        if W.has("lm_head.weight"):
            W.used.add("lm_head.weight")
    else:
        head = W("lm_head.weight")
    logits = F.linear(h, head)
    final_cap = config.get("final_logit_softcapping", 30.0 if arch == "gemma2" else None)
    if final_cap is not None:
        logits = torch.tanh(logits / final_cap) * final_cap
    W.check_all_used()
    return logits


def gemma_hidden(arch, config, W, input_ids, attention_mask, position_ids, dtype):
    """The decoder's last hidden states after the final norm [B, T, hidden] (a classifier's input)."""
    hidden = config["hidden_size"]
    n_heads = config["num_attention_heads"]
    n_kv = config.get("num_key_value_heads") or n_heads
    head_dim = config.get("head_dim") or 256
    n_layers = config["num_hidden_layers"]
    eps = config.get("rms_norm_eps", 1e-6)
    act = config.get("hidden_activation") or "gelu_pytorch_tanh"  # the configs do not read hidden_act
    gelu = {"gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh"), "gelu": F.gelu}[act]
    scaling = config.get("query_pre_attn_scalar", 256) ** -0.5
    bias = bool(config.get("attention_bias", False))
    if arch == "gemma2":
        attn_cap = config.get("attn_logit_softcapping", 50.0)
        default_types = ["sliding_attention" if (i + 1) % 2 else "full_attention" for i in range(n_layers)]
        params = config.get("rope_parameters") or {}
        theta = config.get("rope_theta") or params.get("rope_theta", 10000.0)
        sc = config.get("rope_scaling") or (params if params.get("rope_type", "default") != "default" else None)
        ropes = {"full_attention": (theta, sc), "sliding_attention": (theta, sc)}
    else:
        attn_cap = config.get("attn_logit_softcapping")
        pattern = config.get("sliding_window_pattern", 6)
        default_types = ["sliding_attention" if (i + 1) % pattern else "full_attention" for i in range(n_layers)]
        params = config.get("rope_parameters")
        if params and ("full_attention" in params or "sliding_attention" in params):
            ropes = {k: (params.get(k, {}).get("rope_theta", d), params.get(k)) for k, d in
                     (("full_attention", 1e6), ("sliding_attention", 1e4))}
        else:
            ropes = {"full_attention": (config.get("rope_theta", 1e6), config.get("rope_scaling")),
                     "sliding_attention": (config.get("rope_local_base_freq", 1e4), None)}
    layer_types = config.get("layer_types") or default_types
    window = config.get("sliding_window", 4096)
    b, t = input_ids.shape

    def lin(x, name, with_bias=bias):
        return F.linear(x, W(name + ".weight"), W(name + ".bias") if with_bias else None)

    embed = W("model.embed_tokens.weight")
    h = F.embedding(input_ids, embed)
    h = h * torch.tensor(hidden ** 0.5, dtype=h.dtype)
    rotary = {k: cos_sin(inverse_frequencies(head_dim, base, sc), position_ids, dtype) for k, (base, sc) in ropes.items()}
    masks = {"full_attention": additive_mask(attention_mask, t, dtype, None),
             "sliding_attention": additive_mask(attention_mask, t, dtype, window)}
    for i in range(n_layers):
        p = f"model.layers.{i}."
        kind = layer_types[i]
        cos, sin = rotary[kind]
        residual = h
        x = gemma_rms_norm(h, W(p + "input_layernorm.weight"), eps)
        q = lin(x, p + "self_attn.q_proj").view(b, t, n_heads, head_dim).transpose(1, 2)
        k = lin(x, p + "self_attn.k_proj").view(b, t, n_kv, head_dim).transpose(1, 2)
        v = lin(x, p + "self_attn.v_proj").view(b, t, n_kv, head_dim).transpose(1, 2)
        if arch == "gemma3_text":
            q = gemma_rms_norm(q, W(p + "self_attn.q_norm.weight"), eps)
            k = gemma_rms_norm(k, W(p + "self_attn.k_norm.weight"), eps)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = repeat_kv(k, n_heads // n_kv)
        v = repeat_kv(v, n_heads // n_kv)
        scores = torch.matmul(q, k.transpose(2, 3)) * scaling
        if attn_cap is not None:
            scores = torch.tanh(scores / attn_cap) * attn_cap
        scores = scores + masks[kind]
        probs = F.softmax(scores, dim=-1, dtype=torch.float32).to(q.dtype)
        y = torch.matmul(probs, v).transpose(1, 2).reshape(b, t, -1)
        y = lin(y, p + "self_attn.o_proj")
        h = residual + gemma_rms_norm(y, W(p + "post_attention_layernorm.weight"), eps)
        residual = h
        x = gemma_rms_norm(h, W(p + "pre_feedforward_layernorm.weight"), eps)
        x = lin(gelu(lin(x, p + "mlp.gate_proj", False)) * lin(x, p + "mlp.up_proj", False), p + "mlp.down_proj", False)
        h = residual + gemma_rms_norm(x, W(p + "post_feedforward_layernorm.weight"), eps)
    return gemma_rms_norm(h, W("model.norm.weight"), eps)


def architecture_of(config):
    by_class = {"Gemma2ForCausalLM": "gemma2", "Gemma3ForCausalLM": "gemma3_text"}
    for cls in config.get("architectures") or []:
        if cls in by_class:
            return by_class[cls]
    if config.get("model_type") in ("gemma2", "gemma3_text"):
        return config["model_type"]
    raise ValueError(f"not a Gemma 2 / Gemma 3 text config: {config.get('architectures')} / {config.get('model_type')}")


_cache = {}
DTYPES = {"float32": torch.float32, "float64": torch.float64, "bfloat16": torch.bfloat16}


def main():
    request = json.load(sys.stdin)
    torch.set_num_threads(1)
    results = []
    for case in request["cases"]:
        if case["dir"] not in _cache:
            _cache[case["dir"]] = load_directory(case["dir"])
        config, tensors = _cache[case["dir"]]
        ids = torch.as_tensor(case["input_ids"], dtype=torch.int64)
        mask = case.get("attention_mask")
        mask = torch.ones_like(ids) if mask is None else torch.as_tensor(mask, dtype=torch.int64)
        with torch.no_grad():
            logits = gemma_logits(architecture_of(config), config, tensors, ids, mask, positions_from_mask(mask),
                                  DTYPES[case.get("dtype", "float32")])
        results.append({"shape": list(logits.shape), "logits": logits.reshape(-1).double().tolist()})
    print(json.dumps({"results": results}))


if __name__ == "__main__":
    main()
