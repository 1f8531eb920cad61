// Generation eval during training (eval_generation_* keys, GenerationEvalCallback): at its steps
// the trainer answers a math file greedily with the current policy and grades it; the logged
// eval_gen_accuracy and eval_gen_mean_length at step N equal `omni-dpo eval --task math` on the
// checkpoint of step N (the oracle: the eval command, a separate process on the saved weights),
// on one process and on two Gloo ranks (the problems split between them, the figures combined).
// metric_for_best_model: eval_gen_accuracy with load_best_model_at_end keeps the best step's model.
// eval_generation_task winrate: eval_gen_win_rate at step N equals `omni-dpo eval --task winrate`
// on checkpoint-N against the starting model, judged by the same reward model.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { packageRoot } from "../../src/util/package-root.js";
import { writeToyRewardModel } from "../helpers/reward-model.js";
import { tempDir, toyPairs, writeJsonl, writeToyModel } from "../helpers/toy.js";

const CLI = join(packageRoot(), "dist", "src", "cli", "main.js");
const root = tempDir("omni-dpo-geneval-");
after(() => rmSync(root, { recursive: true, force: true }));

const MODEL = writeToyModel(join(root, "policy"), { seed: 3 });
const PAIRS = writeJsonl(join(root, "pairs.jsonl"), toyPairs(8, 5));
const PROBLEMS = writeJsonl(
  join(root, "math.jsonl"),
  [
    ["1+1", "2"],
    ["2+3", "5"],
    ["7-4", "3"],
    ["2*3", "6"],
    ["9-9", "0"],
  ].map(([q, a]) => ({ problem: `What is ${q}?`, answer: a })),
);
const TEMPLATE = "Q: {input} A:";
const NEW_TOKENS = 24;

function cli(args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], {
    encoding: "utf8",
    timeout: 120_000,
    env: { ...process.env, OMP_NUM_THREADS: "1" },
  });
  assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
  return r.stdout;
}

function recipe(name: string, keys: Record<string, unknown>): string {
  const file = join(root, `${name}.yaml`);
  const all = {
    model_name_or_path: MODEL,
    output_dir: join(root, name),
    train_data_path: PAIRS,
    pref_loss: "dpo",
    beta: 0.1,
    learning_rate: 3e-3,
    max_steps: 4,
    per_device_train_batch_size: 2,
    max_length: 48,
    max_prompt_length: 24,
    logging_steps: 1,
    save_steps: 1,
    pair_log_samples: 0,
    eval_generation_file: PROBLEMS,
    eval_generation_max_new_tokens: NEW_TOKENS,
    eval_generation_prompt_template: TEMPLATE,
    ...keys,
  };
  writeFileSync(
    file,
    Object.entries(all)
      .map(([k, v]) => `${k}: ${JSON.stringify(v)}`)
      .join("\n") + "\n",
  );
  return file;
}

