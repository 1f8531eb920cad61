// Grading beside generation: worker threads give the verdicts of grading on the main thread, on
// the grader's corpus of realistic outputs and on a whole benchmark run of a tiny model.
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { gradeMath } from "../../src/index.js";
import { evaluateMathBenchmark } from "../../src/eval/math/benchmark.js";
import { createGrader } from "../../src/eval/math/grade-pool.js";
import { loadModel } from "../../src/models/auto.js";
import { Tokenizer } from "../../src/text/index.js";
import { tempDir, writeJsonl, writeToyModel } from "../helpers/toy.js";
import { GRADER_CASES } from "./math-grader-corpus.js";

test("graded on worker threads, the corpus's outputs get the main thread's verdicts, in order", async () => {
  const grader = createGrader(2);
  try {
    const got = await Promise.all(
      GRADER_CASES.map((c) => {
        const gold = gradeMath("", c.answer, { dataset: c.dataset }).gold;
        return grader.grade([c.output], gold, c.dataset);
      }),
    );
    GRADER_CASES.forEach((c, n) => {
      const inline = gradeMath(c.output, c.answer, { dataset: c.dataset });
      assert.deepEqual(got[n], [inline], `case ${n}: ${c.output.slice(0, 60)}`);
    });
    assert.ok(got.some((g) => g[0].correct) && got.some((g) => !g[0].correct), "both verdicts occur");
  } finally {
    await grader.close();
  }
});

test("a benchmark graded beside generation gives the records of one graded on the main thread", async () => {
  const root = tempDir("omni-dpo-grade-pool-");
  const dir = writeToyModel(join(root, "policy"), { seed: 3 });
  const file = writeJsonl(join(root, "gsm8k.jsonl"), [
    { question: "1+1?", answer: "so\n#### 2" },
    { question: "a longer one: 2+3?", answer: "#### 5" },
    { question: "3?", answer: "#### 3" },
    { question: "half of 8?", answer: "#### 4" },
  ]);
  const model = loadModel(dir);
  const tokenizer = Tokenizer.fromPretrainedSync(dir);
  try {
    const options = {
      samples: 3,
      temperature: 1,
      maxNewTokens: 8,
      promptTemplate: "Q: {input}\nA:",
      batchSize: 3,
    };
    const serial = await evaluateMathBenchmark(model, tokenizer, file, { ...options, gradeThreads: 0 });
    const overlapped = await evaluateMathBenchmark(model, tokenizer, file, { ...options, gradeThreads: 2 });
    assert.deepEqual(overlapped.problems, serial.problems);
    assert.equal(overlapped.result.accuracy, serial.result.accuracy);
    assert.equal(overlapped.result.generated_tokens, serial.result.generated_tokens);
  } finally {
    model.dispose();
  }
});
