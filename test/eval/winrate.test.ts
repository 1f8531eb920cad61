// `omni-dpo eval --task winrate` end to end, with tiny models made here:
//   - a tiny policy against its own starting point, judged by a tiny reward model: the per-prompt
//     records recompute to the reported win rate, interval and length-controlled figure, and their
//     rewards equal the reward model's score of each conversation scored alone;
//   - an evaluation killed (kill -9) mid-run continues from its journal to the same records, and
//     a judge that fails mid-run leaves a journal the next run resumes;
//   - the LLM-judge path against `omni-dpo serve` (a tiny model as policy and judge, the baseline a
//     JSONL of reference outputs): every unparseable verdict or rating counted and reported, exit 0;
//   - parsed verdicts, from a local server speaking the protocol whose judge prefers the longer
//     answer and, at equal length, the first shown: each pair asked in both orders, the win rate,
//     ties and position consistency worked out by hand;
//   - score mode with the reward model: the mean scores are the mean rewards; an answer past the
//     reward model's context is cut and counted;
//   - a baseline file for other prompts is an error naming its line.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createServer } from "node:http";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { torch, saveModel } from "../../src/index.js";
import { loadModel } from "../../src/models/auto.js";
import { rewardInput } from "../../src/data/reward.js";
import { readPromptRows } from "../../src/data/readers.js";
import { loadSequenceClassifier } from "../../src/models/sequence-classification.js";
import { Tokenizer } from "../../src/text/index.js";
import type { Message } from "../../src/data/records.js";
import {
  evaluateWinRate,
  formatWinRate,
  llmPairwiseJudge,
  generateAnswers,
  readBaselineAnswers,
  rewardModelJudge,
  type WinRateRecord,
} from "../../src/eval/winrate/index.js";
import { EndpointGenerator } from "../../src/generation/endpoint.js";
import { llmJudgeScorer } from "../../src/eval/llm-judge.js";
import { LocalGenerator } from "../../src/generation/local.js";
import { promptIds } from "../../src/generation/prompt.js";
import { bootstrapCI, lengthControlledWinRate } from "../../src/eval/winrate/stats.js";
import { packageRoot } from "../../src/util/package-root.js";
import { runCli, startServeProcess, writeSharpChatModel, type ServeProcess } from "../helpers/serving.js";
import { writeToyRewardModel } from "../helpers/reward-model.js";
import { tempDir, writeJsonl } from "../helpers/toy.js";

torch.setNumThreads(1);
const root = tempDir("omni-dpo-winrate-");
const BASE = writeSharpChatModel(join(root, "base"));
const POLICY = trainedFrom(BASE, join(root, "policy"));
const RM = writeToyRewardModel(join(root, "rm"), { chatTemplate: "chatml" });
const WORDS = ["apple", "river", "stone", "cloud", "green", "tiger", "piano", "lemon"];
const PROMPTS = writeJsonl(join(root, "prompts.jsonl"), [
  ...WORDS.map((w) => ({ prompt: `say ${w}` })),
  {
    prompt: [
      { role: "system", content: "one word" },
      { role: "user", content: "say north" },
    ],
  },
]);
let serve: ServeProcess;

before(async () => {
  serve = await startServeProcess(["--model", BASE, "--name", "toy"]);
});
after(async () => {
  await serve?.stop();
  rmSync(root, { recursive: true, force: true });
});

/** "Training": the starting point with every weight moved a little (a policy that answers differently). */
function trainedFrom(start: string, dir: string): string {
  writeSharpChatModel(dir);
  const model = loadModel(dir);
  torch.manualSeed(11);
  torch.noGrad(() =>
    torch.tidy(() => {
      for (const [name, p] of model.namedParameters()) model.setParameter(name, p.add(torch.randn(p.shape).mul(0.15)));
    }),
  );
  saveModel(model, dir);
  model.dispose();
  assert.ok(existsSync(join(start, "config.json")));
  return dir;
}

const readRecords = (file: string) =>
  readFileSync(file, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as WinRateRecord);

const RM_ARGS = ["eval", "--task", "winrate", "--model", POLICY, "--baseline", BASE, "--prompts", PROMPTS];
const RM_ARGS_TAIL = ["--reward-model", RM, "--max-new-tokens", "6", "--json"];

