# PyTorch's side of `omni-dpo bench generate`: sampled decoding as transformers' generate() runs
# it on a LlamaForCausalLM, written out in plain PyTorch: a prefill over the prompts, then one
# token per step with a key/value cache that grows by concatenation (DynamicCache), rotary
# positions, grouped keys and values repeated to every head (repeat_kv), RMSNorm in float32,
# SwiGLU MLP, untied head on the last position only; the logits warped as its
# TemperatureLogitsWarper and TopPLogitsWarper do, then softmax and torch.multinomial.
# Reads the config as JSON on stdin; prints one JSON line.
import json
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from measure import measure  # noqa: E402
from hf_blocks import rms_norm as hf_rms_norm, rotate_half  # noqa: E402

cfg = json.load(sys.stdin)
torch.set_num_threads(cfg["threads"])
torch.manual_seed(0)
dev = torch.device(cfg["device"])
E, L, H, KV, V, I = cfg["hidden_size"], cfg["num_hidden_layers"], cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["vocab_size"], cfg["intermediate_size"]
D = E // H
B, P, N = cfg["batch"], cfg["prompt"], cfg["new_tokens"]
EPS = cfg["rms_norm_eps"]
_sdpa = getattr(F, "scaled_dot_product_attention", None)


def w(*shape):
    return (torch.randn(*shape) * 0.02).to(dev)


p = {"embed": w(V, E), "norm": torch.ones(E, device=dev), "head": w(V, E)}
for i in range(L):
    p.update({f"{i}.in": torch.ones(E, device=dev), f"{i}.post": torch.ones(E, device=dev), f"{i}.q": w(H * D, E), f"{i}.k": w(KV * D, E),
              f"{i}.v": w(KV * D, E), f"{i}.o": w(E, H * D), f"{i}.gate": w(I, E), f"{i}.up": w(I, E), f"{i}.down": w(E, I)})
inv_freq = 1.0 / (cfg["rope_theta"] ** (torch.arange(0, D, 2, dtype=torch.float32, device=dev) / D))


def rms_norm(x, weight):
    return hf_rms_norm(x, weight, EPS)


def attention(q, k, v, causal):
    if _sdpa is not None:
        return _sdpa(q, k, v, None, 0.0, is_causal=causal)
    s = q @ k.transpose(-1, -2) / D ** 0.5
    if causal:
        t = q.shape[2]
        s = s.masked_fill(torch.ones(t, t, dtype=torch.bool, device=dev).triu(1), float("-inf"))
    return s.softmax(-1) @ v


def forward(ids, cache, past):
    n, t = ids.shape
    pos = torch.arange(past, past + t, device=dev, dtype=torch.float32)
    emb = torch.cat([torch.outer(pos, inv_freq)] * 2, dim=-1)
    cos, sin = emb.cos()[None, None], emb.sin()[None, None]  # [1, 1, T, D]
    h = F.embedding(ids, p["embed"])
    for i in range(L):
        a = rms_norm(h, p[f"{i}.in"])
        q = F.linear(a, p[f"{i}.q"]).view(n, t, H, D).transpose(1, 2)
        k = F.linear(a, p[f"{i}.k"]).view(n, t, KV, D).transpose(1, 2)
        v = F.linear(a, p[f"{i}.v"]).view(n, t, KV, D).transpose(1, 2)
        q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        if cache[i] is not None:  # DynamicCache.update: concatenate along the sequence
            k, v = torch.cat([cache[i][0], k], 2), torch.cat([cache[i][1], v], 2)
        cache[i] = (k, v)
        k, v = (x.repeat_interleave(H // KV, dim=1) for x in (k, v))
        y = attention(q, k, v, causal=t > 1).transpose(1, 2).reshape(n, t, H * D)
        h = h + F.linear(y, p[f"{i}.o"])
        m = rms_norm(h, p[f"{i}.post"])
        h = h + F.linear(F.silu(F.linear(m, p[f"{i}.gate"])) * F.linear(m, p[f"{i}.up"]), p[f"{i}.down"])
    return F.linear(rms_norm(h[:, -1], p["norm"]), p["head"])  # [B, V]: the last position only


def warp(scores):
    scores = scores / cfg["temperature"]  # TemperatureLogitsWarper
    sorted_logits, sorted_indices = torch.sort(scores, descending=False)  # TopPLogitsWarper
    cumulative = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
    remove = cumulative <= (1 - cfg["top_p"])
    remove[..., -1:] = 0
    return scores.masked_fill(remove.scatter(1, sorted_indices, remove), float("-inf"))


def generate(prompts):
    cache = [None] * L
    ids = prompts
    token = None
    for step in range(N):
        logits = forward(ids if step == 0 else token, cache, 0 if step == 0 else P + step - 1)
        token = torch.multinomial(warp(logits.float()).softmax(-1), 1)  # [B, 1]
    if dev.type == "cuda":
        torch.cuda.synchronize()


prompts = torch.randint(0, V, (B, P), device=dev)
with torch.no_grad():
    generate(prompts)  # the warm-up, outside the CPU count (as on the other side)
    cpu_start = time.process_time()
    seconds = measure(lambda: generate(prompts), trials=cfg["trials"], trial_seconds=0, warmup=0)
    cpu_seconds = (time.process_time() - cpu_start) / (cfg["trials"] + 1)  # measure's sizing round + the timed ones
print(json.dumps({"torch_version": torch.__version__, "seconds": seconds, "cpu_seconds": cpu_seconds}))
