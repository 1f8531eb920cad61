// Training callbacks through the public entry: a script outside the package (in a temp dir whose
// node_modules/omni-dpo links to this checkout) imports "omni-dpo", passes a callback to
// train(), and records every event. On one process and on two Gloo ranks it sees the events in
// the loop's order with the run's state; a callback that sets control.shouldTrainingStop in
// onStepEnd (on one rank only, in the 2-rank run) ends the run there on every rank, with the
// final model written.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { packageRoot } from "../../src/util/package-root.js";
import { tempDir, toyPairs, writeJsonl } from "../helpers/toy.js";
import { freePort, runProcess, runRanks } from "../distributed/ranks.js";
import { writeRecipe, writeSetup } from "../distributed/train-ranks.js";

// The user's script: every event as [name, step, epoch, maxSteps, what], `what` naming the row
// (train or eval) or the checkpoint; STOP_AT (and STOP_RANK) make onStepEnd stop the run.
const SCRIPT = `
import { train, loadTrainConfig, TrainerControl } from "omni-dpo";
import { writeFileSync } from "node:fs";
const [recipe, out] = process.argv.slice(2);
const stopAt = Number(process.env.STOP_AT ?? 0);
const rank = Number(process.env.RANK ?? 0);
const events = [];
const kinds = new Set();
const record = (name) => (e) => {
  const row = e.metrics && ("step" in e.metrics) ? (Object.keys(e.metrics).some((k) => k.startsWith("eval_")) ? "eval" : "train") : null;
  const checkpoint = e.checkpoint ? e.checkpoint.split("/").at(-1) : null;
  events.push([name, e.state.globalStep, Math.round(e.state.epoch * 100) / 100, e.state.maxSteps, row ?? checkpoint]);
  kinds.add([typeof e.model.forward, e.control instanceof TrainerControl, e.state.isWorldProcessZero, e.state.worldSize].join());
  if (name === "onStepEnd" && e.state.globalStep === stopAt && (process.env.STOP_RANK === undefined || Number(process.env.STOP_RANK) === rank)) {
    e.control.shouldTrainingStop = true;
  }
};
const callback = Object.fromEntries(["onTrainBegin", "onStepEnd", "onLog", "onEvaluate", "onSave", "onTrainEnd"].map((n) => [n, record(n)]));
const result = await train(loadTrainConfig(recipe).config, { callbacks: [callback] });
writeFileSync(out + "." + rank + ".json", JSON.stringify({ events, kinds: [...kinds], result }));
`;

let root: string;
let script: string;
let recipeKeys: Record<string, unknown>;

before(() => {
  root = tempDir("omni-dpo-callbacks-");
  // An outside project: its own directory, the package linked in as npm would install it.
  const project = join(root, "project");
  mkdirSync(join(project, "node_modules"), { recursive: true });
  symlinkSync(packageRoot(), join(project, "node_modules", "omni-dpo"), "dir");
  script = join(project, "train.mjs");
  writeFileSync(script, SCRIPT);
  const { model, data } = writeSetup(root, 16);
  const evalData = writeJsonl(join(root, "eval.jsonl"), toyPairs(4, 9));
  // 16 pairs in micro-batches of 2, 4 pairs a step: one process accumulates 2 micro-batches,
  // two ranks take 1 each (8 pairs a rank); 4 steps, one epoch; log, evaluate and save every 2.
  recipeKeys = {
    model_name_or_path: model,
    train_data_path: data,
    eval_data_path: evalData,
    pref_loss: "dpo",
    beta: 0.1,
    learning_rate: 1e-3,
    max_steps: 4,
    per_device_train_batch_size: 2,
    per_device_eval_batch_size: 4,
    max_length: 48,
    max_prompt_length: 24,
    logging_steps: 2,
    eval_steps: 2,
    save_steps: 2,
    pair_log_samples: 0,
  };
});
after(() => rmSync(root, { recursive: true, force: true }));

interface Run {
  events: [string, number, number, number, string | null][];
  kinds: string[];
  result: { globalStep: number; interrupted: boolean; stoppedEarly: boolean };
}

