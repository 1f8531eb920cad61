// No lost or overwritten work: a finished run checkpoints its last step and is recognised on a
// rerun; a resume that would silently change settings is refused (and a deliberate one warned
// about); one run per output_dir (stale locks taken over, foreign ones refused); what a killed
// run leaves is cleaned up; step fractions; NaN is an error naming the step; the trainer's
// steps are methods a subclass can override.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { ConfigError, loadTrainConfig } from "../../src/train/config.js";
import { MetricsSink, type MetricRow } from "../../src/train/metrics.js";
import { LOCK_FILE, RunLockedError } from "../../src/train/run-lock.js";
import { PreferenceTrainer, train, type MicroBatchOutput, type TrainHooks } from "../../src/train/trainer.js";
import type { TokenizedPair } from "../../src/data/tokenize.js";
import { tempDir, toyPairs, writeJsonl, writeToyModel } from "../helpers/toy.js";
import { writeNanModel } from "./broken-model.js";

let root: string;
let model: string;
let data: string;
before(() => {
  root = tempDir("omni-dpo-reliability-");
  model = writeToyModel(join(root, "model"));
  data = writeJsonl(join(root, "pairs.jsonl"), toyPairs(20));
});
after(() => rmSync(root, { recursive: true, force: true }));

/** 16 training pairs and 4 held out, micro-batches of 4: 4 steps an epoch; constant learning rate. */
function recipe(outputDir: string, extra: Record<string, unknown> = {}) {
  return loadTrainConfig({
    model_name_or_path: model,
    dataset_mixer: { [data]: 1.0 },
    test_split_size: 0.2,
    output_dir: join(root, outputDir),
    pref_loss: "uni_dpo",
    beta: 2.0,
    learning_rate: 3.0e-3,
    lr_scheduler_type: "constant",
    num_train_epochs: 2,
    per_device_train_batch_size: 4,
    per_device_eval_batch_size: 4,
    max_length: 48,
    max_prompt_length: 24,
    logging_steps: 1,
    seed: 5,
    ...extra,
  }).config;
}

const stopAfter = (n: number): TrainHooks => {
  let step = 0;
  return {
    onProgress: (s) => {
      step = s;
    },
    shouldStop: () => step >= n,
  };
};
const checkpoints = (dir: string) =>
  readdirSync(dir)
    .filter((n) => n.startsWith("checkpoint-"))
    .sort();
const rows = (dir: string): MetricRow[] => MetricsSink.read(join(dir, "metrics.jsonl"));

describe("a finished run", () => {
  it("ends with a checkpoint at its last step; a rerun says it is finished and trains nothing; overwrite_output_dir trains afresh", async () => {
    const first = await train(recipe("finished", { max_steps: 3, save_steps: 100 }));
    assert.equal(first.alreadyFinished, false);
    assert.deepEqual(checkpoints(first.outputDir), ["checkpoint-3"], "the HF trainer's end-of-run checkpoint");
    const metrics = readFileSync(join(first.outputDir, "metrics.jsonl"), "utf8");
    const weights = statSync(join(first.outputDir, "model.safetensors")).mtimeMs;

    const statuses: string[] = [];
    let steps = 0;
    const again = await train(recipe("finished", { max_steps: 3, save_steps: 100 }), {
      onStatus: (m) => statuses.push(m),
      onProgress: () => {
        steps++;
      },
    });
    assert.equal(again.alreadyFinished, true);
    assert.equal(again.globalStep, 3);
    assert.equal(steps, 0, "no step was trained again");
    assert.ok(
      statuses.some((m) => /holds a finished run .*checkpoint-3.*step 3 of 3.*overwrite_output_dir: true/.test(m)),
      statuses.join("\n"),
    );
    assert.deepEqual(again.lastTrainRow, first.lastTrainRow, "the finished run's results are reported");
    assert.equal(readFileSync(join(first.outputDir, "metrics.jsonl"), "utf8"), metrics);
    assert.equal(statSync(join(first.outputDir, "model.safetensors")).mtimeMs, weights);

    const fresh = await train(recipe("finished", { max_steps: 3, save_steps: 100, overwrite_output_dir: true }), {
      onProgress: () => {
        steps++;
      },
    });
    assert.equal(fresh.alreadyFinished, false);
    assert.equal(steps, 3);
    assert.deepEqual(
      rows(fresh.outputDir)
        .filter((r) => "loss" in r)
        .map((r) => r.step),
      [1, 2, 3],
    );
  });
});

