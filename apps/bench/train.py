# PyTorch's side of `omni-dpo bench train`: the same Omni-DPO training step as
# apps/bench/train.ts runTrainStep, written in plain PyTorch: a GPT-2 forward as
# apps/bench/model.py writes it (fused scaled dot-product attention, tanh GELU, tied head), the
# length-normalised sequence log-prob of the answer tokens (gather minus logsumexp, the same
# arithmetic as the omni-dpo side), a frozen reference under no_grad, the Omni-DPO loss of
# docs/method.md (gradients through w_perf, c-NLL gate from values), backward and torch.optim.AdamW.
# Reads the config as JSON on stdin; prints one JSON line. Peak memory: VmHWM from
# /proc/self/status, reset beforehand through /proc/self/clear_refs where allowed.
import json
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from train_common import attention, omni_dpo_loss, run_and_report, starting_ids, starting_params  # noqa: E402

cfg = json.load(sys.stdin)
torch.set_num_threads(cfg["threads"])
torch.manual_seed(0)
E, L, H, V, P = cfg["n_embd"], cfg["n_layer"], cfg["n_head"], cfg["vocab_size"], cfg["n_positions"]
B, T = cfg["pairs"], cfg["seq"]
def init_params():
    def w(*shape):
        return torch.randn(*shape) * 0.02

    params = {"wte": w(V, E), "wpe": w(P, E), "lnf_w": torch.ones(E), "lnf_b": torch.zeros(E)}
    for i in range(L):
        params.update({
            f"{i}.ln1_w": torch.ones(E), f"{i}.ln1_b": torch.zeros(E),
            f"{i}.attn_w": w(E, 3 * E), f"{i}.attn_b": torch.zeros(3 * E),
            f"{i}.proj_w": w(E, E), f"{i}.proj_b": torch.zeros(E),
            f"{i}.ln2_w": torch.ones(E), f"{i}.ln2_b": torch.zeros(E),
            f"{i}.fc_w": w(E, 4 * E), f"{i}.fc_b": torch.zeros(4 * E),
            f"{i}.fcp_w": w(4 * E, E), f"{i}.fcp_b": torch.zeros(E),
        })
    return params


def hf_name(key):
    """transformers' GPT-2 name of a key of init_params ("3.attn_w" -> "transformer.h.3.attn.c_attn.weight")."""
    top = {"wte": "wte.weight", "wpe": "wpe.weight", "lnf_w": "ln_f.weight", "lnf_b": "ln_f.bias"}
    if key in top:
        return f"transformer.{top[key]}"
    i, name = key.split(".")
    module, kind = name.rsplit("_", 1)
    path = {"ln1": "ln_1", "ln2": "ln_2", "attn": "attn.c_attn", "proj": "attn.c_proj", "fc": "mlp.c_fc", "fcp": "mlp.c_proj"}[module]
    return f"transformer.h.{i}.{path}.{'weight' if kind == 'w' else 'bias'}"


def conv1d(x, w, b):
    return torch.addmm(b, x.view(-1, x.shape[-1]), w).view(*x.shape[:-1], w.shape[1])


def forward(p, ids):
    n, t = ids.shape
    h = p["wte"][ids] + p["wpe"][torch.arange(t)]
    for i in range(L):
        a = F.layer_norm(h, (E,), p[f"{i}.ln1_w"], p[f"{i}.ln1_b"])
        q, k, v = conv1d(a, p[f"{i}.attn_w"], p[f"{i}.attn_b"]).split(E, dim=2)
        q, k, v = (x.view(n, t, H, E // H).transpose(1, 2) for x in (q, k, v))
        y = attention(q, k, v)
        h = h + conv1d(y.transpose(1, 2).reshape(n, t, E), p[f"{i}.proj_w"], p[f"{i}.proj_b"])
        m = F.layer_norm(h, (E,), p[f"{i}.ln2_w"], p[f"{i}.ln2_b"])
        h = h + conv1d(F.gelu(conv1d(m, p[f"{i}.fc_w"], p[f"{i}.fc_b"]), approximate="tanh"), p[f"{i}.fcp_w"], p[f"{i}.fcp_b"])
    return F.linear(F.layer_norm(h, (E,), p["lnf_w"], p["lnf_b"]), p["wte"])


def sequence_logps(logits, labels):
    """Mean log-prob of the answer tokens per row: shift by one, labels -100 do not count."""
    logits, labels = logits[:, :-1], labels[:, 1:]
    ignored = labels == -100
    picked = logits.gather(-1, labels.masked_fill(ignored, 0).unsqueeze(-1)).squeeze(-1)
    token_logps = (picked - logits.logsumexp(-1)).masked_fill(ignored, 0)
    return token_logps.sum(-1) / (~ignored).sum(-1).clamp(min=1)


policy = {k: v.requires_grad_() for k, v in starting_params(cfg, init_params, hf_name).items()}
reference = {k: v.detach().clone() for k, v in policy.items()}  # the policy's frozen copy
optimizer = torch.optim.AdamW(list(policy.values()), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
input_ids = starting_ids(cfg, V, 2 * B, T)
labels = input_ids.masked_fill(torch.arange(T).lt(cfg["prompt_len"]).unsqueeze(0).expand(2 * B, T), -100)
o = cfg["loss"]
score_chosen = torch.full((B,), float(o["score_chosen"]))
score_rejected = torch.full((B,), float(o["score_rejected"]))
last_loss = float("nan")


def step():
    global last_loss
    logps = sequence_logps(forward(policy, input_ids), labels)
    with torch.no_grad():
        ref = sequence_logps(forward(reference, input_ids), labels)
    loss = omni_dpo_loss(logps[:B], logps[B:], ref[:B], ref[B:], score_chosen, score_rejected, o)
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    last_loss = loss.item()


run_and_report(step, cfg, 2 * B, T, lambda: last_loss)
