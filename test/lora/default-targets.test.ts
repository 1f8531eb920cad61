// use_peft without lora_target_modules wraps the layers PEFT wraps by default for the model's
// architecture, declared with the architecture (Gemma-2 and Gemma-3 included: q_proj and v_proj,
// as TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING). Before, a Gemma model was an error.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { createModel, saveModel, torch } from "../../src/index.js";
import { loadTrainConfig } from "../../src/train/config.js";
import { MetricsSink } from "../../src/train/metrics.js";
import { train } from "../../src/train/trainer.js";
import { GEMMA_CONFIGS } from "../helpers/gemma.js";
import { writeByteLevelTokenizer } from "../helpers/tokenizers.js";
import { tempDir, toyPairs, writeJsonl, writeToyModel } from "../helpers/toy.js";

let root: string;
let data: string;
before(() => {
  root = tempDir("omni-dpo-lora-defaults-");
  data = writeJsonl(join(root, "pairs.jsonl"), toyPairs(16));
});
after(() => rmSync(root, { recursive: true, force: true }));

/** A tiny random model of a Gemma config, with a byte-level tokenizer. */
function writeTinyGemma(dir: string, config: Record<string, unknown>): string {
  const tok = writeByteLevelTokenizer(dir);
  torch.manualSeed(0);
  const model = createModel({
    ...config,
    vocab_size: tok.vocabSize,
    max_position_embeddings: 128,
    bos_token_id: tok.bosTokenId,
    eos_token_id: tok.eosTokenId,
    pad_token_id: tok.eosTokenId,
  });
  saveModel(model, dir);
  model.dispose();
  return dir;
}

/** DPO with use_peft and no lora_target_modules: 12 training pairs in batches of 4, 3 steps. */
async function trainDefaultLora(model: string, name: string) {
  const { config } = loadTrainConfig({
    model_name_or_path: model,
    dataset_mixer: { [data]: 1.0 },
    test_split_size: 4,
    output_dir: join(root, name),
    loss_type: "sigmoid",
    beta: 0.1,
    use_peft: true,
    lora_r: 4,
    lora_alpha: 8,
    learning_rate: 1e-2,
    num_train_epochs: 1,
    per_device_train_batch_size: 4,
    per_device_eval_batch_size: 4,
    max_length: 64,
    max_prompt_length: 32,
    logging_steps: 1,
    eval_steps: null,
    save_steps: null,
    seed: 3,
  });
  const r = await train(config);
  const adapter = JSON.parse(readFileSync(join(r.outputDir, "adapter_config.json"), "utf8"));
  const losses = MetricsSink.read(join(r.outputDir, "metrics.jsonl"))
    .filter((row) => "loss" in row)
    .map((row) => row.loss as number);
  return { steps: r.globalStep, targets: adapter.target_modules as string[], losses };
}

describe("use_peft without lora_target_modules", () => {
  for (const arch of ["gemma2", "gemma3_text"]) {
    it(`a tiny ${arch} trains with PEFT's default targets, q_proj and v_proj`, async () => {
      const model = writeTinyGemma(join(root, `${arch}-model`), GEMMA_CONFIGS[arch]);
      const r = await trainDefaultLora(model, `${arch}-out`);
      assert.equal(r.steps, 3);
      assert.deepEqual([...r.targets].sort(), ["q_proj", "v_proj"]);
      assert.ok(r.losses.length === 3 && r.losses.every(Number.isFinite), `losses ${r.losses}`);
    });
  }

  it("GPT-2 keeps its default, the fused c_attn", async () => {
    const model = writeToyModel(join(root, "gpt2-model"), { architecture: "gpt2" });
    assert.deepEqual((await trainDefaultLora(model, "gpt2-out")).targets, ["c_attn"]);
  });
});
