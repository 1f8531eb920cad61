# PyTorch's side of `omni-dpo bench engine`: the same operations, sizes and timing procedure
# as apps/bench/engine.ts. Reads its settings as JSON on stdin, prints results as JSON.
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch  # noqa: E402
from measure import measure  # noqa: E402

cfg = json.load(sys.stdin)
torch.set_num_threads(cfg["threads"])
torch.manual_seed(0)
out = {"torch_version": torch.__version__, "threads": torch.get_num_threads()}

for n in cfg["matmul_sizes"]:
    a, b = torch.randn(n, n), torch.randn(n, n)
    out[f"matmul_{n}"] = measure(lambda: torch.matmul(a, b), trial_seconds=cfg["trial_seconds"])

B, fin, fout = cfg["linear"]
x = torch.randn(B, fin, requires_grad=True)
w = torch.randn(fout, fin, requires_grad=True)
bias = torch.randn(fout, requires_grad=True)


def linear_step():
    torch.nn.functional.linear(x, w, bias).sum().backward()
    x.grad = None
    w.grad = None
    bias.grad = None


out["linear"] = measure(linear_step, trial_seconds=cfg["trial_seconds"])

s, t = torch.randn(4), torch.randn(4)
out["tiny_add"] = measure(lambda: s + t, trial_seconds=cfg["trial_seconds"])
g = torch.randn(4, requires_grad=True)
out["tiny_mul_grad"] = measure(lambda: g * t, trial_seconds=cfg["trial_seconds"])
print(json.dumps(out))
