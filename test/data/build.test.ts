// Building on-policy preference data (src/data/build.ts and `omni-dpo data build`):
//   - binarize follows each of the reference's strategies exactly on hand-made scored responses;
//   - normaliseScore and loadScorer (a user's scorer module);
//   - buildPairs on the shipped SFT checkpoint: chosen answers verify, scores obey the strategy,
//     prompts come from the input, the stats add up, and a seed repeats the run;
//   - named scorers (registerScorer): found by name, bad or taken names refused;
//   - the command line writes JSONL the trainer's validator accepts, with the arithmetic scorer by
//     name (--scorer arith, which the omni-dpo command registers) and with a user scorer module;
//     without --scorer the math task is a usage error (the library has no default scorer).
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { torch } from "../../src/index.js";
import {
  binarize,
  buildPairs,
  loadScorer,
  registerScorer,
  registeredScorers,
  normaliseScore,
  scoreScale,
  type Pair,
  type Scored,
} from "../../src/data/build.js";
import { readPreferenceFile } from "../../src/data/readers.js";
import { loadModel } from "../../src/models/auto.js";
import {
  arithScorer,
  arithTokenizer,
  formatPrompt,
  generateProblems,
  parsePrompt,
  verify,
} from "../../apps/tasks/arith/index.js";
import { mulberry32 } from "../../src/util/random.js";
import { packageRoot } from "../../src/util/package-root.js";
import { tempDir } from "../helpers/toy.js";

torch.setNumThreads(1);

const ROOT = packageRoot();
const SFT_DIR = join(ROOT, "assets", "arith-sft");
const CLI = join(ROOT, "dist", "apps", "cli.js");
const S = (response: string, score: number, correct: boolean): Scored => ({ response, score, correct });
/** A source that returns the given values in turn (binarize draws chosen first, then rejected). */
const sequence = (...xs: number[]) => {
  let i = 0;
  return () => xs[i++ % xs.length];
};

// Correct above 6: c9 (9), c8 (8), c7 (7). Correct but not above 6: c6 (6), c3 (3).
// Wrong: w10 (10, the best score but wrong), w5 (5), w2 (2), w0 (0).
const POOL = [
  S("w10", 10, false),
  S("c8", 8, true),
  S("c6", 6, true),
  S("w5", 5, false),
  S("c9", 9, true),
  S("c3", 3, true),
  S("w2", 2, false),
  S("c7", 7, true),
  S("w0", 0, false),
];

// ---------------------------------------------------------------- binarize: chosen

test("chosen 'highest' is the highest-scoring correct response above 6, never a better-scoring wrong one", () => {
  const p = binarize("Q", POOL, { margin: 2 })!;
  assert.equal(p.chosen, "c9");
  assert.equal(p.score_chosen, 9);
  assert.equal(p.chosen_correct, true);
  assert.equal(p.prompt, "Q");
  // Without c9, c8 is the best; without every correct one above 6 there is no pair.
  assert.equal(
    binarize(
      "Q",
      POOL.filter((r) => r.response !== "c9"),
      { margin: 2 },
    )!.chosen,
    "c8",
  );
  // A correct response at exactly 6 does not qualify (strictly above).
  assert.equal(binarize("Q", [S("c6", 6, true), S("w0", 0, false)], { margin: 2 }), null);
  // minChosenScore moves the bar.
  assert.equal(binarize("Q", [S("c6", 6, true), S("w0", 0, false)], { margin: 2, minChosenScore: 5 })!.chosen, "c6");
});

