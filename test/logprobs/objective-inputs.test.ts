// A micro-batch to the objective's inputs (objectiveInputs, which the trainer, the pair log, the
// benchmark and the demo share), and a loss's per-token needs declared on its options: a loss
// registered from outside with an option marked `tokens: "answerWeights"` (WPO's weights) and
// one marked `tokens: "lengthWeight"` (LD-DPO's) gets, from that declaration alone, the same
// inputs as TRL's use_weighting and ld_alpha on the built-in dpo (whose chunked weights
// test/logprobs/wpo.test.ts checks against PyTorch).
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { join } from "node:path";
import {
  torch,
  loadModel,
  Tokenizer,
  registerLoss,
  resolvePreferenceOptions,
  tokenNeeds,
  objectiveInputs,
  preferenceLoss,
} from "../../src/index.js";
import type { CausalLM } from "../../src/index.js";
import { tokenizeRecords, type TokenizedPair } from "../../src/data/tokenize.js";
import { readPreferenceFile } from "../../src/data/readers.js";
import { tempDir, toyPairs, writeJsonl, writeToyModel } from "../helpers/toy.js";

registerLoss({
  name: "token_declared",
  needsReference: false,
  options: {
    weighted: { default: false, keys: ["token_declared_weighting"], tokens: "answerWeights" },
    lengthAlpha: { type: "number", default: null, keys: ["token_declared_ld_alpha"], tokens: "lengthWeight" },
  },
  losses: (x, o) => x.policyChosenLogps.sub(x.policyRejectedLogps).mul(o.beta).logsigmoid().neg(),
});

let root: string;
let model: CausalLM;
let pairs: TokenizedPair[];
let pad: number;
before(async () => {
  root = tempDir("omni-dpo-inputs-");
  const dir = writeToyModel(join(root, "model"), { seed: 4 });
  model = loadModel(dir, { dtype: "float64" });
  const tokenizer = Tokenizer.fromPretrainedSync(dir);
  pad = tokenizer.padTokenId ?? tokenizer.eosTokenId!;
  pairs = tokenizeRecords(await readPreferenceFile(writeJsonl(join(root, "pairs.jsonl"), toyPairs(4))), tokenizer, {
    maxLength: 64,
    maxPromptLength: 32,
    truncationMode: "keep_end",
  });
});
after(() => {
  model.dispose();
  rmSync(root, { recursive: true, force: true });
});

const values = (t: torch.Tensor | null | undefined) => (t ? (t.toArray() as number[]) : null);

describe("objectiveInputs and per-token needs", () => {
  it("tokenNeeds reads the loss's option declarations", () => {
    assert.deepEqual(
      tokenNeeds(resolvePreferenceOptions({ lossType: "token_declared", weighted: true, lengthAlpha: 0.5 })),
      { answerWeights: true, lengthWeight: 0.5 },
    );
    assert.deepEqual(tokenNeeds(resolvePreferenceOptions({ lossType: "token_declared" })), {
      answerWeights: false,
      lengthWeight: null,
    });
    assert.deepEqual(tokenNeeds(resolvePreferenceOptions({ lossType: "dpo", useWeighting: true, ldAlpha: 0.3 })), {
      answerWeights: true,
      lengthWeight: 0.3,
    });
  });

  it("a registered loss declaring tokens gets the built-in WPO weights and LD-DPO log-probs, and is weighted by them", () => {
    torch.noGrad(() =>
      torch.tidy(() => {
        const mine = resolvePreferenceOptions({
          lossType: "token_declared",
          beta: 0.1,
          weighted: true,
          lengthAlpha: 0.5,
        });
        const trl = resolvePreferenceOptions({ lossType: "dpo", beta: 0.1, useWeighting: true, ldAlpha: 0.5 });
        const plain = resolvePreferenceOptions({ lossType: "token_declared", beta: 0.1 });
        const a = objectiveInputs(model, pairs, mine, { padTokenId: pad, lengthNorm: false }).inputs;
        const b = objectiveInputs(model, pairs, trl, {
          padTokenId: pad,
          lengthNorm: false,
          reference: () => ({ chosen: [0, 0, 0, 0], rejected: [0, 0, 0, 0] }),
        }).inputs;
        const c = objectiveInputs(model, pairs, plain, { padTokenId: pad, lengthNorm: false }).inputs;
        for (const k of ["chosenWeights", "rejectedWeights", "policyChosenLogps", "policyRejectedLogps"] as const)
          assert.deepEqual(values(a[k]), values(b[k]), k);
        assert.equal(c.chosenWeights ?? null, null, "no weights without the option");
        assert.notDeepEqual(values(c.policyChosenLogps), values(a.policyChosenLogps), "ld_alpha changed the log-probs");
        // WPO: each pair's loss times its two weights (closed form from the inputs).
        const losses = values(preferenceLoss(a, mine).losses)!;
        const raw = values(
          preferenceLoss({ ...a, chosenWeights: null, rejectedWeights: null }, { ...mine, weighted: false }).losses,
        )!;
        const w = values(a.chosenWeights)!.map((x, i) => x * values(a.rejectedWeights)![i]);
        losses.forEach((l, i) => assert.ok(Math.abs(l - raw[i] * w[i]) < 1e-12, `pair ${i}: ${l} vs ${raw[i] * w[i]}`));
      }),
    );
  });

  it("a tokens declaration on an option of the wrong type is an error naming it", () => {
    assert.throws(
      () =>
        registerLoss({
          name: "bad_tokens",
          needsReference: false,
          options: { w: { default: 0.5, tokens: "answerWeights" } },
          losses: (x) => x.policyChosenLogps,
        }),
      /tokens: answerWeights is a boolean option's/,
    );
  });
});
