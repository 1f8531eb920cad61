// The math grader against the reference's own verdicts (test/eval/math-grader-corpus.ts), its
// input errors, and `omni-dpo eval --task math --predictions`.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { gradeMath } from "../../src/index.js";
import { symbolicEqual } from "../../src/eval/math/symbolic.js";
import { GRADER_CASES } from "./math-grader-corpus.js";

const CLI = fileURLToPath(new URL("../../src/cli/main.js", import.meta.url));

test("gradeMath gives the reference grader's extraction, gold answer and verdict on every corpus case", () => {
  const wrong: string[] = [];
  for (const [i, c] of GRADER_CASES.entries()) {
    const got = gradeMath(c.output, c.answer, { dataset: c.dataset });
    const want = { extracted: c.extracted, gold: c.gold, correct: c.correct };
    if (JSON.stringify(got) !== JSON.stringify(want))
      wrong.push(`#${i}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
  }
  assert.deepEqual(wrong, []);
});

test("gradeMath names an unknown data set and a record without the data set's answer field", () => {
  assert.throws(
    () => gradeMath("\\boxed{1}", "1", { dataset: "math5000" }),
    /unknown math data set 'math5000'.*math500/,
  );
  assert.throws(() => gradeMath("\\boxed{1}", { answer: "1" }, { dataset: "olympiadbench" }), /'final_answer'/);
  assert.throws(
    () => gradeMath("\\boxed{1}", "12", { dataset: "gsm8k" }) && gradeMath("1", "#### 1 #### 2", { dataset: "gsm8k" }),
    /exactly one '#### N'/,
  );
});

test("a symbolic comparison past its time limit counts as different", () => {
  // equal, but the engine needs more than a millisecond to see it
  const [a, b] = ["(x+1)^{30}", "(1+x)^{29}(x+1)"];
  assert.equal(symbolicEqual(a, b, 1), false);
  assert.equal(symbolicEqual(a, b, 3000), true);
  assert.equal(symbolicEqual("(x+y+1)^{6}", "(x+y+1)^{6}+0.5"), false, "a constant difference, however small");
});

test("eval --task math grades a predictions file, writes the graded lines, and names a bad line", () => {
  const dir = mkdtempSync(join(tmpdir(), "math-eval-"));
  const file = join(dir, "preds.jsonl");
  const lines = [
    { prediction: "So the answer is $\\boxed{\\dfrac{1}{2}}$.", answer: "0.5", id: 1 },
    { prediction: "The total is 72.", answer: "She sold 48 + 24.\n#### 72", dataset: "gsm8k" },
    { prediction: "I get \\boxed{7}", answer: "8" },
  ];
  writeFileSync(file, lines.map((l) => JSON.stringify(l)).join("\n") + "\n");
  const out = join(dir, "graded.jsonl");
  const json = JSON.parse(
    execFileSync(process.execPath, [CLI, "eval", "--task", "math", "--predictions", file, "--out", out, "--json"], {
      encoding: "utf8",
    }),
  );
  assert.equal(json.n, 3);
  assert.equal(json.accuracy, 2 / 3);
  assert.deepEqual(json.perDataset, { math: { accuracy: 0.5, n: 2 }, gsm8k: { accuracy: 1, n: 1 } });
  const graded = readFileSync(out, "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l));
  assert.deepEqual(
    graded.map((g) => [g.extracted, g.correct]),
    [
      ["\\frac{1}{2}", true],
      ["72", true],
      ["7", false],
    ],
  );
  assert.equal(graded[0].id, 1, "the input's fields are kept");
  for (const [i, g] of graded.entries()) {
    assert.deepEqual(
      { extracted: g.extracted, gold: g.gold, correct: g.correct },
      gradeMath(lines[i].prediction, lines[i].answer, { dataset: lines[i].dataset ?? "math" }),
    );
  }

  // an existing --out is never overwritten
  const again = spawnSync(process.execPath, [CLI, "eval", "--task", "math", "--predictions", file, "--out", out]);
  assert.equal(again.status, 1);
  assert.match(again.stderr.toString(), /graded\.jsonl already exists/);

  writeFileSync(file, JSON.stringify(lines[0]) + "\n" + JSON.stringify({ prediction: "1", answer: ["x"] }) + "\n");
  const partial = join(dir, "partial.jsonl");
  const bad = spawnSync(process.execPath, [CLI, "eval", "--task", "math", "--predictions", file, "--out", partial]);
  assert.equal(bad.status, 1);
  assert.match(bad.stderr.toString(), /preds\.jsonl:2: 'answer' must be a string or a number/);
  assert.equal(existsSync(partial), false, "no partial output");
});
