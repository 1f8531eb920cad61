#!/usr/bin/env python3
"""An independent PyTorch reference of sequence-classification heads (and, with them, the
decoders they sit on), written from transformers' modeling code without transformers and
without looking at the TypeScript it checks. The checkpoint reading, masks, RMSNorm, rotary
helpers and the Llama / Qwen2 / Mistral bodies are reference_models.py's.

Sequence classification (transformers' GenericForSequenceClassification, which
LlamaForSequenceClassification, Qwen2ForSequenceClassification, ... are):
  * the base model's output (after the final norm) at every position, through score.weight
    [num_labels, hidden] (no bias): logits [B, T, num_labels];
  * pooled at each row's last non-padding token: with pad_token_id,
    argmax(arange(T) * (input_ids != pad_token_id)) (the rightmost non-pad token, so left and
    right padding both work); without it, the last token, and a batch of more than one row is
    an error;
  * position ids as transformers' forward makes them when none are given: 0..T-1 for every row
    (not from the attention mask; with rotary embeddings only differences of positions matter,
    so left-padded rows score the same either way).

Use as a script: JSON on stdin
  {"cases": [{"task": "scores", "dir": str, "input_ids": [[int]], "attention_mask": [[0|1]] | null}]}
prints on its last stdout line
  {"results": [{"shape": [B, num_labels], "scores": [float, ...]}]}   (flattened, row-major)
"""
import json
import sys

import torch
import torch.nn.functional as F

import reference_models as ref


def body_hidden(config, W, input_ids, attention_mask, position_ids, dtype):
    """The base model's last hidden states [B, T, hidden] of the architecture config names."""
    arch = ref.architecture_of({**config, "architectures": [
        c.replace("ForSequenceClassification", "ForCausalLM") for c in config.get("architectures") or []]})
    if arch == "gpt2":
        raise ValueError("GPT-2 classifiers are not part of this reference")
    return ref.llama_hidden(arch, config, W, input_ids, attention_mask, position_ids, dtype)


def sequence_scores(model_dir, input_ids, attention_mask=None, dtype=torch.float32):
    config, tensors = ref.load_directory(model_dir)
    input_ids = torch.as_tensor(input_ids, dtype=torch.int64)
    b, t = input_ids.shape
    if attention_mask is None:
        attention_mask = torch.ones_like(input_ids)
    attention_mask = torch.as_tensor(attention_mask, dtype=torch.int64)
    position_ids = torch.arange(t).unsqueeze(0).expand(b, t)
    W = ref.Weights(tensors, dtype, ignore=lambda n: n.endswith("rotary_emb.inv_freq"))
    with torch.no_grad():
        hidden = body_hidden(config, W, input_ids, attention_mask, position_ids, dtype)
        logits = F.linear(hidden, W("score.weight"))  # [B, T, L]
        W.check_all_used()
        pad = config.get("pad_token_id")
        if pad is None and b != 1:
            raise ValueError("Cannot handle batch sizes > 1 if no padding token is defined.")
        if pad is None:
            last = torch.full((b,), t - 1, dtype=torch.int64)
        else:
            non_pad = (input_ids != pad).to(torch.int32)
            last = (torch.arange(t, dtype=torch.int32) * non_pad).argmax(-1)
        return logits[torch.arange(b), last]  # [B, L]


def main():
    request = json.load(sys.stdin)
    torch.set_num_threads(1)
    results = []
    for case in request["cases"]:
        if case.get("task") != "scores":
            raise ValueError(f"unknown task {case.get('task')}")
        scores = sequence_scores(case["dir"], case["input_ids"], case.get("attention_mask"))
        results.append({"shape": list(scores.shape), "scores": scores.reshape(-1).double().tolist()})
    print(json.dumps({"results": results}))


if __name__ == "__main__":
    main()
