#!/usr/bin/env python3
"""An independent PyTorch reference of four Hugging Face causal-LM architectures.

GPT2LMHeadModel, LlamaForCausalLM, Qwen2ForCausalLM and MistralForCausalLM, written from
transformers' modeling code (eager attention), without transformers and without looking at the
TypeScript models it checks. It reads a model directory itself: config.json plus
model.safetensors, or the shards a model.safetensors.index.json names (safetensors is parsed here
with struct/json/torch.frombuffer; F32, F16, BF16 and the integer types). Weights are cast to the
compute dtype (float32 by default) as `from_pretrained(..., torch_dtype=torch.float32)` would.

Semantics, as in transformers:
  * GPT-2: Conv1D weights stored [in, out] (y = x W + b), learned positions, LayerNorm, gelu_new
    (or the configured activation), attention scaled by 1/sqrt(head_dim) (and by 1/(layer+1)
    with scale_attn_by_inverse_layer_idx), LM head tied to wte. Names with or without the
    "transformer." prefix; the attn.bias / attn.masked_bias buffers are ignored.
  * Llama: RMSNorm computed in float32 then cast back before the weight multiplies, rotary
    embeddings with rotate_half and rope_theta (llama3 rope_scaling supported; transformers 5's
    rope_parameters too), head_dim from
    the config when given, grouped-query attention by repeat_kv, SwiGLU MLP, attention_bias and
    mlp_bias, tie_word_embeddings (default False).
  * Qwen2: as Llama, with biases on q/k/v (not o); with use_sliding_window, the window applies to
    the layers config.layer_types marks "sliding_attention", by default those >= max_window_layers.
  * Mistral: as Llama, with sliding-window attention (a query at position i sees keys j with
    i - j < sliding_window).
  * Position ids from the attention mask as generate() makes them: cumsum(mask) - 1 with padding
    positions set to 1; keys at padding positions are masked (additive finfo.min, as eager
    attention), combined with the causal (and sliding-window) mask.

Use as a script: JSON on stdin
  {"cases": [{"dir": str, "input_ids": [[int]], "attention_mask": [[0|1]] | null,
              "position_ids": [[int]] | null, "dtype": "float32" | "float64"}]}
prints on its last stdout line
  {"results": [{"shape": [B, T, V], "logits": [float, ...]}]}   (logits flattened, row-major)
"""
import json
import math
import os
import struct
import sys

import torch
import torch.nn.functional as F

# ---------------------------------------------------------------------------- safetensors

SAFETENSORS_DTYPES = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8,
    "U8": torch.uint8, "BOOL": torch.bool,
}


def read_safetensors(path):
    """{name: tensor} of one .safetensors file (8-byte LE header length, JSON header, data)."""
    with open(path, "rb") as f:
        data = bytearray(f.read())
    if len(data) < 8:
        raise ValueError(f"{path}: too short for safetensors")
    (n,) = struct.unpack("<Q", bytes(data[:8]))
    header = json.loads(bytes(data[8:8 + n]).decode("utf-8"))
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype = SAFETENSORS_DTYPES[info["dtype"]]
        begin, end = info["data_offsets"]
        shape = list(info["shape"])
        numel = 1
        for s in shape:
            numel *= s
        itemsize = torch.empty((), dtype=dtype).element_size()
        if end - begin != numel * itemsize:
            raise ValueError(f"{path}: tensor {name}: {end - begin} bytes for {numel} x {itemsize}")
        if numel == 0:
            t = torch.empty(shape, dtype=dtype)
        elif dtype in (torch.bfloat16, torch.float16):
            # read the raw 16-bit words, then reinterpret (works whatever frombuffer supports)
            t = torch.frombuffer(data, dtype=torch.int16, count=numel, offset=base + begin).view(dtype)
        else:
            t = torch.frombuffer(data, dtype=dtype, count=numel, offset=base + begin)
        out[name] = t.reshape(shape).clone()
    return out


