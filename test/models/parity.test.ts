// Logits of every architecture against an independent PyTorch implementation of Hugging Face's
// modeling code (test/models/reference_models.py, which reads the same checkpoint directory
// itself): tiny random checkpoints written by saveModel, loaded back by loadModel, for unpadded,
// right-padded and left-padded batches (only non-padding positions compared), in float32 at
// 1e-4. Also sharded and BF16 checkpoints, and GPT-2 saved without the "transformer." prefix.
// ONE python process serves the whole file. Skips, with the reason printed, where no python
// with torch exists.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { torch } from "../../src/index.js";
import { createModel, loadModel, saveModel } from "../../src/models/auto.js";
import type { CausalLM } from "../../src/models/causal-lm.js";
import type { RawConfig } from "../../src/models/config.js";
import { saveCheckpoint } from "../../src/models/safetensors.js";
import { runPythonJson } from "../../src/util/python.js";
import { skipUnless } from "../helpers/requirements.js";

const skip = skipUnless("torch");

const TOL = 1e-4;
// Tiny models: one thread avoids thread-pool overhead on every small op (and contention).
torch.setNumThreads(1);

const VOCAB = 97;
const REFERENCE = fileURLToPath(new URL("../../../test/models/reference_models.py", import.meta.url));

const root = mkdtempSync(join(tmpdir(), "omni-dpo-models-parity-"));
after(() => rmSync(root, { recursive: true, force: true }));

// ---- configs ---------------------------------------------------------------------------------

const llamaBase = {
  vocab_size: VOCAB,
  hidden_size: 32,
  intermediate_size: 64,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  max_position_embeddings: 64,
  rms_norm_eps: 1e-6,
  hidden_act: "silu",
};

const CONFIGS: Record<string, RawConfig> = {
  gpt2: {
    architectures: ["GPT2LMHeadModel"],
    model_type: "gpt2",
    vocab_size: VOCAB,
    n_positions: 64,
    n_embd: 32,
    n_layer: 2,
    n_head: 4,
    n_inner: null,
    activation_function: "gelu_new",
    layer_norm_epsilon: 1e-5,
  },
  "gpt2 (untied head, unscaled and per-layer-scaled attention)": {
    architectures: ["GPT2LMHeadModel"],
    model_type: "gpt2",
    vocab_size: VOCAB,
    n_positions: 64,
    n_embd: 32,
    n_layer: 2,
    n_head: 4,
    n_inner: 48,
    activation_function: "gelu_new",
    layer_norm_epsilon: 1e-5,
    tie_word_embeddings: false,
    scale_attn_weights: false,
    scale_attn_by_inverse_layer_idx: true,
  },
  "llama (GQA)": {
    architectures: ["LlamaForCausalLM"],
    model_type: "llama",
    ...llamaBase,
    num_key_value_heads: 2,
    rope_theta: 10000,
    tie_word_embeddings: false,
  },
  "llama (explicit head_dim, attention and MLP biases)": {
    architectures: ["LlamaForCausalLM"],
    model_type: "llama",
    ...llamaBase,
    num_key_value_heads: 4,
    head_dim: 16,
    attention_bias: true,
    mlp_bias: true,
    rope_theta: 10000,
  },
  "llama 3 (llama3 rope_scaling, tied embeddings)": {
    architectures: ["LlamaForCausalLM"],
    model_type: "llama",
    ...llamaBase,
    hidden_size: 48,
    num_key_value_heads: 2,
    head_dim: 24,
    max_position_embeddings: 128,
    rope_theta: 500000,
    tie_word_embeddings: true,
    rope_scaling: {
      rope_type: "llama3",
      factor: 8,
      low_freq_factor: 1,
      high_freq_factor: 4,
      original_max_position_embeddings: 32,
    },
  },
  "llama 3 as transformers 5 writes it (rope_parameters)": {
    architectures: ["LlamaForCausalLM"],
    model_type: "llama",
    ...llamaBase,
    hidden_size: 48,
    num_key_value_heads: 2,
    head_dim: 24,
    max_position_embeddings: 128,
    tie_word_embeddings: true,
    rope_parameters: {
      rope_type: "llama3",
      rope_theta: 500000,
      factor: 8,
      low_freq_factor: 1,
      high_freq_factor: 4,
      original_max_position_embeddings: 32,
    },
  },
  "qwen2 (q/k/v biases)": {
    architectures: ["Qwen2ForCausalLM"],
    model_type: "qwen2",
    ...llamaBase,
    num_key_value_heads: 2,
    rope_theta: 1000000,
    use_sliding_window: false,
    sliding_window: 4,
    max_window_layers: 2,
  },
  "qwen2 (use_sliding_window: window 4 from layer max_window_layers 1)": {
    architectures: ["Qwen2ForCausalLM"],
    model_type: "qwen2",
    ...llamaBase,
    num_key_value_heads: 2,
    tie_word_embeddings: true,
    rope_theta: 1000000,
    use_sliding_window: true,
    sliding_window: 4,
    max_window_layers: 1,
  },
  "qwen2 (explicit layer_types: window on layer 0 only)": {
    architectures: ["Qwen2ForCausalLM"],
    model_type: "qwen2",
    ...llamaBase,
    num_key_value_heads: 2,
    use_sliding_window: true,
    sliding_window: 3,
    max_window_layers: 1,
    layer_types: ["sliding_attention", "full_attention"],
  },
  "mistral (sliding_window 4)": {
    architectures: ["MistralForCausalLM"],
    model_type: "mistral",
    ...llamaBase,
    num_key_value_heads: 2,
    rope_theta: 10000,
    sliding_window: 4,
  },
};

