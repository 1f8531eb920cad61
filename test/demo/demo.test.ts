// The embedded demo (src/demo/arith.ts, src/report/demo-report.ts, `omni-dpo demo`):
//   - runDemo on its smallest settings completes; the HTML report has every section and its
//     charts; results.json and demoJson(result) have the issue's shape;
//   - `omni-dpo demo --quick --json` prints exactly one JSON object of that shape;
//   - spread (mean, sample std) and greedyAccuracy against values computed here.
//
// The command-line test runs the real quick demo (about 15 s on a 2-core machine). Set
// OMNI_DPO_SKIP_SLOW=1 to skip it on a slow or busy machine; it runs by default.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { torch } from "../../src/index.js";
import { greedyAccuracy, runDemo, spread } from "../../src/demo/arith.js";
import { demoHtml, demoJson, demoTable, writeDemoReport, type DemoResult } from "../../src/report/demo-report.js";
import { loadModel } from "../../src/models/auto.js";
import { generate } from "../../src/models/generate.js";
import { arithTokenizer, formatPrompt, generateProblems, verify } from "../../src/tasks/arith/index.js";
import { packageRoot } from "../../src/util/package-root.js";
import { tempDir } from "../helpers/toy.js";

torch.setNumThreads(1);

const ROOT = packageRoot();
const SFT_DIR = join(ROOT, "assets", "arith-sft");
const CLI = join(ROOT, "dist", "src", "cli", "main.js");
const METHODS = ["dpo", "simpo", "omni_dpo"];
const close = (a: number, b: number, what: string) => assert.ok(Math.abs(a - b) < 1e-12, `${what}: ${a} != ${b}`);
const isStat = (v: unknown): v is { mean: number; std: number } =>
  typeof v === "object" && v !== null && typeof (v as { mean: unknown }).mean === "number" && typeof (v as { std: unknown }).std === "number";
const inUnit = (x: number, what: string) => assert.ok(Number.isFinite(x) && x >= 0 && x <= 1, `${what} = ${x} is not in [0, 1]`);

/**
 * The issue's JSON: {"sft_accuracy": {mean, std}, "methods": [{"name", "heldout_accuracy": {mean, std, runs},
 * "pairwise_accuracy": {mean, std}}], "wall_seconds": N}, the three methods, accuracies in [0, 1], one run per seed.
 */
function assertIssueShape(json: unknown, seeds: number): void {
  const j = json as Record<string, unknown>;
  assert.ok(isStat(j.sft_accuracy), "sft_accuracy: {mean, std}");
  inUnit(j.sft_accuracy.mean, "sft_accuracy.mean");
  assert.ok(j.sft_accuracy.std >= 0);
  assert.ok(Array.isArray(j.methods), "methods is an array");
  const methods = j.methods as Record<string, unknown>[];
  assert.deepEqual(methods.map((m) => m.name), METHODS);
  for (const m of methods) {
    const h = m.heldout_accuracy as { mean: number; std: number; runs: number[] };
    assert.ok(isStat(h), `${m.name}: heldout_accuracy {mean, std}`);
    assert.ok(Array.isArray(h.runs) && h.runs.length === seeds, `${m.name}: ${seeds} run(s)`);
    for (const x of h.runs) inUnit(x, `${m.name} run`);
    inUnit(h.mean, `${m.name} heldout mean`);
    // The mean and std are those of the runs.
    const s = spread(h.runs);
    close(h.mean, s.mean, `${m.name} heldout mean`);
    close(h.std, s.std, `${m.name} heldout std`);
    assert.ok(isStat(m.pairwise_accuracy), `${m.name}: pairwise_accuracy {mean, std}`);
    inUnit(m.pairwise_accuracy.mean, `${m.name} pairwise mean`);
    assert.ok(m.pairwise_accuracy.std >= 0);
  }
  assert.equal(typeof j.wall_seconds, "number");
  assert.ok((j.wall_seconds as number) > 0);
}