test("chosen 'random' picks among the qualifying responses: by the random source, reproducibly, covering all of them", () => {
  const qualifying = ["c8", "c9", "c7"]; // in POOL order
  // The random source decides: floor(u * 3) indexes the qualifying list in input order.
  assert.equal(binarize("Q", POOL, { chosen: "random", margin: 2 }, sequence(0))!.chosen, "c8");
  assert.equal(binarize("Q", POOL, { chosen: "random", margin: 2 }, sequence(0.4))!.chosen, "c9");
  assert.equal(binarize("Q", POOL, { chosen: "random", margin: 2 }, sequence(0.99))!.chosen, "c7");
  const seen = new Set<string>();
  for (let seed = 0; seed < 60; seed++) {
    const a = binarize("Q", POOL, { chosen: "random", margin: 2 }, mulberry32(seed))!;
    const b = binarize("Q", POOL, { chosen: "random", margin: 2 }, mulberry32(seed))!;
    assert.deepEqual(a, b, `seed ${seed} must repeat`);
    assert.ok(qualifying.includes(a.chosen), `seed ${seed}: chosen ${a.chosen} is not correct with score > 6`);
    seen.add(a.chosen);
  }
  assert.deepEqual([...seen].sort(), [...qualifying].sort(), "over many seeds every qualifying response is picked");
});

// ---------------------------------------------------------------- binarize: rejected

test("rejected 'lowest' is the lowest-scoring response at least margin below the chosen one", () => {
  const p = binarize("Q", POOL, { margin: 2 })!;
  assert.equal(p.rejected, "w0");
  assert.equal(p.score_rejected, 0);
  assert.equal(p.rejected_correct, false);
  // The margin is inclusive: exactly chosen - margin qualifies, anything above does not.
  assert.equal(binarize("Q", [S("c9", 9, true), S("x", 4, false)], { margin: 5 })!.rejected, "x");
  assert.equal(binarize("Q", [S("c9", 9, true), S("x", 4.01, false)], { margin: 5 }), null);
  // The default margin is the reference's 5.
  assert.equal(binarize("Q", [S("c9", 9, true), S("x", 4.5, false)]), null);
  assert.equal(binarize("Q", [S("c9", 9, true), S("x", 4, false)])!.rejected, "x");
});

test("rejected 'random' picks only among responses scoring <= chosen - margin, reproducibly, covering all of them", () => {
  // chosen c9 (9), margin 4: eligible are those scoring <= 5: w5, c3, w2, w0 (c6, c7, c8, w10 are too close or above).
  const eligible = ["w5", "c3", "w2", "w0"];
  const opts = { rejected: "random" as const, margin: 4 };
  assert.equal(binarize("Q", POOL, opts, sequence(0))!.rejected, "w5");
  assert.equal(binarize("Q", POOL, opts, sequence(0.99))!.rejected, "w0");
  const seen = new Set<string>();
  for (let seed = 0; seed < 80; seed++) {
    const p = binarize("Q", POOL, opts, mulberry32(seed))!;
    assert.deepEqual(binarize("Q", POOL, opts, mulberry32(seed)), p, `seed ${seed} must repeat`);
    assert.equal(p.chosen, "c9");
    assert.ok(eligible.includes(p.rejected), `seed ${seed}: rejected ${p.rejected} is within the margin`);
    assert.ok(p.score_rejected <= p.score_chosen - 4);
    seen.add(p.rejected);
  }
  assert.deepEqual([...seen].sort(), [...eligible].sort(), "over many seeds every eligible response is picked");
});

test("rejected 'positive' prefers the lowest-scoring correct response within the margin, else the lowest wrong one", () => {
  // chosen c9, margin 2: eligible <= 7: c6, w5, c3, w2, c7, w0. Lowest correct among them: c3 (not w0, the lowest overall).
  const p = binarize("Q", POOL, { rejected: "positive", margin: 2 })!;
  assert.equal(p.rejected, "c3");
  assert.equal(p.rejected_correct, true);
  // A correct response too close to the chosen one (c8 with margin 2) is not eligible: the lowest wrong one is taken.
  const closeCorrect = [S("c9", 9, true), S("c8", 8, true), S("w4", 4, false), S("w1", 1, false)];
  const q = binarize("Q", closeCorrect, { rejected: "positive", margin: 2 })!;
  assert.equal(q.rejected, "w1");
  assert.equal(q.rejected_correct, false);
  // With margin 6, only c3 and below are eligible; the lowest correct one (c3) still wins over w2 and w0.
  assert.equal(binarize("Q", POOL, { rejected: "positive", margin: 6 })!.rejected, "c3");
});

