// Data parallelism changes where the work runs, not what is learnt: 2 ranks with
// per_device_train_batch_size b end with the same weights as 1 process with batch 2b (float64
// to 1e-10, float32 to 1e-5), after several steps with gradient accumulation and clipping,
// with the same train and eval metrics, the same precomputed reference cache, and only rank 0
// writing output_dir.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { tempDir } from "../helpers/toy.js";
import { freePort } from "./ranks.js";
import {
  maxWeightDifference,
  metricRows,
  readJson,
  runTrain,
  weightsOf,
  writeRecipe,
  writeSetup,
} from "./train-ranks.js";

let root: string;
let setup: { model: string; data: string };
let tied: string;
before(() => {
  root = tempDir("omni-dpo-ddp-");
  setup = writeSetup(root, 21);
  tied = writeSetup(root, 21, { tieWordEmbeddings: true }).model;
});
after(() => rmSync(root, { recursive: true, force: true }));

/**
 * 21 pairs, 5 held out (an odd count: the ranks' eval shards differ in size), 16 to train
 * (a multiple of 2 ranks x batch 2, so no epoch ends in a padded batch): 2 ranks x batch 2 or
 * 1 x batch 4, 2 accumulated per step, 4 epochs = 8 optimizer steps, clipped at every step.
 */
function recipe(
  name: string,
  dtype: "float64" | "float32",
  batch: number,
  extra: Record<string, unknown> = {},
): { file: string; dir: string } {
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
    num_train_epochs: 4,
    per_device_train_batch_size: batch,
    gradient_accumulation_steps: 2,
    per_device_eval_batch_size: 3,
    max_grad_norm: 0.05,
    max_length: 48,
    max_prompt_length: 24,
    logging_steps: 1,
    eval_steps: 2,
    save_steps: 3,
    seed: 11,
    ddp_timeout: 60,
    ...extra,
  });
  return { file, dir };
}

/**
 * Every metric is a mean over pairs, hence the same whichever way the pairs are split, except
 * tokens_per_second (a speed) and logits/* (a mean over the batch's tokens: per rank, then
 * averaged over ranks, as TRL reports it under DDP; it depends on the batch split even in one process).
 */
const SPLIT_DEPENDENT = /tokens_per_second|logits\//;

function assertRowsClose(
  one: Record<string, unknown>[],
  two: Record<string, unknown>[],
  tolerance: number,
  atInit: boolean,
): void {
  assert.equal(two.length, one.length, "the same rows");
  for (let i = 0; i < one.length; i++) {
    assert.deepEqual(Object.keys(two[i]).sort(), Object.keys(one[i]).sort());
    // Until the weights move (warmup's first step has lr 0) the policy is the reference: with a
    // precomputed one (other batches, other padding) each reward is rounding noise around 0, and
    // so is the sign rewards/accuracies counts.
    const noise = atInit && Math.abs(one[i]["rewards/margins"] as number) < 1e-4;
    const keys = Object.keys(one[i]).filter((k) => !SPLIT_DEPENDENT.test(k) && !(noise && k === "rewards/accuracies"));
    assert.ok(keys.includes("loss") || keys.includes("eval_loss"));
    for (const k of keys) {
      const a = one[i][k] as number;
      const b = two[i][k] as number;
      assert.ok(
        Math.abs(a - b) <= tolerance * Math.max(1, Math.abs(a)),
        `row ${i} (step ${one[i].step}) ${k}: ${a} alone, ${b} with 2 ranks`,
      );
    }
  }
}

/** What each rank says about the overlap: buckets started during backward, and all of them, over the run. */
function overlapOf(output: string): { early: number; total: number }[] {
  return [
    ...output.matchAll(/rank (\d+): (\d+) of (\d+) gradient buckets started their all-reduce during backward/g),
  ].map((m) => ({ early: Number(m[2]), total: Number(m[3]) }));
}

async function compare(
  dtype: "float64" | "float32",
  tolerance: number,
  extra: Record<string, unknown> = {},
  name: string = dtype,
) {
  const alone = recipe(`${name}-alone`, dtype, 4, extra);
  const ranks = recipe(`${name}-ranks`, dtype, 2, extra);
  const [a, b] = await Promise.all([
    runTrain(alone.file),
    runTrain(ranks.file, ["--nproc-per-node", "2", "--master-port", String(await freePort())]),
  ]);
  assert.equal(a.code, 0, a.output);
  assert.equal(b.code, 0, b.output);
  const diff = maxWeightDifference(weightsOf(alone.dir), weightsOf(ranks.dir));
  assert.ok(diff <= tolerance, `weights differ by ${diff}`);
  const rowsA = metricRows(alone.dir);
  const rowsB = metricRows(ranks.dir);
  assertRowsClose(rowsA, rowsB, tolerance, extra.precompute_ref_log_probs === true);
  const train = rowsA.filter((r) => "loss" in r);
  assert.equal(train.length, 8, "8 optimizer steps");
  const maxNorm = (extra.max_grad_norm as number | undefined) ?? 0.05;
  assert.ok(
    train.every((r) => (r.grad_norm as number) > maxNorm),
    `clipping was active at every step: ${train.map((r) => r.grad_norm).join(", ")}`,
  );
  assert.equal(rowsA.filter((r) => "eval_loss" in r).length, 4);
  // The learning rate follows the global step: warmup then linear decay over 8 steps.
  assert.deepEqual(
    train.map((r) => r.learning_rate),
    rowsB.filter((r) => "loss" in r).map((r) => r.learning_rate),
  );
  return { alone, ranks, output: b.output };
}

