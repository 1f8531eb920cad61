// The `omni-dpo train` command as users run it: a reference-style YAML trains and exits 0;
// Ctrl-C (SIGINT) mid-training writes a checkpoint and exits 130 (SIGTERM 143, SIGHUP 129); --set resume_from_checkpoint=true
// then finishes the run, with the weights of a run never interrupted (1e-6). A closed terminal (SIGHUP) checkpoints
// and resumes the same way; a second run on a
// busy output_dir is refused; a write that fails (a file-size limit) names the file; --help
// lists every recipe key.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { packageRoot } from "../../src/util/package-root.js";
import { tempDir, toyPairs, writeJsonl, writeToyModel } from "../helpers/toy.js";
import { compareWeights } from "../helpers/weights.js";
import { RECIPE_KEYS, type KeySpec } from "../../src/train/keys.js";
import { OBJECTIVE_CONFIG_KEYS } from "../../src/objectives/index.js";

const CLI = join(packageRoot(), "dist", "src", "cli", "main.js");

let root: string;
before(() => {
  root = tempDir("omni-dpo-cli-");
});
after(() => rmSync(root, { recursive: true, force: true }));

function metricRows(dir: string): Record<string, unknown>[] {
  const file = join(dir, "metrics.jsonl");
  if (!existsSync(file)) return [];
  return readFileSync(file, "utf8")
    .split("\n")
    .filter((l) => l.trim())
    .flatMap((l) => {
      try {
        return [JSON.parse(l) as Record<string, unknown>];
      } catch {
        return [];
      } // a line being written
    });
}

