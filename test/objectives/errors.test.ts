// Bad inputs and options: each a clear error that names the input or option.
import { test } from "node:test";
import assert from "node:assert/strict";
import { torch, preferenceLoss, type PreferenceInputs, type PreferenceLossOptions } from "../../src/index.js";

const f64 = (v: number[]) => torch.tensor(v, { dtype: "float64" });

function full(): PreferenceInputs {
  return {
    policyChosenLogps: f64([-1, -0.4, -2]),
    policyRejectedLogps: f64([-1.5, -2, -1]),
    referenceChosenLogps: f64([-0.9, -0.8, -1.7]),
    referenceRejectedLogps: f64([-1.6, -1.1, -2.4]),
    scoreChosen: f64([8, 9, 6.5]),
    scoreRejected: f64([3, 8.5, 1]),
  };
}

function throwsNaming(fn: () => unknown, ...parts: (string | RegExp)[]): void {
  assert.throws(fn, (err: Error) => {
    for (const p of parts) {
      const ok = typeof p === "string" ? err.message.includes(p) : p.test(err.message);
      assert.ok(ok, `message ${JSON.stringify(err.message)} should mention ${p}`);
    }
    return true;
  });
}

test("tensors of different lengths", () => {
  torch.tidy(() => {
    throwsNaming(
      () => preferenceLoss({ ...full(), policyRejectedLogps: f64([-1, -2]) }, { lossType: "dpo" }),
      "different lengths",
      "policyChosenLogps has 3",
      "policyRejectedLogps has 2",
    );
    throwsNaming(
      () => preferenceLoss({ ...full(), referenceRejectedLogps: f64([-1, -2, -3, -4]) }, { lossType: "ipo" }),
      "referenceRejectedLogps has 4",
    );
    throwsNaming(() => preferenceLoss({ ...full(), scoreRejected: f64([1]) }), "scoreRejected has 1");
    throwsNaming(
      () => preferenceLoss({ ...full(), scoreChosen: f64([1, 2]) }, { useQualityWeight: false }),
      "scoreChosen has 2",
    );
  });
});

test("NaN or infinite log-probs and scores, named with the first bad index", () => {
  torch.tidy(() => {
    const cases: [keyof PreferenceInputs, number, PreferenceLossOptions][] = [
      ["policyChosenLogps", NaN, { lossType: "dpo" }],
      ["policyRejectedLogps", Infinity, { lossType: "simpo" }],
      ["referenceChosenLogps", -Infinity, { lossType: "hinge" }],
      ["referenceRejectedLogps", NaN, { lossType: "rpo", rpoAlpha: 1 }],
      ["scoreChosen", NaN, {}],
      ["scoreRejected", Infinity, {}],
      ["scoreChosen", -Infinity, { useQualityWeight: false }], // still read by the c-NLL gate
    ];
    for (const [name, bad, options] of cases) {
      const x = full();
      const v = (x[name] as ReturnType<typeof f64>).toArray() as number[];
      v[1] = bad;
      throwsNaming(
        () => preferenceLoss({ ...x, [name]: f64(v) }, options),
        `input ${name}`,
        "non-finite",
        "index 1",
        String(bad),
      );
    }
    // Two bad values are counted.
    throwsNaming(
      () => preferenceLoss({ ...full(), scoreRejected: f64([NaN, 1, NaN]) }),
      "scoreRejected has 2 non-finite values",
      "index 0",
    );
    // float32 inputs are checked too.
    throwsNaming(
      () =>
        preferenceLoss(
          { ...full(), policyChosenLogps: torch.tensor([-1, NaN, -2], { dtype: "float32" }) },
          { lossType: "dpo" },
        ),
      "policyChosenLogps",
    );
  });
});

test("inputs a loss does not read are not checked; validate: false skips the value check", () => {
  torch.tidy(() => {
    const x = full();
    // SimPO reads no reference log-probs and no scores; DPO reads no scores.
    assert.ok(
      Number.isFinite(
        preferenceLoss(
          { ...x, referenceChosenLogps: f64([NaN, NaN, NaN]), scoreChosen: f64([NaN, 1, 2]) },
          { lossType: "simpo" },
        ).loss.item(),
      ),
    );
    assert.ok(
      Number.isFinite(preferenceLoss({ ...x, scoreRejected: f64([Infinity, 1, 2]) }, { lossType: "dpo" }).loss.item()),
    );
    assert.ok(
      Number.isFinite(preferenceLoss({ ...x, scoreRejected: undefined }, { useQualityWeight: false }).loss.item()),
    );
    // Unchecked, a NaN flows into the loss.
    assert.ok(
      Number.isNaN(
        preferenceLoss({ ...x, policyChosenLogps: f64([NaN, 1, 2]) }, { lossType: "dpo", validate: false }).loss.item(),
      ),
    );
  });
});