// ---------------------------------------------------------------- binarize: no pair

test("no pair without a correct response above 6, without one at least margin below, or with identical samples", () => {
  // Only wrong responses score above 6; the correct ones are at or below 6.
  assert.equal(binarize("Q", [S("w10", 10, false), S("c6", 6, true), S("w0", 0, false)], { margin: 2 }), null);
  assert.equal(binarize("Q", [S("w9", 9, false), S("w1", 1, false)], { margin: 2 }), null);
  // Nothing at least margin below the chosen one.
  assert.equal(binarize("Q", [S("c9", 9, true), S("c8", 8, true), S("w7.5", 7.5, false)], { margin: 2 }), null);
  // All samples identical, whatever the scores say.
  assert.equal(binarize("Q", [S("same", 9, true), S("same", 9, true), S("same", 9, true)], { margin: 2 }), null);
  assert.equal(binarize("Q", [S("same", 9, true), S("same", 1, false)], { margin: 2 }), null);
  // A copy of the chosen text never becomes the rejected one, even when scored lower.
  assert.equal(binarize("Q", [S("a", 9, true), S("a", 1, true), S("b", 8, true)], { margin: 2 }), null);
  // Fewer than two responses: no pair.
  assert.equal(binarize("Q", [S("c9", 9, true)], { margin: 2 }), null);
  assert.throws(() => binarize("Q", POOL, { rejected: "nope" as never, margin: 2 }), /unknown rejected strategy/);
});

// ---------------------------------------------------------------- normaliseScore, loadScorer

test("registerScorer: loadScorer finds a scorer by name and makes it with the options; bad or taken names are errors", async () => {
  registerScorer(
    "length-test",
    ({ seed, noise }) =>
      (_prompt, response) =>
        response.length * 10 + seed + (noise ?? 0),
  );
  assert.ok(registeredScorers().includes("length-test"));
  assert.equal(await (await loadScorer("length-test", { seed: 3, noise: 1 }))("Q", "abcd"), 44);
  assert.throws(
    () => registerScorer("length-test", () => () => 0),
    /a scorer named 'length-test' is already registered/,
  );
  assert.throws(() => registerScorer("./x.mjs", () => () => 0), /'.\/x.mjs' is not a plain name/);
});

test("normaliseScore keeps the score and treats bare numbers as correct; scoreScale rescales a 0..1 scorer as a whole", () => {
  assert.deepEqual(normaliseScore(0.8), { score: 0.8, correct: true });
  assert.deepEqual(normaliseScore(7), { score: 7, correct: true });
  assert.deepEqual(normaliseScore({ score: 7, correct: false }), { score: 7, correct: false });
  assert.equal(scoreScale([0.1, 0.9, 1.1]), 10, "every score at most 1.1: a 0..1 scorer");
  assert.equal(scoreScale([0.1, 0.9, 7]), 1, "a 0..10 scorer's low scores stay as they are");
  assert.equal(scoreScale([]), 1);
  for (const bad of [NaN, Infinity, { score: "7" } as never])
    assert.throws(() => normaliseScore(bad), /non-finite score/);
});

