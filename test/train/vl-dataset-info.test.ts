// Training data named as LLaMA-Factory names it: `dataset` entries of dataset_dir/dataset_info.json
// (with a columns mapping) and media_dir for the images. A run so given trains exactly as the run
// given the same pairs as a file directly (the same losses, step for step); a missing entry or
// file is an error naming it; image_max_pixels reaches the processor (fewer image tokens).
import assert from "node:assert/strict";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, test } from "node:test";
import { loadTrainConfig } from "../../src/train/config.js";
import { MetricsSink } from "../../src/train/metrics.js";
import { prepareData, train } from "../../src/train/trainer.js";
import { visionOf } from "../../src/train/vision.js";
import type { ImageTokenizedPair } from "../../src/data/image-tokenize.js";
import { tempDir, writeToyModel } from "../helpers/toy.js";
import { writeColourPairs, writeTinyQwen2VL } from "../helpers/qwen2-vl.js";

const root = tempDir("omni-dpo-vl-dataset-info-");
const model = writeTinyQwen2VL(5);
after(() => {
  rmSync(root, { recursive: true, force: true });
  rmSync(model.dir, { recursive: true, force: true });
});
// The pairs in LLaMA-Factory's format beside their images (root), and the same pairs with renamed
// columns in a data folder of their own, described by its dataset_info.json.
const { lfFile } = writeColourPairs(root);
const dataDir = join(root, "lf-data");
mkdirSync(dataDir);
const renamed = readFileSync(lfFile, "utf8")
  .trim()
  .split("\n")
  .map((line) => {
    const r = JSON.parse(line) as Record<string, unknown>;
    return JSON.stringify({ question: r.instruction, good: r.chosen, bad: r.rejected, pictures: r.images });
  });
writeFileSync(join(dataDir, "colours.jsonl"), renamed.join("\n") + "\n");
writeFileSync(
  join(dataDir, "dataset_info.json"),
  JSON.stringify({
    colour_pairs: {
      file_name: "colours.jsonl",
      ranking: true,
      columns: { prompt: "question", chosen: "good", rejected: "bad", images: "pictures" },
    },
  }),
);

function recipe(data: Record<string, unknown>, outputDir: string) {
  return loadTrainConfig({
    model_name_or_path: model.dir,
    output_dir: join(root, outputDir),
    pref_loss: "dpo",
    pref_beta: 0.5,
    learning_rate: 1e-3,
    lr_scheduler_type: "constant",
    max_steps: 3,
    per_device_train_batch_size: 2,
    logging_steps: 1,
    max_length: 64,
    max_prompt_length: 48,
    save_strategy: "no",
    seed: 4,
    ...data,
  }).config;
}

const losses = (dir: string) =>
  MetricsSink.read(join(dir, "metrics.jsonl"))
    .filter((r) => "loss" in r)
    .map((r) => Number(r.loss));

test("a run from a dataset_info.json entry (columns, media_dir) equals the run from the file itself", async () => {
  const direct = recipe({ dataset_mixer: lfFile }, "direct");
  const named = recipe({ dataset: "colour_pairs", dataset_dir: dataDir, media_dir: root }, "named");
  await train(direct);
  await train(named);
  const [a, b] = [losses(direct.outputDir), losses(named.outputDir)];
  assert.equal(a.length, 3);
  assert.deepEqual(b, a);
});

test("dataset: a missing entry, dataset_info.json or file is named; images are sought under media_dir", async () => {
  assert.throws(
    () => recipe({ dataset: "colour_pairs, nope", dataset_dir: dataDir }, "x"),
    /key 'dataset': .*dataset_info\.json: no data set named 'nope' \(it has: colour_pairs\)/,
  );
  assert.throws(() => recipe({ dataset: "colour_pairs", dataset_dir: join(root, "none") }, "x"), /dataset_info\.json/);
  const broken = join(root, "broken");
  mkdirSync(broken);
  writeFileSync(
    join(broken, "dataset_info.json"),
    JSON.stringify({ gone: { file_name: "gone.jsonl", ranking: true } }),
  );
  assert.throws(
    () => recipe({ dataset: "gone", dataset_dir: broken }, "x"),
    /'gone': field 'file_name': .*gone\.jsonl: file not found/,
  );
  // A text model: dataset_info.json entries describe image pairs here, so `dataset` is refused by name.
  const text = writeToyModel(join(root, "text-model"));
  const textRun = { model_name_or_path: text, dataset: "colour_pairs", dataset_dir: dataDir, media_dir: root };
  await assert.rejects(prepareData(recipe(textRun, "x")), /key 'dataset': .*takes no images/);
  // media_dir left out: LLaMA-Factory's default, dataset_dir, where these images are not.
  await assert.rejects(
    prepareData(recipe({ dataset: "colour_pairs", dataset_dir: dataDir }, "x")),
    /lf-data[/\\]red\.png/,
  );
});

test("a vision-language run says how its pairs are cut: max_prompt_length and truncation_mode are text-only", async () => {
  const said: string[] = [];
  await prepareData(recipe({ dataset_mixer: lfFile }, "x"), (m) => said.push(m));
  assert.ok(
    said.includes(
      "image pairs are cut at max_length (64 tokens) by LLaMA-Factory's rule, the answer kept first; " +
        "max_prompt_length and truncation_mode apply to text pairs only",
    ),
    said.join("\n"),
  );
});

test("image_max_pixels and image_min_pixels reach the processor", async () => {
  const tokens = async (extra: Record<string, unknown>) => {
    const data = await prepareData(recipe({ dataset_mixer: lfFile, ...extra }, "x"));
    return (data.train[0] as ImageTokenizedPair).imageTokens;
  };
  // 56x56 images: 4 merged tokens as they are; scaled up to 84x84 (9) or 112x112 (16) by image_min_pixels.
  assert.equal(await tokens({}), 4);
  assert.equal(await tokens({ image_min_pixels: 84 * 84 }), 9);
  assert.equal(await tokens({ image_min_pixels: 112 * 112 }), 16);
  // These images are too small for image_max_pixels to act on here (the processor's own min_pixels
  // scales them back up): that it reaches the tokenizer's options is what can be checked.
  const vision = visionOf(recipe({ dataset_mixer: lfFile, image_max_pixels: 5000 }, "x"))!;
  assert.equal(vision.options.imageMaxPixels, 5000);
  assert.throws(() => recipe({ dataset_mixer: lfFile, image_max_pixels: 100 }, "x"), /image_max_pixels/);
});
