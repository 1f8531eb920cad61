// A vision-language model on image pairs across 2 Gloo ranks: DDP, ZeRO-1 and ZeRO-2 learn what
// one process learns with twice the batch (the frozen vision tower is replicated, never
// synchronised), and ZeRO-3 does too (it shards only trainable weights; the tower stays whole
// on every rank).
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { tempDir } from "../helpers/toy.js";
import { writeColourPairs, writeTinyQwen2VL } from "../helpers/qwen2-vl.js";
import { freePort } from "./ranks.js";
import { maxWeightDifference, metricRows, runTrain, weightsOf, writeRecipe } from "./train-ranks.js";

let root: string;
let model: string;
let data: string;
before(() => {
  root = tempDir("omni-dpo-vl-ranks-");
  model = writeTinyQwen2VL(5).dir;
  data = writeColourPairs(root).lfFile;
});
after(() => rmSync(root, { recursive: true, force: true }));

/** The 6 colour pairs: 1 process x batch 6, or 2 ranks x batch 3; 3 steps of Omni-DPO in float64 (exact to 1e-10). */
function recipe(name: string, batch: number, extra: Record<string, unknown> = {}) {
  const dir = join(root, name);
  const file = writeRecipe(join(root, `${name}.yaml`), {
    model_name_or_path: model,
    train_data_path: data,
    output_dir: dir,
    torch_dtype: "float64",
    pref_loss: "uni_dpo",
    pref_beta: 2.0,
    dpo_average_log_prob: true,
    uni_dpo_tau_good: 2.5,
    learning_rate: 5e-3,
    max_steps: 3,
    per_device_train_batch_size: batch,
    max_length: 64,
    max_prompt_length: 48,
    logging_steps: 1,
    save_strategy: "no",
    seed: 11,
    ddp_timeout: 60,
    ...extra,
  });
  return { file, dir };
}

const twoRanks = async () => ["--nproc-per-node", "2", "--master-port", String(await freePort())];

describe("image pairs across 2 ranks", () => {
  let alone: { dir: string };
  before(async () => {
    alone = recipe("alone", 6);
    const run = await runTrain(alone.dir + ".yaml");
    assert.equal(run.code, 0, run.output);
  });

  for (const [label, extra] of [
    ["DDP", {}],
    ["ZeRO-1", { zero_stage: 1 }],
    ["ZeRO-2", { zero_stage: 2 }],
    ["ZeRO-3", { zero_stage: 3 }],
  ] as const) {
    it(`${label}: the weights and losses of one process with twice the batch`, async () => {
      const two = recipe(label, 3, extra);
      const run = await runTrain(two.file, await twoRanks());
      assert.equal(run.code, 0, run.output);
      const diff = maxWeightDifference(weightsOf(alone.dir), weightsOf(two.dir));
      assert.ok(diff < 1e-10, `largest weight difference ${diff}`);
      const losses = (dir: string) =>
        metricRows(dir)
          .filter((r) => "loss" in r)
          .map((r) => Number(r.loss));
      const [a, b] = [losses(alone.dir), losses(two.dir)];
      assert.equal(b.length, 3);
      a.forEach((x, i) => assert.ok(Math.abs(x - b[i]!) < 1e-10, `step ${i + 1}: ${x} alone, ${b[i]} with 2 ranks`));
    });
  }
});
