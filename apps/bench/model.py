# PyTorch's side of `omni-dpo bench model`: a GPT-2 forward written the way transformers runs
# it (fused scaled dot-product attention, tanh GELU, tied head), timed like apps/bench/model.ts.
import json
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from measure import measure  # noqa: E402

cfg = json.load(sys.stdin)
torch.set_num_threads(cfg["threads"])
torch.manual_seed(0)
E, L, H, V, P = cfg["n_embd"], cfg["n_layer"], cfg["n_head"], cfg["vocab_size"], cfg["n_positions"]
sdpa = getattr(F, "scaled_dot_product_attention", None) or getattr(F, "_scaled_dot_product_attention")


def w(*shape):
    return torch.randn(*shape) * 0.02


wte, wpe = w(V, E), w(P, E)
layers = [dict(ln1=(torch.ones(E), torch.zeros(E)), attn=(w(E, 3 * E), torch.zeros(3 * E)), proj=(w(E, E), torch.zeros(E)),
               ln2=(torch.ones(E), torch.zeros(E)), fc=(w(E, 4 * E), torch.zeros(4 * E)), fc_proj=(w(4 * E, E), torch.zeros(E)))
          for _ in range(L)]
lnf = (torch.ones(E), torch.zeros(E))


def conv1d(x, wb):
    return torch.addmm(wb[1], x.view(-1, x.shape[-1]), wb[0]).view(*x.shape[:-1], wb[0].shape[1])


def forward(ids):
    B, T = ids.shape
    h = wte[ids] + wpe[torch.arange(T)]
    for layer in layers:
        a = F.layer_norm(h, (E,), *layer["ln1"])
        q, k, v = conv1d(a, layer["attn"]).split(E, dim=2)
        q, k, v = (t.view(B, T, H, E // H).transpose(1, 2) for t in (q, k, v))
        y = sdpa(q, k, v, None, 0.0, is_causal=True) if sdpa.__name__ == "scaled_dot_product_attention" else sdpa(q, k, v, None, 0.0, False, True)[0]
        h = h + conv1d(y.transpose(1, 2).reshape(B, T, E), layer["proj"])
        m = F.layer_norm(h, (E,), *layer["ln2"])
        h = h + conv1d(F.gelu(conv1d(m, layer["fc"]), approximate="tanh"), layer["fc_proj"])
    return F.linear(F.layer_norm(h, (E,), *lnf), wte)


ids = torch.randint(0, V, (cfg["batch"], cfg["seq"]))
with torch.no_grad():
    seconds = measure(lambda: forward(ids), trials=cfg["trials"], trial_seconds=cfg["trial_seconds"], warmup=1)
print(json.dumps({"torch_version": torch.__version__, "forward_seconds": seconds}))
