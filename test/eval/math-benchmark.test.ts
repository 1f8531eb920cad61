// `omni-dpo eval --task math --model DIR --data FILE`: a tiny policy on tiny benchmark files; the
// JSON's fields, per-problem records whose verdicts equal gradeMath's, resumption from the
// journal, several files; pass@k and maj@k against their closed forms.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { gradeMath } from "../../src/index.js";
import { majorityCorrect, passAtK } from "../../src/eval/math/benchmark.js";
import { tempDir, writeJsonl, writeToyModel } from "../helpers/toy.js";

const CLI = fileURLToPath(new URL("../../src/cli/main.js", import.meta.url));
const root = tempDir("omni-dpo-math-bench-");
const POLICY = writeToyModel(join(root, "policy"), { seed: 3 });
const MATH500 = writeJsonl(join(root, "math500.jsonl"), [
  { problem: "1+1?", answer: "2", subject: "Algebra", level: 1 },
  { problem: "2+3?", answer: "5", subject: "Algebra", level: 2 },
  {
    problem: "Half of 1?",
    solution: "It is $\\boxed{\\frac12}$.",
    answer: "\\frac{1}{2}",
    subject: "Prealgebra",
    level: 1,
  },
]);
const GSM8K = writeJsonl(join(root, "gsm8k.jsonl"), [{ question: "3 apples?", answer: "1+2=3\n#### 3" }]);
const SHORT = ["--prompt-template", "Q: {input}\nA:", "--max-new-tokens", "8", "--device", "cpu"];

const run = (args: string[]) =>
  JSON.parse(
    execFileSync(process.execPath, [CLI, "eval", "--task", "math", "--model", POLICY, ...args], {
      encoding: "utf8",
      env: { ...process.env, OMP_NUM_THREADS: "1" },
    }),
  );
const records = (file: string) =>
  readFileSync(file, "utf8")
    .trim()
    .split("\n")
    .slice(1)
    .map((l) => JSON.parse(l));

test("pass@k is the unbiased estimator and maj@k takes the most frequent answer", () => {
  assert.equal(passAtK(5, 2, 2), 1 - 3 / 10); // 1 - C(3,2)/C(5,2)
  assert.equal(passAtK(4, 0, 2), 0);
  assert.equal(passAtK(4, 3, 2), 1); // fewer wrong samples than k
  assert.ok(Math.abs(passAtK(3, 1, 1) - 1 / 3) < 1e-12);
  assert.equal(majorityCorrect(["2", "3", "2"], [true, false, true]), true);
  assert.equal(
    majorityCorrect(["3", "2", "2", "3"], [false, true, true, false]),
    false,
    "a tie goes to the answer seen first",
  );
});

test("K samples give accuracy, pass@k, maj@k and groups; the records' verdicts are gradeMath's; a run resumes", () => {
  const out = join(root, "k3.jsonl");
  const withSamples = (k: string) => [
    "--data",
    MATH500,
    "--samples",
    k,
    "--temperature",
    "1",
    "--out",
    out,
    "--json",
    ...SHORT,
  ];
  const args = withSamples("3");
  const r = run(args);
  assert.equal(r.dataset, "math500");
  assert.equal(r.n, 3);
  assert.deepEqual(Object.keys(r.pass_at_k), ["1", "2", "3"]);
  for (const key of ["accuracy", "maj_at_k"]) assert.ok(r[key] >= 0 && r[key] <= 1, key);
  assert.deepEqual(Object.keys(r.groups), ["subject", "level"]);
  assert.deepEqual(Object.keys(r.groups.subject), ["Algebra", "Prealgebra"]);
  const recs = records(out);
  assert.equal(recs.length, 3);
  let correct = 0;
  for (const rec of recs) {
    assert.equal(rec.outputs.length, 3);
    rec.outputs.forEach((o: string, j: number) => {
      const g = gradeMath(o, rec.gold, { dataset: "math500" });
      assert.deepEqual([rec.extracted[j], rec.correct[j]], [g.extracted, g.correct]);
      if (g.correct) correct++;
    });
  }
  assert.equal(r.accuracy, correct / 9);
  assert.equal(recs[2].gold, "\\frac{1}{2}", "gold from MATH's solution box");

  // an interrupted run: the journal keeps its first problem; the rerun redoes the others only, the same way
  const lines = readFileSync(out, "utf8").trim().split("\n");
  writeFileSync(out, lines.slice(0, 2).join("\n") + "\n");
  const again = run(args);
  assert.equal(again.resumed, 1);
  assert.deepEqual(
    records(out).sort((a, b) => a.idx - b.idx),
    recs.sort((a, b) => a.idx - b.idx),
  );
  assert.equal(again.accuracy, r.accuracy);

  // a journal of other settings is refused, not overwritten
  const other = spawnSync(process.execPath, [CLI, "eval", "--task", "math", "--model", POLICY, ...withSamples("2")]);
  assert.equal(other.status, 1);
  assert.match(other.stderr.toString(), /another evaluation/);
});

test("several benchmark files give one row each and the average", () => {
  const r = run(["--data", MATH500, "--data", GSM8K, "--json", ...SHORT]);
  assert.deepEqual(
    r.benchmarks.map((b: { dataset: string }) => b.dataset),
    ["math500", "gsm8k"],
  );
  assert.equal(r.average, (r.benchmarks[0].accuracy + r.benchmarks[1].accuracy) / 2);
  const unnamed = writeJsonl(join(root, "problems.jsonl"), [{ question: "q", answer: "1" }]);
  const bad = spawnSync(process.execPath, [
    CLI,
    "eval",
    "--task",
    "math",
    "--model",
    POLICY,
    "--data",
    unnamed,
    ...SHORT,
  ]);
  assert.equal(bad.status, 1);
  assert.match(bad.stderr.toString(), /problems\.jsonl: which benchmark is it\? Name it with --dataset/);
});
