// `omni-dpo iterate`: rounds of on-policy sampling, scoring, pairing and training on a tiny
// policy made here, through the command as a user runs it.
//   - two rounds leave round-1/ and round-2/ (pairs, build summary, training run, round.json)
//     and iterate.json with one row per round; round 2's responses are exactly what
//     `omni-dpo data build` samples from round 1's final model (and not the starting model's),
//     and its build summary records that model's path;
//   - the math task with the arithmetic task's scorer (the omni-dpo command registers it), and
//     a per-round evaluation equal to `omni-dpo eval --task math` on the round's model;
//   - the text task with a tiny reward model;
//   - kill -9 in round 2, then the same command: round 1 is not redone, and the rows equal an
//     uninterrupted run's;
//   - bad blocks are refused before any work, naming the recipe and the key;
//   - the text task scored by an LLM judge (judge_endpoint) behind `omni-dpo serve`;
//   - the graded math task with a PRM builds exactly the pairs `data build --task math --prm` builds;
//   - the graded math task resumes an interrupted build from its journal;
//   - iterations.endpoint and bad judge_* keys are refused by name.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { join, resolve } from "node:path";
import { labelMathProblems, readMathProblems } from "../../src/eval/math/preference-pairs.js";
import { loadModel } from "../../src/models/auto.js";
import type { CausalLM } from "../../src/models/causal-lm.js";
import { Tokenizer } from "../../src/text/index.js";
import { RunReader } from "../../src/report/run-data.js";
import { createProcessRewardModel, saveProcessRewardModel } from "../../src/models/process-reward.js";
import { torch } from "../../src/index.js";
import { randomizeParameters } from "../helpers/batches.js";
import type { RoundRow } from "../../src/train/iterate.js";
import { packageRoot } from "../../src/util/package-root.js";
import { writeToyRewardModel } from "../helpers/reward-model.js";
import { runCli, startProxy, startServeProcess, writeSharpChatModel } from "../helpers/serving.js";
import { tempDir, writeJsonl, writeToyModel } from "../helpers/toy.js";

const CLI = join(packageRoot(), "dist", "src", "cli", "main.js");
/** The package's omni-dpo command: the library's commands and the arith scorer. */
const APP = join(packageRoot(), "dist", "apps", "cli.js");
const root = tempDir("omni-dpo-iterate-");
after(() => rmSync(root, { recursive: true, force: true }));

const POLICY = writeToyModel(join(root, "policy"), { seed: 3 });
const WORDS = ["apple", "river", "stone", "cloud", "green", "tiger", "piano", "lemon"];
const PROMPTS = writeJsonl(
  join(root, "prompts.jsonl"),
  WORDS.map((w) => ({ prompt: `say ${w}:` })),
);
// A deterministic scorer: how often the response holds the prompt word's first letter, and its length.
const SCORER = join(root, "scorer.mjs");
writeFileSync(
  SCORER,
  "export function score(prompt, response) {\n" +
    "  return response.split(prompt.slice(4, 5)).length + response.length / 100;\n}\n",
);

const TRAINING = {
  model_name_or_path: POLICY,
  pref_loss: "dpo",
  beta: 0.1,
  learning_rate: 1e-3,
  num_train_epochs: 1,
  per_device_train_batch_size: 1,
  max_length: 48,
  max_prompt_length: 24,
  logging_steps: 1,
  save_steps: 1,
  pair_log_samples: 0,
};
const SAMPLING = { samples: 3, max_new_tokens: 8 };

function writeRecipe(name: string, iterations: Record<string, unknown>, training: Record<string, unknown> = {}) {
  const file = join(root, `${name}.yaml`);
  const keys = { ...TRAINING, output_dir: join(root, name), ...training };
  writeFileSync(
    file,
    Object.entries(keys)
      .map(([k, v]) => `${k}: ${JSON.stringify(v)}`)
      .join("\n") + `\niterations: ${JSON.stringify(iterations)}\n`,
  );
  return file;
}

function run(args: string[], bin = CLI) {
  const r = spawnSync(process.execPath, [bin, ...args], {
    encoding: "utf8",
    timeout: 120_000,
    env: { ...process.env, OMP_NUM_THREADS: "1" },
  });
  return { code: r.status, output: `${r.stdout}${r.stderr}`, stdout: r.stdout };
}

