// `omni-dpo bench train` runs end to end and prints both columns. The test uses the internal
// --tiny model (seconds, not minutes); OMNI_DPO_SKIP_BENCH_TESTS=1 skips it. Timings are never
// asserted, only the table's shape, that both sides ran and reported memory, and that from the same
// starting weights and tokens both compute the same loss (1e-5).
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { TrainBenchResult } from "../../../apps/bench/train.js";
import { skipUnless } from "../../helpers/requirements.js";

const CLI = fileURLToPath(new URL("../../../apps/cli.js", import.meta.url));
const skip = process.env.OMNI_DPO_SKIP_BENCH_TESTS ? "OMNI_DPO_SKIP_BENCH_TESTS is set" : false;
const noTorch = skipUnless("torch");

test("bench train --quick --tiny prints omni-dpo and PyTorch columns", { skip }, () => {
  const r = spawnSync(process.execPath, [CLI, "bench", "train", "--quick", "--tiny"], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /benchmark +unit +omni-dpo +PyTorch +vs PyTorch/);
  const row = /Omni-DPO step, seq 32 \(2 rows\) +tokens\/s +(\S+) +(\S+) +(\S+)/.exec(r.stdout);
  assert.ok(row, r.stdout);
  assert.ok(Number(row[1]) > 0);
  if (!noTorch) {
    assert.ok(Number(row[2]) > 0, r.stdout);
    assert.match(row[3], /^\d+\.\d\dx$/);
  } else {
    assert.equal(row[2], "n/a");
  }
  assert.match(r.stdout, /peak RSS during the step +MiB +\d/);
  assert.match(r.stderr, /omni-dpo: sequence 32/);
});

test("bench train --tiny --json: both sides' runs with memory", { skip }, () => {
  const r = spawnSync(process.execPath, [CLI, "bench", "train", "--tiny", "--json"], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  const j = JSON.parse(r.stdout) as TrainBenchResult;
  assert.equal(j.rows[0].unit, "tokens/s");
  assert.ok(j.rows[0].omni > 0);
  const ours = j.runs.find((x) => x.side === "omni-dpo")!;
  assert.ok(ours.seq === 32 && ours.rows === 2 && ours.step_seconds.length === 2);
  assert.ok(Number.isFinite(ours.loss) && ours.loss > 0);
  assert.ok(ours.peak_rss_bytes! > 0);
  if (!noTorch) {
    const theirs = j.runs.find((x) => x.side === "pytorch")!;
    assert.ok(theirs.tokens_per_second > 0 && theirs.peak_rss_bytes! > 0);
    // Same objective on both sides: --tiny starts both from the same weights and tokens, so the first step's loss
    // (before any update) agrees, and so does the last, after AdamW steps at lr 1e-6 (both measured equal to 1e-7).
    assert.equal(j.sharedStart, true);
    assert.ok(
      Math.abs(theirs.first_loss - ours.first_loss) < 1e-5,
      `first step: ${theirs.first_loss} vs ${ours.first_loss}`,
    );
    assert.ok(Math.abs(theirs.loss - ours.loss) < 1e-5, `last step: ${theirs.loss} vs ${ours.loss}`);
    assert.ok(j.pytorchVersion);
  }
});
