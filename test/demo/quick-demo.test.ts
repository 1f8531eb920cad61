// The demo on its smallest settings: it completes, the report has every section, and the
// JSON has the shape the issue promises (library and command line).
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { torch } from "../../src/index.js";
import { greedyAccuracy, runDemo, shippedSftDir, spread } from "../../src/demo/arith.js";
import { demoJson, writeDemoReport } from "../../src/report/demo-report.js";
import { loadModel } from "../../src/models/auto.js";
import { generate } from "../../src/models/generate.js";
import { arithTokenizer, formatPrompt, generateProblems, verify } from "../../src/tasks/arith/index.js";
import { tempDir } from "../helpers/toy.js";

torch.setNumThreads(1);

function assertShape(json: Record<string, unknown>, seeds: number): void {
  const sft = json.sft_accuracy as { mean: number; std: number };
  assert.ok(sft.mean >= 0 && sft.mean <= 1 && typeof sft.std === "number");
  const methods = json.methods as { name: string; heldout_accuracy: { mean: number; std: number; runs: number[] }; pairwise_accuracy: { mean: number; std: number } }[];
  assert.deepEqual(methods.map((m) => m.name), ["dpo", "simpo", "omni_dpo"]);
  for (const m of methods) {
    assert.equal(m.heldout_accuracy.runs.length, seeds);
    for (const v of [m.heldout_accuracy.mean, m.pairwise_accuracy.mean, ...m.heldout_accuracy.runs]) assert.ok(v >= 0 && v <= 1, `${m.name}: ${v}`);
    assert.equal(typeof m.heldout_accuracy.std, "number");
    assert.equal(typeof m.pairwise_accuracy.std, "number");
  }
  assert.ok((json.wall_seconds as number) > 0);
}

test("runDemo on the smallest settings completes and writes a report with every section", async () => {
  const out = tempDir("omni-dpo-demo-");
  const result = await runDemo({ quick: true, seeds: 2, sizes: { train: 96, test: 24, testPairs: 32 }, outDir: out });
  const files = writeDemoReport(result);
  const html = readFileSync(files.html, "utf8");
  for (const id of ["results", "accuracy", "curves", "decoupling", "settings"]) assert.ok(html.includes(`id="${id}"`), `section ${id}`);
  assert.ok((html.match(/<svg /g) ?? []).length >= 5, "accuracy bars, three curves and the scatter");
  assert.ok(html.includes("Pearson r"));
  for (const label of ["DPO", "SimPO", "Omni-DPO"]) assert.ok(html.includes(label));
  assertShape(JSON.parse(readFileSync(files.json, "utf8")), 2);
  assertShape(demoJson(result), 2);
  assert.ok(result.weights.length === result.data.train.pairs && result.weights.every((w) => w.w_qual > 0 && w.w_qual <= 1 && w.w_perf >= 0 && w.w_perf <= 1));
  assert.ok(existsSync(join(out, "pairs.jsonl")));
});

test("omni-dpo demo --quick --json prints one JSON object of the documented shape", { skip: process.env.OMNI_DPO_SKIP_SLOW === "1" ? "OMNI_DPO_SKIP_SLOW=1" : undefined }, () => {
  const out = tempDir("omni-dpo-demo-cli-");
  const r = spawnSync(process.execPath, ["dist/src/cli/main.js", "demo", "--quick", "--json", "--out", out], { encoding: "utf8", env: { ...process.env, OMP_NUM_THREADS: "1" } });
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.trim().split("\n");
  assert.equal(lines.length, 1, "exactly one JSON object on stdout");
  assertShape(JSON.parse(lines[0]), 2);
  assert.ok(existsSync(join(out, "report.html")));
});

test("spread is the mean and the sample standard deviation", () => {
  const s = spread([0.5, 0.7, 0.9]);
  assert.ok(Math.abs(s.mean - 0.7) < 1e-12);
  assert.ok(Math.abs(s.std - 0.2) < 1e-12);
  assert.deepEqual(spread([0.4]), { mean: 0.4, std: 0, runs: [0.4] });
});

test("greedyAccuracy counts verified greedy answers", () => {
  const model = loadModel(shippedSftDir());
  const tokenizer = arithTokenizer();
  const problems = generateProblems(10, { difficulty: "medium", seed: 31 });
  const out = generate(model, problems.map((p) => tokenizer.encode(formatPrompt(p))), { maxNewTokens: 64, eosTokenIds: [tokenizer.eosTokenId!], padTokenId: tokenizer.padTokenId });
  const expected = out.tokens.filter((t, i) => verify(problems[i], tokenizer.decode(t, { skipSpecialTokens: true }))).length / 10;
  assert.equal(greedyAccuracy(model, tokenizer, problems), expected);
  model.dispose();
});