test("a loss that needs reference log-probs or scores, without them", () => {
  torch.tidy(() => {
    const x = full();
    for (const lossType of ["omni_dpo", "dpo", "robust", "ipo", "hinge", "rpo"] as const) {
      throwsNaming(
        () => preferenceLoss({ ...x, referenceChosenLogps: undefined }, { lossType, rpoAlpha: 1 }),
        "missing input referenceChosenLogps",
        `lossType ${lossType}`,
      );
      throwsNaming(
        () => preferenceLoss({ ...x, referenceRejectedLogps: null }, { lossType, rpoAlpha: 1 }),
        "missing input referenceRejectedLogps",
      );
    }
    throwsNaming(
      () => preferenceLoss({ ...x, scoreChosen: undefined }),
      "missing input scoreChosen",
      "w_qual",
      "useQualityWeight",
    );
    throwsNaming(() => preferenceLoss({ ...x, scoreRejected: undefined }), "missing input scoreRejected", "w_qual");
    throwsNaming(
      () => preferenceLoss({ ...x, scoreChosen: undefined }, { useQualityWeight: false }),
      "missing input scoreChosen",
      "c-NLL",
      "nllLambda",
    );
    throwsNaming(
      () =>
        preferenceLoss({ ...x, policyChosenLogps: undefined } as unknown as PreferenceInputs, { lossType: "simpo" }),
      "missing input policyChosenLogps",
    );
    // SimPO without any reference model input works.
    const simpo = preferenceLoss(
      { policyChosenLogps: x.policyChosenLogps, policyRejectedLogps: x.policyRejectedLogps },
      { lossType: "simpo" },
    );
    assert.ok(Number.isFinite(simpo.loss.item()));
  });
});

test("inputs of the wrong kind: not a tensor, not 1-D, integer log-probs, bool scores, empty, disposed", () => {
  torch.tidy(() => {
    const x = full();
    throwsNaming(
      () =>
        preferenceLoss({ ...x, policyChosenLogps: [-1, -2, -3] } as unknown as PreferenceInputs, { lossType: "dpo" }),
      "policyChosenLogps must be a Tensor",
      "array",
    );
    throwsNaming(
      () => preferenceLoss({ ...x, policyRejectedLogps: f64([-1, -2, -3]).reshape([3, 1]) }, { lossType: "dpo" }),
      "policyRejectedLogps must be 1-D",
      "[3, 1]",
    );
    throwsNaming(
      () => preferenceLoss({ ...x, referenceChosenLogps: torch.tensor(-1, { dtype: "float64" }) }, { lossType: "dpo" }),
      "referenceChosenLogps must be 1-D",
    );
    throwsNaming(
      () =>
        preferenceLoss(
          { ...x, referenceChosenLogps: torch.tensor([-1, -2, -3], { dtype: "int64" }) },
          { lossType: "dpo" },
        ),
      "referenceChosenLogps must be a floating tensor",
      "int64",
    );
    throwsNaming(
      () => preferenceLoss({ ...x, scoreChosen: torch.tensor([true, false, true]) }),
      "scoreChosen must be numeric",
    );
    throwsNaming(
      () => preferenceLoss({ policyChosenLogps: f64([]), policyRejectedLogps: f64([]) }, { lossType: "simpo" }),
      "empty",
    );
    const gone = f64([-1, -2, -3]);
    gone.dispose();
    throwsNaming(
      () => preferenceLoss({ ...x, policyChosenLogps: gone }, { lossType: "dpo" }),
      "policyChosenLogps has been disposed",
    );
    throwsNaming(
      () => preferenceLoss({ ...x, policyChosenLogitsMean: NaN }, { lossType: "dpo" }),
      "policyChosenLogitsMean",
    );
    throwsNaming(() => preferenceLoss(null as unknown as PreferenceInputs), "inputs must be an object");
  });
});

test("bad options: each named", () => {
  torch.tidy(() => {
    const x = full();
    const bad: [Record<string, unknown>, string[]][] = [
      [{ lossType: "kto" }, ["lossType", "omni_dpo, dpo, robust, ipo, hinge, simpo, rpo"]],
      [{ lossType: "rpo" }, ["rpo needs option rpoAlpha"]],
      [{ beta: 0 }, ["beta must be > 0"]],
      [{ beta: -1 }, ["beta must be > 0"]],
      [{ beta: Infinity }, ["beta must be finite"]],
      [{ beta: "2" }, ["beta must be a number"]],
      [{ qualEta: NaN }, ["qualEta is NaN"]],
      [{ perfGamma: -1 }, ["perfGamma must be >= 0"]],
      [{ nllLambda: -0.1 }, ["nllLambda must be >= 0"]],
      [{ tauRef: Infinity }, ["tauRef must be finite"]],
      [{ labelSmoothing: 1.5, lossType: "robust" }, ["labelSmoothing must be in [0, 1]"]],
      [{ labelSmoothing: 0.5, lossType: "robust", robustVariant: "rdpo" }, ["labelSmoothing must be < 0.5", "rdpo"]],
      [{ robustVariant: "x" }, ["robustVariant must be one of cdpo, rdpo"]],
      [{ simpoForm: "ipo" }, ["simpoForm must be one of sigmoid, hinge"]],
      [{ useQualityWeight: "no" }, ["useQualityWeight must be true or false"]],
      [{ qual_eta: 0.7 }, ["unknown option 'qual_eta'"]],
      [{ rpoAlpha: -1, lossType: "rpo" }, ["rpoAlpha must be >= 0"]],
    ];
    for (const [options, parts] of bad)
      throwsNaming(() => preferenceLoss(x, options as PreferenceLossOptions), "preferenceLoss", ...parts);
  });
});
