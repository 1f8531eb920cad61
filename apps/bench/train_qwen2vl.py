# PyTorch's side of `omni-dpo bench train`'s qwen2vl case: one Omni-DPO step on image preference pairs as
# TRL's DPOTrainer (or LLaMA-Factory) runs it on a Hugging Face Qwen2VLForConditionalGeneration with
# gradient_checkpointing: true and the vision tower and merger frozen (LLaMA-Factory's freeze_vision_tower and
# freeze_multi_modal_projector). Written out in plain PyTorch the way transformers' Qwen2-VL computes it: the
# Conv3d patch embedding, vision blocks (LayerNorm, fused-qkv attention with 2D rotary embeddings, attention
# split per image as cu_seqlens does, QuickGELU MLP), the 2x2 merger, image features scattered at the
# <|image_pad|> tokens, M-RoPE positions (get_rope_index for one image per row) and Qwen2 decoder layers, each
# wrapped in torch.utils.checkpoint(use_reentrant=False); full logits [2B, T, V] and TRL's log-probs. The
# reference is a live frozen copy under no_grad; torch.optim.AdamW over the language model's weights.
# Reads the config as JSON on stdin; prints one JSON line (apps/bench/train.py's format).
import json
import math
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from train_common import (  # noqa: E402
    attention, concatenated_logps, omni_dpo_loss, run_and_report, starting_params,
)
from hf_blocks import rms_norm, rotate_half  # noqa: E402
from torch.utils.checkpoint import checkpoint  # noqa: E402

