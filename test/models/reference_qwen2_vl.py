#!/usr/bin/env python3
"""An independent PyTorch reference of Qwen2VLForConditionalGeneration, written from the published
architecture (transformers' modeling_qwen2_vl, eager attention) without transformers and without
looking at the TypeScript it checks. The checkpoint is read with reference_models.load_directory.

  * Names: visual.*, model.*, lm_head.* (the published checkpoints) or model.visual.*,
    model.language_model.*, lm_head.* (transformers' newer layout); text fields at the top of
    config.json or in text_config.
  * Vision: pixel_values [N, C * tp * p * p] viewed as [N, C, tp, p, p] through the Conv3d
    (kernel = stride, no bias); per block x + attn(LN1(x)), x + fc2(quick_gelu(fc1(LN2(x))))
    (LayerNorm eps 1e-6); attention over fused qkv with 2D rotary embeddings (rot_pos_emb: each
    patch's row and column in its frame in the merge-window order, VisionRotaryEmbedding(head_dim
    / 2, theta 10000), cos/sin of cat(freqs, freqs)), computed separately for each frame
    (cu_seqlens), scaled by 1/sqrt(head_dim); merger: LN(x).view(-1, 4E) -> Linear -> GELU ->
    Linear.
  * Text: the image features replace the embeddings at image_token_id (masked_scatter, row-major);
    positions from get_rope_index (3D for image tokens after each <|vision_start|>, text after an
    image continues at max + 1, padding 1); M-RoPE: cos/sin [3, B, T, D] split by
    mrope_section * 2, chunk i from axis i % 3; Qwen2 layers (q/k/v biases, RMSNorm in float32,
    GQA, SwiGLU), additive causal + padding mask.

JSON on stdin:
  {"cases": [{"dir": str, "input_ids": [[int]], "attention_mask": [[0|1]] | null,
              "pixel_values": [float] | null, "pixel_shape": [N, K] | null, "image_grid_thw": [[t, h, w]] | null}]}
prints on its last stdout line {"results": [{"shape": [B, T, V], "logits": [float, ...]}]}.
"""
import json
import math
import sys

import torch
import torch.nn.functional as F

import reference_models as ref


def weights(model_dir):
    config, tensors = ref.load_directory(model_dir)
    if any(n.startswith("model.language_model.") or n.startswith("model.visual.") for n in tensors):
        renamed = {}
        for n, t in tensors.items():
            if n.startswith("model.visual."):
                n = "visual." + n[len("model.visual."):]
            elif n.startswith("model.language_model."):
                n = "model." + n[len("model.language_model."):]
            renamed[n] = t
        tensors = renamed
    tensors = {n: t.to(torch.float32) for n, t in tensors.items()}
    text = dict(config)
    text.update(config.get("text_config") or {})
    return config, text, tensors


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat([-x[..., half:], x[..., :half]], dim=-1)


def quick_gelu(x):
    return x * torch.sigmoid(1.702 * x)


