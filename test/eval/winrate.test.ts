// `omni-dpo eval --task winrate` end to end, with tiny models made here:
//   - a tiny policy against its own starting point, judged by a tiny reward model: the per-prompt
//     records recompute to the reported win rate, interval and length-controlled figure, and their
//     rewards equal the reward model's score of each conversation scored alone;
//   - an evaluation killed (kill -9) mid-run continues from its journal to the same records, and
//     a judge that fails mid-run leaves a journal the next run resumes;
//   - the LLM-judge path against `omni-dpo serve` (a tiny model as policy and judge, the baseline a
//     JSONL of reference outputs): every unparseable verdict or rating counted and reported, exit 0;
//   - a baseline file for other prompts is an error naming its line.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { torch, saveModel } from "../../src/index.js";
import { loadModel } from "../../src/models/auto.js";
import { rewardInput } from "../../src/data/reward.js";
import { readPromptRows } from "../../src/data/readers.js";
import {
  createSequenceClassifier,
  loadSequenceClassifier,
  saveSequenceClassifier,
} from "../../src/models/sequence-classification.js";
import { Tokenizer } from "../../src/text/index.js";
import { evaluateWinRate, rewardModelJudge, type WinRateRecord } from "../../src/eval/winrate/index.js";
import { bootstrapCI, lengthControlledWinRate } from "../../src/eval/winrate/stats.js";
import { packageRoot } from "../../src/util/package-root.js";
import { writeByteLevelTokenizer } from "../helpers/tokenizers.js";
import { runCli, startServeProcess, writeSharpChatModel, type ServeProcess } from "../helpers/serving.js";
import { tempDir, writeJsonl } from "../helpers/toy.js";

torch.setNumThreads(1);
const root = tempDir("omni-dpo-winrate-");
const BASE = writeSharpChatModel(join(root, "base"));
const POLICY = trainedFrom(BASE, join(root, "policy"));
const RM = writeRewardModel(join(root, "rm"));
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

/** A tiny Llama reward model (one label, weights at scale 0.3 so rewards spread) with the chatml template. */
function writeRewardModel(dir: string): string {
  const tok = writeByteLevelTokenizer(dir, { chatTemplate: "chatml" });
  torch.manualSeed(5);
  const model = createSequenceClassifier({
    architectures: ["LlamaForSequenceClassification"],
    model_type: "llama",
    vocab_size: tok.vocabSize,
    hidden_size: 32,
    intermediate_size: 64,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    max_position_embeddings: 256,
    rms_norm_eps: 1e-6,
    num_labels: 1,
    pad_token_id: tok.eosTokenId,
    bos_token_id: tok.bosTokenId,
    eos_token_id: tok.eosTokenId,
  });
  torch.noGrad(() =>
    torch.tidy(() => {
      for (const [name, p] of model.namedParameters()) {
        const v = torch.randn(p.shape).mul(0.3);
        model.setParameter(name, /norm/.test(name) ? v.add(1) : v);
      }
    }),
  );
  saveSequenceClassifier(model, dir);
  model.dispose();
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

test("a judge failing mid-run leaves a journal the next run resumes; another evaluation's journal is refused", async () => {
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

  const table = await runCli(common.filter((a) => a !== "--json").concat(["--judge-template", pairwise]));
  assert.equal(table.status, 0, table.stderr);
  assert.match(table.stdout, /unparseable\s+18 verdicts; 9 prompts left unjudged/);
});

test("a baseline file for other prompts is refused, naming its line", async () => {
  const wrong = writeJsonl(join(root, "wrong.jsonl"), [
    ...WORDS.map((w, i) => ({ instruction: i === 2 ? "say something else" : `say ${w}`, output: w })),
    { output: "north" },
  ]);
  const r = await runCli([...RM_ARGS.slice(0, 6), wrong, "--prompts", PROMPTS, ...RM_ARGS_TAIL]);
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /wrong\.jsonl:3: field 'instruction': not the prompt at .*prompts\.jsonl:3/);
});