def load_directory(model_dir):
    """(config dict, {name: tensor}) of a Hugging Face model directory."""
    config_path = os.path.join(model_dir, "config.json")
    with open(config_path, "r", encoding="utf-8") as f:
        config = json.load(f)
    single = os.path.join(model_dir, "model.safetensors")
    index = os.path.join(model_dir, "model.safetensors.index.json")
    if os.path.exists(single):
        tensors = read_safetensors(single)
    elif os.path.exists(index):
        with open(index, "r", encoding="utf-8") as f:
            weight_map = json.load(f)["weight_map"]
        tensors = {}
        for shard in sorted(set(weight_map.values())):
            part = read_safetensors(os.path.join(model_dir, shard))
            for name, t in part.items():
                if weight_map.get(name) != shard:
                    raise ValueError(f"{shard}: tensor {name} is not in the index's weight_map for it")
                tensors[name] = t
        missing = set(weight_map) - set(tensors)
        if missing:
            raise ValueError(f"index names tensors no shard holds: {sorted(missing)}")
    else:
        raise FileNotFoundError(f"{model_dir}: no model.safetensors or model.safetensors.index.json")
    return config, tensors


# ---------------------------------------------------------------------------- shared pieces

def architecture_of(config):
    by_class = {"GPT2LMHeadModel": "gpt2", "LlamaForCausalLM": "llama", "Qwen2ForCausalLM": "qwen2",
                "MistralForCausalLM": "mistral"}
    for cls in config.get("architectures") or []:
        if cls in by_class:
            return by_class[cls]
    if config.get("model_type") in ("gpt2", "llama", "qwen2", "mistral"):
        return config["model_type"]
    raise ValueError(f"unsupported architecture {config.get('architectures')} / {config.get('model_type')}")


def positions_from_mask(attention_mask):
    """generate()'s position ids: cumsum - 1, with padding positions set to 1."""
    pos = attention_mask.long().cumsum(-1) - 1
    pos.masked_fill_(attention_mask == 0, 1)
    return pos


def additive_mask(attention_mask, t, dtype, sliding_window=None):
    """[B, 1, T, T] additive mask: 0 where a query may attend a key, finfo(dtype).min elsewhere."""
    b = attention_mask.shape[0]
    q = torch.arange(t).view(t, 1)
    k = torch.arange(t).view(1, t)
    allowed = k <= q
    if sliding_window is not None:
        allowed = allowed & ((q - k) < sliding_window)
    allowed = allowed.view(1, 1, t, t) & attention_mask.bool().view(b, 1, 1, t)
    mask = torch.zeros(b, 1, t, t, dtype=dtype)
    return mask.masked_fill(~allowed, torch.finfo(dtype).min)


class Weights:
    """Checkpoint tensors by name; records which were used so leftovers can be reported."""

    def __init__(self, tensors, dtype, ignore=lambda name: False):
        self.tensors = tensors
        self.dtype = dtype
        self.used = set()
        self.ignore = ignore

    def has(self, name):
        return name in self.tensors

    def __call__(self, name):
        if name not in self.tensors:
            raise KeyError(f"checkpoint has no tensor {name}")
        self.used.add(name)
        t = self.tensors[name]
        return t.to(self.dtype) if t.is_floating_point() else t

    def check_all_used(self):
        left = sorted(n for n in self.tensors if n not in self.used and not self.ignore(n))
        if left:
            raise ValueError(f"checkpoint tensors the model does not use: {left}")


# ---------------------------------------------------------------------------- GPT-2

def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


GPT2_ACTIVATIONS = {
    "gelu_new": gelu_new,
    "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "gelu": F.gelu,
    "relu": F.relu,
}


def conv1d(x, w, b):
    """transformers' Conv1D: weight [in, out]; y = b + x W."""
    size_out = x.shape[:-1] + (w.shape[1],)
    return torch.addmm(b, x.reshape(-1, x.shape[-1]), w).view(size_out)


