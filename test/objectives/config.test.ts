// objectiveFromConfig: the reference YAMLs (as parsed objects) to preferenceLoss options.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  torch,
  preferenceLoss,
  objectiveFromConfig,
  resolvePreferenceOptions,
  type PreferenceLossOptions,
} from "../../src/index.js";

/** What objectiveFromConfig should give: `options` with every default filled in. */
const expect = (options: PreferenceLossOptions) => resolvePreferenceOptions(options);

test("the reference's text YAML (Qwen2.5-0.5B): pref_loss uni_dpo with its uni_dpo_* keys", () => {
  const yaml = {
    model_name_or_path: "Qwen/Qwen2.5-0.5B",
    learning_rate: 2.0e-6,
    pref_loss: "uni_dpo",
    beta: 3.5,
    uni_dpo_qual_eta: 0.7,
    uni_dpo_tau_ref: 0.8,
    uni_dpo_perf_gamma: 3.0,
    uni_dpo_nll_lambda: 0.001,
    uni_dpo_tau_good: 3.2,
    use_ref_model: true,
    dpo_length_norm: true,
    seed: 42,
    warmup_ratio: 0.1,
    max_length: 2048,
    max_prompt_length: 1800,
    dataset_mixer: { "some/path": 1.0 },
  };
  assert.deepEqual(
    objectiveFromConfig(yaml),
    expect({
      lossType: "omni_dpo",
      beta: 3.5,
      qualEta: 0.7,
      tauRef: 0.8,
      perfGamma: 3,
      nllLambda: 0.001,
      tauGood: 3.2,
    }),
  );
});

test("the reference's math YAML: loss_type uni_dpo", () => {
  const yaml = {
    loss_type: "uni_dpo",
    beta: 2.0,
    uni_dpo_qual_eta: 0.7,
    uni_dpo_tau_ref: 2.0,
    uni_dpo_perf_gamma: 3.0,
    uni_dpo_nll_lambda: 0.2,
    uni_dpo_tau_good: 8.0,
    dpo_length_norm: true,
    learning_rate: 1.0e-6,
  };
  assert.deepEqual(
    objectiveFromConfig(yaml),
    expect({ lossType: "omni_dpo", beta: 2, qualEta: 0.7, tauRef: 2, perfGamma: 3, nllLambda: 0.2, tauGood: 8 }),
  );
});

test("omni_dpo spellings, defaults, ablation keys, numeric strings", () => {
  assert.deepEqual(objectiveFromConfig({}), expect({}));
  assert.deepEqual(objectiveFromConfig({ pref_loss: "omni_dpo", omni_dpo_qual_eta: 0.5 }), expect({ qualEta: 0.5 }));
  // loss_type without pref_loss is a Math-style YAML: the Math trainer's defaults fill the rest.
  assert.deepEqual(
    objectiveFromConfig({ loss_type: "Omni-DPO", uni_dpo_tau_good: "3.2", beta: "1e1" }),
    expect({ tauGood: 3.2, beta: 10, qualEta: 0.7, tauRef: 2, perfGamma: 3, nllLambda: 0.001 }),
  );
  assert.deepEqual(
    objectiveFromConfig({ pref_loss: "uni_dpo", uni_dpo_qual_eta: 0.7, omni_dpo_qual_eta: 0.7 }),
    expect({ qualEta: 0.7 }),
  );
  assert.deepEqual(
    objectiveFromConfig({
      pref_loss: "uni_dpo",
      uni_dpo_use_qual_weight: false,
      omni_dpo_use_perf_weight: "false",
      uni_dpo_detach_perf_weight: true,
    }),
    expect({ useQualityWeight: false, usePerformanceWeight: false, detachPerformanceWeight: true }),
  );
  // The reference runs c-NLL only when lambda > 0.
  assert.equal(objectiveFromConfig({ pref_loss: "uni_dpo", uni_dpo_nll_lambda: 0 }).nllLambda, 0);
  assert.equal(objectiveFromConfig({ pref_loss: "uni_dpo", uni_dpo_nll_lambda: -1 }).nllLambda, 0);
  // With pref_loss: uni_dpo, loss_type (SimPO's form) does not change the loss.
  assert.equal(objectiveFromConfig({ pref_loss: "uni_dpo", loss_type: "hinge" }).lossType, "omni_dpo");
});

