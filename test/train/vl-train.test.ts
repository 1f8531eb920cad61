// Preference training of a vision-language model on image pairs: a tiny Qwen2-VL made here learns
// with Omni-DPO (uni_dpo) from TRL's and LLaMA-Factory's formats alike, on a preference only the
// image can decide (every answer is chosen as often as it is rejected; the right one names the
// image's colour), with the vision tower and projector frozen as LLaMA-Factory freezes them.
import assert from "node:assert/strict";
import { existsSync, rmSync } from "node:fs";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { loadCheckpoint, loadSafetensors } from "../../src/models/safetensors.js";
import { evaluatePairwiseFile } from "../../src/eval/pairwise.js";
import { readRuns } from "../../src/report/dashboard-page.js";
import { loadTrainConfig } from "../../src/train/config.js";
import { MetricsSink, type MetricRow } from "../../src/train/metrics.js";
import { train } from "../../src/train/trainer.js";
import { tempDir, writeJsonl, writeToyModel } from "../helpers/toy.js";
import { writeColourPairs, writeTinyQwen2VL } from "../helpers/qwen2-vl.js";

const root = tempDir("omni-dpo-vl-train-");
after(() => rmSync(root, { recursive: true, force: true }));

const model = writeTinyQwen2VL();
const { lfFile, trlFile } = writeColourPairs(root);

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
        (k) =>
          !k.startsWith("visual.") &&
          JSON.stringify(saved.get(k)!.toArray()) !== JSON.stringify(before.get(k)!.toArray()),
      );
      assert.ok(moved.length > 0, "the language model trained");
    });
  }
});

describe("the trained vision-language model in use", () => {
  test("eval (pairwise) ranks the image pairs it learnt, in both formats alike; the output has the processor", async () => {
    const trained = join(root, "run-LLaMA-Factory");
    assert.ok(existsSync(join(trained, "preprocessor_config.json")), "the processor's files are saved with the model");
    const ev = (data: string, ref: string | null) =>
      evaluatePairwiseFile({ model: trained, ref, data, beta: 2.0, maxLength: 64, maxPromptLength: 48 });
    const lf = await ev(lfFile, model.dir);
    const trl = await ev(trlFile, model.dir);
    assert.equal(lf.pairs, 6);
    assert.ok(lf.accuracy >= 5 / 6, `accuracy ${lf.accuracy}`);
    assert.deepEqual(trl.perPair, lf.perPair);
    // Against itself every reward is 0: the pairs and images reach both models alike.
    const self = await evaluatePairwiseFile({
      model: trained,
      ref: trained,
      data: lfFile,
      maxLength: 64,
      maxPromptLength: 48,
    });
    assert.equal(self.ties, 6);
  });

  test("the dashboard reads an image run like any other", () => {
    const [run] = readRuns([join(root, "run-TRL")]);
    assert.deepEqual(run!.problems, []);
    assert.equal(run!.rows.filter((r) => "loss" in r).length, 16);
    assert.ok(run!.pairRows.length > 0, "the pair log");
  });
});

test("a text model refuses image records by name instead of dropping their images", async () => {
  const text = writeToyModel(join(root, "text-model"));
  const file = writeJsonl(join(root, "images-for-text.jsonl"), [
    { prompt: "Colour?", chosen: "Red.", rejected: "Blue.", images: ["red.png"] },
  ]);
  await assert.rejects(
    train(
      loadTrainConfig({ model_name_or_path: text, train_data_path: file, output_dir: join(root, "text-run") }).config,
    ),
    /images-for-text\.jsonl:1: field 'images': this record has images/,
  );
});

describe("image pairs with the trainer's other settings", () => {
  const short = (name: string, extra: Record<string, unknown> = {}) =>
    recipe(lfFile, name, { max_steps: 3, learning_rate: 5e-3, ...extra });
  const losses = (dir: string) => rowsOf(dir).map((r) => Number(r.loss));
  const close = (a: number[], b: number[], what: string) =>
    a.forEach((x, i) => assert.ok(Math.abs(x - b[i]!) < 1e-5, `${what}: step ${i + 1}: ${x} vs ${b[i]}`));

  test("a precomputed reference (cached with the images) and gradient checkpointing give the live run's losses", async () => {
    const live = short("live");
    await train(live);
    const cached = short("cached", { precompute_ref_log_probs: true });
    await train(cached);
    const checkpointed = short("checkpointed", { gradient_checkpointing: true });
    await train(checkpointed);
    assert.equal(losses(live.outputDir).length, 3);
    close(losses(cached.outputDir), losses(live.outputDir), "precomputed reference");
    close(losses(checkpointed.outputDir), losses(live.outputDir), "gradient checkpointing");
  });

  test("freeze_vision_tower: false trains the tower; freeze_multi_modal_projector keeps the merger", async () => {
    const config = short("tower", { freeze_vision_tower: false });
    await train(config);
    const before = loadCheckpoint(model.dir);
    const saved = loadCheckpoint(config.outputDir);
    const same = (k: string) => JSON.stringify(saved.get(k)!.toArray()) === JSON.stringify(before.get(k)!.toArray());
    const visual = [...before.keys()].filter((k) => k.startsWith("visual."));
    const merger = visual.filter((k) => k.startsWith("visual.merger."));
    assert.ok(merger.length > 0 && merger.every(same), "the projector stays");
    assert.ok(visual.filter((k) => !k.startsWith("visual.merger.") && !same(k)).length > 0, "the tower trained");
  });

  test("LoRA's default targets wrap the language model only; bf16 autocast runs the vision tower", async () => {
    const lora = short("lora", { use_peft: true, lora_r: 4, lora_alpha: 8 });
    await train(lora);
    const names = [...loadSafetensors(join(lora.outputDir, "adapter_model.safetensors")).keys()];
    assert.ok(
      names.length > 0 && names.every((n) => /\.layers\.\d+\.self_attn\.(q|v)_proj\.lora_[AB]\.weight$/.test(n)),
      names.join(),
    );
    assert.ok(names.every((n) => !n.includes("visual")));
    // The adapter directory is a vision-language model to eval (its base's config, its own processor files).
    const ev = await evaluatePairwiseFile({ model: lora.outputDir, data: lfFile, maxLength: 64, maxPromptLength: 48 });
    assert.equal(ev.pairs, 6);
    // The vision tower's LayerNorms under autocast run in float32 (bf16 activations, float32 weights).
    const bf16 = short("bf16", { bf16: true });
    await train(bf16);
    const fp32 = short("fp32", { max_steps: 1 });
    await train(fp32);
    const l = losses(bf16.outputDir);
    assert.ok(l.length === 3 && l.every(Number.isFinite), `bf16 losses ${l}`);
    assert.ok(
      Math.abs(l[0]! - losses(fp32.outputDir)[0]!) < 2e-2,
      `step 1: bf16 ${l[0]}, float32 ${losses(fp32.outputDir)}`,
    );
  });
});
