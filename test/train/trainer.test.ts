// The trainer end to end on a tiny model: it learns (for Omni-DPO, DPO and SimPO), logs every
// metric the reference logs, checkpoints and rotates, resumes exactly, caches reference
// log-probs that give the same losses as a live reference, and leaves a loadable model.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { torch } from "../../src/index.js";
import { loadModel } from "../../src/models/auto.js";
import { Tokenizer } from "../../src/text/index.js";
import { loadTrainConfig } from "../../src/train/config.js";
import { MetricsSink, type MetricRow } from "../../src/train/metrics.js";
import { train, type TrainHooks, type TrainResult } from "../../src/train/trainer.js";
import { tempDir, toyPairs, writeJsonl, writeToyModel } from "../helpers/toy.js";
import { compareWeights } from "../helpers/weights.js";

let root: string;
let model: string;
let data: string;

before(() => {
  root = tempDir("omni-dpo-trainer-");
  model = writeToyModel(join(root, "model"));
  data = writeJsonl(join(root, "pairs.jsonl"), toyPairs(64));
});
after(() => rmSync(root, { recursive: true, force: true }));

/**
 * The runs' shared recipe: 48 training pairs and 16 held out, micro-batches of 4 with two
 * accumulated per step (6 steps an epoch), 3 epochs = 18 optimizer steps; logged and evaluated
 * every 2 steps.
 */
function recipe(outputDir: string, extra: Record<string, unknown> = {}) {
  return loadTrainConfig({
    model_name_or_path: model,
    dataset_mixer: { [data]: 1.0 },
    test_split_size: 0.25,
    output_dir: join(root, outputDir),
    pref_loss: "uni_dpo",
    beta: 2.0,
    uni_dpo_qual_eta: 0.7,
    uni_dpo_tau_ref: 0.8,
    uni_dpo_perf_gamma: 1.0,
    uni_dpo_nll_lambda: 0.01,
    uni_dpo_tau_good: 7.0,
    learning_rate: 3.0e-3,
    lr_scheduler_type: "cosine",
    warmup_ratio: 0.1,
    num_train_epochs: 3,
    per_device_train_batch_size: 4,
    gradient_accumulation_steps: 2,
    per_device_eval_batch_size: 8,
    max_length: 64,
    max_prompt_length: 32,
    logging_steps: 2,
    eval_steps: 2,
    seed: 7,
    ...extra,
  }).config;
}

const TOTAL_STEPS = 18;
const METRICS = [
  "rewards/chosen",
  "rewards/rejected",
  "rewards/accuracies",
  "rewards/margins",
  "logps/chosen",
  "logps/rejected",
  "logits/chosen",
  "logits/rejected",
];
const OMNI_METRICS = ["w_qual", "w_perf", "nll_gate"];

function metricsOf(dir: string): { train: MetricRow[]; eval: MetricRow[]; lines: string[] } {
  const lines = readFileSync(join(dir, "metrics.jsonl"), "utf8")
    .split("\n")
    .filter((l) => l.trim());
  const rows = MetricsSink.read(join(dir, "metrics.jsonl"));
  return { train: rows.filter((r) => "loss" in r), eval: rows.filter((r) => "eval_loss" in r), lines };
}

