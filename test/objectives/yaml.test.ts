// Reading reference YAMLs: a mistyped loss key is an error (never a silent default), the two
// reference trainers' defaults follow the YAML's style, and errors carry the key and option.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  torch,
  preferenceLoss,
  objectiveFromConfig,
  resolvePreferenceOptions,
  ObjectiveError,
} from "../../src/index.js";

function rejectsKey(config: Record<string, unknown>, key: string, ...parts: string[]): void {
  assert.throws(
    () => objectiveFromConfig(config),
    (e: unknown) => {
      assert.ok(e instanceof ObjectiveError, String(e));
      assert.equal(e.key, key, e.message);
      assert.ok(e.message.startsWith("objectiveFromConfig: "), e.message);
      for (const p of [key, ...parts]) assert.ok(e.message.includes(p), `${e.message} should mention ${p}`);
      return true;
    },
    JSON.stringify(config),
  );
}

test("keys that start with a loss's name but that no loss reads are errors naming the key", () => {
  rejectsKey({ pref_loss: "uni_dpo", uni_dpo_tau_goood: 3.2 }, "uni_dpo_tau_goood", "did you mean uni_dpo_tau_good?");
  rejectsKey({ loss_type: "uni_dpo", omni_dpo_x: 1 }, "omni_dpo_x", "omni_dpo");
  rejectsKey({ loss_type: "simpo", simpo_gama: 0.5 }, "simpo_gama", "did you mean simpo_gamma?");
  // Whatever loss the YAML picks: the typo would be silently ignored otherwise.
  rejectsKey({ loss_type: "sigmoid", uni_dpo_qual_eat: 0.7 }, "uni_dpo_qual_eat", "uni_dpo_qual_eta");
  rejectsKey({ loss_type: "ipo", ipo_tau: 0.1 }, "ipo_tau", "ipo");
  // Trainer keys and the reference's log-prob switch are not the objective's, and are left alone.
  const o = objectiveFromConfig({
    pref_loss: "uni_dpo",
    dpo_length_norm: true,
    learning_rate: 1e-6,
    my_custom_flag: 1,
  });
  assert.equal(o.lossType, "omni_dpo");
  // Keys another reader declares are never taken for typos.
  assert.equal(
    objectiveFromConfig({ loss_type: "simpo", simpo_warmup: 3 }, { otherKeys: ["simpo_warmup"] }).lossType,
    "simpo",
  );
});

test("a Math-style YAML (loss_type, no pref_loss) gets the Math trainer's defaults", () => {
  const omni = objectiveFromConfig({ loss_type: "uni_dpo" });
  assert.deepEqual(
    [omni.lossType, omni.beta, omni.qualEta, omni.tauRef, omni.perfGamma, omni.nllLambda, omni.tauGood],
    ["omni_dpo", 0.1, 0.7, 2.0, 3.0, 0.001, 2.5],
  );
  // Given keys win over either trainer's defaults.
  const given = objectiveFromConfig({
    loss_type: "uni_dpo",
    beta: 2.0,
    uni_dpo_nll_lambda: 0.2,
    uni_dpo_tau_good: 8.0,
  });
  assert.deepEqual([given.beta, given.qualEta, given.nllLambda, given.tauGood], [2.0, 0.7, 0.2, 8.0]);
  // SimPO: gamma_beta_ratio = simpo_gamma / beta, simpo_gamma 1.0 and beta 0.1 by default.
  const simpo = objectiveFromConfig({ loss_type: "simpo" });
  assert.deepEqual([simpo.beta, simpo.gammaBetaRatio], [0.1, 1.0 / 0.1]);
  assert.equal(objectiveFromConfig({ loss_type: "simpo", beta: 2.5 }).gammaBetaRatio, 1.0 / 2.5);
  assert.equal(objectiveFromConfig({ loss_type: "simpo", beta: 2.5, simpo_gamma: 0.5 }).gammaBetaRatio, 0.5 / 2.5);
  // The DPO family's beta is TRL's 0.1 in both trainers.
  assert.equal(objectiveFromConfig({ loss_type: "sigmoid" }).beta, 0.1);
});