describe("resuming with changed settings", () => {
  it("an automatic resume with a changed learning_rate, beta, uni_dpo_tau_ref or max_steps is refused, naming old -> new and both ways out", async () => {
    const stopped = await train(recipe("changed"), stopAfter(2));
    assert.equal(stopped.checkpoint, join(root, "changed", "checkpoint-2"));
    const before = readFileSync(join(root, "changed", "metrics.jsonl"), "utf8");
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ learning_rate: 6.0e-3 }, /learning_rate: 0\.003 -> 0\.006/],
      [{ beta: 3.5, uni_dpo_tau_ref: 0.5 }, /beta: 2 -> 3\.5, uni_dpo_tau_ref: \(unset\) -> 0\.5/],
      [{ max_steps: 5 }, /max_steps: -1 -> 5/],
      [
        { lr_scheduler_type: "cosine", warmup_ratio: 0.1 },
        /lr_scheduler_type: constant -> cosine.*warmup_ratio: 0 -> 0\.1/,
      ],
    ];
    for (const [change, names] of cases) {
      await assert.rejects(train(recipe("changed", change)), (e: unknown) => {
        assert.ok(e instanceof ConfigError, String(e));
        assert.match(e.message, names);
        assert.match(e.message, /checkpoint-2 was made with other settings/);
        assert.match(e.message, /overwrite_output_dir: true/);
        assert.match(e.message, new RegExp(`resume_from_checkpoint: ${join(root, "changed", "checkpoint-2")}`));
        return true;
      });
    }
    assert.equal(readFileSync(join(root, "changed", "metrics.jsonl"), "utf8"), before, "nothing changed");
    assert.ok(!existsSync(join(root, "changed", LOCK_FILE)), "each refused run released the lock");
  });

  it("resume_from_checkpoint naming the checkpoint accepts the change with a warning, and the run continues under the new value", async () => {
    const stopped = await train(recipe("deliberate"), stopAfter(2));
    const warnings: string[] = [];
    const resumed = await train(
      recipe("deliberate", { learning_rate: 6.0e-3, resume_from_checkpoint: stopped.checkpoint }),
      { onWarning: (m) => warnings.push(m) },
    );
    assert.equal(resumed.globalStep, 8);
    assert.equal(warnings.length, 1, warnings.join("\n"));
    assert.match(warnings[0], /resuming from .*checkpoint-2 with changed settings \(learning_rate: 0\.003 -> 0\.006\)/);
    const lrs = rows(resumed.outputDir)
      .filter((r) => "loss" in r)
      .map((r) => [r.step, r.learning_rate]);
    assert.deepEqual(lrs, [
      [1, 0.003],
      [2, 0.003],
      [3, 0.006],
      [4, 0.006],
      [5, 0.006],
      [6, 0.006],
      [7, 0.006],
      [8, 0.006],
    ]);
  });

  it("changed batch settings are refused even from a named checkpoint, naming the key", async () => {
    const stopped = await train(recipe("batch"), stopAfter(1));
    await assert.rejects(
      train(recipe("batch", { per_device_train_batch_size: 2, resume_from_checkpoint: stopped.checkpoint })),
      /different data, batch or length settings \(per_device_train_batch_size: 4 -> 2\)/,
    );
  });
});

