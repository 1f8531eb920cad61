// A loss registered from outside the package (a user's script importing "omni-dpo" by name)
// trains a tiny model through a YAML recipe with the real trainer: the recipe's option reaches
// the loss, and every logged loss is the registered function's closed form on the step's pairs.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { packageRoot } from "../../src/util/package-root.js";
import { tempDir, toyPairs, writeJsonl, writeToyModel } from "../helpers/toy.js";

let root: string;
before(() => {
  root = tempDir("omni-dpo-external-loss-");
  writeToyModel(join(root, "model"));
  writeJsonl(join(root, "pairs.jsonl"), toyPairs(8));
  writeFileSync(
    join(root, "recipe.yaml"),
    `model_name_or_path: model
dataset_mixer:
  pairs.jsonl: 1.0
output_dir: out
loss_type: my_loss
my_margin: 0.3
beta: 0.5
learning_rate: 1.0e-2
lr_scheduler_type: constant
per_device_train_batch_size: 4
gradient_accumulation_steps: 1
max_steps: 3
logging_steps: 1
pair_log_samples: 0  # the pair log's no-grad pass would call the loss too
save_steps: 100
max_length: 64
max_prompt_length: 32
seed: 3
`,
  );
});
after(() => rmSync(root, { recursive: true, force: true }));

// The user's script: registers relu(my_margin - beta m)^2, records what each call receives.
const SCRIPT = `
import { registerLoss, loadTrainConfig, train } from "omni-dpo";
const calls = [];
const values = (t) => t.detach().toArray();
registerLoss({
  name: "my_loss",
  needsReference: true,
  options: { my_margin: 0.5 },
  losses(x, o) {
    const m = x.policyChosenLogps.sub(x.policyRejectedLogps).sub(x.referenceChosenLogps.sub(x.referenceRejectedLogps));
    calls.push({ margin: o.my_margin, beta: o.beta, pc: values(x.policyChosenLogps), pr: values(x.policyRejectedLogps),
      rc: values(x.referenceChosenLogps), rr: values(x.referenceRejectedLogps) });
    return m.mul(o.beta).neg().add(o.my_margin).relu().pow(2);
  },
});
const { config, warnings } = loadTrainConfig(process.argv[1]);
const rows = [];
await train(config, { onLog: (row) => rows.push(row) });
console.log(JSON.stringify({ warnings, objective: config.objective, calls, rows }));
`;

interface Call {
  margin: number;
  beta: number;
  pc: number[];
  pr: number[];
  rc: number[];
  rr: number[];
}

test("a loss registered through the package entry trains from a YAML with the real trainer", () => {
  const r = spawnSync(
    process.execPath,
    ["--input-type=module", "-e", SCRIPT, join(root, "recipe.yaml")],
    // From the package's directory, where Node resolves "omni-dpo" to this package (as for a user who installed it).
    { encoding: "utf8", cwd: packageRoot(), env: { ...process.env, OMP_NUM_THREADS: "1" } },
  );
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout.trim().split("\n").pop()!) as {
    warnings: string[];
    objective: Record<string, unknown>;
    calls: Call[];
    rows: Record<string, number>[];
  };
  // The trainer's config reader knows the loss's key; the recipe's values reached the loss.
  assert.deepEqual(
    out.warnings.filter((w) => w.includes("my_margin")),
    [],
  );
  assert.equal(out.objective.lossType, "my_loss");
  assert.equal(out.calls.length, 3, "one call per optimizer step (no eval split)");
  for (const c of out.calls) assert.deepEqual([c.margin, c.beta], [0.3, 0.5]);
  // A loss that needs the reference model got one: at the first step policy and reference agree.
  out.calls[0].pc.forEach((v, i) =>
    assert.ok(
      Math.abs(v - out.calls[0].rc[i]) < 1e-6,
      `step 1 pair ${i}: policy ${v} vs reference ${out.calls[0].rc[i]}`,
    ),
  );
  const train = out.rows.filter((row) => "loss" in row);
  assert.equal(train.length, 3);
  train.forEach((row, k) => {
    const c = out.calls[k];
    const closed = (margin: number) =>
      c.pc.reduce(
        (sum, _, i) => sum + Math.max(0, margin - c.beta * (c.pc[i] - c.pr[i] - (c.rc[i] - c.rr[i]))) ** 2,
        0,
      ) / c.pc.length;
    assert.ok(
      Math.abs(row.loss - closed(0.3)) <= 1e-5 * Math.max(1, closed(0.3)),
      `step ${k + 1}: logged loss ${row.loss} vs closed form ${closed(0.3)}`,
    );
    assert.ok(Math.abs(closed(0.3) - closed(0.5)) > 1e-3, "the default margin would give another loss");
    for (const m of [
      "rewards/chosen",
      "rewards/rejected",
      "rewards/accuracies",
      "rewards/margins",
      "logps/chosen",
      "logps/rejected",
    ]) {
      assert.equal(typeof row[m], "number", `step ${k + 1}: ${m}`);
    }
    const rewards = c.pc.reduce((sum, v, i) => sum + c.beta * (v - c.rc[i]), 0) / c.pc.length;
    assert.ok(Math.abs(row["rewards/chosen"] - rewards) < 1e-5, `step ${k + 1}: rewards/chosen`);
  });
  // The policy moved: later steps see policy log-probs away from the reference.
  assert.ok(out.calls[2].pc.some((v, i) => Math.abs(v - out.calls[2].rc[i]) > 1e-4));
});
