// The training config: reference YAML keys as they are, warnings for unknown and hardware keys,
// errors naming the key, --set overrides typed by YAML, paths relative to the YAML's directory.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ConfigError, loadTrainConfig, parseOverride } from "../../src/train/config.js";
import { tempDir } from "../helpers/toy.js";

let root: string;
before(() => { root = tempDir("omni-dpo-config-"); });
after(() => rmSync(root, { recursive: true, force: true }));

let counter = 0;
function yamlFile(text: string, dir = root): string {
  const file = join(dir, `config-${counter++}.yaml`);
  writeFileSync(file, text);
  return file;
}

const BASE = `model_name_or_path: model
output_dir: out
dataset_mixer:
  data/pairs.jsonl: 1.0
`;

/** The Qwen2.5-0.5B text recipe of the reference, as its YAML writes it (paths filled in). */
const REFERENCE_QWEN = `# Configuration Section
model_name_or_path: models/Qwen2.5-0.5B
ref_model: models/Qwen2.5-0.5B
output_dir: outputs/qwen-uni-dpo
dataset_mixer:
  "data/ultrafeedback-gpt-4o": 1.0

dataset_splits:
  - train
preprocessing_num_workers: 12

learning_rate: 2.0e-6
pref_loss: uni_dpo
beta: 3.5
uni_dpo_qual_eta: 0.7
uni_dpo_tau_ref: 0.8
uni_dpo_perf_gamma: 3.0
uni_dpo_nll_lambda: 0.001
uni_dpo_tau_good: 3.2

dpo_length_norm: True
seed: 42
warmup_ratio: 0.1
hub_model_id: Qwen2.5-0.5B-Uni-DPO
run_name: Qwen2.5-0.5B-Uni-DPO

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
per_device_train_batch_size: 4
per_device_eval_batch_size: 8
push_to_hub: false
save_strategy: "steps"
save_steps: 1000000
save_total_limit: 20
`;

describe("reference YAML", () => {
  it("the Qwen2.5-0.5B recipe's keys are read as they are", () => {
    const file = yamlFile(REFERENCE_QWEN);
    const { config, warnings } = loadTrainConfig(file);
    assert.equal(config.learningRate, 2e-6);
    assert.equal(config.lrSchedulerType, "cosine");
    assert.equal(config.warmupRatio, 0.1);
    assert.equal(config.numTrainEpochs, 1);
    assert.equal(config.perDeviceTrainBatchSize, 4);
    assert.equal(config.perDeviceEvalBatchSize, 8);
    assert.equal(config.gradientAccumulationSteps, 16);
    assert.equal(config.maxLength, 2048);
    assert.equal(config.maxPromptLength, 1800);
    assert.equal(config.seed, 42);
    assert.equal(config.loggingSteps, 5);
    assert.equal(config.evalSteps, 1000);
    assert.equal(config.saveSteps, 1000000);
    assert.equal(config.saveTotalLimit, 20);
    assert.equal(config.dpoLengthNorm, true);
    assert.equal(config.objective.lossType, "omni_dpo");
    assert.equal(config.objective.beta, 3.5);
    assert.equal(config.objective.qualEta, 0.7);
    assert.equal(config.objective.tauRef, 0.8);
    assert.equal(config.objective.perfGamma, 3);
    assert.equal(config.objective.nllLambda, 0.001);
    assert.equal(config.objective.tauGood, 3.2);
    assert.equal(config.modelNameOrPath, join(root, "models/Qwen2.5-0.5B"));
    assert.equal(config.refModel, join(root, "models/Qwen2.5-0.5B"));
    // Hardware keys are accepted with a warning naming them; hub and tracker keys silently.
    for (const key of ["bf16", "attn_implementation", "gradient_checkpointing"]) {
      assert.ok(warnings.some((w) => w.includes(`'${key}'`)), `no warning for ${key}: ${warnings.join(" | ")}`);
    }
    for (const key of ["hub_model_id", "run_name", "push_to_hub", "optim", "dataset_splits", "do_eval", "log_level"]) {
      assert.ok(!warnings.some((w) => w.includes(`'${key}'`)), `unexpected warning for ${key}`);
    }
    assert.ok(warnings.every((w) => w.startsWith(file)), "warnings name the YAML file");
  });

  it("loss_type selects the loss too (TRL style), and pref_loss: simpo is SimPO", () => {
    assert.equal(loadTrainConfig(yamlFile(BASE + "loss_type: sigmoid\nbeta: 0.1\n")).config.objective.lossType, "dpo");
    const simpo = loadTrainConfig(yamlFile(BASE + "pref_loss: simpo\nbeta: 2.0\ngamma_beta_ratio: 0.5\n")).config.objective;
    assert.equal(simpo.lossType, "simpo");
    assert.equal(simpo.gammaBetaRatio, 0.5);
  });

  it("defaults follow TrainingArguments / DPOConfig", () => {
    const { config, warnings } = loadTrainConfig(yamlFile(BASE));
    assert.deepEqual(warnings, []);
    assert.equal(config.maxLength, 512);
    assert.equal(config.maxPromptLength, 128);
    assert.equal(config.truncationMode, "keep_end");
    assert.equal(config.perDeviceTrainBatchSize, 8);
    assert.equal(config.gradientAccumulationSteps, 1);
    assert.equal(config.maxGradNorm, 1);
    assert.equal(config.lrSchedulerType, "linear");
    assert.equal(config.resumeFromCheckpoint, null);
    assert.equal(config.precomputeRefLogProbs, false);
    assert.equal(config.refModel, null);
  });
});