test("a Textual-style YAML (pref_loss), or one naming no loss, gets the Textual trainer's UniDPOConfig defaults", () => {
  for (const yaml of [{ pref_loss: "uni_dpo" }, {}, { pref_loss: "uni_dpo", loss_type: "sigmoid" }]) {
    const o = objectiveFromConfig(yaml);
    assert.deepEqual(
      [o.lossType, o.beta, o.qualEta, o.tauRef, o.perfGamma, o.nllLambda, o.tauGood],
      ["omni_dpo", 2.0, 0.1, 0.8, 1.0, 0.01, 7.0],
      JSON.stringify(yaml),
    );
  }
  const simpo = objectiveFromConfig({ pref_loss: "simpo" });
  assert.deepEqual([simpo.beta, simpo.gammaBetaRatio, simpo.simpoForm], [2.0, 0.25, "sigmoid"]);
  // simpo_gamma is the Math trainer's key; a Textual YAML giving it still means gamma / beta.
  assert.equal(objectiveFromConfig({ pref_loss: "simpo", simpo_gamma: 1.0 }).gammaBetaRatio, 0.5);
  // From code, lossType omni_dpo keeps the Textual defaults.
  const code = resolvePreferenceOptions({ lossType: "omni_dpo" });
  assert.deepEqual(
    [code.beta, code.qualEta, code.tauRef, code.perfGamma, code.nllLambda, code.tauGood],
    [2.0, 0.1, 0.8, 1.0, 0.01, 7.0],
  );
});

test("the two styles give different losses on the same pairs", () => {
  torch.tidy(() => {
    const t = (v: number[]) => torch.tensor(v, { dtype: "float64" });
    const x = {
      policyChosenLogps: t([-1, -0.4]),
      policyRejectedLogps: t([-1.5, -2]),
      referenceChosenLogps: t([-0.9, -0.8]),
      referenceRejectedLogps: t([-1.6, -1.1]),
      scoreChosen: t([8, 9]),
      scoreRejected: t([3, 8.5]),
    };
    const math = preferenceLoss(x, objectiveFromConfig({ loss_type: "uni_dpo" })).losses.toArray() as number[];
    const explicit = preferenceLoss(x, {
      lossType: "omni_dpo",
      beta: 0.1,
      qualEta: 0.7,
      tauRef: 2,
      perfGamma: 3,
      nllLambda: 0.001,
      tauGood: 2.5,
    }).losses.toArray();
    assert.deepEqual(math, explicit);
    assert.notDeepEqual(math, preferenceLoss(x, objectiveFromConfig({ pref_loss: "uni_dpo" })).losses.toArray());
  });
});

test("errors carry the option and the YAML key, so callers need not parse messages", () => {
  assert.throws(
    () => objectiveFromConfig({ loss_type: "uni_dpo", omni_dpo_perf_gamma: -1 }),
    (e: unknown) =>
      e instanceof ObjectiveError &&
      e.option === "perfGamma" &&
      e.key === "omni_dpo_perf_gamma" &&
      e.loss === "omni_dpo" &&
      e.message === "objectiveFromConfig: option perfGamma must be >= 0, got -1 (YAML key omni_dpo_perf_gamma)",
  );
  assert.throws(
    () => objectiveFromConfig({ pref_loss: "simpo", gamma_beta_ratio: "wide" }),
    (e: unknown) => e instanceof ObjectiveError && e.key === "gamma_beta_ratio" && e.option === undefined,
  );
  assert.throws(
    () => objectiveFromConfig({ pref_loss: "uni_dpo", rpo_alpha: 1 }),
    (e: unknown) =>
      e instanceof ObjectiveError && e.key === "rpo_alpha" && e.option === "rpoAlpha" && e.loss === "omni_dpo",
  );
  assert.throws(
    () => resolvePreferenceOptions({ tauGood: NaN }),
    (e: unknown) =>
      e instanceof ObjectiveError && e.source === "preferenceLoss" && e.option === "tauGood" && e.key === undefined,
  );
  torch.tidy(() => {
    const t = (v: number[]) => torch.tensor(v, { dtype: "float64" });
    assert.throws(
      () => preferenceLoss({ policyChosenLogps: t([-1]), policyRejectedLogps: t([-2, -3]) }, { lossType: "simpo" }),
      (e: unknown) => e instanceof ObjectiveError && e.input === "policyRejectedLogps",
    );
  });
});
