// ZeRO-3 (zero_stage: 3): weights, gradients and optimizer state sharded across 2 ranks, each
// layer's weights gathered from their owners just before it runs (and again for its
// recomputation in backward), change memory, not what is learnt: the weights and metrics equal 1
// process's with twice the batch (float64 to 1e-10, float32 to 1e-5) after 8 steps with
// accumulation, clipping, evaluation and the pair log, each rank owning about half; a run killed
// with SIGKILL and rerun resumes from its last checkpoint and ends with the uninterrupted run's
// weights.
import { after, before, describe, it } from "node:test";
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

let root: string;
let setup: { model: string; data: string };
let tied: string;
before(() => {
  root = tempDir("omni-dpo-zero3-");
  setup = writeSetup(root, 21);
  tied = writeSetup(root, 21, { tieWordEmbeddings: true }).model;
});
after(() => rmSync(root, { recursive: true, force: true }));

/** 16 training pairs: 2 ranks x batch 2 (or 1 x batch 4), 2 accumulated, 4 epochs = 8 clipped steps. */
function recipe(name: string, dtype: "float64" | "float32", batch: number, extra: Record<string, unknown> = {}) {
  const dir = join(root, name);
  const file = writeRecipe(join(root, `${name}.yaml`), {
    model_name_or_path: setup.model,
    dataset_mixer: { [setup.data]: 1.0 },
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

const twoRanks = async () => ["--nproc-per-node", "2", "--master-port", String(await freePort())];

/** Metrics that depend on how a batch is split even in one process (a speed; per-token means of logits). */
const SPLIT_DEPENDENT = /tokens_per_second|logits\//;

function assertRowsClose(one: Record<string, unknown>[], two: Record<string, unknown>[], tolerance: number): void {
  assert.equal(two.length, one.length, "the same rows");
  one.forEach((row, i) => {
    assert.deepEqual(Object.keys(two[i]).sort(), Object.keys(row).sort());
    for (const k of Object.keys(row).filter((key) => !SPLIT_DEPENDENT.test(key))) {
      const [a, b] = [row[k] as number, two[i][k] as number];
      assert.ok(
        Math.abs(a - b) <= tolerance * Math.max(1, Math.abs(a)),
        `row ${i} (step ${row.step}) ${k}: ${a} alone, ${b} at stage 3`,
      );
    }
  });
}

async function compare(dtype: "float64" | "float32", tolerance: number, extra: Record<string, unknown> = {}) {
  const name = `${dtype}-${Object.keys(extra).join("-")}`;
  const alone = recipe(`${name}-alone`, dtype, 4, extra);
  const zero = recipe(`${name}-zero3`, dtype, 2, { zero_stage: 3, ...extra });
  const [a, b] = await Promise.all([runTrain(alone.file), runTrain(zero.file, await twoRanks())]);
  assert.equal(a.code, 0, a.output);
  assert.equal(b.code, 0, b.output);
  const diff = maxWeightDifference(weightsOf(alone.dir), weightsOf(zero.dir));
  assert.ok(diff <= tolerance, `weights differ by ${diff}`);
  const rows = metricRows(alone.dir);
  assertRowsClose(rows, metricRows(zero.dir), tolerance);
  const train = rows.filter((r) => "loss" in r);
  assert.equal(train.length, 8, "8 optimizer steps");
  assert.ok(
    train.every((r) => (r.grad_norm as number) > ((extra.max_grad_norm as number) ?? 0.05)),
    "clipping at every step",
  );
  return { alone, zero, output: b.output };
}

describe("ZeRO-3: weights, gradients and optimizer state sharded across ranks", () => {
  it("float64 with gradient checkpointing: 2 ranks at stage 3 end with 1 process's weights (batch 2b) to 1e-10, the same metrics, half the weights each", async () => {
    const { output } = await compare("float64", 1e-10, { gradient_checkpointing: true });
    // Rank 0 reports its share (the others' status lines stay quiet): about half of the elements.
    const share = /rank 0: ZeRO-3, weights, gradients and optimizer state for (\d+) of (\d+) parameter elements/.exec(
      output,
    );
    assert.ok(share, output);
    const fraction = Number(share[1]) / Number(share[2]);
    assert.ok(fraction > 0.3 && fraction < 0.7, `rank 0 holds ${fraction} of the weights, gradients and state`);
  });

  it("float32 without gradient checkpointing: the same weights to 1e-5 and the same metrics", async () => {
    const { output } = await compare("float32", 1e-5);
    assert.match(output, /zero_stage 3 without gradient_checkpointing keeps every layer's gathered weights/);
  });

  // The tied embedding is the LM head of every chunk and the decoder's input: "outer", gathered
  // for the whole forward and backward.
  it("tied embeddings with gradient checkpointing: the same weights to 1e-10", async () => {
    await compare("float64", 1e-10, { model_name_or_path: tied, gradient_checkpointing: true });
  });

  it("LoRA with gradient checkpointing: the adapters sharded, the base whole; the same adapter to 1e-5", async () => {
    await compare("float64", 1e-5, {
      use_peft: true,
      lora_r: 4,
      lora_alpha: 8,
      max_grad_norm: 0.002,
      gradient_checkpointing: true,
    });
  });

  it("killed with SIGKILL after a checkpoint, rerun: resumes there and ends with the uninterrupted run's weights (1e-10)", async () => {
    const extra = { num_train_epochs: 12, save_steps: 2, gradient_checkpointing: true };
    const whole = recipe("whole", "float64", 2, { zero_stage: 3, ...extra });
    const killed = recipe("killed", "float64", 2, { zero_stage: 3, ...extra });
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
    // A stage-3 checkpoint holds the whole weights and optimizer state: it resumes under stage 2 too.
    const other = recipe("other-stage", "float64", 2, { zero_stage: 2, ...extra });
    mkdirSync(other.dir, { recursive: true });
    const ckpt = readdirSync(whole.dir)
      .filter((n) => n.startsWith("checkpoint-"))
      .sort((a, b) => Number(a.slice(11)) - Number(b.slice(11)))[0];
    cpSync(join(whole.dir, ckpt), join(other.dir, ckpt), { recursive: true });
    const o = await runTrain(other.file, await twoRanks());
    assert.equal(o.code, 0, o.output);
    assert.ok(maxWeightDifference(weightsOf(whole.dir), weightsOf(other.dir)) <= 1e-10);
  });
});
