# An independent PyTorch implementation of the baselines omni-dpo takes from TRL's DPOTrainer
# (v1.x: trl/trainer/dpo_trainer.py, _compute_loss), TRL's ORPOTrainer, SimPO's sft_weight and
# the Uni-DPO Math trainer's dpo_positive (DPOP), written from those formulas in float64, not
# from omni-dpo's TypeScript. test/objectives/trl-parity.test.ts feeds it cases as JSON on stdin
# and compares the losses, the mean loss, its gradients and the metrics it prints.
#
# Inputs per case: the four log-prob vectors as the trainer passes them (pc, pr, rc, rr; per-token
# means when per_token, else sums over the answer's tokens), the answers' token counts (lc, lr),
# and the options (omni-dpo's names). TRL's sequence-level losses see the log-probs as passed;
# the ones TRL computes per token (ipo, sigmoid_norm, sft, ORPO's odds) first rebuild the sums.
import json
import sys

import torch
import torch.nn.functional as F


def f_score(u, o):
    """TRL's chosen_scores / rejected_scores for f_divergence_type."""
    kind = o["fDivergenceType"]
    if kind == "reverse_kl":
        return u
    if kind == "forward_kl":
        return -torch.exp(-u)
    if kind == "js_divergence":
        return F.logsigmoid(u)
    if kind == "alpha_divergence":
        a = o["fAlphaDivergenceCoef"]
        if abs(a - 1.0) < 1e-6:
            return u
        coef = 1.0 / (a - 1.0)
        t = (a - 1.0) * u
        # TRL clamps at 80 (float32); float64 is kept in float64 with the same clamp.
        return torch.exp(torch.clamp(t, max=80.0)) * coef
    raise ValueError(kind)


def smoothed(z, e):
    return -F.logsigmoid(z) * (1 - e) - F.logsigmoid(-z) * e


def term(t, o, pc, pr, rc, rr, lc, lr, per_token):
    beta = o["beta"]
    e = o.get("labelSmoothing", 0.0)
    sum_c = pc * lc if per_token else pc
    sum_r = pr * lr if per_token else pr
    ref_sum_c = rc * lc if per_token else rc
    ref_sum_r = rr * lr if per_token else rr
    chosen_logratios = pc - rc
    rejected_logratios = pr - rr
    chosen_scores = f_score(chosen_logratios, o)
    rejected_scores = f_score(rejected_logratios, o)
    delta_score = chosen_scores - rejected_scores
    if t == "sigmoid":
        return -F.logsigmoid(beta * delta_score)
    if t == "hinge":
        return torch.relu(1 - beta * delta_score)
    if t in ("ipo", "sigmoid_norm"):
        # f of the summed log-ratio, over the token count
        cs = f_score(sum_c - ref_sum_c, o) / lc.clamp(min=1.0)
        rs = f_score(sum_r - ref_sum_r, o) / lr.clamp(min=1.0)
        if t == "ipo":
            return (cs - rs - 1 / (2 * beta)) ** 2
        return -F.logsigmoid(beta * (cs - rs))
    if t == "exo_pair":
        eps = torch.tensor(e, dtype=torch.float64)
        qw, log_qw = torch.sigmoid(beta * delta_score), F.logsigmoid(beta * delta_score)
        ql, log_ql = torch.sigmoid(-beta * delta_score), F.logsigmoid(-beta * delta_score)
        return qw * (log_qw - torch.log1p(-eps)) + ql * (log_ql - torch.log(eps))
    if t == "nca_pair":
        cw, rw = beta * chosen_scores, beta * rejected_scores
        return -F.logsigmoid(cw) - 0.5 * F.logsigmoid(-cw) - 0.5 * F.logsigmoid(-rw)
    if t == "robust":
        if o["robustVariant"] == "cdpo":
            return smoothed(beta * delta_score, e)
        clean = -(1 - e) * F.logsigmoid(beta * delta_score)
        flipped = -e * F.logsigmoid(-beta * delta_score)
        return (clean - flipped) / (1 - 2 * e)
    if t == "bco_pair":
        return -F.logsigmoid(beta * chosen_scores) - F.logsigmoid(-beta * rejected_scores)
    if t == "sppo_hard":
        return (chosen_scores - 0.5 / beta) ** 2 + (rejected_scores + 0.5 / beta) ** 2
    if t == "aot":
        a, _ = torch.sort(pc - pr, dim=0)
        b, _ = torch.sort(rc - rr, dim=0)
        return smoothed(beta * (a - b), e)
    if t == "aot_unpaired":
        a, _ = torch.sort(chosen_logratios, dim=0)
        b, _ = torch.sort(rejected_logratios, dim=0)
        return smoothed(beta * (a - b), e)
    if t == "apo_zero":
        return (1 - torch.sigmoid(beta * chosen_logratios)) + torch.sigmoid(beta * rejected_logratios)
    if t == "apo_down":
        return torch.sigmoid(beta * chosen_logratios) + (1 - torch.sigmoid(beta * delta_score))
    if t == "discopop":
        logits = delta_score * beta
        mod = torch.sigmoid(logits / o["discopopTau"])
        return -F.logsigmoid(logits) * (1 - mod) + torch.exp(-logits) * mod
    if t == "sft":
        return chosen_nll(sum_c, lc).expand(pc.shape[0])
    raise ValueError(t)