/** The eval_gen_* rows of a run's metrics.jsonl, by step. */
function generationRows(dir: string): Map<number, { accuracy: number; length: number }> {
  const rows = readFileSync(join(dir, "metrics.jsonl"), "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, number>)
    .filter((r) => "eval_gen_accuracy" in r);
  return new Map(rows.map((r) => [r.step, { accuracy: r.eval_gen_accuracy, length: r.eval_gen_mean_length }]));
}

/** `omni-dpo eval --task math` on a checkpoint, with the run's generation settings. */
function evalCheckpoint(dir: string): { accuracy: number; length: number } {
  const out = cli(
    ["eval", "--task", "math", "--model", dir, "--data", PROBLEMS, "--dataset", "math", "--json"].concat([
      "--max-new-tokens",
      String(NEW_TOKENS),
      "--prompt-template",
      TEMPLATE,
    ]),
  );
  const r = JSON.parse(out) as { accuracy: number; generated_tokens: number; n: number };
  return { accuracy: r.accuracy, length: r.generated_tokens / r.n };
}

const close = (a: number, b: number) => Math.abs(a - b) < 1e-9;

test("eval_gen_* rows at eval_generation_steps equal omni-dpo eval on each step's checkpoint; the best by eval_gen_accuracy is kept", () => {
  const dir = join(root, "one");
  // eval_steps 2, eval_generation_steps 1: generation eval has its own interval.
  cli([
    "train",
    recipe("one", {
      eval_steps: 2,
      eval_generation_steps: 1,
      metric_for_best_model: "eval_gen_accuracy",
      load_best_model_at_end: true,
    }),
  ]);
  const rows = generationRows(dir);
  assert.deepEqual([...rows.keys()], [1, 2, 3, 4]);
  const direct = [1, 2, 3, 4].map((step) => evalCheckpoint(join(dir, `checkpoint-${step}`)));
  for (const [i, d] of direct.entries()) {
    const logged = rows.get(i + 1)!;
    assert.ok(close(logged.accuracy, d.accuracy), `step ${i + 1}: accuracy ${logged.accuracy} vs ${d.accuracy}`);
    assert.ok(close(logged.length, d.length), `step ${i + 1}: mean length ${logged.length} vs ${d.length}`);
  }
  // The steps differ, so a row from another step's weights would not match.
  assert.ok(new Set(direct.map((d) => `${d.accuracy}/${d.length}`)).size > 1, JSON.stringify(direct));
  // load_best_model_at_end: the final model is the first step with the highest accuracy.
  const best = direct.reduce((b, d, i) => (d.accuracy > direct[b].accuracy ? i : b), 0) + 1;
  const weights = (d: string) => readFileSync(join(d, "model.safetensors"));
  assert.ok(weights(dir).equals(weights(join(dir, `checkpoint-${best}`))), `the final model is checkpoint-${best}'s`);
});

test("under two Gloo ranks the problems are split and the figures combined: equal to omni-dpo eval on the checkpoints", () => {
  const dir = join(root, "two");
  // eval_generation_steps unset: it follows eval_steps (2), and the last step.
  cli(["train", recipe("two", { eval_steps: 2, per_device_train_batch_size: 1 }), "--nproc-per-node", "2"]);
  const rows = generationRows(dir);
  assert.deepEqual([...rows.keys()], [2, 4]);
  for (const step of [2, 4]) {
    const d = evalCheckpoint(join(dir, `checkpoint-${step}`));
    const logged = rows.get(step)!;
    assert.ok(close(logged.accuracy, d.accuracy), `step ${step}: accuracy ${logged.accuracy} vs ${d.accuracy}`);
    assert.ok(close(logged.length, d.length), `step ${step}: mean length ${logged.length} vs ${d.length}`);
  }
});

test("eval_generation_task winrate: eval_gen_win_rate at step N equals omni-dpo eval --task winrate on checkpoint-N", () => {
  const dir = join(root, "winrate");
  const rm = writeToyRewardModel(join(root, "rm"));
  const prompts = writeJsonl(
    join(root, "held-out.jsonl"),
    ["north", "candle", "mirror", "garden", "apple"].map((w) => ({ prompt: `say ${w}:` })),
  );
  cli([
    "train",
    recipe("winrate", {
      eval_steps: 2,
      eval_generation_task: "winrate",
      eval_generation_file: prompts,
      eval_generation_reward_model: rm,
      eval_generation_prompt_template: null,
    }),
  ]);
  const rows = readFileSync(join(dir, "metrics.jsonl"), "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, number>)
    .filter((r) => "eval_gen_win_rate" in r);
  assert.deepEqual(
    rows.map((r) => r.step),
    [2, 4],
  );
  for (const row of rows) {
    const out = cli(
      ["eval", "--task", "winrate", "--model", join(dir, `checkpoint-${row.step}`), "--baseline", MODEL].concat([
        "--reward-model",
        rm,
        "--prompts",
        prompts,
        "--max-new-tokens",
        String(NEW_TOKENS),
        "--json",
      ]),
    );
    const d = JSON.parse(out) as { win_rate: number; mean_length: number };
    assert.ok(close(row.eval_gen_win_rate, d.win_rate), `step ${row.step}: ${row.eval_gen_win_rate} vs ${d.win_rate}`);
    assert.ok(close(row.eval_gen_mean_length, d.mean_length), `step ${row.step}: mean length`);
  }
});

test("early stopping on eval_gen_accuracy: no eval pairs needed; stops after patience rows without a gain", () => {
  const dir = join(root, "early");
  cli([
    "train",
    recipe("early", {
      eval_generation_steps: 1,
      metric_for_best_model: "eval_gen_accuracy",
      early_stopping_patience: 1,
    }),
  ]);
  const rows = generationRows(dir);
  // The oracle: transformers' rule over the logged accuracies (patience 1: the first row not above the best stops).
  let best = -Infinity;
  let stop = 4;
  for (const [step, { accuracy }] of rows) {
    if (!(accuracy > best)) {
      stop = step;
      break;
    }
    best = accuracy;
  }
  assert.ok(stop < 4, `the toy policy's accuracy stalls, so the run stops early: ${JSON.stringify([...rows])}`);
  assert.deepEqual(
    [...rows.keys()],
    Array.from({ length: stop }, (_, i) => i + 1),
  );
  const results = JSON.parse(readFileSync(join(dir, "trainer_state.json"), "utf8")) as { global_step: number };
  assert.equal(results.global_step, stop);
  // Without eval_generation_file the generation metric cannot be watched: refused, naming the key.
  const bad = spawnSync(
    process.execPath,
    [
      CLI,
      "train",
      recipe("early-bad", {
        eval_generation_file: null,
        metric_for_best_model: "eval_gen_accuracy",
        early_stopping_patience: 1,
      }),
    ],
    { encoding: "utf8", env: { ...process.env, OMP_NUM_THREADS: "1" } },
  );
  assert.equal(bad.status, 1, bad.stderr);
  assert.match(
    bad.stderr,
    /key 'early_stopping_patience': metric_for_best_model eval_gen_accuracy comes from generation eval/,
  );
});
