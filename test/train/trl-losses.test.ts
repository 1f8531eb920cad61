// TRL's loss types through the trainer: a loss_type list with loss_weights, use_weighting (WPO
// weights from the policy's own log-prob chunks), ld_alpha (LD-DPO) and ORPO (no reference model), on a toy model
// for a few steps. The losses' values are checked against PyTorch in
// test/objectives/trl-parity.test.ts and the WPO weights in test/logprobs/wpo.test.ts; this checks
// that the trainer feeds them (token counts, weights) and logs what TRL logs.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, rmSync } from "node:fs";
import { join } from "node:path";
import { loadTrainConfig } from "../../src/train/config.js";
import { train } from "../../src/train/trainer.js";
import { MetricsSink, type MetricRow } from "../../src/train/metrics.js";
import { tempDir, toyPairs, writeJsonl, writeToyModel } from "../helpers/toy.js";

let root: string;
let model: string;
let data: string;
before(() => {
  root = tempDir("omni-dpo-trl-losses-");
  model = writeToyModel(join(root, "model"));
  data = writeJsonl(join(root, "pairs.jsonl"), toyPairs(16));
});
after(() => rmSync(root, { recursive: true, force: true }));

async function run(name: string, extra: Record<string, unknown>): Promise<MetricRow[]> {
  const { config } = loadTrainConfig({
    model_name_or_path: model,
    dataset_mixer: { [data]: 1.0 },
    output_dir: join(root, name),
    learning_rate: 1e-3,
    per_device_train_batch_size: 4,
    max_steps: 2,
    logging_steps: 1,
    save_strategy: "no",
    max_length: 64,
    max_prompt_length: 32,
    seed: 3,
    ...extra,
  });
  const r = await train(config);
  return MetricsSink.read(join(r.outputDir, "metrics.jsonl")).filter((row) => "loss" in row);
}

test("loss_type [sigmoid, sft] with loss_weights: weight 0 on sft is DPO's loss; WPO changes it", async () => {
  const dpo = await run("dpo", { loss_type: "sigmoid" });
  const zero = await run("zero-sft", { loss_type: ["sigmoid", "sft"], loss_weights: [1.0, 0.0] });
  const mixed = await run("mixed", { loss_type: ["sigmoid", "sft"], loss_weights: [1.0, 0.5] });
  const weighted = await run("weighted", {
    loss_type: ["sigmoid", "sft"],
    loss_weights: [1.0, 0.5],
    use_weighting: true,
  });
  const first = (rows: MetricRow[]) => rows[0].loss as number;
  assert.ok(Math.abs(first(zero) - first(dpo)) < 1e-6, `${first(zero)} vs ${first(dpo)}`);
  // The sft term adds half the chosen tokens' NLL, which is large for an untrained model.
  assert.ok(first(mixed) > first(dpo) + 0.5, `${first(mixed)} vs ${first(dpo)}`);
  assert.ok(
    Number.isFinite(first(weighted)) && Math.abs(first(weighted) - first(mixed)) > 1e-6,
    `${first(weighted)} vs ${first(mixed)}`,
  );
});

test("ORPO trains without a reference model and logs TRL's ORPO metrics", async () => {
  const rows = await run("orpo", { loss_type: "orpo", beta: 0.1, ref_model: join(root, "no-such-model") });
  assert.equal(rows.length, 2);
  for (const key of ["nll_loss", "log_odds_ratio", "log_odds_chosen"]) assert.equal(typeof rows[0][key], "number", key);
  // loss = nll - beta * mean(log_odds_ratio)
  assert.ok(
    Math.abs((rows[0].loss as number) - ((rows[0].nll_loss as number) - 0.1 * (rows[0].log_odds_ratio as number))) <
      1e-5,
  );
  assert.ok(!existsSync(join(root, "orpo", "ref_logps_cache")));
});

test("ld_alpha trains (LD-DPO), ld_alpha 1 is plain DPO, and a value outside [0, 1] is an error naming the key", async () => {
  const losses = (rows: MetricRow[]) => rows.map((r) => r.loss as number);
  const dpo = losses(await run("ld-none", { loss_type: "sigmoid" }));
  const one = losses(await run("ld-one", { loss_type: "sigmoid", ld_alpha: 1.0 }));
  // With a precomputed reference the cache is keyed by alpha too.
  const half = losses(await run("ld-half", { loss_type: "sigmoid", ld_alpha: 0.5, precompute_ref_log_probs: true }));
  assert.deepEqual(one, dpo);
  assert.equal(half.length, 2);
  assert.ok(half.every(Number.isFinite) && half.some((x, i) => Math.abs(x - dpo[i]) > 1e-7), `${half} vs ${dpo}`);
  assert.throws(
    () =>
      loadTrainConfig({
        model_name_or_path: model,
        dataset_mixer: { [data]: 1.0 },
        output_dir: join(root, "ld"),
        loss_type: "sigmoid",
        ld_alpha: 1.5,
      }),
    /ld_alpha/,
  );
});
