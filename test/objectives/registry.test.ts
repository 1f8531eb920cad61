// registerLoss: a loss declared once works in preferenceLoss, objectiveFromConfig, the config
// keys and the inputs checks; a name registered twice, or a bad declaration, is an
// ObjectiveError naming the field.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  torch,
  preferenceLoss,
  objectiveFromConfig,
  objectiveConfigKeys,
  registerLoss,
  requiredInputs,
  resolvePreferenceOptions,
  needsReference,
  ObjectiveError,
  OBJECTIVE_CONFIG_KEYS,
  REFERENCE_LOSSES,
  type LossSpec,
} from "../../src/index.js";

// The losses these tests register, declared as a program declares its own (so preferenceLoss type-checks their options).
declare module "../../src/objectives/types.js" {
  interface RegisteredLosses {
    sq_hinge: { sq_margin?: number };
    score_gap_loss: { gapScale?: number };
    score_gap: { gapScale?: number; gapMode?: string };
    bad_shape: Record<never, never>;
  }
}

const f64 = (v: number[]) => torch.tensor(v, { dtype: "float64" });
const PC = [-1, -0.4, -2],
  PR = [-1.5, -2, -1],
  RC = [-0.9, -0.8, -1.7],
  RR = [-1.6, -1.1, -2.4],
  SC = [8, 9, 6.5],
  SR = [3, 8.5, 1];
const inputs = () => ({
  policyChosenLogps: f64(PC),
  policyRejectedLogps: f64(PR),
  referenceChosenLogps: f64(RC),
  referenceRejectedLogps: f64(RR),
  scoreChosen: f64(SC),
  scoreRejected: f64(SR),
});

/** A squared hinge on the reference-adjusted margin: relu(margin - beta m)^2 [B]. */
registerLoss({
  name: "sq_hinge",
  needsReference: true,
  options: { sq_margin: 0.5 },
  losses: (x, o) =>
    x.policyChosenLogps
      .sub(x.policyRejectedLogps)
      .sub(x.referenceChosenLogps!.sub(x.referenceRejectedLogps!))
      .mul(o.beta)
      .neg()
      .add(o.sq_margin)
      .relu()
      .pow(2),
});
const sqHinge = (margin: number, beta: number) =>
  PC.map((_, i) => Math.max(0, margin - beta * (PC[i] - PR[i] - (RC[i] - RR[i]))) ** 2);

/** A richer declaration: an alias, scores, a required option, its own metric, no reference model. */
registerLoss({
  name: "score_gap",
  aliases: ["score_gap_loss"],
  title: "score-gap",
  needsReference: false,
  needsScores: true,
  beta: { default: 1.5, mathDefault: 0.5 },
  options: {
    gapScale: {
      type: "number",
      default: null,
      required: "the weight of the score gap",
      keys: ["gap_scale"],
      check: "positive",
    },
    gapMode: { default: "plain", values: ["plain", "squared"], keys: ["gap_mode"] },
  },
  losses(x, o) {
    const gap = x.scoreChosen!.sub(x.scoreRejected!).mul(o.gapScale!);
    const z = x.policyChosenLogps.sub(x.policyRejectedLogps).mul(o.beta);
    const w = o.gapMode === "squared" ? gap.pow(2) : gap;
    return { losses: z.logsigmoid().neg().mul(w), metrics: { score_gap: gap, constant_one: 1 } };
  },
});

const close = (a: number[], b: number[], what: string) =>
  a.forEach((v, i) =>
    assert.ok(Math.abs(v - b[i]) <= 1e-12 * Math.max(1, Math.abs(b[i])), `${what}[${i}]: ${v} vs ${b[i]}`),
  );