describe("one run per output_dir", () => {
  it("a lock left by a dead process on this host is taken over with a notice, and released at the end", async () => {
    const dead = spawnSync(process.execPath, ["-e", ""]); // a real pid, no longer running
    const dir = join(root, "stale");
    mkdirSync(dir, { recursive: true });
    writeFileSync(
      join(dir, LOCK_FILE),
      JSON.stringify({ pid: dead.pid, hostname: hostname(), started: "2020-01-01T00:00:00.000Z" }),
    );
    const statuses: string[] = [];
    const r = await train(recipe("stale", { max_steps: 1 }), { onStatus: (m) => statuses.push(m) });
    assert.equal(r.globalStep, 1);
    assert.ok(
      statuses.some((m) => m.includes(join(dir, LOCK_FILE)) && m.includes(`took over a stale lock (pid ${dead.pid}`)),
      statuses.join("\n"),
    );
    assert.ok(!existsSync(join(dir, LOCK_FILE)));
  });

  it("a lock held from another host is refused, naming its pid, host and the lock file; nothing is written", async () => {
    const dir = join(root, "foreign");
    mkdirSync(dir, { recursive: true });
    const lock = join(dir, LOCK_FILE);
    writeFileSync(lock, JSON.stringify({ pid: 4242, hostname: "gpu-node-7", started: "2026-01-01T00:00:00.000Z" }));
    await assert.rejects(train(recipe("foreign", { max_steps: 1 })), (e: unknown) => {
      assert.ok(e instanceof RunLockedError, String(e));
      assert.match(e.message, /in use by another run: pid 4242 on gpu-node-7, started 2026-01-01/);
      assert.ok(e.message.includes(lock), e.message);
      return true;
    });
    assert.deepEqual(readdirSync(dir), [LOCK_FILE], "the other run's lock is left alone and nothing else written");
  });
});

describe("what a killed run leaves behind", () => {
  it("temporary files and checkpoint directories and half-deleted checkpoints are removed at the next start", async () => {
    const dir = join(root, "leftovers");
    mkdirSync(join(dir, "checkpoint-4.tmp-99999"), { recursive: true });
    writeFileSync(join(dir, "checkpoint-4.tmp-99999", "model.safetensors"), "half");
    mkdirSync(join(dir, "checkpoint-2.deleting"), { recursive: true });
    writeFileSync(join(dir, "checkpoint-2.deleting", "trainer_state.json"), "{}");
    writeFileSync(join(dir, "metrics.jsonl.tmp-99999"), '{"step": 1');
    mkdirSync(join(dir, "ref_logps_cache"), { recursive: true });
    writeFileSync(join(dir, "ref_logps_cache", "abc.json.tmp-99999"), "[");
    const statuses: string[] = [];
    await train(recipe("leftovers", { max_steps: 1 }), { onStatus: (m) => statuses.push(m) });
    const left = readdirSync(dir);
    for (const name of ["checkpoint-4.tmp-99999", "checkpoint-2.deleting", "metrics.jsonl.tmp-99999"])
      assert.ok(!left.includes(name), `${name} is still there`);
    assert.deepEqual(readdirSync(join(dir, "ref_logps_cache")), []);
    assert.ok(
      statuses.some(
        (m) =>
          /removed what an interrupted run left .*checkpoint-4\.tmp-99999.*checkpoint-2\.deleting/.test(m) ||
          /removed what an interrupted run left .*checkpoint-2\.deleting.*checkpoint-4\.tmp-99999/.test(m),
      ),
      statuses.join("\n"),
    );
    assert.deepEqual(checkpoints(dir), ["checkpoint-1"]);
  });
});

describe("step counts as fractions of the run", () => {
  it("save_steps 0.35 and logging_steps 0.25 of 20 steps checkpoint every 7 and log every 5, as transformers rounds them (up)", async () => {
    const r = await train(
      recipe("fractions", { num_train_epochs: 5, save_steps: 0.35, logging_steps: 0.25, eval_steps: 0.5 }),
    );
    assert.equal(r.totalSteps, 20);
    assert.deepEqual(checkpoints(r.outputDir), ["checkpoint-14", "checkpoint-20", "checkpoint-7"]);
    const logged = rows(r.outputDir);
    assert.deepEqual(
      logged.filter((x) => "loss" in x).map((x) => x.step),
      [5, 10, 15, 20],
    );
    assert.deepEqual(
      logged.filter((x) => "eval_loss" in x).map((x) => x.step),
      [10, 20],
    );
  });
});

