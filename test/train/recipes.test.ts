// The reference's own recipes run as they are, with only their placeholders filled in: the Math
// recipe (Qwen2.5-Math-7B-Uni-DPO.yaml's exact keys: train_data_path, eot_token, loss_type:
// uni_dpo with the Math trainer's defaults, sanity_check, report_to, do_train/do_eval...) and a
// Textual one (Llama-3-8B-Instruct.yaml's keys), on a tiny model. The YAMLs below are written
// here with those key sets; the Math trainer's data handling (sanity_check, eot_token,
// max_training_samples) and max_completion_length are checked on their own.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadTrainConfig } from "../../src/train/config.js";
import { prepareData, train } from "../../src/train/trainer.js";
import { tokenizePair } from "../../src/data/tokenize.js";
import { Tokenizer } from "../../src/text/index.js";
import { DataError } from "../../src/data/records.js";
import { tempDir, toyPairs, writeJsonl, writeToyModel } from "../helpers/toy.js";

let root: string;
before(() => {
  root = tempDir("omni-dpo-recipes-");
  writeToyModel(join(root, "Qwen2.5-Math-tiny"));
  mkdirSync(join(root, "data"));
  writeJsonl(join(root, "data", "Train_tiny.jsonl"), toyPairs(16));
  writeJsonl(join(root, "data", "many.jsonl"), toyPairs(150));
});
after(() => rmSync(root, { recursive: true, force: true }));

/** Math/train/configs/Qwen2.5-Math-7B-Uni-DPO.yaml's keys and values; only the four placeholders are filled. */
const MATH = (out: string) => `### Basic Configuration
run_name: Qwen2.5-Math-7B-Uni-DPO

output_dir: ${out}
model_name_or_path: Qwen2.5-Math-tiny
ref_model: Qwen2.5-Math-tiny
train_data_path: data/Train_tiny.jsonl

gradient_checkpointing: true
do_train: true
do_eval: false
bf16: true
sanity_check: False
eot_token: <|im_end|>
report_to: "wandb"
lr_scheduler_type: cosine
max_length: 4096
max_prompt_length: 1000

### Training hyperparameters
num_train_epochs: 2
logging_steps: 1
per_device_train_batch_size: 1
per_device_eval_batch_size: 1
gradient_accumulation_steps: 16 # 8GPU x 16 = 128

### Uni-DPO config
learning_rate: 1.0e-6
loss_type: uni_dpo
beta: 2.0
uni_dpo_qual_eta: 0.7
uni_dpo_tau_ref: 2.0
uni_dpo_perf_gamma: 3.0
uni_dpo_nll_lambda: 0.2
uni_dpo_tau_good: 8.0

dpo_length_norm: true

save_strategy: steps
save_steps: 20
`;

function yaml(name: string, text: string): string {
  const file = join(root, `${name}.yaml`);
  writeFileSync(file, text);
  return file;
}