describe("2 ranks with batch b train as 1 process with batch 2b", () => {
  it("float64: the same weights to 1e-10 and the same metrics after 8 steps (accumulation 2, clipping, many buckets)", async () => {
    // Buckets of 16 KB: the gradients travel in many buckets (the default 25 MB holds them all).
    const { ranks, output } = await compare("float64", 1e-10, { ddp_bucket_cap_mb: 0.016 });
    // Every bucket's all-reduce started during the last micro-batch's backward, none after it.
    const overlap = overlapOf(output);
    assert.ok(overlap.length > 0, output);
    for (const o of overlap)
      assert.ok(o.total >= 8 * 10 && o.early === o.total, `${o.early} of ${o.total} buckets started during backward`);
    // Rank 0 alone wrote output_dir, and its checkpoints record both ranks' RNG streams.
    const checkpoints = readdirSync(ranks.dir)
      .filter((n) => n.startsWith("checkpoint-"))
      .sort();
    assert.ok(checkpoints.length > 0);
    const state = readJson(join(ranks.dir, checkpoints[0], "omni_dpo_state.json")) as {
      worldSize: number;
      rngStates: string[];
    };
    assert.equal(state.worldSize, 2);
    assert.equal(state.rngStates.length, 2);
    assert.notEqual(state.rngStates[0], state.rngStates[1], "each rank has its own stream");
  });

  // The paths where one parameter accumulates in several backward calls: the tied embedding is
  // the LM head of every chunk and the decoder's input, and with gradient checkpointing each
  // layer is a call of its own; with LoRA only the adapters are reduced.
  // LoRA's adapters are float32 whatever torch_dtype (as PEFT makes them): float32's tolerance.
  for (const [label, extra, tolerance] of [
    ["tied embeddings", { model_name_or_path: "TIED" }, 1e-10],
    [
      "tied embeddings with gradient checkpointing",
      { model_name_or_path: "TIED", gradient_checkpointing: true },
      1e-10,
    ],
    [
      "LoRA with gradient checkpointing (only the adapters are reduced)",
      {
        use_peft: true,
        lora_r: 4,
        lora_alpha: 8,
        gradient_checkpointing: true,
        max_grad_norm: 0.002,
        ddp_bucket_cap_mb: 0.001,
      },
      1e-5,
    ],
  ] as const) {
    it(`float64 weights, ${label}: the same weights to ${tolerance}, every bucket started during backward`, async () => {
      const keys = {
        ddp_bucket_cap_mb: 0.004,
        ...extra,
        ...("model_name_or_path" in extra ? { model_name_or_path: tied } : {}),
      };
      const { output } = await compare("float64", tolerance, keys, label.replace(/\W+/g, "-"));
      const overlap = overlapOf(output);
      // Several buckets at each of the 8 steps.
      assert.ok(overlap.length > 0 && overlap.every((o) => o.total >= 3 * 8 && o.early === o.total), output);
    });
  }

  it("float32 with a precomputed reference: weights to 1e-5, the same metrics, and the same reference cache", async () => {
    const { alone, ranks } = await compare("float32", 1e-5, { precompute_ref_log_probs: true });
    const cacheOf = (dir: string) => {
      const sub = join(dir, "ref_logps_cache");
      const files = readdirSync(sub)
        .filter((n) => n.endsWith(".json"))
        .sort();
      return files.map((f) => readJson(join(sub, f)) as { chosen: number[]; rejected: number[] });
    };
    const [a, b] = [cacheOf(alone.dir), cacheOf(ranks.dir)];
    assert.equal(a.length, 2, "train and eval caches");
    assert.equal(b.length, a.length);
    for (let i = 0; i < a.length; i++) {
      assert.equal(b[i].chosen.length, a[i].chosen.length);
      for (const side of ["chosen", "rejected"] as const) {
        a[i][side].forEach((x, j) =>
          assert.ok(
            Math.abs(x - b[i][side][j]) <= 1e-5 * Math.max(1, Math.abs(x)),
            `${side} ${j}: ${x} vs ${b[i][side][j]}`,
          ),
        );
      }
    }
  });

  it("two machines' launchers (--nnodes 2, node ranks 0 and 1, on loopback) train as one process too (float64, 1e-10)", async () => {
    const alone = join(root, "float64-alone");
    assert.ok(existsSync(join(alone, "model.safetensors")), "the first test's run alone");
    const nodes = recipe("float64-nodes", "float64", 2);
    const port = String(await freePort());
    const node = (rank: number) =>
      runTrain(nodes.file, [
        "--nnodes",
        "2",
        "--node-rank",
        String(rank),
        "--nproc-per-node",
        "1",
        "--master-addr",
        "127.0.0.1",
        "--master-port",
        port,
      ]);
    const [n0, n1] = await Promise.all([node(0), node(1)]);
    assert.equal(n0.code, 0, n0.output);
    assert.equal(n1.code, 0, n1.output);
    assert.match(n0.stdout, /trained 8 steps/);
    assert.equal(n1.stdout, "", "only rank 0 reports");
    const diff = maxWeightDifference(weightsOf(alone), weightsOf(nodes.dir));
    assert.ok(diff <= 1e-10, `weights differ by ${diff}`);
  });
});
