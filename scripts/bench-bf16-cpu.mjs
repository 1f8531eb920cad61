#!/usr/bin/env node
// What bf16 autocast costs on this CPU: one forward+backward of a small Qwen2-shaped model
// (width 512, 4 layers, vocabulary 32000, 2 rows of 512 tokens), float32 against bf16 autocast,
// alternated twice. Run after `bash scripts/setup.sh`: node scripts/bench-bf16-cpu.mjs
import { torch } from "../dist/src/index.js";
import { createModel } from "../dist/src/models/auto.js";

const config = {
  architectures: ["Qwen2ForCausalLM"],
  model_type: "qwen2",
  vocab_size: 32000,
  hidden_size: 512,
  intermediate_size: 1536,
  num_hidden_layers: 4,
  num_attention_heads: 8,
  num_key_value_heads: 2,
  max_position_embeddings: 2048,
  rms_norm_eps: 1e-6,
  tie_word_embeddings: true,
};
torch.manualSeed(0);
const model = createModel(config);
const ids = torch.randint(0, 32000, [2, 512]); // [B, T]
const step = () => torch.tidy(() => model.forward(ids).float().logsumexp(-1).mean().backward());
for (const mode of ["float32", "bf16", "float32", "bf16"]) {
  const run = mode === "bf16" ? () => torch.autocast("bfloat16", step) : step;
  run(); // warm-up
  const t0 = performance.now();
  for (let i = 0; i < 3; i++) run();
  const ms = (performance.now() - t0) / 3;
  console.log(
    `${mode.padEnd(8)} ${(1024 / (ms / 1000)).toFixed(1).padStart(8)} tokens/s  ${ms.toFixed(0).padStart(7)} ms/step`,
  );
}
