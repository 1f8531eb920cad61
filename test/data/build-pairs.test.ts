// Building preference pairs: the reference's binarisation strategies on hand-made responses,
// and `data build` end to end on the shipped SFT model.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { torch } from "../../src/index.js";
import { binarize, buildPairs, loadScorer, normaliseScore, type Scored } from "../../src/data/build.js";
import { readPreferenceFile } from "../../src/data/readers.js";
import { loadModel } from "../../src/models/auto.js";
import { arithScorer, arithTokenizer, formatPrompt, generateProblems, parsePrompt, verify } from "../../src/tasks/arith/index.js";
import { shippedSftDir } from "../../src/demo/arith.js";
import { tempDir } from "../helpers/toy.js";
import { mulberry32 } from "../../src/util/random.js";

torch.setNumThreads(1);

const R = (response: string, score: number, correct: boolean): Scored => ({ response, score, correct });
const responses = [R("a", 9, true), R("b", 7.5, true), R("c", 2, true), R("d", 1, false), R("e", 4, false), R("f", 8, false)];

test("chosen: the highest-scoring correct response above 6; rejected: the lowest within the margin", () => {
  const p = binarize("Q", responses, { margin: 5 })!;
  assert.equal(p.chosen, "a");
  assert.equal(p.rejected, "d");
  assert.equal(p.score_chosen, 9);
  assert.equal(p.score_rejected, 1);
});

test("rejected 'positive' prefers the lowest correct response within the margin, else the lowest wrong one", () => {
  assert.equal(binarize("Q", responses, { margin: 5, rejected: "positive" })!.rejected, "c");
  const noCorrectLow = [R("a", 9, true), R("d", 1, false), R("e", 3, false)];
  assert.equal(binarize("Q", noCorrectLow, { margin: 5, rejected: "positive" })!.rejected, "d");
});

test("random strategies pick only qualifying responses, reproducibly for a seeded source, and vary across seeds", () => {
  const seen = { chosen: new Set<string>(), rejected: new Set<string>() };
  for (let seed = 0; seed < 40; seed++) {
    const random = mulberry32(seed);
    const p = binarize("Q", responses, { chosen: "random", rejected: "random", margin: 5 }, random)!;
    assert.ok(["a", "b"].includes(p.chosen), `chosen ${p.chosen} must be correct and above 6`);
    assert.ok(p.score_rejected <= p.score_chosen - 5, "rejected within the margin");
    seen.chosen.add(p.chosen);
    seen.rejected.add(p.rejected);
  }
  assert.ok(seen.chosen.size > 1 && seen.rejected.size > 1);
});

test("no pair without a correct response above 6, without one far enough below, or when all samples are identical", () => {
  assert.equal(binarize("Q", [R("a", 6, true), R("b", 0, false)]), null);
  assert.equal(binarize("Q", [R("a", 9, true), R("b", 5, false)], { margin: 5 }), null);
  assert.equal(binarize("Q", [R("a", 9, true), R("a", 9, true)]), null);
});

test("scores of at most 1.1 are rescaled to 0..10; bare numbers count as correct", () => {
  assert.deepEqual(normaliseScore(0.8), { score: 8, correct: true });
  assert.deepEqual(normaliseScore({ score: 7, correct: false }), { score: 7, correct: false });
  assert.throws(() => normaliseScore(NaN), /non-finite/);
});

test("a scorer module must export score()", async () => {
  const dir = tempDir("omni-dpo-scorer-");
  writeFileSync(join(dir, "good.mjs"), "export function score(p, r) { return r.length; }\n");
  writeFileSync(join(dir, "bad.mjs"), "export const x = 1;\n");
  assert.equal(await (await loadScorer(join(dir, "good.mjs")))("p", "abc"), 3);
  await assert.rejects(loadScorer(join(dir, "bad.mjs")), /must export a function score/);
});

test("buildPairs on the shipped SFT model: chosen answers verify, scores follow the strategy, stats add up", async () => {
  const model = loadModel(shippedSftDir());
  const prompts = generateProblems(24, { difficulty: "medium", seed: 123 }).map(formatPrompt);
  const { pairs, stats } = await buildPairs(model, arithTokenizer(), prompts, arithScorer({ noise: 1, seed: 0 }), { samples: 6, margin: 2, seed: 3 });
  model.dispose();
  assert.equal(stats.prompts, 24);
  assert.equal(stats.pairs + stats.identicalDropped + stats.noPair, 24);
  assert.equal(pairs.length, stats.pairs);
  for (const p of pairs) {
    assert.ok(prompts.includes(p.prompt));
    assert.ok(verify(parsePrompt(p.prompt)!, p.chosen), `chosen must be correct: ${p.prompt}${p.chosen}`);
    assert.ok(p.score_chosen > 6 && p.score_rejected <= p.score_chosen - 2);
    assert.notEqual(p.chosen, p.rejected);
  }
});

test("omni-dpo data build writes pairs the trainer's validator accepts; --scorer takes a user module", async () => {
  const dir = tempDir("omni-dpo-build-");
  const promptsFile = join(dir, "prompts.txt");
  writeFileSync(promptsFile, generateProblems(20, { difficulty: "medium", seed: 9 }).map(formatPrompt).join("\n") + "\n");
  const cli = (...args: string[]) => spawnSync(process.execPath, ["dist/src/cli/main.js", "data", "build", "--model", shippedSftDir(), "--prompts", promptsFile, ...args],
    { encoding: "utf8", env: { ...process.env, OMP_NUM_THREADS: "1" } });
  const out = join(dir, "pairs.jsonl");
  const r = cli("--out", out, "--samples", "4", "--margin", "2", "--json");
  assert.equal(r.status, 0, r.stderr);
  const stats = JSON.parse(r.stdout.trim()) as { pairs: number; prompts: number };
  assert.equal(stats.prompts, 20);
  if (stats.pairs > 0) {
    const records = await readPreferenceFile(out);
    assert.equal(records.length, stats.pairs);
    assert.ok(records.every((x) => x.scoreChosen !== undefined && x.scoreRejected !== undefined));
  } else assert.equal(readFileSync(out, "utf8"), "");
  writeFileSync(join(dir, "len.mjs"), "export function score(p, r) { return { score: r.length % 11, correct: true }; }\n");
  const r2 = cli("--out", join(dir, "len.jsonl"), "--scorer", join(dir, "len.mjs"), "--samples", "4", "--margin", "1", "--json");
  assert.equal(r2.status, 0, r2.stderr);
  for (const line of readFileSync(join(dir, "len.jsonl"), "utf8").split("\n").filter(Boolean)) {
    const p = JSON.parse(line) as { chosen: string; score_chosen: number };
    assert.equal(p.score_chosen, p.chosen.length % 11);
  }
});