test("SimPO: pref_loss simpo with loss_type sigmoid or hinge, gamma_beta_ratio, label_smoothing; math-style loss_type simpo", () => {
  assert.deepEqual(objectiveFromConfig({ pref_loss: "simpo" }), expect({ lossType: "simpo" }));
  assert.deepEqual(
    objectiveFromConfig({
      pref_loss: "simpo",
      loss_type: "sigmoid",
      beta: 2.5,
      gamma_beta_ratio: 0.55,
      label_smoothing: 0.1,
    }),
    expect({ lossType: "simpo", simpoForm: "sigmoid", beta: 2.5, gammaBetaRatio: 0.55, labelSmoothing: 0.1 }),
  );
  assert.deepEqual(
    objectiveFromConfig({ pref_loss: "simpo", loss_type: "hinge", beta: 10 }),
    expect({ lossType: "simpo", simpoForm: "hinge", beta: 10 }),
  );
  // Math reference: gamma_beta_ratio = simpo_gamma / beta; its SimPO ignores label_smoothing.
  assert.deepEqual(
    objectiveFromConfig({ loss_type: "simpo", beta: 2, simpo_gamma: 1, label_smoothing: 0.2 }),
    expect({ lossType: "simpo", beta: 2, gammaBetaRatio: 0.5 }),
  );
});