// ---- helpers ---------------------------------------------------------------------------------

/**
 * Gives every parameter random values (normal, std 0.2; norm weights 1 + normal 0.2), so biases
 * and norm weights, which createModel starts at 0 and 1, matter too.
 */
function randomize(model: CausalLM, seed: number): void {
  torch.manualSeed(seed);
  torch.noGrad(() =>
    torch.tidy(() => {
      for (const [name, p] of model.namedParameters()) {
        let v = torch.randn(p.shape).mul(0.2);
        if (/norm|ln_/.test(name) && name.endsWith("weight")) v = v.add(1);
        model.setParameter(name, v);
      }
    }),
  );
}

function makeModel(config: RawConfig, seed: number): CausalLM {
  torch.manualSeed(seed);
  const model = createModel(config, { std: 0.2 });
  randomize(model, seed + 1000);
  return model.eval();
}

interface Batch {
  kind: "unpadded" | "right-padded" | "left-padded";
  ids: number[][];
  mask: number[][] | null;
}

/** Three rows of lengths `lengths` (random ids), padded with id 0 on the given side. */
function batches(lengths: number[], seed: number): Batch[] {
  let s = seed;
  const rand = () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return s;
  };
  const rows = lengths.map((n) => Array.from({ length: n }, () => 1 + (rand() % (VOCAB - 1))));
  const t = Math.max(...lengths);
  const pad = (row: number[], left: boolean) => {
    const fill = new Array(t - row.length).fill(0);
    return left ? [...fill, ...row] : [...row, ...fill];
  };
  const maskOf = (row: number[], left: boolean) => {
    const ones = new Array(row.length).fill(1),
      zeros = new Array(t - row.length).fill(0);
    return left ? [...zeros, ...ones] : [...ones, ...zeros];
  };
  const full = rows.map((r) => [...r, ...Array.from({ length: t - r.length }, () => 1 + (rand() % (VOCAB - 1)))]);
  return [
    { kind: "unpadded", ids: full, mask: null },
    { kind: "right-padded", ids: rows.map((r) => pad(r, false)), mask: rows.map((r) => maskOf(r, false)) },
    { kind: "left-padded", ids: rows.map((r) => pad(r, true)), mask: rows.map((r) => maskOf(r, true)) },
  ];
}

