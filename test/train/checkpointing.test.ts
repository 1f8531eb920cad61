// gradient_checkpointing and the chunked log-probs through the trainer and every caller of the
// pair-batching loop: a run with checkpointing ends with the same weights as one without; the
// reference cache, evaluation (`omni-dpo eval`'s evaluatePairs) and max_length-truncated pairs
// give the full-logits path's log-probs; and checkpointing holds less memory between forward
// and backward, measured in a child process.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { torch, loadModel, Tokenizer } from "../../src/index.js";
import type { CausalLM } from "../../src/models/causal-lm.js";
import { loadSafetensors } from "../../src/models/safetensors.js";
import { concatenatedBatch, tokenizeRecords, type TokenizedPair } from "../../src/data/tokenize.js";
import { readPreferenceFile } from "../../src/data/readers.js";
import { batchTensors, sequenceLogps } from "../../src/logprobs/forward.js";
import { pairLogps, type PairLogps } from "../../src/logprobs/pairs.js";
import { precomputeReference } from "../../src/train/reference.js";
import { loadTrainConfig } from "../../src/train/config.js";
import { train } from "../../src/train/trainer.js";
import { evaluatePairs } from "../../src/eval/pairwise.js";
import { tempDir, toyPairs, writeJsonl, writeToyModel } from "../helpers/toy.js";

let root: string;
let model: string;
let data: string;

before(() => {
  root = tempDir("omni-dpo-checkpointing-");
  model = writeToyModel(join(root, "model"));
  data = writeJsonl(join(root, "pairs.jsonl"), toyPairs(16));
});
after(() => rmSync(root, { recursive: true, force: true }));

async function pairsOf(maxLength: number, maxPromptLength: number): Promise<{ pairs: TokenizedPair[]; pad: number }> {
  const tokenizer = Tokenizer.fromPretrainedSync(model);
  const pairs = tokenizeRecords(await readPreferenceFile(data), tokenizer, {
    maxLength,
    maxPromptLength,
    truncationMode: "keep_end",
  });
  return { pairs, pad: tokenizer.padTokenId ?? tokenizer.eosTokenId! };
}

/** Per-pair log-probs from full logits [2B, T, V], one forward over all pairs: the path before chunking. */
function fullLogits(m: CausalLM, pairs: TokenizedPair[], pad: number, lengthNorm: boolean): PairLogps {
  return torch.noGrad(() =>
    torch.tidy(() => {
      const batch = concatenatedBatch(pairs, pad);
      const { inputIds, attentionMask, labels } = batchTensors(batch);
      const lp = sequenceLogps(m.forward(inputIds, { attentionMask }), labels, lengthNorm).logps.toArray() as number[];
      return { chosen: lp.slice(0, pairs.length), rejected: lp.slice(pairs.length) };
    }),
  );
}

function assertSame(got: PairLogps, want: PairLogps, tol: number) {
  for (const side of ["chosen", "rejected"] as const) {
    assert.equal(got[side].length, want[side].length);
    got[side].forEach((x, i) =>
      assert.ok(Math.abs(x - want[side][i]) <= tol, `${side} ${i}: ${x} vs ${want[side][i]}`),
    );
  }
}

describe("every caller of the pair-batching loop gets the full-logits log-probs", () => {
  it("max_length truncation: truncated pairs, in batches of 3 (rows of different lengths)", async () => {
    const { pairs, pad } = await pairsOf(12, 8);
    assert.ok(
      pairs.some((p) => p.truncated),
      "some pairs are truncated",
    );
    const m = loadModel(model, { dtype: "float64" });
    try {
      assertSame(pairLogps(m, pairs, pad, true, 3), fullLogits(m, pairs, pad, true), 1e-10);
      assertSame(pairLogps(m, pairs, pad, false, 3), fullLogits(m, pairs, pad, false), 1e-10);
    } finally {
      m.dispose();
    }
  });

  it("precompute_ref_log_probs: the cached reference log-probs", async () => {
    const { pairs, pad } = await pairsOf(64, 32);
    const m = loadModel(model);
    try {
      const r = precomputeReference({
        pairs,
        modelDir: model,
        cacheDir: join(root, "cache"),
        lengthNorm: true,
        batchSize: 4,
        padTokenId: pad,
        loadModel: () => loadModel(model),
      });
      assert.equal(r.cached, false);
      assertSame(r.values, fullLogits(m, pairs, pad, true), 1e-5);
    } finally {
      m.dispose();
    }
  });

  it("evaluation (omni-dpo eval's evaluatePairs), with a reference", async () => {
    const { pairs, pad } = await pairsOf(64, 32);
    const m = loadModel(model);
    const ref = loadModel(writeToyModel(join(root, "ref"), { seed: 5 }));
    try {
      const r = evaluatePairs(m, pairs, { reference: ref, padTokenId: pad, batchSize: 5, beta: 1 });
      const p = fullLogits(m, pairs, pad, true);
      const q = fullLogits(ref, pairs, pad, true);
      assertSame(
        r.perPair,
        { chosen: p.chosen.map((x, i) => x - q.chosen[i]), rejected: p.rejected.map((x, i) => x - q.rejected[i]) },
        1e-5,
      );
    } finally {
      m.dispose();
      ref.dispose();
    }
  });
});

