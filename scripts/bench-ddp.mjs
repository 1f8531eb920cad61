#!/usr/bin/env node
// Data-parallel scaling on this machine: the same `omni-dpo train` run as 1 rank and as 2 ranks
// (--nproc-per-node 2), 1 thread per rank, each rank with the same per-device batch; the 2-rank
// run twice, with the gradient all-reduce overlapped with backward (the default) and after it
// (OMNI_DPO_DDP_OVERLAP=0).
//
//   --case small  (default) a Qwen2-shaped model, width 256, 4 layers, DPO with a live
//                 reference, 4 pairs per rank per step, 256 tokens.
//   --case qwen2  the step `omni-dpo bench train --case qwen2` times: Qwen2.5-0.5B's vocabulary
//                 (151936), width, heads and MLP with 2 decoder layers, tied embeddings, one pair
//                 per rank per step of 1024 tokens (768 prompt + 256 answer), a live reference,
//                 Omni-DPO with the Qwen2.5-0.5B recipe's settings, gradient checkpointing.
//   --steps N     optimizer steps per run (the first two are not counted).
//   --overlap on|off|both   which 2-rank runs (default both).
//
// Throughput: each metrics.jsonl row's tokens_per_second is the step's global rate, the sum over
// ranks of each rank's attention-mask tokens over its wall time for the step (the ranks wait for
// each other in every all-reduce, so their step times are the same). Reported: the median over
// the counted steps (robust to a step another process disturbed) and the mean. Efficiency =
// 2-rank / (2 x 1-rank), from the medians.
// Run after `bash scripts/setup.sh`, inside `flock /work/bench.lock` on a shared machine:
//   node scripts/bench-ddp.mjs [--case small|qwen2] [--steps N] [--overlap on|off|both]
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir, loadavg } from "node:os";
import { join } from "node:path";
import { createServer } from "node:net";
import { torch, createModel, saveModel } from "../dist/src/index.js";
import { writeByteLevelTokenizer } from "../dist/test/helpers/tokenizers.js";
import { toyPairs, writeJsonl } from "../dist/test/helpers/toy.js";

const flag = (name, fallback) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : fallback;
};
const benchCase = flag("--case", "small");
if (!["small", "qwen2"].includes(benchCase)) throw new Error(`--case must be small or qwen2, not ${benchCase}`);
const overlap = flag("--overlap", "both");
if (!["on", "off", "both"].includes(overlap)) throw new Error(`--overlap must be on, off or both, not ${overlap}`);
const steps = Number(flag("--steps", benchCase === "qwen2" ? 5 : 10));
if (!Number.isInteger(steps) || steps < 3)
  throw new Error(`--steps must be an integer of at least 3, not ${flag("--steps")}`);

const root = mkdtempSync(join(tmpdir(), "omni-dpo-bench-ddp-"));
const modelDir = join(root, "model");
const tok = writeByteLevelTokenizer(modelDir);
torch.manualSeed(0);
const common = {
  architectures: ["Qwen2ForCausalLM"],
  model_type: "qwen2",
  rms_norm_eps: 1e-6,
  bos_token_id: tok.bosTokenId,
  eos_token_id: tok.eosTokenId,
};
const shapes = {
  small: {
    vocab_size: tok.vocabSize,
    hidden_size: 256,
    intermediate_size: 768,
    num_hidden_layers: 4,
    num_attention_heads: 8,
    num_key_value_heads: 2,
    max_position_embeddings: 512,
    tie_word_embeddings: false,
  },
  // apps/bench/train.ts's QWEN2_SHAPED.
  qwen2: {
    vocab_size: 151936,
    hidden_size: 896,
    intermediate_size: 4864,
    num_hidden_layers: 2,
    num_attention_heads: 14,
    num_key_value_heads: 2,
    max_position_embeddings: 32768,
    rope_theta: 1e6,
    tie_word_embeddings: true,
  },
};
const model = createModel({ ...common, ...shapes[benchCase] });
saveModel(model, modelDir);
model.dispose();