test("a registered loss runs through preferenceLoss with its option, its default and the standard metrics", () => {
  torch.tidy(() => {
    const byDefault = preferenceLoss(inputs(), { lossType: "sq_hinge" });
    close(byDefault.losses.toArray() as number[], sqHinge(0.5, 0.1), "default margin 0.5, default beta 0.1 (TRL's)");
    const out = preferenceLoss(inputs(), { lossType: "sq_hinge", beta: 2, sq_margin: 0.25 });
    close(out.losses.toArray() as number[], sqHinge(0.25, 2), "margin 0.25, beta 2");
    const m = out.metrics;
    const reward = (i: number) => [2 * (PC[i] - RC[i]), 2 * (PR[i] - RR[i])];
    close(
      [m["rewards/chosen"], m["rewards/rejected"]],
      [PC.reduce((a, _, i) => a + reward(i)[0], 0) / 3, PC.reduce((a, _, i) => a + reward(i)[1], 0) / 3],
      "rewards",
    );
    assert.equal(m["rewards/accuracies"], PC.filter((_, i) => reward(i)[0] > reward(i)[1]).length / 3);
    assert.deepEqual(Object.keys(m).sort(), [
      "logps/chosen",
      "logps/rejected",
      "rewards/accuracies",
      "rewards/chosen",
      "rewards/margins",
      "rewards/rejected",
    ]);
    assert.equal(needsReference("sq_hinge"), true);
    assert.ok(REFERENCE_LOSSES.has("sq_hinge"));
    assert.throws(
      () => preferenceLoss({ ...inputs(), referenceChosenLogps: null }, { lossType: "sq_hinge" }),
      (e: unknown) =>
        e instanceof ObjectiveError && e.input === "referenceChosenLogps" && /lossType sq_hinge/.test(e.message),
    );
  });
});

test("a registered loss through objectiveFromConfig: loss_type or pref_loss names it, its option by its own name", () => {
  torch.tidy(() => {
    for (const yaml of [
      { loss_type: "sq_hinge", sq_margin: 0.75, beta: 3 },
      { pref_loss: "sq_hinge", sq_margin: "0.75", beta: 3 },
    ]) {
      const options = objectiveFromConfig(yaml);
      assert.equal(options.lossType, "sq_hinge");
      assert.equal(options.sq_margin, 0.75);
      close(preferenceLoss(inputs(), options).losses.toArray() as number[], sqHinge(0.75, 3), JSON.stringify(yaml));
    }
    assert.equal(objectiveFromConfig({ loss_type: "sq_hinge" }).sq_margin, 0.5);
    assert.throws(
      () => objectiveFromConfig({ loss_type: "sq_hinge", sq_margin: "wide" }),
      (e: unknown) =>
        e instanceof ObjectiveError && e.key === "sq_margin" && /sq_margin must be a number/.test(e.message),
    );
    // Its keys are among the objective's keys, so the trainer's reader does not call them unknown.
    assert.ok(OBJECTIVE_CONFIG_KEYS.includes("sq_margin"));
    const entry = objectiveConfigKeys().find((k) => k.key === "sq_margin");
    assert.deepEqual(entry && { default: entry.default, losses: entry.losses }, { default: 0.5, losses: ["sq_hinge"] });
    assert.ok(
      objectiveConfigKeys()
        .find((k) => k.key === "loss_type")!
        .losses.includes("sq_hinge"),
    );
  });
});