test("runDemo on its smallest settings completes; the report has every section, its charts and results.json", async () => {
  const out = tempDir("omni-dpo-demo-");
  const seeds = 2;
  const result: DemoResult = await runDemo({ quick: true, seeds, sizes: { train: 48, test: 24, testPairs: 24 }, outDir: out });
  assert.equal(result.outDir, out);
  assert.deepEqual(result.methods.map((m) => m.name), METHODS);
  assert.equal(result.data.train.prompts, 48);
  assert.equal(result.data.heldout.prompts, 24);
  assert.ok(result.data.train.pairs >= 8);
  assert.equal(result.weights.length, result.data.train.pairs, "one decoupling point per training pair");
  // The pairs written for training are the ones counted.
  assert.equal(readFileSync(join(out, "pairs.jsonl"), "utf8").trimEnd().split("\n").length, result.data.train.pairs);
  for (const m of result.methods) {
    assert.equal(m.curves.length, seeds, `${m.name}: one curve per seed`);
    assert.ok(m.curves.every((c) => c.rows.some((r) => typeof r.loss === "number")), `${m.name}: logged losses`);
    assert.equal(m.validation_accuracy, null, "quick mode does not tune");
  }

  const files = writeDemoReport(result);
  assert.equal(files.html, join(out, "report.html"));
  assert.equal(files.json, join(out, "results.json"));
  const html = readFileSync(files.html, "utf8");
  assert.equal(html, demoHtml(result));
  assert.ok(html.startsWith("<!doctype html>") && html.trimEnd().endsWith("</html>"));
  for (const id of ["results", "accuracy", "curves", "decoupling", "settings"]) assert.ok(html.includes(`<section id="${id}">`), `section #${id}`);
  const svgs = html.match(/<svg[\s>]/g) ?? [];
  assert.ok(svgs.length >= 1, "at least one SVG chart");
  assert.equal(svgs.length, (html.match(/<\/svg>/g) ?? []).length, "every <svg> is closed");
  assert.match(html, /Pearson r = (-?\d\.\d\d|n\/a)/);
  // The dashboard's export: its script and the runs' data inline, nothing fetched (test/report/dashboard.test.ts opens one offline).
  assert.doesNotMatch(html, /<script[^>]*\bsrc=|<link[^>]*\bhref=|(src|href)=["']?(https?:)?\/\//i, "self-contained: no external script, stylesheet or resource");
  assert.match(html, /<div id="dashboard">/);
  for (const m of result.methods) for (const c of m.curves) assert.ok(html.includes(`${m.label} seed ${c.seed}`), `${m.label} seed ${c.seed}: its run is in the report`);
  for (const label of ["DPO", "SimPO", "Omni-DPO"]) assert.ok(html.includes(`<td>${label}</td>`), `results row for ${label}`);

  const fromFile = JSON.parse(readFileSync(files.json, "utf8")) as unknown;
  assertIssueShape(fromFile, seeds);
  assertIssueShape(demoJson(result), seeds);
  assert.deepEqual(fromFile, JSON.parse(JSON.stringify(demoJson(result))), "results.json is demoJson(result)");

  // The console table: header, rule, SFT and one row per method.
  const table = demoTable(result).split("\n");
  assert.equal(table.length, 2 + 1 + METHODS.length);
  assert.ok(table[2].startsWith("SFT (start)"));
});

test("omni-dpo demo --quick --json prints exactly one JSON object of the issue's shape", { skip: process.env.OMNI_DPO_SKIP_SLOW === "1" ? "OMNI_DPO_SKIP_SLOW=1" : undefined }, () => {
  const out = tempDir("omni-dpo-demo-cli-");
  const r = spawnSync(process.execPath, [CLI, "demo", "--quick", "--json", "--out", out],
    { encoding: "utf8", env: { ...process.env, OMP_NUM_THREADS: "1" }, timeout: 300_000 });
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.split("\n").filter((l) => l.trim() !== "");
  assert.equal(lines.length, 1, `exactly one line on stdout, got:\n${r.stdout}`);
  const json = JSON.parse(lines[0]) as unknown;
  assertIssueShape(json, 2); // quick: two seeds
  assert.ok(existsSync(join(out, "report.html")));
  assert.deepEqual(JSON.parse(readFileSync(join(out, "results.json"), "utf8")), json, "results.json holds the same object");
});

test("spread: the mean and the sample standard deviation (n - 1)", () => {
  const a = spread([0.5, 0.7, 0.9]); // deviations -0.2, 0, 0.2: (0.04 + 0 + 0.04) / 2 = 0.04
  close(a.mean, 0.7, "mean");
  close(a.std, 0.2, "std");
  assert.deepEqual(a.runs, [0.5, 0.7, 0.9]);
  const b = spread([1, 2, 3, 4]); // mean 2.5, squares 2.25 + 0.25 + 0.25 + 2.25 = 5, / 3
  close(b.mean, 2.5, "mean");
  close(b.std, Math.sqrt(5 / 3), "std");
  const c = spread([0.25, 0.75]); // (0.0625 + 0.0625) / 1
  close(c.std, Math.sqrt(0.125), "std");
  assert.deepEqual(spread([0.4]), { mean: 0.4, std: 0, runs: [0.4] });
  assert.deepEqual(spread([]), { mean: 0, std: 0, runs: [] });
});

test("greedyAccuracy of the shipped SFT model is the share of greedy answers that verify", () => {
  const model = loadModel(SFT_DIR);
  const tokenizer = arithTokenizer();
  const problems = generateProblems(10, { difficulty: "medium", seed: 31 });
  const out = generate(model, problems.map((p) => tokenizer.encode(formatPrompt(p))),
    { maxNewTokens: 64, eosTokenIds: [tokenizer.eosTokenId!], padTokenId: tokenizer.padTokenId });
  let correct = 0;
  out.tokens.forEach((t, i) => { if (verify(problems[i], tokenizer.decode(t, { skipSpecialTokens: true }))) correct++; });
  const acc = greedyAccuracy(model, tokenizer, problems);
  inUnit(acc, "greedyAccuracy");
  assert.equal(acc, correct / 10);
  // Each problem on its own gives 0 or 1, and they add up to the same count.
  const single = problems.map((p) => greedyAccuracy(model, tokenizer, [p]));
  assert.ok(single.every((x) => x === 0 || x === 1));
  assert.equal(single.reduce((a: number, b) => a + b, 0), correct);
  assert.equal(greedyAccuracy(model, tokenizer, []), 0);
  model.dispose();
});