const readJson = <T>(file: string) => JSON.parse(readFileSync(file, "utf8")) as T;
const readJsonl = <T>(file: string) =>
  readFileSync(file, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as T);
const rowsOf = (dir: string) => readJson<{ rounds: RoundRow[] }>(join(dir, "iterate.json")).rounds;

/** The K responses of each prompt of a pairs file, in order. */
const responsesOf = (file: string) =>
  readJsonl<{ all_generated_responses: string[] }>(file).map((p) => p.all_generated_responses);

const TEXT_BLOCK = { rounds: 2, prompts: PROMPTS, prompts_per_round: 4, scorer: SCORER, ...SAMPLING };

test("two rounds: each round's directory, round 2 sampled from round 1's model, one iterate.json row per round", () => {
  const recipe = writeRecipe("two", TEXT_BLOCK);
  const r = run(["iterate", recipe]);
  assert.equal(r.code, 0, r.output);
  const out = join(root, "two");
  for (const k of [1, 2]) {
    for (const f of ["pairs.jsonl", "pairs.jsonl.summary.json", "round.json", "train/model.safetensors"])
      assert.ok(existsSync(join(out, `round-${k}`, f)), `round-${k}/${f}`);
    assert.ok(!existsSync(join(out, `round-${k}`, "pairs.jsonl.progress.jsonl")), "the build's journal is removed");
  }
  const round1Model = join(out, "round-1", "train");
  const summary = readJson<{ sampling_model: string; round: number }>(join(out, "round-2", "pairs.jsonl.summary.json"));
  assert.equal(summary.sampling_model, round1Model);
  assert.equal(summary.round, 2);
  // Round 2's prompts are the file's second four; data build samples them from round 1's model alone.
  const second = writeJsonl(
    join(root, "second.jsonl"),
    WORDS.slice(4).map((w) => ({ prompt: `say ${w}:` })),
  );
  const build = (model: string, file: string) => {
    const b = run(
      [
        "data",
        "build",
        "--task",
        "text",
        "--model",
        model,
        "--prompts",
        second,
        "--scorer",
        SCORER,
        "--samples",
        "3",
      ].concat(["--max-new-tokens", "8", "--out", file]),
    );
    assert.equal(b.code, 0, b.output);
    return responsesOf(file);
  };
  const round2 = responsesOf(join(out, "round-2", "pairs.jsonl"));
  assert.deepEqual(round2, build(round1Model, join(root, "from-round-1.jsonl")));
  assert.notDeepEqual(round2, build(POLICY, join(root, "from-start.jsonl")));
  const rows = rowsOf(out);
  assert.deepEqual(
    rows.map((row) => [row.round, row.sampling_model, row.prompts, row.model]),
    [
      [1, POLICY, 4, round1Model],
      [2, round1Model, 4, join(out, "round-2", "train")],
    ],
  );
  for (const [i, row] of rows.entries()) {
    const pairs = readJsonl(join(out, `round-${i + 1}`, "pairs.jsonl")).length;
    assert.equal(row.pairs, pairs);
    assert.equal(row.train_steps, pairs, "one epoch of one pair a step");
    const trainLoss = readJson<{ train_loss: number }>(join(row.model, "train_results.json")).train_loss;
    assert.equal(row.train_loss, trainLoss);
    assert.equal(row.reference_model, null, "round k's reference is the model it starts from (reference: previous)");
  }
  // The dashboard shows the rounds as one run: a row per round (x: the round).
  const view = new RunReader(out, 0).snapshot();
  assert.equal(view.status.state, "finished");
  assert.deepEqual(
    view.rows.map((v) => [v.step, v.round_pairs, v.round_train_loss]),
    rows.map((row) => [row.round, row.pairs, row.train_loss]),
  );
  // The console carries one row per round.
  assert.match(r.stdout, /round 1: \d+ pairs from 4 prompts/);
  assert.match(r.stdout, /round 2: \d+ pairs from 4 prompts/);
});

