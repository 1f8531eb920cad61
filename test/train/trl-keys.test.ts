// TRL / transformers / PEFT keys a TRL user writes: each is implemented, accepted with a warning
// saying why it changes nothing here, or an error naming why it is unsupported; never refused as
// a misspelling. The implemented ones are checked by what they do: reference_free (reference
// log-probs 0), TR-DPO (the reference equals its closed form after N steps, also across a
// resume), load_best_model_at_end (the best checkpoint survives rotation and is the model
// written), model_init_kwargs.torch_dtype, dataset_name, lora_task_type.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, existsSync, rmSync } from "node:fs";
import { join } from "node:path";
import { train } from "../../src/index.js";
import { loadTrainConfig } from "../../src/train/config.js";
import { MetricsSink } from "../../src/train/metrics.js";
import { rotatedOut } from "../../src/train/checkpoint.js";
import { configChanges, configRecord } from "../../src/train/resume.js";
import { loadSafetensors } from "../../src/models/safetensors.js";
import { tempDir, toyPairs, writeJsonl, writeToyModel } from "../helpers/toy.js";

let root: string;
let model: string;
let data: string;
let evalData: string;
before(() => {
  root = tempDir("omni-dpo-trlkeys-");
  model = writeToyModel(join(root, "model"), { seed: 6 });
  data = writeJsonl(join(root, "pairs.jsonl"), toyPairs(8, 5));
  evalData = writeJsonl(join(root, "eval.jsonl"), toyPairs(4, 9));
});
after(() => rmSync(root, { recursive: true, force: true }));

const minimal = () => ({ model_name_or_path: model, dataset_mixer: { [data]: 1 }, output_dir: join(root, "unused") });
const load = (extra: Record<string, unknown>) => loadTrainConfig({ ...minimal(), ...extra });

function recipe(name: string, extra: Record<string, unknown> = {}) {
  return load({
    output_dir: join(root, name),
    eval_file: evalData,
    loss_type: "sigmoid",
    beta: 0.5,
    learning_rate: 5e-3,
    max_steps: 4,
    per_device_train_batch_size: 2,
    per_device_eval_batch_size: 4,
    max_length: 48,
    max_prompt_length: 24,
    pair_log_samples: 0,
    save_steps: 2,
    eval_steps: 2,
    logging_steps: 1,
    ...extra,
  }).config;
}

/** Every tensor of a safetensors file, as float64 arrays by name. */
function weights(file: string): Map<string, number[]> {
  const out = new Map<string, number[]>();
  for (const [name, t] of loadSafetensors(file)) {
    out.set(name, Array.from(t.data() as Float32Array));
    t.dispose();
  }
  return out;
}

function maxDiff(a: Map<string, number[]>, b: Map<string, number[]>): number {
  let d = 0;
  assert.deepEqual([...a.keys()].sort(), [...b.keys()].sort());
  for (const [k, x] of a)
    x.forEach((v, i) => {
      d = Math.max(d, Math.abs(v - b.get(k)![i]));
    });
  return d;
}

/** alpha * policy + (1 - alpha) * reference, weight by weight. */
function mix(policy: Map<string, number[]>, reference: Map<string, number[]>, alpha: number): Map<string, number[]> {
  return new Map([...reference].map(([k, r]) => [k, r.map((v, i) => alpha * policy.get(k)![i] + (1 - alpha) * v)]));
}

describe("TRL keys: each accepted with a warning saying why it changes nothing here", () => {
  const warned: [string, unknown][] = [
    ["dataset_num_proc", 8],
    ["padding_free", true],
    ["use_liger_kernel", true],
    ["use_logits_to_keep", true],
    ["ddp_find_unused_parameters", true],
    ["max_target_length", 128],
    ["router_aux_loss_coef", 0.01],
    ["pad_to_multiple_of", 8],
    ["activation_offloading", true],
    ["pad_token", "<pad>"],
  ];
  for (const [key, value] of warned) {
    it(`${key}: ${JSON.stringify(value)}`, () => {
      const { warnings } = load({ [key]: value });
      assert.equal(warnings.length, 1, warnings.join(" | "));
      assert.match(
        warnings[0],
        new RegExp(
          `key '${key}' changes nothing in this run \\(tooling, hardware or memory use\\); ignored \\(.{20,}\\)`,
        ),
      );
    });
  }
  it("model_init_kwargs' loading options", () => {
    const { warnings, config } = load({ model_init_kwargs: { torch_dtype: "float64", attn_implementation: "sdpa" } });
    assert.equal(config.torchDtype, "float64");
    assert.equal(warnings.length, 1);
    assert.match(warnings[0], /key 'model_init_kwargs.attn_implementation' changes nothing/);
  });
});