def gpt2_logits(config, tensors, input_ids, attention_mask, position_ids, dtype):
    prefixed = any(n.startswith("transformer.") for n in tensors)
    # One naming throughout: strip "transformer." (the hub's gpt2 checkpoint has no prefix).
    named = {}
    for n, t in tensors.items():
        key = n[len("transformer."):] if n.startswith("transformer.") else n
        named[key] = t
    if prefixed and any(not n.startswith("transformer.") and n != "lm_head.weight" for n in tensors):
        raise ValueError("GPT-2 checkpoint mixes prefixed and unprefixed names")
    W = Weights(named, dtype, ignore=lambda n: n.endswith(".attn.bias") or n.endswith(".attn.masked_bias"))

    n_embd = config.get("n_embd", 768)
    n_layer = config.get("n_layer", 12)
    n_head = config.get("n_head", 12)
    eps = config.get("layer_norm_epsilon", 1e-5)
    act = GPT2_ACTIVATIONS[config.get("activation_function", "gelu_new")]
    scale_attn = config.get("scale_attn_weights", True)
    by_layer = config.get("scale_attn_by_inverse_layer_idx", False)
    head_dim = n_embd // n_head
    b, t = input_ids.shape

    h = F.embedding(input_ids, W("wte.weight")) + F.embedding(position_ids, W("wpe.weight"))
    mask = additive_mask(attention_mask, t, dtype)

    def split_heads(x):
        return x.view(b, t, n_head, head_dim).permute(0, 2, 1, 3)

    for i in range(n_layer):
        p = f"h.{i}."
        a = F.layer_norm(h, (n_embd,), W(p + "ln_1.weight"), W(p + "ln_1.bias"), eps)
        qkv = conv1d(a, W(p + "attn.c_attn.weight"), W(p + "attn.c_attn.bias"))
        q, k, v = (split_heads(x) for x in qkv.split(n_embd, dim=2))
        scores = torch.matmul(q, k.transpose(-1, -2))
        if scale_attn:
            scores = scores / torch.full([], v.size(-1) ** 0.5, dtype=scores.dtype)
        if by_layer:
            scores = scores / float(i + 1)
        scores = scores + mask
        probs = F.softmax(scores, dim=-1).type(v.dtype)
        y = torch.matmul(probs, v).permute(0, 2, 1, 3).contiguous().view(b, t, n_embd)
        h = h + conv1d(y, W(p + "attn.c_proj.weight"), W(p + "attn.c_proj.bias"))
        m = F.layer_norm(h, (n_embd,), W(p + "ln_2.weight"), W(p + "ln_2.bias"), eps)
        m = conv1d(act(conv1d(m, W(p + "mlp.c_fc.weight"), W(p + "mlp.c_fc.bias"))),
                   W(p + "mlp.c_proj.weight"), W(p + "mlp.c_proj.bias"))
        h = h + m
    h = F.layer_norm(h, (n_embd,), W("ln_f.weight"), W("ln_f.bias"), eps)
    # GPT2LMHeadModel ties lm_head to wte (tie_word_embeddings defaults to True); a stored
    # lm_head.weight is then overwritten by the tie.
    if config.get("tie_word_embeddings", True) or not W.has("lm_head.weight"):
        head = W("wte.weight")
        if W.has("lm_head.weight"):
            W.used.add("lm_head.weight")
    else:
        head = W("lm_head.weight")
    logits = F.linear(h, head)
    W.check_all_used()
    return logits


# ---------------------------------------------------------------------------- Llama family

def rms_norm(x, weight, eps):
    input_dtype = x.dtype
    x = x.to(torch.float32)
    variance = x.pow(2).mean(-1, keepdim=True)
    x = x * torch.rsqrt(variance + eps)
    return weight * x.to(input_dtype)


