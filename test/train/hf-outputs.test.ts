// What a run leaves in output_dir, as the HF Trainer would: trainer_state.json in transformers'
// format (output_dir and each checkpoint), train/eval/all_results.json with HF's keys, a model
// card, generation_config.json; epoch strategies for logging, evaluation and saving;
// logging_first_step; the logged learning rate being the rate after the step; TensorBoard
// event files read back by an independent reader (test/train/read_tfevents.py); optim: sgd and
// save_strategy: no.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { loadModel } from "../../src/models/auto.js";
import { loadTrainConfig } from "../../src/train/config.js";
import { MetricsSink, type MetricRow } from "../../src/train/metrics.js";
import { train, type TrainResult } from "../../src/train/trainer.js";
import { crc32c } from "../../src/train/tensorboard.js";
import { modelCardText } from "../../src/train/hf-outputs.js";
import { runPythonJson } from "../../src/util/python.js";
import { pythonWith, skipUnless } from "../helpers/requirements.js";
import { tempDir, toyPairs, writeJsonl, writeToyModel } from "../helpers/toy.js";

const READER = fileURLToPath(new URL("../../../test/train/read_tfevents.py", import.meta.url));

let root: string;
let model: string;
let data: string;
before(() => {
  root = tempDir("omni-dpo-hf-outputs-");
  model = writeToyModel(join(root, "model"));
  data = writeJsonl(join(root, "pairs.jsonl"), toyPairs(32));
});
after(() => rmSync(root, { recursive: true, force: true }));

const LR = 1e-3;
/** 24 training pairs in micro-batches of 4: 6 steps an epoch, 2 epochs = 12 steps; 8 pairs held out. */
function recipe(out: string, extra: Record<string, unknown> = {}) {
  return loadTrainConfig({
    model_name_or_path: model,
    dataset_mixer: { [data]: 1.0 },
    test_split_size: 0.25,
    output_dir: join(root, out),
    pref_loss: "uni_dpo",
    learning_rate: LR,
    lr_scheduler_type: "linear",
    num_train_epochs: 2,
    per_device_train_batch_size: 4,
    max_length: 48,
    max_prompt_length: 24,
    seed: 5,
    ...extra,
  }).config;
}

let epochRun: Promise<TrainResult> | undefined;
const byEpoch = () =>
  (epochRun ??= train(
    recipe("by-epoch", {
      logging_strategy: "epoch",
      logging_first_step: true,
      eval_strategy: "epoch",
      save_strategy: "epoch",
      report_to: ["tensorboard"],
      run_name: "tiny-epochs",
    }),
  ));
const rowsOf = (dir: string) => MetricsSink.read(join(dir, "metrics.jsonl"));
const isEval = (r: MetricRow) => "eval_loss" in r;
const json = (file: string) => JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>;

describe("epoch strategies", () => {
  it("log at the first step and each epoch's end, evaluate and save a checkpoint at each epoch's end", async () => {
    const r = await byEpoch();
    assert.equal(r.globalStep, 12);
    const rows = rowsOf(r.outputDir);
    assert.deepEqual(
      rows.filter((x) => !isEval(x)).map((x) => x.step),
      [1, 6, 12],
    );
    assert.deepEqual(
      rows.filter(isEval).map((x) => x.step),
      [6, 12],
    );
    assert.deepEqual(
      rows.filter(isEval).map((x) => x.epoch),
      [1, 2],
    );
    assert.deepEqual(
      readdirSync(r.outputDir)
        .filter((n) => n.startsWith("checkpoint-"))
        .sort(),
      ["checkpoint-12", "checkpoint-6"],
    );
  });

  it("the logged learning_rate is the rate after the step (the linear schedule's at step + 1), as the HF trainer logs it", async () => {
    const r = await byEpoch();
    for (const row of rowsOf(r.outputDir).filter((x) => !isEval(x))) {
      const step = row.step as number;
      const expected = LR * Math.max(0, (12 - step) / 12);
      assert.ok(
        Math.abs((row.learning_rate as number) - expected) <= 1e-18,
        `step ${step}: ${row.learning_rate} vs ${expected}`,
      );
    }
  });
});

