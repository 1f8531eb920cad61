// TR-DPO's reference update (sync_ref_model), as TRL's SyncRefModelCallback: after every
// `syncSteps`-th optimizer step, each reference weight becomes
//   alpha * policy + (1 - alpha) * reference
// in place, matched by parameter name. Every rank holds the whole policy (DDP, ZeRO-1), so every
// rank updates its reference alike. The reference is saved in each checkpoint (checkpoint.ts), so
// a resumed run goes on from the reference it had, not the starting weights.
import * as torch from "../../torch/index.js";
import type { CausalLM } from "../../models/causal-lm.js";
import type { TrainerCallback, TrainerEvent } from "./callback.js";

export class ReferenceSyncCallback implements TrainerCallback {
  constructor(
    readonly reference: CausalLM,
    readonly alpha: number,
    readonly syncSteps: number,
  ) {}

  onStepEnd({ state, model }: TrainerEvent): void {
    if (state.globalStep % this.syncSteps !== 0) return;
    const policy = new Map(model.namedParameters());
    torch.noGrad(() => {
      for (const [name, ref] of this.reference.namedParameters()) {
        const p = policy.get(name);
        if (!p) throw new Error(`sync_ref_model: the policy has no parameter '${name}' to sync the reference's from`);
        ref.mul_(1 - this.alpha).add_(p, this.alpha);
      }
    });
  }
}