function recipe(outputDir: string, extra: Record<string, unknown>) {
  return loadTrainConfig({
    model_name_or_path: model,
    dataset_mixer: { [data]: 1.0 },
    output_dir: join(root, outputDir),
    loss_type: "omni_dpo",
    beta: 3.5,
    uni_dpo_qual_eta: 0.7,
    uni_dpo_tau_ref: 0.8,
    uni_dpo_perf_gamma: 3,
    uni_dpo_nll_lambda: 0.001,
    uni_dpo_tau_good: 3.2,
    learning_rate: 3.0e-3,
    lr_scheduler_type: "cosine",
    max_steps: 4,
    per_device_train_batch_size: 2,
    gradient_accumulation_steps: 2,
    max_length: 64,
    max_prompt_length: 32,
    logging_steps: 1,
    save_strategy: "no",
    seed: 3,
    ...extra,
  }).config;
}

describe("training with gradient_checkpointing: true", () => {
  it("ends with the same weights as without (live reference), and with a precomputed reference", async () => {
    const plain = await train(recipe("plain", {}));
    const checkpointed = await train(
      recipe("checkpointed", { gradient_checkpointing: true, gradient_checkpointing_kwargs: { use_reentrant: false } }),
    );
    const cached = await train(recipe("cached", { gradient_checkpointing: true, precompute_ref_log_probs: true }));
    assert.equal(plain.globalStep, 4);
    const want = loadSafetensors(join(plain.outputDir, "model.safetensors"));
    const start = loadSafetensors(join(model, "model.safetensors"));
    for (const run of [checkpointed, cached]) {
      const got = loadSafetensors(join(run.outputDir, "model.safetensors"));
      for (const [name, w] of want) {
        const diff = torch.tidy(() => got.get(name)!.sub(w).abs().max().item());
        assert.ok(diff <= 1e-5, `${run.outputDir}: ${name} differs by ${diff}`);
      }
      torch.dispose([...got.values()]);
    }
    // The runs trained: the weights moved from the start.
    const moved = torch.tidy(() =>
      Math.max(...[...want].map(([name, w]) => w.sub(start.get(name)!).abs().max().item())),
    );
    assert.ok(moved > 1e-3, `weights moved by ${moved}`);
    torch.dispose([...want.values(), ...start.values()]);
  });
});

// The measuring process: a deeper toy Llama, one forward of 2 rows x 256 tokens with the
// chunked log-probs, RSS read at the point where loss.backward() is called. With a fixed mmap
// threshold glibc hands every allocation of 64 KiB or more straight to mmap and back to the
// kernel on free, so the resident set follows the tensors alive (autograd's saved ones included,
// which torch.memory() does not see).
const WORKER = `
import { readFileSync } from "node:fs";
const { torch, createModel } = await import(process.argv[1]);
const { RecomputeTape } = await import(process.argv[2]);
const { concatenatedForward } = await import(process.argv[3]);
const checkpointing = process.argv[4] === "true";
torch.setNumThreads(1);
torch.manualSeed(0);
const model = createModel({ architectures: ["LlamaForCausalLM"], model_type: "llama", vocab_size: 64, hidden_size: 64, intermediate_size: 256,
  num_hidden_layers: 8, num_attention_heads: 4, num_key_value_heads: 4, max_position_embeddings: 512 }).eval();
const T = 256;
const row = (s) => Array.from({ length: T }, (_, i) => (s * 7 + i * 13) % 64);
const batch = { inputIds: [row(1), row(2)], attentionMask: [row(1).map(() => 1), row(2).map(() => 1)],
  labels: [row(1).map((x, i) => (i < 64 ? -100 : x)), row(2).map((x, i) => (i < 64 ? -100 : x))] };
const rss = () => Number(/VmRSS:\\s+(\\d+)/.exec(readFileSync("/proc/self/status", "utf8"))[1]) * 1024;
const step = () => {
  const tape = new RecomputeTape();
  let held = 0;
  torch.tidy(() => {
    const before = rss();
    const out = concatenatedForward(model, batch, true, { recompute: tape, gradientCheckpointing: checkpointing });
    const loss = out.chosen.sub(out.rejected).sum();
    held = rss() - before;
    loss.backward();
  });
  tape.backward();
  for (const p of model.parameters()) p.zeroGrad();
  return held;
};
step();
console.log(JSON.stringify({ held: step() }));
`;

describe("memory", () => {
  const skip = process.platform !== "linux" ? "reads /proc/self/status" : false;
  it("checkpointing holds a fraction of the activations at loss.backward()", { skip }, () => {
    const url = (p: string) => new URL(p, import.meta.url).href;
    const held = (checkpointing: boolean): number => {
      const r = spawnSync(
        process.execPath,
        [
          "--input-type=module",
          "-e",
          WORKER,
          url("../../src/index.js"),
          url("../../src/nn/recompute.js"),
          url("../../src/logprobs/forward.js"),
          String(checkpointing),
        ],
        {
          encoding: "utf8",
          env: { ...process.env, MALLOC_MMAP_THRESHOLD_: "65536", MALLOC_TRIM_THRESHOLD_: "0", OMP_NUM_THREADS: "1" },
        },
      );
      assert.equal(r.status, 0, r.stderr);
      return (JSON.parse(r.stdout.trim().split("\n").pop()!) as { held: number }).held;
    };
    const full = held(false);
    const checkpointed = held(true);
    // Without checkpointing every layer keeps its activations (several MiB each here); with it
    // only each layer's input (128 KiB) and the last hidden states stay.
    assert.ok(full > 8 * 1024 * 1024, `without checkpointing the forward holds ${full} bytes`);
    assert.ok(checkpointed < full / 4, `checkpointed: ${checkpointed} bytes held, without: ${full}`);
  });
});