describe("the Math recipe as it is", () => {
  it("loads with only a warning for report_to: wandb, reading train_data_path, eot_token and the Math loss", () => {
    const { config, warnings } = loadTrainConfig(yaml("math", MATH("out-math")));
    assert.deepEqual(
      warnings.map((w) => w.replace(/^.*?: /, "")),
      ["report_to: wandb is not available here; skipped (metrics.jsonl holds every logged row)"],
    );
    assert.equal(config.trainDataPath, join(root, "data", "Train_tiny.jsonl"));
    assert.equal(config.datasetMixer, null);
    assert.equal(config.eotToken, "<|im_end|>");
    assert.equal(config.sanityCheck, false);
    assert.equal(config.runName, "Qwen2.5-Math-7B-Uni-DPO");
    assert.equal(config.doEval, false);
    assert.equal(config.objective.lossType, "omni_dpo");
    assert.equal(config.objective.beta, 2.0);
    assert.equal(config.objective.tauRef, 2.0);
    assert.equal(config.objective.nllLambda, 0.2);
    assert.equal(config.objective.tauGood, 8.0);
  });

  it("trains: 16 pairs, 16 accumulated per step, 2 epochs = 2 steps, a final checkpoint and the HF outputs", async () => {
    const { config } = loadTrainConfig(yaml("math-run", MATH("out-math-run")));
    const r = await train(config);
    assert.equal(r.globalStep, 2);
    assert.equal(r.totalSteps, 2);
    const out = join(root, "out-math-run");
    assert.deepEqual(
      readdirSync(out).filter((n) => n.startsWith("checkpoint-")),
      ["checkpoint-2"],
    );
    for (const f of ["model.safetensors", "trainer_state.json", "train_results.json", "all_results.json", "README.md"])
      assert.ok(existsSync(join(out, f)), f);
    assert.ok(!existsSync(join(out, "eval_results.json")), "do_eval: false evaluates nothing");
    assert.match(readFileSync(join(out, "README.md"), "utf8"), /# Qwen2\.5-Math-7B-Uni-DPO/);
  });

  it("save_steps below 1 is a fraction of the run (the Math TrainingArgs' default 0.35: every ceil(0.35 x 2) = 1 step)", async () => {
    // float32 without recomputation, to keep the test short: the fraction is what is checked here.
    const { config } = loadTrainConfig(yaml("math-fraction", MATH("out-math-fraction")), [
      ["save_steps", 0.35],
      ["bf16", false],
      ["gradient_checkpointing", false],
    ]);
    await train(config);
    assert.deepEqual(
      readdirSync(join(root, "out-math-fraction"))
        .filter((n) => n.startsWith("checkpoint-"))
        .sort(),
      ["checkpoint-1", "checkpoint-2"],
    );
  });

  it("eot_token ends every answer once; sanity_check keeps the first 100 records; max_training_samples the first N, and more than there are is an error", async () => {
    const base = MATH("out-math-data").replace("data/Train_tiny.jsonl", "data/many.jsonl");
    const tokenizer = Tokenizer.fromPretrainedSync(join(root, "Qwen2.5-Math-tiny"));
    const eot = tokenizer.encode("<|im_end|>", { addSpecialTokens: false });
    const full = await prepareData(loadTrainConfig(yaml("math-data", base)).config);
    assert.equal(full.train.length, 150);
    for (const p of full.train) {
      const answer = p.chosenInputIds.slice(p.promptLength);
      // ..., <|im_end|>'s tokens, EOS: appended once.
      assert.deepEqual(answer.slice(-1 - eot.length, -1), eot);
      assert.notDeepEqual(answer.slice(-1 - 2 * eot.length, -1 - eot.length), eot);
    }
    const sanity = await prepareData(
      loadTrainConfig(yaml("math-sanity", base.replace("sanity_check: False", "sanity_check: true"))).config,
    );
    assert.equal(sanity.train.length, 100);
    assert.deepEqual(sanity.train[7], full.train[7]);
    const few = await prepareData(loadTrainConfig(yaml("math-few", base + "max_training_samples: 10\n")).config);
    assert.equal(few.train.length, 10);
    const sanityBase = base.replace("sanity_check: False", "sanity_check: true");
    await assert.rejects(
      prepareData(loadTrainConfig(yaml("math-many", sanityBase + "max_training_samples: 101\n")).config),
      DataError,
      "sanity_check applies first",
    );
    await assert.rejects(
      prepareData(loadTrainConfig(yaml("math-many2", base + "max_training_samples: 151\n")).config),
      /max_training_samples: 151 asked for, but the training data hold 150 records/,
    );
  });

  it("eval_data_path is the held-out split (eot_token applied), and do_eval: false drops it as the Math script does", async () => {
    const withEval = MATH("out-math-eval") + "eval_data_path: data/Train_tiny.jsonl\n";
    const evaluated = await prepareData(
      loadTrainConfig(yaml("math-eval", withEval.replace("do_eval: false", "do_eval: true"))).config,
    );
    assert.equal(evaluated.eval.length, 16);
    assert.deepEqual(
      evaluated.eval[0].chosenInputIds,
      evaluated.train[0].chosenInputIds,
      "the same records, prepared the same way",
    );
    assert.equal((await prepareData(loadTrainConfig(yaml("math-no-eval", withEval)).config)).eval.length, 0);
  });

  it("train_data_path and dataset_mixer together, or neither, are errors", () => {
    assert.throws(
      () => loadTrainConfig(yaml("both", MATH("o") + "dataset_mixer:\n  data/many.jsonl: 1.0\n")),
      /'dataset_mixer' and 'train_data_path' both name training data/,
    );
    assert.throws(
      () => loadTrainConfig(yaml("neither", MATH("o").replace(/^train_data_path:.*$/m, ""))),
      /missing required key 'dataset_mixer' \(or TRL's dataset_name, the Math recipe's train_data_path, or LLaMA-Factory's dataset\)/,
    );
  });
});

/** Textual/train/configs/Llama-3-8B-Instruct.yaml's keys and values; placeholders filled, sizes as they are. */
const TEXTUAL = `model_name_or_path: Qwen2.5-Math-tiny
ref_model: Qwen2.5-Math-tiny
output_dir: out-textual
dataset_mixer:
  "data/Train_tiny.jsonl": 1.0
dataset_splits:
  - train
preprocessing_num_workers: 12
learning_rate: 1.0e-6
pref_loss: uni_dpo
beta: 2.0
uni_dpo_qual_eta: 0.7
uni_dpo_tau_ref: 1.0
uni_dpo_perf_gamma: 3.0
uni_dpo_nll_lambda: 0.001
uni_dpo_tau_good: 3.2
use_ref_model: True
dpo_length_norm: True
seed: 42
warmup_ratio: 0.1
hub_model_id: Llama-3-8B-Instruct-Uni-DPO
run_name: Llama-3-8B-Instruct-Uni-DPO
max_samples: None
torch_dtype: null
attn_implementation: flash_attention_2
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
per_device_train_batch_size: 2
per_device_eval_batch_size: 3
push_to_hub: false
save_strategy: "steps"
save_steps: 1000000
save_total_limit: 20
`;

describe("a Textual recipe as it is", () => {
  it("trains, warning only about the hub, kernel and tooling keys it sets", async () => {
    const { config, warnings } = loadTrainConfig(yaml("textual", TEXTUAL));
    const named = warnings.map((w) => w.match(/key '([a-z_0-9]+)'/)?.[1]).sort();
    assert.deepEqual(named, [
      "attn_implementation",
      "dataset_splits",
      "hub_model_id",
      "log_level",
      "preprocessing_num_workers",
    ]);
    const r = await train(config);
    assert.equal(r.globalStep, 1); // 16 pairs in micro-batches of 2, 16 accumulated: 1 step
    assert.ok(existsSync(join(root, "out-textual", "checkpoint-1", "trainer_state.json")));
  });
});

describe("max_completion_length", () => {
  it("keeps the first N tokens of each answer before max_length applies, as TRL cuts completions", () => {
    const tokenizer = Tokenizer.fromPretrainedSync(join(root, "Qwen2.5-Math-tiny"));
    const pair = { prompt: "say apple: ", chosen: "apple apple apple", rejected: "pear pear" };
    const options = { maxLength: 512, maxPromptLength: 128, truncationMode: "keep_end" as const };
    const whole = tokenizePair(pair, tokenizer, options);
    const cut = tokenizePair(pair, tokenizer, { ...options, maxCompletionLength: 5 });
    assert.deepEqual(cut.chosenInputIds, whole.chosenInputIds.slice(0, whole.promptLength + 5));
    assert.deepEqual(cut.rejectedInputIds, whole.rejectedInputIds.slice(0, whole.promptLength + 5));
    assert.equal(cut.truncated, true);
    assert.equal(whole.truncated, false);
  });
});
