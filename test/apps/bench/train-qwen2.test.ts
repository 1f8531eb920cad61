// `omni-dpo bench train --case qwen2`: the trainer's checkpointed, chunked path beside TRL's in
// PyTorch runs end to end (on the internal --tiny shape, seconds). Timings and memory are
// never asserted, only that both sides, from the same starting weights and tokens, compute the same loss
// (1e-5) and report what the table shows.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { TrainBenchResult } from "../../../apps/bench/train.js";
import { skipUnless } from "../../helpers/requirements.js";

const CLI = fileURLToPath(new URL("../../../apps/cli.js", import.meta.url));
const skip = process.env.OMNI_DPO_SKIP_BENCH_TESTS ? "OMNI_DPO_SKIP_BENCH_TESTS is set" : false;
const noTorch = skipUnless("torch");

test("bench train --case qwen2 --tiny --json: the checkpointed step on both sides", { skip }, () => {
  const r = spawnSync(process.execPath, [CLI, "bench", "train", "--case", "qwen2", "--tiny", "--json"], {
    encoding: "utf8",
  });
  assert.equal(r.status, 0, r.stderr);
  const j = JSON.parse(r.stdout) as TrainBenchResult;
  assert.match(j.rows[0].name, /Qwen2-shaped, checkpointed, seq 32 = 24 \+ 8 \(2 rows\)/);
  assert.equal(j.rows[0].unit, "tokens/s");
  assert.match(j.model, /^qwen2: tiny Qwen2-shaped/);
  const ours = j.runs.find((x) => x.side === "omni-dpo")!;
  assert.ok(ours.seq === 32 && ours.step_seconds.length === 2 && ours.peak_rss_bytes! > 0);
  assert.ok(Number.isFinite(ours.loss) && ours.loss > 0);
  if (!noTorch) {
    const theirs = j.runs.find((x) => x.side === "pytorch")!;
    // The same starting weights and tokens on both sides (--tiny): the same loss before any update and after
    // the AdamW steps (measured 3.7e-7 and 3.1e-7 apart: the chunked path against full logits).
    assert.equal(j.sharedStart, true);
    assert.ok(
      Math.abs(theirs.first_loss - ours.first_loss) < 1e-5,
      `first step: ${theirs.first_loss} vs ${ours.first_loss}`,
    );
    assert.ok(Math.abs(theirs.loss - ours.loss) < 1e-5, `last step: ${theirs.loss} vs ${ours.loss}`);
  }
});

test(
  "bench train --case qwen2,lora --tiny --json: LoRA beside the full fine-tune, the reference being the adapters off",
  { skip },
  () => {
    const r = spawnSync(process.execPath, [CLI, "bench", "train", "--case", "qwen2,lora", "--tiny", "--json"], {
      encoding: "utf8",
    });
    assert.equal(r.status, 0, r.stderr);
    const j = JSON.parse(r.stdout) as TrainBenchResult;
    const ours = j.runs.filter((x) => x.side === "omni-dpo");
    assert.deepEqual(
      ours.map((x) => x.lora),
      [false, true],
    );
    const [full, lora] = ours;
    // B starts at zero, so the adapted policy equals its reference as the fresh copy does, on the same base weights:
    // the same first loss. Both train, so the losses after the warm-up step stay close but need not be equal.
    assert.ok(
      Math.abs(lora.first_loss - full.first_loss) < 1e-6,
      `first step: ${lora.first_loss} vs ${full.first_loss}`,
    );
    assert.ok(Number.isFinite(lora.loss) && Math.abs(lora.loss - full.loss) < 0.05, `${lora.loss} vs ${full.loss}`);
    assert.ok(j.rows.some((x) => /^Omni-DPO step, LoRA r 16 all-linear, Qwen2-shaped/.test(x.name)));
    const versus = j.rows.find((x) => x.name === "LoRA step vs the full fine-tune (both omni-dpo)")!;
    assert.equal(versus.omni, lora.tokens_per_second);
    assert.equal(versus.pytorch, full.tokens_per_second);
    if (!noTorch) {
      const theirs = j.runs.filter((x) => x.side === "pytorch");
      assert.equal(theirs.length, 2);
      // The same base weights and tokens; only the random A matrices differ, which B = 0 hides before the first update.
      assert.ok(
        Math.abs(theirs[1].first_loss - lora.first_loss) < 1e-5,
        `PyTorch LoRA ${theirs[1].first_loss} vs omni-dpo ${lora.first_loss}`,
      );
    }
  },
);

test("bench train --case with an unknown name is a usage error naming the cases", { skip }, () => {
  const r = spawnSync(process.execPath, [CLI, "bench", "train", "--case", "llama", "--tiny"], { encoding: "utf8" });
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /unknown --case 'llama'; available: gpt2, qwen2, lora/);
});
