# PyTorch's side of `omni-dpo bench train`'s Qwen2 case: one Omni-DPO step as TRL's DPOTrainer
# runs it on a Hugging Face Qwen2ForCausalLM with gradient_checkpointing: true. The model is
# written out in plain PyTorch the way transformers' Qwen2 computes it (tied embeddings, RMSNorm
# in float32, rotary embeddings with rotate_half, q/k/v biases, grouped keys and values
# repeated to every head, SwiGLU MLP), each decoder layer wrapped in
# torch.utils.checkpoint(use_reentrant=False) as HF's gradient checkpointing does, and the full
# logits [2B, T, V] returned. The log-probs follow TRL's concatenated_forward: labels rolled by
# one, selective_log_softmax (gather minus a per-row logsumexp), the loss mask, and the mean
# logit over response tokens for logits/chosen; length-normalised as the recipe's
# dpo_length_norm. The reference is a live frozen copy run under no_grad; torch.optim.AdamW.
# With cfg["lora"] ({r, alpha}) it is the lora case: PEFT's LoRA on every linear layer of the
# decoder (the tied head stays plain), y = x W^T + b + (alpha / r) * (x A^T) B^T with A
# kaiming-uniform and B zero, the base frozen, and the reference the same weights with the
# adapters off under no_grad, as TRL does with a PEFT model and no ref_model.
# Reads the config as JSON on stdin; prints one JSON line (apps/bench/train.py's format).
import json
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from train_common import (  # noqa: E402
    attention, concatenated_logps, omni_dpo_loss, run_and_report, starting_ids, starting_params,
)
from hf_blocks import rms_norm as hf_rms_norm, rotate_half  # noqa: E402
from torch.utils.checkpoint import checkpoint

cfg = json.load(sys.stdin)
torch.set_num_threads(cfg["threads"])
torch.manual_seed(0)
E, L, H, KV, V, I = cfg["n_embd"], cfg["n_layer"], cfg["n_head"], cfg["n_kv_head"], cfg["vocab_size"], cfg["intermediate_size"]
D = E // H
B, T = cfg["pairs"], cfg["seq"]
EPS = 1e-6
def init_params():
    def w(*shape):
        return torch.randn(*shape) * 0.02

    params = {"embed": w(V, E), "norm": torch.ones(E)}
    for i in range(L):
        params.update({
            f"{i}.in_norm": torch.ones(E), f"{i}.post_norm": torch.ones(E),
            f"{i}.q_w": w(H * D, E), f"{i}.q_b": torch.zeros(H * D),
            f"{i}.k_w": w(KV * D, E), f"{i}.k_b": torch.zeros(KV * D),
            f"{i}.v_w": w(KV * D, E), f"{i}.v_b": torch.zeros(KV * D),
            f"{i}.o_w": w(E, H * D),
            f"{i}.gate_w": w(I, E), f"{i}.up_w": w(I, E), f"{i}.down_w": w(E, I),
        })
    return params


def hf_name(key):
    """transformers' Qwen2 name of a key of init_params ("1.q_w" -> "model.layers.1.self_attn.q_proj.weight")."""
    if key in ("embed", "norm"):
        return {"embed": "model.embed_tokens.weight", "norm": "model.norm.weight"}[key]
    i, name = key.split(".")
    if name in ("in_norm", "post_norm"):
        return f"model.layers.{i}.{'input_layernorm' if name == 'in_norm' else 'post_attention_layernorm'}.weight"
    module, kind = name.rsplit("_", 1)
    block = "mlp" if module in ("gate", "up", "down") else "self_attn"
    return f"model.layers.{i}.{block}.{module}_proj.{'weight' if kind == 'w' else 'bias'}"


def rms_norm(x, weight):
    return hf_rms_norm(x, weight, EPS)


inv_freq = 1.0 / (cfg["rope_theta"] ** (torch.arange(0, D, 2, dtype=torch.float32) / D))
freqs = torch.outer(torch.arange(T, dtype=torch.float32), inv_freq)
emb = torch.cat((freqs, freqs), dim=-1)
COS, SIN = emb.cos()[None, None], emb.sin()[None, None]  # [1, 1, T, D]


LORA = cfg.get("lora")
LINEARS = ("q", "k", "v", "o", "gate", "up", "down")


