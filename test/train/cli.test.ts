// The `omni-dpo train` command as users run it: a reference-style YAML trains and exits 0;
// Ctrl-C (SIGINT) mid-training writes a checkpoint and exits 130; --set resume_from_checkpoint=true
// then finishes the run.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { packageRoot } from "../../src/util/package-root.js";
import { tempDir, toyPairs, writeJsonl, writeToyModel } from "../helpers/toy.js";

const CLI = join(packageRoot(), "dist", "src", "cli", "main.js");

let root: string;
before(() => { root = tempDir("omni-dpo-cli-"); });
after(() => rmSync(root, { recursive: true, force: true }));

function metricRows(dir: string): Record<string, unknown>[] {
  const file = join(dir, "metrics.jsonl");
  if (!existsSync(file)) return [];
  return readFileSync(file, "utf8").split("\n").filter((l) => l.trim()).flatMap((l) => {
    try { return [JSON.parse(l) as Record<string, unknown>]; } catch { return []; }  // a line being written
  });
}

describe("omni-dpo train", () => {
  it("trains from a reference-style YAML (the Qwen2.5-0.5B text recipe's keys, scaled down) and exits 0", () => {
    // UltraFeedback's layout: a string prompt, chosen/rejected as conversations, judge scores.
    const model = writeToyModel(join(root, "qwen-tiny"), { chatTemplate: "chatml" });
    const rows = toyPairs(24).map((p) => ({
      prompt: p.prompt,
      chosen: [{ role: "user", content: p.prompt }, { role: "assistant", content: p.chosen.trim() }],
      rejected: [{ role: "user", content: p.prompt }, { role: "assistant", content: p.rejected.trim() }],
      score_chosen: p.score_chosen, score_rejected: p.score_rejected,
    }));
    writeJsonl(join(root, "ultrafeedback-tiny.jsonl"), rows);
    const yaml = join(root, "Qwen2.5-0.5B.yaml");
    writeFileSync(yaml, `# ==============================================
# Configuration Section
# ==============================================
model_name_or_path: qwen-tiny
ref_model: qwen-tiny
output_dir: outputs/qwen-tiny-uni-dpo
dataset_mixer:
  "ultrafeedback-tiny.jsonl": 1.0

# ==============================================
# The settings below do not need to be modified
# ==============================================

# Data training arguments
dataset_splits:
  - train
preprocessing_num_workers: 12

# UniDPOTrainer arguments
learning_rate: 2.0e-3
pref_loss: uni_dpo
beta: 3.5
uni_dpo_qual_eta: 0.7
uni_dpo_tau_ref: 0.8
uni_dpo_perf_gamma: 3.0
uni_dpo_nll_lambda: 0.001
uni_dpo_tau_good: 3.2

use_ref_model: True
dpo_length_norm: True
seed: 42
warmup_ratio: 0.1
hub_model_id: Qwen2.5-0.5B-Uni-DPO
run_name: Qwen2.5-0.5B-Uni-DPO

max_samples: None
torch_dtype: null
attn_implementation: flash_attention_2
bf16: true
do_eval: true
eval_strategy: steps
eval_steps: 1000
gradient_accumulation_steps: 2
gradient_checkpointing: true
gradient_checkpointing_kwargs:
  use_reentrant: False
log_level: info
logging_steps: 1
lr_scheduler_type: cosine
max_length: 96
max_prompt_length: 64
num_train_epochs: 1
optim: adamw_torch
per_device_train_batch_size: 4
per_device_eval_batch_size: 8
push_to_hub: false
save_strategy: "steps"
save_steps: 1000000
save_total_limit: 20
`);
    // Run from another directory: the YAML's relative paths resolve against its own directory.
    const r = spawnSync(process.execPath, [CLI, "train", yaml], { cwd: packageRoot(), encoding: "utf8", timeout: 120_000 });
    assert.equal(r.status, 0, `exit ${r.status}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
    const out = join(root, "outputs", "qwen-tiny-uni-dpo");
    assert.match(r.stdout, /trained 3 steps; model saved to /);
    for (const f of ["model.safetensors", "config.json", "tokenizer.json", "tokenizer_config.json", "metrics.jsonl", "train_results.json"]) {
      assert.ok(existsSync(join(out, f)), f);
    }
    assert.deepEqual(metricRows(out).map((row) => row.step), [1, 2, 3]);
    // Hardware keys are named in warnings on stderr, and the run goes on.
    for (const key of ["bf16", "attn_implementation", "gradient_checkpointing"]) assert.match(r.stderr, new RegExp(`warning: .*'${key}'`));
  });

  it("SIGINT mid-training writes a checkpoint and exits 130; --set resume_from_checkpoint=true finishes the run", async () => {
    const model = writeToyModel(join(root, "llama-tiny"));
    writeJsonl(join(root, "pairs.jsonl"), toyPairs(16));
    const yaml = join(root, "long.yaml");
    // 4 steps an epoch, 8 epochs: long enough to interrupt, short enough to finish afterwards.
    writeFileSync(yaml, `model_name_or_path: llama-tiny
dataset_mixer:
  pairs.jsonl: 1.0
output_dir: long-run
pref_loss: uni_dpo
learning_rate: 1.0e-3
num_train_epochs: 8
per_device_train_batch_size: 4
max_length: 48
max_prompt_length: 24
logging_steps: 1
save_steps: 1000
seed: 3
`);
    const out = join(root, "long-run");
    const child = spawn(process.execPath, [CLI, "train", yaml], { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => { stdout += d; });
    child.stderr.on("data", (d) => { stderr += d; });
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    const deadline = Date.now() + 60_000;
    while (metricRows(out).length === 0) {
      assert.ok(Date.now() < deadline, `no metrics row within a minute; stderr: ${stderr}`);
      assert.equal(child.exitCode, null, `the run ended before it could be interrupted; stderr: ${stderr}`);
      await sleep(10);
    }
    child.kill("SIGINT");
    const code = await exited;
    assert.equal(code, 130, `exit ${code}\nstdout: ${stdout}\nstderr: ${stderr}`);
    const checkpoints = readdirSync(out).filter((n) => n.startsWith("checkpoint-"));
    assert.equal(checkpoints.length, 1, `checkpoints: ${checkpoints}`);
    const stoppedAt = Number(checkpoints[0].slice("checkpoint-".length));
    assert.ok(stoppedAt >= 1 && stoppedAt < 32, `stopped at step ${stoppedAt}`);
    assert.match(stdout, new RegExp(`stopped at step ${stoppedAt}/32; checkpoint .*checkpoint-${stoppedAt}`));
    assert.match(stderr, /SIGINT: saving a checkpoint/);
    assert.ok(!existsSync(join(out, "model.safetensors")), "no final model after an interrupt");

    const resumed = spawnSync(process.execPath, [CLI, "train", yaml, "--set", "resume_from_checkpoint=true", "--json"], { cwd: root, encoding: "utf8", timeout: 120_000 });
    assert.equal(resumed.status, 0, resumed.stderr);
    const result = JSON.parse(resumed.stdout.trim().split("\n").at(-1)!);
    assert.equal(result.globalStep, 32);
    assert.equal(result.interrupted, false);
    assert.match(resumed.stderr, new RegExp(`resumed from .*checkpoint-${stoppedAt} at step ${stoppedAt}`));
    assert.ok(existsSync(join(out, "model.safetensors")));
    const steps = metricRows(out).map((row) => row.step);
    assert.deepEqual(steps, Array.from({ length: 32 }, (_, i) => i + 1), "one row per step, none lost or repeated across the resume");
  });

  it("a config error exits 1, names the key and writes nothing", () => {
    const yaml = join(root, "bad.yaml");
    writeFileSync(yaml, "model_name_or_path: m\noutput_dir: o\ndataset_mixer:\n  x.jsonl: 1.0\nlearning_rate: fast\n");
    const r = spawnSync(process.execPath, [CLI, "train", yaml], { cwd: root, encoding: "utf8", timeout: 60_000 });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /learning_rate/);
    assert.ok(!existsSync(join(root, "o")));
  });
});