interface Summary {
  win_rate: number | null;
  ci95: [number, number] | null;
  lc_win_rate: number | null;
  ties: number;
  wins: number;
  losses: number;
  n: number;
  mean_length: number;
  baseline_mean_length: number;
  unparseable: number;
  unjudged: number;
  resumed: number;
  position_consistency?: number | null;
  mean_score?: number | null;
  records?: unknown;
}

let firstRecords: WinRateRecord[] = [];

test("reward-model judge: the records recompute to the report, and hold the reward model's scores", async () => {
  const out = join(root, "rm-records.jsonl");
  const r = await runCli([...RM_ARGS, ...RM_ARGS_TAIL, "--batch-size", "4", "--out", out]);
  assert.equal(r.status, 0, r.stderr);
  const s = JSON.parse(r.stdout) as Summary;
  assert.equal(s.records, undefined);
  const records = readRecords(out);
  firstRecords = records;
  assert.equal(records.length, 9);
  assert.equal(s.n, 9);
  assert.ok(!existsSync(`${out}.journal`), "the journal is removed once the records are written");
  assert.ok(
    records.some((x) => x.answer !== x.baseline_answer),
    "the policy answers differently from its start",
  );

  // The rewards are the reward model's, each conversation scored alone (no batch, no padding).
  const rm = loadSequenceClassifier(RM);
  const tok = Tokenizer.fromPretrainedSync(RM);
  const alone = (prompt: WinRateRecord["prompt"], response: string) => {
    const ids = rewardInput(tok, { prompt, promptText: "", chat: false, response, at: "test" });
    return rm.scoreTokenLists([ids])[0][0];
  };
  try {
    for (const x of records) {
      const [m, b] = x.scores as [number, number];
      assert.ok(Math.abs(m - alone(x.prompt, x.answer)) < 1e-4, `record ${x.i}: model reward`);
      assert.ok(Math.abs(b - alone(x.prompt, x.baseline_answer)) < 1e-4, `record ${x.i}: baseline reward`);
      assert.equal(x.preference, m > b ? 1 : m < b ? 0 : 0.5);
      assert.equal(x.winner, m > b ? "model" : m < b ? "baseline" : "tie");
      assert.equal(x.length, x.answer.length);
    }
  } finally {
    rm.dispose();
  }
  // Every figure recomputes from the records.
  const prefs = records.map((x) => x.preference!);
  assert.equal(s.win_rate, prefs.reduce((a, p) => a + p, 0) / prefs.length);
  assert.equal(s.wins, records.filter((x) => x.winner === "model").length);
  assert.equal(s.ties, records.filter((x) => x.winner === "tie").length);
  assert.equal(s.losses, records.filter((x) => x.winner === "baseline").length);
  assert.deepEqual(s.ci95, bootstrapCI(prefs, { seed: 0 }));
  const diffs = records.map((x) => x.length - x.baseline_length);
  assert.equal(s.lc_win_rate, lengthControlledWinRate(prefs, diffs).lcWinRate);
  assert.equal(s.mean_length, records.reduce((a, x) => a + x.length, 0) / records.length);
  assert.equal(s.baseline_mean_length, records.reduce((a, x) => a + x.baseline_length, 0) / records.length);
  assert.equal(s.position_consistency, undefined);

  // The records file is never overwritten.
  const again = await runCli([...RM_ARGS, ...RM_ARGS_TAIL, "--out", out]);
  assert.equal(again.status, 2);
  assert.match(again.stderr, /rm-records\.jsonl: the file exists/);
});

test("an evaluation killed with -9 continues from its journal to the same records", async () => {
  assert.ok(firstRecords.length, "needs the first test's records");
  const out = join(root, "killed.jsonl");
  const args = [...RM_ARGS, ...RM_ARGS_TAIL, "--batch-size", "1", "--out", out];
  const cli = join(packageRoot(), "dist", "src", "cli", "main.js");
  const child = spawn(process.execPath, [cli, ...args], { env: { ...process.env, OMP_NUM_THREADS: "1" } });
  const journal = `${out}.journal`;
  // Killed once a few answers are journaled (header + 3 lines).
  while (!(existsSync(journal) && readFileSync(journal, "utf8").split("\n").length > 4)) {
    assert.equal(child.exitCode, null, "the run finished before it could be killed");
    await new Promise((r) => setTimeout(r, 10));
  }
  child.kill("SIGKILL");
  await new Promise((r) => child.once("exit", r));
  assert.ok(!existsSync(out));
  const r = await runCli(args);
  assert.equal(r.status, 0, r.stderr);
  const records = readRecords(out);
  assert.deepEqual(
    records.map((x) => [x.answer, x.baseline_answer, x.winner]),
    firstRecords.map((x) => [x.answer, x.baseline_answer, x.winner]),
  );
});