test("loadScorer loads a module exporting score() (named, default, async) and rejects one without it", async () => {
  const dir = tempDir("omni-dpo-scorer-");
  writeFileSync(
    join(dir, "named.mjs"),
    "export function score(prompt, response) { return { score: response.length, correct: prompt === 'Q' }; }\n",
  );
  writeFileSync(join(dir, "default-fn.mjs"), "export default function score(prompt, response) { return 3; }\n");
  writeFileSync(join(dir, "default-obj.mjs"), "export default { score: async (prompt, response) => 0.4 };\n");
  writeFileSync(join(dir, "none.mjs"), "export const scores = 1;\n");
  assert.deepEqual(await (await loadScorer(join(dir, "named.mjs")))("Q", "abcd"), { score: 4, correct: true });
  assert.equal(await (await loadScorer(join(dir, "default-fn.mjs")))("Q", "x"), 3);
  assert.equal(await (await loadScorer(join(dir, "default-obj.mjs")))("Q", "x"), 0.4);
  await assert.rejects(loadScorer(join(dir, "none.mjs")), (e: Error) => {
    assert.match(e.message, /none\.mjs/, "the message names the module");
    assert.match(e.message, /must export a function score\(prompt, response\)/);
    return true;
  });
});

// ---------------------------------------------------------------- buildPairs on the shipped model

const PROMPTS = generateProblems(16, { difficulty: "hard", seed: 5 }).map(formatPrompt);

function checkPairs(pairs: Pair[], prompts: string[], margin: number): void {
  for (const p of pairs) {
    assert.ok(prompts.includes(p.prompt), `prompt ${p.prompt} comes from the input`);
    const problem = parsePrompt(p.prompt)!;
    assert.ok(verify(problem, p.chosen), `chosen must verify: ${p.prompt}${p.chosen}`);
    assert.equal(p.chosen_correct, true);
    assert.equal(p.rejected_correct, verify(problem, p.rejected));
    assert.ok(p.score_chosen > 6, `score_chosen ${p.score_chosen} > 6`);
    assert.ok(
      p.score_rejected <= p.score_chosen - margin,
      `score_rejected ${p.score_rejected} <= ${p.score_chosen} - ${margin}`,
    );
    assert.notEqual(p.chosen, p.rejected);
  }
}

test("buildPairs on the shipped SFT model: chosen verifies, scores obey the strategy, stats add up, a seed repeats", async () => {
  const model = loadModel(SFT_DIR);
  const tokenizer = arithTokenizer();
  const scorer = arithScorer({ noise: 1.5, seed: 0 });
  const progress: [number, number][] = [];
  const options = { samples: 4, margin: 2, seed: 7, batchSize: 8 };
  const { pairs, stats } = await buildPairs(model, tokenizer, PROMPTS, scorer, {
    ...options,
    onProgress: (d, t) => progress.push([d, t]),
  });
  const again = await buildPairs(model, tokenizer, PROMPTS, scorer, options);
  model.dispose();
  assert.ok(pairs.length > 0, "this prompt set and seed yield pairs");
  checkPairs(pairs, PROMPTS, 2);
  // Each pair's scores are the scorer's (normalised) scores of its texts.
  for (const p of pairs) {
    assert.equal(p.score_chosen, normaliseScore(scorer(p.prompt, p.chosen)).score);
    assert.equal(p.score_rejected, normaliseScore(scorer(p.prompt, p.rejected)).score);
  }
  // At most one pair per prompt.
  assert.equal(new Set(pairs.map((p) => p.prompt)).size, pairs.length);
  assert.equal(stats.prompts, 16);
  assert.equal(stats.responses, 16 * 4);
  assert.equal(stats.pairs, pairs.length);
  assert.equal(stats.pairs + stats.identicalDropped + stats.noPair, stats.prompts);
  assert.ok(stats.correctShare >= 0 && stats.correctShare <= 1);
  assert.ok(stats.correctShare * stats.responses >= pairs.length, "every pair needs at least one correct sample");
  assert.deepEqual(progress, [
    [8, 16],
    [16, 16],
  ]);
  assert.deepEqual(again.pairs, pairs, "the same seed gives the same pairs");
  assert.deepEqual(again.stats, stats);
});

