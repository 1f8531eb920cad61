// The quick demo's promise, on the real thing: `omni-dpo demo --quick --json` (both pipelines)
// prints the JSON, and preference learning beats the SFT start beyond noise in each
// pipeline (DPO - SFT's 95% interval above 0). About 1.5 minutes on two cores, so it is not in
// the suite: .ci/run runs it with OMNI_DPO_TEST_DEMO=1 after the suite.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { packageRoot } from "../../../src/util/package-root.js";
import { tempDir } from "../../helpers/toy.js";
import { assertPipelineShape, type PipelineJson } from "./json-shape.js";

const enabled = process.env.OMNI_DPO_TEST_DEMO === "1";
if (!enabled) console.log("# skipping the quick demo: set OMNI_DPO_TEST_DEMO=1 (CI does) to run it (about 1.5 minutes)");

test("omni-dpo demo --quick: both pipelines, and preference learning beats the start beyond noise in each", { skip: enabled ? undefined : "OMNI_DPO_TEST_DEMO is not 1" }, () => {
  const start = Date.now();
  const r = spawnSync(process.execPath, [join(packageRoot(), "dist", "apps", "cli.js"), "demo", "--quick", "--json", "--out", tempDir("omni-dpo-quick-demo-")],
    { encoding: "utf8", timeout: 900_000 });
  assert.equal(r.status, 0, r.stderr);
  const json = JSON.parse(r.stdout.trim()) as { pipelines: PipelineJson[]; wall_seconds: number };
  assert.deepEqual(json.pipelines.map((p) => p.pipeline), ["math", "text"]);
  for (const p of json.pipelines) {
    assertPipelineShape(p, 2);
    for (const name of ["dpo", "simpo", "omni_dpo"]) {
      const c = p.comparisons.find((x) => x.a === name && x.b === "sft")!;
      assert.ok(c.ci95[0] > 0, `${p.pipeline}: ${name} - SFT = ${c.mean_diff} [${c.ci95}]: preference learning must beat the start beyond noise`);
    }
  }
  console.log(`# quick demo: ${json.wall_seconds.toFixed(0)} s of demo, ${((Date.now() - start) / 1000).toFixed(0)} s in all`);
});
