# WPO's answer weights as TRL's DPOTrainer computes them for use_weighting (trl/trainer/
# dpo_trainer.py, eq. 2 of arXiv 2406.11827), from the full logits [2B, T, V] in float64,
# independently of omni-dpo's chunked path: test/train/wpo.test.ts compares the two.
import json
import sys

import torch

case = json.load(sys.stdin)
logits = torch.tensor(case["logits"], dtype=torch.float64)     # [2B, T, V]
labels = torch.tensor(case["labels"], dtype=torch.int64)       # [2B, T], -100 outside the answers
shift_logits = logits[:, :-1, :]
shift_labels = labels[:, 1:]
mask = (shift_labels != -100).to(torch.float64)
safe = shift_labels.clamp(min=0)
per_token_logps = torch.log_softmax(shift_logits, dim=-1).gather(-1, safe.unsqueeze(-1)).squeeze(-1) * mask
lengths = mask.sum(dim=1).clamp_min(1)
lse1 = torch.logsumexp(shift_logits, dim=-1)
lse2 = torch.logsumexp(2.0 * shift_logits, dim=-1)
log_denom = lse2 - 2.0 * lse1
aligned = (per_token_logps - log_denom) * mask
weights = torch.exp(aligned.sum(dim=1) / lengths)
print(json.dumps({"weights": weights.tolist(), "sums": per_token_logps.sum(dim=1).tolist(), "lengths": mask.sum(dim=1).tolist()}))