async function runOne(name: string, env: Record<string, string> = {}): Promise<Run> {
  const dir = join(root, name);
  const recipe = writeRecipe(join(root, `${name}.yaml`), {
    ...recipeKeys,
    output_dir: dir,
    gradient_accumulation_steps: 2,
  });
  const r = await runProcess([script, recipe, join(root, name)], env);
  assert.equal(r.code, 0, r.output);
  return JSON.parse(readFileSync(join(root, `${name}.0.json`), "utf8")) as Run;
}

async function runTwo(name: string, env: Record<string, string> = {}): Promise<Run[]> {
  const dir = join(root, name);
  const recipe = writeRecipe(join(root, `${name}.yaml`), {
    ...recipeKeys,
    output_dir: dir,
    gradient_accumulation_steps: 1,
  });
  const runs = await runRanks(script, 2, { MASTER_PORT: String(await freePort()), ...env }, [recipe, join(root, name)]);
  for (const r of runs) assert.equal(r.code, 0, r.output);
  return [0, 1].map((rank) => JSON.parse(readFileSync(join(root, `${name}.${rank}.json`), "utf8")) as Run);
}

/** The loop's order for the recipe: steps 1-4, rows and evaluation at 2 and 4, checkpoints at 2 and (the final one) 4. */
const FULL: [string, number, string | null][] = [
  ["onTrainBegin", 0, null],
  ["onStepEnd", 1, null],
  ["onStepEnd", 2, null],
  ["onLog", 2, "train"],
  ["onLog", 2, "eval"],
  ["onEvaluate", 2, "eval"],
  ["onSave", 2, "checkpoint-2"],
  ["onStepEnd", 3, null],
  ["onStepEnd", 4, null],
  ["onLog", 4, "train"],
  ["onLog", 4, "eval"],
  ["onEvaluate", 4, "eval"],
  ["onSave", 4, "checkpoint-4"],
  ["onTrainEnd", 4, null],
];
/** Stopped in onStepEnd at step 3: no row (3 is no logging step), then the final model's checkpoint. */
const STOPPED = [...FULL.slice(0, 8), ["onSave", 3, "checkpoint-3"], ["onTrainEnd", 3, null]];
const shape = (run: Run) => run.events.map(([name, step, , , what]) => [name, step, what]);

describe('callbacks from outside the package (import from "omni-dpo")', () => {
  it("one process: every event in the loop's order, with state, model and control", async () => {
    const run = await runOne("single");
    assert.deepEqual(shape(run), FULL);
    assert.ok(run.events.every(([, , , maxSteps]) => maxSteps === 4));
    assert.deepEqual(
      run.events.filter(([n]) => n === "onStepEnd").map(([, , epoch]) => epoch),
      [0.25, 0.5, 0.75, 1],
    );
    assert.deepEqual(run.kinds, ["function,true,true,1"]);
    assert.deepEqual([run.result.globalStep, run.result.stoppedEarly, run.result.interrupted], [4, false, false]);
  });

  it("two ranks: the same events on each rank; only rank 0 is the world's process zero", async () => {
    const [r0, r1] = await runTwo("ranks");
    assert.deepEqual(shape(r0), FULL);
    assert.deepEqual(shape(r1), FULL);
    assert.deepEqual(r0.kinds, ["function,true,true,2"]);
    assert.deepEqual(r1.kinds, ["function,true,false,2"]);
  });

  it("onStepEnd stops the run: at that step, on every rank when one rank asks, with the final model written", async () => {
    const single = await runOne("stop-single", { STOP_AT: "3" });
    assert.deepEqual(shape(single), STOPPED);
    assert.deepEqual(
      [single.result.globalStep, single.result.stoppedEarly, single.result.interrupted],
      [3, true, false],
    );
    const [r0, r1] = await runTwo("stop-ranks", { STOP_AT: "3", STOP_RANK: "1" });
    assert.deepEqual(shape(r0), STOPPED);
    assert.deepEqual(shape(r1), STOPPED);
    assert.equal(r0.result.globalStep, 3);
    for (const name of ["stop-single", "stop-ranks"]) {
      const dir = join(root, name);
      assert.ok(
        existsSync(join(dir, "model.safetensors")) && existsSync(join(dir, "checkpoint-3")),
        `${name}: final model and checkpoint`,
      );
      const state = JSON.parse(readFileSync(join(dir, "trainer_state.json"), "utf8"));
      assert.equal(state.global_step, 3);
    }
  });
});
