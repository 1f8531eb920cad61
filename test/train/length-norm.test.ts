// dpo_length_norm unset: a recipe written for TRL's DPOTrainer (only TRL / transformers keys)
// sums the answers' token log-probs, as TRL does; one with a Uni-DPO marker keeps the Uni-DPO
// reference trainers' per-token mean; a dpo_length_norm in the recipe wins. The run header and
// the model card say which and why.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { Tokenizer, tokenizePair, train } from "../../src/index.js";
import { loadTrainConfig } from "../../src/train/config.js";
import { trainCommand } from "../../src/cli/commands/train.js";
import { MetricsSink } from "../../src/train/metrics.js";
import { tempDir, toyPairs, writeJsonl, writeToyModel } from "../helpers/toy.js";

let root: string;
let model: string;
let data: string;
let evalData: string;
before(() => {
  root = tempDir("omni-dpo-lengthnorm-");
  model = writeToyModel(join(root, "model"), { seed: 4 });
  data = writeJsonl(join(root, "pairs.jsonl"), toyPairs(4, 5));
  evalData = writeJsonl(join(root, "eval.jsonl"), toyPairs(1, 9));
});
after(() => rmSync(root, { recursive: true, force: true }));

const base = (name: string) => ({ model_name_or_path: model, output_dir: join(root, name) });
const resolved = (recipe: Record<string, unknown>) => loadTrainConfig(recipe).config;

describe("dpo_length_norm as the recipe means it", () => {
  it("a TRL-style recipe sums; any Uni-DPO marker keeps the mean; the recipe's own value wins", () => {
    const trl = resolved({ ...base("a"), dataset_mixer: { [data]: 1 }, loss_type: "sigmoid", beta: 0.1 });
    assert.equal(trl.dpoLengthNorm, false);
    assert.match(trl.dpoLengthNormReason, /TRL's DPOTrainer sums/);
    const trlList = resolved({
      ...base("a"),
      dataset_mixer: { [data]: 1 },
      loss_type: ["sigmoid", "sft"],
      loss_weights: [1, 1],
    });
    assert.equal(trlList.dpoLengthNorm, false);
    const markers: Record<string, unknown>[] = [
      { dataset_mixer: { [data]: 1 }, pref_loss: "dpo" },
      { dataset_mixer: { [data]: 1 }, loss_type: "sigmoid", uni_dpo_nll_lambda: 0.1 },
      { dataset_mixer: { [data]: 1 }, loss_type: "uni_dpo" },
      { train_data_path: data, loss_type: "sigmoid" },
      { dataset_mixer: { [data]: 1 }, loss_type: "sigmoid", max_samples: 4 },
      { dataset_mixer: { [data]: 1 } }, // no loss key: omni_dpo, Uni-DPO's loss
    ];
    for (const m of markers) {
      const c = resolved({ ...base("b"), ...m });
      assert.equal(c.dpoLengthNorm, true, JSON.stringify(m));
      assert.match(c.dpoLengthNormReason, /Uni-DPO trainers' default/);
    }
    assert.match(resolved({ ...base("c"), dataset_mixer: { [data]: 1 } }).dpoLengthNormReason, /loss omni_dpo/);
    const given = resolved({ ...base("d"), dataset_mixer: { [data]: 1 }, loss_type: "sigmoid", dpo_length_norm: true });
    assert.deepEqual([given.dpoLengthNorm, given.dpoLengthNormReason], [true, "dpo_length_norm set in the recipe"]);
    assert.equal(resolved({ ...base("e"), train_data_path: data, dpo_length_norm: false }).dpoLengthNorm, false);
  });

  it("a TRL recipe's logged logps/chosen are sums over the answer; the header and model card say so", async () => {
    // Learning rate 0: both runs evaluate the starting model, on one eval pair, so the summed
    // value is the mean one times the answer's token count.
    const recipe = (name: string, extra: Record<string, unknown> = {}) =>
      loadTrainConfig({
        ...base(name),
        dataset_mixer: { [data]: 1 },
        eval_file: evalData,
        loss_type: "sigmoid",
        beta: 0.1,
        learning_rate: 0,
        max_steps: 1,
        per_device_train_batch_size: 2,
        per_device_eval_batch_size: 1,
        max_length: 48,
        max_prompt_length: 24,
        pair_log_samples: 0,
        save_strategy: "no",
        ...extra,
      }).config;
    const status: string[] = [];
    const summed = await train(recipe("trl"), { onStatus: (m) => status.push(m) });
    const mean = await train(recipe("mean", { dpo_length_norm: true }));
    const evalRow = (dir: string) =>
      MetricsSink.read(join(dir, "metrics.jsonl")).find((r) => "eval_logps/chosen" in r)!;
    const tokenizer = Tokenizer.fromPretrainedSync(model);
    const pair = tokenizePair(toyPairs(1, 9)[0], tokenizer, {
      maxLength: 48,
      maxPromptLength: 24,
      truncationMode: "keep_end",
    });
    const answerTokens = pair.chosenLabels.filter((l) => l !== -100).length;
    assert.ok(answerTokens > 1);
    const sum = Number(evalRow(summed.outputDir)["eval_logps/chosen"]);
    const perToken = Number(evalRow(mean.outputDir)["eval_logps/chosen"]);
    assert.ok(
      Math.abs(sum - perToken * answerTokens) < 1e-4 * Math.abs(sum),
      `${sum} vs ${perToken} x ${answerTokens}`,
    );
    assert.match(
      status[0],
      /^objective: dpo \(beta 0\.1\); sequence log-probs summed over each answer's tokens \(dpo_length_norm: false; TRL's/,
    );
    const card = readFileSync(join(summed.outputDir, "README.md"), "utf8");
    assert.match(card, /summed over each answer's tokens \(dpo_length_norm: false; TRL's DPOTrainer sums them/);
    assert.match(card, /\| dpo_length_norm \| false \|/);
  });

  it("train --help states the rule", () => {
    const help = trainCommand.help.replace(/\s+/g, " ");
    assert.match(
      help,
      /Without dpo_length_norm, a recipe of TRL \/ transformers keys only is trained as TRL does \(summed\)/,
    );
    assert.match(
      help,
      /dpo_length_norm \(bool, default None\) Sequence log-prob as the mean over answer tokens \(true\) or their sum/,
    );
  });
});