def lora_params():
    """PEFT's fresh adapters for every decoder linear layer: A kaiming-uniform(a=sqrt(5)) [r, in], B zero [out, r]."""
    shapes = {"q": (H * D, E), "k": (KV * D, E), "v": (KV * D, E), "o": (E, H * D), "gate": (I, E), "up": (I, E), "down": (E, I)}
    params = {}
    for i in range(L):
        for name in LINEARS:
            out_f, in_f = shapes[name]
            a = torch.empty(LORA["r"], in_f)
            torch.nn.init.kaiming_uniform_(a, a=5 ** 0.5)
            params[f"{i}.{name}_A"], params[f"{i}.{name}_B"] = a, torch.zeros(out_f, LORA["r"])
    return params


def linear(p, i, name, x, bias=None):
    """One decoder linear layer, with its LoRA update when adapters are on (p holds them)."""
    y = F.linear(x, p[f"{i}.{name}_w"], bias)
    if f"{i}.{name}_A" in p:
        y = y + (LORA["alpha"] / LORA["r"]) * F.linear(F.linear(x, p[f"{i}.{name}_A"]), p[f"{i}.{name}_B"])
    return y


def layer(p, i, h):
    n, t, _ = h.shape
    a = rms_norm(h, p[f"{i}.in_norm"])
    q = linear(p, i, "q", a, p[f"{i}.q_b"]).view(n, t, H, D).transpose(1, 2)
    k = linear(p, i, "k", a, p[f"{i}.k_b"]).view(n, t, KV, D).transpose(1, 2)
    v = linear(p, i, "v", a, p[f"{i}.v_b"]).view(n, t, KV, D).transpose(1, 2)
    q, k = q * COS + rotate_half(q) * SIN, k * COS + rotate_half(k) * SIN
    k, v = (x.repeat_interleave(H // KV, dim=1) for x in (k, v))  # HF's repeat_kv
    y = attention(q, k, v).transpose(1, 2).reshape(n, t, H * D)
    h = h + linear(p, i, "o", y)
    m = rms_norm(h, p[f"{i}.post_norm"])
    return h + linear(p, i, "down", F.silu(linear(p, i, "gate", m)) * linear(p, i, "up", m))


def forward(p, ids, checkpointing):
    h = F.embedding(ids, p["embed"])
    for i in range(L):
        if checkpointing:
            h = checkpoint(lambda x, i=i: layer(p, i, x), h, use_reentrant=False)
        else:
            h = layer(p, i, h)
    return F.linear(rms_norm(h, p["norm"]), p["embed"]).float()  # [2B, T, V]; tied head; HF upcasts logits


if LORA:
    reference = starting_params(cfg, init_params, hf_name)  # the frozen base; the policy is the base plus its adapters
    adapters = {k: v.requires_grad_() for k, v in lora_params().items()}
    policy = {**reference, **adapters}
    trainable = list(adapters.values())
else:
    policy = {k: v.requires_grad_() for k, v in starting_params(cfg, init_params, hf_name).items()}
    reference = {k: v.detach().clone() for k, v in policy.items()}
    trainable = list(policy.values())
optimizer = torch.optim.AdamW(trainable, lr=cfg["lr"], weight_decay=cfg["weight_decay"])
input_ids = starting_ids(cfg, V, 2 * B, T)
loss_mask = torch.arange(T).ge(cfg["prompt_len"]).unsqueeze(0).expand(2 * B, T).to(torch.int64)
o = cfg["loss"]
score_chosen = torch.full((B,), float(o["score_chosen"]))
score_rejected = torch.full((B,), float(o["score_rejected"]))
last_loss = float("nan")


def step():
    global last_loss
    logps, _, _ = concatenated_logps(forward(policy, input_ids, cfg["gradient_checkpointing"]), input_ids, loss_mask, B)
    with torch.no_grad():
        ref, _, _ = concatenated_logps(forward(reference, input_ids, False), input_ids, loss_mask, B)
    loss = omni_dpo_loss(logps[:B], logps[B:], ref[:B], ref[B:], score_chosen, score_rejected, o)
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    last_loss = loss.item()


run_and_report(step, cfg, 2 * B, T, lambda: last_loss)