cfg = json.load(sys.stdin)
torch.set_num_threads(cfg["threads"])
torch.manual_seed(0)
E, L, H, KV = cfg["n_embd"], cfg["n_layer"], cfg["n_head"], cfg["n_kv_head"]
V, I = cfg["vocab_size"], cfg["intermediate_size"]
D = E // H
B, T = cfg["pairs"], cfg["seq"]
vis = cfg["vision"]
VE, VH, VDEPTH = vis["embed_dim"], vis["num_heads"], vis["depth"]
VD = VE // VH
P, TP, M = vis["patch_size"], vis["temporal_patch_size"], vis["merge_size"]
SIDE = vis["image_side"]  # patches per image side
K = 3 * TP * P * P
N_IMAGE_TOKENS = (SIDE // M) ** 2
tok = cfg["tokens"]
EPS = 1e-6


def init_params():
    """Qwen2-VL's weights in transformers' names (published layout)."""
    def w(*shape):
        return torch.randn(*shape) * 0.02

    p = {"model.embed_tokens.weight": w(V, E), "model.norm.weight": torch.ones(E)}
    for i in range(L):
        pre = f"model.layers.{i}."
        p.update({
            pre + "input_layernorm.weight": torch.ones(E), pre + "post_attention_layernorm.weight": torch.ones(E),
            pre + "self_attn.q_proj.weight": w(H * D, E), pre + "self_attn.q_proj.bias": torch.zeros(H * D),
            pre + "self_attn.k_proj.weight": w(KV * D, E), pre + "self_attn.k_proj.bias": torch.zeros(KV * D),
            pre + "self_attn.v_proj.weight": w(KV * D, E), pre + "self_attn.v_proj.bias": torch.zeros(KV * D),
            pre + "self_attn.o_proj.weight": w(E, H * D),
            pre + "mlp.gate_proj.weight": w(I, E), pre + "mlp.up_proj.weight": w(I, E),
            pre + "mlp.down_proj.weight": w(E, I),
        })
    p["visual.patch_embed.proj.weight"] = w(VE, 3, TP, P, P)
    VI = int(VE * vis["mlp_ratio"])
    for i in range(VDEPTH):
        pre = f"visual.blocks.{i}."
        p.update({
            pre + "norm1.weight": torch.ones(VE), pre + "norm1.bias": torch.zeros(VE),
            pre + "norm2.weight": torch.ones(VE), pre + "norm2.bias": torch.zeros(VE),
            pre + "attn.qkv.weight": w(3 * VE, VE), pre + "attn.qkv.bias": torch.zeros(3 * VE),
            pre + "attn.proj.weight": w(VE, VE), pre + "attn.proj.bias": torch.zeros(VE),
            pre + "mlp.fc1.weight": w(VI, VE), pre + "mlp.fc1.bias": torch.zeros(VI),
            pre + "mlp.fc2.weight": w(VE, VI), pre + "mlp.fc2.bias": torch.zeros(VE),
        })
    W = VE * M * M
    p.update({
        "visual.merger.ln_q.weight": torch.ones(VE), "visual.merger.ln_q.bias": torch.zeros(VE),
        "visual.merger.mlp.0.weight": w(W, W), "visual.merger.mlp.0.bias": torch.zeros(W),
        "visual.merger.mlp.2.weight": w(E, W), "visual.merger.mlp.2.bias": torch.zeros(E),
    })
    return p


# The images: one per row (the same picture for chosen and rejected), values as the omni-dpo side makes them.
ROWS = 2 * B
image = torch.arange(SIDE * SIDE * K, dtype=torch.float32).mul(0.001).sin().reshape(SIDE * SIDE, K)
pixel_values = torch.cat([image] * ROWS)  # [ROWS * N, K]

# Vision rotary: each patch's row and column within its merge window order (rot_pos_emb).
def window_order(grid):
    """[SIDE, SIDE] -> [SIDE * SIDE] in the processor's patch order: merge windows row-major, then within each."""
    return grid.reshape(SIDE // M, M, SIDE // M, M).permute(0, 2, 1, 3).flatten()


hpos = window_order(torch.arange(SIDE).unsqueeze(1).expand(-1, SIDE))
wpos = window_order(torch.arange(SIDE).unsqueeze(0).expand(SIDE, -1))
v_inv = 1.0 / (10000 ** (torch.arange(0, VD // 2, 2, dtype=torch.float) / (VD // 2)))
v_table = torch.outer(torch.arange(SIDE, dtype=torch.float), v_inv)
v_rot = v_table[torch.stack([hpos, wpos], -1)].flatten(1).repeat(ROWS, 1)
v_emb = torch.cat([v_rot, v_rot], -1)
V_COS, V_SIN = v_emb.cos().unsqueeze(1), v_emb.sin().unsqueeze(1)  # [ROWS * N, 1, VD]


def vision(p):
    x = F.conv3d(pixel_values.view(-1, 3, TP, P, P), p["visual.patch_embed.proj.weight"], stride=(TP, P, P))
    x = x.view(-1, VE)
    n = SIDE * SIDE
    for i in range(VDEPTH):
        pre = f"visual.blocks.{i}."
        y = F.layer_norm(x, (VE,), p[pre + "norm1.weight"], p[pre + "norm1.bias"], 1e-6)
        qkv = F.linear(y, p[pre + "attn.qkv.weight"], p[pre + "attn.qkv.bias"])
        q, k, v = qkv.reshape(-1, 3, VH, VD).permute(1, 0, 2, 3).unbind(0)  # [ROWS * n, VH, VD] each
        q, k = q * V_COS + rotate_half(q) * V_SIN, k * V_COS + rotate_half(k) * V_SIN
        outs = []
        for r in range(ROWS):  # attention within each image (cu_seqlens)
            qs, ks, vs = (t[r * n:(r + 1) * n].transpose(0, 1) for t in (q, k, v))  # [VH, n, VD]
            att = torch.softmax(qs @ ks.transpose(1, 2) / math.sqrt(VD), dim=-1)
            outs.append((att @ vs).transpose(0, 1).reshape(n, VE))
        x = x + F.linear(torch.cat(outs), p[pre + "attn.proj.weight"], p[pre + "attn.proj.bias"])
        y = F.layer_norm(x, (VE,), p[pre + "norm2.weight"], p[pre + "norm2.bias"], 1e-6)
        y = F.linear(y, p[pre + "mlp.fc1.weight"], p[pre + "mlp.fc1.bias"])
        x = x + F.linear(y * torch.sigmoid(1.702 * y), p[pre + "mlp.fc2.weight"], p[pre + "mlp.fc2.bias"])
    x = F.layer_norm(x, (VE,), p["visual.merger.ln_q.weight"], p["visual.merger.ln_q.bias"], 1e-6)
    x = x.view(-1, VE * M * M)
    x = F.gelu(F.linear(x, p["visual.merger.mlp.0.weight"], p["visual.merger.mlp.0.bias"]))
    return F.linear(x, p["visual.merger.mlp.2.weight"], p["visual.merger.mlp.2.bias"])  # [ROWS * N / M^2, E]


# The rows: text, <|vision_start|>, the image's pad tokens, <|vision_end|>, the question, then the answer.
if cfg.get("shared"):
    input_ids = torch.tensor(cfg["shared"]["input_ids"], dtype=torch.int64)
else:
    g = tok["text_vocab"]
    before = torch.randint(0, g, (cfg["image_at"],))
    question = torch.randint(0, g, (cfg["prompt_len"] - cfg["image_at"] - 2 - N_IMAGE_TOKENS,))
    prompt = torch.cat([before, torch.tensor([tok["vision_start"]]), torch.full((N_IMAGE_TOKENS,), tok["image"]),
                        torch.tensor([tok["vision_end"]]), question])
    input_ids = torch.stack([torch.cat([prompt, torch.randint(0, g, (T - cfg["prompt_len"],))]) for _ in range(ROWS)])
image_mask = (input_ids == tok["image"]).unsqueeze(-1)

# M-RoPE positions (get_rope_index, one image per row at image_at + 1): text counts on; the image's tokens take
# (start, start + row, start + column); the text after it continues at start + side / M.
S = cfg["image_at"] + 1
g_side = SIDE // M
pos = torch.arange(T).unsqueeze(0).expand(3, T).clone()
rows_cols = torch.arange(N_IMAGE_TOKENS)
pos[0, S:S + N_IMAGE_TOKENS] = S
pos[1, S:S + N_IMAGE_TOKENS] = S + rows_cols // g_side
pos[2, S:S + N_IMAGE_TOKENS] = S + rows_cols % g_side
pos[:, S + N_IMAGE_TOKENS:] = torch.arange(S + g_side, S + g_side + T - S - N_IMAGE_TOKENS)
inv_freq = 1.0 / (cfg["rope_theta"] ** (torch.arange(0, D, 2, dtype=torch.float32) / D))
freqs = pos.float().unsqueeze(-1) * inv_freq  # [3, T, D/2]
emb = torch.cat([freqs, freqs], -1)
section = cfg["mrope_section"] * 2
COS = torch.cat([c[i % 3] for i, c in enumerate(emb.cos().split(section, -1))], -1)[None, None]  # [1, 1, T, D]
SIN = torch.cat([s[i % 3] for i, s in enumerate(emb.sin().split(section, -1))], -1)[None, None]


def layer(p, i, h):
    n, t, _ = h.shape
    pre = f"model.layers.{i}."
    a = rms_norm(h, p[pre + "input_layernorm.weight"], EPS)
    def proj(name, heads):
        w, b = p[pre + f"self_attn.{name}_proj.weight"], p[pre + f"self_attn.{name}_proj.bias"]
        return F.linear(a, w, b).view(n, t, heads, D).transpose(1, 2)  # [n, heads, t, D]

    q, k, v = proj("q", H), proj("k", KV), proj("v", KV)
    q, k = q * COS + rotate_half(q) * SIN, k * COS + rotate_half(k) * SIN
    k, v = (x.repeat_interleave(H // KV, dim=1) for x in (k, v))
    y = attention(q, k, v).transpose(1, 2).reshape(n, t, H * D)
    h = h + F.linear(y, p[pre + "self_attn.o_proj.weight"])
    m = rms_norm(h, p[pre + "post_attention_layernorm.weight"], EPS)
    gate, up = F.linear(m, p[pre + "mlp.gate_proj.weight"]), F.linear(m, p[pre + "mlp.up_proj.weight"])
    return h + F.linear(F.silu(gate) * up, p[pre + "mlp.down_proj.weight"])


def forward(p, checkpointing):
    h = F.embedding(input_ids, p["model.embed_tokens.weight"])
    h = h.masked_scatter(image_mask.expand_as(h), vision(p).to(h.dtype))
    for i in range(L):
        h = checkpoint(lambda x, i=i: layer(p, i, x), h, use_reentrant=False) if checkpointing else layer(p, i, h)
    return F.linear(rms_norm(h, p["model.norm.weight"], EPS), p["model.embed_tokens.weight"]).float()  # tied head


start = starting_params(cfg, init_params, lambda name: name)
# The vision tower and merger stay frozen, as LLaMA-Factory's defaults; the language model trains.
policy = {k: (v if k.startswith("visual.") else v.requires_grad_()) for k, v in start.items()}
reference = {k: v.detach().clone() for k, v in policy.items()}
trainable = [v for k, v in policy.items() if not k.startswith("visual.")]
optimizer = torch.optim.AdamW(trainable, lr=cfg["lr"], weight_decay=cfg["weight_decay"])
loss_mask = torch.arange(T).ge(cfg["prompt_len"]).unsqueeze(0).expand(ROWS, T).to(torch.int64)
o = cfg["loss"]
score_chosen = torch.full((B,), float(o["score_chosen"]))
score_rejected = torch.full((B,), float(o["score_rejected"]))
last_loss = float("nan")


def step():
    global last_loss
    logps, _, _ = concatenated_logps(forward(policy, cfg["gradient_checkpointing"]), input_ids, loss_mask, B)
    with torch.no_grad():
        ref, _, _ = concatenated_logps(forward(reference, False), input_ids, loss_mask, B)
    loss = omni_dpo_loss(logps[:B], logps[B:], ref[:B], ref[B:], score_chosen, score_rejected, o)
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    last_loss = loss.item()


run_and_report(step, cfg, ROWS, T, lambda: last_loss)