describe("omni-dpo train", () => {
  it("trains from a reference-style YAML (the Qwen2.5-0.5B text recipe's keys, scaled down) and exits 0", () => {
    // UltraFeedback's layout: a string prompt, chosen/rejected as conversations, judge scores.
    writeToyModel(join(root, "qwen-tiny"), { chatTemplate: "chatml" });
    const rows = toyPairs(24).map((p) => ({
      prompt: p.prompt,
      chosen: [
        { role: "user", content: p.prompt },
        { role: "assistant", content: p.chosen.trim() },
      ],
      rejected: [
        { role: "user", content: p.prompt },
        { role: "assistant", content: p.rejected.trim() },
      ],
      score_chosen: p.score_chosen,
      score_rejected: p.score_rejected,
    }));
    writeJsonl(join(root, "ultrafeedback-tiny.jsonl"), rows);
    const yaml = join(root, "Qwen2.5-0.5B.yaml");
    writeFileSync(
      yaml,
      `# ==============================================
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
`,
    );
    // Run from another directory: the YAML's relative paths resolve against its own directory.
    const r = spawnSync(process.execPath, [CLI, "train", yaml], {
      cwd: packageRoot(),
      encoding: "utf8",
      timeout: 120_000,
    });
    assert.equal(r.status, 0, `exit ${r.status}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
    const out = join(root, "outputs", "qwen-tiny-uni-dpo");
    assert.match(r.stdout, /trained 3 steps; model saved to /);
    for (const f of [
      "model.safetensors",
      "config.json",
      "tokenizer.json",
      "tokenizer_config.json",
      "metrics.jsonl",
      "train_results.json",
    ]) {
      assert.ok(existsSync(join(out, f)), f);
    }
    assert.deepEqual(
      metricRows(out).map((row) => row.step),
      [1, 2, 3],
    );
    // Hardware keys are named in warnings on stderr, and the run goes on.
    for (const key of ["attn_implementation"]) assert.match(r.stderr, new RegExp(`warning: .*'${key}'`));
    assert.doesNotMatch(r.stderr, /'(bf16|torch_dtype|gradient_checkpointing)'/);
  });

  it("SIGINT mid-training writes a checkpoint and exits 130; --set resume_from_checkpoint=true finishes with an uninterrupted run's weights", async () => {
    // 4 steps an epoch, 8 epochs: long enough to interrupt, short enough to finish afterwards.
    const { yaml, out } = longRecipe("long-run", 8);
    const child = spawn(process.execPath, [CLI, "train", yaml], { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => {
      stdout += d;
    });
    child.stderr.on("data", (d) => {
      stderr += d;
    });
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

    const resumed = spawnSync(
      process.execPath,
      [CLI, "train", yaml, "--set", "resume_from_checkpoint=true", "--json"],
      { cwd: root, encoding: "utf8", timeout: 120_000 },
    );
    assert.equal(resumed.status, 0, resumed.stderr);
    const result = JSON.parse(resumed.stdout.trim().split("\n").at(-1)!);
    assert.equal(result.globalStep, 32);
    assert.equal(result.interrupted, false);
    assert.match(resumed.stderr, new RegExp(`resumed from .*checkpoint-${stoppedAt} at step ${stoppedAt}`));
    assert.ok(existsSync(join(out, "model.safetensors")));
    const steps = metricRows(out).map((row) => row.step);
    assert.deepEqual(
      steps,
      Array.from({ length: 32 }, (_, i) => i + 1),
      "one row per step, none lost or repeated across the resume",
    );
    const worst = compareWeights(uninterrupted(), out, 1e-6);
    console.log(`# SIGINT and resume against an uninterrupted run: weights ${worst} apart at most`);
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

/** A training child of the CLI, with its output collected. */
function startTrain(args: string[], cwd: string) {
  const child = spawn(process.execPath, [CLI, "train", ...args], { cwd, stdio: ["ignore", "pipe", "pipe"] });
  const out = { stdout: "", stderr: "" };
  child.stdout.on("data", (d) => {
    out.stdout += d;
  });
  child.stderr.on("data", (d) => {
    out.stderr += d;
  });
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  return { child, out, exited };
}

async function untilFirstRow(dir: string, run: ReturnType<typeof startTrain>): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (metricRows(dir).length === 0) {
    assert.ok(Date.now() < deadline, `no metrics row within a minute; stderr: ${run.out.stderr}`);
    assert.equal(run.child.exitCode, null, `the run ended before it could be interrupted; stderr: ${run.out.stderr}`);
    await sleep(10);
  }
}

/** A recipe of `epochs` x 4 steps on 16 pairs of a tiny Llama, logging every step. */
function longRecipe(name: string, epochs: number): { yaml: string; out: string } {
  if (!existsSync(join(root, "llama-tiny-2"))) writeToyModel(join(root, "llama-tiny-2"));
  if (!existsSync(join(root, "pairs-2.jsonl"))) writeJsonl(join(root, "pairs-2.jsonl"), toyPairs(16));
  const yaml = join(root, `${name}.yaml`);
  writeFileSync(
    yaml,
    `model_name_or_path: llama-tiny-2
dataset_mixer:
  pairs-2.jsonl: 1.0
output_dir: ${name}
pref_loss: uni_dpo
learning_rate: 1.0e-3
num_train_epochs: ${epochs}
per_device_train_batch_size: 4
max_length: 48
max_prompt_length: 24
logging_steps: 1
save_steps: 1000
seed: 3
`,
  );
  return { yaml, out: join(root, name) };
}

let uninterruptedDir: string | undefined;
/** The output_dir of longRecipe(…, 8) run start to end without a signal (run once, on first use). */
function uninterrupted(): string {
  if (!uninterruptedDir) {
    const { yaml, out } = longRecipe("uninterrupted", 8);
    const r = spawnSync(process.execPath, [CLI, "train", yaml], { cwd: root, encoding: "utf8", timeout: 120_000 });
    assert.equal(r.status, 0, r.stderr);
    uninterruptedDir = out;
  }
  return uninterruptedDir;
}

describe("omni-dpo train: no lost or overwritten work", () => {
  it("a second run on a busy output_dir is refused, naming the first run's pid and host and the lock file; the first goes on", async () => {
    const { yaml, out } = longRecipe("busy", 100);
    const first = startTrain([yaml], root);
    await untilFirstRow(out, first);
    const lock = join(out, "train.lock");
    assert.deepEqual(JSON.parse(readFileSync(lock, "utf8")).pid, first.child.pid);
    const second = startTrain([yaml], root);
    const code = await second.exited;
    assert.equal(code, 1, `second run: exit ${code}\n${second.out.stderr}`);
    assert.match(second.out.stderr, new RegExp(`in use by another run: pid ${first.child.pid} on ${hostname()}`));
    assert.ok(second.out.stderr.includes(lock), second.out.stderr);
    assert.equal(first.child.exitCode, null, "the first run is still training");
    const steps = metricRows(out).map((row) => row.step as number);
    assert.deepEqual(
      steps,
      Array.from({ length: steps.length }, (_, i) => i + 1),
      "the refused run wrote no rows",
    );
    first.child.kill("SIGINT");
    assert.equal(await first.exited, 130, first.out.stderr);
    assert.ok(!existsSync(lock), "the lock is released when the run stops");
  });

  it("SIGTERM checkpoints and stops, exiting 143 (128 + SIGTERM's 15)", async () => {
    const { yaml, out } = longRecipe("terminated", 100);
    const run = startTrain([yaml], root);
    await untilFirstRow(out, run);
    run.child.kill("SIGTERM");
    assert.equal(await run.exited, 143, run.out.stderr);
    assert.match(run.out.stderr, /SIGTERM: saving a checkpoint/);
    assert.equal(readdirSync(out).filter((n) => n.startsWith("checkpoint-")).length, 1);
  });

  it("SIGHUP (a closed terminal) checkpoints and stops as SIGTERM does; the next run resumes and ends with an uninterrupted run's weights", async () => {
    const { yaml, out } = longRecipe("hangup", 8);
    const run = startTrain([yaml], root);
    await untilFirstRow(out, run);
    run.child.kill("SIGHUP");
    const code = await run.exited;
    assert.equal(code, 129, `exit ${code} (128 + SIGHUP's 1)\nstderr: ${run.out.stderr}`);
    assert.match(run.out.stderr, /SIGHUP: saving a checkpoint/);
    const saved = readdirSync(out).filter((n) => n.startsWith("checkpoint-"));
    assert.equal(saved.length, 1, `checkpoints: ${saved}`);
    const stoppedAt = Number(saved[0].slice("checkpoint-".length));
    assert.ok(stoppedAt >= 1 && stoppedAt < 32, `stopped at step ${stoppedAt}`);
    assert.ok(!existsSync(join(out, "train.lock")));

    const resumed = spawnSync(process.execPath, [CLI, "train", yaml], {
      cwd: root,
      encoding: "utf8",
      timeout: 120_000,
    });
    assert.equal(resumed.status, 0, resumed.stderr);
    assert.match(resumed.stderr, new RegExp(`resumed from .*checkpoint-${stoppedAt} at step ${stoppedAt}`));
    assert.match(resumed.stdout, /trained 32 steps/);
    assert.deepEqual(
      metricRows(out).map((row) => row.step),
      Array.from({ length: 32 }, (_, i) => i + 1),
    );
    const worst = compareWeights(uninterrupted(), out, 1e-6);
    console.log(`# SIGHUP and resume against an uninterrupted run: weights ${worst} apart at most`);

    // Run once more: the run is finished (its last step is checkpointed), so nothing is trained.
    const again = spawnSync(process.execPath, [CLI, "train", yaml], { cwd: root, encoding: "utf8", timeout: 120_000 });
    assert.equal(again.status, 0, again.stderr);
    assert.match(again.stdout, /already holds the finished run \(step 32\/32\); nothing to train/);
  });

  it("a checkpoint write that fails (a file-size limit: EFBIG) is an error naming the file's directory; nothing half-written or locked is left", () => {
    const { yaml, out } = longRecipe("too-big", 1);
    // The weights are ~170 kB; a 64 kB limit lets the small files through and stops the first
    // checkpoint. XFSZ is ignored so the write fails with EFBIG instead of killing the process.
    const r = spawnSync(
      "bash",
      ["-c", `trap '' XFSZ; ulimit -f 64; exec "${process.execPath}" "${CLI}" train "${yaml}" --set save_steps=1`],
      { cwd: root, encoding: "utf8", timeout: 120_000 },
    );
    assert.equal(r.status, 1, `exit ${r.status}\n${r.stderr}`);
    assert.match(
      r.stderr,
      new RegExp(`omni-dpo: ${out}/checkpoint-1\\.tmp-\\d+: cannot write \\(EFBIG: file too large`),
    );
    assert.deepEqual(
      readdirSync(out).sort(),
      ["metrics.jsonl", "pair_log.jsonl"],
      "the logs of step 1; no checkpoint, temporary directory or lock left",
    );
  });

  it("train --help lists every recipe key with its type and default, grouped, and the objective's keys", () => {
    const r = spawnSync(process.execPath, [CLI, "train", "--help"], { encoding: "utf8" });
    assert.equal(r.status, 0);
    const lines = r.stdout.split("\n");
    const groups = ["model:", "data:", "optimisation:", "schedule:", "logging/saving:", "objective:"];
    const at = groups.map((g) => lines.indexOf(g));
    assert.ok(
      at.every((i, k) => i >= 0 && (k === 0 || i > at[k - 1])),
      `groups in order: ${at}`,
    );
    const shown = (d: unknown) =>
      d === null ? "None" : d === "" ? '""' : typeof d === "object" ? JSON.stringify(d) : String(d);
    for (const [key, spec] of Object.entries(RECIPE_KEYS) as [string, KeySpec][]) {
      const line = lines.findIndex((l) => l.startsWith(`  ${key} (`));
      assert.ok(line >= 0, `${key} is not listed`);
      const expected = "default" in spec ? `, default ${shown(spec.default)})` : ", required)";
      assert.ok(lines[line].endsWith(expected), `${key}: '${lines[line]}' does not end with '${expected}'`);
      const group = groups.filter((_, k) => at[k] < line).length - 1;
      assert.equal(groups[group], `${spec.group}:`, `${key} listed under ${groups[group]}`);
      const end = lines.findIndex((l, i) => i > line && !l.startsWith("      "));
      const help = lines
        .slice(line + 1, end)
        .join(" ")
        .replace(/\s+/g, " ");
      if (spec.status === "warn")
        assert.match(help, /Tooling this run does not use: ignored with a warning when set/, key);
      if (spec.status === "error") assert.match(help, /Not supported: an error when set/, key);
      assert.ok(help.includes(`[default from ${spec.follows}]`), `${key}: where its default comes from: ${help}`);
    }
    assert.match(r.stdout, /learning_rate \(float, default 5e-7\)/);
    assert.match(
      r.stdout,
      /lr_scheduler_type \(linear \| cosine \| cosine_with_restarts \| polynomial \| constant \| constant_with_warmup \| inverse_sqrt \| cosine_with_min_lr \| cosine_warmup_with_min_lr \| warmup_stable_decay, default linear\)/,
    );
    assert.match(r.stdout, /--allow-unknown-keys/);
    const objective = r.stdout.slice(r.stdout.indexOf("objective:"));
    for (const key of OBJECTIVE_CONFIG_KEYS) assert.ok(objective.includes(key), `objective key ${key} is not listed`);
  });
});

describe("omni-dpo train: bad inputs fail at once, named", () => {
  function recipe(name: string, extra: string, data: string): string {
    const model = join(root, `${name}-model`);
    writeToyModel(model, { chatTemplate: "chatml" });
    const yaml = join(root, `${name}.yaml`);
    writeFileSync(
      yaml,
      `model_name_or_path: ${model}\noutput_dir: ${join(root, `${name}-out`)}\n` +
        `dataset_mixer:\n  ${data}: 1.0\nper_device_train_batch_size: 2\nmax_length: 64\nmax_prompt_length: 32\n${extra}`,
    );
    return yaml;
  }

  it("a data file that is a device (a link to /dev/zero) fails at once, naming it", () => {
    const link = join(root, "endless.jsonl");
    symlinkSync("/dev/zero", link);
    const started = Date.now();
    const r = spawnSync(process.execPath, [CLI, "train", recipe("endless", "", link)], {
      encoding: "utf8",
      timeout: 60_000,
    });
    assert.equal(r.status, 1, r.stderr);
    assert.ok(r.stderr.includes(`${link}: is a character device, not a data file`), r.stderr);
    assert.ok(Date.now() - started < 20_000, `took ${Date.now() - started} ms`);
  });

  it("a recipe's chat_template that loops without end fails within seconds, naming the recipe and key", () => {
    const data = join(root, "chats.jsonl");
    writeJsonl(
      data,
      toyPairs(4).map((p) => ({
        prompt: [{ role: "user", content: p.prompt }],
        chosen: [{ role: "assistant", content: p.chosen }],
        rejected: [{ role: "assistant", content: p.rejected }],
        score_chosen: p.score_chosen,
        score_rejected: p.score_rejected,
      })),
    );
    const yaml = recipe("loop", 'chat_template: "{% for i in range(10**8) %}x{% endfor %}"\n', data);
    const started = Date.now();
    const r = spawnSync(process.execPath, [CLI, "train", yaml], { encoding: "utf8", timeout: 60_000 });
    assert.equal(r.status, 1, r.stderr);
    assert.ok(
      r.stderr.includes(`chat template from ${yaml}: chat_template stopped: it asked for range() of 100000000 items`),
      r.stderr,
    );
    assert.ok(Date.now() - started < 20_000, `took ${Date.now() - started} ms`);
  });

  it("40 records without the scores the loss needs: the first 20 named, and the count says it is capped", () => {
    const data = join(root, "unscored.jsonl");
    writeJsonl(
      data,
      toyPairs(40).map((p) => ({ prompt: p.prompt, chosen: p.chosen, rejected: p.rejected })),
    );
    const r = spawnSync(process.execPath, [CLI, "train", recipe("unscored", "", data)], {
      encoding: "utf8",
      timeout: 60_000,
    });
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /first 20 of 40 problems in the data:/);
    assert.match(r.stderr, /unscored\.jsonl:\d+: field 'score_chosen': missing, and omni_dpo's quality weight/);
  });
});
