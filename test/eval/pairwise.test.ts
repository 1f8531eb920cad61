// `omni-dpo eval` and src/eval/pairwise.ts: pairwise preference accuracy and implied rewards,
// checked against a direct computation with the training forward (concatenatedForward).
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { torch, loadModel, Tokenizer } from "../../src/index.js";
import { readPreferenceFile } from "../../src/data/readers.js";
import { concatenatedBatch, tokenizeRecords, TOKENIZE_DEFAULTS } from "../../src/data/tokenize.js";
import { concatenatedForward } from "../../src/logprobs/forward.js";
import { evaluatePairs, evaluatePairwiseFile, type PairwiseFileResult } from "../../src/eval/pairwise.js";
import { NonFiniteMetricError } from "../../src/train/metrics.js";
import { tempDir, toyPairs, writeJsonl, writeToyModel } from "../helpers/toy.js";
import { writeNanModel } from "../train/broken-model.js";

const CLI = fileURLToPath(new URL("../../src/cli/main.js", import.meta.url));
function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8" });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const dir = tempDir("omni-dpo-eval-");
after(() => rmSync(dir, { recursive: true, force: true }));
const policyDir = writeToyModel(join(dir, "policy"), { architecture: "gpt2", seed: 0 });
const refDir = writeToyModel(join(dir, "ref"), { architecture: "gpt2", seed: 7 });
const llamaDir = writeToyModel(join(dir, "llama"), { seed: 3 });
const data = writeJsonl(join(dir, "pairs.jsonl"), toyPairs(13));

/** Per-pair log-probs with one concatenated forward over every pair at once. */
async function direct(modelDir: string, lengthNorm: boolean) {
  const tokenizer = Tokenizer.fromPretrainedSync(modelDir);
  const pairs = tokenizeRecords(await readPreferenceFile(data), tokenizer, TOKENIZE_DEFAULTS);
  const model = loadModel(modelDir);
  try {
    return torch.noGrad(() =>
      torch.tidy(() => {
        const out = concatenatedForward(
          model,
          concatenatedBatch(pairs, tokenizer.padTokenId ?? tokenizer.eosTokenId!),
          lengthNorm,
        );
        return { chosen: out.chosen.toArray() as number[], rejected: out.rejected.toArray() as number[] };
      }),
    );
  } finally {
    model.dispose();
  }
}

function close(a: number, b: number, tol = 1e-4) {
  assert.ok(Math.abs(a - b) <= tol * Math.max(1, Math.abs(b)), `${a} vs ${b}`);
}

test("a model against itself as the reference: every reward 0, accuracy 0 (strict), all ties", async () => {
  const r = await evaluatePairwiseFile({ model: policyDir, ref: policyDir, data, batchSize: 4 });
  assert.equal(r.pairs, 13);
  assert.equal(r.accuracy, 0);
  assert.equal(r.ties, 13);
  assert.deepEqual(r.rewards, { chosen: 0, rejected: 0, margin: 0 });
  assert.ok(r.perPair.chosen.every((x) => x === 0) && r.perPair.rejected.every((x) => x === 0));
  assert.ok(r.logps.chosen < 0 && r.logps.rejected < 0);
});

test("rewards and accuracy with a reference match a direct concatenatedForward computation", async () => {
  const beta = 0.5;
  const r = await evaluatePairwiseFile({ model: policyDir, ref: refDir, data, beta, batchSize: 3 });
  const pol = await direct(policyDir, true);
  const ref = await direct(refDir, true);
  const chosen = pol.chosen.map((x, i) => beta * (x - ref.chosen[i]));
  const rejected = pol.rejected.map((x, i) => beta * (x - ref.rejected[i]));
  chosen.forEach((c, i) => {
    close(r.perPair.chosen[i], c);
    close(r.perPair.rejected[i], rejected[i]);
  });
  const accuracy = chosen.filter((c, i) => c > rejected[i]).length / chosen.length;
  assert.equal(r.accuracy, accuracy);
  assert.ok(r.accuracy > 0 && r.accuracy < 1, `a random pair of models splits the pairs (accuracy ${r.accuracy})`);
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  close(r.rewards.chosen, mean(chosen), 1e-5);
  close(r.rewards.rejected, mean(rejected), 1e-5);
  close(r.rewards.margin, mean(chosen) - mean(rejected), 1e-5);
  assert.equal(r.reference, true);
  assert.equal(r.beta, beta);
});

test("without a reference: beta * logp, length-normalised by default, summed with lengthNorm false", async () => {
  for (const lengthNorm of [true, false]) {
    const r = await evaluatePairwiseFile({ model: llamaDir, data, lengthNorm, batchSize: 5 });
    const pol = await direct(llamaDir, lengthNorm);
    assert.equal(r.beta, 2);
    assert.equal(r.reference, false);
    pol.chosen.forEach((c, i) => {
      close(r.perPair.chosen[i], 2 * c);
      close(r.perPair.rejected[i], 2 * pol.rejected[i]);
    });
    assert.equal(r.accuracy, pol.chosen.filter((c, i) => c > pol.rejected[i]).length / pol.chosen.length);
  }
  // Summed log-probs favour the shorter (rejected) answers of the toy data.
  const summed = await evaluatePairwiseFile({ model: llamaDir, data, lengthNorm: false });
  assert.ok(summed.rewards.margin < 0);
});