const perRank = benchCase === "qwen2" ? 1 : 4;
const n = 2 * perRank * (steps + 2);
let pairs;
if (benchCase === "qwen2") {
  // The byte-level tokenizer: one token per byte. 768-token prompts, 256-token answers.
  const text = (seed, length) => {
    let s = "";
    let i = seed;
    while (s.length < length) s += ` w${(i = (i * 7919 + 13) % 1000)}`;
    return s.slice(0, length);
  };
  pairs = Array.from({ length: n }, (_, i) => ({
    prompt: text(i, 766),
    chosen: text(i + 1, 255),
    rejected: text(i + 2, 255),
    score_chosen: 8.0,
    score_rejected: 3.0,
  }));
} else {
  // Longer answers than the tests' toy pairs, so a step is compute, not overhead.
  const pad = " and so on".repeat(12);
  pairs = toyPairs(n, 9).map((p) => ({ ...p, chosen: p.chosen + pad, rejected: p.rejected + pad }));
}
const data = writeJsonl(join(root, "pairs.jsonl"), pairs);
const recipeKeys =
  benchCase === "qwen2"
    ? {
        pref_loss: "uni_dpo",
        beta: 3.5,
        uni_dpo_qual_eta: 0.7,
        uni_dpo_tau_ref: 0.8,
        uni_dpo_perf_gamma: 3.0,
        uni_dpo_nll_lambda: 0.001,
        uni_dpo_tau_good: 3.2,
        learning_rate: 1e-6,
        max_length: 1024,
        max_prompt_length: 768,
        gradient_checkpointing: true,
      }
    : { pref_loss: "dpo", beta: 0.1, learning_rate: 1e-4, max_length: 256, max_prompt_length: 64 };

const freePort = () =>
  new Promise((resolve) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
const cli = join(import.meta.dirname, "..", "dist", "src", "cli", "main.js");

async function run(ranks, overlapOn) {
  const name = `${ranks}-${overlapOn ? "on" : "off"}`;
  const out = join(root, `out-${name}`);
  const recipe = join(root, `recipe-${name}.yaml`);
  writeFileSync(
    recipe,
    Object.entries({
      model_name_or_path: modelDir,
      dataset_mixer: { [data]: 1.0 },
      output_dir: out,
      ...recipeKeys,
      // No pair log (rank 0 alone would run it, a forward over its sample every logged step) and no checkpoints: the step alone.
      per_device_train_batch_size: perRank,
      max_steps: steps,
      logging_steps: 1,
      save_strategy: "no",
      pair_log_samples: 0,
      seed: 1,
    })
      .map(([k, v]) => `${k}: ${JSON.stringify(v)}`)
      .join("\n"),
  );
  const args = [
    cli,
    "train",
    recipe,
    ...(ranks > 1 ? ["--nproc-per-node", String(ranks), "--master-port", String(await freePort())] : []),
  ];
  const started = Date.now();
  const r = spawnSync(process.execPath, args, {
    env: { ...process.env, OMP_NUM_THREADS: "1", OMNI_DPO_DDP_OVERLAP: overlapOn ? "1" : "0" },
    encoding: "utf8",
  });
  if (r.status !== 0) throw new Error(`${ranks} rank(s) failed:\n${r.stderr}`);
  const rows = readFileSync(join(out, "metrics.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l))
    .filter((row) => "loss" in row)
    .slice(2);
  const rates = rows.map((row) => row.tokens_per_second).sort((a, b) => a - b);
  const median =
    rates.length % 2 ? rates[(rates.length - 1) / 2] : (rates[rates.length / 2 - 1] + rates[rates.length / 2]) / 2;
  const mean = rates.reduce((a, b) => a + b, 0) / rates.length;
  const overlapLine = /(\d+) of (\d+) gradient buckets started their all-reduce during backward/.exec(r.stderr);
  return {
    ranks,
    overlap: ranks > 1 ? overlapOn : null,
    tokensPerSecond: median,
    meanTokensPerSecond: mean,
    perStep: rates.map((x) => Math.round(x)),
    wallSeconds: (Date.now() - started) / 1000,
    ...(overlapLine ? { bucketsDuringBackward: `${overlapLine[1]} of ${overlapLine[2]}` } : {}),
  };
}

try {
  const load = loadavg()[0];
  const one = await run(1, true);
  const results = {
    case: benchCase,
    steps,
    counted: steps - 2,
    perRankBatch: perRank,
    loadAverageBefore: load,
    oneRank: one,
  };
  for (const on of overlap === "both" ? [true, false] : [overlap === "on"]) {
    const two = await run(2, on);
    results[on ? "twoRanksOverlap" : "twoRanksAfterBackward"] = {
      ...two,
      speedup: two.tokensPerSecond / one.tokensPerSecond,
      efficiency: two.tokensPerSecond / (2 * one.tokensPerSecond),
    };
  }
  console.log(JSON.stringify(results, null, 1));
} finally {
  rmSync(root, { recursive: true, force: true });
}