describe("warnings and errors name the key", () => {
  it("unknown keys are warned about by name and otherwise ignored", () => {
    const { warnings } = loadTrainConfig(yamlFile(BASE + "learnin_rate: 1.0e-5\nmy_custom_flag: true\n"));
    assert.equal(warnings.length, 2);
    assert.ok(warnings.some((w) => w.includes("unknown key 'learnin_rate'")));
    assert.ok(warnings.some((w) => w.includes("unknown key 'my_custom_flag'")));
  });

  it("hardware keys (bf16, use_flash_attention_2, deepspeed) are accepted with a warning", () => {
    const { config, warnings } = loadTrainConfig(yamlFile(BASE + "bf16: true\nuse_flash_attention_2: true\ndeepspeed: configs/zero3.json\n"));
    assert.equal(config.maxLength, 512);
    for (const key of ["bf16", "use_flash_attention_2", "deepspeed"]) {
      assert.ok(warnings.some((w) => w.includes(`'${key}'`) && /hardware/.test(w)), `no hardware warning for ${key}`);
    }
    // Switched off, they need no warning.
    assert.deepEqual(loadTrainConfig(yamlFile(BASE + "bf16: false\nfp16: false\n")).warnings, []);
  });

  it("wrong types are errors naming the key", () => {
    const cases: [string, string][] = [
      ["learning_rate: fast\n", "learning_rate"],
      ["per_device_train_batch_size: 2.5\n", "per_device_train_batch_size"],
      ["max_length: [1, 2]\n", "max_length"],
      ["precompute_ref_log_probs: yes please\n", "precompute_ref_log_probs"],
      ["output_dir: 12\n", "output_dir"],
      ["beta: lots\n", "beta"],
      ["lr_scheduler_type: exponential\n", "lr_scheduler_type"],
      ["truncation_mode: middle\n", "truncation_mode"],
      ["max_prompt_length: 600\nmax_length: 512\n", "max_prompt_length"],
      ["gradient_accumulation_steps: 0\n", "gradient_accumulation_steps"],
    ];
    for (const [line, key] of cases) {
      const text = BASE.replace(/^output_dir: out\n/m, line.startsWith("output_dir") ? "" : "output_dir: out\n") + line;
      assert.throws(() => loadTrainConfig(yamlFile(text)), (e: unknown) => {
        assert.ok(e instanceof ConfigError, `${key}: expected a ConfigError, got ${String(e)}`);
        assert.ok(e.message.includes(key), `${key}: message does not name it: ${e.message}`);
        return true;
      }, key);
    }
  });

  it("dataset_mixer fractions outside (0, 1] name the path", () => {
    assert.throws(() => loadTrainConfig(yamlFile("model_name_or_path: m\noutput_dir: o\ndataset_mixer:\n  data/x.jsonl: 2\n")), /dataset_mixer.*data\/x\.jsonl/);
  });

  it("a missing required key is an error naming it", () => {
    for (const key of ["model_name_or_path", "output_dir", "dataset_mixer"]) {
      const text = BASE.split("\n").filter((l) => !l.startsWith(key) && !(key === "dataset_mixer" && l.startsWith("  "))).join("\n");
      assert.throws(() => loadTrainConfig(yamlFile(text)), new RegExp(`missing required key '${key}'`));
    }
  });

  it("a missing file, invalid YAML or a non-mapping is an error naming the file", () => {
    const gone = join(root, "nope.yaml");
    assert.throws(() => loadTrainConfig(gone), (e: unknown) => e instanceof ConfigError && e.message.includes(gone));
    const bad = yamlFile("model_name_or_path: [unclosed\n");
    assert.throws(() => loadTrainConfig(bad), (e: unknown) => e instanceof ConfigError && e.message.includes(bad) && /YAML/.test(e.message));
    const list = yamlFile("- a\n- b\n");
    assert.throws(() => loadTrainConfig(list), /mapping/);
  });
});

