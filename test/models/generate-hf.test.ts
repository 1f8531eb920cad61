// Generation options as transformers names them: do_sample, repetition_penalty (its
// RepetitionPenaltyLogitsProcessor, checked by hand and against PyTorch running that processor's
// code when a PyTorch is installed) and num_return_sequences.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { generate, loadModel, torch } from "../../src/index.js";
import { applyRepetitionPenalty } from "../../src/models/generate.js";
import { runPython } from "../helpers/python.js";
import { skipUnless } from "../helpers/requirements.js";
import { tempDir, writeToyModel } from "../helpers/toy.js";

const root = tempDir("omni-dpo-generate-hf-");
after(() => rmSync(root, { recursive: true, force: true }));

const LOGITS = [
  [2.0, -1.0, 0.5, -3.0, 1.5],
  [-0.5, 4.0, 0.0, 1.0, -2.0],
];
const SEEN = [[0, 3, 3], [1]];

/** The processor by hand: a seen id's logit divided by the penalty when positive, multiplied when negative. */
function byHand(logits: number[][], seen: number[][], penalty: number): number[][] {
  return logits.map((row, b) => row.map((x, v) => (seen[b].includes(v) ? (x < 0 ? x * penalty : x / penalty) : x)));
}

test("repetition penalty: the seen ids' logits, as transformers' RepetitionPenaltyLogitsProcessor", () => {
  const out = applyRepetitionPenalty(torch.tensor(LOGITS, { dtype: "float32" }), SEEN, 1.5);
  const got = out.toArray() as number[][];
  const expected = byHand(LOGITS, SEEN, 1.5);
  got.forEach((row, b) =>
    row.forEach((x, v) => assert.ok(Math.abs(x - expected[b][v]) < 1e-6, `${b},${v}: ${x} vs ${expected[b][v]}`)),
  );
});

test("repetition penalty against PyTorch running transformers' processor code", { skip: skipUnless("torch") }, () => {
  const script = `
import json, sys, torch
d = json.load(sys.stdin)
scores = torch.tensor(d["logits"]); input_ids = torch.tensor(d["ids"]); penalty = d["penalty"]
# transformers' RepetitionPenaltyLogitsProcessor.__call__
score = torch.gather(scores, 1, input_ids)
score = torch.where(score < 0, score * penalty, score / penalty)
scores_processed = scores.scatter(1, input_ids, score)
print(json.dumps(scores_processed.tolist()))`;
  const ids = [
    [0, 3, 3],
    [1, 1, 1],
  ]; // equal lengths, as input_ids
  const expected = runPython<number[][]>(script, { logits: LOGITS, ids, penalty: 1.3 });
  const got = applyRepetitionPenalty(torch.tensor(LOGITS, { dtype: "float32" }), ids, 1.3).toArray() as number[][];
  got.forEach((row, b) => row.forEach((x, v) => assert.ok(Math.abs(x - expected[b][v]) < 1e-6)));
});

test("generate: the penalty applies to the prompt's and the generated ids; doSample false is greedy; numReturnSequences", () => {
  const model = loadModel(writeToyModel(join(root, "model"), { seed: 8 }));
  const prompt = [5, 17, 3, 88, 42, 17];
  const logits = torch.noGrad(() =>
    torch.tidy(() => {
      const all = model.forward(torch.tensor([prompt], { dtype: "int64" }));
      return (all.select(1, prompt.length - 1).toArray() as number[][])[0];
    }),
  );
  for (const penalty of [1.3, 20]) {
    const penalised = byHand([logits], [prompt], penalty)[0];
    const argmax = penalised.indexOf(Math.max(...penalised));
    assert.equal(
      generate(model, [prompt], { maxNewTokens: 1, repetitionPenalty: penalty }).tokens[0][0],
      argmax,
      `penalty ${penalty}`,
    );
  }
  // A large penalty never repeats a token in greedy decoding (while any unseen token has a positive logit).
  const repeated = generate(model, [prompt], { maxNewTokens: 8, repetitionPenalty: 1e6 }).tokens[0];
  assert.ok(
    repeated.every((t, i) => !prompt.includes(t) && !repeated.slice(0, i).includes(t)),
    JSON.stringify(repeated),
  );

  const greedy = generate(model, [prompt], { maxNewTokens: 6 }).tokens;
  assert.deepEqual(generate(model, [prompt], { maxNewTokens: 6, temperature: 0.9, doSample: false }).tokens, greedy);
  const sampled = generate(model, [prompt, [7, 8]], {
    maxNewTokens: 6,
    doSample: true,
    numReturnSequences: 3,
    seed: 4,
  });
  assert.equal(sampled.tokens.length, 6);
  assert.ok(new Set(sampled.tokens.slice(0, 3).map((t) => t.join())).size > 1, "independent samples");
  assert.throws(() => generate(model, [prompt], { numReturnSequences: 2 }), /needs sampling/);
  model.dispose();
});

test("omni-dpo generate --do-sample --num-return-sequences --repetition-penalty", () => {
  const cli = fileURLToPath(new URL("../../src/cli/main.js", import.meta.url));
  const model = writeToyModel(join(root, "cli-model"), { seed: 9 });
  const args = [
    cli,
    "generate",
    "--model",
    model,
    "--prompt",
    "hello",
    "--prompt",
    "bye",
    "--max-new-tokens",
    "4",
    "--json",
    "--do-sample",
    "--num-return-sequences",
    "2",
    "--repetition-penalty",
    "1.2",
    "--device",
    "cpu",
  ];
  const r = spawnSync(process.execPath, args, { encoding: "utf8", env: { ...process.env, OMP_NUM_THREADS: "1" } });
  assert.equal(r.status, 0, r.stderr);
  const rows = r.stdout
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as { prompt: string });
  assert.deepEqual(
    rows.map((x) => x.prompt),
    ["hello", "hello", "bye", "bye"],
  );
  const bad = spawnSync(
    process.execPath,
    [cli, "generate", "--model", model, "--prompt", "x", "--num-return-sequences", "2"],
    { encoding: "utf8" },
  );
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /--num-return-sequences above 1 needs --do-sample/);
});