test("a judge failing mid-run leaves a journal the next run resumes; another evaluation's is refused", async () => {
  const prompts = readPromptRows(PROMPTS);
  const answers = firstRecords.map((x) => x.answer);
  const baselineAnswers = firstRecords.map((x) => x.baseline_answer);
  const journal = join(root, "library.journal");
  const rm = loadSequenceClassifier(RM);
  try {
    const judge = rewardModelJudge(rm, Tokenizer.fromPretrainedSync(RM), { dir: RM });
    let calls = 0;
    const failing = {
      ...judge,
      comparePairs: async (pairs: Parameters<typeof judge.comparePairs>[0]) => {
        if (calls++ === 2) throw new Error("judge lost");
        return judge.comparePairs(pairs);
      },
    };
    const options = { prompts, answers, baselineAnswers, batchSize: 3, journal };
    await assert.rejects(evaluateWinRate({ ...options, judge: failing }), /judge lost/);
    const resumed = await evaluateWinRate({ ...options, judge });
    assert.equal(resumed.resumed, 6);
    const whole = await evaluateWinRate({ prompts, answers, baselineAnswers, judge });
    assert.deepEqual(
      resumed.records.map((x) => x.preference),
      whole.records.map((x) => x.preference),
    );
    assert.equal(resumed.win_rate, whole.win_rate);
    await assert.rejects(evaluateWinRate({ ...options, judge, mode: "score" }), (e: Error) =>
      e.message.includes(`${journal}: this journal belongs to another evaluation`),
    );
  } finally {
    rm.dispose();
  }
});

test("LLM judge through omni-dpo serve: unparseable verdicts and ratings counted and reported, exit 0", async () => {
  // The baseline as AlpacaEval ships reference outputs; the judge prompts short enough for 128 positions.
  const baseline = writeJsonl(join(root, "reference.jsonl"), [
    ...WORDS.map((w) => ({ instruction: `say ${w}`, output: w, generator: "reference" })),
    { output: "north" },
  ]);
  const pairwise = join(root, "pairwise.txt");
  writeFileSync(pairwise, "{{prompt}}\nA: {{answer_a}}\nB: {{answer_b}}\n[[A>B]] or [[B>A]]?");
  const rubric = join(root, "rubric.txt");
  writeFileSync(rubric, "{{prompt}}\n{{response}}\nRating: N");
  const common = [
    ...["eval", "--task", "winrate", "--endpoint", serve.url, "--endpoint-model", "toy"],
    ...["--baseline", baseline, "--prompts", PROMPTS, "--judge-endpoint", serve.url, "--judge-model", "toy"],
    ...["--max-new-tokens", "4", "--judge-max-tokens", "8", "--json"],
  ];
  const r = await runCli([...common, "--judge-template", pairwise]);
  assert.equal(r.status, 0, r.stderr);
  const s = JSON.parse(r.stdout) as Summary;
  // Random weights never write a [[verdict]]: both orders of all 9 pairs are unparseable.
  assert.equal(s.unparseable, 18);
  assert.equal(s.unjudged, 9);
  assert.equal(s.n, 0);
  assert.equal(s.win_rate, null);
  assert.equal(s.ci95, null);
  assert.equal(s.position_consistency, null);
  assert.equal(s.baseline_mean_length, (WORDS.join("").length + "north".length) / 9);

  const scored = await runCli([...common, "--mode", "score", "--judge-template", rubric, "--judge-retries", "0"]);
  assert.equal(scored.status, 0, scored.stderr);
  const t = JSON.parse(scored.stdout) as Summary;
  assert.equal(t.unparseable, 18); // every answer's rating, on both sides
  assert.equal(t.n, 0);
  assert.equal(t.mean_score, null);
});