describe("--set overrides", () => {
  it("parseOverride reads the value as YAML", () => {
    assert.deepEqual(parseOverride("learning_rate=3.0e-4"), ["learning_rate", 3e-4]);
    assert.deepEqual(parseOverride("max_length=128"), ["max_length", 128]);
    assert.deepEqual(parseOverride("resume_from_checkpoint=true"), ["resume_from_checkpoint", true]);
    assert.deepEqual(parseOverride("output_dir=runs/a=b"), ["output_dir", "runs/a=b"], "only the first '=' splits");
    assert.deepEqual(parseOverride("ref_model=null"), ["ref_model", null]);
    assert.deepEqual(parseOverride(" beta = 0.5"), ["beta", 0.5]);
    assert.throws(() => parseOverride("learning_rate"), ConfigError);
    assert.throws(() => parseOverride("=1"), ConfigError);
  });

  it("overrides replace YAML values and are checked like them", () => {
    const file = yamlFile(BASE + "learning_rate: 1.0e-6\nbeta: 2.0\n");
    const { config } = loadTrainConfig(file, ["learning_rate=5.0e-5", "beta=0.25", "num_train_epochs=2", "resume_from_checkpoint=true", "output_dir=elsewhere"].map(parseOverride));
    assert.equal(config.learningRate, 5e-5);
    assert.equal(config.objective.beta, 0.25);
    assert.equal(config.numTrainEpochs, 2);
    assert.equal(config.resumeFromCheckpoint, true);
    assert.equal(config.outputDir, join(root, "elsewhere"));
    assert.throws(() => loadTrainConfig(file, [parseOverride("max_length=long")]), /max_length/);
  });

  it("resume_from_checkpoint takes a path (resolved) or true/false", () => {
    const { config } = loadTrainConfig(yamlFile(BASE + "resume_from_checkpoint: out/checkpoint-10\n"));
    assert.equal(config.resumeFromCheckpoint, join(root, "out/checkpoint-10"));
  });
});

describe("paths", () => {
  it("relative paths resolve against the YAML's directory, not the working directory", () => {
    const dir = join(root, "nested", "recipes");
    mkdirSync(dir, { recursive: true });
    const file = yamlFile(`model_name_or_path: ../models/tiny
ref_model: ../models/ref
output_dir: runs/a
eval_file: data/eval.jsonl
dataset_mixer:
  data/one.jsonl: 0.5
  /abs/two.parquet: 1.0
`, dir);
    const { config } = loadTrainConfig(file);
    assert.equal(config.modelNameOrPath, join(root, "nested", "models", "tiny"));
    assert.equal(config.refModel, join(root, "nested", "models", "ref"));
    assert.equal(config.outputDir, join(dir, "runs", "a"));
    assert.equal(config.evalFile, join(dir, "data", "eval.jsonl"));
    assert.deepEqual(config.datasetMixer, { [join(dir, "data", "one.jsonl")]: 0.5, "/abs/two.parquet": 1.0 });
  });

  it("eval_strategy / save_strategy 'no' turn eval and saving off", () => {
    const { config } = loadTrainConfig(yamlFile(BASE + "eval_strategy: \"no\"\neval_steps: 10\nsave_strategy: \"no\"\n"));
    assert.equal(config.evalSteps, null);
    assert.equal(config.saveSteps, null);
  });
});