describe("output_dir as the HF Trainer leaves it", () => {
  it("trainer_state.json has transformers' TrainerState fields, in output_dir and in each checkpoint", async () => {
    const r = await byEpoch();
    const FIELDS = [
      "best_global_step",
      "best_metric",
      "best_model_checkpoint",
      "epoch",
      "eval_steps",
      "global_step",
      "is_hyper_param_search",
      "is_local_process_zero",
      "is_world_process_zero",
      "log_history",
      "logging_steps",
      "max_steps",
      "num_input_tokens_seen",
      "num_train_epochs",
      "save_steps",
      "stateful_callbacks",
      "total_flos",
      "train_batch_size",
      "trial_name",
      "trial_params",
    ];
    const final = json(join(r.outputDir, "trainer_state.json"));
    assert.deepEqual(Object.keys(final).sort(), FIELDS);
    assert.equal(final.global_step, 12);
    assert.equal(final.epoch, 2);
    assert.equal(final.max_steps, 12);
    assert.equal(final.num_train_epochs, 2);
    assert.equal(final.train_batch_size, 4);
    const history = final.log_history as MetricRow[];
    assert.deepEqual(history.slice(0, -1), rowsOf(r.outputDir), "log_history holds every logged row");
    const summary = history.at(-1)!;
    for (const k of [
      "train_runtime",
      "train_samples_per_second",
      "train_steps_per_second",
      "total_flos",
      "train_loss",
      "epoch",
    ])
      assert.equal(typeof summary[k], "number", k);
    assert.equal(summary.step, 12);
    const mid = json(join(r.outputDir, "checkpoint-6", "trainer_state.json"));
    assert.deepEqual(Object.keys(mid).sort(), FIELDS);
    assert.equal(mid.global_step, 6);
    assert.equal(mid.epoch, 1);
    assert.ok((mid.log_history as MetricRow[]).every((x) => (x.step as number) <= 6));
    assert.ok(
      existsSync(join(r.outputDir, "checkpoint-6", "omni_dpo_state.json")),
      "the resume state is a file of its own",
    );
  });

  it("train_results.json, eval_results.json and all_results.json hold HF's keys", async () => {
    const r = await byEpoch();
    const trainResults = json(join(r.outputDir, "train_results.json"));
    assert.deepEqual(Object.keys(trainResults).sort(), [
      "epoch",
      "total_flos",
      "train_loss",
      "train_runtime",
      "train_samples",
      "train_samples_per_second",
      "train_steps_per_second",
    ]);
    assert.equal(trainResults.train_samples, 24);
    assert.equal(trainResults.epoch, 2);
    // samples per second: 24 pairs x 2 epochs over the runtime, as transformers' speed_metrics.
    assert.ok(
      Math.abs((trainResults.train_samples_per_second as number) - 48 / (trainResults.train_runtime as number)) <
        0.01 * (trainResults.train_samples_per_second as number) + 1e-3,
    );
    const evalResults = json(join(r.outputDir, "eval_results.json"));
    assert.equal(evalResults.eval_samples, 8);
    assert.equal(evalResults.epoch, 2);
    const lastEval = rowsOf(r.outputDir).filter(isEval).at(-1)!;
    assert.equal(evalResults.eval_loss, lastEval.eval_loss);
    assert.deepEqual(json(join(r.outputDir, "all_results.json")), { ...trainResults, ...evalResults });
  });

  it("a model card README.md says what was trained, how, on what, and the final metrics", async () => {
    const r = await byEpoch();
    const card = readFileSync(join(r.outputDir, "README.md"), "utf8");
    assert.match(card, /^---\nbase_model: ".*model"\nlibrary_name: transformers\n/);
    assert.match(card, /# tiny-epochs/);
    assert.ok(card.includes("`omni_dpo` objective"), card);
    assert.ok(card.includes(data), "names the data file");
    assert.match(card, /24 training pairs, 8 evaluation pairs/);
    assert.match(card, /\| learning_rate \| 0\.001 \|/);
    assert.match(card, /\| lr_scheduler_type \| linear \|/);
    const trainLoss = json(join(r.outputDir, "train_results.json")).train_loss as number;
    assert.ok(card.includes(`| train_loss | ${Math.round(trainLoss * 1e6) / 1e6} |`), card);
    assert.match(card, /\| eval_loss \| /);
  });

  it("generation_config.json is written and read back", async () => {
    const r = await byEpoch();
    assert.ok(existsSync(join(r.outputDir, "generation_config.json")));
    const trained = loadModel(r.outputDir);
    const initial = loadModel(model);
    try {
      assert.equal(trained.generationConfig.file, join(r.outputDir, "generation_config.json"));
      assert.deepEqual(trained.generationConfig.eosTokenIds, initial.generationConfig.eosTokenIds);
    } finally {
      trained.dispose();
      initial.dispose();
    }
  });
});

describe("report_to: tensorboard", () => {
  it('CRC-32C gives the CRC catalogue\'s check value (0xE3069283 for "123456789")', () => {
    assert.equal(crc32c(Buffer.from("123456789", "ascii")), 0xe3069283);
    assert.equal(crc32c(new Uint8Array(32)), 0x8a9136aa); // RFC 3720 B.4: 32 bytes of zeros
  });

  it(
    "writes an event file whose records (CRCs checked) hold every logged number under HF's tags at its step",
    { skip: skipUnless("python") },
    async () => {
      const r = await byEpoch();
      const runs = join(r.outputDir, "runs");
      const [runDir] = readdirSync(runs);
      assert.match(runDir, /^[A-Z][a-z]{2}\d{2}_\d{2}-\d{2}-\d{2}_/);
      const files = readdirSync(join(runs, runDir));
      assert.equal(files.length, 1);
      assert.match(files[0], /^events\.out\.tfevents\.\d+\./);
      const read = runPythonJson<{
        events: { step?: number; file_version?: string; values: [string, number][] }[];
        tensorboard: unknown;
      }>(READER, { file: join(runs, runDir, files[0]) }, { file: true, python: pythonWith(null)! });
      assert.equal(read.events[0].file_version, "brain.Event:2");
      const scalars = read.events.slice(1);
      const rows = rowsOf(r.outputDir);
      assert.equal(scalars.length, rows.length);
      scalars.forEach((e, i) => {
        const row = rows[i];
        assert.equal(e.step ?? 0, row.step);
        const expected = Object.entries(row)
          .filter(([k, v]) => k !== "step" && typeof v === "number")
          .map(([k, v]) => [k.startsWith("eval_") ? `eval/${k.slice(5)}` : `train/${k}`, Math.fround(v as number)]);
        assert.deepEqual(e.values, expected);
      });
    },
  );
});

describe("optim and save_strategy", () => {
  it("optim: sgd trains with SGD (its checkpoint holds SGD's state); save_strategy: no writes no checkpoint but the final model", async () => {
    const sgd = await train(recipe("sgd", { optim: "sgd", max_steps: 2, save_steps: 1 }));
    const groups = json(join(sgd.outputDir, "checkpoint-1", "optimizer.json")).paramGroups as Record<string, unknown>[];
    assert.ok(
      groups.every((g) => g.momentum === 0 && !("betas" in g)),
      JSON.stringify(groups),
    );
    const none = await train(recipe("no-save", { save_strategy: "no", max_steps: 2 }));
    assert.deepEqual(
      readdirSync(none.outputDir).filter((n) => n.startsWith("checkpoint-")),
      [],
    );
    assert.ok(existsSync(join(none.outputDir, "model.safetensors")));
    assert.ok(existsSync(join(none.outputDir, "trainer_state.json")));
  });
});

describe("the model card", () => {
  it("tags each name once, and names the evaluation file", () => {
    const card = modelCardText({
      runName: null,
      baseModel: "base",
      outputDir: "/runs/x",
      adapter: false,
      lossType: "dpo",
      beta: 0.1,
      dataFiles: ["/d/train.jsonl"],
      evalFiles: ["/d/eval.jsonl"],
      trainPairs: 4,
      evalPairs: 2,
      hyperparameters: {},
      trainMetrics: {},
      evalMetrics: null,
      version: "0",
    });
    assert.equal(card.split("\n").filter((l) => l === "- dpo").length, 1);
    assert.match(card, /Evaluated on:\n\n- `\/d\/eval.jsonl`/);
  });
});