test("richer declarations: aliases, needsScores, required options, values, Math defaults, own metrics", () => {
  torch.tidy(() => {
    const gap = SC.map((s, i) => 0.5 * (s - SR[i]));
    const z = PC.map((p, i) => 1.5 * (p - PR[i]));
    const expected = z.map((v, i) => -(v >= 0 ? -Math.log1p(Math.exp(-v)) : v - Math.log1p(Math.exp(v))) * gap[i]);
    const out = preferenceLoss(
      { policyChosenLogps: f64(PC), policyRejectedLogps: f64(PR), scoreChosen: f64(SC), scoreRejected: f64(SR) },
      { lossType: "score_gap_loss", gapScale: 0.5 },
    );
    close(out.losses.toArray() as number[], expected, "score_gap");
    assert.ok(Math.abs(out.metrics.score_gap! - gap.reduce((a, b) => a + b, 0) / 3) < 1e-12);
    assert.equal(out.metrics.constant_one, 1);
    // No reference model: rewards are beta logp.
    assert.ok(Math.abs(out.metrics["rewards/chosen"] - (1.5 * PC.reduce((a, b) => a + b, 0)) / 3) < 1e-12);
    assert.equal(needsReference({ lossType: "score_gap" }), false);
    const need = requiredInputs(resolvePreferenceOptions({ lossType: "score_gap", gapScale: 1 }));
    assert.deepEqual([...need.keys()], ["policyChosenLogps", "policyRejectedLogps", "scoreChosen", "scoreRejected"]);
    assert.throws(
      () =>
        preferenceLoss(
          { policyChosenLogps: f64(PC), policyRejectedLogps: f64(PR) },
          { lossType: "score_gap", gapScale: 1 },
        ),
      (e: unknown) => e instanceof ObjectiveError && e.input === "scoreChosen",
    );
    assert.throws(
      () => preferenceLoss(inputs(), { lossType: "score_gap" }),
      (e: unknown) =>
        e instanceof ObjectiveError &&
        e.option === "gapScale" &&
        /needs option gapScale \(the weight of the score gap\)/.test(e.message),
    );
    assert.throws(
      () => preferenceLoss(inputs(), { lossType: "score_gap", gapScale: 1, gapMode: "cubed" }),
      (e: unknown) => e instanceof ObjectiveError && e.option === "gapMode" && /one of plain, squared/.test(e.message),
    );
    // YAML: its keys, its aliases as loss names, its Math-style beta; a missing required key is named.
    const yaml = objectiveFromConfig({ loss_type: "score_gap_loss", gap_scale: 2, gap_mode: "Squared" });
    assert.deepEqual([yaml.lossType, yaml.beta, yaml.gapScale, yaml.gapMode], ["score_gap", 0.5, 2, "squared"]);
    assert.equal(objectiveFromConfig({ pref_loss: "score_gap", gap_scale: 2 }).beta, 1.5);
    assert.throws(
      () => objectiveFromConfig({ loss_type: "score_gap" }),
      (e: unknown) =>
        e instanceof ObjectiveError &&
        e.key === "gap_scale" &&
        e.option === "gapScale" &&
        /\(YAML key gap_scale\)/.test(e.message),
    );
    // A typo of a key that starts with its name is an error too.
    assert.throws(
      () => objectiveFromConfig({ loss_type: "score_gap", gap_scale: 2, score_gap_scale: 1 }),
      (e: unknown) => e instanceof ObjectiveError && e.key === "score_gap_scale",
    );
  });
});

test("unknown options of a registered loss are errors, not silently ignored", () => {
  torch.tidy(() => {
    assert.throws(
      // @ts-expect-error a misspelt option of a declared loss does not compile (and is an error at run time)
      () => preferenceLoss(inputs(), { lossType: "sq_hinge", sq_margn: 0.1 }),
      (e: unknown) =>
        e instanceof ObjectiveError && e.option === "sq_margn" && /unknown option 'sq_margn'/.test(e.message),
    );
  });
});

test("a loss function that returns the wrong shape is named", () => {
  registerLoss({ name: "bad_shape", needsReference: false, options: {}, losses: (x) => x.policyChosenLogps.sum() });
  torch.tidy(() => {
    assert.throws(
      () => preferenceLoss(inputs(), { lossType: "bad_shape" }),
      (e: unknown) =>
        e instanceof ObjectiveError && e.loss === "bad_shape" && /returned shape \[\], expected \[3\]/.test(e.message),
    );
  });
});

function rejects(
  spec: unknown,
  field: Partial<Record<"option" | "key" | "loss", string>>,
  ...parts: (string | RegExp)[]
): void {
  assert.throws(
    () => registerLoss(spec as LossSpec),
    (e: unknown) => {
      assert.ok(e instanceof ObjectiveError, String(e));
      assert.equal(e.source, "registerLoss");
      assert.ok(e.message.startsWith("registerLoss: "), e.message);
      for (const [k, v] of Object.entries(field)) assert.equal(e[k as keyof typeof field], v, `${k} of ${e.message}`);
      for (const p of parts)
        assert.ok(
          typeof p === "string" ? e.message.includes(p) : p.test(e.message),
          `${e.message} should mention ${p}`,
        );
      return true;
    },
  );
}

