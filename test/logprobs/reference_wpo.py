# WPO's answer weights as TRL's DPOTrainer computes them for use_weighting (trl/trainer/
# dpo_trainer.py, eq. 2 of arXiv 2406.11827), and LD-DPO's log-probs for ld_alpha (TRL's shared
# and tail masks from the completion mask's cumsum), from the full logits [2B, T, V] in float64,
# independently of omni-dpo's chunked path: test/logprobs/wpo.test.ts compares the two.
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
ld = {}
if case.get("ld_alpha") is not None:
    comp_pos = mask.cumsum(dim=1)
    comp_lens = mask.sum(dim=1)
    chosen_lens, rejected_lens = comp_lens.chunk(2, dim=0)
    shared_lens = torch.minimum(chosen_lens, rejected_lens)
    shared_lens = torch.cat([shared_lens, shared_lens], dim=0)
    shared_mask = (comp_pos > 0) & (comp_pos <= shared_lens.unsqueeze(1))
    tail_mask = comp_pos > shared_lens.unsqueeze(1)
    ld_sums = (per_token_logps * shared_mask).sum(dim=1) + case["ld_alpha"] * (per_token_logps * tail_mask).sum(dim=1)
    ld = {"ld_sums": ld_sums.tolist()}
print(json.dumps({"weights": weights.tolist(), "sums": per_token_logps.sum(dim=1).tolist(), "lengths": mask.sum(dim=1).tolist(), **ld}))