def chosen_nll(sum_c, lc):
    """Cross entropy over every chosen token of the batch (TRL's sft term, ORPO's NLL)."""
    return -sum_c.sum() / lc.sum()


# omni-dpo's lossType -> TRL's loss_type
TRL_NAME = {
    "dpo": "sigmoid", "robust": "robust", "ipo": "ipo", "hinge": "hinge", "exo_pair": "exo_pair",
    "nca_pair": "nca_pair", "bco_pair": "bco_pair", "sppo_hard": "sppo_hard", "aot": "aot",
    "aot_unpaired": "aot_unpaired", "apo_zero": "apo_zero", "apo_down": "apo_down", "discopop": "discopop",
    "sigmoid_norm": "sigmoid_norm", "sft": "sft",
}


def log1mexp(x):
    return torch.where(x < -0.6931471805599453, torch.log1p(-torch.exp(x)), torch.log(-torch.expm1(x)))


def run(case):
    o, x = case["options"], case["inputs"]
    f64 = lambda v: torch.tensor(v, dtype=torch.float64)
    pc = f64(x["pc"]).requires_grad_()
    pr = f64(x["pr"]).requires_grad_()
    rc = f64(x["rc"]).requires_grad_()
    rr = f64(x["rr"]).requires_grad_()
    lc, lr, per_token = f64(x["lc"]), f64(x["lr"]), x["perToken"]
    t, beta = o["lossType"], o["beta"]
    metrics = {}
    with_reference = True
    if t in TRL_NAME:
        losses = term(TRL_NAME[t], o, pc, pr, rc, rr, lc, lr, per_token)
        with_reference = t != "sft"
    elif t == "combined":
        names = o["lossTypes"].split(",")
        weights = [float(w) for w in o["lossWeights"].split(",")] if o["lossWeights"] else [1.0] * len(names)
        # TRL: loss = sum_k mean(L_k) * w_k; per pair, the same weighted sum
        losses = 0
        for name, w in zip(names, weights):
            oo = dict(o, robustVariant="rdpo") if name == "robust" else o
            losses = losses + term(name, oo, pc, pr, rc, rr, lc, lr, per_token) * w
    elif t == "dpop":
        # Uni-DPO Math trainer's dpo_positive_loss
        logits = (pc - pr) - (rc - rr)
        penalty = torch.clamp(rc - pc, min=0)
        margin = o["nllLambda"] * penalty
        e = o["labelSmoothing"]
        losses = -F.logsigmoid(beta * logits - margin) * (1 - e) - F.logsigmoid(-beta * logits + margin) * e
        metrics["dpop_penalty"] = penalty.detach().mean().item()
    elif t == "orpo":
        # TRL's ORPOTrainer: average log-probs, loss = nll - beta * logsigmoid(log_odds)
        mean_c = pc if per_token else pc / lc.clamp(min=1.0)
        mean_r = pr if per_token else pr / lr.clamp(min=1.0)
        log_odds = (mean_c - mean_r) - (log1mexp(mean_c) - log1mexp(mean_r))
        ratio = F.logsigmoid(log_odds)
        nll = chosen_nll(pc * lc if per_token else pc, lc)
        losses = nll - beta * ratio
        with_reference = False
        metrics.update(nll_loss=nll.item(), log_odds_ratio=ratio.mean().item(), log_odds_chosen=log_odds.mean().item())
    elif t == "simpo":
        z = beta * ((pc - pr) - o["gammaBetaRatio"])
        e = o["labelSmoothing"]
        losses = smoothed(z, e) if o["simpoForm"] == "sigmoid" else torch.relu(1 - z)
        if o["sftWeight"] > 0:
            # SimPO's trainer: sft_weight * cross entropy of the chosen tokens
            losses = losses + o["sftWeight"] * chosen_nll(pc * lc if per_token else pc, lc)
        with_reference = False
    else:
        raise ValueError(t)
    if o.get("useWeighting") and t in list(TRL_NAME) + ["combined"]:
        # TRL: per_sequence_loss *= chosen_weights * rejected_weights (computed under no_grad)
        losses = losses * (f64(x["wc"]) * f64(x["wr"]))
    if with_reference:
        cr, rj = beta * (pc - rc).detach(), beta * (pr - rr).detach()
    else:
        cr, rj = beta * pc.detach(), beta * pr.detach()
    loss = losses.mean()
    loss.backward()
    grad = lambda v: (v.grad if v.grad is not None else torch.zeros_like(v)).tolist()
    metrics.update({
        "rewards/chosen": cr.mean().item(), "rewards/rejected": rj.mean().item(),
        "rewards/accuracies": (cr > rj).to(torch.float64).mean().item(), "rewards/margins": (cr - rj).mean().item(),
        "logps/chosen": pc.detach().mean().item(), "logps/rejected": pr.detach().mean().item(),
    })
    return {"losses": losses.tolist(), "loss": loss.item(), "grads": [grad(pc), grad(pr), grad(rc), grad(rr)], "metrics": metrics}


if __name__ == "__main__":
    cases = json.load(sys.stdin)
    print(json.dumps([run(c) for c in cases]))