// The arithmetic judge scores on 0..10: its low scores (garbage steps) must not be mistaken for
// a 0..1 scale and multiplied by 10, which would promote lucky answers to "highest".
test("pairs built with the arithmetic scorer carry the judge's own 0..10 scores", async () => {
  const model = loadModel(SFT_DIR);
  const prompts = generateProblems(128, { difficulty: "hard", seed: 1000 }).map(formatPrompt);
  const scorer = arithScorer({ noise: 1.5, seed: 0 });
  const { pairs } = await buildPairs(model, arithTokenizer(), prompts, scorer, { samples: 8, margin: 2, seed: 0 });
  model.dispose();
  for (const p of pairs) {
    const raw = { chosen: scorer(p.prompt, p.chosen).score, rejected: scorer(p.prompt, p.rejected).score };
    assert.equal(p.score_chosen, raw.chosen, `${p.prompt}${p.chosen}: judge ${raw.chosen}, stored ${p.score_chosen}`);
    assert.equal(
      p.score_rejected,
      raw.rejected,
      `${p.prompt}${p.rejected}: judge ${raw.rejected}, stored ${p.score_rejected}`,
    );
    assert.ok(p.score_chosen <= 10);
  }
});

// ---------------------------------------------------------------- the command line

function cli(...args: string[]) {
  return spawnSync(process.execPath, [CLI, "data", "build", "--model", SFT_DIR, ...args], {
    encoding: "utf8",
    env: { ...process.env, OMP_NUM_THREADS: "1" },
  });
}

test("omni-dpo data build --json: exits 0, prints its stats and writes JSONL pairs the trainer's validator accepts", async () => {
  const dir = tempDir("omni-dpo-build-cli-");
  const promptsFile = join(dir, "prompts.txt");
  writeFileSync(promptsFile, PROMPTS.join("\n") + "\n");
  const out = join(dir, "pairs.jsonl");
  const r = cli(
    "--prompts",
    promptsFile,
    "--out",
    out,
    "--scorer",
    "arith",
    "--samples",
    "4",
    "--margin",
    "2",
    "--json",
  );
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.trim().split("\n");
  assert.equal(lines.length, 1, `one JSON object on stdout, got: ${r.stdout}`);
  const stats = JSON.parse(lines[0]) as {
    out: string;
    prompts: number;
    responses: number;
    pairs: number;
    identicalDropped: number;
    noPair: number;
  };
  assert.equal(stats.out, out);
  assert.equal(stats.prompts, 16);
  assert.equal(stats.responses, 64);
  assert.equal(stats.pairs + stats.identicalDropped + stats.noPair, 16);
  assert.ok(stats.pairs > 0, "this prompt set yields pairs");
  const rows = readFileSync(out, "utf8")
    .trimEnd()
    .split("\n")
    .map((l) => JSON.parse(l) as Pair);
  assert.equal(rows.length, stats.pairs);
  checkPairs(rows, PROMPTS, 2);
  const records = await readPreferenceFile(out);
  assert.equal(records.length, stats.pairs);
  records.forEach((rec, i) => {
    assert.equal(rec.prompt, rows[i].prompt);
    assert.equal(rec.chosen, rows[i].chosen);
    assert.equal(rec.rejected, rows[i].rejected);
    assert.equal(rec.scoreChosen, rows[i].score_chosen);
    assert.equal(rec.scoreRejected, rows[i].score_rejected);
  });
});

test("data build without a scorer grades against answers: prompts without any are an error naming line and --scorer", () => {
  const dir = tempDir("omni-dpo-build-no-scorer-");
  writeFileSync(join(dir, "prompts.txt"), PROMPTS.join("\n") + "\n");
  const r = cli("--prompts", join(dir, "prompts.txt"), "--out", join(dir, "pairs.jsonl"));
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /prompts\.txt:1: not valid JSON/);
  assert.match(
    r.stderr,
    /give --scorer NAME\|MODULE, --reward-model DIR or --judge-endpoint URL for prompts without answers/,
  );
  assert.ok(!existsSync(join(dir, "pairs.jsonl")));
});

