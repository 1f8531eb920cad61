// The demo's plan (apps/demo/arith.ts planDemo): what a run will do, decided before any job runs.
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { planDemo, SFT_RECIPE } from "../../../apps/demo/arith.js";
import { formatPrompt, generateProblems } from "../../../apps/tasks/arith/index.js";
import { tempDir } from "../../helpers/toy.js";

test("planDemo --quick: seeds, sizes and run count as documented; the five problem sets are disjoint", () => {
  const plan = planDemo({ quick: true, outDir: "out", sizes: { train: 50, val: 20, test: 30 } });
  assert.deepEqual(plan.pipelines, ["math", "text", "rm"]);
  assert.deepEqual(planDemo({ quick: true, outDir: "out", pipeline: "both" }).pipelines, plan.pipelines, "both = all");
  assert.deepEqual(plan.trainSeeds, [0]);
  assert.deepEqual(plan.pairSeeds, [0, 1]);
  assert.equal(plan.tuneSeed, 1000);
  // Per pipeline and method: 3 tuning rates + 1 x 2 reported runs + 2 sweep multiples x 2 pair seeds = 9;
  // 4 methods in math and text, 3 in rm (no RFT): 99.
  assert.equal(plan.plannedRuns, 99);
  // The default: 3 tuning rates + 2 x 3 reported runs + 2 sweep multiples x 2 pair seeds (the
  // sweep uses the first two, so the default fits 10 minutes) = 13 per method; 11 methods: 143.
  const full = planDemo({ outDir: "out", sizes: { train: 50, val: 20, test: 30 } });
  assert.deepEqual(
    [full.trainSeeds, full.pairSeeds],
    [
      [0, 1],
      [0, 1, 2],
    ],
  );
  assert.equal(full.plannedRuns, 143);
  assert.deepEqual(
    [plan.trainPrompts.length, plan.valProblems.length, plan.testProblems.length, plan.rm.prompts.length],
    [50, 20, 30, 1024],
  );
  assert.deepEqual({ eta: plan.rm.eta, scale: plan.rm.scale }, { eta: 1, scale: "raw" }, "the rm pipeline's defaults");
  const sft = new Set(
    generateProblems(SFT_RECIPE.problems, { difficulty: SFT_RECIPE.difficulty, seed: SFT_RECIPE.problemSeed }).map(
      formatPrompt,
    ),
  );
  const sets = [
    plan.trainPrompts,
    plan.valProblems.map(formatPrompt),
    plan.testProblems.map(formatPrompt),
    plan.rm.prompts,
  ];
  const all = sets.flat();
  assert.equal(new Set(all).size, all.length, "no prompt in two sets");
  assert.ok(
    all.every((p) => !sft.has(p)),
    "no prompt from the SFT set",
  );
  // The reward model's prompts are its recipe's: the same for every seed, and every seed's sets avoid them.
  const other = planDemo({ quick: true, seed: 7, outDir: "out", sizes: { train: 50, val: 20, test: 30 } });
  assert.deepEqual(other.rm.prompts, plan.rm.prompts);
  const rm = new Set(plan.rm.prompts);
  assert.ok(
    [other.trainPrompts, other.valProblems.map(formatPrompt), other.testProblems.map(formatPrompt)]
      .flat()
      .every((p) => !rm.has(p)),
    "seed 7's sets avoid the reward model's prompts",
  );
});

test("planDemo: a missing start is trained into the output directory; methods without DPO are refused", () => {
  const out = tempDir("omni-dpo-demo-plan-");
  const plan = planDemo({
    pipeline: "math",
    seed: 5,
    trainSeeds: 2,
    outDir: out,
    sftDir: join(out, "none"),
    sizes: { train: 8, val: 4, test: 4 },
  });
  assert.deepEqual(plan.sft, { dir: join(out, "sft"), train: true });
  assert.deepEqual(plan.trainSeeds, [5, 6]);
  assert.equal(plan.tuneSeed, 1005);
  assert.throws(
    () => planDemo({ outDir: out, methods: [{ name: "rft", label: "RFT", config: {}, grid: [1e-5] }] }),
    /the methods must include 'dpo'/,
  );
});
