// Loss names and options in code: TRL's names work as in a YAML (lossType: "sigmoid" is dpo),
// a wrong name or option is a compile error (the expect-error lines below fail the build when it
// is not) and at run time an error suggesting the nearest; sigmoid_norm takes per-token mean
// log-probs without token counts, as ipo does.
import { test } from "node:test";
import assert from "node:assert/strict";
import { preferenceLoss, torch } from "../../src/index.js";

const f64 = (v: number[]) => torch.tensor(v, { dtype: "float64" });
const inputs = () => ({
  policyChosenLogps: f64([-1, -0.4]),
  policyRejectedLogps: f64([-1.5, -2]),
  referenceChosenLogps: f64([-0.9, -0.8]),
  referenceRejectedLogps: f64([-1.6, -1.1]),
});

test("TRL's loss_type names work in code: sigmoid is dpo", () => {
  const trl = preferenceLoss(inputs(), { lossType: "sigmoid", beta: 0.1 }).loss.item();
  const dpo = preferenceLoss(inputs(), { lossType: "dpo", beta: 0.1 }).loss.item();
  assert.equal(trl, dpo);
  assert.equal(
    preferenceLoss(inputs(), { lossType: "uni_dpo", useQualityWeight: false, nllLambda: 0 }).loss.item(),
    preferenceLoss(inputs(), { lossType: "omni_dpo", useQualityWeight: false, nllLambda: 0 }).loss.item(),
  );
});

test("a misspelt loss name or option does not compile, and at run time suggests the nearest", () => {
  // @ts-expect-error not a loss
  assert.throws(() => preferenceLoss(inputs(), { lossType: "dpoo" }), /got "dpoo" \(did you mean 'dpo'\?\)/);
  const misspelt = /unknown option 'qualEtaa' \(did you mean 'qualEta'\?\)/;
  // @ts-expect-error not an option
  assert.throws(() => preferenceLoss(inputs(), { lossType: "omni_dpo", qualEtaa: 1 }), misspelt);
  // @ts-expect-error a value of the wrong type
  assert.throws(() => preferenceLoss(inputs(), { lossType: "dpo", beta: "0.1" }), /beta/);
});

test("sigmoid_norm without token counts takes the log-probs as per-token means: -log sigmoid(beta * margin)", () => {
  const beta = 0.5;
  const out = preferenceLoss(inputs(), { lossType: "sigmoid_norm", beta }).losses.toArray() as number[];
  // margins: (-1 + 0.9) - (-1.5 + 1.6) = -0.2; (-0.4 + 0.8) - (-2 + 1.1) = 1.3
  const expected = [-0.2, 1.3].map((m) => Math.log1p(Math.exp(-beta * m)));
  out.forEach((v, i) => assert.ok(Math.abs(v - expected[i]) < 1e-12, `${v} vs ${expected[i]}`));
});