function logitsOf(model: CausalLM, batch: Batch): { shape: number[]; values: Float32Array } {
  return torch.noGrad(() =>
    torch.tidy(() => {
      const ids = torch.tensor(batch.ids, { dtype: "int64" });
      const mask = batch.mask ? torch.tensor(batch.mask, { dtype: "int64" }) : null;
      const out = model.forward(ids, { attentionMask: mask });
      return { shape: out.shape, values: out.to("float32").data() as Float32Array };
    }),
  );
}

/** Max |ours - reference| over non-padding positions. */
function maxDiff(
  ours: { shape: number[]; values: Float32Array },
  ref: { shape: number[]; logits: number[] },
  batch: Batch,
): { diff: number; compared: number } {
  assert.deepEqual(ours.shape, ref.shape, "logits shapes differ");
  const [b, t, v] = ours.shape;
  let worst = 0,
    compared = 0;
  for (let i = 0; i < b; i++) {
    for (let j = 0; j < t; j++) {
      if (batch.mask && batch.mask[i][j] === 0) continue;
      for (let k = 0; k < v; k++) {
        const at = (i * t + j) * v + k;
        const d = Math.abs(ours.values[at] - ref.logits[at]);
        if (!(d <= worst)) worst = d; // NaN counts as worst
        compared++;
      }
    }
  }
  return { diff: worst, compared };
}

// ---- the cases -------------------------------------------------------------------------------

interface Case {
  name: string;
  dir: string;
  model: CausalLM;
  batches: Batch[];
}

function caseFor(name: string, dir: string, model: CausalLM, lengths: number[], seed: number): Case {
  return { name, dir, model, batches: batches(lengths, seed) };
}

/** Builds every checkpoint, loads each back, and runs the reference once over all of them. */
const prepared = (() => {
  let done: { cases: Case[]; refs: { shape: number[]; logits: number[] }[][] } | undefined;
  let failure: unknown;
  return () => {
    if (failure) throw failure; // one python run, also when it failed
    if (done) return done;
    try {
      done = build();
    } catch (e) {
      failure = e;
      throw e;
    }
    return done;
  };
  function build() {
    const cases: Case[] = [];
    let seed = 1;
    for (const [name, config] of Object.entries(CONFIGS)) {
      const dir = join(root, name.replace(/[^a-z0-9]+/gi, "-"));
      const model = makeModel(config, seed++);
      saveModel(model, dir);
      model.dispose();
      cases.push(caseFor(name, dir, loadModel(dir), [9, 6, 3], seed * 17));
    }

    // GPT-2 as the hub's checkpoints store it: no "transformer." prefix, with attn.bias buffers.
    {
      const model = makeModel(CONFIGS.gpt2, 41);
      const dir = join(root, "gpt2-unprefixed");
      saveModel(model, dir); // config.json (and prefixed weights, replaced below)
      torch.tidy(() => {
        const nPos = CONFIGS.gpt2.n_positions as number;
        const entries: [string, torch.Tensor][] = model
          .namedParameters()
          .map(([n, p]) => [n.replace(/^transformer\./, ""), p.detach()]);
        for (let i = 0; i < (CONFIGS.gpt2.n_layer as number); i++) {
          entries.push([`h.${i}.attn.bias`, torch.ones([nPos, nPos]).tril().reshape(1, 1, nPos, nPos)]);
        }
        saveCheckpoint(dir, entries);
      });
      model.dispose();
      cases.push(caseFor("gpt2 (no transformer. prefix, attn.bias buffers)", dir, loadModel(dir), [9, 6, 3], 4242));
    }

    // Sharded checkpoints (many small shards + index) and BF16 weights.
    for (const [name, key, options] of [
      ["gpt2, sharded", "gpt2", { maxShardBytes: 8192 }],
      ["llama 3, sharded", "llama 3 (llama3 rope_scaling, tied embeddings)", { maxShardBytes: 8192 }],
      ["gpt2, bfloat16", "gpt2", { dtype: "bfloat16" }],
      ["qwen2, bfloat16", "qwen2 (q/k/v biases)", { dtype: "bfloat16" }],
      ["mistral, bfloat16 and sharded", "mistral (sliding_window 4)", { dtype: "bfloat16", maxShardBytes: 4096 }],
    ] as [string, string, { maxShardBytes?: number; dtype?: torch.DType }][]) {
      const dir = join(root, name.replace(/[^a-z0-9]+/gi, "-"));
      const model = makeModel(CONFIGS[key], seed++);
      saveModel(model, dir, options);
      model.dispose();
      const files = readdirSync(dir);
      if (options.maxShardBytes)
        assert.ok(
          files.includes("model.safetensors.index.json") && !files.includes("model.safetensors"),
          `${name}: not sharded: ${files}`,
        );
      cases.push(caseFor(name, dir, loadModel(dir), [8, 5, 2], seed * 31));
    }

    const request = {
      cases: cases.flatMap((c) => c.batches.map((b) => ({ dir: c.dir, input_ids: b.ids, attention_mask: b.mask }))),
    };
    const response = runPythonJson<{ results: { shape: number[]; logits: number[] }[] }>(REFERENCE, request, {
      file: true,
    });
    const refs: { shape: number[]; logits: number[] }[][] = [];
    let at = 0;
    for (const c of cases) refs.push(c.batches.map(() => response.results[at++]));
    return { cases, refs };
  }
})();

