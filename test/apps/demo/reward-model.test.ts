// The rm pipeline's reward model (apps/demo/reward-model.ts): made by its recipe on a few prompts
// (the shipped one uses 1024), kept with its held-out pairs, read back, and scoring as the
// pipeline and the accuracy need: each number checked against the classifier's own scores.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { torch } from "../../../src/index.js";
import {
  makeRewardModel,
  pairwiseAccuracy,
  readRewardModel,
  RM_RECIPE,
  scoreResponses,
  scoreSamples,
} from "../../../apps/demo/reward-model.js";
import { executeJob } from "../../../apps/demo/runs.js";
import { planDemo } from "../../../apps/demo/arith.js";
import type { ScoredSamples } from "../../../src/data/build.js";
import { arithTokenizer } from "../../../apps/tasks/arith/index.js";
import { tempDir } from "../../helpers/toy.js";

torch.setNumThreads(1);

test("makeRewardModel: judge-labelled pairs, a fifth of the prompts held out, a classifier that scores", async () => {
  const dir = join(tempDir("omni-dpo-demo-rm-"), "rm");
  const plan = planDemo({ outDir: dir, pipeline: "rm" });
  const prompts = plan.rm.prompts.slice(0, 64);
  let samples: ScoredSamples | null = null;
  const info = await makeRewardModel(dir, plan.sft.dir, prompts, {
    sample: async (job) => {
      assert.equal(job.seed, RM_RECIPE.sampleSeed);
      return (samples = (await executeJob(job)) as ScoredSamples);
    },
    train: (job) => executeJob(job) as Promise<{ seconds: number }>,
  });
  for (const f of ["config.json", "model.safetensors", "rm_recipe.json", "heldout_pairs.jsonl"])
    assert.ok(existsSync(join(dir, f)), f);
  const read = readRewardModel(dir)!;
  assert.deepEqual({ ...read, heldout: undefined }, { ...info, heldout: undefined });
  assert.equal(read.heldout.length, info.heldoutPairs);
  const heldPrompts = new Set(prompts.slice(64 - Math.round(64 * RM_RECIPE.heldoutShare))); // a fifth held out
  assert.ok(
    read.heldout.every((p) => heldPrompts.has(p.prompt)),
    "held-out pairs come from the last fifth",
  );
  assert.ok(
    read.heldout.every((p) => p.score_chosen > p.score_rejected),
    "the judge's higher score is chosen",
  );
  assert.equal(readRewardModel(join(dir, "none")), null);

  const tokenizer = arithTokenizer();
  const s = samples!;
  const rewards = scoreSamples(dir, tokenizer, s);
  assert.deepEqual(
    rewards.map((r) => r.length),
    s.scored.map((x) => x.length),
  );
  const one = scoreResponses(dir, tokenizer, [{ prompt: s.prompts[3], response: s.scored[3][5].response }]);
  assert.ok(Math.abs(one[0] - rewards[3][5]) < 1e-5, "a sample's score does not depend on its batch");
  const chosen = scoreResponses(
    dir,
    tokenizer,
    read.heldout.map((p) => ({ prompt: p.prompt, response: p.chosen })),
  );
  const rejected = scoreResponses(
    dir,
    tokenizer,
    read.heldout.map((p) => ({ prompt: p.prompt, response: p.rejected })),
  );
  const wins = chosen.filter((c, i) => c > rejected[i]).length;
  assert.equal(pairwiseAccuracy(dir, tokenizer, read.heldout), wins / read.heldout.length);
});
