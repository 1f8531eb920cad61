// Early stopping (early_stopping_patience, early_stopping_threshold, metric_for_best_model,
// greater_is_better), as transformers' EarlyStoppingCallback: the counting rule on given eval
// rows (worked by hand), a run it stops (the final model written, no later evaluation), a run
// resumed after its checkpoint that counts the evaluations before it, and errors naming the key.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { EarlyStoppingCallback, TrainerControl, train, type TrainerEvent } from "../../src/index.js";
import { loadTrainConfig } from "../../src/train/config.js";
import { MetricsSink } from "../../src/train/metrics.js";
import { tempDir, toyPairs, writeJsonl, writeToyModel } from "../helpers/toy.js";

let root: string;
let model: string;
let data: string;
let evalData: string;
before(() => {
  root = tempDir("omni-dpo-early-");
  model = writeToyModel(join(root, "model"), { seed: 3 });
  data = writeJsonl(join(root, "pairs.jsonl"), toyPairs(16, 5));
  evalData = writeJsonl(join(root, "eval.jsonl"), toyPairs(4, 9));
});
after(() => rmSync(root, { recursive: true, force: true }));

function recipe(name: string, extra: Record<string, unknown> = {}) {
  return loadTrainConfig({
    model_name_or_path: model,
    train_data_path: data,
    eval_data_path: evalData,
    output_dir: join(root, name),
    pref_loss: "dpo",
    beta: 0.1,
    learning_rate: 1e-3,
    max_steps: 10,
    per_device_train_batch_size: 4,
    per_device_eval_batch_size: 4,
    max_length: 48,
    max_prompt_length: 24,
    logging_steps: 2,
    eval_steps: 2,
    save_steps: 2,
    pair_log_samples: 0,
    ...extra,
  }).config;
}

/** Feeds eval rows to a callback as the loop would; returns control.shouldTrainingStop after each. */
function decisions(callback: EarlyStoppingCallback, rows: Record<string, number>[]): boolean[] {
  const control = new TrainerControl();
  const event = (metrics: Record<string, number>) =>
    ({ control, metrics, config: recipe("unused") }) as unknown as TrainerEvent;
  callback.onTrainBegin({ state: { logHistory: [] } } as unknown as TrainerEvent);
  return rows.map((row) => {
    callback.onEvaluate(event(row));
    return control.shouldTrainingStop;
  });
}

describe("early stopping", () => {
  it("counts evaluations without an improvement above the threshold, as transformers", () => {
    // eval_loss 1.0 (first: best), 0.9 (better by 0.1 > 0.05: reset), 0.95 (worse: 1), 0.89 (better
    // by only 0.01: 2, stop; the best still moves to 0.89).
    const loss = new EarlyStoppingCallback({ patience: 2, threshold: 0.05 });
    assert.deepEqual(
      decisions(
        loss,
        [1.0, 0.9, 0.95, 0.89].map((v) => ({ eval_loss: v })),
      ),
      [false, false, false, true],
    );
    assert.equal(loss.best, 0.89);
    // Another metric is better when greater by default; its name may carry eval_ or not.
    const accuracy = new EarlyStoppingCallback({ patience: 1, metric: "rewards/accuracies" });
    assert.equal(accuracy.greaterIsBetter, true);
    assert.deepEqual(
      decisions(
        accuracy,
        [0.5, 0.75, 0.75].map((v) => ({ "eval_rewards/accuracies": v })),
      ),
      [false, false, true],
    );
    const lower = new EarlyStoppingCallback({ patience: 1, metric: "eval_rewards/accuracies", greaterIsBetter: false });
    assert.deepEqual(
      decisions(
        lower,
        [0.5, 0.75].map((v) => ({ "eval_rewards/accuracies": v })),
      ),
      [false, true],
    );
  });

  it("stops a run at the evaluation that exhausts the patience; the final model is written", async () => {
    // A threshold nothing can beat: the first evaluation (step 2) is the best, step 4's is one without improvement.
    const r = await train(recipe("stopped", { early_stopping_patience: 1, early_stopping_threshold: 1e9 }));
    assert.deepEqual([r.globalStep, r.stoppedEarly, r.interrupted], [4, true, false]);
    const rows = MetricsSink.read(join(r.outputDir, "metrics.jsonl"));
    assert.deepEqual(
      rows.filter((x) => "eval_loss" in x).map((x) => x.step),
      [2, 4],
    );
    assert.ok(existsSync(join(r.outputDir, "model.safetensors")) && existsSync(join(r.outputDir, "checkpoint-4")));
    assert.equal(JSON.parse(readFileSync(join(r.outputDir, "trainer_state.json"), "utf8")).global_step, 4);
  });

  it("a resumed run counts the evaluations logged before its checkpoint", async () => {
    // Patience 2: steps 2 (best), 4 (1), 6 (2: stop). Interrupted after step 4, the resumed run stops at 6, not 8.
    let step = 0;
    const first = await train(recipe("resumed", { early_stopping_patience: 2, early_stopping_threshold: 1e9 }), {
      onProgress: (s) => {
        step = s;
      },
      shouldStop: () => step >= 4,
    });
    assert.deepEqual([first.globalStep, first.interrupted], [4, true]);
    const second = await train(recipe("resumed", { early_stopping_patience: 2, early_stopping_threshold: 1e9 }));
    assert.deepEqual([second.globalStep, second.stoppedEarly], [6, true]);
  });

  it("errors name the key: an unknown metric, and no eval data", async () => {
    await assert.rejects(
      train(recipe("unknown-metric", { early_stopping_patience: 1, metric_for_best_model: "reward" })),
      /key 'metric_for_best_model': reward is not an evaluation metric; the evaluation logs loss, rewards\/chosen/,
    );
    await assert.rejects(
      train(recipe("no-eval", { early_stopping_patience: 1, eval_data_path: null })),
      /key 'early_stopping_patience': early stopping watches the evaluation, and this run has no eval pairs/,
    );
    assert.throws(() => recipe("bad", { early_stopping_patience: 0 }), /early_stopping_patience.*must be at least 1/);
  });
});