const NAMES = [
  ...Object.keys(CONFIGS),
  "gpt2 (no transformer. prefix, attn.bias buffers)",
  "gpt2, sharded",
  "llama 3, sharded",
  "gpt2, bfloat16",
  "qwen2, bfloat16",
  "mistral, bfloat16 and sharded",
];

for (const name of NAMES) {
  test(`logits match the Hugging Face reference: ${name}`, { skip }, () => {
    const { cases, refs } = prepared();
    const i = cases.findIndex((c) => c.name === name);
    assert.ok(i >= 0, `no case ${name}`);
    const c = cases[i];
    for (let j = 0; j < c.batches.length; j++) {
      const batch = c.batches[j];
      const { diff, compared } = maxDiff(logitsOf(c.model, batch), refs[i][j], batch);
      assert.ok(compared > 0);
      if (process.env.OMNI_DPO_SHOW_DIFFS) console.log(name, batch.kind, diff, compared);
      assert.ok(diff <= TOL, `${name}, ${batch.kind}: max |diff| ${diff} > ${TOL}`);
    }
  });
}

test("the comparison is not vacuous: logits span far more than the tolerance", { skip }, () => {
  // Guards against e.g. logits that are all ~0, where any two implementations would agree.
  const { cases, refs } = prepared();
  for (let i = 0; i < cases.length; i++) {
    const l = refs[i][0].logits;
    let lo = Infinity,
      hi = -Infinity;
    for (const x of l) {
      lo = Math.min(lo, x);
      hi = Math.max(hi, x);
    }
    assert.ok(hi - lo > 1, `${cases[i].name}: logits span only ${hi - lo}`);
  }
});

test("llama3 rope_scaling exercises all three frequency bands", () => {
  // head_dim 24, theta 500000, original context 32: wavelengths below 8 are kept, above 32
  // divided by 8, and in between smoothly interpolated; each band must occur.
  const d = 24,
    theta = 500000;
  const bands = new Set<string>();
  for (let i = 0; i < d / 2; i++) {
    const wavelen = 2 * Math.PI * theta ** ((2 * i) / d);
    bands.add(wavelen < 32 / 4 ? "high" : wavelen > 32 / 1 ? "low" : "medium");
  }
  assert.deepEqual([...bands].sort(), ["high", "low", "medium"]);
});
