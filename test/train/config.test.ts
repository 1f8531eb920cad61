// The training config: reference YAML keys as they are, warnings for unknown and hardware keys,
// errors naming the key, --set overrides typed by YAML, paths relative to the YAML's directory.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ConfigError, loadTrainConfig, parseOverride } from "../../src/train/config.js";
import { RECIPE_KEYS, type KeySpec } from "../../src/train/keys.js";
import { tempDir } from "../helpers/toy.js";

let root: string;
before(() => {
  root = tempDir("omni-dpo-config-");
});
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
    assert.equal(config.gradientCheckpointing, true);
    // Hardware, hub and tooling keys set to anything but their default are accepted with a warning naming them.
    for (const key of [
      "attn_implementation",
      "hub_model_id",
      "dataset_splits",
      "preprocessing_num_workers",
      "log_level",
    ]) {
      assert.ok(
        warnings.some((w) => w.includes(`'${key}'`)),
        `no warning for ${key}: ${warnings.join(" | ")}`,
      );
    }
    // bf16, torch_dtype and gradient checkpointing are honoured: no warning, and their values reach the config.
    for (const key of ["bf16", "torch_dtype"])
      assert.ok(!warnings.some((w) => w.includes(`'${key}'`)), `warning for ${key}: ${warnings.join(" | ")}`);
    assert.equal(config.bf16, true);
    assert.equal(config.torchDtype, null);
    // Honoured (run_name, optim, do_eval, gradient_checkpointing_kwargs' use_reentrant), or at their default (push_to_hub: false).
    assert.equal(config.runName, "Qwen2.5-0.5B-Uni-DPO");
    assert.equal(config.optim, "adamw_torch");
    for (const key of [
      "run_name",
      "push_to_hub",
      "optim",
      "do_eval",
      "gradient_checkpointing",
      "gradient_checkpointing_kwargs",
      "save_strategy",
      "eval_strategy",
    ]) {
      assert.ok(!warnings.some((w) => w.includes(`'${key}'`)), `unexpected warning for ${key}`);
    }
    assert.ok(
      warnings.every((w) => w.startsWith(file)),
      "warnings name the YAML file",
    );
  });

  it("loss_type selects the loss too (TRL style), and pref_loss: simpo is SimPO", () => {
    assert.equal(loadTrainConfig(yamlFile(BASE + "loss_type: sigmoid\nbeta: 0.1\n")).config.objective.lossType, "dpo");
    const simpo = loadTrainConfig(yamlFile(BASE + "pref_loss: simpo\nbeta: 2.0\ngamma_beta_ratio: 0.5\n")).config
      .objective;
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
  it("an unknown key is an error naming it, with the nearest known key; allowUnknownKeys makes it a warning", () => {
    const text = BASE + "learnig_rate: 1.0e-5\nmy_custom_flag: true\nper_device_train_batchsize: 2\n";
    assert.throws(
      () => loadTrainConfig(yamlFile(text)),
      (e: unknown) => {
        assert.ok(e instanceof ConfigError);
        assert.match(e.message, /unknown key 'learnig_rate' \(did you mean 'learning_rate'\?\)/);
        assert.match(
          e.message,
          /unknown key 'per_device_train_batchsize' \(did you mean 'per_device_train_batch_size'\?\)/,
        );
        assert.match(e.message, /unknown key 'my_custom_flag'[;.]/, "no suggestion for a key near none");
        assert.match(e.message, /--allow-unknown-keys/);
        return true;
      },
    );
    const { config, warnings } = loadTrainConfig(yamlFile(text), [], { allowUnknownKeys: true });
    assert.equal(warnings.length, 3);
    assert.ok(warnings.some((w) => /unknown key 'learnig_rate' \(did you mean 'learning_rate'\?\) ignored/.test(w)));
    assert.equal(config.learningRate, 5e-7, "the misspelt key is not read");
  });

  it("hardware and tooling keys (use_flash_attention_2, deepspeed, push_to_hub, report_to: wandb) are accepted with a warning", () => {
    const { config, warnings } = loadTrainConfig(
      yamlFile(
        BASE + "use_flash_attention_2: true\ndeepspeed: configs/zero3.json\npush_to_hub: true\nreport_to: wandb\n",
      ),
    );
    assert.equal(config.maxLength, 512);
    for (const key of ["use_flash_attention_2", "deepspeed", "push_to_hub"]) {
      assert.ok(
        warnings.some((w) => w.includes(`'${key}'`) && /tooling/.test(w)),
        `no tooling warning for ${key}`,
      );
    }
    assert.ok(
      warnings.some((w) => /report_to: wandb is not available here; skipped/.test(w)),
      warnings.join(" | "),
    );
    // Switched off, they need no warning.
    assert.deepEqual(
      loadTrainConfig(yamlFile(BASE + "bf16: false\nfp16: false\npush_to_hub: false\nreport_to: none\n")).warnings,
      [],
    );
  });

  it("keys that would change training and are not supported are errors naming them (fp16, load_in_4bit, disable_dropout: false, optim: adafactor)", () => {
    const cases: [string, RegExp][] = [
      ["fp16: true\n", /key 'fp16' \(true\) is not supported/],
      ["load_in_4bit: true\n", /key 'load_in_4bit' \(true\) is not supported/],
      ["fp16_full_eval: true\n", /key 'fp16_full_eval'/],
      ["disable_dropout: false\n", /key 'disable_dropout' false is not supported/],
      ["optim: adafactor\n", /key 'optim' adafactor is not supported/],
      ["optim: adamw_bnb_8bit\n", /key 'optim' is not supported; supported: adamw_torch, adamw_torch_fused, sgd/],
      ["do_train: false\n", /key 'do_train' false \(evaluation only\)/],
      ["auto_insert_empty_system_msg: false\n", /key 'auto_insert_empty_system_msg' false is not supported/],
      ["label_pad_token_id: 0\n", /key 'label_pad_token_id' must be negative/],
      [
        "gradient_checkpointing_kwargs:\n  preserve_rng_state: false\n",
        /key 'gradient_checkpointing_kwargs' supports only use_reentrant/,
      ],
      ["lr_scheduler_type: reduce_lr_on_plateau\n", /key 'lr_scheduler_type' must be one of/],
      [
        "lr_scheduler_type: cosine_with_min_lr\n",
        /key 'lr_scheduler_kwargs' cosine_with_min_lr needs exactly one of min_lr or min_lr_rate/,
      ],
      [
        "lr_scheduler_type: linear\nlr_scheduler_kwargs:\n  power: 2\n",
        /key 'lr_scheduler_kwargs' linear takes no lr_scheduler_kwargs \(got power\)/,
      ],
      ["save_strategy: best\n", /key 'save_strategy' must be one of no, steps, epoch/],
    ];
    for (const [line, pattern] of cases) assert.throws(() => loadTrainConfig(yamlFile(BASE + line)), pattern, line);
    // Their defaults (or false) are fine.
    assert.deepEqual(
      loadTrainConfig(
        yamlFile(
          BASE + "fp16: false\nload_in_4bit: false\ndisable_dropout: true\noptim: adamw_torch_fused\ndo_train: true\n",
        ),
      ).warnings,
      [],
    );
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
      ["torch_dtype: bf16\n", "torch_dtype"],
    ];
    for (const [line, key] of cases) {
      const text = BASE.replace(/^output_dir: out\n/m, line.startsWith("output_dir") ? "" : "output_dir: out\n") + line;
      assert.throws(
        () => loadTrainConfig(yamlFile(text)),
        (e: unknown) => {
          assert.ok(e instanceof ConfigError, `${key}: expected a ConfigError, got ${String(e)}`);
          assert.ok(e.message.includes(key), `${key}: message does not name it: ${e.message}`);
          return true;
        },
        key,
      );
    }
  });

  it("dataset_mixer fractions outside (0, 1] name the path", () => {
    assert.throws(
      () => loadTrainConfig(yamlFile("model_name_or_path: m\noutput_dir: o\ndataset_mixer:\n  data/x.jsonl: 2\n")),
      /dataset_mixer.*data\/x\.jsonl/,
    );
  });

  it("a missing required key is an error naming it", () => {
    for (const key of ["model_name_or_path", "output_dir", "dataset_mixer"]) {
      const text = BASE.split("\n")
        .filter((l) => !l.startsWith(key) && !(key === "dataset_mixer" && l.startsWith("  ")))
        .join("\n");
      assert.throws(() => loadTrainConfig(yamlFile(text)), new RegExp(`missing required key '${key}'`));
    }
  });

  it("many unknown keys (10k) are checked in seconds (the YAML library's own check alone took 6 s) and listed 20 by name, then counted; a huge key is cut short", () => {
    const keys = Array.from({ length: 10_000 }, (_, i) => `unknown_key_${i}: 1`).join("\n");
    const file = yamlFile(BASE + keys + "\n");
    const started = Date.now();
    assert.throws(
      () => loadTrainConfig(file),
      (e: unknown) => {
        const m = (e as Error).message;
        assert.ok(
          m.includes(`${file}: unknown key 'unknown_key_0'; `) &&
            m.includes(`unknown key 'unknown_key_19', and 9980 more unknown keys.`),
          m,
        );
        assert.doesNotMatch(m, /unknown_key_20\b/);
        assert.ok(m.length < 3000, `the message is ${m.length} characters`);
        return e instanceof ConfigError;
      },
    );
    assert.ok(Date.now() - started < 5000, `took ${Date.now() - started} ms`);
    // (YAML's own keys stop at 1024 characters; a recipe given as an object has no such bound.)
    const huge = {
      model_name_or_path: "m",
      output_dir: "o",
      dataset_mixer: { "d.jsonl": 1 },
      ["k".repeat(1_000_000)]: 1,
    };
    assert.throws(() => loadTrainConfig(huge), /unknown key 'k{80}… \(1000000 characters\)'/);
    const { warnings } = loadTrainConfig(file, [], { allowUnknownKeys: true });
    assert.equal(warnings.filter((w) => /unknown key '/.test(w)).length, 20);
    assert.ok(
      warnings.some((w) => w === `${file}: 9980 more unknown keys ignored (--allow-unknown-keys)`),
      warnings.join("\n"),
    );
  });

  it("a key repeated in a mapping is an error naming both lines", () => {
    const file = yamlFile(BASE + "beta: 0.1\nbeta: 0.2\n");
    const line = BASE.split("\n").length;
    assert.throws(
      () => loadTrainConfig(file),
      (e: unknown) =>
        e instanceof ConfigError &&
        e.message === `${file}: line ${line + 1}: key 'beta' repeats the one on line ${line}`,
    );
    assert.throws(
      () =>
        loadTrainConfig(yamlFile(BASE.replace("dataset_mixer:\n", "dataset_mixer:\n  a.jsonl: 1.0\n  a.jsonl: 0.5\n"))),
      /key 'a\.jsonl' repeats the one on line/,
    );
  });

  it("a missing file, invalid YAML or a non-mapping is an error naming the file", () => {
    const gone = join(root, "nope.yaml");
    assert.throws(
      () => loadTrainConfig(gone),
      (e: unknown) => e instanceof ConfigError && e.message.includes(gone),
    );
    const bad = yamlFile("model_name_or_path: [unclosed\n");
    assert.throws(
      () => loadTrainConfig(bad),
      (e: unknown) => e instanceof ConfigError && e.message.includes(bad) && /YAML/.test(e.message),
    );
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

  it("an empty value is an error naming the key, not the default (an unset shell variable)", () => {
    for (const text of ["learning_rate=", "learning_rate=  "]) {
      assert.throws(
        () => parseOverride(text),
        (e: unknown) =>
          e instanceof ConfigError &&
          e.message === "--set learning_rate: the value is empty (give one, or None for the key's default)",
      );
    }
  });

  it("a value that is not YAML, infinite or NaN names --set and the key and says what is wrong", () => {
    assert.throws(() => parseOverride("beta=[1"), /^ConfigError: --set beta: '\[1' is not a YAML value \(/);
    assert.throws(
      () => parseOverride("learning_rate=1e400"),
      /^ConfigError: --set learning_rate: '1e400' is Infinity \(not a finite number/,
    );
    assert.throws(
      () => parseOverride("learning_rate=.nan"),
      /^ConfigError: --set learning_rate: '\.nan' is NaN \(not a number\)/,
    );
    // A wrong type from --set is placed at --set, not in the recipe.
    const file = yamlFile(BASE);
    assert.throws(
      () => loadTrainConfig(file, [parseOverride("learning_rate=fast")]),
      (e: unknown) =>
        e instanceof ConfigError &&
        e.message === `--set learning_rate: key 'learning_rate' must be a number, got "fast"`,
    );
    // In the recipe itself, an overflowing number is named as such, not as null.
    assert.throws(
      () => loadTrainConfig(yamlFile(BASE + "learning_rate: 1e400\n")),
      /key 'learning_rate' must be a number, got Infinity \(not a finite number/,
    );
  });

  it("overrides replace YAML values and are checked like them", () => {
    const file = yamlFile(BASE + "learning_rate: 1.0e-6\nbeta: 2.0\n");
    const { config } = loadTrainConfig(
      file,
      [
        "learning_rate=5.0e-5",
        "beta=0.25",
        "num_train_epochs=2",
        "resume_from_checkpoint=true",
        "output_dir=elsewhere",
      ].map(parseOverride),
    );
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
    const file = yamlFile(
      `model_name_or_path: ../models/tiny
ref_model: ../models/ref
output_dir: runs/a
eval_file: data/eval.jsonl
dataset_mixer:
  data/one.jsonl: 0.5
  /abs/two.parquet: 1.0
`,
      dir,
    );
    const { config } = loadTrainConfig(file);
    assert.equal(config.modelNameOrPath, join(root, "nested", "models", "tiny"));
    assert.equal(config.refModel, join(root, "nested", "models", "ref"));
    assert.equal(config.outputDir, join(dir, "runs", "a"));
    assert.equal(config.evalFile, join(dir, "data", "eval.jsonl"));
    assert.deepEqual(config.datasetMixer, { [join(dir, "data", "one.jsonl")]: 0.5, "/abs/two.parquet": 1.0 });
  });

  it("eval_strategy / save_strategy 'no' turn eval and saving off", () => {
    const { config } = loadTrainConfig(yamlFile(BASE + 'eval_strategy: "no"\neval_steps: 10\nsave_strategy: "no"\n'));
    assert.equal(config.evalSteps, null);
    assert.equal(config.saveSteps, null);
  });
});

describe("values checked as transformers checks them", () => {
  const rejects = (lines: string, key: string, value: string) => {
    assert.throws(
      () => loadTrainConfig(yamlFile(BASE + lines)),
      (e: unknown) => {
        assert.ok(e instanceof ConfigError, `${lines.trim()}: expected a ConfigError, got ${String(e)}`);
        assert.ok(
          e.message.includes(`'${key}'`) && e.message.includes(`got ${value}`),
          `${lines.trim()}: the message names neither the key nor the value: ${e.message}`,
        );
        return true;
      },
      lines,
    );
  };

  it("out-of-range values are errors naming the key and the value", () => {
    rejects("num_train_epochs: 0\n", "num_train_epochs", "0");
    rejects("num_train_epochs: -1\nmax_steps: -1\n", "num_train_epochs", "-1");
    rejects("save_steps: -5\n", "save_steps", "-5");
    rejects("save_steps: 0\n", "save_steps", "0");
    rejects("save_steps: 2.5\n", "save_steps", "2.5");
    rejects("eval_steps: 0\n", "eval_steps", "0");
    rejects("eval_steps: -10\n", "eval_steps", "-10");
    rejects("logging_steps: 0\n", "logging_steps", "0");
    rejects("logging_steps: -1\n", "logging_steps", "-1");
    rejects("warmup_ratio: 1.5\n", "warmup_ratio", "1.5");
    rejects("warmup_ratio: -0.1\n", "warmup_ratio", "-0.1");
    rejects("warmup_steps: -3\n", "warmup_steps", "-3");
    rejects("weight_decay: -0.01\n", "weight_decay", "-0.01");
    rejects("learning_rate: -1.0e-5\n", "learning_rate", "-0.00001");
    rejects("save_total_limit: -1\n", "save_total_limit", "-1");
  });

  it("what transformers accepts is accepted: epochs unused under max_steps, save_steps 0 with saving off, limits of 0, ratios up to 1", () => {
    assert.equal(loadTrainConfig(yamlFile(BASE + "num_train_epochs: 0\nmax_steps: 10\n")).config.maxSteps, 10);
    const off = loadTrainConfig(
      yamlFile(BASE + 'save_steps: 0\nsave_strategy: "no"\neval_steps: 0\neval_strategy: "no"\n'),
    ).config;
    assert.equal(off.saveSteps, null);
    assert.equal(off.evalSteps, null);
    assert.equal(loadTrainConfig(yamlFile(BASE + "save_total_limit: 0\n")).config.saveTotalLimit, 0);
    assert.equal(loadTrainConfig(yamlFile(BASE + "warmup_ratio: 1\n")).config.warmupRatio, 1);
    assert.equal(loadTrainConfig(yamlFile(BASE + "learning_rate: 0\n")).config.learningRate, 0);
  });

  it("logging, eval and save steps below 1 are fractions of the run, as the reference Math recipe's save_steps: 0.35", () => {
    const { config } = loadTrainConfig(yamlFile(BASE + "save_steps: 0.35\neval_steps: 0.5\nlogging_steps: 0.05\n"));
    assert.equal(config.saveSteps, 0.35);
    assert.equal(config.evalSteps, 0.5);
    assert.equal(config.loggingSteps, 0.05);
  });
});

describe("the table of recipe keys", () => {
  it("every key the trainer acts on has its table default in the config; the others warn or stay silent as the table says", () => {
    const { config, warnings } = loadTrainConfig(yamlFile(BASE));
    assert.deepEqual(warnings, []);
    const fields = config as unknown as Record<string, unknown>;
    for (const [key, spec] of Object.entries(RECIPE_KEYS) as [string, KeySpec][]) {
      const field = key.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
      if (spec.status) {
        assert.ok(!(field in fields), `${key} is not acted on, yet the config has ${field}`);
        // Never silent: a warning ("warn") or an error ("error") naming the key.
        const set = `${BASE}${key}: ${spec.default === true ? "false" : "true"}\n`;
        if (spec.status === "error")
          assert.throws(() => loadTrainConfig(yamlFile(set)), new RegExp(`key '${key}'.*not supported`));
        else {
          const { warnings: w } = loadTrainConfig(yamlFile(set));
          assert.equal(w.length, 1, `${key}: ${w.join(" | ")}`);
          assert.match(w[0], new RegExp(`'${key}'.*ignored`));
        }
      } else if (
        "default" in spec &&
        !["model_name_or_path", "output_dir", "dataset_mixer", "dpo_length_norm"].includes(key)
      ) {
        assert.deepEqual(fields[field], spec.default, `${key} -> ${field}`);
      } else {
        assert.ok(fields[field] !== undefined, `${key} -> ${field}`);
      }
    }
  });
});

describe("output_dir never overwrites the model it starts from", () => {
  it("output_dir equal to model_name_or_path or ref_model, also through a trailing slash or a symlink, is a ConfigError naming both keys", () => {
    const models = join(root, "overwrite-guard");
    mkdirSync(join(models, "sft"), { recursive: true });
    mkdirSync(join(models, "ref"), { recursive: true });
    symlinkSync(join(models, "sft"), join(models, "sft-link"));
    const cases: [string, string][] = [
      ["model_name_or_path: sft\noutput_dir: sft\n", "model_name_or_path"],
      ["model_name_or_path: sft\noutput_dir: sft/\n", "model_name_or_path"],
      ["model_name_or_path: sft\noutput_dir: ./sft-link\n", "model_name_or_path"],
      ["model_name_or_path: sft-link/\noutput_dir: ../overwrite-guard/sft\n", "model_name_or_path"],
      ["model_name_or_path: sft\nref_model: ref\noutput_dir: ref\n", "ref_model"],
    ];
    for (const [lines, key] of cases) {
      const file = yamlFile(`${lines}dataset_mixer:\n  data.jsonl: 1.0\n`, models);
      assert.throws(
        () => loadTrainConfig(file),
        (e: unknown) => {
          assert.ok(e instanceof ConfigError, String(e));
          assert.ok(e.message.includes("output_dir") && e.message.includes(key), `${lines.trim()}: ${e.message}`);
          return true;
        },
        lines,
      );
    }
    // A sibling is fine.
    const ok = yamlFile("model_name_or_path: sft\noutput_dir: sft-dpo\ndataset_mixer:\n  data.jsonl: 1.0\n", models);
    assert.equal(loadTrainConfig(ok).config.outputDir, join(models, "sft-dpo"));
  });
});

describe("output_dir never deletes an input", () => {
  it("a model or data in output_dir (a checkpoint), or output_dir in a model: refused, naming the key", () => {
    const runs = join(root, "inputs-guard");
    mkdirSync(join(runs, "run", "checkpoint-6"), { recursive: true });
    mkdirSync(join(runs, "base"), { recursive: true });
    symlinkSync(join(runs, "run", "checkpoint-6"), join(runs, "ckpt-link"));
    const data = "dataset_mixer:\n  data.jsonl: 1.0\n";
    const cases: [string, RegExp][] = [
      [
        "model_name_or_path: run/checkpoint-6\noutput_dir: run\noverwrite_output_dir: true\n" + data,
        /output_dir \(.*run\) contains model_name_or_path \(.*run\/checkpoint-6\)/,
      ],
      ["model_name_or_path: ckpt-link\noutput_dir: run\n" + data, /contains model_name_or_path \(.*ckpt-link\)/],
      ["model_name_or_path: base\nref_model: run/checkpoint-6\noutput_dir: run\n" + data, /contains ref_model/],
      [
        "model_name_or_path: base\noutput_dir: base/dpo\n" + data,
        /output_dir \(.*base\/dpo\) lies inside model_name_or_path/,
      ],
      [
        "model_name_or_path: base\noutput_dir: run\ndataset_mixer:\n  run/pairs.jsonl: 1.0\n",
        /contains dataset_mixer \(.*run\/pairs\.jsonl\)/,
      ],
      [
        "model_name_or_path: base\noutput_dir: run\ntrain_data_path: d.jsonl\neval_file: run/eval.jsonl\n",
        /contains eval_file/,
      ],
    ];
    for (const [text, message] of cases) {
      const refused = (e: unknown) => e instanceof ConfigError && message.test(e.message);
      assert.throws(() => loadTrainConfig(yamlFile(text, runs)), refused, text);
    }
    assert.ok(existsSync(join(runs, "run", "checkpoint-6")), "nothing was deleted");
    const ok = loadTrainConfig(yamlFile("model_name_or_path: run/checkpoint-6\noutput_dir: run-2\n" + data, runs));
    assert.equal(ok.config.outputDir, join(runs, "run-2"));
  });
});

describe("LLaMA-Factory's key names (the reference's multimodal recipe)", () => {
  it("pref_beta and dpo_average_log_prob are read as beta and dpo_length_norm; the vision keys default to frozen", () => {
    const text = `${BASE}pref_loss: uni_dpo\npref_beta: 2.0\ndpo_average_log_prob: true\n`;
    const { config } = loadTrainConfig(yamlFile(text));
    assert.equal(config.objectiveKeys.beta, 2);
    assert.equal(config.dpoLengthNorm, true);
    assert.equal(config.freezeVisionTower, true);
    assert.equal(config.freezeMultiModalProjector, true);
    const open = loadTrainConfig(yamlFile(`${BASE}freeze_vision_tower: false\n`)).config;
    assert.equal(open.freezeVisionTower, false);
  });

  it("cutoff_len, template, pref_loss: sigmoid and a key given twice under both names are refused by name", () => {
    assert.throws(
      () => loadTrainConfig(yamlFile(`${BASE}cutoff_len: 4096\n`)),
      /key 'cutoff_len' \(LLaMA-Factory's\) is not read: set max_length/,
    );
    assert.throws(
      () => loadTrainConfig(yamlFile(`${BASE}template: qwen2_vl\n`)),
      /key 'template' \(LLaMA-Factory's\) is not read/,
    );
    assert.throws(
      () => loadTrainConfig(yamlFile(`${BASE}pref_loss: sigmoid\n`)),
      /"sigmoid" is DPO: write pref_loss: dpo/,
    );
    assert.throws(
      () => loadTrainConfig(yamlFile(`${BASE}pref_beta: 2.0\nbeta: 0.1\n`)),
      /keys 'pref_beta' \(LLaMA-Factory's name\) and 'beta' mean the same; give one/,
    );
  });
});
