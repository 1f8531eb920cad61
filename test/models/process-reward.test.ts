// The process reward model (Qwen2ForProcessRewardModel, as Qwen2.5-Math-PRM): logits [B, T, 2]
// and step rewards against an independent PyTorch implementation of the published architecture
// (test/models/reference_prm.py, reading the same checkpoint), unpadded, right- and left-padded, at
// 1e-4; loading through AutoModelForProcessRewardModel; the errors a user meets. Parity skips,
// with the reason printed, where no python with torch exists.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  AutoModelForProcessRewardModel,
  saveSequenceClassifier,
  torch,
  createSequenceClassifier,
} from "../../src/index.js";
import {
  createProcessRewardModel,
  saveProcessRewardModel,
  type ProcessRewardModel,
} from "../../src/models/process-reward.js";
import { runPythonJson } from "../../src/util/python.js";
import { once } from "../helpers/python.js";
import { skipUnless } from "../helpers/requirements.js";
import { paddedBatches, randomizeParameters } from "../helpers/batches.js";

const skip = skipUnless("torch");

torch.setNumThreads(1);
const TOL = 1e-4;
const VOCAB = 61;
const STEP = 60; // the step separator's id in these tests
const REFERENCE = fileURLToPath(new URL("../../../test/models/reference_prm.py", import.meta.url));

const root = mkdtempSync(join(tmpdir(), "omni-dpo-prm-"));
after(() => rmSync(root, { recursive: true, force: true }));

const CONFIG = {
  architectures: ["Qwen2ForProcessRewardModel"],
  model_type: "qwen2",
  vocab_size: VOCAB,
  hidden_size: 32,
  intermediate_size: 48,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  max_position_embeddings: 64,
  rms_norm_eps: 1e-6,
  hidden_act: "silu",
  rope_theta: 10000,
  pad_token_id: 0,
  tie_word_embeddings: false,
};

/** Batches whose rows hold step separators at a few places. */
function stepBatches() {
  const batches = paddedBatches([9, 6, 3], 5, VOCAB - 1, 0);
  for (const b of batches) {
    b.ids = b.ids.map((row, r) =>
      row.map((id, t) => ((t + r) % 3 === 2 && (!b.mask || b.mask[r][t] === 1) ? STEP : id)),
    );
  }
  return batches;
}

const prepared = once(() => {
  const dir = join(root, "prm");
  const model = createProcessRewardModel(CONFIG, { std: 0.2 });
  randomizeParameters(model, 11);
  saveProcessRewardModel(model, dir);
  model.dispose();
  const batches = stepBatches();
  const request = {
    cases: batches.map((b) => ({ dir, input_ids: b.ids, attention_mask: b.mask, step_token_id: STEP })),
  };
  const response = runPythonJson<{ results: { shape: number[]; values: number[]; step_rewards: number[][] }[] }>(
    REFERENCE,
    request,
    { file: true },
  );
  return { dir, batches, refs: response.results };
});

test("logits [B, T, 2] and step rewards match the PyTorch reference, padded either side", { skip }, async () => {
  const { dir, batches, refs } = prepared();
  const model: ProcessRewardModel = await AutoModelForProcessRewardModel.fromPretrained(dir);
  try {
    for (const [j, b] of batches.entries()) {
      const logits = torch.noGrad(() =>
        torch.tidy(() => {
          const out = model.forward(torch.tensor(b.ids, { dtype: "int64" }), {
            attentionMask: b.mask ? torch.tensor(b.mask, { dtype: "int64" }) : null,
          });
          return { shape: out.shape, values: Array.from(out.data() as Float32Array) };
        }),
      );
      assert.deepEqual(logits.shape, refs[j].shape);
      // padding positions hold nothing meaningful: compare the real tokens'
      const [, t] = logits.shape;
      let worst = 0;
      logits.values.forEach((v, k) => {
        const row = Math.floor(k / (t * 2));
        const pos = Math.floor(k / 2) % t;
        if (b.mask && b.mask[row][pos] === 0) return;
        worst = Math.max(worst, Math.abs(v - refs[j].values[k]));
      });
      assert.ok(worst <= TOL, `${b.kind}: max |diff| ${worst} > ${TOL}`);
    }
    // stepRewards takes the unpadded rows and batches them itself
    const rows = batches[1].ids.map((row, r) => row.filter((_, t) => batches[1].mask![r][t] === 1));
    const rewards = model.stepRewards(rows, { stepTokenId: STEP, batchSize: 2 });
    assert.equal(rewards.length, 3);
    rewards.forEach((r, i) => {
      assert.equal(r.length, refs[1].step_rewards[i].length, `row ${i}: one reward per step`);
      r.forEach((p, k) =>
        assert.ok(
          Math.abs(p - refs[1].step_rewards[i][k]) <= TOL,
          `row ${i} step ${k}: ${p} vs ${refs[1].step_rewards[i][k]}`,
        ),
      );
    });
  } finally {
    model.dispose();
  }
});

test("loading names a checkpoint that is not a process reward model", async () => {
  const dir = join(root, "classifier");
  const cls = createSequenceClassifier({ ...CONFIG, architectures: ["Qwen2ForSequenceClassification"] }, { std: 0.2 });
  saveSequenceClassifier(cls, dir);
  cls.dispose();
  await assert.rejects(
    AutoModelForProcessRewardModel.fromPretrained(dir),
    /not a process reward model.*Qwen2ForProcessRewardModel/,
  );
  const model = createProcessRewardModel(CONFIG, { std: 0.2 });
  assert.throws(() => model.stepRewards([[1, 2, VOCAB]], { stepTokenId: STEP }), /row 0, position 2: token id 61/);
  model.dispose();
});
