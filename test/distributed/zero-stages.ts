// What the ZeRO stage tests share: 2 ranks at a stage must learn what 1 process learns with twice
// the batch (weights and metrics), and a run killed with SIGKILL must resume to the uninterrupted
// run's weights. Each stage's test file states its own tolerances and extras.
import assert from "node:assert/strict";
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { tempDir } from "../helpers/toy.js";
import { freePort } from "./ranks.js";
import {
  maxWeightDifference,
  metricRows,
  runTrain,
  startTrain,
  weightsOf,
  writeRecipe,
  writeSetup,
} from "./train-ranks.js";

type Dtype = "float64" | "float32";
type Extra = Record<string, unknown>;

const twoRanks = async () => ["--nproc-per-node", "2", "--master-port", String(await freePort())];

/** Metrics that depend on how a batch is split even in one process (a speed; per-token means of logits). */
const SPLIT_DEPENDENT = /tokens_per_second|logits\//;

/** A toy model (plain and with tied embeddings), its data, and the runs of one ZeRO stage's tests. */
export class ZeroStageRuns {
  readonly root: string;
  readonly setup: { model: string; data: string };
  readonly tied: string;

  constructor(readonly stage: number) {
    this.root = tempDir(`omni-dpo-zero${stage}-`);
    this.setup = writeSetup(this.root, 21);
    this.tied = writeSetup(this.root, 21, { tieWordEmbeddings: true }).model;
  }

  dispose(): void {
    rmSync(this.root, { recursive: true, force: true });
  }

  /** 16 training pairs: 2 ranks x batch 2 (or 1 x batch 4), 2 accumulated, 4 epochs = 8 clipped steps. */
  recipe(name: string, dtype: Dtype, batch: number, extra: Extra = {}): { file: string; dir: string } {
    const dir = join(this.root, name);
    const file = writeRecipe(join(this.root, `${name}.yaml`), {
      model_name_or_path: this.setup.model,
      dataset_mixer: { [this.setup.data]: 1.0 },
      test_split_size: 5,
      output_dir: dir,
      torch_dtype: dtype,
      pref_loss: "dpo",
      beta: 0.5,
      learning_rate: 5e-3,
      lr_scheduler_type: "linear",
      warmup_steps: 1,
      weight_decay: 0.1,
      num_train_epochs: 4,
      per_device_train_batch_size: batch,
      gradient_accumulation_steps: 2,
      per_device_eval_batch_size: 3,
      max_grad_norm: 0.05,
      max_length: 48,
      max_prompt_length: 24,
      logging_steps: 1,
      eval_steps: 4,
      save_steps: 3,
      seed: 11,
      ddp_timeout: 60,
      ...extra,
    });
    return { file, dir };
  }

  /** 1 process at batch 4 against 2 ranks at batch 2 at this stage: weights and metric rows within `tolerance`. */
  async compare(dtype: Dtype, tolerance: number, extra: Extra = {}): Promise<{ output: string }> {
    const name = `${dtype}-${Object.keys(extra).join("-")}`;
    const alone = this.recipe(`${name}-alone`, dtype, 4, extra);
    const zero = this.recipe(`${name}-zero${this.stage}`, dtype, 2, { zero_stage: this.stage, ...extra });
    const [a, b] = await Promise.all([runTrain(alone.file), runTrain(zero.file, await twoRanks())]);
    assert.equal(a.code, 0, a.output);
    assert.equal(b.code, 0, b.output);
    const diff = maxWeightDifference(weightsOf(alone.dir), weightsOf(zero.dir));
    assert.ok(diff <= tolerance, `weights differ by ${diff}`);
    const rows = metricRows(alone.dir);
    const sharded = metricRows(zero.dir);
    assert.equal(sharded.length, rows.length, "the same rows");
    rows.forEach((row, i) => {
      assert.deepEqual(Object.keys(sharded[i]).sort(), Object.keys(row).sort());
      for (const k of Object.keys(row).filter((key) => !SPLIT_DEPENDENT.test(key))) {
        const [x, y] = [row[k] as number, sharded[i][k] as number];
        assert.ok(
          Math.abs(x - y) <= tolerance * Math.max(1, Math.abs(x)),
          `row ${i} (step ${row.step}) ${k}: ${x} alone, ${y} at stage ${this.stage}`,
        );
      }
    });
    const train = rows.filter((r) => "loss" in r);
    assert.equal(train.length, 8, "8 optimizer steps");
    assert.ok(
      train.every((r) => (r.grad_norm as number) > ((extra.max_grad_norm as number) ?? 0.05)),
      "clipping at every step",
    );
    return { output: b.output };
  }

  /**
   * A run killed with SIGKILL (launcher and both ranks) after its first checkpoint and rerun ends
   * with the uninterrupted run's weights (1e-10); that checkpoint also resumes under `otherStage`.
   */
  async killAndResume(extra: Extra, otherStage: number): Promise<void> {
    const whole = this.recipe("whole", "float64", 2, { zero_stage: this.stage, ...extra });
    const killed = this.recipe("killed", "float64", 2, { zero_stage: this.stage, ...extra });
    const run = startTrain(killed.file, await twoRanks());
    const first = join(killed.dir, "checkpoint-2");
    for (const end = Date.now() + 60000; !existsSync(join(first, "omni_dpo_state.json")); await sleep(20)) {
      assert.ok(Date.now() < end, "no checkpoint-2 within a minute");
    }
    // Every process of the run at once: the launcher and both ranks, as a machine's crash would.
    const children = readFileSync(`/proc/${run.child.pid}/task/${run.child.pid}/children`, "utf8")
      .trim()
      .split(/\s+/)
      .map(Number);
    for (const pid of [run.child.pid!, ...children]) process.kill(pid, "SIGKILL");
    await run.done;
    assert.ok(!existsSync(join(killed.dir, "model.safetensors")), "the run was killed before it finished");
    const [w, r] = await Promise.all([runTrain(whole.file, await twoRanks()), runTrain(killed.file, await twoRanks())]);
    assert.equal(w.code, 0, w.output);
    assert.equal(r.code, 0, r.output);
    const from = /resumed from .*checkpoint-(\d+) at step (\d+)/.exec(r.output);
    assert.ok(from, r.output);
    assert.ok(Number(from[2]) >= 2 && Number(from[2]) < 24, `resumed at step ${from[2]}`);
    const diff = maxWeightDifference(weightsOf(whole.dir), weightsOf(killed.dir));
    assert.ok(diff <= 1e-10, `weights differ by ${diff}`);
    const other = this.recipe("other-stage", "float64", 2, { zero_stage: otherStage, ...extra });
    mkdirSync(other.dir, { recursive: true });
    const ckpt = readdirSync(whole.dir)
      .filter((n) => n.startsWith("checkpoint-"))
      .sort((a, b) => Number(a.slice(11)) - Number(b.slice(11)))[0];
    cpSync(join(whole.dir, ckpt), join(other.dir, ckpt), { recursive: true });
    const o = await runTrain(other.file, await twoRanks());
    assert.equal(o.code, 0, o.output);
    assert.ok(maxWeightDifference(weightsOf(whole.dir), weightsOf(other.dir)) <= 1e-10);
  }
}

/** The fraction of parameter elements rank 0 reports holding, from its status line `label ... for N of M`. */
export function rankZeroShare(output: string, label: RegExp): number {
  const share = new RegExp(`rank 0: ${label.source} for (\\d+) of (\\d+) parameter elements`).exec(output);
  assert.ok(share, output);
  return Number(share[1]) / Number(share[2]);
}
