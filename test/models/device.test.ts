// Devices: models move with `to(device)`, and asking for CUDA where LibTorch has none is a clear
// error before anything is written. (CUDA itself is checked by scripts/cuda-check*.mjs on a GPU.)
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { torch, createModel, loadModel } from "../../src/index.js";
import { loadTrainConfig } from "../../src/train/config.js";
import { train } from "../../src/train/trainer.js";
import { tempDir, toyPairs, writeJsonl, writeToyModel } from "../helpers/toy.js";

torch.setNumThreads(1);

test("a model reports its device; to('cpu') on a CPU model changes nothing", () => {
  const m = createModel({
    architectures: ["LlamaForCausalLM"],
    vocab_size: 50,
    hidden_size: 16,
    intermediate_size: 32,
    num_hidden_layers: 1,
    num_attention_heads: 2,
    max_position_embeddings: 32,
  });
  const before = m.parameters().map((p) => p.id);
  assert.equal(m.device, "cpu");
  m.to("cpu");
  assert.deepEqual(
    m.parameters().map((p) => p.id),
    before,
  );
  m.dispose();
});

test(
  "device: cuda without CUDA is refused before output_dir is made",
  { skip: torch.cuda.isAvailable() ? "this LibTorch has CUDA" : undefined },
  async () => {
    const root = tempDir("omni-dpo-device-");
    const model = writeToyModel(join(root, "model"));
    const data = writeJsonl(join(root, "pairs.jsonl"), toyPairs(16));
    const { config } = loadTrainConfig({
      model_name_or_path: model,
      dataset_mixer: { [data]: 1.0 },
      output_dir: join(root, "out"),
      device: "cuda",
      loss_type: "sigmoid",
      max_length: 64,
      max_prompt_length: 32,
    });
    await assert.rejects(train(config), /device: cuda was asked for, but this LibTorch has no CUDA/);
    assert.equal(existsSync(join(root, "out")), false);
    assert.equal(loadModel(model, { device: "cpu" }).device, "cpu");
  },
);