function num(row: MetricRow, key: string): number {
  const v = row[key];
  assert.equal(typeof v, "number", `metric ${key} missing or not a number in ${JSON.stringify(row)}`);
  return v as number;
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

// Runs shared by several tests, each started once on first use.
const runs = new Map<string, Promise<TrainResult>>();
function once(name: string, make: () => Promise<TrainResult>): Promise<TrainResult> {
  if (!runs.has(name)) runs.set(name, make());
  return runs.get(name)!;
}
/** The reference run: Omni-DPO, live reference, checkpoints every 4 steps keeping 2. */
const omniRun = () => once("omni", () => train(recipe("omni", { save_steps: 4, save_total_limit: 2 })));

describe("Omni-DPO on a tiny model", () => {
  it("the loss falls and the eval rewards/accuracies and margins rise", async () => {
    const r = await omniRun();
    assert.equal(r.globalStep, TOTAL_STEPS);
    assert.equal(r.totalSteps, TOTAL_STEPS);
    assert.equal(r.interrupted, false);
    const m = metricsOf(r.outputDir);
    const losses = m.train.map((row) => num(row, "loss"));
    assert.ok(
      mean(losses.slice(-2)) < mean(losses.slice(0, 2)) - 0.1,
      `train loss did not fall: ${losses.map((x) => x.toFixed(3))}`,
    );
    const [first, last] = [m.eval[0], m.eval.at(-1)!];
    assert.ok(num(last, "eval_loss") < num(first, "eval_loss"), "eval loss did not fall");
    assert.ok(
      num(last, "eval_rewards/accuracies") > num(first, "eval_rewards/accuracies"),
      `eval accuracy did not rise: ${m.eval.map((row) => row["eval_rewards/accuracies"])}`,
    );
    assert.ok(num(last, "eval_rewards/accuracies") > 0.5);
    assert.ok(num(last, "eval_rewards/margins") > num(first, "eval_rewards/margins"));
    assert.ok(num(last, "eval_rewards/margins") > 0);
  });

  it("metrics.jsonl: one JSON object per logged step, with every metric the reference logs", async () => {
    const r = await omniRun();
    const m = metricsOf(r.outputDir);
    for (const line of m.lines) assert.doesNotThrow(() => JSON.parse(line));
    assert.deepEqual(
      m.train.map((row) => row.step),
      [2, 4, 6, 8, 10, 12, 14, 16, 18],
    );
    assert.deepEqual(
      m.eval.map((row) => row.step),
      [2, 4, 6, 8, 10, 12, 14, 16, 18],
    );
    assert.equal(m.lines.length, m.train.length + m.eval.length);
    for (const row of m.train) {
      for (const key of [
        "step",
        "epoch",
        "loss",
        "learning_rate",
        "grad_norm",
        "tokens_per_second",
        ...METRICS,
        ...OMNI_METRICS,
      ]) {
        assert.ok(Number.isFinite(num(row, key)), `${key} at step ${row.step}`);
      }
      assert.ok(num(row, "tokens_per_second") > 0);
      assert.ok(num(row, "grad_norm") >= 0);
      assert.ok(!Object.keys(row).some((k) => k.startsWith("eval_")));
    }
    for (const row of m.eval) {
      for (const key of ["loss", ...METRICS, ...OMNI_METRICS])
        assert.ok(Number.isFinite(num(row, `eval_${key}`)), `eval_${key}`);
      assert.ok(!("loss" in row) && !("rewards/chosen" in row), "eval rows carry only eval_ metrics");
    }
    // Epochs advance by 1/6 per step; the cosine schedule with warmup peaks early and decays.
    assert.deepEqual(
      m.train.map((row) => row.epoch),
      [0.3333, 0.6667, 1, 1.3333, 1.6667, 2, 2.3333, 2.6667, 3],
    );
    const lrs = m.train.map((row) => num(row, "learning_rate"));
    assert.ok(lrs.at(-1)! < Math.max(...lrs));
    // The quality weight is sigmoid(eta * (S_w - S_l)) with S_w - S_l around 6: close to 1.
    for (const row of m.train) assert.ok(num(row, "w_qual") > 0.95 && num(row, "w_qual") < 1);
    for (const row of m.train) assert.ok(num(row, "nll_gate") >= 0 && num(row, "nll_gate") <= 1);
  });

  it("checkpoints every save_steps and at the end, keeping save_total_limit of them", async () => {
    const r = await omniRun();
    const dirs = readdirSync(r.outputDir)
      .filter((n) => n.startsWith("checkpoint-"))
      .sort();
    // Saved at 4, 8, 12, 16 and, as the HF trainer does, at the last step (18); the limit of 2
    // keeps the newest two, and nothing half-written or half-deleted is left.
    assert.deepEqual(dirs, ["checkpoint-16", "checkpoint-18"]);
    for (const d of dirs) {
      // transformers' TrainerState, and this project's resume state beside it.
      const state = JSON.parse(readFileSync(join(r.outputDir, d, "trainer_state.json"), "utf8"));
      assert.equal(state.global_step, Number(d.slice("checkpoint-".length)));
      assert.equal(state.max_steps, TOTAL_STEPS);
      assert.ok(
        state.log_history.length > 0 &&
          state.log_history.every((row: { step: number }) => row.step <= state.global_step),
      );
      assert.equal(
        JSON.parse(readFileSync(join(r.outputDir, d, "omni_dpo_state.json"), "utf8")).globalStep,
        state.global_step,
      );
      for (const f of [
        "model.safetensors",
        "config.json",
        "generation_config.json",
        "optimizer.safetensors",
        "optimizer.json",
        "tokenizer.json",
      ]) {
        assert.ok(existsSync(join(r.outputDir, d, f)), `${d}/${f}`);
      }
    }
  });

  it("the final output_dir loads with loadModel and Tokenizer.fromPretrained, and holds trained weights", async () => {
    const r = await omniRun();
    const trained = loadModel(r.outputDir);
    const initial = loadModel(model);
    try {
      const ids = torch.tensor([[1, 2, 3, 4, 5]], { dtype: "int64" });
      const [a, b] = [trained, initial].map((m) => torch.noGrad(() => m.forward(ids)));
      assert.deepEqual(a.shape, b.shape);
      assert.ok(torch.tidy(() => a.sub(b).abs().max().item()) > 1e-4, "the saved weights are the initial ones");
      for (const t of [ids, a, b]) t.dispose();
    } finally {
      trained.dispose();
      initial.dispose();
    }
    const tok = await Tokenizer.fromPretrained(r.outputDir);
    const original = Tokenizer.fromPretrainedSync(model);
    assert.deepEqual(tok.encode("say apple: apple apple"), original.encode("say apple: apple apple"));
    assert.equal(tok.eosTokenId, original.eosTokenId);
    const results = JSON.parse(readFileSync(join(r.outputDir, "train_results.json"), "utf8"));
    assert.ok(Number.isFinite(results.train_loss) && results.train_runtime > 0, JSON.stringify(results));
    assert.equal(JSON.parse(readFileSync(join(r.outputDir, "trainer_state.json"), "utf8")).global_step, TOTAL_STEPS);
  });
});

describe("other objectives", () => {
  it("DPO (loss_type: sigmoid): the loss falls and eval accuracy rises", async () => {
    const r = await train(recipe("dpo", { pref_loss: null, loss_type: "sigmoid", save_steps: null }));
    const m = metricsOf(r.outputDir);
    const losses = m.train.map((row) => num(row, "loss"));
    assert.ok(Math.abs(losses[0] - Math.log(2)) < 0.05, `DPO starts near log 2, got ${losses[0]}`);
    assert.ok(mean(losses.slice(-2)) < mean(losses.slice(0, 2)) - 0.1, `loss did not fall: ${losses}`);
    const [first, last] = [m.eval[0], m.eval.at(-1)!];
    assert.ok(num(last, "eval_rewards/accuracies") > num(first, "eval_rewards/accuracies"));
    assert.ok(num(last, "eval_rewards/margins") > num(first, "eval_rewards/margins"));
    for (const key of METRICS) num(m.train[0], key);
    assert.ok(!("w_qual" in m.train[0]), "DPO has no Omni-DPO weights");
  });

  it("SimPO trains without any reference model (a missing ref_model is never read)", async () => {
    const statuses: string[] = [];
    const r = await train(
      recipe("simpo", {
        pref_loss: "simpo",
        beta: 2.0,
        gamma_beta_ratio: 0.25,
        ref_model: join(root, "no-such-model"),
        precompute_ref_log_probs: true,
        save_steps: null,
      }),
      { onStatus: (s) => statuses.push(s) },
    );
    assert.equal(r.globalStep, TOTAL_STEPS);
    assert.ok(!existsSync(join(r.outputDir, "ref_logps_cache")), "no reference log-probs computed");
    assert.ok(!statuses.some((s) => s.includes("reference")), statuses.join(" | "));
    const m = metricsOf(r.outputDir);
    const losses = m.train.map((row) => num(row, "loss"));
    assert.ok(mean(losses.slice(-2)) < mean(losses.slice(0, 2)) - 0.1, `loss did not fall: ${losses}`);
    // SimPO's rewards are beta times the policy's own (length-normalised) log-probs.
    for (const row of m.train.slice(0, 1)) {
      assert.ok(Math.abs(num(row, "rewards/chosen") - 2.0 * num(row, "logps/chosen")) < 1e-4);
    }
    assert.ok(num(m.eval.at(-1)!, "eval_rewards/margins") > num(m.eval[0], "eval_rewards/margins"));
  });
});

describe("precomputed reference log-probs", () => {
  it("give the same losses and metrics as a live reference model", async () => {
    // A reference that differs from the policy: were it the policy's own start, the c-NLL gate
    // [ref(y_w) > logp(y_w)] would compare two equal numbers at step 1, and the last-bit rounding
    // of a differently shaped batch (the cache's) would decide it, pair by pair.
    const ref = writeToyModel(join(root, "ref-model"), { seed: 1 });
    const live = await train(recipe("omni-live-ref", { save_steps: 4, save_total_limit: 2, ref_model: ref }));
    const cached = await train(
      recipe("omni-cached", { save_steps: 4, save_total_limit: 2, precompute_ref_log_probs: true, ref_model: ref }),
    );
    const a = metricsOf(live.outputDir);
    const b = metricsOf(cached.outputDir);
    assert.equal(b.train.length, a.train.length);
    assert.equal(b.eval.length, a.eval.length);
    for (const [x, y] of [...a.train.map((row, i) => [row, b.train[i]]), ...a.eval.map((row, i) => [row, b.eval[i]])]) {
      for (const [key, v] of Object.entries(x)) {
        if (key === "tokens_per_second") continue;
        assert.ok(
          Math.abs(num(y, key) - (v as number)) <= 1e-5 * Math.max(1, Math.abs(v as number)),
          `step ${x.step} ${key}: live ${v}, cached ${y[key]}`,
        );
      }
    }
    compareWeights(live.outputDir, cached.outputDir, 1e-4);
  });

  it("are cached in output_dir and read back by a second run", async () => {
    const statuses: string[] = [];
    // No checkpoints (save_strategy "no"), so the second run trains again rather than finding a finished run.
    const first = await train(
      recipe("cache-reuse", { precompute_ref_log_probs: true, max_steps: 2, save_strategy: "no" }),
      { onStatus: (s) => statuses.push(s) },
    );
    const cacheDir = join(first.outputDir, "ref_logps_cache");
    const files = readdirSync(cacheDir).filter((f) => f.endsWith(".json"));
    assert.equal(files.length, 2, "one cache file for the training split, one for the eval split");
    assert.ok(statuses.some((s) => /cached in/.test(s)));
    const stamps = files.map((f) => statSync(join(cacheDir, f)).mtimeMs);
    const values = JSON.parse(readFileSync(join(cacheDir, files[0]), "utf8"));
    assert.ok(
      Array.isArray(values.chosen) && values.chosen.every((v: unknown) => typeof v === "number" && Number.isFinite(v)),
    );

    statuses.length = 0;
    await train(recipe("cache-reuse", { precompute_ref_log_probs: true, max_steps: 2, save_strategy: "no" }), {
      onStatus: (s) => statuses.push(s),
    });
    assert.ok(
      statuses.some((s) => /read from/.test(s)),
      statuses.join(" | "),
    );
    assert.ok(
      !statuses.some((s) => /reference log-probs \((train|eval)\)/.test(s)),
      "the second run computed reference log-probs again",
    );
    assert.deepEqual(
      readdirSync(cacheDir)
        .filter((f) => f.endsWith(".json"))
        .sort(),
      [...files].sort(),
    );
    assert.deepEqual(
      files.map((f) => statSync(join(cacheDir, f)).mtimeMs),
      stamps,
      "the cache was rewritten",
    );
  });
});

describe("interrupt and resume", () => {
  it("a run stopped after step 7 and resumed ends with the same weights as an uninterrupted run", async () => {
    const full = await omniRun();
    let step = 0;
    const stopAt7: TrainHooks = {
      onProgress: (s) => {
        step = s;
      },
      shouldStop: () => step >= 7,
    };
    const stopped = await train(recipe("resumed", { save_steps: 4, save_total_limit: 2 }), stopAt7);
    assert.equal(stopped.interrupted, true);
    assert.equal(stopped.globalStep, 7);
    assert.equal(stopped.checkpoint, join(stopped.outputDir, "checkpoint-7"));
    assert.ok(existsSync(join(stopped.outputDir, "checkpoint-7", "trainer_state.json")));
    assert.ok(
      !existsSync(join(stopped.outputDir, "model.safetensors")),
      "an interrupted run does not write the final model",
    );
    assert.deepEqual(
      metricsOf(stopped.outputDir).train.map((row) => row.step),
      [2, 4, 6],
    );

    const resumed = await train(
      recipe("resumed", { save_steps: 4, save_total_limit: 2, resume_from_checkpoint: true }),
    );
    assert.equal(resumed.interrupted, false);
    assert.equal(resumed.globalStep, TOTAL_STEPS);
    const worst = compareWeights(full.outputDir, resumed.outputDir, 1e-6);
    assert.ok(worst <= 1e-6);
    // The resumed run's log continues the stopped one and matches the uninterrupted run's.
    const a = metricsOf(full.outputDir);
    const b = metricsOf(resumed.outputDir);
    assert.deepEqual(
      b.train.map((row) => row.step),
      a.train.map((row) => row.step),
    );
    assert.deepEqual(
      b.eval.map((row) => row.step),
      a.eval.map((row) => row.step),
    );
    // Logged values average the steps since the last log; the row at step 8 of the resumed run
    // covers step 8 only (step 7 ran before the stop), as in the Hugging Face trainer.
    for (const [x, y] of a.train.map((row, i) => [row, b.train[i]])) {
      if (x.step === 8) continue;
      assert.ok(Math.abs(num(x, "loss") - num(y, "loss")) < 1e-6, `step ${x.step}: loss ${x.loss} vs ${y.loss}`);
      assert.ok(Math.abs(num(x, "learning_rate") - num(y, "learning_rate")) < 1e-12, `step ${x.step}: lr`);
    }
    for (const [x, y] of a.eval.map((row, i) => [row, b.eval[i]])) {
      for (const key of Object.keys(x))
        assert.ok(Math.abs(num(x, key) - num(y, key)) < 1e-6, `eval step ${x.step} ${key}: ${x[key]} vs ${y[key]}`);
    }
    assert.deepEqual(
      readdirSync(resumed.outputDir)
        .filter((n) => n.startsWith("checkpoint-"))
        .sort(),
      ["checkpoint-16", "checkpoint-18"],
    );
  });

  it("resuming with different batch settings is refused before anything changes", async () => {
    let step = 0;
    await train(recipe("mismatch", { save_steps: null }), {
      onProgress: (s) => {
        step = s;
      },
      shouldStop: () => step >= 3,
    });
    const before = readFileSync(join(root, "mismatch", "metrics.jsonl"), "utf8");
    await assert.rejects(
      train(recipe("mismatch", { per_device_train_batch_size: 8, resume_from_checkpoint: true })),
      /different data, batch or length settings/,
    );
    assert.equal(readFileSync(join(root, "mismatch", "metrics.jsonl"), "utf8"), before);
  });

  it("an output_dir with checkpoints resumes by itself; overwrite_output_dir starts afresh; resuming from nothing is an error", async () => {
    await assert.rejects(train(recipe("auto", { resume_from_checkpoint: true })), /no checkpoint found/);
    let step = 0;
    await train(recipe("auto", { save_steps: null }), {
      onProgress: (s) => {
        step = s;
      },
      shouldStop: () => step >= 3,
    });
    const statuses: string[] = [];
    const resumed = await train(recipe("auto"), { onStatus: (m) => statuses.push(m) });
    assert.ok(
      statuses.some((m) => /checkpoint-3; resuming from it/.test(m)),
      statuses.join("\n"),
    );
    assert.equal(resumed.interrupted, false);
    // Logged every 2 steps: the stopped run's row at step 2, then the resumed run's from step 4,
    // each step once (a resume that re-logged, or dropped, a step would change these lists).
    const logged = metricsOf(join(root, "auto"));
    const everyOther = Array.from({ length: TOTAL_STEPS / 2 }, (_, i) => 2 * (i + 1));
    assert.deepEqual(
      logged.train.map((row) => row.step),
      everyOther,
      "each logging step once, in order",
    );
    assert.deepEqual(
      logged.eval.map((row) => row.step),
      everyOther,
      "each evaluation step once, in order",
    );
    assert.ok(
      readdirSync(join(root, "auto")).some((n) => n.startsWith("checkpoint-")),
      "the interrupted run's checkpoint is still there",
    );
    const fresh = await train(recipe("auto", { overwrite_output_dir: true, max_steps: 2 }));
    assert.equal(fresh.globalStep, 2);
    assert.deepEqual(
      readdirSync(join(root, "auto")).filter((n) => n.startsWith("checkpoint-")),
      ["checkpoint-2"],
      "overwrite_output_dir removed the old checkpoints; the fresh run's final one is all there is",
    );
    const after = readFileSync(join(root, "auto", "metrics.jsonl"), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { step: number });
    assert.ok(
      after.every((r) => r.step <= 2),
      "metrics.jsonl starts afresh",
    );
  });
});
