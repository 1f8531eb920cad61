// `omni-dpo train-rm` / trainRewardModel (TRL's RewardTrainer on the preference trainer):
//   - one SGD step's loss and gradients (with a margin column and center_rewards_coefficient)
//     equal an independent PyTorch implementation of TRL's compute_loss (reference_reward.py);
//   - a run interrupted and resumed ends with the weights and metrics of one uninterrupted;
//   - from a causal LM, the CLI writes a LlamaForSequenceClassification checkpoint (score.weight
//     [1, hidden], no lm_head) that loads as a sequence classifier, scores as the independent
//     head does, and scores `omni-dpo data build --reward-model`; eval reports pairwise accuracy;
//   - with LoRA: PEFT's SEQ_CLS adapter (score head in modules_to_save), exact resume, loads as a classifier;
//   - the errors a user meets: a margin column some records lack, a classifier
//     with several labels.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { AutoModelForSequenceClassification, loadModel, torch, Tokenizer } from "../../src/index.js";
import { concatenatedBatch } from "../../src/data/tokenize.js";
import { createSequenceClassifier, saveSequenceClassifier } from "../../src/models/sequence-classification.js";
import { loadTrainConfig } from "../../src/train/config.js";
import { MetricsSink, type MetricRow } from "../../src/train/metrics.js";
import { RewardTrainer, trainRewardModel } from "../../src/train/reward-trainer.js";
import { prepareData, train, type TrainHooks } from "../../src/train/trainer.js";
import { packageRoot } from "../../src/util/package-root.js";
import { runPythonJson } from "../../src/util/python.js";
import { skipUnless } from "../helpers/requirements.js";
import { writeByteLevelTokenizer } from "../helpers/tokenizers.js";
import { tempDir, toyPairs, writeJsonl, writeToyModel } from "../helpers/toy.js";
import { maxWeightDifference, weightsOf, writeRecipe } from "../distributed/train-ranks.js";

torch.setNumThreads(1);
const needsTorch = skipUnless("torch");
const CLI = join(packageRoot(), "dist", "src", "cli", "main.js");
const REWARD_REFERENCE = fileURLToPath(new URL("../../../test/train/reference_reward.py", import.meta.url));
const HEAD_REFERENCE = fileURLToPath(new URL("../../../test/models/reference_archs2.py", import.meta.url));

let root: string;
let lm: string;
let rm: string;
let data: string;
let marginData: string;

/** A tiny Llama reward model (one label), every weight random so rewards and gradients spread. */
function writeRewardModel(dir: string, numLabels = 1): string {
  const tok = writeByteLevelTokenizer(dir);
  torch.manualSeed(5);
  const model = createSequenceClassifier({
    architectures: ["LlamaForSequenceClassification"],
    model_type: "llama",
    vocab_size: tok.vocabSize,
    hidden_size: 32,
    intermediate_size: 64,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    max_position_embeddings: 128,
    rms_norm_eps: 1e-6,
    num_labels: numLabels,
    pad_token_id: tok.eosTokenId,
    bos_token_id: tok.bosTokenId,
    eos_token_id: tok.eosTokenId,
  });
  torch.noGrad(() =>
    torch.tidy(() => {
      for (const [name, p] of model.namedParameters()) {
        const v = torch.randn(p.shape).mul(0.3);
        model.setParameter(name, /norm/.test(name) ? v.add(1) : v);
      }
    }),
  );
  saveSequenceClassifier(model, dir);
  model.dispose();
  return dir;
}

before(() => {
  root = tempDir("omni-dpo-rm-");
  lm = writeToyModel(join(root, "lm"), { seed: 4 });
  rm = writeRewardModel(join(root, "rm"));
  data = writeJsonl(join(root, "pairs.jsonl"), toyPairs(24, 3));
  marginData = writeJsonl(
    join(root, "margins.jsonl"),
    toyPairs(6, 9).map((p, i) => ({ ...p, margin: 0.25 * i - 0.5 })),
  );
});
after(() => rmSync(root, { recursive: true, force: true }));

function recipe(name: string, keys: Record<string, unknown>) {
  return loadTrainConfig({
    model_name_or_path: rm,
    dataset_mixer: { [data]: 1.0 },
    output_dir: join(root, name),
    max_length: 64,
    max_prompt_length: 32,
    learning_rate: 1e-3,
    lr_scheduler_type: "linear",
    warmup_steps: 1,
    per_device_train_batch_size: 4,
    logging_steps: 1,
    seed: 3,
    pair_log_samples: 4,
    ...keys,
  }).config;
}