def rope_inverse_frequencies(config, head_dim):
    # transformers < 5: rope_theta and rope_scaling; transformers 5: one rope_parameters dict
    params = config.get("rope_parameters") or {}
    base = config.get("rope_theta") or params.get("rope_theta", 10000.0)
    inv_freq = 1.0 / (base ** (torch.arange(0, head_dim, 2, dtype=torch.int64).float() / head_dim))
    scaling = config.get("rope_scaling") or params
    kind = scaling.get("rope_type", scaling.get("type", "default"))
    attention_factor = 1.0
    if kind == "default":
        pass
    elif kind == "linear":
        inv_freq = inv_freq / scaling["factor"]
    elif kind == "llama3":
        factor = scaling["factor"]
        low_freq_factor = scaling["low_freq_factor"]
        high_freq_factor = scaling["high_freq_factor"]
        old_context_len = scaling["original_max_position_embeddings"]
        low_freq_wavelen = old_context_len / low_freq_factor
        high_freq_wavelen = old_context_len / high_freq_factor
        wavelen = 2 * math.pi / inv_freq
        inv_freq_llama = torch.where(wavelen > low_freq_wavelen, inv_freq / factor, inv_freq)
        smooth_factor = (old_context_len / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor)
        smoothed = (1 - smooth_factor) * inv_freq_llama / factor + smooth_factor * inv_freq_llama
        is_medium = ~(wavelen < high_freq_wavelen) * ~(wavelen > low_freq_wavelen)
        inv_freq = torch.where(is_medium, smoothed, inv_freq_llama)
    else:
        raise ValueError(f"rope_scaling type {kind} not implemented in the reference")
    return inv_freq, attention_factor


