// Damaged or incomplete run state never restarts a run silently and never stops one that can go on:
//   - a checkpoint without omni_dpo_state.json, or with a damaged optimizer.json or missing
//     weights, is refused naming the file, before anything is trained, written or deleted;
//   - a damaged reference log-prob cache (a truncated write) is recomputed with a notice.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadTrainConfig } from "../../src/train/config.js";
import { train, type TrainHooks } from "../../src/train/trainer.js";
import { tempDir, toyPairs, writeJsonl, writeToyModel } from "../helpers/toy.js";

let root: string;
let model: string;
let data: string;
before(() => {
  root = tempDir("omni-dpo-damaged-");
  model = writeToyModel(join(root, "model"));
  data = writeJsonl(join(root, "pairs.jsonl"), toyPairs(12));
});
after(() => rmSync(root, { recursive: true, force: true }));

function recipe(outputDir: string, extra: Record<string, unknown> = {}) {
  return loadTrainConfig({
    model_name_or_path: model,
    dataset_mixer: { [data]: 1.0 },
    output_dir: join(root, outputDir),
    beta: 0.5,
    learning_rate: 1e-3,
    per_device_train_batch_size: 4,
    max_length: 48,
    max_prompt_length: 24,
    logging_steps: 1,
    seed: 3,
    max_steps: 3,
    ...extra,
  }).config;
}

const stopAfter = (n: number): TrainHooks => {
  let step = 0;
  return {
    onProgress: (s) => {
      step = s;
    },
    shouldStop: () => step >= n,
  };
};

describe("a damaged checkpoint", () => {
  it("no omni_dpo_state.json, a corrupt optimizer.json, no weights: refused naming the file", async () => {
    const damages: [string, (dir: string) => void, RegExp][] = [
      [
        "no-state",
        (d) => rmSync(join(d, "omni_dpo_state.json")),
        /checkpoint-2\/omni_dpo_state\.json is missing.*overwrite_output_dir/,
      ],
      [
        "bad-optimizer",
        (d) => truncateSync(join(d, "optimizer.json"), 7),
        /checkpoint-2\/optimizer\.json: not valid JSON/,
      ],
      [
        "no-weights",
        (d) => rmSync(join(d, "model.safetensors")),
        /checkpoint-2: the model's weights is missing \(model\.safetensors/,
      ],
      [
        "bad-state",
        (d) => writeFileSync(join(d, "omni_dpo_state.json"), '{"globalStep": "two"}'),
        /checkpoint-2\/omni_dpo_state\.json: field 'globalStep' must be a non-negative integer/,
      ],
    ];
    for (const [name, damage, message] of damages) {
      const stopped = await train(recipe(name), stopAfter(2));
      assert.equal(stopped.checkpoint, join(root, name, "checkpoint-2"));
      damage(stopped.checkpoint!);
      const metrics = readFileSync(join(root, name, "metrics.jsonl"), "utf8");
      let steps = 0;
      await assert.rejects(
        train(recipe(name), {
          onProgress: () => {
            steps++;
          },
        }),
        message,
        name,
      );
      assert.equal(steps, 0, `${name}: no step was trained`);
      const left = readdirSync(join(root, name)).filter((n) => n.startsWith("checkpoint-"));
      assert.deepEqual(left, ["checkpoint-2"], name);
      assert.equal(readFileSync(join(root, name, "metrics.jsonl"), "utf8"), metrics, `${name}: metrics unchanged`);
    }
    // overwrite_output_dir is the way out: the damaged checkpoint goes and the run starts afresh.
    const fresh = await train(recipe("no-state", { overwrite_output_dir: true }));
    assert.equal(fresh.globalStep, 3);
  });
});

describe("a damaged reference cache", () => {
  it("a truncated reference log-prob cache is recomputed with a notice naming it, to the same values", async () => {
    const first = await train(recipe("cache", { precompute_ref_log_probs: true, max_steps: 1 }));
    const cacheDir = join(first.outputDir, "ref_logps_cache");
    const [file] = readdirSync(cacheDir).filter((n) => n.endsWith(".json"));
    const whole = readFileSync(join(cacheDir, file), "utf8");
    const notices: string[] = [];
    for (const damaged of [whole.slice(0, whole.length / 2), JSON.stringify({ chosen: [1], rejected: [2] }), ""]) {
      writeFileSync(join(cacheDir, file), damaged);
      const hooks = { onStatus: (m: string) => notices.push(m), onWarning: (m: string) => notices.push(m) };
      const config = recipe("cache", { precompute_ref_log_probs: true, max_steps: 1, overwrite_output_dir: true });
      const again = await train(config, hooks);
      assert.equal(again.globalStep, 1);
      const values = JSON.parse(readFileSync(join(cacheDir, file), "utf8"));
      assert.deepEqual(values, JSON.parse(whole), "recomputed to the same values");
    }
    const recomputed = notices.filter((m) => m.includes(join(cacheDir, file)) && /damaged .*recomputing it/.test(m));
    assert.equal(recomputed.length, 3, notices.join("\n"));
  });
});
