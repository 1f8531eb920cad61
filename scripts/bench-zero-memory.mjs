#!/usr/bin/env node
// Memory per rank at each zero_stage: the same 2-rank `omni-dpo train` run of a model whose
// states matter (by default a Qwen2-shaped model, width 1024, 8 layers, a byte-level
// vocabulary: about 91M parameters, nearly all trainable weights, so AdamW's two moments are
// about 700 MB in float32), SimPO (no reference model: the policy, its gradients, DDP's buckets
// and AdamW's state are the memory). Each rank's peak resident set (VmHWM, polled from /proc
// every 100 ms while it runs) is reported per stage, with its ratio to stage 0's, beside what
// `omni-dpo estimate-memory` predicts each stage saves against stage 0. Gradient checkpointing is
// on (--checkpointing 0 turns it off) at every stage: stage 3 frees each layer's gathered weights
// after its recomputation, and the activations stay small beside the states.
//   node scripts/bench-zero-memory.mjs [--steps N] [--stages 0,1,2,3] [--width W] [--layers L]
//     [--max-length T] [--checkpointing 1|0]
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createServer } from "node:net";
import { torch, createModel, saveModel } from "../dist/src/index.js";
import { writeByteLevelTokenizer } from "../dist/test/helpers/tokenizers.js";
import { toyPairs, writeJsonl } from "../dist/test/helpers/toy.js";

import { estimateMemory, modelShape } from "../dist/src/train/memory-estimate.js";

const flag = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
};
const steps = Number(flag("steps", 3));
const stages = flag("stages", "0,1,2,3").split(",").map(Number);
const maxLength = Number(flag("max-length", 64));
const checkpointing = flag("checkpointing", "1") !== "0";
const width = Number(flag("width", 1024));
const layers = Number(flag("layers", 8));
const root = mkdtempSync(join(tmpdir(), "omni-dpo-bench-zero-"));
const modelDir = join(root, "model");
const tok = writeByteLevelTokenizer(modelDir);
torch.manualSeed(0);
const config = {
  architectures: ["Qwen2ForCausalLM"],
  model_type: "qwen2",
  vocab_size: tok.vocabSize,
  hidden_size: width,
  intermediate_size: Math.round((width * 11) / 4),
  num_hidden_layers: layers,
  num_attention_heads: 16,
  num_key_value_heads: 4,
  max_position_embeddings: 512,
  rms_norm_eps: 1e-6,
  tie_word_embeddings: false,
  bos_token_id: tok.bosTokenId,
  eos_token_id: tok.eosTokenId,
};
const model = createModel(config);
const parameters = model.numParameters();
saveModel(model, modelDir);
model.dispose();
const data = writeJsonl(join(root, "pairs.jsonl"), toyPairs(2 * 2 * (steps + 1), 9));

const freePort = () =>
  new Promise((resolve) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
const cli = join(import.meta.dirname, "..", "dist", "src", "cli", "main.js");
const hwm = (pid) => {
  try {
    return Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))[1]) * 1024;
  } catch {
    return null;
  }
};
const childrenOf = (pid) => {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
};

async function run(zeroStage) {
  const out = join(root, `out-${zeroStage}`);
  const recipe = join(root, `recipe-${zeroStage}.yaml`);
  writeFileSync(
    recipe,
    Object.entries({
      model_name_or_path: modelDir,
      dataset_mixer: { [data]: 1.0 },
      output_dir: out,
      pref_loss: "simpo",
      beta: 2.0,
      learning_rate: 1e-5,
      per_device_train_batch_size: 2,
      max_steps: steps,
      max_length: maxLength,
      max_prompt_length: maxLength / 2,
      gradient_checkpointing: checkpointing,
      logging_steps: 1,
      save_strategy: "no",
      pair_log_samples: 0,
      seed: 1,
      zero_stage: zeroStage,
    })
      .map(([k, v]) => `${k}: ${JSON.stringify(v)}`)
      .join("\n"),
  );
  const launcher = spawn(
    process.execPath,
    [cli, "train", recipe, "--nproc-per-node", "2", "--master-port", String(await freePort())],
    { env: { ...process.env, OMP_NUM_THREADS: "1" }, stdio: ["ignore", "ignore", "pipe"] },
  );
  let stderr = "";
  launcher.stderr.on("data", (d) => {
    stderr += d;
  });
  const peaks = new Map();
  const poll = setInterval(() => {
    for (const pid of childrenOf(launcher.pid)) {
      const v = hwm(pid);
      if (v !== null) peaks.set(pid, Math.max(peaks.get(pid) ?? 0, v));
    }
  }, 100);
  const code = await new Promise((resolve) => launcher.on("exit", resolve));
  clearInterval(poll);
  if (code !== 0) throw new Error(`zero_stage ${zeroStage} failed:\n${stderr}`);
  return [...peaks.values()].map((b) => Math.round(b / 2 ** 20));
}

try {
  const peaks = {};
  for (const stage of stages) peaks[stage] = await run(stage);
  const mib = (b) => Math.round(b / 2 ** 20);
  const estimate = (zeroStage) =>
    estimateMemory(modelShape(config), {
      zeroStage,
      worldSize: 2,
      dtype: "float32",
      bf16: false,
      lora: null,
      gradientCheckpointing: checkpointing,
      seq: maxLength,
      batch: 2,
    }).per_device_bytes;
  const base = estimate(0);
  const states = (e) => e.weights + e.gradients + e.optimizer;
  console.log(
    JSON.stringify(
      {
        parameters,
        steps,
        gradientCheckpointing: checkpointing,
        peakRssMiB: peaks,
        peakVsStage0: Object.fromEntries(
          stages.map((s) => [s, peaks[s].map((p, i) => (peaks[0] ? Math.round((100 * p) / peaks[0][i]) / 100 : null))]),
        ),
        savedVsStage0MiB: Object.fromEntries(
          stages.map((s) => [s, peaks[s].map((p, i) => (peaks[0] ? peaks[0][i] - p : null))]),
        ),
        predictedSavingVsStage0MiB: Object.fromEntries(stages.map((s) => [s, mib(states(base) - states(estimate(s)))])),
        estimatedStatesMiB: Object.fromEntries(stages.map((s) => [s, mib(states(estimate(s)))])),
      },
      null,
      1,
    ),
  );
} finally {
  rmSync(root, { recursive: true, force: true });
}