const losses = (x: { policyChosenLogps: ReturnType<typeof f64> }) => x.policyChosenLogps.neg();

test("registering a name twice is an error, whether a name, an alias or a YAML name", () => {
  rejects(
    { name: "sq_hinge", needsReference: true, options: {}, losses },
    { loss: "sq_hinge" },
    "the name sq_hinge is already registered",
  );
  rejects({ name: "omni_dpo", needsReference: true, options: {}, losses }, { loss: "omni_dpo" }, "already registered");
  rejects(
    { name: "mine", aliases: ["uni_dpo"], needsReference: true, options: {}, losses },
    {},
    "uni_dpo is already registered (an alias of omni_dpo)",
  );
  rejects(
    { name: "mine", needsReference: true, options: {}, losses, config: [{ value: "sigmoid", style: "math" }] },
    {},
    "sigmoid already means loss dpo",
  );
  rejects({ name: "cdpo", needsReference: true, options: {}, losses }, {}, "cdpo already means loss robust");
  // The failed registrations left nothing behind.
  registerLoss({ name: "mine", needsReference: false, options: {}, losses });
});

test("a bad declaration is an error naming the field", () => {
  rejects(null, {}, "a loss spec must be an object");
  rejects({ name: "Has Space", needsReference: true, options: {}, losses }, {}, "name must be lower-case");
  rejects({ name: "nr", options: {}, losses }, { loss: "nr" }, "needsReference must be true or false");
  rejects({ name: "nf", needsReference: true, options: {}, losses: 3 }, { loss: "nf" }, "losses must be a function");
  rejects({ name: "no", needsReference: true, options: [1], losses }, {}, "options must be an object");
  rejects(
    { name: "od", needsReference: true, options: { x_opt: { default: [1] } }, losses },
    { option: "x_opt" },
    "default must be a number, true/false or a string",
  );
  rejects(
    { name: "ot", needsReference: true, options: { x_opt: { default: null } }, losses },
    { option: "x_opt" },
    "a null default needs a type",
  );
  rejects(
    { name: "ov", needsReference: true, options: { x_opt: { default: "c", values: ["a", "b"] } }, losses },
    { option: "x_opt" },
    "is not one of its values",
  );
  rejects(
    { name: "oc", needsReference: true, options: { x_opt: { default: 1, check: "big" } }, losses },
    { option: "x_opt" },
    "check must be one of",
  );
  rejects(
    { name: "ob", needsReference: true, options: { beta: -1 }, losses },
    { option: "beta" },
    "default beta must be a finite number > 0",
  );
  rejects(
    { name: "or", needsReference: true, options: { lossType: "x" }, losses },
    { option: "lossType" },
    "not an option a loss can declare",
  );
  // One option name, one meaning; one YAML key, one option.
  rejects(
    { name: "os", needsReference: true, options: { labelSmoothing: 0.1 }, losses },
    { option: "labelSmoothing" },
    "already an option of robust, simpo",
  );
  rejects(
    { name: "ok", needsReference: true, options: { label_smoothing: 0.1 }, losses },
    { option: "label_smoothing", key: "label_smoothing" },
    "already sets option labelSmoothing",
  );
  rejects(
    { name: "oy", needsReference: true, options: { x_opt: { default: 1, keys: ["beta"] } }, losses },
    { key: "beta" },
    "already is beta",
  );
  rejects(
    {
      name: "ow",
      needsReference: true,
      options: {},
      losses,
      config: [{ value: "ow", when: { key: "nothing", holds: () => true, text: "x" } }],
    },
    {},
    "when must be",
  );
  rejects(
    { name: "oz", needsReference: true, options: { x_opt: 1 }, losses, readIn: { y_opt: "math" } },
    {},
    "readIn names y_opt",
  );
  // None of these was registered.
  for (const name of ["nr", "od", "os", "ok"])
    assert.throws(() => preferenceLoss(inputs(), { lossType: name } as never), /option lossType must be one of/);
});
