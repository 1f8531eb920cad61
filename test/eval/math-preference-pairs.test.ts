// `omni-dpo data build --task math --prm DIR`: get_uni_dpo_data.py's pairing rules on hand-made
// labelled problems, and the whole pipeline on a tiny policy (the demo's arithmetic SFT model,
// whose usual answer to each problem is taken as its gold, so samples are right and wrong) with a
// tiny process reward model, through to `omni-dpo train` with loss_type uni_dpo; without a PRM,
// the verifiable reward as the score (the default of `data build` on problems with answers).
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import {
  binarizeUniDpo,
  labelMathProblems,
  normalizeScoreMargins,
  readMathProblems,
  type LabelledProblem,
} from "../../src/eval/math/preference-pairs.js";
import {
  createProcessRewardModel,
  loadProcessRewardModel,
  saveProcessRewardModel,
} from "../../src/models/process-reward.js";
import { loadModel } from "../../src/models/auto.js";
import type { CausalLM } from "../../src/models/causal-lm.js";
import { Tokenizer } from "../../src/text/index.js";
import { gradeMath, torch } from "../../src/index.js";
import { packageRoot } from "../../src/util/package-root.js";
import { tempDir, writeJsonl } from "../helpers/toy.js";
import { randomizeParameters } from "../helpers/batches.js";

const CLI = fileURLToPath(new URL("../../src/cli/main.js", import.meta.url));
const root = tempDir("omni-dpo-math-build-");
const cli = (args: string[]) =>
  spawnSync(process.execPath, [CLI, ...args], {
    encoding: "utf8",
    cwd: root,
    env: { ...process.env, OMP_NUM_THREADS: "1" },
    timeout: 120_000,
  });

const item = (
  responses: number,
  correct: boolean[],
  rewards: number[],
  extra: Partial<LabelledProblem> = {},
): LabelledProblem => ({
  i: 0,
  prompt: "p",
  responses: Array.from({ length: responses }, (_, n) => `r${n}`),
  correct,
  pred: [],
  min_rewards: rewards,
  avg_rewards: rewards.map((r) => r / 2),
  ...extra,
});

test("pairing follows get_uni_dpo_data.py: chosen correct above 6, rejected by strategy, used responses removed", () => {
  // 0..1 scores are scaled to 0..10; r1 (0.9 -> 9) is the best correct one; min takes the lowest wrong (r3, 2)
  const a = item(4, [true, true, false, false], [0.7, 0.9, 0.5, 0.2]);
  // (then a second pass pairs what is left: r0 (7, correct) with r2 (5, wrong))
  assert.deepEqual(
    binarizeUniDpo([a], { negStrategy: "min" }).map((p) => [p.chosen, p.rejected, p.score_chosen, p.score_rejected]),
    [
      ["r1", "r3", 9, 2],
      ["r0", "r2", 7, 5],
    ],
  );
  // positive: a low-scoring correct response first (r0, the only correct one at least the margin below r1;
  // at margin 0 the chosen response itself qualifies, and the reference may pair it with itself)
  const pairs = binarizeUniDpo([a], { negStrategy: "positive", scoreMargin: 0.5 });
  assert.deepEqual(pairs[0].rejected, "r0");
  assert.equal(pairs[0].correct_rejected, true);
  assert.equal(pairs.length, 1, "after r1 and r0 leave, no correct response remains above 6");
  // the margin relaxes by 0.5 until pairs are found: 3 -> 2.5 -> ... -> 0.5 pairs 8 with 7.4
  assert.equal(binarizeUniDpo([item(2, [true, false], [8, 7.4])], { scoreMargin: 3, negStrategy: "min" }).length, 1);
  // the margin: rejected at most score_chosen - margin; avg rewards (halved here) fall to 4.5 for the best, below 6
  assert.deepEqual(binarizeUniDpo([item(2, [true, false], [8, 7.6])], { scoreMargin: 0.5, negStrategy: "min" }), []);
  assert.equal(binarizeUniDpo([item(2, [true, false], [8, 7.4])], { scoreMargin: 0.5, negStrategy: "min" }).length, 1);
  assert.deepEqual(binarizeUniDpo([a], { rewardType: "avg" }), []);
  // several pairs from one problem, one per pass, each pass removing the pair it took
  const many = item(4, [true, true, false, false], [9, 8, 1, 2]);
  assert.deepEqual(
    binarizeUniDpo([many], { negStrategy: "min" }).map((p) => [p.chosen, p.rejected]),
    [
      ["r0", "r2"],
      ["r1", "r3"],
    ],
  );
  assert.equal(binarizeUniDpo([many], { negStrategy: "min", maxPairs: 1 }).length, 1);
  // dropped problems give nothing
  assert.deepEqual(binarizeUniDpo([{ ...many, dropped: "all_wrong" }], { negStrategy: "min" }), []);
  const norm = binarizeUniDpo([many], { negStrategy: "min" });
  normalizeScoreMargins(norm);
  assert.deepEqual(
    norm.map((p) => p.score_margin),
    [8, 6],
  );
  assert.ok(Math.abs(norm[0].score_margin_normalized! - 1 / (1 + 1e-6)) < 1e-9);
});