def rotate_half(x):
    x1 = x[..., : x.shape[-1] // 2]
    x2 = x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def repeat_kv(x, n_rep):
    b, kvh, t, d = x.shape
    if n_rep == 1:
        return x
    return x[:, :, None, :, :].expand(b, kvh, n_rep, t, d).reshape(b, kvh * n_rep, t, d)


def llama_logits(arch, config, tensors, input_ids, attention_mask, position_ids, dtype):
    W = Weights(tensors, dtype, ignore=lambda n: n.endswith("rotary_emb.inv_freq"))
    h = llama_hidden(arch, config, W, input_ids, attention_mask, position_ids, dtype)
    if config.get("tie_word_embeddings", False):
        head = W("model.embed_tokens.weight")
        if W.has("lm_head.weight"):
            W.used.add("lm_head.weight")  # overwritten by the tie
    else:
        head = W("lm_head.weight")
    logits = F.linear(h, head)
    W.check_all_used()
    return logits


def llama_hidden(arch, config, W, input_ids, attention_mask, position_ids, dtype):
    """The base model's output (LlamaModel: after the final norm), [B, T, hidden]."""
    hidden = config["hidden_size"]
    n_heads = config["num_attention_heads"]
    n_kv = config.get("num_key_value_heads") or n_heads
    head_dim = config.get("head_dim") or hidden // n_heads
    n_layers = config["num_hidden_layers"]
    eps = config.get("rms_norm_eps", 1e-6)
    act = config.get("hidden_act", "silu")
    assert act == "silu", act
    if arch == "llama":
        qkv_bias = o_bias = bool(config.get("attention_bias", False))
        mlp_bias = bool(config.get("mlp_bias", False))
    elif arch == "qwen2":
        qkv_bias, o_bias, mlp_bias = True, False, False
    else:  # mistral
        qkv_bias = o_bias = mlp_bias = False
    b, t = input_ids.shape

    def window_of(layer):
        if arch == "mistral":
            return config.get("sliding_window")
        if arch == "qwen2" and config.get("use_sliding_window", False):
            # Qwen2Config: an explicit layer_types, else sliding from max_window_layers on
            types = config.get("layer_types")
            sliding = types[layer] == "sliding_attention" if types else layer >= config.get("max_window_layers", 28)
            return config.get("sliding_window") if sliding else None
        return None

    def lin(x, name, bias):
        return F.linear(x, W(name + ".weight"), W(name + ".bias") if bias else None)

    inv_freq, attention_scaling = rope_inverse_frequencies(config, head_dim)
    inv_freq_expanded = inv_freq[None, :, None].float().expand(b, -1, 1)
    pos_expanded = position_ids[:, None, :].float()
    freqs = (inv_freq_expanded.float() @ pos_expanded.float()).transpose(1, 2)
    emb = torch.cat((freqs, freqs), dim=-1)
    cos = (emb.cos() * attention_scaling).to(dtype).unsqueeze(1)  # [B, 1, T, d]
    sin = (emb.sin() * attention_scaling).to(dtype).unsqueeze(1)

    h = F.embedding(input_ids, W("model.embed_tokens.weight"))
    masks = {}
    for i in range(n_layers):
        p = f"model.layers.{i}."
        window = window_of(i)
        if window not in masks:
            masks[window] = additive_mask(attention_mask, t, dtype, window)
        x = rms_norm(h, W(p + "input_layernorm.weight"), eps)
        q = lin(x, p + "self_attn.q_proj", qkv_bias).view(b, t, -1, head_dim).transpose(1, 2)
        k = lin(x, p + "self_attn.k_proj", qkv_bias).view(b, t, -1, head_dim).transpose(1, 2)
        v = lin(x, p + "self_attn.v_proj", qkv_bias).view(b, t, -1, head_dim).transpose(1, 2)
        assert q.shape[1] == n_heads and k.shape[1] == n_kv, (q.shape, k.shape)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = repeat_kv(k, n_heads // n_kv)
        v = repeat_kv(v, n_heads // n_kv)
        scores = torch.matmul(q, k.transpose(2, 3)) * (head_dim ** -0.5)
        scores = scores + masks[window]
        probs = F.softmax(scores, dim=-1, dtype=torch.float32).to(q.dtype)
        y = torch.matmul(probs, v).transpose(1, 2).contiguous().reshape(b, t, -1)
        h = h + lin(y, p + "self_attn.o_proj", o_bias)
        x = rms_norm(h, W(p + "post_attention_layernorm.weight"), eps)
        gate = lin(x, p + "mlp.gate_proj", mlp_bias)
        up = lin(x, p + "mlp.up_proj", mlp_bias)
        h = h + lin(F.silu(gate) * up, p + "mlp.down_proj", mlp_bias)
    return rms_norm(h, W("model.norm.weight"), eps)


# ---------------------------------------------------------------------------- entry points

_cache = {}


def causal_lm_logits(model_dir, input_ids, attention_mask=None, position_ids=None, dtype=torch.float32):
    """Logits [B, T, V] (in `dtype`) of the model in `model_dir` for input_ids [B, T]."""
    if model_dir not in _cache:
        _cache[model_dir] = load_directory(model_dir)
    config, tensors = _cache[model_dir]
    input_ids = torch.as_tensor(input_ids, dtype=torch.int64)
    if attention_mask is None:
        attention_mask = torch.ones_like(input_ids)
    attention_mask = torch.as_tensor(attention_mask, dtype=torch.int64)
    if position_ids is None:
        position_ids = positions_from_mask(attention_mask)
    position_ids = torch.as_tensor(position_ids, dtype=torch.int64)
    arch = architecture_of(config)
    with torch.no_grad():
        if arch == "gpt2":
            return gpt2_logits(config, tensors, input_ids, attention_mask, position_ids, dtype)
        return llama_logits(arch, config, tensors, input_ids, attention_mask, position_ids, dtype)


def main():
    request = json.load(sys.stdin)
    torch.set_num_threads(1)
    results = []
    for case in request["cases"]:
        dtype = {"float32": torch.float32, "float64": torch.float64}[case.get("dtype", "float32")]
        logits = causal_lm_logits(case["dir"], case["input_ids"], case.get("attention_mask"),
                                  case.get("position_ids"), dtype)
        results.append({"shape": list(logits.shape), "logits": logits.reshape(-1).double().tolist()})
    print(json.dumps({"results": results}))


if __name__ == "__main__":
    main()