test("omni-dpo data build --scorer uses a user's scorer module (async, JSONL prompts) and rejects a module without score()", async () => {
  const dir = tempDir("omni-dpo-build-scorer-");
  const promptsFile = join(dir, "prompts.jsonl");
  writeFileSync(promptsFile, PROMPTS.map((prompt) => JSON.stringify({ prompt, id: prompt.length })).join("\n") + "\n");
  // A score from a hash of the text, 2..10 (never on the 0..1 scale), every response correct.
  const hash = (s: string) => [...s].reduce((h, c) => (Math.imul(h, 31) + c.charCodeAt(0)) >>> 0, 7);
  writeFileSync(
    join(dir, "hash.mjs"),
    `const hash = ${hash.toString()};\nexport async function score(prompt, response) { return { score: 2 + hash(prompt + response) % 9, correct: true }; }\n`,
  );
  const userScore = (prompt: string, response: string) => 2 + (hash(prompt + response) % 9);
  const out = join(dir, "pairs.jsonl");
  const r = cli(
    "--prompts",
    promptsFile,
    "--out",
    out,
    "--scorer",
    join(dir, "hash.mjs"),
    "--samples",
    "4",
    "--margin",
    "1",
    "--json",
  );
  assert.equal(r.status, 0, r.stderr);
  const stats = JSON.parse(r.stdout) as { pairs: number; prompts: number };
  assert.equal(stats.prompts, 16);
  assert.ok(stats.pairs > 0, "the hash scorer yields pairs");
  const records = await readPreferenceFile(out);
  assert.equal(records.length, stats.pairs);
  for (const rec of records) {
    const [prompt, chosen, rejected] = [rec.prompt, rec.chosen, rec.rejected] as string[];
    assert.ok(PROMPTS.includes(prompt));
    assert.equal(rec.scoreChosen, userScore(prompt, chosen), "score_chosen is the user's score");
    assert.equal(rec.scoreRejected, userScore(prompt, rejected), "score_rejected is the user's score");
    assert.ok(rec.scoreChosen! > 6 && rec.scoreRejected! <= rec.scoreChosen! - 1);
  }
  writeFileSync(join(dir, "none.mjs"), "export const nothing = 0;\n");
  const bad = cli("--prompts", promptsFile, "--out", join(dir, "none.jsonl"), "--scorer", join(dir, "none.mjs"));
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /must export a function score\(prompt, response\)/);
});

test("data build refuses an --out that is --prompts (through a link too), --scorer, or in --model", () => {
  const dir = tempDir("omni-dpo-build-clash-");
  const promptsFile = join(dir, "prompts.txt");
  const text = PROMPTS.join("\n") + "\n";
  writeFileSync(promptsFile, text);
  symlinkSync(promptsFile, join(dir, "link.jsonl"));
  writeFileSync(join(dir, "s.mjs"), "export function score() { return 1; }\n");
  const cases: [string[], RegExp][] = [
    [["--out", promptsFile], /--out .*prompts\.txt is --prompts/],
    [["--out", join(dir, "link.jsonl")], /--out .*link\.jsonl is --prompts \(.*prompts\.txt\)/],
    [["--out", join(dir, "s.mjs"), "--scorer", join(dir, "s.mjs")], /--out .*s\.mjs is --scorer/],
    [["--out", join(SFT_DIR, "pairs.jsonl")], /--out .*pairs\.jsonl lies inside --model/],
  ];
  for (const [args, message] of cases) {
    const r = cli("--prompts", promptsFile, ...args);
    assert.equal(r.status, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, message);
  }
  assert.equal(readFileSync(promptsFile, "utf8"), text, "the prompts are as they were");
  assert.equal(readFileSync(join(dir, "s.mjs"), "utf8"), "export function score() { return 1; }\n");
});