const rowsOf = (dir: string): MetricRow[] => MetricsSink.read(join(dir, "metrics.jsonl"));

function cli(args: string[]) {
  return spawnSync(process.execPath, [CLI, ...args], {
    encoding: "utf8",
    timeout: 180_000,
    env: { ...process.env, OMP_NUM_THREADS: "1" },
  });
}

describe("the reward loss", () => {
  it(
    "one step's loss and gradients equal PyTorch's TRL compute_loss (margin column, center_rewards_coefficient)",
    { skip: needsTorch },
    async () => {
      // SGD with lr 1, no clipping, decay or warmup: the weights move by exactly minus the gradient.
      const config = recipe("parity", {
        dataset_mixer: { [marginData]: 1.0 },
        optim: "sgd",
        learning_rate: 1.0,
        weight_decay: 0,
        lr_scheduler_type: "constant",
        warmup_steps: 0,
        max_steps: 1,
        per_device_train_batch_size: 6,
        max_grad_norm: 0,
        center_rewards_coefficient: 0.05,
        save_strategy: "no",
        pair_log_samples: 0,
      });
      const trainer = new RewardTrainer(config);
      await trainer.train();
      const pairs = trainer.data.train;
      assert.equal(pairs.length, 6);
      const batch = concatenatedBatch(pairs, trainer.padTokenId);
      const reference = runPythonJson<{ loss: number; grads: Record<string, number[]> }>(
        REWARD_REFERENCE,
        {
          dir: rm,
          input_ids: batch.inputIds,
          attention_mask: batch.attentionMask,
          pad_token_id: trainer.padTokenId,
          margin: pairs.map((p) => p.margin),
          center_rewards_coefficient: 0.05,
        },
        { file: true },
      );
      const loss = rowsOf(config.outputDir)[0].loss as number;
      assert.ok(Math.abs(loss - reference.loss) <= 1e-5, `loss ${loss}, PyTorch ${reference.loss}`);
      const before = weightsOf(rm);
      const afterStep = weightsOf(config.outputDir);
      assert.deepEqual([...afterStep.keys()].sort(), Object.keys(reference.grads).sort());
      let worst = 0;
      let largest = 0;
      for (const [name, want] of Object.entries(reference.grads)) {
        const w0 = before.get(name)!;
        const w1 = afterStep.get(name)!;
        want.forEach((g, i) => {
          worst = Math.max(worst, Math.abs(w0[i] - w1[i] - g));
          largest = Math.max(largest, Math.abs(g));
        });
      }
      assert.ok(worst <= 2e-5, `gradients differ by up to ${worst}`);
      assert.ok(largest > 1e-2, `the gradients are not all ~0 (largest ${largest})`);
    },
  );
});

describe("resume", () => {
  it("a run stopped at step 3 and resumed ends as the uninterrupted run (weights, metrics)", async () => {
    const keys = {
      torch_dtype: "float64",
      max_steps: 6,
      per_device_train_batch_size: 4,
      gradient_accumulation_steps: 2,
      save_steps: 2,
      test_split_size: 4,
      eval_steps: 3,
      center_rewards_coefficient: 0.01,
    };
    const whole = recipe("whole", keys);
    await trainRewardModel(whole);
    const parts = recipe("parts", keys);
    let step = 0;
    const stopAt3: TrainHooks = {
      onProgress: (s) => {
        step = s;
      },
      shouldStop: () => step >= 3,
    };
    const first = await trainRewardModel(parts, stopAt3);
    assert.equal(first.interrupted, true);
    assert.equal(first.globalStep, 3);
    const second = await trainRewardModel(parts);
    assert.equal(second.globalStep, 6);
    assert.ok(maxWeightDifference(weightsOf(whole.outputDir), weightsOf(parts.outputDir)) <= 1e-12);
    const strip = (rows: MetricRow[]) => rows.map(({ tokens_per_second: _t, ...r }) => r);
    assert.deepEqual(strip(rowsOf(parts.outputDir)), strip(rowsOf(whole.outputDir)));
  });
});

