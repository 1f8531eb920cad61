// The AdamW parameter groups the HF trainer makes: weight decay on weight matrices and
// embeddings, none on biases and norm weights. Chosen by rank (ndim < 2: no decay), since every
// bias and norm weight is 1-D whatever the architecture names it. Shared by the preference
// trainer and SFT.
import type * as torch from "../torch/index.js";
import type { CausalLM } from "../models/causal-lm.js";

export function decayGroups(model: CausalLM, weightDecay: number): torch.ParamGroupSpec<torch.AdamWOptions>[] {
  const decay: torch.Tensor[] = [];
  const noDecay: torch.Tensor[] = [];
  for (const [, p] of model.namedParameters()) (p.ndim < 2 ? noDecay : decay).push(p);
  return [
    { params: decay, weightDecay },
    { params: noDecay, weightDecay: 0 },
  ].filter((g) => g.params.length > 0);
}