test("TRL's DPO losses under loss_type (no pref_loss), and rpo_alpha", () => {
  assert.deepEqual(objectiveFromConfig({ loss_type: "sigmoid", beta: 0.1 }), expect({ lossType: "dpo", beta: 0.1 }));
  assert.deepEqual(objectiveFromConfig({ loss_type: "dpo" }), expect({ lossType: "dpo" }));
  assert.deepEqual(objectiveFromConfig({ loss_type: "sigmoid", label_smoothing: 0 }), expect({ lossType: "dpo" }));
  // Since TRL v0.29 label smoothing does not change sigmoid (it was cDPO up to v0.28); cDPO has its
  // own name, and a Textual-style pref_loss: dpo smooths as the Textual trainer does. TRL's robust is rDPO.
  assert.deepEqual(objectiveFromConfig({ loss_type: "sigmoid", label_smoothing: 0.1 }), expect({ lossType: "dpo" }));
  assert.deepEqual(
    objectiveFromConfig({ pref_loss: "dpo", label_smoothing: 0.1 }),
    expect({ lossType: "robust", robustVariant: "cdpo", labelSmoothing: 0.1 }),
  );
  assert.deepEqual(
    objectiveFromConfig({ pref_loss: "cdpo", label_smoothing: 0.1 }),
    expect({ lossType: "robust", robustVariant: "cdpo", labelSmoothing: 0.1 }),
  );
  assert.deepEqual(
    objectiveFromConfig({ loss_type: "robust", label_smoothing: 0.2 }),
    expect({ lossType: "robust", robustVariant: "rdpo", labelSmoothing: 0.2 }),
  );
  assert.deepEqual(
    objectiveFromConfig({ loss_type: "cdpo", label_smoothing: 0.2 }),
    expect({ lossType: "robust", robustVariant: "cdpo", labelSmoothing: 0.2 }),
  );
  assert.deepEqual(objectiveFromConfig({ loss_type: "ipo", beta: 0.5 }), expect({ lossType: "ipo", beta: 0.5 }));
  // Without pref_loss, hinge is DPO's hinge (SLiC), not SimPO's.
  assert.deepEqual(objectiveFromConfig({ loss_type: "hinge", beta: 2 }), expect({ lossType: "hinge", beta: 2 }));
  assert.deepEqual(
    objectiveFromConfig({ loss_type: "sigmoid", rpo_alpha: 1.0 }),
    expect({ lossType: "rpo", rpoAlpha: 1 }),
  );
  assert.deepEqual(objectiveFromConfig({ loss_type: "sigmoid", rpo_alpha: null }), expect({ lossType: "dpo" }));
  assert.deepEqual(
    objectiveFromConfig({ loss_type: "rpo", rpo_alpha: 0.5, beta: 0.2 }),
    expect({ lossType: "rpo", rpoAlpha: 0.5, beta: 0.2 }),
  );
  // TRL's other loss types, its f-divergences, its list form; DPOP and ORPO.
  assert.deepEqual(
    objectiveFromConfig({ loss_type: "exo_pair", label_smoothing: 1e-3, f_divergence_type: "js_divergence" }),
    expect({ lossType: "exo_pair", labelSmoothing: 1e-3, fDivergenceType: "js_divergence" }),
  );
  assert.deepEqual(
    objectiveFromConfig({
      loss_type: "discopop",
      discopop_tau: 0.1,
      f_divergence_type: "alpha_divergence",
      f_alpha_divergence_coef: 0.3,
    }),
    expect({ lossType: "discopop", discopopTau: 0.1, fDivergenceType: "alpha_divergence", fAlphaDivergenceCoef: 0.3 }),
  );
  assert.deepEqual(
    objectiveFromConfig({ loss_type: ["sigmoid", "bco_pair", "sft"], loss_weights: [0.8, 0.2, 1.0] }),
    expect({ lossType: "combined", lossTypes: "sigmoid,bco_pair,sft", lossWeights: "0.8,0.2,1" }),
  );
  assert.deepEqual(
    objectiveFromConfig({ loss_type: ["sigmoid", "robust"], label_smoothing: 0.1, beta: 0.2 }),
    expect({ lossType: "combined", lossTypes: "sigmoid,robust", labelSmoothing: 0.1, beta: 0.2 }),
  );
  assert.deepEqual(
    objectiveFromConfig({ loss_type: "apo_zero", loss_weights: [2] }),
    expect({ lossType: "combined", lossTypes: "apo_zero", lossWeights: "2" }),
  );
  assert.deepEqual(
    objectiveFromConfig({ loss_type: "dpo_positive", uni_dpo_nll_lambda: 50, label_smoothing: 0.1 }),
    expect({ lossType: "dpop", nllLambda: 50, labelSmoothing: 0.1 }),
  );
  assert.deepEqual(objectiveFromConfig({ loss_type: "dpo_positive" }), expect({ lossType: "dpop", nllLambda: 0.001 })); // the Math trainer's default
  assert.deepEqual(objectiveFromConfig({ loss_type: "orpo", beta: 0.25 }), expect({ lossType: "orpo", beta: 0.25 }));
  assert.deepEqual(
    objectiveFromConfig({ pref_loss: "simpo", sft_weight: 0.5 }),
    expect({ lossType: "simpo", sftWeight: 0.5 }),
  );
  // This project's names work under pref_loss too.
  assert.deepEqual(objectiveFromConfig({ pref_loss: "ipo" }), expect({ lossType: "ipo" }));
});

test("the options it returns drive preferenceLoss", () => {
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
    const yaml = {
      pref_loss: "uni_dpo",
      beta: 3.5,
      uni_dpo_qual_eta: 0.7,
      uni_dpo_perf_gamma: 3,
      uni_dpo_tau_good: 3.2,
    };
    const a = preferenceLoss(x, objectiveFromConfig(yaml)).losses.toArray();
    const b = preferenceLoss(x, {
      lossType: "omni_dpo",
      beta: 3.5,
      qualEta: 0.7,
      perfGamma: 3,
      tauGood: 3.2,
    }).losses.toArray();
    assert.deepEqual(a, b);
  });
});