describe("non-finite values", () => {
  it("NaN weights stop training with an error naming the step; no checkpoint, no lock left", async () => {
    const nan = writeNanModel(join(root, "nan-model"));
    const config = loadTrainConfig({
      ...recipeRaw(),
      model_name_or_path: nan,
      output_dir: join(root, "nan-run"),
    }).config;
    await assert.rejects(train(config), (e: unknown) => {
      assert.match((e as Error).message, /^step 1: .*NaN/);
      return true;
    });
    assert.ok(
      !existsSync(join(root, "nan-run")),
      "output_dir, made by the run and left empty, is gone again: no checkpoint, no lock",
    );
  });
});

function recipeRaw(): Record<string, unknown> {
  return {
    dataset_mixer: { [data]: 1.0 },
    pref_loss: "simpo",
    beta: 2.0,
    learning_rate: 1e-3,
    max_steps: 2,
    per_device_train_batch_size: 4,
    max_length: 48,
    max_prompt_length: 24,
    logging_steps: 1,
  };
}

describe("the trainer's steps are methods", () => {
  it("a subclass overriding computeLoss, optimizerStep and log sees every micro-batch, step and row, and its changes take effect", async () => {
    const seen = { train: 0, eval: 0, steps: 0, rows: [] as MetricRow[] };
    class Observed extends PreferenceTrainer {
      override computeLoss(pairs: TokenizedPair[], indices: number[], split: "train" | "eval"): MicroBatchOutput {
        seen[split] += 1;
        const out = super.computeLoss(pairs, indices, split);
        return { ...out, metrics: { ...out.metrics, pairs_seen: pairs.length } };
      }
      override optimizerStep() {
        seen.steps += 1;
        return super.optimizerStep();
      }
      override log(row: MetricRow) {
        seen.rows.push(row);
        super.log(row);
      }
    }
    // 16 pairs in micro-batches of 4, two accumulated per step: 2 steps an epoch, 2 epochs; 4 eval pairs in one batch.
    const r = await new Observed(recipe("observed", { gradient_accumulation_steps: 2, eval_steps: 2 })).train();
    assert.equal(r.globalStep, 4);
    assert.deepEqual(seen, {
      train: 8,
      eval: 2,
      steps: 4,
      rows: seen.rows,
    });
    assert.deepEqual(
      seen.rows.map((x) => [x.step, "loss" in x ? "train" : "eval"]),
      [
        [1, "train"],
        [2, "train"],
        [2, "eval"],
        [3, "train"],
        [4, "train"],
        [4, "eval"],
      ],
    );
    assert.ok(
      seen.rows.filter((x) => "loss" in x).every((x) => x.pairs_seen === 4),
      "the subclass's metric reached the log",
    );
    assert.ok(seen.rows.filter((x) => "eval_loss" in x).every((x) => x.eval_pairs_seen === 4));
    assert.deepEqual(rows(r.outputDir), seen.rows);
  });
});

describe("a broken reference", () => {
  it("NaN reference log-probs are an error naming the reference and the pair, and are never cached", async () => {
    const nan = join(root, "nan-model");
    if (!existsSync(nan)) writeNanModel(nan);
    const out = join(root, "nan-ref");
    await assert.rejects(
      train(recipe("nan-ref", { ref_model: nan, precompute_ref_log_probs: true, max_steps: 1 })),
      new RegExp(`${nan}: the reference's chosen log-prob of pair 1 is NaN; nothing cached`),
    );
    assert.ok(!existsSync(join(out, "ref_logps_cache")) || readdirSync(join(out, "ref_logps_cache")).length === 0);
  });
});
