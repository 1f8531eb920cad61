#!/usr/bin/env node
// Data-parallel scaling on this machine: the same `omni-dpo train` run (a Qwen2-shaped model,
// width 256, 4 layers, DPO with a live reference, 4 pairs per rank per step, 1 thread per rank)
// as 1 rank and as 2 ranks (--nproc-per-node 2). Reports training throughput (tokens per
// second, all ranks together; the median step after the first two) and the scaling efficiency
// (2-rank throughput / (2 x 1-rank throughput)). Run after `bash scripts/setup.sh`:
//   node scripts/bench-ddp.mjs [--steps N]
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createServer } from "node:net";
import { torch, createModel, saveModel } from "../dist/src/index.js";
import { writeByteLevelTokenizer } from "../dist/test/helpers/tokenizers.js";
import { toyPairs, writeJsonl } from "../dist/test/helpers/toy.js";

const steps = Number(process.argv[process.argv.indexOf("--steps") + 1] || 10);
const perRank = 4;
const root = mkdtempSync(join(tmpdir(), "omni-dpo-bench-ddp-"));
const modelDir = join(root, "model");
const tok = writeByteLevelTokenizer(modelDir);
torch.manualSeed(0);
const model = createModel({
  architectures: ["Qwen2ForCausalLM"], model_type: "qwen2", vocab_size: tok.vocabSize, hidden_size: 256, intermediate_size: 768,
  num_hidden_layers: 4, num_attention_heads: 8, num_key_value_heads: 2, max_position_embeddings: 512, rms_norm_eps: 1e-6,
  tie_word_embeddings: false, bos_token_id: tok.bosTokenId, eos_token_id: tok.eosTokenId,
});
saveModel(model, modelDir);
model.dispose();
// Longer answers than the tests' toy pairs, so a step is compute, not overhead.
const pad = " and so on".repeat(12);
const pairs = toyPairs(2 * perRank * (steps + 2), 9).map((p) => ({ ...p, chosen: p.chosen + pad, rejected: p.rejected + pad }));
const data = writeJsonl(join(root, "pairs.jsonl"), pairs);

const freePort = () => new Promise((resolve) => { const s = createServer(); s.listen(0, "127.0.0.1", () => { const { port } = s.address(); s.close(() => resolve(port)); }); });
const cli = join(import.meta.dirname, "..", "dist", "src", "cli", "main.js");

async function run(ranks) {
  const out = join(root, `out-${ranks}`);
  const recipe = join(root, `recipe-${ranks}.yaml`);
  writeFileSync(recipe, Object.entries({
    model_name_or_path: modelDir, dataset_mixer: { [data]: 1.0 }, output_dir: out, pref_loss: "dpo", beta: 0.1, learning_rate: 1e-4,
    per_device_train_batch_size: perRank, max_steps: steps, max_length: 256, max_prompt_length: 64, logging_steps: 1, save_steps: 100000, seed: 1,
  }).map(([k, v]) => `${k}: ${JSON.stringify(v)}`).join("\n"));
  const args = [cli, "train", recipe, ...(ranks > 1 ? ["--nproc-per-node", String(ranks), "--master-port", String(await freePort())] : [])];
  const r = spawnSync(process.execPath, args, { env: { ...process.env, OMP_NUM_THREADS: "1" }, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`${ranks} rank(s) failed:\n${r.stderr}`);
  const rows = readFileSync(join(out, "metrics.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l)).filter((row) => "loss" in row);
  const tokens = rows.slice(2).map((row) => row.tokens_per_second).sort((a, b) => a - b);
  const median = tokens[Math.floor(tokens.length / 2)];
  return { ranks, tokensPerSecond: median };
}

try {
  const one = await run(1);
  const two = await run(2);
  const efficiency = two.tokensPerSecond / (2 * one.tokensPerSecond);
  console.log(JSON.stringify({ steps, perRankBatch: perRank, oneRank: one.tokensPerSecond, twoRanks: two.tokensPerSecond, speedup: two.tokensPerSecond / one.tokensPerSecond, efficiency }));
} finally {
  rmSync(root, { recursive: true, force: true });
}