test("config errors name the key", () => {
  const bad: [Record<string, unknown>, string[]][] = [
    [{ pref_loss: "kto" }, ["unknown pref_loss", "kto"]],
    [{ loss_type: "kto_pair" }, ["loss_type", "kto_pair", "not supported"]],
    [{ loss_type: ["sigmoid", "orpo"] }, ["loss_type", "orpo cannot be a term", "sft"]],
    [
      { loss_type: ["sigmoid", "sft"], loss_weights: [1] },
      ["lossWeights must be 2 finite numbers", "YAML key loss_weights"],
    ],
    [
      { loss_type: ["sigmoid", "sft"], loss_weights: [1, "x"] },
      ["lossWeights must be 2 finite numbers", "YAML key loss_weights"],
    ],
    [{ loss_type: ["sigmoid", { a: 1 }] }, ["loss_type[1] must be a name"]],
    [{ loss_type: "uni_dpo", loss_weights: [1] }, ["uni_dpo cannot be a term"]],
    [{ pref_loss: "uni_dpo", loss_weights: [1] }, ["loss_weights is an option of combined only"]],
    [{ loss_type: "exo_pair" }, ["labelSmoothing must be in (0, 1) for exo_pair", "YAML key label_smoothing"]],
    [{ loss_type: ["sigmoid", "exo_pair"] }, ["exo_pair term", "YAML key label_smoothing"]],
    [{ loss_type: "sigmoid", f_divergence_type: "kl" }, ["f_divergence_type must be one of reverse_kl"]],
    [{ loss_type: "uni_dpo", use_weighting: true }, ["use_weighting is an option of", "not of loss omni_dpo"]],
    [{ loss_type: "dpo_positive", ld_alpha: 0.5 }, ["ld_alpha is an option of", "not of loss dpop"]],
    [{ loss_type: "sigmoid", ld_alpha: 1.5 }, ["ldAlpha must be in [0, 1]", "YAML key ld_alpha"]],
    [{ loss_type: "aot", use_weighting: true }, ["useWeighting cannot be used with aot", "YAML key use_weighting"]],
    [{ pref_loss: "simpo", loss_type: "ipo" }, ["loss_type is SimPO's form", "sigmoid or hinge"]],
    [{ pref_loss: "uni_dpo", rpo_alpha: 1 }, ["rpo_alpha", "omni_dpo"]],
    [{ pref_loss: "dpo", label_smoothing: 0.1, rpo_alpha: 1 }, ["rpo_alpha", "label_smoothing"]],
    [{ loss_type: "rpo" }, ["rpoAlpha"]],
    [
      { pref_loss: "uni_dpo", uni_dpo_qual_eta: 0.7, omni_dpo_qual_eta: 0.5 },
      ["uni_dpo_qual_eta", "omni_dpo_qual_eta", "disagree"],
    ],
    [{ beta: "two" }, ["beta must be a number", "two"]],
    [{ beta: 0 }, ["beta must be > 0"]],
    [{ pref_loss: 3 }, ["pref_loss must be a string"]],
    [{ uni_dpo_use_qual_weight: "maybe" }, ["uni_dpo_use_qual_weight must be true or false"]],
    [{ loss_type: "robust", label_smoothing: 0.5 }, ["labelSmoothing must be < 0.5", "YAML key label_smoothing"]],
  ];
  for (const [config, parts] of bad) {
    assert.throws(
      () => objectiveFromConfig(config),
      (err: Error) => {
        assert.ok(err.message.startsWith("objectiveFromConfig: "), err.message);
        for (const p of parts) assert.ok(err.message.includes(p), `${JSON.stringify(err.message)} should mention ${p}`);
        return true;
      },
      JSON.stringify(config),
    );
  }
  assert.throws(() => objectiveFromConfig(null as unknown as Record<string, unknown>), /config must be an object/);
  assert.throws(() => objectiveFromConfig([] as unknown as Record<string, unknown>), /an array/);
});
