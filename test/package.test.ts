// The package's public entry point, imported by its name as a user's script would
// (Node resolves "omni-dpo" to this package through package.json's "exports").
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";

test('import { torch } from "omni-dpo" runs the README\'s examples', () => {
  const script = `
    import { torch, preferenceLoss, AutoModelForCausalLM, AutoTokenizer, generate } from "omni-dpo";
    const x = torch.tensor([1, 2, 3], { dtype: "float64", requiresGrad: true });
    const y = x.mul(x).sum(); y.backward();
    const t = (v) => torch.tensor(v, { dtype: "float64" });
    const out = preferenceLoss({ policyChosenLogps: t([-1, -2]), policyRejectedLogps: t([-3, -1]), referenceChosenLogps: t([-1.5, -2]),
      referenceRejectedLogps: t([-2.5, -1.5]), scoreChosen: t([9, 8]), scoreRejected: t([2, 5]) }, { lossType: "omni_dpo" });
    console.log(JSON.stringify({ grad: x.grad.toArray(), loss: out.loss.item(), metrics: Object.keys(out.metrics),
      api: [typeof AutoModelForCausalLM.fromPretrained, typeof AutoTokenizer.fromPretrained, typeof generate] }));`;
  const r = spawnSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  const got = JSON.parse(r.stdout.trim()) as { grad: number[]; loss: number; metrics: string[]; api: string[] };
  assert.deepEqual(got.grad, [2, 4, 6]);
  assert.ok(Number.isFinite(got.loss) && got.loss > 0);
  for (const m of ["rewards/chosen", "rewards/accuracies", "w_qual", "w_perf", "nll_gate"])
    assert.ok(got.metrics.includes(m), m);
  assert.deepEqual(got.api, ["function", "function", "function"]);
});
