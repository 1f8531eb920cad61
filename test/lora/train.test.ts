// LoRA training end to end (use_peft) on a tiny model: the adapters learn while the base stays
// untouched, the reference is the policy with its adapters off (no second model), a
// precomputed reference gives the same run, checkpoints and the output hold the adapter (PEFT's
// files and names) and its optimizer state only, a stopped run resumes to the same adapter,
// and bad LoRA keys are errors naming the key.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { torch } from "../../src/index.js";
import { loadModel } from "../../src/models/auto.js";
import { loraOf } from "../../src/nn/lora.js";
import { loadSafetensors } from "../../src/models/safetensors.js";
import { loadTrainConfig } from "../../src/train/config.js";
import { MetricsSink } from "../../src/train/metrics.js";
import { PreferenceTrainer, train, type TrainHooks } from "../../src/train/trainer.js";
import { tempDir, toyPairs, writeJsonl, writeToyModel } from "../helpers/toy.js";

let root: string;
let model: string;
let data: string;

before(() => {
  root = tempDir("omni-dpo-lora-train-");
  model = writeToyModel(join(root, "model"));
  data = writeJsonl(join(root, "pairs.jsonl"), toyPairs(48));
});
after(() => rmSync(root, { recursive: true, force: true }));

/** DPO with LoRA r 4 on every linear layer: 40 training pairs, 8 held out, batches of 4, 2 epochs = 20 steps. */
function recipe(outputDir: string, extra: Record<string, unknown> = {}) {
  return loadTrainConfig({
    model_name_or_path: model,
    dataset_mixer: { [data]: 1.0 },
    test_split_size: 8,
    output_dir: join(root, outputDir),
    loss_type: "sigmoid",
    beta: 2.0,
    use_peft: true,
    lora_r: 4,
    lora_alpha: 8,
    lora_target_modules: "all-linear",
    learning_rate: 2e-2,
    lr_scheduler_type: "constant",
    num_train_epochs: 2,
    per_device_train_batch_size: 4,
    per_device_eval_batch_size: 8,
    max_length: 64,
    max_prompt_length: 32,
    logging_steps: 5,
    eval_steps: 10,
    save_steps: null,
    seed: 3,
    ...extra,
  }).config;
}

const losses = (dir: string) =>
  MetricsSink.read(join(dir, "metrics.jsonl"))
    .filter((r) => "loss" in r)
    .map((r) => r.loss as number);

function tensorsOf(file: string): Map<string, Float32Array> {
  const ts = loadSafetensors(file);
  try {
    return new Map([...ts].map(([n, t]) => [n, t.data() as Float32Array]));
  } finally {
    for (const t of ts.values()) t.dispose();
  }
}

function worstDiff(a: Map<string, Float32Array>, b: Map<string, Float32Array>): number {
  assert.deepEqual([...a.keys()].sort(), [...b.keys()].sort());
  let worst = 0;
  for (const [n, x] of a) {
    const y = b.get(n)!;
    for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(x[i] - y[i]));
  }
  return worst;
}

