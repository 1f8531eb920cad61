// SFT and the preference trainer share one choice of AdamW decay groups: weight decay on
// matrices and embeddings, none on anything 1-D (biases, norm weights), whatever the names.
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { join } from "node:path";
import * as torch from "../../src/torch/index.js";
import { loadModel } from "../../src/models/auto.js";
import { Tokenizer } from "../../src/text/index.js";
import { decayGroups } from "../../src/train/optimizer.js";
import { sftTrain } from "../../src/train/sft.js";
import { tempDir, writeToyModel } from "../helpers/toy.js";

const root = tempDir("omni-dpo-sft-");
after(() => rmSync(root, { recursive: true, force: true }));

describe("decay groups", () => {
  for (const architecture of ["gpt2", "llama"] as const) {
    it(`${architecture}: biases and norm weights (the 1-D parameters) get no decay, every matrix and embedding does`, () => {
      const model = loadModel(writeToyModel(join(root, architecture), { architecture }));
      try {
        const [decay, noDecay] = decayGroups(model, 0.1);
        assert.equal(decay.weightDecay, 0.1);
        assert.equal(noDecay.weightDecay, 0);
        const names = new Map(model.namedParameters().map(([n, p]) => [p, n]));
        const noDecayNames = noDecay.params.map((p) => names.get(p)!);
        assert.equal(decay.params.length + noDecay.params.length, names.size);
        assert.ok(decay.params.every((p) => p.ndim >= 2));
        assert.ok(
          noDecayNames.every((n) => /(bias|norm|ln_\d|ln_f)/.test(n)),
          noDecayNames.join(", "),
        );
        const expected =
          architecture === "gpt2"
            ? ["ln_f.weight", "h.0.ln_1.bias", "h.1.attn.c_attn.bias"]
            : ["model.norm.weight", "model.layers.0.input_layernorm.weight"];
        for (const name of expected)
          assert.ok(
            noDecayNames.some((n) => n.endsWith(name)),
            `${name} should not be decayed: ${noDecayNames.join(", ")}`,
          );
      } finally {
        model.dispose();
      }
    });
  }
});

describe("sftTrain", () => {
  it("decays weight matrices but not norm weights (one step with a huge weight decay)", () => {
    const dir = writeToyModel(join(root, "sft-llama"));
    const model = loadModel(dir);
    const tokenizer = Tokenizer.fromPretrainedSync(dir);
    try {
      const before = new Map(model.namedParameters().map(([n, p]) => [n, torch.tidy(() => p.abs().mean().item())]));
      // AdamW's decoupled decay scales each decayed weight by (1 - lr * wd) = 0.9; Adam's own
      // update moves any weight by at most about lr = 1e-3.
      const losses = sftTrain(model, tokenizer, [{ prompt: "say apple:", completion: " apple apple" }], {
        maxSteps: 1,
        learningRate: 1e-3,
        weightDecay: 100,
        warmupRatio: 0,
      });
      assert.equal(losses.length, 1);
      for (const [name, p] of model.namedParameters()) {
        const ratio = torch.tidy(() => p.abs().mean().item()) / before.get(name)!;
        if (p.ndim < 2) assert.ok(Math.abs(ratio - 1) < 0.01, `${name} (norm weight) shrank by ${ratio}`);
        else assert.ok(ratio < 0.93, `${name} was not decayed: ratio ${ratio}`);
      }
    } finally {
      model.dispose();
    }
  });

  it("stopAtStep takes the run mid-schedule: the same steps as the full run, not a run whose schedule ends there", () => {
    const dir = writeToyModel(join(root, "sft-stop"));
    const tokenizer = Tokenizer.fromPretrainedSync(dir);
    const examples = ["apple", "pear", "plum", "fig"].map((w) => ({ prompt: `say ${w}:`, completion: ` ${w} ${w}` }));
    const run = (options: { maxSteps: number; stopAtStep?: number }) => {
      const model = loadModel(dir);
      torch.manualSeed(0);
      try {
        const steps: [number, number][] = [];
        const losses = sftTrain(model, tokenizer, examples, {
          ...options,
          batchSize: 2,
          learningRate: 1e-2,
          warmupRatio: 0,
          onStep: (s, t) => steps.push([s, t]),
        });
        return { losses, steps, weight: torch.tidy(() => model.parameters()[0].sum().item()) };
      } finally {
        model.dispose();
      }
    };
    const full = run({ maxSteps: 6 });
    const stopped = run({ maxSteps: 6, stopAtStep: 3 });
    const short = run({ maxSteps: 3 });
    assert.deepEqual(stopped.losses, full.losses.slice(0, 3), "the first three steps of the 6-step schedule");
    assert.deepEqual(
      stopped.steps,
      [
        [1, 3],
        [2, 3],
        [3, 3],
      ],
      "progress counts to the stop",
    );
    // A 3-step schedule decays the learning rate sooner, so its third step differs.
    assert.notEqual(short.losses[2], stopped.losses[2]);
    assert.notEqual(short.weight, stopped.weight);
  });
});
