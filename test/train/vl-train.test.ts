// Preference training of a vision-language model on image pairs: a tiny Qwen2-VL made here learns
// with Omni-DPO (uni_dpo) from TRL's and LLaMA-Factory's formats alike, on a preference only the
// image can decide (every answer is chosen as often as it is rejected; the right one names the
// image's colour), with the vision tower and projector frozen as LLaMA-Factory freezes them.
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { loadCheckpoint } from "../../src/models/safetensors.js";
import { loadTrainConfig } from "../../src/train/config.js";
import { MetricsSink, type MetricRow } from "../../src/train/metrics.js";
import { train } from "../../src/train/trainer.js";
import { tempDir, writeJsonl } from "../helpers/toy.js";
import { solidImage, writePng, writeTinyQwen2VL } from "../helpers/qwen2-vl.js";

const root = tempDir("omni-dpo-vl-train-");
after(() => rmSync(root, { recursive: true, force: true }));

const model = writeTinyQwen2VL();
const COLOURS: Record<string, [number, number, number]> = {
  red: [220, 20, 30],
  green: [20, 200, 40],
  blue: [30, 40, 220],
};
for (const [name, rgb] of Object.entries(COLOURS)) writePng(join(root, `${name}.png`), solidImage(56, 56, rgb));

/** Each image against each other colour: 6 pairs, every answer chosen twice and rejected twice. */
const PAIRS = Object.keys(COLOURS).flatMap((colour) =>
  Object.keys(COLOURS)
    .filter((other) => other !== colour)
    .map((other) => ({ image: `${colour}.png`, chosen: `It is ${colour}.`, rejected: `It is ${other}.` })),
);
const QUESTION = "What colour is this?";

const lfFile = writeJsonl(
  join(root, "lf.jsonl"),
  PAIRS.map((p) => ({
    instruction: `<image>${QUESTION}`,
    chosen: p.chosen,
    rejected: p.rejected,
    images: [p.image],
    score_chosen: 9,
    score_rejected: 2,
  })),
);
const trlFile = writeJsonl(
  join(root, "trl.jsonl"),
  PAIRS.map((p) => ({
    images: [p.image],
    prompt: [{ role: "user", content: [{ type: "image" }, { type: "text", text: QUESTION }] }],
    chosen: [{ role: "assistant", content: [{ type: "text", text: p.chosen }] }],
    rejected: [{ role: "assistant", content: [{ type: "text", text: p.rejected }] }],
    score_chosen: 9,
    score_rejected: 2,
  })),
);

/** Omni-DPO with the reference's multimodal weights (eta, tau_ref, gamma, tau_good), on the 6 pairs. */
function recipe(data: string, outputDir: string, extra: Record<string, unknown> = {}) {
  return loadTrainConfig({
    model_name_or_path: model.dir,
    train_data_path: data,
    output_dir: join(root, outputDir),
    pref_loss: "uni_dpo",
    pref_beta: 2.0,
    dpo_average_log_prob: true,
    uni_dpo_qual_eta: 0.7,
    uni_dpo_tau_ref: 2.0,
    uni_dpo_perf_gamma: 3.0,
    uni_dpo_nll_lambda: 0.001,
    uni_dpo_tau_good: 2.5,
    learning_rate: 2e-3,
    lr_scheduler_type: "constant",
    max_steps: 16,
    per_device_train_batch_size: 6,
    logging_steps: 1,
    max_length: 64,
    max_prompt_length: 48,
    save_strategy: "no",
    seed: 11,
    ...extra,
  }).config;
}

const rowsOf = (dir: string): MetricRow[] => MetricsSink.read(join(dir, "metrics.jsonl")).filter((r) => "loss" in r);
const mean = (rows: MetricRow[], key: string) => rows.reduce((a, r) => a + Number(r[key]), 0) / rows.length;

describe("training a vision-language model on image pairs", () => {
  for (const [format, file] of [
    ["LLaMA-Factory", lfFile],
    ["TRL", trlFile],
  ] as const) {
    test(`Omni-DPO learns which answer names the image's colour (${format}'s format)`, async () => {
      const config = recipe(file, `run-${format}`);
      await train(config);
      const rows = rowsOf(config.outputDir);
      assert.equal(rows.length, 16);
      // Step 1: the policy is the reference, so no pair is ranked right yet.
      assert.equal(rows[0]!["rewards/accuracies"], 0);
      const last = rows.slice(-4);
      assert.ok(mean(last, "loss") < Number(rows[0]!.loss) - 0.05, `loss ${rows[0]!.loss} -> ${mean(last, "loss")}`);
      assert.ok(mean(last, "rewards/accuracies") > 0.8, `accuracy ${mean(last, "rewards/accuracies")}`);
      // The vision tower and its projector were frozen (LLaMA-Factory's default): saved unchanged.
      const before = loadCheckpoint(model.dir);
      const saved = loadCheckpoint(config.outputDir);
      const visual = [...before.keys()].filter((k) => k.startsWith("visual."));
      assert.ok(visual.some((k) => k.startsWith("visual.merger.")) && visual.length > 4);
      for (const k of visual) assert.deepEqual(saved.get(k)!.toArray(), before.get(k)!.toArray(), k);
      const moved = [...before.keys()].filter(
        (k) => !k.startsWith("visual.") && JSON.stringify(saved.get(k)!.toArray()) !== JSON.stringify(before.get(k)!.toArray()),
      );
      assert.ok(moved.length > 0, "the language model trained");
    });
  }
});