def vision(config, W, pixel_values, grid):
    vc = config["vision_config"]
    E, H = vc["embed_dim"], vc["num_heads"]
    C = vc.get("in_chans", vc.get("in_channels", 3))
    p, tp, m = vc["patch_size"], vc.get("temporal_patch_size", 2), vc.get("spatial_merge_size", 2)
    D = E // H
    x = pixel_values.view(-1, C, tp, p, p)
    x = F.conv3d(x, W["visual.patch_embed.proj.weight"], stride=(tp, p, p)).view(-1, E)

    pos = []
    for t, h, w in grid.tolist():
        hpos = torch.arange(h).unsqueeze(1).expand(-1, w).reshape(h // m, m, w // m, m).permute(0, 2, 1, 3).flatten()
        wpos = torch.arange(w).unsqueeze(0).expand(h, -1).reshape(h // m, m, w // m, m).permute(0, 2, 1, 3).flatten()
        pos.append(torch.stack([hpos, wpos], dim=-1).repeat(t, 1))
    pos = torch.cat(pos)
    dim = D // 2
    inv = 1.0 / (10000 ** (torch.arange(0, dim, 2, dtype=torch.float) / dim))
    table = torch.outer(torch.arange(int(grid[:, 1:].max()), dtype=torch.float), inv)
    rot = table[pos].flatten(1)
    emb = torch.cat([rot, rot], dim=-1)
    cos, sin = emb.cos().unsqueeze(1), emb.sin().unsqueeze(1)  # [N, 1, D]

    sizes = torch.repeat_interleave(grid[:, 1] * grid[:, 2], grid[:, 0]).tolist()
    bounds = [0]
    for s in sizes:
        bounds.append(bounds[-1] + s)

    depth = vc["depth"]
    for i in range(depth):
        pre = f"visual.blocks.{i}."
        y = F.layer_norm(x, (E,), W[pre + "norm1.weight"], W[pre + "norm1.bias"], 1e-6)
        qkv = F.linear(y, W[pre + "attn.qkv.weight"], W[pre + "attn.qkv.bias"])
        q, k, v = qkv.reshape(-1, 3, H, D).permute(1, 0, 2, 3).unbind(0)  # [N, H, D]
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        outs = []
        for s, e in zip(bounds[:-1], bounds[1:]):
            qs, ks, vs = q[s:e].transpose(0, 1), k[s:e].transpose(0, 1), v[s:e].transpose(0, 1)  # [H, n, D]
            att = torch.softmax(qs @ ks.transpose(1, 2) / math.sqrt(D), dim=-1)
            outs.append((att @ vs).transpose(0, 1).reshape(e - s, E))
        x = x + F.linear(torch.cat(outs), W[pre + "attn.proj.weight"], W[pre + "attn.proj.bias"])
        y = F.layer_norm(x, (E,), W[pre + "norm2.weight"], W[pre + "norm2.bias"], 1e-6)
        act = quick_gelu if vc.get("hidden_act", "quick_gelu") == "quick_gelu" else F.gelu
        y = F.linear(act(F.linear(y, W[pre + "mlp.fc1.weight"], W[pre + "mlp.fc1.bias"])),
                     W[pre + "mlp.fc2.weight"], W[pre + "mlp.fc2.bias"])
        x = x + y
    x = F.layer_norm(x, (E,), W["visual.merger.ln_q.weight"], W["visual.merger.ln_q.bias"], 1e-6)
    x = x.view(-1, E * m * m)
    x = F.gelu(F.linear(x, W["visual.merger.mlp.0.weight"], W["visual.merger.mlp.0.bias"]))
    return F.linear(x, W["visual.merger.mlp.2.weight"], W["visual.merger.mlp.2.bias"])


def rope_index(config, text, input_ids, attention_mask, grid):
    """get_rope_index for images: [3, B, T] positions (padding 1)."""
    m = config["vision_config"].get("spatial_merge_size", 2)
    image_id = config.get("image_token_id", text.get("image_token_id"))
    start_id = config.get("vision_start_token_id", text.get("vision_start_token_id"))
    B, T = input_ids.shape
    position_ids = torch.ones(3, B, T, dtype=torch.long)
    image_index = 0
    for i in range(B):
        ids = input_ids[i][attention_mask[i] == 1]
        starts = torch.argwhere(ids == start_id).squeeze(1)
        n_images = int((ids[starts + 1] == image_id).sum()) if len(starts) else 0
        tokens = ids.tolist()
        pieces = []
        st = 0
        for _ in range(n_images):
            ed = tokens.index(image_id, st)
            t, h, w = grid[image_index].tolist()
            image_index += 1
            gt, gh, gw = t, h // m, w // m
            text_len = ed - st
            st_idx = pieces[-1].max() + 1 if pieces else 0
            pieces.append(torch.arange(text_len).view(1, -1).expand(3, -1) + st_idx)
            t_index = torch.arange(gt).view(-1, 1).expand(-1, gh * gw).flatten()
            h_index = torch.arange(gh).view(1, -1, 1).expand(gt, -1, gw).flatten()
            w_index = torch.arange(gw).view(1, 1, -1).expand(gt, gh, -1).flatten()
            pieces.append(torch.stack([t_index, h_index, w_index]) + text_len + st_idx)
            st = ed + gt * gh * gw
        if st < len(tokens):
            st_idx = pieces[-1].max() + 1 if pieces else 0
            pieces.append(torch.arange(len(tokens) - st).view(1, -1).expand(3, -1) + st_idx)
        position_ids[:, i, attention_mask[i] == 1] = torch.cat(pieces, dim=1)
    return position_ids


def rms_norm(x, w, eps):
    v = x.float().pow(2).mean(-1, keepdim=True)
    return w * (x.float() * torch.rsqrt(v + eps)).to(x.dtype)


def logits_of(case):
    config, text, W = weights(case["dir"])
    input_ids = torch.tensor(case["input_ids"], dtype=torch.long)
    B, T = input_ids.shape
    mask = case.get("attention_mask")
    attention_mask = torch.tensor(mask, dtype=torch.long) if mask is not None else torch.ones(B, T, dtype=torch.long)
    C = text["hidden_size"]
    heads = text["num_attention_heads"]
    kv = text.get("num_key_value_heads", heads)
    D = C // heads
    eps = text.get("rms_norm_eps", 1e-6)
    image_id = config.get("image_token_id", text.get("image_token_id"))

    h = F.embedding(input_ids, W["model.embed_tokens.weight"])
    grid = None
    if case.get("pixel_values") is not None:
        pixels = torch.tensor(case["pixel_values"], dtype=torch.float32).view(*case["pixel_shape"])
        grid = torch.tensor(case["image_grid_thw"], dtype=torch.long)
        feats = vision(config, W, pixels, grid)
        sel = (input_ids == image_id).unsqueeze(-1).expand_as(h)
        h = h.masked_scatter(sel, feats)
        positions = rope_index(config, text, input_ids, attention_mask, grid)
    else:
        pos = attention_mask.cumsum(-1) - 1
        pos.masked_fill_(attention_mask == 0, 1)
        positions = pos.unsqueeze(0).expand(3, B, T)

    rope = text.get("rope_scaling") or text.get("rope_parameters")
    section = rope["mrope_section"]
    theta = text.get("rope_theta", (rope or {}).get("rope_theta", 1000000.0))
    inv = 1.0 / (theta ** (torch.arange(0, D, 2, dtype=torch.float) / D))
    freqs = positions.float().unsqueeze(-1) * inv  # [3, B, T, D/2]
    emb = torch.cat([freqs, freqs], dim=-1)  # [3, B, T, D]
    def pick(x):
        parts = x.split(section * 2, dim=-1)
        return torch.cat([part[i % 3] for i, part in enumerate(parts)], dim=-1).unsqueeze(1)  # [B, 1, T, D]
    cos, sin = pick(emb.cos()), pick(emb.sin())

    allowed = torch.tril(torch.ones(T, T, dtype=torch.bool)).view(1, 1, T, T) & (attention_mask == 1).view(B, 1, 1, T)
    add = torch.zeros(B, 1, T, T).masked_fill(~allowed, torch.finfo(torch.float32).min)

    for i in range(text["num_hidden_layers"]):
        pre = f"model.layers.{i}."
        y = rms_norm(h, W[pre + "input_layernorm.weight"], eps)
        q = F.linear(y, W[pre + "self_attn.q_proj.weight"], W[pre + "self_attn.q_proj.bias"])
        k = F.linear(y, W[pre + "self_attn.k_proj.weight"], W[pre + "self_attn.k_proj.bias"])
        v = F.linear(y, W[pre + "self_attn.v_proj.weight"], W[pre + "self_attn.v_proj.bias"])
        q = q.view(B, T, heads, D).transpose(1, 2)
        k = k.view(B, T, kv, D).transpose(1, 2)
        v = v.view(B, T, kv, D).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = k.repeat_interleave(heads // kv, dim=1)
        v = v.repeat_interleave(heads // kv, dim=1)
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(D) + add, dim=-1)
        o = (att @ v).transpose(1, 2).reshape(B, T, heads * D)
        h = h + F.linear(o, W[pre + "self_attn.o_proj.weight"])
        y = rms_norm(h, W[pre + "post_attention_layernorm.weight"], eps)
        g = F.linear(y, W[pre + "mlp.gate_proj.weight"])
        u = F.linear(y, W[pre + "mlp.up_proj.weight"])
        h = h + F.linear(F.silu(g) * u, W[pre + "mlp.down_proj.weight"])
    h = rms_norm(h, W["model.norm.weight"], eps)
    head = W.get("lm_head.weight", W["model.embed_tokens.weight"])
    return F.linear(h, head)


def main():
    request = json.load(sys.stdin)
    torch.set_num_threads(1)
    results = []
    with torch.no_grad():
        for case in request["cases"]:
            logits = logits_of(case)
            results.append({"shape": list(logits.shape), "logits": logits.reshape(-1).double().tolist()})
    print(json.dumps({"results": results}))


if __name__ == "__main__":
    main()