describe("TRL keys refused with the reason", () => {
  const refused: [Record<string, unknown>, RegExp][] = [
    [{ use_dora: true }, /key 'use_dora' \(true\) is not supported: DoRA .*not implemented/],
    [{ lora_task_type: "SEQ_CLS" }, /key 'lora_task_type' must be CAUSAL_LM/],
    [{ model_init_kwargs: { load_in_4bit: true } }, /key 'model_init_kwargs' has load_in_4bit, not supported here/],
    [
      { model_init_kwargs: { torch_dtype: "float64" }, torch_dtype: "float32" },
      /torch_dtype \(float64\) disagrees with the key torch_dtype/,
    ],
    [{ sync_ref_model: true, use_peft: true }, /key 'sync_ref_model' cannot go with use_peft/],
    [
      { sync_ref_model: true, precompute_ref_log_probs: true },
      /key 'sync_ref_model' cannot go with precompute_ref_log_probs/,
    ],
    [
      { sync_ref_model: true, pref_loss: "simpo" },
      /key 'sync_ref_model' needs a loss with a reference model; simpo has none/,
    ],
    [{ reference_free: true, pref_loss: "simpo" }, /key 'reference_free' needs a loss with a reference model/],
    [{ ref_model_mixup_alpha: 1.5 }, /key 'ref_model_mixup_alpha' must lie in \[0, 1\]/],
    [{ ref_model_sync_steps: 0 }, /key 'ref_model_sync_steps' must be at least 1/],
  ];
  for (const [extra, message] of refused) {
    it(JSON.stringify(extra), () => assert.throws(() => load(extra), message));
  }
  it("a Hub id in dataset_name or dataset_mixer gets the hint that datasets are not downloaded", async () => {
    const hint =
      /is not a file here and looks like a Hugging Face Hub dataset id; datasets are not downloaded: save it as JSONL or Parquet/;
    const { dataset_mixer: _m, ...noMixer } = minimal();
    assert.throws(
      () => loadTrainConfig({ ...noMixer, dataset_name: "trl-lib/ultrafeedback_binarized" }),
      new RegExp(`key 'dataset_name': 'trl-lib/ultrafeedback_binarized' ${hint.source}`),
    );
    const hub = (name: string) =>
      train(
        loadTrainConfig({
          ...minimal(),
          output_dir: join(root, name),
          dataset_mixer: { "HuggingFaceH4/ultrafeedback_binarized": 1.0 },
        }).config,
      );
    await assert.rejects(
      hub("hub"),
      /key 'dataset_mixer': .*HuggingFaceH4\/ultrafeedback_binarized: file not found \(if it names a Hugging Face Hub dataset: datasets are not downloaded: save it as JSONL or Parquet/,
    );
    assert.throws(
      () => load({ dataset_name: data }),
      /keys 'dataset_mixer' and 'dataset_name' both name training data; give one/,
    );
  });
});

describe("TRL keys implemented", () => {
  it("dataset_name names a local file: the training data, whole", () => {
    const { dataset_mixer: _m, ...noMixer } = minimal();
    assert.deepEqual(loadTrainConfig({ ...noMixer, dataset_name: data }).config.datasetMixer, { [data]: 1 });
    assert.equal(load({ lora_task_type: "CAUSAL_LM" }).config.loraTaskType, "CAUSAL_LM");
  });

  it("reference_free: every reference log-prob is 0, so each reward is beta times the policy's log-prob", async () => {
    const rowOf = async (name: string, extra: Record<string, unknown>) => {
      const r = await train(recipe(name, { max_steps: 1, save_strategy: "no", ...extra }));
      return MetricsSink.read(join(r.outputDir, "metrics.jsonl")).find((x) => "eval_rewards/chosen" in x)!;
    };
    for (const [name, extra] of [
      ["free", { reference_free: true }],
      ["with-ref", {}],
    ] as const) {
      const row = await rowOf(name, extra);
      const gap = Math.abs(Number(row["eval_rewards/chosen"]) - 0.5 * Number(row["eval_logps/chosen"]));
      if (name === "free")
        assert.ok(gap < 1e-5, `reward ${row["eval_rewards/chosen"]}, logps ${row["eval_logps/chosen"]}`);
      else assert.ok(gap > 1e-3, "with a reference the reward is not beta x logps");
    }
  });

  it("TR-DPO: the reference is alpha * policy + (1 - alpha) * reference every N steps, and survives a resume", async () => {
    const alpha = 0.3;
    const tr = { sync_ref_model: true, ref_model_mixup_alpha: alpha, ref_model_sync_steps: 2 };
    const start = weights(join(model, "model.safetensors"));
    const check = (dir: string) => {
      const policy = (step: number) => weights(join(dir, `checkpoint-${step}`, "model.safetensors"));
      const reference = (step: number) => weights(join(dir, `checkpoint-${step}`, "ref_model", "model.safetensors"));
      const r2 = mix(policy(2), start, alpha);
      assert.ok(maxDiff(reference(2), r2) < 1e-6, "after 2 steps");
      assert.ok(maxDiff(reference(4), mix(policy(4), r2, alpha)) < 1e-6, "after 4 steps");
      assert.ok(maxDiff(reference(4), start) > 1e-4, "the reference moved");
    };
    const whole = await train(recipe("trdpo", tr));
    check(whole.outputDir);
    let step = 0;
    const first = await train(recipe("trdpo-resumed", tr), {
      onProgress: (s) => {
        step = s;
      },
      shouldStop: () => step >= 2,
    });
    assert.deepEqual([first.globalStep, first.interrupted], [2, true]);
    const second = await train(recipe("trdpo-resumed", tr));
    assert.equal(second.globalStep, 4);
    check(second.outputDir);
    // An exact resume: the same reference as the uninterrupted run.
    const ref4 = (dir: string) => weights(join(dir, "checkpoint-4", "ref_model", "model.safetensors"));
    assert.equal(maxDiff(ref4(whole.outputDir), ref4(second.outputDir)), 0);
  });

  it("load_best_model_at_end: the best checkpoint survives rotation, is named in trainer_state.json and is the model written", async () => {
    // greater_is_better on the loss makes the first evaluation (step 2, before the loss falls) the best.
    const best = {
      load_best_model_at_end: true,
      metric_for_best_model: "loss",
      greater_is_better: true,
      save_total_limit: 1,
      max_steps: 6,
    };
    let step = 0;
    const first = await train(recipe("best", best), {
      onProgress: (s) => {
        step = s;
      },
      shouldStop: () => step >= 4,
    });
    assert.equal(first.globalStep, 4);
    const r = await train(recipe("best", best)); // resumed: the best is still step 2's
    const dir = r.outputDir;
    const evals = MetricsSink.read(join(dir, "metrics.jsonl")).filter((x) => "eval_loss" in x);
    assert.deepEqual(
      evals.map((x) => x.step),
      [2, 4, 6],
    );
    assert.ok(Number(evals[0].eval_loss) > Number(evals[2].eval_loss), "the loss fell");
    assert.deepEqual(
      ["checkpoint-2", "checkpoint-4", "checkpoint-6"].map((c) => existsSync(join(dir, c))),
      [true, false, true],
    );
    const state = JSON.parse(readFileSync(join(dir, "trainer_state.json"), "utf8"));
    assert.deepEqual(
      [state.best_model_checkpoint, state.best_global_step, state.best_metric],
      [join(dir, "checkpoint-2"), 2, evals[0].eval_loss],
    );
    assert.ok(
      readFileSync(join(dir, "model.safetensors")).equals(readFileSync(join(dir, "checkpoint-2", "model.safetensors"))),
    );
    assert.equal(JSON.parse(readFileSync(join(dir, "eval_results.json"), "utf8")).eval_loss, evals[0].eval_loss);
  });

  it("load_best_model_at_end needs every checkpoint evaluated, and eval data", async () => {
    await assert.rejects(
      train(recipe("best-bad", { load_best_model_at_end: true, save_steps: 3 })),
      /key 'load_best_model_at_end': checkpoints must be evaluated: save_steps \(3\) must be a multiple of eval_steps \(2\)/,
    );
    await assert.rejects(
      train(recipe("best-epoch", { load_best_model_at_end: true, save_strategy: "epoch" })),
      /save_strategy \(epoch\) must equal eval_strategy \(steps\)/,
    );
    await assert.rejects(
      train(recipe("best-none", { load_best_model_at_end: true, eval_file: null })),
      /has no eval pairs/,
    );
  });

  it("a checkpoint written before these keys resumes: a key absent from its record, at its default, is no change", () => {
    const newKeys = [
      "sync_ref_model",
      "ref_model_mixup_alpha",
      "ref_model_sync_steps",
      "reference_free",
      "model_init_kwargs",
      "lora_task_type",
      "dataset_name",
    ];
    const before = (record: Record<string, unknown>) =>
      Object.fromEntries(Object.entries(record).filter(([k]) => !newKeys.includes(k)));
    const current = configRecord(load({}).config);
    assert.deepEqual(configChanges(before(current), current), { hard: [], soft: [] });
    const synced = configRecord(load({ sync_ref_model: true }).config);
    assert.deepEqual(
      configChanges(before(current), synced).soft.map((c) => c.key),
      ["sync_ref_model"],
    );
  });

  it("rotation as transformers': the best is kept before the latest; a limit of 1 keeps 2 while the best is not the latest", () => {
    const d = ["c1", "c2", "c3", "c4"];
    assert.deepEqual(rotatedOut(d, 2, null), ["c1", "c2"]);
    assert.deepEqual(rotatedOut(d, 2, "c1"), ["c2", "c3"]);
    assert.deepEqual(rotatedOut(d, 1, "c2"), ["c1", "c3"]);
    assert.deepEqual(rotatedOut(d, 1, "c4"), ["c1", "c2", "c3"]);
  });
});
