// The LLM judge's pure parts: strict verdict parsing, the rubric template, and pairing around
// responses a judge could not score.
import { test } from "node:test";
import assert from "node:assert/strict";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DEFAULT_JUDGE_TEMPLATE, judgePrompt, parseVerdict, readJudgeTemplate } from "../../src/eval/llm-judge.js";
import { bestAndWorst } from "../../src/data/text-build.js";
import { tempDir } from "../helpers/toy.js";

test("parseVerdict: only a last line 'Rating: N' with N from 1 to 10", () => {
  assert.equal(parseVerdict("Clear and correct.\nRating: 9"), 9);
  assert.equal(parseVerdict("ok\n\n  rating:10  \n"), 10);
  assert.equal(parseVerdict("Rating: 1"), 1);
  for (const bad of [
    "Rating: 0",
    "Rating: 11",
    "Rating: 7.5",
    "Rating: 7/10",
    "Rating: seven",
    "7",
    "",
    "Rating: 8\nbut on reflection",
    "The rating: 6",
    "Rating: 6 because it is fine",
  ]) {
    assert.equal(parseVerdict(bad), null, JSON.stringify(bad));
  }
});

test("judge templates: the shipped rubric has both slots; a template without one is refused, naming the file", () => {
  const template = readJudgeTemplate(DEFAULT_JUDGE_TEMPLATE);
  const prompt = [
    { role: "system", content: "be brief" },
    { role: "user", content: "say {{response}}" },
  ];
  const text = judgePrompt(template, { prompt, response: "hello" });
  assert.match(text, /system: be brief\nuser: say \{\{response\}\}/); // slot-like text in the prompt is left alone
  assert.match(text, /\[Assistant's response\]\nhello\n/);
  assert.match(text, /Rating: N/);
  const dir = tempDir("omni-dpo-judge-");
  try {
    const file = join(dir, "rubric.txt");
    writeFileSync(file, "Rate {{response}} please");
    assert.throws(
      () => readJudgeTemplate(file),
      (e: Error) => e.message.includes(file) && /\{\{prompt\}\} exactly once \(found 0\)/.test(e.message),
    );
    assert.throws(() => readJudgeTemplate(join(dir, "missing.txt")), /missing\.txt: cannot read the judge template/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("bestAndWorst passes over unscored responses", () => {
  assert.deepEqual(bestAndWorst([null, 3, 8, null, 1]), { chosen: 2, rejected: 4 });
  assert.equal(bestAndWorst([null, 5, null]), null);
  assert.equal(bestAndWorst([null, null]), null);
  assert.deepEqual(bestAndWorst([2, 2, 9]), { chosen: 2, rejected: 0 });
});
