// The embedded demo (apps/demo/*, apps/demo/report.ts, `omni-dpo demo`):
//   - runDemo on tiny settings completes with all three pipelines; every number it reports is the
//     one its runs give (means of cells, paired differences, the sweep's points), the learning
//     rate is the validation argmax, the report has every section and results.json is demoJson;
//   - `omni-dpo demo --quick --pipeline math --json` on fewer problems prints one JSON object of
//     the issue's shape (the real quick demo's claims: test/apps/demo/quick-demo.test.ts);
//   - greedyAccuracy against values computed here; bad flags are usage errors.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { torch } from "../../../src/index.js";
import {
  greedyAccuracy,
  methodSpecs,
  runDemo,
  spread,
  LR_MULTIPLES,
  type DemoResult,
  type MethodSpec,
} from "../../../apps/demo/arith.js";
import { demoHtml, demoJson, demoSummary, writeDemoReport } from "../../../apps/demo/report.js";
import { readRewardModel, shippedRewardModelDir } from "../../../apps/demo/reward-model.js";
import { loadModel } from "../../../src/models/auto.js";
import { generate } from "../../../src/models/generate.js";
import { arithTokenizer, formatPrompt, generateProblems, verify } from "../../../apps/tasks/arith/index.js";
import { packageRoot } from "../../../src/util/package-root.js";
import { tempDir } from "../../helpers/toy.js";
import { assertPipelineShape, type PipelineJson } from "./json-shape.js";

torch.setNumThreads(1);

const ROOT = packageRoot();
const SFT_DIR = join(ROOT, "assets", "arith-sft");
const CLI = join(ROOT, "dist", "apps", "cli.js");
const close = (a: number, b: number, what: string) => assert.ok(Math.abs(a - b) < 1e-12, `${what}: ${a} != ${b}`);
const inUnit = (x: number, what: string) =>
  assert.ok(Number.isFinite(x) && x >= 0 && x <= 1, `${what} = ${x} is not in [0, 1]`);