describe("use_peft: LoRA training", () => {
  it("learns; the output is a PEFT adapter; the base model's weights are untouched; no second model for the reference", async () => {
    const baseBytes = readFileSync(join(model, "model.safetensors"));
    const trainer = new PreferenceTrainer(recipe("live"));
    let referenceModel: unknown = "unset";
    const originalSave = trainer.saveFinalModel.bind(trainer);
    trainer.saveFinalModel = async () => {
      referenceModel = trainer.referenceModel;
      await originalSave();
    };
    const r = await trainer.train();
    assert.equal(r.globalStep, 20);
    assert.equal(referenceModel, null, "the reference is the policy with its adapters off, not a loaded model");
    const l = losses(r.outputDir);
    assert.ok(l.at(-1)! < l[0] - 0.05, `loss did not fall: ${l}`);
    const out = readdirSync(r.outputDir);
    assert.ok(
      out.includes("adapter_config.json") &&
        out.includes("adapter_model.safetensors") &&
        out.includes("tokenizer.json"),
      out.join(),
    );
    assert.ok(!out.includes("model.safetensors") && !out.includes("config.json"), "no full model is written");
    const config = JSON.parse(readFileSync(join(r.outputDir, "adapter_config.json"), "utf8"));
    assert.equal(config.peft_type, "LORA");
    assert.equal(config.task_type, "CAUSAL_LM");
    assert.equal(config.r, 4);
    assert.equal(config.lora_alpha, 8);
    assert.equal(config.base_model_name_or_path, model);
    assert.deepEqual(config.target_modules, [
      "down_proj",
      "gate_proj",
      "k_proj",
      "o_proj",
      "q_proj",
      "up_proj",
      "v_proj",
    ]);
    const names = [...tensorsOf(join(r.outputDir, "adapter_model.safetensors")).keys()];
    assert.equal(names.length, 2 * 7 * 2);
    assert.ok(names.includes("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"));
    assert.ok(names.includes("base_model.model.model.layers.1.mlp.down_proj.lora_B.weight"));
    assert.ok(
      names.every((n) => /^base_model\.model\..*\.lora_[AB]\.weight$/.test(n)),
      names.join(),
    );
    assert.ok(readFileSync(join(model, "model.safetensors")).equals(baseBytes), "the base model's file is unchanged");
    // The model card names the adapter's settings.
    const card = readFileSync(join(r.outputDir, "README.md"), "utf8");
    for (const row of [
      "| lora_r | 4 |",
      "| lora_alpha | 8 |",
      "| lora_target_modules | down_proj, gate_proj, k_proj, o_proj, q_proj, up_proj, v_proj |",
    ]) {
      assert.ok(card.includes(row), row);
    }
    // The output loads as a model (base + adapter) whose logits differ from the base's.
    const trained = loadModel(r.outputDir);
    assert.ok(loraOf(trained));
    const base = loadModel(model);
    const ids = torch.tensor([[5, 17, 3, 88]], { dtype: "int64" });
    const diff = torch.noGrad(() => torch.tidy(() => trained.forward(ids).sub(base.forward(ids)).abs().max().item()));
    assert.ok(diff > 1e-3, `trained adapter changes the logits (${diff})`);
    trained.dispose();
    base.dispose();
    ids.dispose();
  });

  it("precompute_ref_log_probs gives the same run as the live adapters-off reference", async () => {
    const live = losses(join(root, "live"));
    const r = await train(recipe("precomputed", { precompute_ref_log_probs: true }));
    assert.ok(existsSync(join(r.outputDir, "ref_logps_cache")));
    const cached = losses(r.outputDir);
    assert.equal(cached.length, live.length);
    // Equal up to float rounding (the cache's forwards pad other batches), which 20 steps amplify a little.
    cached.forEach((x, i) => assert.ok(Math.abs(x - live[i]) < 1e-4, `logged loss ${i}: ${x} vs ${live[i]}`));
  });

  it("checkpoints hold the adapter and its optimizer state only; a stopped run resumes to the same adapter", async () => {
    let step = 0;
    const stopAt7: TrainHooks = {
      onProgress: (s) => {
        step = s;
      },
      shouldStop: () => step >= 7,
    };
    const stopped = await train(recipe("resumed", { save_steps: 5 }), stopAt7);
    assert.equal(stopped.interrupted, true);
    const ckpt = join(stopped.outputDir, "checkpoint-7");
    const files = readdirSync(ckpt).sort();
    assert.ok(
      files.includes("adapter_model.safetensors") &&
        files.includes("adapter_config.json") &&
        !files.includes("model.safetensors"),
      files.join(),
    );
    const adapter = tensorsOf(join(ckpt, "adapter_model.safetensors"));
    const optimizer = tensorsOf(join(ckpt, "optimizer.safetensors"));
    // AdamW's two moments per adapter matrix, nothing for the frozen base.
    assert.equal(optimizer.size, 2 * adapter.size);
    const resumed = await train(recipe("resumed", { save_steps: 5, resume_from_checkpoint: true }));
    assert.equal(resumed.globalStep, 20);
    const worst = worstDiff(
      tensorsOf(join(root, "live", "adapter_model.safetensors")),
      tensorsOf(join(resumed.outputDir, "adapter_model.safetensors")),
    );
    assert.ok(worst <= 1e-6, `resumed adapter differs by ${worst}`);
  });

  it("bad LoRA keys are errors naming the key", async () => {
    assert.throws(() => recipe("bad", { lora_r: 0 }), /key 'lora_r' must be a positive integer, got 0/);
    assert.throws(
      () => recipe("bad", { lora_target_modules: 3 }),
      /key 'lora_target_modules' must be a list of module names or all-linear/,
    );
    await assert.rejects(
      train(recipe("bad", { lora_target_modules: ["q_proj", "attn_proj"] })),
      /key 'lora_target_modules' 'attn_proj' matches no layer of the model; its linear layers are q_proj/,
    );
  });
});
