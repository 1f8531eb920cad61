// `omni-dpo bench train --case qwen2vl`: the Qwen2-VL step with an image per row, the trainer's
// log-prob path beside TRL's in PyTorch, end to end on the internal --tiny shape (seconds).
// Timings and memory are never asserted, only that both sides, from the same starting weights,
// tokens and pixels, compute the same loss (1e-5) and report what the table shows.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { TrainBenchResult } from "../../../apps/bench/train.js";
import { skipUnless } from "../../helpers/requirements.js";

const CLI = fileURLToPath(new URL("../../../apps/cli.js", import.meta.url));
const skip = process.env.OMNI_DPO_SKIP_BENCH_TESTS ? "OMNI_DPO_SKIP_BENCH_TESTS is set" : false;
const noTorch = skipUnless("torch");

test("bench train --case qwen2vl --tiny --json: the image step on both sides, the same loss", { skip }, () => {
  const r = spawnSync(process.execPath, [CLI, "bench", "train", "--case", "qwen2vl", "--tiny", "--json"], {
    encoding: "utf8",
  });
  assert.equal(r.status, 0, r.stderr);
  const j = JSON.parse(r.stdout) as TrainBenchResult;
  assert.match(j.rows[0].name, /Qwen2-VL-shaped, an image of 56x56 per row, seq 22 = 14 \+ 8 \(2 rows\)/);
  assert.match(j.model, /^qwen2vl: tiny Qwen2-VL-2B-shaped .*16 patches -> 4 tokens per image/);
  const ours = j.runs.find((x) => x.side === "omni-dpo")!;
  assert.ok(ours.seq === 22 && ours.step_seconds.length === 2 && ours.peak_rss_bytes! > 0);
  assert.ok(Number.isFinite(ours.loss) && ours.loss > 0);
  if (!noTorch) {
    const theirs = j.runs.find((x) => x.side === "pytorch")!;
    assert.equal(j.sharedStart, true);
    assert.ok(
      Math.abs(theirs.first_loss - ours.first_loss) < 1e-5,
      `first step: ${theirs.first_loss} vs ${ours.first_loss}`,
    );
    assert.ok(Math.abs(theirs.loss - ours.loss) < 1e-5, `last step: ${theirs.loss} vs ${ours.loss}`);
  }
});
