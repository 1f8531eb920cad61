#!/usr/bin/env python3
"""An independent PyTorch reference of one reward-model training step's loss and gradients, as
TRL's RewardTrainer.compute_loss computes them (written from TRL's code, not from the
TypeScript it checks):

  rewards = model(input_ids=[chosen; rejected], attention_mask).logits.squeeze(-1)   # [2B]
  r_w, r_l = rewards.chunk(2)
  loss = -logsigmoid(r_w - r_l - margin).mean()      (margin: the batch's margin column, if any)
  loss += center_rewards_coefficient * mean((r_w + r_l) ** 2)     (when the coefficient is set)

The classifier is reference_archs2.py's (transformers' GenericForSequenceClassification over the
checkpoint's decoder), here with gradients on every floating-point tensor of the checkpoint.

JSON on stdin:
  {"dir": str, "input_ids": [[int]] (2B rows, chosen first), "attention_mask": [[0|1]],
   "pad_token_id": int (the trainer's, as TRL sets model.config.pad_token_id),
   "margin": [float] | null, "center_rewards_coefficient": float | null}
prints on its last stdout line
  {"loss": float, "grads": {name: [float, ...]}}   (each gradient flattened, row-major)
"""

import json
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "models"))
import reference_archs2 as archs2  # noqa: E402
import reference_models as ref  # noqa: E402


def main():
    request = json.load(sys.stdin)
    torch.set_num_threads(1)
    config, tensors = ref.load_directory(request["dir"])
    for t in tensors.values():
        if t.is_floating_point():
            t.requires_grad_(True)
    input_ids = torch.as_tensor(request["input_ids"], dtype=torch.int64)
    attention_mask = torch.as_tensor(request["attention_mask"], dtype=torch.int64)
    b2, t = input_ids.shape
    position_ids = torch.arange(t).unsqueeze(0).expand(b2, t)
    W = ref.Weights(tensors, torch.float32, ignore=lambda n: n.endswith("rotary_emb.inv_freq"))
    hidden = archs2.body_hidden(config, W, input_ids, attention_mask, position_ids, torch.float32)
    logits = F.linear(hidden, W("score.weight"))  # [2B, T, 1]
    non_pad = (input_ids != request["pad_token_id"]).to(torch.int32)
    last = (torch.arange(t, dtype=torch.int32) * non_pad).argmax(-1)
    rewards = logits[torch.arange(b2), last].squeeze(-1)  # [2B]
    chosen, rejected = torch.chunk(rewards, chunks=2)
    if request.get("margin") is not None:
        margin = torch.tensor(request["margin"], dtype=torch.float32)
        loss = -F.logsigmoid(chosen - rejected - margin).mean()
    else:
        loss = -F.logsigmoid(chosen - rejected).mean()
    coefficient = request.get("center_rewards_coefficient")
    if coefficient is not None:
        loss = loss + coefficient * torch.mean((chosen + rejected) ** 2)
    loss.backward()
    grads = {n: (p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1).double().tolist()
             for n, p in tensors.items() if p.is_floating_point() and not n.endswith("rotary_emb.inv_freq")}
    print(json.dumps({"loss": loss.item(), "grads": grads}))


if __name__ == "__main__":
    main()