describe("LoRA", () => {
  it("trains adapters and the score head, saves PEFT's SEQ_CLS adapter, resumes exactly, and loads as a classifier", async () => {
    const keys = {
      model_name_or_path: lm,
      use_peft: true,
      lora_r: 4,
      lora_alpha: 8,
      max_steps: 4,
      save_steps: 2,
      test_split_size: 4,
      eval_steps: 4,
      learning_rate: 1e-2,
    };
    const whole = recipe("lora-whole", keys);
    await trainRewardModel(whole);
    const parts = recipe("lora-parts", keys);
    let step = 0;
    const first = await trainRewardModel(parts, {
      onProgress: (s) => {
        step = s;
      },
      shouldStop: () => step >= 1,
    });
    assert.equal(first.interrupted, true);
    await trainRewardModel(parts);
    const adapter = JSON.parse(readFileSync(join(whole.outputDir, "adapter_config.json"), "utf8")) as Record<
      string,
      unknown
    >;
    assert.equal(adapter.task_type, "SEQ_CLS");
    assert.deepEqual(adapter.modules_to_save, ["score"]);
    const weights = weightsOf(whole.outputDir);
    assert.ok(weights.has("base_model.model.score.weight"), [...weights.keys()].join(", "));
    assert.ok([...weights.keys()].some((k) => k.includes("lora_A")));
    assert.ok(maxWeightDifference(weights, weightsOf(parts.outputDir)) <= 1e-6);
    // Not a causal LM's adapter: loading it as one says what it is.
    assert.throws(() => loadModel(whole.outputDir), /task_type is SEQ_CLS: a sequence classifier's adapter/);
    // The adapter loads as a sequence classifier: its mean reward over the eval pairs is the last eval row's.
    const model = await AutoModelForSequenceClassification.fromPretrained(whole.outputDir);
    const evalRow = rowsOf(whole.outputDir)
      .filter((r) => "eval_mean_reward" in r)
      .at(-1)!;
    const evalPairs = (await prepareData(whole)).eval;
    const rows = evalPairs.flatMap((p) => [p.chosenInputIds, p.rejectedInputIds]);
    const scores = model.scoreTokenLists(rows, { batchSize: 1 }).map((x) => x[0]);
    model.dispose();
    const mean = scores.reduce((a, b) => a + b, 0) / scores.length;
    assert.ok(Math.abs(mean - (evalRow.eval_mean_reward as number)) <= 1e-5, `${mean} vs ${evalRow.eval_mean_reward}`);
    // And it scores on-policy samples as a --reward-model.
    const prompts = writeJsonl(join(root, "lora-prompts.jsonl"), [{ prompt: "say apple:" }, { prompt: "say river:" }]);
    const out = join(root, "lora-pairs.jsonl");
    const built = cli([
      "data",
      "build",
      "--model",
      lm,
      "--prompts",
      prompts,
      "--reward-model",
      whole.outputDir,
      "--out",
      out,
      "--max-new-tokens",
      "4",
      "--samples",
      "2",
    ]);
    assert.equal(built.status, 0, built.stderr);
  });
});

describe("gradient checkpointing", () => {
  it("a run with gradient_checkpointing ends with the weights of one without (float64)", async () => {
    const keys = { torch_dtype: "float64", max_steps: 3, save_strategy: "no", center_rewards_coefficient: 0.01 };
    const plain = recipe("plain", keys);
    const checkpointed = recipe("checkpointed", { ...keys, gradient_checkpointing: true });
    await trainRewardModel(plain);
    await trainRewardModel(checkpointed);
    const moved = maxWeightDifference(weightsOf(rm), weightsOf(plain.outputDir));
    assert.ok(moved > 1e-4, `the weights moved (${moved})`);
    assert.ok(maxWeightDifference(weightsOf(plain.outputDir), weightsOf(checkpointed.outputDir)) <= 1e-12);
  });
});

describe("train-rm on the command line, from a causal LM", () => {
  it("train-rm --help says what it trains and lists the recipe keys", () => {
    const r = cli(["train-rm", "--help"]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /Usage: omni-dpo train-rm CONFIG\.yaml/);
    assert.match(r.stdout, /TRL's RewardTrainer/);
    assert.match(r.stdout, /center_rewards_coefficient/);
  });

  it("writes a sequence classifier that loads, scores as the independent head, and scores data build --reward-model", async () => {
    const out = join(root, "cli-rm");
    const yaml = join(root, "cli-rm.yaml");
    const keys = {
      model_name_or_path: lm,
      dataset_mixer: { [data]: 1.0 },
      test_split_size: 6,
      output_dir: out,
      max_length: 64,
      max_prompt_length: 32,
      learning_rate: 3e-3,
      per_device_train_batch_size: 6,
      max_steps: 6,
      eval_steps: 3,
      save_steps: 3,
      logging_steps: 1,
      seed: 2,
    };
    writeRecipe(yaml, keys);
    const r = cli(["train-rm", yaml]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /trained 6 steps; model saved to /);
    const config = JSON.parse(readFileSync(join(out, "config.json"), "utf8")) as Record<string, unknown>;
    assert.deepEqual(config.architectures, ["LlamaForSequenceClassification"]);
    assert.deepEqual(Object.keys(config.id2label as object), ["0"]);
    const tok = Tokenizer.fromPretrainedSync(out);
    assert.equal(config.pad_token_id, tok.padTokenId ?? tok.eosTokenId);
    const weights = weightsOf(out);
    assert.ok(weights.has("score.weight") && !weights.has("lm_head.weight"));
    assert.equal(weights.get("score.weight")!.length, 32);
    assert.ok(existsSync(join(out, "checkpoint-6", "config.json")));
    // TRL's metrics, and eval's pairwise accuracy.
    const rows = rowsOf(out);
    for (const k of [
      "loss",
      "accuracy",
      "margin",
      "min_reward",
      "mean_reward",
      "max_reward",
      "grad_norm",
      "learning_rate",
    ]) {
      assert.equal(typeof rows.find((x) => "loss" in x)![k], "number", k);
    }
    const evalRows = rows.filter((x) => "eval_accuracy" in x);
    assert.equal(evalRows.length, 2);
    for (const e of evalRows)
      assert.ok(Number.isInteger((e.eval_accuracy as number) * 6), `accuracy over 6 pairs: ${e.eval_accuracy}`);
    const card = readFileSync(join(out, "README.md"), "utf8");
    assert.match(card, /bradley_terry/);

    // It loads as a sequence classifier (one label) and scores.
    const model = await AutoModelForSequenceClassification.fromPretrained(out);
    const ids = [tok.encode("say apple: apple apple"), tok.encode("say river: stone")];
    const ours = model.scoreTokenLists(ids, { batchSize: 1 }).map((s) => s[0]);
    model.dispose();
    assert.equal(ours.length, 2);
    if (!needsTorch) {
      const theirs = runPythonJson<{ results: { values: number[] }[] }>(
        HEAD_REFERENCE,
        {
          cases: ids.map((row) => ({ task: "scores", dir: out, input_ids: [row], attention_mask: null })),
        },
        { file: true },
      ).results.map((x) => x.values[0]);
      ours.forEach((s, i) => assert.ok(Math.abs(s - theirs[i]) <= 1e-4, `${s} vs ${theirs[i]}`));
    }

    // And it scores on-policy samples.
    const prompts = writeJsonl(
      join(root, "prompts.jsonl"),
      ["apple", "river", "stone", "cloud"].map((w) => ({ prompt: `say ${w}:` })),
    );
    const pairs = join(root, "rm-pairs.jsonl");
    const built = cli([
      "data",
      "build",
      "--model",
      lm,
      "--prompts",
      prompts,
      "--reward-model",
      out,
      "--out",
      pairs,
      "--max-new-tokens",
      "6",
      "--samples",
      "3",
    ]);
    assert.equal(built.status, 0, built.stderr);
    const scored = readFileSync(pairs, "utf8")
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { all_rm_scores: number[] });
    assert.ok(scored.length > 0);
    assert.ok(scored.every((row) => row.all_rm_scores.length === 3 && row.all_rm_scores.every(Number.isFinite)));
  });
});

describe("errors", () => {
  it("center_rewards_coefficient in a preference-training run is an error naming the key", async () => {
    const config = recipe("not-rm", { model_name_or_path: lm, center_rewards_coefficient: 0.01, max_steps: 1 });
    await assert.rejects(train(config), /key 'center_rewards_coefficient': it applies to reward-model training/);
  });

  it("a margin column that some records lack is refused before training", async () => {
    const mixed = writeJsonl(
      join(root, "mixed.jsonl"),
      toyPairs(4, 2).map((p, i) => (i === 2 ? p : { ...p, margin: 1 })),
    );
    const config = recipe("mixed", { dataset_mixer: { [mixed]: 1.0 }, max_steps: 1 });
    await assert.rejects(
      trainRewardModel(config),
      /mixed\.jsonl:3: field 'margin': missing, while .*mixed\.jsonl:1 has one/,
    );
    assert.ok(!existsSync(join(config.outputDir, "model.safetensors")));
  });

  it("a classifier with several labels is refused, naming it", async () => {
    const three = writeRewardModel(join(root, "rm-three"), 3);
    await assert.rejects(
      trainRewardModel(recipe("three", { model_name_or_path: three, max_steps: 1 })),
      /rm-three: a reward model has one label; this classifier has 3/,
    );
  });
});
