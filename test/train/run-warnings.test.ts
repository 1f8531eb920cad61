// What a run says once: the chat_rendering comparison is one warning for the run (training and
// evaluation records together), not one per split.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { train } from "../../src/index.js";
import { tempDir, writeJsonl, writeToyModel } from "../helpers/toy.js";

const root = tempDir("omni-dpo-runwarn-");
after(() => rmSync(root, { recursive: true, force: true }));

test("one chat_rendering warning per run, counting training and evaluation records", async () => {
  const model = writeToyModel(join(root, "model"), { seed: 1, chatTemplate: "chatml" });
  const chat = (i: number) => ({
    prompt: [{ role: "user", content: `say ${i}` }],
    chosen: [{ role: "assistant", content: ` ${i} ${i}` }],
    rejected: [{ role: "assistant", content: " no" }],
  });
  const data = writeJsonl(join(root, "train.jsonl"), [0, 1, 2, 3].map(chat));
  const evalData = writeJsonl(join(root, "eval.jsonl"), [4, 5].map(chat));
  const warnings: string[] = [];
  await train(
    {
      model_name_or_path: model,
      dataset_mixer: { [data]: 1 },
      eval_file: evalData,
      output_dir: join(root, "run"),
      pref_loss: "dpo",
      max_steps: 1,
      per_device_train_batch_size: 2,
      max_length: 64,
      max_prompt_length: 32,
      pair_log_samples: 0,
      save_strategy: "no",
    },
    { quiet: true, onWarning: (m) => warnings.push(m) },
  );
  const rendering = warnings.filter((w) => w.startsWith("chat_rendering"));
  assert.equal(rendering.length, 1, warnings.join("\n"));
  assert.match(rendering[0], /^chat_rendering trl: 6 of 6 conversational records render differently/);
});
