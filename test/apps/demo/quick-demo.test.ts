// The quick demo's promise, on the real thing: `omni-dpo demo --quick --json` (all three
// pipelines) prints the JSON; in the math and text pipelines every method, RFT included,
// beats the SFT start beyond noise (its difference's 95% interval above 0), and at 4x DPO's
// learning rate Omni-DPO keeps more held-out accuracy than DPO, the README's robustness finding.
// That ordering held in every run measured (the quick demo: math 36.8% vs 32.9%, text 22.3% vs
// 14.3%, and each pair seed alike; the full demo, and math at --quick --prompts 512 --seed 5, in
// the README), and the demo is deterministic, so it is a fixed check here. The rm pipeline (a
// weak learned reward model, README) makes no such promise: its numbers are reported as they
// fall, so here it must run and report its reward model's measures. It takes minutes (214 s in
// CI before the rm pipeline, 88 s on an idle two-core machine; the rm pipeline adds 27 runs to
// 72), so it is not in the suite: .ci/run runs it with OMNI_DPO_TEST_DEMO=1 after the suite.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { packageRoot } from "../../../src/util/package-root.js";
import { tempDir } from "../../helpers/toy.js";
import { assertPipelineShape, type PipelineJson } from "./json-shape.js";

type RmPipelineJson = PipelineJson & {
  reward_model: {
    heldout_accuracy: number;
    per_pair_seed: { judge: { backwards: number } }[];
    w_qual: { p10: number; p90: number };
  };
};

const enabled = process.env.OMNI_DPO_TEST_DEMO === "1";
if (!enabled) console.log("# skipping the quick demo: set OMNI_DPO_TEST_DEMO=1 (CI does) to run it (minutes)");

const name =
  "omni-dpo demo --quick: all three pipelines; in math and text every method beats the start beyond noise, and " +
  "Omni-DPO degrades less than DPO at 4x its lr; the rm pipeline reports its reward model";
test(name, { skip: enabled ? undefined : "OMNI_DPO_TEST_DEMO is not 1" }, () => {
  const start = Date.now();
  const r = spawnSync(
    process.execPath,
    [
      join(packageRoot(), "dist", "apps", "cli.js"),
      "demo",
      "--quick",
      "--json",
      "--out",
      tempDir("omni-dpo-quick-demo-"),
    ],
    { encoding: "utf8", timeout: 900_000 },
  );
  assert.equal(r.status, 0, r.stderr);
  const json = JSON.parse(r.stdout.trim()) as { pipelines: RmPipelineJson[]; wall_seconds: number };
  assert.deepEqual(
    json.pipelines.map((p) => p.pipeline),
    ["math", "text", "rm"],
  );
  for (const p of json.pipelines) {
    assertPipelineShape(p, 2);
    if (p.pipeline === "rm") {
      // Its numbers are reported as they fall (README); here, that they are all there and sane.
      const rm = p.reward_model;
      assert.ok(rm.heldout_accuracy >= 0 && rm.heldout_accuracy <= 1, `held-out accuracy ${rm.heldout_accuracy}`);
      assert.equal(rm.per_pair_seed.length, 2);
      for (const s of rm.per_pair_seed) assert.ok(s.judge.backwards >= 0 && s.judge.backwards <= 1);
      assert.ok(rm.w_qual.p10 >= 0.5 && rm.w_qual.p90 < 1, "w_qual of pairs the reward model orders");
      continue;
    }
    for (const name of ["rft", "dpo", "simpo", "omni_dpo"]) {
      const c = p.comparisons.find((x) => x.a === name && x.b === "sft")!;
      assert.ok(
        c.ci95[0] > 0,
        `${p.pipeline}: ${name} - SFT = ${c.mean_diff} [${c.ci95}]: every method must beat the start beyond noise`,
      );
    }
    const at4x = (method: string) => p.lr_sweep.find((s) => s.name === method && s.lr_multiple === 4)!.heldout_accuracy;
    assert.ok(
      at4x("omni_dpo") > at4x("dpo"),
      `${p.pipeline} at 4x DPO's lr: Omni-DPO ${at4x("omni_dpo")}, DPO ${at4x("dpo")}`,
    );
  }
  console.log(
    `# quick demo: ${json.wall_seconds.toFixed(0)} s of demo, ${((Date.now() - start) / 1000).toFixed(0)} s in all`,
  );
});