test("LLM judge through omni-dpo serve: a judge prompt beyond the judge's context is refused, counted, not fatal", async () => {
  // The third baseline answer makes that pair's judge prompt longer than the judge's 128 positions:
  // serve answers HTTP 400 (context_length_exceeded) in both orders. Before, that 400 ended the
  // evaluation, and every resume met it again.
  const long = Array.from({ length: 200 }, () => "apple").join(" ");
  const baseline = writeJsonl(join(root, "long-reference.jsonl"), [
    ...WORDS.map((w, i) => ({ output: i === 2 ? long : w })),
    { output: "north" },
  ]);
  const pairwise = join(root, "pairwise-short.txt");
  writeFileSync(pairwise, "{{prompt}}\nA: {{answer_a}}\nB: {{answer_b}}\n[[A>B]] or [[B>A]]?");
  const r = await runCli([
    ...["eval", "--task", "winrate", "--endpoint", serve.url, "--endpoint-model", "toy"],
    ...["--baseline", baseline, "--prompts", PROMPTS, "--judge-endpoint", serve.url, "--judge-model", "toy"],
    ...["--max-new-tokens", "4", "--judge-max-tokens", "8", "--judge-template", pairwise, "--json"],
  ]);
  assert.equal(r.status, 0, r.stderr);
  const s = JSON.parse(r.stdout) as Summary & { refused?: number };
  assert.equal(s.refused, 2, "both orders of the long pair");
  assert.equal(s.unparseable, 16, "the other eight pairs' verdicts, as random weights write them");
  assert.equal(s.unjudged, 9);
});

test("the rubric scorer (data build, iterate): a refused rating is counted, left unscored and not asked again", async () => {
  const rubric = join(root, "rubric-short.txt");
  writeFileSync(rubric, "{{prompt}}\n{{response}}\nRating: N");
  const scorer = llmJudgeScorer(new EndpointGenerator({ baseURL: serve.url, model: "toy", maxRetries: 0 }), {
    templateFile: rubric,
    retries: 1,
    maxTokens: 8,
  });
  const long = Array.from({ length: 200 }, () => "apple").join(" ");
  const item = (response: string) => ({ prompt: "say", promptText: "say", chat: false, response, at: "p" });
  const scores = await scorer.score([item("apple"), item(long), item("river")]);
  assert.equal(scores[1], null);
  assert.equal(scorer.counts.refused, 1);
  // The refused one is asked once; the two random-weight ratings twice (the first try and a retry).
  assert.equal(scorer.counts.asked, 3 + 2);
  assert.equal(scorer.counts.dropped, 3);
});

test("a baseline file for other prompts is refused, naming its line", () => {
  const wrong = writeJsonl(join(root, "wrong.jsonl"), [
    ...WORDS.map((w, i) => ({ instruction: i === 2 ? "say something else" : `say ${w}`, output: w })),
    { output: "north" },
  ]);
  assert.throws(
    () => readBaselineAnswers(wrong, readPromptRows(PROMPTS)),
    (e: Error) => /wrong\.jsonl:3: field 'instruction': not the prompt at .*prompts\.jsonl:3/.test(e.message),
  );
  const short = writeJsonl(join(root, "short.jsonl"), [{ output: "a" }, { answer: 3 }]);
  assert.throws(
    () => readBaselineAnswers(short, readPromptRows(PROMPTS)),
    (e: Error) =>
      /short\.jsonl: 2 answers for 9 prompts/.test(e.message) &&
      /short\.jsonl:2: field 'answer': expected the answer as a string/.test(e.message),
  );
});

