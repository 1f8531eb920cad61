#!/usr/bin/env node
// Memory per rank with ZeRO-1 (zero_stage: 1) vs plain DDP: the same 2-rank `omni-dpo train` run
// of a model whose optimizer state matters (a Qwen2-shaped model, width 1024, 8 layers, a
// byte-level vocabulary: about 100M parameters, nearly all trainable weights, so AdamW's two
// moments are about 800 MB in float32), SimPO (no reference model: the policy, its gradients and
// AdamW's state are the memory). Each rank's peak resident set (VmHWM, polled from /proc every
// 100 ms while it runs) is reported, with what ZeRO-1 should save: half of the moments.
//   node scripts/bench-zero-memory.mjs [--steps N]
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createServer } from "node:net";
import { torch, createModel, saveModel } from "../dist/src/index.js";
import { writeByteLevelTokenizer } from "../dist/test/helpers/tokenizers.js";
import { toyPairs, writeJsonl } from "../dist/test/helpers/toy.js";

const steps = Number(process.argv[process.argv.indexOf("--steps") + 1] || 3);
const root = mkdtempSync(join(tmpdir(), "omni-dpo-bench-zero-"));
const modelDir = join(root, "model");
const tok = writeByteLevelTokenizer(modelDir);
torch.manualSeed(0);
const model = createModel({
  architectures: ["Qwen2ForCausalLM"], model_type: "qwen2", vocab_size: tok.vocabSize, hidden_size: 1024, intermediate_size: 2816,
  num_hidden_layers: 8, num_attention_heads: 16, num_key_value_heads: 4, max_position_embeddings: 512, rms_norm_eps: 1e-6,
  tie_word_embeddings: false, bos_token_id: tok.bosTokenId, eos_token_id: tok.eosTokenId,
});
const parameters = model.numParameters();
saveModel(model, modelDir);
model.dispose();
const data = writeJsonl(join(root, "pairs.jsonl"), toyPairs(2 * 2 * (steps + 1), 9));

const freePort = () => new Promise((resolve) => { const s = createServer(); s.listen(0, "127.0.0.1", () => { const { port } = s.address(); s.close(() => resolve(port)); }); });
const cli = join(import.meta.dirname, "..", "dist", "src", "cli", "main.js");
const hwm = (pid) => { try { return Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))[1]) * 1024; } catch { return null; } };
const childrenOf = (pid) => { try { return readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number); } catch { return []; } };

async function run(zeroStage) {
  const out = join(root, `out-${zeroStage}`);
  const recipe = join(root, `recipe-${zeroStage}.yaml`);
  writeFileSync(recipe, Object.entries({
    model_name_or_path: modelDir, dataset_mixer: { [data]: 1.0 }, output_dir: out, pref_loss: "simpo", beta: 2.0, learning_rate: 1e-5,
    per_device_train_batch_size: 2, max_steps: steps, max_length: 64, max_prompt_length: 32, logging_steps: 1, save_strategy: "no",
    pair_log_samples: 0, seed: 1, zero_stage: zeroStage,
  }).map(([k, v]) => `${k}: ${JSON.stringify(v)}`).join("\n"));
  const launcher = spawn(process.execPath, [cli, "train", recipe, "--nproc-per-node", "2", "--master-port", String(await freePort())],
    { env: { ...process.env, OMP_NUM_THREADS: "1" }, stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  launcher.stderr.on("data", (d) => { stderr += d; });
  const peaks = new Map();
  const poll = setInterval(() => {
    for (const pid of childrenOf(launcher.pid)) { const v = hwm(pid); if (v !== null) peaks.set(pid, Math.max(peaks.get(pid) ?? 0, v)); }
  }, 100);
  const code = await new Promise((resolve) => launcher.on("exit", resolve));
  clearInterval(poll);
  if (code !== 0) throw new Error(`zero_stage ${zeroStage} failed:\n${stderr}`);
  return [...peaks.values()].map((b) => Math.round(b / 2 ** 20));
}

try {
  const plain = await run(0);
  const zero = await run(1);
  const momentsMiB = Math.round((2 * 4 * parameters) / 2 ** 20);
  console.log(JSON.stringify({
    parameters, adamwMomentsMiB: momentsMiB, expectedSavingPerRankMiB: Math.round(momentsMiB / 2),
    peakRssMiB: { plainDdp: plain, zero1: zero }, savingPerRankMiB: plain.map((p, i) => p - zero[i]),
  }, null, 1));
} finally {
  rmSync(root, { recursive: true, force: true });
}