test("the math task with the arith scorer, and each round evaluated as omni-dpo eval --task math", () => {
  const problems = [
    [12, "+", 7],
    [30, "-", 4],
    [6, "*", 7],
    [45, "+", 45],
  ] as const;
  const prompts = writeJsonl(
    join(root, "arith.jsonl"),
    problems.map(([a, op, b]) => ({ prompt: `Q:${a}${op}${b}=`, answer: String(eval(`${a}${op}${b}`)) })),
  );
  const bench = writeJsonl(
    join(root, "bench.jsonl"),
    problems.map(([a, op, b]) => ({ problem: `${a}${op}${b}`, answer: String(eval(`${a}${op}${b}`)) })),
  );
  const evalBlock = { task: "math", data: bench, max_new_tokens: 8, prompt_template: "Q:{input}=" };
  const recipe = writeRecipe("arith", { ...TEXT_BLOCK, prompts, task: "math", scorer: "arith", eval: evalBlock });
  const r = run(["iterate", recipe], APP);
  assert.equal(r.code, 0, r.output);
  const out = join(root, "arith");
  const rows = rowsOf(out);
  assert.equal(rows.length, 2);
  assert.equal(readJson<{ scorer: string }>(join(out, "round-1", "pairs.jsonl.summary.json")).scorer, "arith");
  const e = run(
    ["eval", "--task", "math", "--model", rows[1].model, "--data", bench, "--dataset", "math"].concat([
      "--max-new-tokens",
      "8",
      "--prompt-template",
      "Q:{input}=",
      "--json",
    ]),
  );
  assert.equal(e.code, 0, e.output);
  const direct = JSON.parse(e.stdout) as { accuracy: number; generated_tokens: number };
  assert.equal(rows[1].eval!.accuracy, direct.accuracy);
  assert.equal(rows[1].eval!.generated_tokens, direct.generated_tokens);
  assert.deepEqual(readJson(join(out, "round-2", "eval.json")), rows[1].eval);
  const view = new RunReader(out, 0).snapshot();
  assert.deepEqual(
    view.rows.map((v) => v.round_eval_accuracy),
    rows.map((row) => row.eval!.accuracy),
  );
});

test("the graded math task: a round with no right answer makes no pairs and stops, naming its summary", () => {
  // The random policy answers no sum right: every response scores 0 and no prompt yields a pair.
  const prompts = writeJsonl(
    join(root, "sums.jsonl"),
    [
      ["12+7", 19],
      ["30-4", 26],
    ].map(([q, a]) => ({ prompt: `Q:${q}=`, answer: a })),
  );
  const r = run([
    "iterate",
    writeRecipe("graded", { ...TEXT_BLOCK, prompts, task: "math", scorer: null, prompt_template: "{input}" }),
  ]);
  assert.equal(r.code, 1, r.output);
  assert.match(
    r.output,
    /round 1: the build made no pairs from 2 prompts \(see .*round-1\/pairs\.jsonl\.summary\.json\)/,
  );
  // Built as data build --task math builds: both problems dropped (no right answer, or no answer at all).
  const summary = readJson<{ scorer: string; problems: number; labelled: number; dropped: Record<string, number> }>(
    join(root, "graded", "round-1", "pairs.jsonl.summary.json"),
  );
  assert.deepEqual([summary.scorer, summary.problems, summary.labelled], ["math grader", 2, 0]);
  assert.equal((summary.dropped.all_wrong ?? 0) + (summary.dropped.no_answer ?? 0), 2);
});

