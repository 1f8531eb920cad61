"""What the PyTorch sides of `omni-dpo bench train` share: causal attention, the Omni-DPO loss (docs/method.md),
the starting weights and tokens (the omni-dpo side's when shared), the process's RSS and peak, and the timed loop
that prints the JSON row train.ts reads."""
import json
import struct
import time

import torch
import torch.nn.functional as F


# Causal attention as this PyTorch has it (older builds name the function with a leading underscore).
_sdpa = getattr(F, "scaled_dot_product_attention", None) or getattr(torch, "_scaled_dot_product_attention", None) \
    or getattr(F, "_scaled_dot_product_attention")


def attention(q, k, v):
    """Causal scaled dot-product attention of q, k, v [B, H, T, D]."""
    if _sdpa.__name__ == "scaled_dot_product_attention":
        return _sdpa(q, k, v, None, 0.0, is_causal=True)
    return _sdpa(q, k, v, None, 0.0, False, True)[0]


def omni_dpo_loss(pc, pr, rc, rr, sc, sr, o):
    """docs/method.md: w_qual * w_perf * -logsigmoid(beta * m) + calibrated NLL; the batch mean."""
    beta = o["beta"]
    dpi = pc - pr
    m = dpi - (rc - rr)
    w_qual = torch.sigmoid(o["qual_eta"] * (sc - sr))
    w_perf = (1 - torch.sigmoid(beta * dpi - o["tau_ref"])) ** o["perf_gamma"]  # gradient flows through it
    losses = -w_qual * w_perf * F.logsigmoid(beta * m)
    if o["nll_lambda"] > 0:
        gate = ((rc.detach() > pc.detach()) & (sc >= o["tau_good"])).to(pc.dtype)
        losses = losses - o["nll_lambda"] * gate * pc
    return losses.mean()


def selective_log_softmax(logits, index):
    """TRL's: for float32, gather minus a logsumexp computed row by row."""
    selected = torch.gather(logits, dim=-1, index=index.unsqueeze(-1)).squeeze(-1)
    logsumexp = torch.stack([torch.logsumexp(lg, dim=-1) for lg in logits])
    return selected - logsumexp


def concatenated_logps(logits, input_ids, loss_mask, B):
    """TRL's concatenated_forward after the model call (B chosen rows, then B rejected): per-row mean log-prob and
    the chosen/rejected mean logits."""
    labels = torch.roll(input_ids, shifts=-1, dims=1)
    mask = torch.roll(loss_mask, shifts=-1, dims=1).bool()
    labels = labels.masked_fill(~mask, 0)
    per_token = selective_log_softmax(logits, labels).masked_fill(~mask, 0)
    logps = per_token.sum(-1) / mask.sum(-1).clamp(min=1)
    with torch.no_grad():
        mean_chosen = logits[:B][mask[:B]].mean().item()
        mean_rejected = logits[B:][mask[B:]].mean().item()
    return logps, mean_chosen, mean_rejected


_DTYPES = {"F32": torch.float32, "F64": torch.float64, "BF16": torch.bfloat16, "F16": torch.float16}


def read_safetensors(path):
    """A safetensors file as {name: tensor}: an 8-byte little-endian header length, the JSON header, the data."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        begin, end = t["data_offsets"]
        buf = bytearray(data[8 + n + begin:8 + n + end])
        out[name] = torch.frombuffer(buf, dtype=_DTYPES[t["dtype"]]).reshape(t["shape"]) if buf else \
            torch.empty(t["shape"], dtype=_DTYPES[t["dtype"]])
    return out


def starting_params(cfg, init_params, hf_name):
    """The policy's starting weights: cfg["shared"]["weights"] (the omni-dpo side's, in Hugging Face names, mapped by
    hf_name) when the run shares them, else this side's own random init."""
    shared = cfg.get("shared")
    if not shared:
        return init_params()
    hf = read_safetensors(shared["weights"])
    return {k: hf[hf_name(k)].clone() for k in init_params()}  # init_params for its names only


def starting_ids(cfg, vocab, rows, seq):
    """The batch's token ids [rows, seq]: cfg["shared"]["input_ids"] when shared, else random."""
    shared = cfg.get("shared")
    return torch.tensor(shared["input_ids"], dtype=torch.int64) if shared else torch.randint(0, vocab, (rows, seq))


def proc_status():
    try:
        with open("/proc/self/status") as f:
            fields = dict(line.split(":", 1) for line in f if ":" in line)
        return int(fields["VmRSS"].split()[0]) * 1024, int(fields["VmHWM"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        return None


def reset_peak():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def run_and_report(step, cfg, rows, seq, last_loss):
    """Warm-up steps, then timed steps with the peak RSS reset between; prints the JSON row."""
    first_loss = float("nan")
    for i in range(cfg["warmup"]):
        step()
        if i == 0:
            first_loss = last_loss()  # before any update: the objective itself, comparable across sides
    before = proc_status()
    reset = reset_peak()
    times = []
    for _ in range(cfg["steps"]):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    after = proc_status()
    ordered = sorted(times)
    if after is None:
        import resource
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    else:
        peak = after[1]
    print(json.dumps({
        "side": "pytorch", "version": torch.__version__, "seq": seq, "rows": rows,
        "seconds_per_step": ordered[len(ordered) // 2], "best_seconds": ordered[0], "step_seconds": times,
        "tokens_per_second": rows * seq / ordered[0],
        "rss_before_bytes": before[0] if before else None, "peak_rss_bytes": peak,
        "peak_reset": reset and after is not None, "loss": last_loss(), "first_loss": first_loss,
    }))
