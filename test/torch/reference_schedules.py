# transformers' learning-rate schedules (optimization.py's lambdas and get_scheduler's dispatch),
# written here from that source and run through PyTorch's LambdaLR on a real optimizer, as the
# HF Trainer runs them. stdin: [{"type", "lr", "total", "warmup", "kwargs", "steps"}]; prints,
# per case, the learning rate in force after 0, 1, ..., steps scheduler steps.
import json
import math
import sys

import torch


def lambda_for(kind, lr, total, warmup, kw):
    def lin_warm(s):
        return s / max(1, warmup)

    if kind == "constant":
        return lambda s: 1.0
    if kind == "constant_with_warmup":
        return lambda s: lin_warm(s) if s < warmup else 1.0
    if kind == "linear":
        return lambda s: lin_warm(s) if s < warmup else max(0.0, (total - s) / max(1, total - warmup))
    if kind in ("cosine", "cosine_with_min_lr"):
        cycles = kw.get("num_cycles", 0.5)
        rate = 0.0
        if kind == "cosine_with_min_lr":
            rate = kw["min_lr"] / lr if kw.get("min_lr") is not None else kw["min_lr_rate"]

        def f(s):
            if s < warmup:
                return lin_warm(s)
            p = (s - warmup) / max(1, total - warmup)
            return max(0.0, (0.5 * (1.0 + math.cos(math.pi * cycles * 2.0 * p))) * (1 - rate) + rate)
        return f
    if kind == "cosine_warmup_with_min_lr":
        cycles = kw.get("num_cycles", 0.5)
        rate = kw["min_lr"] / lr if kw.get("min_lr") is not None else kw["min_lr_rate"]
        wr = kw.get("warmup_lr_rate")

        def f(s):
            if s < warmup:
                return (s + 1.0) / max(1.0, warmup) if wr is None else wr + (1.0 - wr) * s / max(1, warmup - 1)
            p = (s - warmup + 1.0) / max(1.0, total - warmup)
            return max(0, (0.5 * (1.0 + math.cos(math.pi * cycles * 2.0 * p))) * (1 - rate) + rate)
        return f
    if kind == "cosine_with_restarts":
        cycles = kw.get("num_cycles", 1)

        def f(s):
            if s < warmup:
                return lin_warm(s)
            p = (s - warmup) / max(1, total - warmup)
            return 0.0 if p >= 1.0 else max(0.0, 0.5 * (1.0 + math.cos(math.pi * ((cycles * p) % 1.0))))
        return f
    if kind == "polynomial":
        end, power = kw.get("lr_end", 1e-7), kw.get("power", 1.0)

        def f(s):
            if s < warmup:
                return lin_warm(s)
            if s > total:
                return end / lr
            return ((lr - end) * (1 - (s - warmup) / (total - warmup)) ** power + end) / lr
        return f
    if kind == "inverse_sqrt":
        timescale = warmup or 10_000
        return lambda s: lin_warm(s) if s < warmup else 1.0 / math.sqrt((s + timescale - warmup) / timescale)
    if kind == "warmup_stable_decay":
        decay = kw["num_decay_steps"]
        stable = kw.get("num_stable_steps", total - warmup - decay)
        wt, dt = kw.get("warmup_type", "linear"), kw.get("decay_type", "cosine")
        floor, cycles = kw.get("min_lr_ratio", 0.0), kw.get("num_cycles", 0.5)

        def f(s):
            if s < warmup:
                p = s / max(1, warmup)
                x = p if wt == "linear" else 0.5 * (1.0 - math.cos(math.pi * p)) if wt == "cosine" else 1.0 - math.sqrt(1.0 - p)
                return max(0.0, x * (1.0 - floor) + floor)
            if s < warmup + stable:
                return 1.0
            if s < warmup + stable + decay:
                p = (s - warmup - stable) / max(1, decay)
                x = 1.0 - p if dt == "linear" else 0.5 * (1.0 + math.cos(math.pi * cycles * 2.0 * p)) if dt == "cosine" else 1.0 - math.sqrt(p)
                return max(0.0, x * (1.0 - floor) + floor)
            return floor
        return f
    raise ValueError(kind)


def rates(case):
    param = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
    opt = torch.optim.SGD([param], lr=case["lr"])
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda_for(case["type"], case["lr"], case["total"], case["warmup"], case["kwargs"]))
    out = [sched.get_last_lr()[0]]
    for _ in range(case["steps"]):
        opt.step()
        sched.step()
        out.append(sched.get_last_lr()[0])
    return out


if __name__ == "__main__":
    print(json.dumps([rates(c) for c in json.load(sys.stdin)]))