test("runDemo on tiny settings: all three pipelines, and every reported number is what its runs give", async () => {
  const out = tempDir("omni-dpo-demo-");
  const all = methodSpecs(true);
  // Three methods (one an ablation) and small grids keep this to ~50 short runs; the design is the full one's.
  const methods: MethodSpec[] = [
    { ...all.find((m) => m.name === "dpo")!, grid: [2e-5, 4e-5] },
    { ...all.find((m) => m.name === "omni_dpo")!, grid: [2e-5] },
    { ...all.find((m) => m.name === "omni_dpo_no_qual")!, grid: [2e-5] },
  ];
  const result: DemoResult = await runDemo({
    methods,
    trainSeeds: 1,
    pairSeeds: 2,
    sizes: { train: 48, val: 24, test: 24 },
    outDir: out,
  });
  assert.equal(result.outDir, out);
  assert.deepEqual(
    result.pipelines.map((p) => p.name),
    ["math", "text", "rm"],
  );
  for (const p of result.pipelines) {
    const where = `${p.name} pipeline`;
    assert.deepEqual(
      p.methods.map((m) => m.name),
      ["dpo", "omni_dpo", "omni_dpo_no_qual"],
    );
    // An ablation is compared with full Omni-DPO too (that part's own effect), paired over the same runs.
    const [omni, noQual] = ["omni_dpo", "omni_dpo_no_qual"].map((n) => p.methods.find((m) => m.name === n)!);
    const ablation = p.comparisons.find((c) => c.a === "omni_dpo" && c.b === "omni_dpo_no_qual")!;
    close(ablation.mean_diff, omni.heldout_accuracy.mean - noQual.heldout_accuracy.mean, `${where}: w_qual's effect`);
    inUnit(p.sft_accuracy.mean, `${where}: SFT accuracy`);
    assert.equal(p.data.length, 2, "one data summary per pair seed");
    for (const d of p.data) {
      assert.equal(d.prompts, 48);
      assert.ok(d.pairs >= 8, `${where}: ${d.pairs} pairs`);
      assert.ok(d.labels.flipped <= d.labels.chosen_wrong);
      // The pairs written for training are the ones counted.
      assert.equal(
        readFileSync(join(out, `pairs-${p.name}-seed${d.pair_seed}.jsonl`), "utf8")
          .trimEnd()
          .split("\n").length,
        d.pairs,
      );
    }
    assert.equal(p.reward_model !== undefined, p.name === "rm", "only the rm pipeline reports a reward model");
    if (p.reward_model) {
      const rm = p.reward_model;
      inUnit(rm.heldout_accuracy, "the reward model's held-out accuracy");
      assert.ok(rm.train_pairs >= 32 && rm.heldout_pairs >= 8, `${rm.train_pairs} + ${rm.heldout_pairs} pairs`);
      const shipped = readRewardModel(shippedRewardModelDir())!;
      assert.deepEqual(
        [rm.train_pairs, rm.heldout_pairs],
        [shipped.trainPairs, shipped.heldout.length],
        "the shipped reward model, measured on its held-out pairs",
      );
      assert.deepEqual(
        rm.per_pair_seed.map((s) => [s.pair_seed, s.judge.pairs]),
        p.data.map((d) => [d.pair_seed, d.pairs]),
      );
      for (const s of rm.per_pair_seed) {
        assert.ok(s.gap.p10 >= 0 && s.gap.p10 <= s.gap.median && s.gap.median <= s.gap.p90, "best minus worst");
        assert.ok(s.judge.backwards + s.judge.tied <= 1);
      }
      assert.equal(rm.eta, 1);
      // The w_qual distribution is the decoupling view's: σ(η · gap) of the first pair seed's pairs.
      const sorted = p.weights.map((w) => w.w_qual).sort((a, b) => a - b);
      assert.ok(
        sorted.every((w) => w >= 0.5 && w < 1),
        "a chosen answer scores above its rejected one",
      );
      assert.ok(rm.w_qual.p10 >= sorted[0] && rm.w_qual.p90 <= sorted[sorted.length - 1]);
    }
    if (p.name === "math")
      assert.ok(
        p.data.every((d) => d.labels.chosen_wrong === 0 && d.labels.gap_auc === null),
        "the verifier picks every chosen",
      );
    assert.equal(p.weights.length, p.data[0].pairs, "one decoupling point per training pair of the first pair seed");
    for (const m of p.methods) {
      const spec = methods.find((s) => s.name === m.name)!;
      assert.deepEqual(
        m.validation.map((v) => v.learning_rate),
        [...spec.grid],
      );
      assert.equal(
        m.learning_rate,
        m.validation.reduce((a, b) => (b.accuracy > a.accuracy ? b : a)).learning_rate,
        `${m.name}: the validation argmax`,
      );
      assert.deepEqual(
        m.cells.map((c) => [c.train_seed, c.pair_seed]),
        [
          [0, 0],
          [0, 1],
        ],
      );
      assert.deepEqual(
        m.heldout_accuracy.runs,
        m.cells.map((c) => c.accuracy),
      );
      close(m.heldout_accuracy.mean, spread(m.cells.map((c) => c.accuracy)).mean, `${m.name} mean`);
      assert.equal(m.curves.length, 2, "training seed 0's run per pair seed");
      assert.ok(
        m.curves.every((c) => c.rows.some((r) => typeof r.loss === "number")),
        `${m.name}: logged losses`,
      );
      assert.ok(!existsSync(join(m.curves[0].dir, "model.safetensors")), "weights removed, logs kept");
      // Paired differences over the same problems: the mean difference is the difference of means.
      const vsSft = p.comparisons.find((c) => c.a === m.name && c.b === "sft")!;
      close(vsSft.mean_diff, m.heldout_accuracy.mean - p.sft_accuracy.mean, `${m.name} - SFT`);
      assert.ok(vsSft.ci95[0] <= vsSft.mean_diff && vsSft.mean_diff <= vsSft.ci95[1]);
      // The sweep: its own rate and 2x, 4x DPO's; at its own rate, the reported runs (one training seed here).
      const dpoLr = p.methods.find((x) => x.name === "dpo")!.learning_rate;
      const sweep = p.lr_sweep.filter((s) => s.name === m.name);
      for (const k of LR_MULTIPLES)
        assert.ok(
          sweep.some((s) => s.lr_multiple === k && s.learning_rate === k * dpoLr),
          `${m.name} at ${k}x DPO's lr`,
        );
      const own = sweep.find((s) => s.learning_rate === m.learning_rate)!;
      assert.deepEqual(own.heldout_accuracy.runs, m.heldout_accuracy.runs);
      for (const s of sweep) {
        assert.equal(s.heldout_accuracy.runs.length, 2);
        s.heldout_accuracy.runs.forEach((x) => inUnit(x, "sweep accuracy"));
      }
    }
    const omniVsDpo = p.comparisons.find((c) => c.a === "omni_dpo" && c.b === "dpo")!;
    close(
      omniVsDpo.mean_diff,
      p.methods[1].heldout_accuracy.mean - p.methods[0].heldout_accuracy.mean,
      "Omni-DPO - DPO",
    );
    assert.equal(
      p.comparisons.length,
      2 + 1 + 3,
      "each method against DPO, the ablation against Omni-DPO, and each against the start",
    );
  }

  const files = writeDemoReport(result);
  const html = readFileSync(files.html, "utf8");
  assert.equal(html, demoHtml(result));
  assert.ok(html.startsWith("<!doctype html>") && html.trimEnd().endsWith("</html>"));
  for (const id of ["results", "pipeline-math", "pipeline-text", "pipeline-rm", "curves", "settings"])
    assert.ok(html.includes(`<section id="${id}">`), `section #${id}`);
  const svgs = html.match(/<svg[\s>]/g) ?? [];
  assert.ok(svgs.length >= 6, "per pipeline: accuracy bars, the lr sweep, the weights scatter");
  assert.equal(svgs.length, (html.match(/<\/svg>/g) ?? []).length, "every <svg> is closed");
  assert.match(html, /held-out accuracy against learning rate/);
  assert.doesNotMatch(
    html,
    /<script[^>]*\bsrc=|<link[^>]*\bhref=|(src|href)=["']?(https?:)?\/\//i,
    "self-contained: no external script, stylesheet or resource",
  );
  for (const p of result.pipelines)
    for (const m of p.methods)
      for (const c of m.curves) assert.ok(html.includes(c.name), `${c.name}: its run is in the report`);
  const fromFile = JSON.parse(readFileSync(files.json, "utf8")) as { pipelines: { pipeline: string }[] };
  assert.deepEqual(fromFile, JSON.parse(JSON.stringify(demoJson(result))), "results.json is demoJson(result)");
  assert.deepEqual(
    fromFile.pipelines.map((p) => p.pipeline),
    ["math", "text", "rm"],
  );
  const summary = demoSummary(result);
  assert.match(summary, /== math pipeline ==[\s\S]*== text pipeline ==[\s\S]*== rm pipeline ==/);
  assert.match(summary, /reward model: trained on \d+ judge-labelled pairs[\s\S]*held-out pairs as the judge does/);
  assert.match(summary, /against the judge: label backwards in \d+\.\d%/);
  assert.match(summary, /w_qual of the training pairs \(first pair seed\), at η 1 on its raw scores/);
  assert.match(
    summary,
    /Omni-DPO - DPO: [+-]\d+\.\d \[[+-]\d+\.\d, [+-]\d+\.\d\] points \(95% CI\): (within noise|better beyond noise|worse beyond noise)/,
  );
});

test("omni-dpo demo --pipeline math --json: one JSON object of the issue's shape, the pipeline's fields at the top", () => {
  const out = tempDir("omni-dpo-demo-cli-");
  // The quick design on fewer problems (the real quick demo is test/apps/demo/quick-demo.test.ts, run by CI).
  const r = spawnSync(
    process.execPath,
    [
      CLI,
      "demo",
      "--quick",
      "--pipeline",
      "math",
      "--prompts",
      "64",
      "--val",
      "16",
      "--heldout",
      "32",
      "--json",
      "--out",
      out,
    ],
    { encoding: "utf8", timeout: 600_000 },
  );
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.split("\n").filter((l) => l.trim() !== "");
  assert.equal(lines.length, 1, `exactly one line on stdout, got:\n${r.stdout}`);
  const json = JSON.parse(lines[0]) as PipelineJson & {
    pipelines: PipelineJson[];
    settings: { sizes: Record<string, number> };
  };
  assert.equal(json.pipeline, "math", "one pipeline: its fields at the top level");
  assert.deepEqual(
    json.pipelines.map((p) => p.pipeline),
    ["math"],
  );
  assert.deepEqual(
    json.settings.sizes,
    { train: 64, val: 16, test: 32 },
    "--prompts, --val and --heldout set the sizes",
  );
  assertPipelineShape(json, 2); // quick: 1 training x 2 pair seeds
  assert.ok(existsSync(join(out, "report.html")));
  assert.deepEqual(
    JSON.parse(readFileSync(join(out, "results.json"), "utf8")),
    json,
    "results.json holds the same object",
  );
});

test("omni-dpo demo: bad flags are usage errors naming the flag", () => {
  const run = (...args: string[]) => spawnSync(process.execPath, [CLI, "demo", ...args], { encoding: "utf8" });
  const pipeline = run("--pipeline", "maths");
  assert.notEqual(pipeline.status, 0);
  assert.match(pipeline.stderr, /--pipeline must be math, text, rm or all, got 'maths'/);
  const scale = run("--rm-scale", "log");
  assert.notEqual(scale.status, 0);
  assert.match(scale.stderr, /--rm-scale must be raw, std or z, got 'log'/);
  assert.match(run("--text-scale", "unit").stderr, /--text-scale must be raw, std or z, got 'unit'/);
  assert.match(run("--rm-eta=-1").stderr, /--rm-eta must be a non-negative number, got '-1'/);
  const step = run("sft", "--out", tempDir("omni-dpo-sft-"), "--save-at-step", "2000");
  assert.notEqual(step.status, 0);
  assert.match(step.stderr, /--save-at-step 2000 is past the schedule's 1500 steps/);
  assert.match(run("--jobs", "0").stderr, /--jobs must be a positive integer/);
});

test("greedyAccuracy of the shipped SFT model is the share of greedy answers that verify", () => {
  const model = loadModel(SFT_DIR);
  const tokenizer = arithTokenizer();
  const problems = generateProblems(10, { difficulty: "hard", seed: 31 });
  const out = generate(
    model,
    problems.map((p) => tokenizer.encode(formatPrompt(p))),
    { maxNewTokens: 64, eosTokenIds: [tokenizer.eosTokenId!], padTokenId: tokenizer.padTokenId },
  );
  let correct = 0;
  out.tokens.forEach((t, i) => {
    if (verify(problems[i], tokenizer.decode(t, { skipSpecialTokens: true }))) correct++;
  });
  const acc = greedyAccuracy(model, tokenizer, problems);
  inUnit(acc, "greedyAccuracy");
  assert.equal(acc, correct / 10);
  // Each problem on its own gives 0 or 1, and they add up to the same count.
  const single = problems.map((p) => greedyAccuracy(model, tokenizer, [p]));
  assert.ok(single.every((x) => x === 0 || x === 1));
  assert.equal(
    single.reduce((a: number, b) => a + b, 0),
    correct,
  );
  assert.equal(greedyAccuracy(model, tokenizer, []), 0);
  model.dispose();
});