test("evaluatePairs reports progress over both models and rejects bad options", async () => {
  const tokenizer = Tokenizer.fromPretrainedSync(policyDir);
  const pairs = tokenizeRecords(await readPreferenceFile(data), tokenizer, TOKENIZE_DEFAULTS);
  const model = loadModel(policyDir);
  const reference = loadModel(refDir);
  try {
    const seen: [number, number][] = [];
    evaluatePairs(model, pairs, {
      reference,
      padTokenId: tokenizer.eosTokenId!,
      batchSize: 5,
      onProgress: (d, t) => seen.push([d, t]),
    });
    assert.deepEqual(seen, [
      [5, 26],
      [10, 26],
      [13, 26],
      [18, 26],
      [23, 26],
      [26, 26],
    ]);
    assert.throws(() => evaluatePairs(model, pairs, { padTokenId: 0, beta: -1 }), /beta must be a positive number/);
    assert.throws(() => evaluatePairs(model, pairs, { padTokenId: 0, batchSize: 0 }), /batch size/);
    assert.throws(() => evaluatePairs(model, [], { padTokenId: 0 }), /no pairs/);
    assert.equal(model.parameters()[0].grad, null);
  } finally {
    model.dispose();
    reference.dispose();
  }
});

test("CLI: --json prints one summary object; text output; usage errors", () => {
  const r = cli("eval", "--model", policyDir, "--data", data, "--ref", policyDir, "--json", "--batch-size", "4");
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split("\n");
  assert.equal(lines.length, 1);
  const j = JSON.parse(lines[0]) as Omit<PairwiseFileResult, "perPair">;
  assert.deepEqual(Object.keys(j).sort(), [
    "accuracy",
    "beta",
    "data",
    "lengthNorm",
    "logps",
    "maxLength",
    "maxPromptLength",
    "model",
    "pairs",
    "ref",
    "reference",
    "rewards",
    "ties",
    "truncated",
  ]);
  assert.deepEqual(Object.keys(j.rewards).sort(), ["chosen", "margin", "rejected"]);
  assert.deepEqual(Object.keys(j.logps).sort(), ["chosen", "rejected"]);
  assert.equal(j.accuracy, 0);
  assert.deepEqual(j.rewards, { chosen: 0, rejected: 0, margin: 0 });
  assert.equal(j.beta, 0.1);
  assert.equal(j.lengthNorm, true);
  assert.equal(j.pairs, 13);
  assert.equal(r.stderr, "", "no progress bar with --json");

  const text = cli(
    "eval",
    "--model",
    policyDir,
    "--data",
    data,
    "--no-length-norm",
    "--beta",
    "1",
    "--max-length",
    "16",
    "--max-prompt-length",
    "4",
  );
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, /accuracy +\d+\.\d\d%/);
  assert.match(text.stdout, /reward margin/);
  assert.match(text.stdout, /beta \* logp \(no reference, SimPO-style\), beta 1; log-probs summed over tokens/);
  assert.match(text.stdout, /13 pairs \(\d+ truncated at 16\/4\)/);
  assert.match(text.stderr, /evaluating .*13\/13/);

  assert.equal(cli("eval", "--model", policyDir).code, 2);
  assert.equal(cli("eval", "--data", data).code, 2);
  assert.equal(cli("eval", "--model", policyDir, "--data", data, "--beta", "0").code, 2);
  const missing = cli("eval", "--model", policyDir, "--data", join(dir, "nope.jsonl"));
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /nope\.jsonl: file not found/);
});

test("a model with NaN weights is an error naming the metric and the first pair, not a report of NaN (library and CLI)", async () => {
  const nan = writeNanModel(join(dir, "nan"), { architecture: "gpt2" });
  await assert.rejects(evaluatePairwiseFile({ model: nan, data }), (e: unknown) => {
    assert.ok(e instanceof NonFiniteMetricError, String(e));
    assert.match(e.message, /logps\/chosen is NaN/);
    assert.match(e.message, /rewards\/margins is NaN/);
    assert.match(e.message, /the model's chosen log-prob of pair 1 is NaN/);
    return true;
  });
  // A sound model against a broken reference names the reference.
  await assert.rejects(
    evaluatePairwiseFile({ model: policyDir, ref: nan, data }),
    /rewards\/chosen is NaN.*the reference's chosen log-prob of pair 1/,
  );
  const r = cli("eval", "--model", nan, "--data", data, "--json");
  assert.equal(r.code, 1, `exit ${r.code}: ${r.stdout}`);
  assert.equal(r.stdout, "", "no result printed");
  assert.match(r.stderr, /omni-dpo: eval: logps\/chosen is NaN.*pair 1/);
});
