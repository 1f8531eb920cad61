#!/usr/bin/env python3
"""An independent PyTorch reference of Qwen2.5-Math-PRM's Qwen2ForProcessRewardModel, written from
the model card and its published modeling code (modeling_qwen2_rm.py) without transformers and
without looking at the TypeScript it checks. The Qwen2 decoder is reference_models.py's.

  * the Qwen2 model's output (after the final norm) at every position;
  * score = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 2)), both
    linears with biases: tensors score.0.weight/bias and score.2.weight/bias; logits [B, T, 2];
  * no LM head in the checkpoint;
  * step rewards: softmax over the last dimension, the probability of label 1 at each position
    holding the step separator (<extra_0>), in order.

Use as a script: JSON on stdin
  {"cases": [{"dir": str, "input_ids": [[int]], "attention_mask": [[0|1]] | null, "step_token_id": int}]}
prints on its last stdout line
  {"results": [{"shape": [B, T, 2], "values": [float, ...], "step_rewards": [[float]]}]}
"""
import json
import sys

import torch
import torch.nn.functional as F

import reference_models as ref


def prm_logits(model_dir, input_ids, attention_mask=None, dtype=torch.float32):
    config, tensors = ref.load_directory(model_dir)
    input_ids = torch.as_tensor(input_ids, dtype=torch.int64)
    if attention_mask is None:
        attention_mask = torch.ones_like(input_ids)
    attention_mask = torch.as_tensor(attention_mask, dtype=torch.int64)
    position_ids = ref.positions_from_mask(attention_mask)
    W = ref.Weights(tensors, dtype, ignore=lambda n: n.endswith("rotary_emb.inv_freq"))
    with torch.no_grad():
        h = ref.llama_hidden("qwen2", config, W, input_ids, attention_mask, position_ids, dtype)  # [B, T, C]
        h = F.relu(F.linear(h, W("score.0.weight"), W("score.0.bias")))
        logits = F.linear(h, W("score.2.weight"), W("score.2.bias"))  # [B, T, 2]
        W.check_all_used()
        return logits, attention_mask


def main():
    request = json.load(sys.stdin)
    torch.set_num_threads(1)
    results = []
    for case in request["cases"]:
        logits, mask = prm_logits(case["dir"], case["input_ids"], case.get("attention_mask"))
        probs = logits.softmax(-1)[..., 1]  # [B, T]
        ids = torch.as_tensor(case["input_ids"])
        steps = [probs[b][(ids[b] == case["step_token_id"]) & (mask[b] == 1)].double().tolist() for b in range(ids.shape[0])]
        results.append({"shape": list(logits.shape), "values": logits.reshape(-1).double().tolist(), "step_rewards": steps})
    print(json.dumps({"results": results}))


if __name__ == "__main__":
    main()
