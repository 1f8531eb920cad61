// ZeRO-2 (zero_stage: 2): gradients and optimizer state sharded across 2 ranks change memory,
// not what is learnt: the weights and metrics equal 1 process's with twice the batch (float64
// to 1e-10, float32 to 1e-5) after 8 steps with accumulation and clipping, each rank holding
// about half; a run killed with SIGKILL and rerun resumes from its last checkpoint and ends
// with the uninterrupted run's weights.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { rankZeroShare, ZeroStageRuns } from "./zero-stages.js";

let runs: ZeroStageRuns;
before(() => (runs = new ZeroStageRuns(2)));
after(() => runs.dispose());

describe("ZeRO-2: gradients and optimizer state sharded across ranks", () => {
  it("float64: 2 ranks at stage 2 end with 1 process's weights (batch 2b) to 1e-10, the same metrics, half the state each", async () => {
    const { output } = await runs.compare("float64", 1e-10);
    // Rank 0 reports its share (the others' status lines stay quiet): about half of the elements.
    const fraction = rankZeroShare(output, /ZeRO-2, gradients and optimizer state/);
    assert.ok(fraction > 0.3 && fraction < 0.7, `rank 0 holds ${fraction} of the gradients and state`);
  });

  it("float32 with gradient checkpointing: the same weights to 1e-5 and the same metrics", async () => {
    await runs.compare("float32", 1e-5, { gradient_checkpointing: true });
  });

  // The tied embedding is the LM head of every chunk and the decoder's input: its gradient is
  // final only at the end of backward, and with checkpointing each layer is a backward call.
  it("tied embeddings with gradient checkpointing: the same weights to 1e-10", async () => {
    await runs.compare("float64", 1e-10, { model_name_or_path: runs.tied, gradient_checkpointing: true });
  });

  it("LoRA: only the adapters' gradients and state are sharded; the same adapter to 1e-5", async () => {
    await runs.compare("float64", 1e-5, { use_peft: true, lora_r: 4, lora_alpha: 8, max_grad_norm: 0.002 });
  });

  // A stage-2 checkpoint holds the whole optimizer state: it resumes under stage 1 too.
  it("killed with SIGKILL after a checkpoint, rerun: resumes there and ends with the uninterrupted run's weights (1e-10)", async () => {
    await runs.killAndResume({ num_train_epochs: 12, save_steps: 2 }, 1);
  });
});
