// The reference's Gemma-2-9B-IT text recipe (Uni-DPO, Textual/train/configs/Gemma-2-9B-IT.yaml)
// run by `omni-dpo train` on a tiny Gemma-2 made here, with only its placeholders (model, data,
// output dir) filled in: bf16 mixed precision, gradient checkpointing, the recipe's chat
// template, Uni-DPO keys, max_length 2048 and accumulation of 16 as written. It must train
// (finite losses, the model saved as a Gemma-2 checkpoint) without an ignored or unknown-key
// warning for bf16, torch_dtype or gradient_checkpointing.
import { after, before, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createModel, saveModel } from "../../src/index.js";
import { loadModel } from "../../src/models/auto.js";
import { packageRoot } from "../../src/util/package-root.js";
import { GEMMA_CONFIGS } from "../helpers/gemma.js";
import { writeByteLevelTokenizer } from "../helpers/tokenizers.js";
import { tempDir, toyPairs, writeJsonl } from "../helpers/toy.js";

const CLI = join(packageRoot(), "dist", "src", "cli", "main.js");
let root: string;
before(() => {
  root = tempDir("omni-dpo-gemma2-recipe-");
});
after(() => rmSync(root, { recursive: true, force: true }));

/** A tiny random Gemma-2 (soft-capping, sliding window, GQA) with a byte-level tokenizer holding Gemma's turn markers. */
function writeTinyGemma2(dir: string): void {
  const tok = writeByteLevelTokenizer(dir, { extraSpecialTokens: ["<start_of_turn>", "<end_of_turn>"] });
  const model = createModel({
    ...GEMMA_CONFIGS.gemma2,
    vocab_size: tok.vocabSize,
    max_position_embeddings: 256,
    bos_token_id: tok.bosTokenId,
    eos_token_id: tok.eosTokenId,
    pad_token_id: tok.eosTokenId,
  });
  saveModel(model, dir);
  model.dispose();
}

// The recipe as published, placeholders filled in (String.raw keeps its chat template's \n escapes).
const RECIPE = String.raw`# ==============================================
# Configuration Section
# ==============================================
model_name_or_path: gemma2-tiny
ref_model: gemma2-tiny
output_dir: outputs/gemma2-tiny-uni-dpo
dataset_mixer:
  "ultrafeedback-tiny.jsonl": 1.0

# ==============================================
# The settings below do not need to be modified
# ==============================================

chat_template: "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{% set system_message = messages[0]['content'] | trim + '\n\n' %}{% set messages = messages[1:] %}{% else %}{% set system_message = '' %}{% endif %}{% for message in messages %}{% if loop.index0 == 0 %}{% set content = system_message + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}{% endif %}{{ '<start_of_turn>' + role + '\n' + content | trim + '<end_of_turn>\n' }}{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\n'}}{% endif %}"

# Data training arguments
dataset_splits:
  - train
preprocessing_num_workers: 12

# UniDPOTrainer arguments
learning_rate: 8.0e-7
pref_loss: uni_dpo
beta: 10.0
uni_dpo_qual_eta: 0.7
uni_dpo_tau_ref: 0.8
uni_dpo_perf_gamma: 3.0
uni_dpo_nll_lambda: 0.001
uni_dpo_tau_good: 3.2

use_ref_model: True
dpo_length_norm: True
seed: 42
warmup_ratio: 0.1
hub_model_id: Gemma2-9B-IT-Uni-DPO
run_name: Gemma2-9B-IT-Uni-DPO

torch_dtype: null
attn_implementation: eager
bf16: true
do_eval: true
eval_strategy: steps
eval_steps: 1000
gradient_accumulation_steps: 16
gradient_checkpointing: true
gradient_checkpointing_kwargs:
  use_reentrant: False
log_level: info
logging_steps: 5
lr_scheduler_type: cosine
max_length: 2048
max_prompt_length: 1800
num_train_epochs: 1
optim: adamw_torch
per_device_train_batch_size: 1
per_device_eval_batch_size: 3
push_to_hub: false
save_strategy: "steps"
save_steps: 1000000
save_total_limit: 20
`;

it("the reference's Gemma-2-9B-IT recipe trains a tiny Gemma-2 with bf16 and gradient checkpointing honoured", () => {
  writeTinyGemma2(join(root, "gemma2-tiny"));
  // UltraFeedback's layout: a string prompt, chosen/rejected as conversations, judge scores.
  const rows = toyPairs(32).map((p) => ({
    prompt: p.prompt,
    chosen: [
      { role: "user", content: p.prompt },
      { role: "assistant", content: p.chosen.trim() },
    ],
    rejected: [
      { role: "user", content: p.prompt },
      { role: "assistant", content: p.rejected.trim() },
    ],
    score_chosen: p.score_chosen,
    score_rejected: p.score_rejected,
  }));
  writeJsonl(join(root, "ultrafeedback-tiny.jsonl"), rows);
  const yaml = join(root, "Gemma-2-9B-IT.yaml");
  writeFileSync(yaml, RECIPE);
  const r = spawnSync(process.execPath, [CLI, "train", yaml], {
    cwd: packageRoot(),
    encoding: "utf8",
    timeout: 180_000,
    env: { ...process.env, OMP_NUM_THREADS: "1" },
  });
  assert.equal(r.status, 0, `exit ${r.status}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  // 32 pairs, one a micro-batch, 16 per step: 2 optimizer steps.
  assert.match(r.stdout, /trained 2 steps; model saved to /);
  // Warnings do reach stderr (the recipe's attn_implementation is one), but none for precision or checkpointing.
  assert.match(r.stderr, /warning: .*'attn_implementation'/);
  assert.doesNotMatch(
    r.stderr,
    /'(bf16|torch_dtype|gradient_checkpointing|gradient_checkpointing_kwargs)'/,
    "a precision or checkpointing key was warned about",
  );
  assert.doesNotMatch(r.stderr, /unknown key/);
  const out = join(root, "outputs", "gemma2-tiny-uni-dpo");
  // As the HF Trainer writes them: trainer_state.json's global_step, train_results.json's train_loss.
  assert.equal(JSON.parse(readFileSync(join(out, "trainer_state.json"), "utf8")).global_step, 2);
  const results = JSON.parse(readFileSync(join(out, "train_results.json"), "utf8"));
  assert.ok(Number.isFinite(results.train_loss), `train loss ${results.train_loss}`);
  assert.ok(existsSync(join(out, "model.safetensors")));
  const trained = loadModel(out);
  assert.equal(trained.architecture, "gemma2");
  trained.dispose();
});
