// `omni-dpo bench generate` runs end to end with both columns. The internal --tiny model keeps
// it to seconds; OMNI_DPO_SKIP_BENCH_TESTS=1 skips it. Timings are never asserted.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { GenerateBenchResult } from "../../../apps/bench/generate.js";
import { skipUnless } from "../../helpers/requirements.js";
import { torch } from "../../../src/index.js";

const CLI = fileURLToPath(new URL("../../../apps/cli.js", import.meta.url));
const skip = process.env.OMNI_DPO_SKIP_BENCH_TESTS ? "OMNI_DPO_SKIP_BENCH_TESTS is set" : false;

test("bench generate --tiny --json: generated tokens/s here and in PyTorch", { skip }, () => {
  const r = spawnSync(process.execPath, [CLI, "bench", "generate", "--tiny", "--json", "--device", "cpu"], {
    encoding: "utf8",
  });
  assert.equal(r.status, 0, r.stderr);
  const j = JSON.parse(r.stdout) as GenerateBenchResult;
  assert.equal(j.rows.length, 2);
  assert.equal(j.rows[0].unit, "tokens/s");
  assert.equal(j.rows[1].unit, "tokens/CPU s");
  assert.ok(j.loadAverage.every((x) => x >= 0));
  assert.match(j.rows[0].name, /batch 4, prompt 8, 8 new/);
  assert.ok(j.rows[0].omni > 0);
  // The header says whether the figures are with packed weights: on wherever the addon has oneDNN.
  assert.equal(j.packedWeights, torch.buildInfo().packedLinear);
  if (skipUnless("torch")) assert.equal(j.rows[0].pytorch, null);
  else assert.ok(j.rows[0].pytorch! > 0 && j.rows[0].speedVsPytorch! > 0, r.stdout);
});

test("bench generate --tiny --serve: the same prompts through omni-dpo serve and the openai client", { skip }, () => {
  const r = spawnSync(process.execPath, [CLI, "bench", "generate", "--tiny", "--serve", "--json", "--device", "cpu"], {
    encoding: "utf8",
    env: { ...process.env, OMP_NUM_THREADS: "1" },
  });
  assert.equal(r.status, 0, r.stderr);
  const j = JSON.parse(r.stdout) as GenerateBenchResult;
  assert.deepEqual(
    j.rows.map((x) => x.unit),
    ["tokens/s", "tokens/CPU s", "tokens/s"],
  );
  assert.match(j.rows[2].name, /serve \+ openai client/);
  // Every request answered with all the tokens asked for (the bench fails otherwise), in finite time.
  assert.ok(j.rows[2].omni > 0 && Number.isFinite(j.rows[2].omni));
});

test("bench generate --case names a shape it knows, or says which it does", () => {
  const r = spawnSync(process.execPath, [CLI, "bench", "generate", "--case", "gpt2", "--json"], { encoding: "utf8" });
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /bench generate: --case must be one of llama, qwen2, got 'gpt2'/);
});
