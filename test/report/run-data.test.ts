// What the dashboard reads of a run directory, without a browser: rows as they are appended
// (a line without its newline waits), a bad line named by file and line, a file rewritten
// shorter (a resumed run's truncation) read again from the start, and the run's state from
// its lock, checkpoints and train_results.json.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { appendFileSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import { RunReader } from "../../src/report/run-data.js";
import { writeFileAtomic } from "../../src/util/files.js";
import { tempDir } from "../helpers/toy.js";

let root: string;
before(() => {
  root = tempDir("omni-dpo-rundata-");
});
after(() => rmSync(root, { recursive: true, force: true }));

const row = (step: number) => JSON.stringify({ step, epoch: step / 10, loss: 1 / step }) + "\n";

test("rows are read as appended; a partial line waits; a bad line is named; a shorter rewrite starts over", () => {
  const dir = join(root, "run");
  mkdirSync(dir);
  const file = join(dir, "metrics.jsonl");
  writeFileSync(file, row(1) + row(2));
  const reader = new RunReader(dir, 0);
  const first = reader.poll()!;
  assert.equal(first.name, "run");
  assert.deepEqual(
    first.rows.map((r) => r.step),
    [1, 2],
  );
  assert.equal(reader.poll(), null, "nothing new, nothing sent");

  appendFileSync(file, row(3).slice(0, 10));
  const partial = reader.poll()!;
  assert.deepEqual(partial.rows, []);
  assert.ok(
    partial.problems.some((p) => /last line is incomplete/.test(p)),
    partial.problems.join(" | "),
  );
  appendFileSync(file, row(3).slice(10) + "{not json\n" + row(4));
  const rest = reader.poll()!;
  assert.equal(rest.reset, false);
  assert.deepEqual(
    rest.rows.map((r) => r.step),
    [3, 4],
  );
  assert.ok(
    rest.problems.some((p) => /^metrics\.jsonl line 4: not a metrics row/.test(p)),
    rest.problems.join(" | "),
  );
  assert.ok(!rest.problems.some((p) => /incomplete/.test(p)));

  // A resume truncates to its checkpoint's step: the file is replaced, and read again whole.
  writeFileAtomic(file, row(1) + row(2));
  const again = reader.poll()!;
  assert.equal(again.reset, true);
  assert.deepEqual(
    again.rows.map((r) => r.step),
    [1, 2],
  );
  assert.ok(!again.problems.some((p) => /line 4/.test(p)), "the old file's problems are gone with it");
});

test("state: not a run, killed (a lock whose process is gone), finished; and what is missing", () => {
  assert.match(new RunReader(join(root, "nowhere"), 0).snapshot().problems[0], /nowhere does not exist/);
  const empty = join(root, "empty");
  mkdirSync(empty);
  const none = new RunReader(empty, 0).snapshot();
  assert.equal(none.status.state, "not a run");
  assert.match(none.problems[0], /is not a training run/);

  const dir = join(root, "killed");
  mkdirSync(join(dir, "checkpoint-4"), { recursive: true });
  writeFileSync(join(dir, "checkpoint-4", "omni_dpo_state.json"), JSON.stringify({ globalStep: 4, totalSteps: 10 }));
  writeFileSync(join(dir, "metrics.jsonl"), row(2) + row(4) + row(6));
  const dead = spawnSync(process.execPath, ["-e", "console.log(process.pid)"], { encoding: "utf8" });
  writeFileSync(
    join(dir, "train.lock"),
    JSON.stringify({ pid: Number(dead.stdout.trim()), hostname: hostname(), started: new Date().toISOString() }),
  );
  const reader = new RunReader(dir, 0);
  const killed = reader.poll()!;
  assert.equal(killed.status.state, "interrupted");
  assert.match(killed.status.detail, /is gone.*killed; resumes from checkpoint-4/);
  assert.deepEqual([killed.status.step, killed.status.totalSteps, killed.status.checkpoint], [6, 10, 4]);
  assert.ok(killed.problems.some((p) => /no pair_log\.jsonl/.test(p)));

  rmSync(join(dir, "train.lock"));
  // What the trainer writes with the final model: HF's train_results.json and trainer_state.json.
  writeFileSync(join(dir, "train_results.json"), JSON.stringify({ train_loss: 0.5, epoch: 1 }));
  writeFileSync(join(dir, "trainer_state.json"), JSON.stringify({ global_step: 10, max_steps: 10 }));
  appendFileSync(join(dir, "metrics.jsonl"), row(8) + row(10));
  const finished = reader.poll()!;
  assert.equal(finished.status.state, "finished");
  assert.equal(finished.status.step, 10);
});

test("a long run's file (200k rows) is read whole, its step and chart range found without exhausting the stack", async () => {
  const dir = join(root, "long");
  mkdirSync(dir);
  const rows = 200_000; // Math.max(...rows) or push(...rows) overflow the stack from about 130k
  writeFileSync(join(dir, "metrics.jsonl"), Array.from({ length: rows }, (_, i) => row(i + 1)).join(""));
  const update = new RunReader(dir, 0).poll()!;
  assert.equal(update.rows.length, rows);
  assert.equal(update.status.step, rows);
  const { lineChart } = await import("../../src/report/svg.js");
  const points = update.rows.map((r) => [r.step as number, r.loss as number] as [number, number]);
  assert.match(lineChart("loss", "step", "loss", [{ name: "long", points }]), /<svg/);
});
