// The demo's worker pool (apps/demo/runs.ts): a job that fails stops the demo with the job's name
// and the worker's own error, and fails every job queued behind it instead of hanging.
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { JobPool, type TrainJob } from "../../../apps/demo/runs.js";
import { tempDir } from "../../helpers/toy.js";

test("JobPool: a failing job names itself and the cause; the jobs behind it fail with the same error", async () => {
  const dir = tempDir("omni-dpo-pool-");
  const missing = join(dir, "no-such-model"); // never reached: the missing pair file is the first error
  const job = (id: string): TrainJob => ({
    kind: "train",
    id,
    evaluate: [],
    keepLogs: false,
    recipe: {
      model_name_or_path: missing,
      dataset_mixer: { [join(dir, "pairs.jsonl")]: 1.0 },
      output_dir: join(dir, id),
      report_to: "none",
    },
  });
  const pool = new JobPool(1);
  try {
    const first = pool.run(job("math/dpo/first"));
    const second = pool.run(job("math/dpo/second"));
    await assert.rejects(
      first,
      (e: Error) =>
        /demo job math\/dpo\/first failed/.test(e.message) && e.message.includes("pairs.jsonl: file not found"),
    );
    await assert.rejects(second, /demo job math\/dpo\/first failed/);
    await assert.rejects(
      pool.run(job("later")),
      /demo job math\/dpo\/first failed/,
      "a failed pool takes no more work",
    );
  } finally {
    pool.close();
  }
});