test("build pairs from a problems file with a tiny policy and a tiny PRM, resumably; they train with loss_type uni_dpo", async () => {
  const policy = join(packageRoot(), "assets", "arith-sft");
  // the PRM: a Qwen2 process reward model over the policy's character tokenizer ("Q" as its step separator)
  const prmDir = join(root, "prm");
  const prm = createProcessRewardModel(
    {
      architectures: ["Qwen2ForProcessRewardModel"],
      model_type: "qwen2",
      vocab_size: 24,
      hidden_size: 32,
      intermediate_size: 48,
      num_hidden_layers: 1,
      num_attention_heads: 4,
      num_key_value_heads: 2,
      max_position_embeddings: 512,
      rms_norm_eps: 1e-6,
      rope_theta: 10000,
      tie_word_embeddings: false,
    },
    { std: 0.2 },
  );
  randomizeParameters(prm, 5);
  // label 1 favoured, so that step scores spread around 0.8 and some responses clear the reference's bar of 6/10
  prm.setParameter("score.2.weight", torch.randn([2, 32]).mul(0.02));
  prm.setParameter("score.2.bias", torch.tensor([0, 1.5]));
  saveProcessRewardModel(prm, prmDir);
  prm.dispose();
  for (const f of ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"])
    copyFileSync(join(policy, f), join(prmDir, f));
  // golds: the policy's usual answers, so that its samples are partly right
  const problems = writeJsonl(join(root, "problems.jsonl"), [
    { problem: "2+3", answer: "5524" },
    { problem: "12+7", answer: 3281 },
    { problem: "34+21", answer: "12592" },
    { problem: "9*8", answer: "1" },
  ]);
  const out = join(root, "pairs.jsonl");
  const args = [
    "data",
    "build",
    "--task",
    "math",
    "--model",
    policy,
    "--prompts",
    problems,
    "--prm",
    prmDir,
    "--out",
    out,
    "--prompt-template",
    "Q:{input}=",
    "--step-token",
    "Q",
    "--samples",
    "6",
    "--temperature",
    "0.7",
    "--max-new-tokens",
    "50",
    "--score-margin",
    "0",
    "--json",
  ];
  const r = cli(args);
  assert.equal(r.status, 0, r.stderr);
  const summary = JSON.parse(r.stdout);
  assert.equal(summary.problems, 4);
  assert.ok(summary.pairs > 0, r.stdout);
  assert.ok(!existsSync(`${out}.progress.jsonl`), "the journal goes once the pairs are written");
  const pairs = readFileSync(out, "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l));
  for (const p of pairs) {
    assert.equal(
      p.prompt,
      ["Q:2+3=", "Q:12+7=", "Q:34+21=", "Q:9*8="].find((q) => q === p.prompt),
      "the prompt as the policy saw it",
    );
    const gold = { "Q:2+3=": "5524", "Q:12+7=": "3281", "Q:34+21=": "12592", "Q:9*8=": "1" }[p.prompt as string]!;
    assert.equal(p.correct_chosen, true);
    assert.equal(gradeMath(p.chosen, gold).correct, true, "chosen is graded correct by gradeMath");
    assert.equal(gradeMath(p.rejected, gold).correct, p.correct_rejected);
    assert.ok(p.score_chosen > 6 && p.score_chosen <= 10 && p.score_rejected <= p.score_chosen, JSON.stringify(p));
    assert.equal(typeof p.score_margin_normalized, "number");
  }

  // an interrupted build: the journal of one finished problem; the rerun redoes the rest, to the same pairs
  const out2 = join(root, "pairs2.jsonl");
  const journal = `${out2}.progress.jsonl`;
  const tok = Tokenizer.fromPretrainedSync(policy);
  const policyModel = loadModel(policy);
  const prmModel = loadProcessRewardModel(prmDir);
  await labelMathProblems(policyModel as CausalLM, tok, prmModel, tok, readMathProblems(problems), {
    samples: 6,
    temperature: 0.7,
    maxNewTokens: 50,
    promptTemplate: "Q:{input}=",
    stepToken: "Q",
    journal,
    identity: { policy: resolve(policy), prm: resolve(prmDir) },
  });
  policyModel.dispose();
  prmModel.dispose();
  writeFileSync(journal, readFileSync(journal, "utf8").split("\n").slice(0, 2).join("\n") + "\n");
  const resumed = cli(args.map((a) => (a === out ? out2 : a)));
  assert.equal(resumed.status, 0, resumed.stderr);
  assert.equal(JSON.parse(resumed.stdout).resumed, 1);
  assert.equal(readFileSync(out2, "utf8"), readFileSync(out, "utf8"));

  writeFileSync(
    join(root, "uni-dpo.yaml"),
    `model_name_or_path: ${policy}
dataset_mixer:
  pairs.jsonl: 1.0
output_dir: trained
loss_type: uni_dpo
learning_rate: 1.0e-3
max_steps: 2
per_device_train_batch_size: 2
max_length: 96
max_prompt_length: 16
logging_steps: 1
save_strategy: "no"
`,
  );
  const t = cli(["train", "uni-dpo.yaml"]);
  assert.equal(t.status, 0, t.stderr);
  const metrics = readFileSync(join(root, "trained", "metrics.jsonl"), "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l));
  assert.ok(
    metrics.some((m) => typeof m.loss === "number" && Number.isFinite(m.loss)),
    JSON.stringify(metrics[0]),
  );
});

test("without a PRM the verifiable reward (1 right, 0 wrong, x10) is the score, paired as get_uni_dpo_data.py", () => {
  const verifiable = (correct: boolean[]) =>
    item(correct.length, correct, correct.map(Number), {
      avg_rewards: correct.map(Number),
    });
  // min (the verifiable mode's default): each pass takes the first correct response (10, the first
  // of equals as Python's max) and the first wrong one (0, Python's min), and removes both
  const pairs = binarizeUniDpo([verifiable([true, false, true, false, false])], { negStrategy: "min" });
  assert.deepEqual(
    pairs.map((p) => [p.chosen, p.rejected, p.score_chosen, p.score_rejected, p.correct_rejected]),
    [
      ["r0", "r1", 10, 0, false],
      ["r2", "r3", 10, 0, false],
    ],
  );
  normalizeScoreMargins(pairs);
  assert.deepEqual(
    pairs.map((p) => p.score_margin_normalized),
    [0, 0],
    "equal margins normalise to 0",
  );
  // "positive" (the PRM default) with margin 0: the reference draws the rejected one from the correct
  // responses scoring at most chosen - 0, all of which tie at 10: two correct responses, margin 0
  const positive = binarizeUniDpo([verifiable([true, true, true, false, true, false])], { negStrategy: "positive" });
  assert.ok(positive.length > 0);
  for (const p of positive) assert.deepEqual([p.correct_rejected, p.score_margin], [true, 0]);
  // a margin above 0 leaves no correct response below the chosen one: a wrong one is taken
  const margin = binarizeUniDpo([verifiable([true, true, false])], { negStrategy: "positive", scoreMargin: 5 });
  assert.deepEqual(
    margin.map((p) => [p.chosen, p.rejected, p.score_margin]),
    [["r0", "r2", 10]],
  );
});

test("data build on problems with answers and no --prm or --scorer pairs correct with wrong samples", () => {
  const policy = join(packageRoot(), "assets", "arith-sft");
  const problems = writeJsonl(join(root, "verifiable-problems.jsonl"), [
    { problem: "2+3", answer: "5524" },
    { problem: "12+7", answer: 3281 },
    { problem: "34+21", answer: "12592" },
    { problem: "9*8", answer: "1" },
  ]);
  const out = join(root, "verifiable-pairs.jsonl");
  const r = cli([
    "data",
    "build",
    "--model",
    policy,
    "--prompts",
    problems,
    "--out",
    out,
    "--prompt-template",
    "Q:{input}=",
    "--samples",
    "6",
    "--temperature",
    "0.7",
    "--max-new-tokens",
    "50",
    "--json",
  ]);
  assert.equal(r.status, 0, r.stderr);
  const summary = JSON.parse(r.stdout);
  assert.equal(summary.problems, 4);
  assert.ok(summary.pairs > 0, r.stdout);
  const golds: Record<string, string> = { "Q:2+3=": "5524", "Q:12+7=": "3281", "Q:34+21=": "12592", "Q:9*8=": "1" };
  const pairs = readFileSync(out, "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l));
  for (const p of pairs) {
    const gold = golds[p.prompt];
    assert.ok(gold !== undefined, p.prompt);
    assert.equal(gradeMath(p.chosen, gold).correct, true, "chosen is graded correct");
    assert.equal(gradeMath(p.rejected, gold).correct, false, "rejected is graded wrong (min: a wrong response)");
    assert.deepEqual([p.score_chosen, p.score_rejected, p.correct_chosen, p.correct_rejected], [10, 0, true, false]);
  }
});
