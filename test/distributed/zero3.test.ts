// ZeRO-3 (zero_stage: 3): weights, gradients and optimizer state sharded across 2 ranks, each
// layer's weights gathered from their owners just before it runs (and again for its
// recomputation in backward), change memory, not what is learnt: the weights and metrics equal 1
// process's with twice the batch (float64 to 1e-10, float32 to 1e-5) after 8 steps with
// accumulation, clipping, evaluation and the pair log, each rank owning about half; a run killed
// with SIGKILL and rerun resumes from its last checkpoint and ends with the uninterrupted run's
// weights.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { rankZeroShare, ZeroStageRuns } from "./zero-stages.js";

let runs: ZeroStageRuns;
before(() => (runs = new ZeroStageRuns(3)));
after(() => runs.dispose());

describe("ZeRO-3: weights, gradients and optimizer state sharded across ranks", () => {
  it("float64 with gradient checkpointing: 2 ranks at stage 3 end with 1 process's weights (batch 2b) to 1e-10, the same metrics, half the weights each", async () => {
    const { output } = await runs.compare("float64", 1e-10, { gradient_checkpointing: true });
    // Rank 0 reports its share (the others' status lines stay quiet): about half of the elements.
    const fraction = rankZeroShare(output, /ZeRO-3, weights, gradients and optimizer state/);
    assert.ok(fraction > 0.3 && fraction < 0.7, `rank 0 holds ${fraction} of the weights, gradients and state`);
  });

  it("float32 without gradient checkpointing: the same weights to 1e-5 and the same metrics", async () => {
    const { output } = await runs.compare("float32", 1e-5);
    assert.match(output, /zero_stage 3 without gradient_checkpointing keeps every layer's gathered weights/);
  });

  // The tied embedding is the LM head of every chunk and the decoder's input: "outer", gathered
  // for the whole forward and backward.
  it("tied embeddings with gradient checkpointing: the same weights to 1e-10", async () => {
    await runs.compare("float64", 1e-10, { model_name_or_path: runs.tied, gradient_checkpointing: true });
  });

  it("LoRA with gradient checkpointing: the adapters sharded, the base whole; the same adapter to 1e-5", async () => {
    await runs.compare("float64", 1e-5, {
      use_peft: true,
      lora_r: 4,
      lora_alpha: 8,
      max_grad_norm: 0.002,
      gradient_checkpointing: true,
    });
  });

  // A stage-3 checkpoint holds the whole weights and optimizer state: it resumes under stage 2 too.
  it("killed with SIGKILL after a checkpoint, rerun: resumes there and ends with the uninterrupted run's weights (1e-10)", async () => {
    await runs.killAndResume({ num_train_epochs: 12, save_steps: 2, gradient_checkpointing: true }, 2);
  });
});