test("LLM judge, verdicts parsed: both orders asked, split verdicts tie, position consistency counted", async () => {
  // A judge with a length bias and, at equal length, a position bias; "garbage" gets no verdict.
  let asked = 0;
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (d: Buffer) => (body += d.toString()));
    req.on("end", () => {
      asked++;
      const text = (JSON.parse(body) as { messages: { content: string }[] }).messages[0].content;
      const [, a, b] = /A: (.*)\nB: (.*)\n/.exec(text)!;
      const verdict = text.includes("garbage") ? "no idea" : b.length > a.length ? "[[B>>A]]" : "My verdict: [[A>B]]";
      res.writeHead(200, { "content-type": "application/json" }).end(
        JSON.stringify({
          id: "x",
          object: "chat.completion",
          created: 0,
          model: "judge",
          choices: [{ index: 0, message: { role: "assistant", content: verdict }, finish_reason: "stop" }],
          usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
        }),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const template = join(root, "ab.txt");
  writeFileSync(template, "Q: {{prompt}}\nA: {{answer_a}}\nB: {{answer_b}}\n");
  try {
    const { port } = server.address() as { port: number };
    const generator = new EndpointGenerator({ baseURL: `http://127.0.0.1:${port}/v1`, model: "judge", maxRetries: 0 });
    const r = await evaluateWinRate({
      prompts: ["p1", "p2", "p3", "p4", "garbage"],
      answers: ["a long answer", "same", "x", "abcd", "y"],
      baselineAnswers: ["short", "same", "a longer one", "wxyz", "z"],
      judge: llmPairwiseJudge(generator, { templateFile: template }),
    });
    assert.equal(asked, 10);
    // p1: the model's longer answer wins in both orders (1). p2, p4: equal lengths, the first shown
    // wins each time: one win, one loss, a split (0.5), inconsistent. p3: the baseline's longer
    // answer wins both (0). p5: no verdict in either order.
    assert.deepEqual(
      r.records.map((x) => x.preference),
      [1, 0.5, 0, 0.5, null],
    );
    assert.deepEqual(r.records[1].verdicts, ["A>B", "A>B"]);
    assert.deepEqual(r.records[0].verdicts, ["A>B", "B>>A"]);
    assert.equal(r.n, 4);
    assert.equal(r.win_rate, 0.5);
    assert.deepEqual([r.wins, r.ties, r.losses], [1, 2, 1]);
    assert.equal(r.position_consistency, 0.5);
    assert.equal(r.unparseable, 2);
    assert.equal(r.unjudged, 1);
    // The console table says the same.
    const table = formatWinRate(r);
    assert.match(table, /^win rate\s+50\.0%/m);
    assert.match(table, /^wins \/ ties \/ losses\s+1 \/ 2 \/ 1$/m);
    assert.match(table, /^position consistency\s+50\.0%$/m);
    assert.match(table, /^unparseable\s+2 verdicts; 1 prompt left unjudged$/m);
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});

test("score mode, reward model: mean rewards per side; an answer past its context is cut and counted", async () => {
  assert.ok(firstRecords.length, "needs the first test's records");
  const rm = loadSequenceClassifier(RM);
  try {
    const judge = rewardModelJudge(rm, Tokenizer.fromPretrainedSync(RM), { dir: RM });
    const prompts = readPromptRows(PROMPTS);
    const answers = firstRecords.map((x) => x.answer);
    const r = await evaluateWinRate({
      prompts,
      answers,
      baselineAnswers: firstRecords.map((x) => x.baseline_answer),
      judge,
      mode: "score",
    });
    const mean = (xs: number[]) => xs.reduce((a, v) => a + v, 0) / xs.length;
    const close = (a: number | null | undefined, b: number) => assert.ok(Math.abs(a! - b) < 1e-5, `${a} vs ${b}`);
    close(r.mean_score, mean(firstRecords.map((x) => x.scores![0]!)));
    close(r.baseline_mean_score, mean(firstRecords.map((x) => x.scores![1]!)));
    assert.ok(r.score_ci95![0] <= r.mean_score! && r.mean_score! <= r.score_ci95![1]);
    assert.deepEqual(
      r.records.map((x) => x.winner),
      firstRecords.map((x) => x.winner),
    );
    assert.equal(r.truncated, undefined);
    // 300 characters of answer: past the reward model's 256 positions with the template.
    const long = await evaluateWinRate({
      prompts: ["say it"],
      answers: ["x".repeat(300)],
      baselineAnswers: ["y"],
      judge,
    });
    assert.equal(long.truncated, 1);
  } finally {
    rm.dispose();
  }
});

test("answers are sized to fit the model's context; a prompt that fills it is an error naming it", async () => {
  const tokenizer = Tokenizer.fromPretrainedSync(BASE);
  const generator = new LocalGenerator(loadModel(BASE), tokenizer, BASE);
  try {
    const promptTokens = (p: string | Message[]) => promptIds(tokenizer, p).length;
    const prompts = [{ prompt: "x".repeat(120), at: "p.txt:1" }];
    const options = { maxNewTokens: 1000, chat: false, side: "model", promptTokens };
    // 120 prompt tokens (bytes) + BOS in 128 positions: at most 7 new tokens, not 1000.
    const [answer] = await generateAnswers(generator, prompts, options);
    assert.ok(promptIds(tokenizer, answer).length <= 128 - promptTokens(prompts[0].prompt) + 1);
    await assert.rejects(
      generateAnswers(generator, [{ prompt: "x".repeat(200), at: "p.txt:2" }], options),
      /p\.txt:2: field 'prompt': \d+ tokens fill .*context of 128: no room for an answer/,
    );
  } finally {
    generator.dispose();
  }
});
