// `omni-dpo train-rm` under data parallelism: 2 Gloo ranks with per_device_train_batch_size b end
// with the weights (float64, to 1e-10) and metrics of 1 process with batch 2b, from a causal LM
// (the fresh score head is the same on every rank), with accumulation, clipping, the margin
// column and center_rewards_coefficient; the ranks' eval shards give the same eval_accuracy.
import { after, before, it } from "node:test";
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { tempDir, toyPairs, writeJsonl, writeToyModel } from "../helpers/toy.js";
import { freePort } from "./ranks.js";
import { maxWeightDifference, metricRows, runTrain, weightsOf, writeRecipe } from "./train-ranks.js";

let root: string;
let model: string;
let data: string;
before(() => {
  root = tempDir("omni-dpo-rm-ddp-");
  model = writeToyModel(join(root, "lm"), { seed: 6 });
  // 21 pairs, 5 held out (the ranks' eval shards differ in size), 16 to train.
  data = writeJsonl(
    join(root, "pairs.jsonl"),
    toyPairs(21, 4).map((p, i) => ({ ...p, margin: (i % 3) * 0.5 })),
  );
});
after(() => rmSync(root, { recursive: true, force: true }));

function recipe(name: string, batch: number): { file: string; dir: string } {
  const dir = join(root, name);
  const file = writeRecipe(join(root, `${name}.yaml`), {
    model_name_or_path: model,
    dataset_mixer: { [data]: 1.0 },
    test_split_size: 5,
    output_dir: dir,
    torch_dtype: "float64",
    learning_rate: 5e-3,
    lr_scheduler_type: "linear",
    warmup_steps: 1,
    num_train_epochs: 2,
    per_device_train_batch_size: batch,
    gradient_accumulation_steps: 2,
    per_device_eval_batch_size: 3,
    max_grad_norm: 0.05,
    max_length: 48,
    max_prompt_length: 24,
    logging_steps: 1,
    eval_steps: 2,
    save_steps: 3,
    seed: 11,
    center_rewards_coefficient: 0.01,
    ddp_timeout: 60,
  });
  return { file, dir };
}

it("2 ranks with batch 2 train a reward model as 1 process with batch 4 (float64 weights to 1e-10, the same metrics)", async () => {
  const alone = recipe("alone", 4);
  const ranks = recipe("ranks", 2);
  const [a, b] = await Promise.all([
    runTrain(alone.file, [], {}, "train-rm"),
    runTrain(ranks.file, ["--nproc-per-node", "2", "--master-port", String(await freePort())], {}, "train-rm"),
  ]);
  assert.equal(a.code, 0, a.output);
  assert.equal(b.code, 0, b.output);
  const diff = maxWeightDifference(weightsOf(alone.dir), weightsOf(ranks.dir));
  assert.ok(diff <= 1e-10, `weights differ by ${diff}`);
  const rowsA = metricRows(alone.dir);
  const rowsB = metricRows(ranks.dir);
  assert.equal(rowsB.length, rowsA.length);
  const train = rowsA.filter((r) => "loss" in r);
  assert.equal(train.length, 4, "4 optimizer steps");
  assert.ok(
    train.every((r) => (r.grad_norm as number) > 0.05),
    "clipping was active at every step",
  );
  assert.equal(rowsA.filter((r) => "eval_accuracy" in r).length, 2);
  // min_reward / max_reward are per micro-batch extremes (as TRL's, averaged over batches): they depend on the split.
  const splitDependent = /tokens_per_second|min_reward|max_reward/;
  rowsA.forEach((row, i) => {
    for (const k of Object.keys(row).filter((key) => !splitDependent.test(key))) {
      const x = row[k] as number;
      const y = rowsB[i][k] as number;
      assert.ok(Math.abs(x - y) <= 1e-10 * Math.max(1, Math.abs(x)), `row ${i} ${k}: ${x} alone, ${y} with 2 ranks`);
    }
  });
});
