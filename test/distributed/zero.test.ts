// ZeRO-1 (zero_stage: 1): the optimizer's state sharded across 2 ranks changes memory, not what
// is learnt: the weights equal plain DDP's (float64, 1e-10) after 8 steps with accumulation and
// clipping, each rank holding about half of AdamW's moments; its checkpoints hold the whole
// state, so a run resumed from one (sharded or not) ends with the same weights.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { cpSync, mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { torch } from "../../src/index.js";
import { ownersOf } from "../../src/train/distributed/zero.js";
import { tempDir } from "../helpers/toy.js";
import { freePort } from "./ranks.js";
import { maxWeightDifference, metricRows, runTrain, weightsOf, writeRecipe, writeSetup } from "./train-ranks.js";

let root: string;
let setup: { model: string; data: string };
before(() => {
  root = tempDir("omni-dpo-zero-");
  setup = writeSetup(root, 21);
});
after(() => rmSync(root, { recursive: true, force: true }));

function recipe(name: string, extra: Record<string, unknown> = {}): { file: string; dir: string } {
  const dir = join(root, name);
  const file = writeRecipe(join(root, `${name}.yaml`), {
    model_name_or_path: setup.model,
    dataset_mixer: { [setup.data]: 1.0 },
    test_split_size: 5,
    output_dir: dir,
    torch_dtype: "float64",
    pref_loss: "dpo",
    beta: 0.5,
    learning_rate: 5e-3,
    lr_scheduler_type: "linear",
    warmup_steps: 1,
    weight_decay: 0.1,
    num_train_epochs: 4,
    per_device_train_batch_size: 2,
    gradient_accumulation_steps: 2,
    per_device_eval_batch_size: 3,
    max_grad_norm: 0.05,
    max_length: 48,
    max_prompt_length: 24,
    logging_steps: 1,
    eval_steps: 4,
    save_steps: 3,
    seed: 11,
    ddp_timeout: 60,
    ...extra,
  });
  return { file, dir };
}

const twoRanks = async () => ["--nproc-per-node", "2", "--master-port", String(await freePort())];

describe("ZeRO-1: optimizer state sharded across ranks", () => {
  it("owners: every parameter has one, largest first to the least loaded rank", () => {
    const p = (n: number) => torch.zeros([n]);
    const groups = [{ params: [p(10), p(40), p(30)] }, { params: [p(5), p(20)] }];
    // 40 -> 0, 30 -> 1, 10 -> 1 (30 < 40); then 20 -> 0 (40 = 40, the lower rank), 5 -> 1.
    assert.deepEqual(ownersOf(groups, 2), [1, 0, 1, 1, 0]);
    assert.deepEqual(ownersOf(groups, 1), [0, 0, 0, 0, 0]);
    for (const g of groups) for (const t of g.params) t.dispose();
  });

  it("2 ranks with zero_stage 1 end with plain DDP's weights and metrics (float64, 1e-10); a run resumed from its checkpoint, sharded or not, too", async () => {
    const plain = recipe("plain");
    const zero = recipe("zero", { zero_stage: 1 });
    const [a, b] = await Promise.all([runTrain(plain.file, await twoRanks()), runTrain(zero.file, await twoRanks())]);
    assert.equal(a.code, 0, a.output);
    assert.equal(b.code, 0, b.output);
    // Rank 0 reports its share; about half of the elements.
    const share = /rank 0: ZeRO-1, optimizer state for (\d+) of (\d+) parameter elements/.exec(b.output);
    assert.ok(share, b.output);
    const fraction = Number(share[1]) / Number(share[2]);
    assert.ok(fraction > 0.3 && fraction < 0.7, `rank 0 holds ${fraction} of the state`);
    const final = weightsOf(plain.dir);
    const diff = maxWeightDifference(final, weightsOf(zero.dir));
    assert.ok(diff <= 1e-10, `weights differ by ${diff}`);
    const rows = (dir: string) => metricRows(dir).map(({ tokens_per_second: _t, ...r }) => r);
    const [ra, rb] = [rows(plain.dir), rows(zero.dir)];
    assert.equal(rb.length, ra.length);
    ra.forEach((r, i) => {
      for (const [k, v] of Object.entries(r))
        assert.ok(
          Math.abs((v as number) - (rb[i][k] as number)) <= 1e-10 * Math.max(1, Math.abs(v as number)),
          `row ${i} ${k}`,
        );
    });

    // Resume from the sharded run's step-3 checkpoint: with zero_stage 1 and without.
    for (const stage of [1, 0]) {
      const resumed = recipe(`resumed-${stage}`, { zero_stage: stage });
      mkdirSync(resumed.dir, { recursive: true });
      cpSync(join(zero.dir, "checkpoint-3"), join(resumed.dir, "checkpoint-3"), { recursive: true });
      const r = await runTrain(resumed.file, await twoRanks());
      assert.equal(r.code, 0, r.output);
      assert.match(r.output, /resumed from .*checkpoint-3 at step 3/);
      const d = maxWeightDifference(final, weightsOf(resumed.dir));
      assert.ok(d <= 1e-10, `zero_stage ${stage} resumed: weights differ by ${d}`);
    }
  });
});