test("the text task with a tiny reward model; reference: initial; each round's win rate as omni-dpo eval --task winrate", () => {
  const rm = writeToyRewardModel(join(root, "rm"));
  const heldOut = writeJsonl(
    join(root, "held-out.jsonl"),
    ["north", "candle", "mirror", "garden"].map((w) => ({ prompt: `say ${w}:` })),
  );
  const evalBlock = { task: "winrate", prompts: heldOut, reward_model: rm, max_new_tokens: 8 };
  const block = {
    rounds: 2,
    prompts: PROMPTS,
    prompts_per_round: 3,
    reward_model: rm,
    reference: "initial",
    eval: evalBlock,
    ...SAMPLING,
  };
  const r = run(["iterate", writeRecipe("rm-run", block), "--json"]);
  assert.equal(r.code, 0, r.output);
  const rows = (JSON.parse(r.stdout) as { rounds: RoundRow[] }).rounds;
  assert.deepEqual(rowsOf(join(root, "rm-run")), rows);
  assert.deepEqual(
    rows.map((row) => [row.round, row.prompts]),
    [
      [1, 3],
      [2, 3],
    ],
  );
  const summary = readJson<{ scorer: string; pairs: number }>(
    join(root, "rm-run", "round-2", "pairs.jsonl.summary.json"),
  );
  assert.equal(summary.scorer, `reward model ${rm}`);
  assert.equal(summary.pairs, rows[1].pairs);
  // Round 2 trains from round 1's model against the starting model, as its checkpoints record.
  assert.deepEqual(
    rows.map((row) => row.reference_model),
    [null, POLICY],
  );
  const state = readJson<{ config: { model_name_or_path: string; ref_model: string } }>(
    join(rows[1].model, "checkpoint-1", "omni_dpo_state.json"),
  );
  assert.deepEqual([state.config.model_name_or_path, state.config.ref_model], [rows[0].model, POLICY]);
  // The win rate of round 2's model against the starting model's answers (generated once, kept).
  assert.ok(existsSync(join(root, "rm-run", "winrate-baseline.json")));
  const e = run(
    ["eval", "--task", "winrate", "--model", rows[1].model, "--baseline", POLICY, "--reward-model", rm].concat([
      "--prompts",
      heldOut,
      "--max-new-tokens",
      "8",
      "--json",
    ]),
  );
  assert.equal(e.code, 0, e.output);
  const direct = JSON.parse(e.stdout) as { win_rate: number; mean_length: number; n: number };
  const logged = rows[1].eval as { task: string; win_rate: number; mean_length: number; n: number };
  assert.deepEqual(
    [logged.task, logged.win_rate, logged.mean_length, logged.n],
    ["winrate", direct.win_rate, direct.mean_length, direct.n],
  );
});

test("kill -9 in round 2, then the same command finishes without redoing round 1", async () => {
  const block = { ...TEXT_BLOCK, prompts_per_round: 6 };
  const recipe = writeRecipe("killed", block, { num_train_epochs: 2 });
  const out = join(root, "killed");
  const train2 = join(out, "round-2", "train");
  // Killed as soon as round 2's training has written its first checkpoint.
  const child = spawn(process.execPath, [CLI, "iterate", recipe], {
    env: { ...process.env, OMP_NUM_THREADS: "1" },
    stdio: "ignore",
  });
  const exited = new Promise((resolve) => child.on("exit", resolve));
  const started = Date.now();
  while (!(existsSync(train2) && readdirSync(train2).some((f) => /^checkpoint-\d+$/.test(f)))) {
    assert.ok(Date.now() - started < 120_000, "round 2's training never checkpointed");
    assert.equal(child.exitCode, null, "iterate finished before it could be killed");
    await new Promise((r) => setTimeout(r, 5));
  }
  child.kill("SIGKILL");
  await exited;
  assert.ok(!existsSync(join(out, "round-2", "round.json")), "killed inside round 2");
  const view = new RunReader(out, 0).snapshot();
  assert.deepEqual([view.status.state, view.rows.length], ["interrupted", 1]);
  const round1 = ["round.json", "pairs.jsonl", "train/model.safetensors"].map((f) => join(out, "round-1", f));
  const before = round1.map((f) => statSync(f).mtimeMs);
  const r = run(["iterate", recipe]);
  assert.equal(r.code, 0, r.output);
  assert.doesNotMatch(r.output, /round 1: (sampling|training)/);
  assert.match(r.output, /resum/i);
  assert.deepEqual(
    round1.map((f) => statSync(f).mtimeMs),
    before,
    "round 1's files are untouched",
  );
  // The same pairs and final models as an uninterrupted run (train_loss is the resumed session's own).
  const whole = writeRecipe("whole", block, { num_train_epochs: 2 });
  assert.equal(run(["iterate", whole]).code, 0);
  const strip = (rows: RoundRow[]) => rows.map((row) => [row.pairs, row.train_steps, row.prompts]);
  assert.deepEqual(strip(rowsOf(out)), strip(rowsOf(join(root, "whole"))));
  for (const f of ["round-2/pairs.jsonl", "round-2/train/model.safetensors"])
    assert.ok(readFileSync(join(out, f)).equals(readFileSync(join(root, "whole", f))), f);
});

