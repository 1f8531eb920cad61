// `omni-dpo bench generate` runs end to end with both columns. The internal --tiny model keeps
// it to seconds; OMNI_DPO_SKIP_BENCH_TESTS=1 skips it. Timings are never asserted.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { GenerateBenchResult } from "../../../apps/bench/generate.js";
import { skipUnless } from "../../helpers/requirements.js";

const CLI = fileURLToPath(new URL("../../../apps/cli.js", import.meta.url));
const skip = process.env.OMNI_DPO_SKIP_BENCH_TESTS ? "OMNI_DPO_SKIP_BENCH_TESTS is set" : false;

test("bench generate --tiny --json: generated tokens/s here and in PyTorch", { skip }, () => {
  const r = spawnSync(process.execPath, [CLI, "bench", "generate", "--tiny", "--json", "--device", "cpu"], {
    encoding: "utf8",
  });
  assert.equal(r.status, 0, r.stderr);
  const j = JSON.parse(r.stdout) as GenerateBenchResult;
  assert.equal(j.rows.length, 1);
  assert.equal(j.rows[0].unit, "tokens/s");
  assert.match(j.rows[0].name, /batch 4, prompt 8, 8 new/);
  assert.ok(j.rows[0].omni > 0);
  if (skipUnless("torch")) assert.equal(j.rows[0].pytorch, null);
  else assert.ok(j.rows[0].pytorch! > 0 && j.rows[0].speedVsPytorch! > 0, r.stdout);
});