test("bad iterations blocks are refused before any work, naming the recipe and the key", () => {
  const cases: [string, Record<string, unknown>, RegExp][] = [
    [
      "misspelt",
      { ...TEXT_BLOCK, sampels: 3 },
      /unknown key 'iterations\.sampels' \(did you mean 'iterations\.samples'\?\)/,
    ],
    [
      "no-prompts",
      { ...TEXT_BLOCK, prompts: join(root, "missing.jsonl") },
      /key 'iterations\.prompts': .*missing\.jsonl: file not found/,
    ],
    ["zero", { ...TEXT_BLOCK, rounds: 0 }, /key 'iterations\.rounds' must be at least 1, got 0/],
    [
      "no-rm",
      { ...TEXT_BLOCK, scorer: null, reward_model: join(root, "no-rm") },
      /key 'iterations\.reward_model': .*no-rm: file not found/,
    ],
    [
      "no-scorer",
      { ...TEXT_BLOCK, scorer: null },
      /key 'iterations\.reward_model': the text task needs a reward model/,
    ],
    [
      "winrate",
      { ...TEXT_BLOCK, eval: { task: "winrate", prompts: PROMPTS } },
      /missing key 'iterations\.eval\.reward_model'/,
    ],
  ];
  for (const [name, block, message] of cases) {
    const recipe = writeRecipe(`bad-${name}`, block);
    const r = run(["iterate", recipe]);
    assert.equal(r.code, 1, `${name}: ${r.output}`);
    assert.match(r.output, new RegExp(recipe.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")), name);
    assert.match(r.output, message, name);
    assert.ok(!existsSync(join(root, `bad-${name}`)), `${name}: nothing written`);
  }
  // The math task without a scorer grades against each prompt's answer: a prompt without one is refused, by line.
  const math = writeRecipe("bad-answer", { ...TEXT_BLOCK, task: "math", scorer: null });
  const noAnswer = run(["iterate", math]);
  assert.match(noAnswer.output, /prompts\.jsonl:1: field 'answer' must be a non-empty string or a number/);
  assert.ok(!existsSync(join(root, "bad-answer")));
  // omni-dpo train refuses the block, naming the command it belongs to.
  const train = run(["train", writeRecipe("bad-train", TEXT_BLOCK, { train_data_path: PROMPTS })]);
  assert.match(train.output, /key 'iterations' belongs to omni-dpo iterate/);
  // iterate --help lists the block's keys.
  const help = run(["iterate", "--help"]).stdout;
  for (const key of ["rounds", "prompts", "prompts_per_round", "task", "reward_model", "samples", "reference", "eval"])
    assert.match(help, new RegExp(`^  ${key} \\(`, "m"), key);
  // A training key of the recipe is checked too, before any sampling.
  const recipe = writeRecipe("bad-training", TEXT_BLOCK, { learning_rat: 1e-3 });
  const r = run(["iterate", recipe]);
  assert.match(r.output, /unknown key 'learning_rat'/);
  assert.ok(!existsSync(join(root, "bad-training")));
});

test("the text task scored by an LLM judge behind omni-dpo serve: every response asked, verdicts counted", async () => {
  // A tiny chat model served as the judge: random weights never write "Rating: N", so every verdict
  // is asked again once, every response is left unscored, and round 1 stops with no pairs.
  const serve = await startServeProcess(["--model", writeSharpChatModel(join(root, "judge")), "--name", "toy"]);
  const proxy = await startProxy(serve.url);
  try {
    // A short rubric: the shipped one is longer than the tiny model's positions.
    const rubric = join(root, "rubric.txt");
    writeFileSync(rubric, "Rate 1-10.\n{{prompt}}\n{{response}}\nRating: N");
    const block = {
      ...TEXT_BLOCK,
      scorer: null,
      judge_endpoint: proxy.url,
      judge_model: "toy",
      judge_template: rubric,
      judge_retries: 1,
      judge_max_tokens: 4,
    };
    const r = await runCli(["iterate", writeRecipe("judged", block)]);
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /round 1: the build made no pairs from 4 prompts/);
    const summary = readJson<{
      scorer: string;
      responses: number;
      unscored_responses: number;
      dropped: { identical_responses: number };
      judge: { asked: number; unparseable: number; dropped: number; refused: number };
    }>(join(root, "judged", "round-1", "pairs.jsonl.summary.json"));
    assert.match(summary.scorer, /^LLM judge endpoint http:\/\/127\.0\.0\.1:\d+\/v1 model toy rubric .*rubric\.txt/);
    const scored = summary.unscored_responses;
    assert.ok(scored > 0 && scored <= summary.responses);
    assert.deepEqual(summary.judge, { asked: 2 * scored, unparseable: 2 * scored, dropped: scored, refused: 0 });
    assert.equal(proxy.requests.filter((q) => q.path === "/chat/completions" && q.status === 200).length, 2 * scored);
  } finally {
    await proxy.close();
    await serve.stop();
  }
});

test("judge and endpoint keys: refused before any work, naming the key", () => {
  const cases: [string, Record<string, unknown>, RegExp][] = [
    [
      "endpoint",
      { ...TEXT_BLOCK, endpoint: "http://127.0.0.1:8000/v1" },
      /key 'iterations\.endpoint': iterate samples each round from the previous round's model, which exists only/,
    ],
    ["judge-model", { ...TEXT_BLOCK, scorer: null, judge_endpoint: "http://x/v1" }, /key 'iterations\.judge_model'/],
    ["judge-url", { ...TEXT_BLOCK, scorer: null, judge_endpoint: "x", judge_model: "m" }, /must be an http\(s\) URL/],
    ["stray", { ...TEXT_BLOCK, judge_model: "m" }, /key 'iterations\.judge_model' needs iterations\.judge_endpoint/],
    [
      "two-scorers",
      { ...TEXT_BLOCK, judge_endpoint: "http://x/v1", judge_model: "m" },
      /keys 'iterations\.scorer' and 'iterations\.judge_endpoint': give one scorer/,
    ],
    [
      "math-judge",
      { ...TEXT_BLOCK, scorer: null, task: "math", judge_endpoint: "http://x/v1", judge_model: "m" },
      /key 'iterations\.judge_endpoint' belongs to the text task/,
    ],
    [
      "template",
      { ...TEXT_BLOCK, scorer: null, judge_endpoint: "http://x/v1", judge_model: "m", judge_template: PROMPTS },
      /key 'iterations\.judge_template': .*prompts\.jsonl: a judge template must contain \{\{prompt\}\}/,
    ],
  ];
  for (const [name, block, message] of cases) {
    const recipe = writeRecipe(`bad-${name}`, block);
    const r = run(["iterate", recipe]);
    assert.equal(r.code, 1, `${name}: ${r.output}`);
    assert.match(r.output, message, name);
    assert.ok(!existsSync(join(root, `bad-${name}`)), `${name}: nothing written`);
  }
});

test("the graded math task with a PRM builds each round's pairs exactly as data build --task math --prm does", () => {
  const policy = join(packageRoot(), "assets", "arith-sft");
  // A tiny Qwen2 process reward model over the policy's character tokenizer ("Q" as its step separator),
  // label 1 favoured so that step scores spread around 0.8 and some answers clear the reference's bar of 6/10.
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
  prm.setParameter("score.2.weight", torch.randn([2, 32]).mul(0.02));
  prm.setParameter("score.2.bias", torch.tensor([0, 1.5]));
  saveProcessRewardModel(prm, prmDir);
  prm.dispose();
  for (const f of ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"])
    copyFileSync(join(policy, f), join(prmDir, f));
  // Golds: the policy's usual answers, so that its samples are partly right.
  const problems = writeJsonl(join(root, "arith-problems.jsonl"), [
    { problem: "2+3", answer: "5524" },
    { problem: "12+7", answer: 3281 },
    { problem: "34+21", answer: "12592" },
    { problem: "9*8", answer: "1" },
  ]);
  const block = {
    rounds: 1,
    prompts: problems,
    task: "math",
    prm: prmDir,
    step_token: "Q",
    prompt_template: "Q:{input}=",
    samples: 6,
    temperature: 0.7,
    top_p: 0.8,
    max_new_tokens: 50,
    batch_size: 4,
  };
  const r = run(["iterate", writeRecipe("prm", block, { model_name_or_path: policy, max_length: 96 })]);
  assert.equal(r.code, 0, r.output);
  const round = join(root, "prm", "round-1");
  const summary = readJson<{ scorer: string; pairs: number; sampling_model: string }>(
    join(round, "pairs.jsonl.summary.json"),
  );
  assert.ok(summary.pairs > 0);
  assert.match(summary.scorer, /^math grader \+ PRM .*prm \(min\)$/);
  assert.ok(!existsSync(join(round, "pairs.jsonl.progress.jsonl")), "the build's journal is removed");
  const alone = join(root, "prm-alone.jsonl");
  const build = run([
    ...["data", "build", "--task", "math", "--model", policy, "--prompts", problems, "--prm", prmDir],
    ...["--out", alone, "--prompt-template", "Q:{input}=", "--step-token", "Q", "--samples", "6"],
    ...["--temperature", "0.7", "--top-p", "0.8", "--max-new-tokens", "50", "--batch-size", "4"],
  ]);
  assert.equal(build.code, 0, build.output);
  assert.ok(readFileSync(join(round, "pairs.jsonl")).equals(readFileSync(alone)), "the same pairs, byte for byte");
});

test("the graded math task resumes an interrupted build from its journal, to data build --task math's pairs", async () => {
  const policy = join(packageRoot(), "assets", "arith-sft");
  // Golds: the policy's usual answers; it answers 9*8 two ways, so that problem pairs a right and a wrong one.
  const problemsFile = writeJsonl(join(root, "arith-resume.jsonl"), [
    { problem: "2+3", answer: "5524" },
    { problem: "12+7", answer: 0 },
    { problem: "9*8", answer: "79" },
  ]);
  const settings = { samples: 4, temperature: 0.7, topP: 0.8, maxNewTokens: 40, promptTemplate: "Q:{input}=" };
  // An interrupted round 1: its journal holds the first problem's work only (the build stopped after one batch).
  const round = join(root, "resume", "round-1");
  mkdirSync(round, { recursive: true });
  const model = loadModel(policy);
  const tokenizer = Tokenizer.fromPretrainedSync(policy);
  await assert.rejects(
    labelMathProblems(model as CausalLM, tokenizer, null, null, readMathProblems(problemsFile), {
      ...settings,
      batchSize: 1,
      journal: join(round, "pairs.jsonl.progress.jsonl"),
      identity: { policy: resolve(policy), prm: null, round: 1 },
      onProgress: (done) => {
        if (done === 1) throw new Error("interrupted");
      },
    }),
    /interrupted/,
  );
  model.dispose();
  const block = {
    rounds: 1,
    prompts: problemsFile,
    task: "math",
    prompt_template: "Q:{input}=",
    samples: 4,
    temperature: 0.7,
    top_p: 0.8,
    max_new_tokens: 40,
    batch_size: 1,
  };
  const r = await runCli(["iterate", writeRecipe("resume", block, { model_name_or_path: policy, max_length: 96 })]);
  assert.equal(r.status, 0, r.stderr);
  const summary = readJson<{ resumed: number; problems: number }>(join(round, "pairs.jsonl.summary.json"));
  assert.deepEqual([summary.resumed, summary.problems], [1, 3]);
  const alone = join(root, "resume-alone.jsonl");
  const build = run([
    ...["data", "build", "--task", "math", "--model", policy, "--prompts", problemsFile, "--out", alone],
    ...["--prompt-template", "Q:{input}=", "--samples", "4", "--temperature", "0.7", "--top-p", "0.8"],
    ...["--max-new-tokens", "40", "--batch-size", "1"],
  ]);
  assert.equal(build.code, 0, build.output);
  assert.ok(readFileSync(join(round, "pairs.jsonl")).equals(readFileSync(alone)), "the same pairs, byte for byte");
});
