// Qwen3 and Phi-3: logits against an independent PyTorch implementation written from
// transformers' modeling code (test/models/reference_archs2.py, reading the same checkpoint
// directory), unpadded, right- and left-padded, in float32 at 1e-4, for plain, sharded and BF16
// checkpoints; Phi-3's LongRoPE on both sides of original_max_position_embeddings; LoRA
// all-linear on the fused layers; the config errors. KV-cache generation, round trips and
// gradient checkpointing are in generate.test.ts, checkpoint.test.ts and checkpointing.test.ts.
// One python process serves the file; parity skips, with the reason printed, without torch.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createModel, loadModel, saveModel, torch } from "../../src/index.js";
import type { CausalLM } from "../../src/models/causal-lm.js";
import type { RawConfig } from "../../src/models/config.js";
import { KVCache } from "../../src/models/cache.js";
import { attachLora } from "../../src/nn/lora.js";
import { runPythonJson } from "../../src/util/python.js";
import { once } from "../helpers/python.js";
import { skipUnless } from "../helpers/requirements.js";
import { paddedBatches, randomizeParameters, type Batch } from "../helpers/batches.js";

const skip = skipUnless("torch");

torch.setNumThreads(1);
const TOL = 1e-4;
const VOCAB = 71;
const REFERENCE = fileURLToPath(new URL("../../../test/models/reference_archs2.py", import.meta.url));
const root = mkdtempSync(join(tmpdir(), "omni-dpo-archs2-"));
after(() => rmSync(root, { recursive: true, force: true }));

const base = {
  vocab_size: VOCAB,
  hidden_size: 32,
  intermediate_size: 48,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  max_position_embeddings: 64,
  hidden_act: "silu",
};
const LONGROPE = {
  type: "longrope",
  short_factor: [1, 1.5, 2, 3],
  long_factor: [2, 4, 8, 16],
};

const ARCHS2_CONFIGS: Record<string, RawConfig> = {
  "qwen3 (GQA, head_dim 16 = 2 x hidden / heads)": {
    architectures: ["Qwen3ForCausalLM"],
    model_type: "qwen3",
    ...base,
    num_key_value_heads: 2,
    head_dim: 16,
    rope_theta: 1000000,
    rms_norm_eps: 1e-6,
  },
  "qwen3 (tied, attention_bias, window 3 from layer 1)": {
    architectures: ["Qwen3ForCausalLM"],
    model_type: "qwen3",
    ...base,
    num_key_value_heads: 4,
    head_dim: 8,
    tie_word_embeddings: true,
    attention_bias: true,
    use_sliding_window: true,
    sliding_window: 3,
    max_window_layers: 1,
  },
  "phi3 (fused projections, GQA)": {
    architectures: ["Phi3ForCausalLM"],
    model_type: "phi3",
    ...base,
    num_key_value_heads: 2,
    rope_theta: 10000,
    rope_scaling: null,
  },
  "phi3 (partial rotary 0.5, sliding window 4, tied)": {
    architectures: ["Phi3ForCausalLM"],
    model_type: "phi3",
    ...base,
    partial_rotary_factor: 0.5,
    sliding_window: 4,
    tie_word_embeddings: true,
  },
  // head_dim 8 (4 frequencies); original context 8, so 9-token batches use the long factors.
  "phi3 (longrope)": {
    architectures: ["Phi3ForCausalLM"],
    model_type: "phi3",
    ...base,
    num_key_value_heads: 2,
    original_max_position_embeddings: 8,
    rope_scaling: LONGROPE,
  },
};

function makeModel(config: RawConfig, seed: number): CausalLM {
  torch.manualSeed(seed);
  const model = createModel(config, { std: 0.2 });
  randomizeParameters(model, seed + 1000);
  return model.eval();
}

const batches = (lengths: number[], seed: number): Batch[] => paddedBatches(lengths, seed, VOCAB);

function logitsOf(model: CausalLM, batch: Batch): number[] {
  return torch.noGrad(() =>
    torch.tidy(() => {
      const mask = batch.mask ? torch.tensor(batch.mask, { dtype: "int64" }) : null;
      return Array.from(
        model
          .forward(torch.tensor(batch.ids, { dtype: "int64" }), { attentionMask: mask })
          .to("float32")
          .data() as Float32Array,
      );
    }),
  );
}

/** Max |ours - reference| over non-padding positions. */
function maxDiff(ours: number[], ref: number[], batch: Batch): number {
  assert.equal(ours.length, ref.length, "logits sizes differ");
  const t = batch.ids[0].length,
    v = ours.length / (batch.ids.length * t);
  let worst = 0;
  for (let at = 0; at < ours.length; at++) {
    const row = Math.floor(at / (t * v)),
      pos = Math.floor(at / v) % t;
    if (batch.mask && batch.mask[row][pos] === 0) continue;
    const d = Math.abs(ours[at] - ref[at]);
    if (!(d <= worst)) worst = d; // NaN counts as worst
  }
  return worst;
}

interface Case {
  name: string;
  dir: string;
  model: CausalLM;
  batches: Batch[];
}

const prepared = once(() => {
  const cases: Case[] = [];
  let seed = 21;
  const variants: [string, string, { maxShardBytes?: number; dtype?: torch.DType }, number[]][] = [
    ...Object.keys(ARCHS2_CONFIGS).map((k) => [k, k, {}, [9, 6, 3]] as [string, string, object, number[]]),
    ["phi3 (longrope, within the original context)", "phi3 (longrope)", {}, [7, 4, 2]],
    [
      "qwen3, bfloat16 and sharded",
      "qwen3 (GQA, head_dim 16 = 2 x hidden / heads)",
      { dtype: "bfloat16", maxShardBytes: 4096 },
      [8, 5, 2],
    ],
    [
      "phi3, bfloat16 and sharded",
      "phi3 (partial rotary 0.5, sliding window 4, tied)",
      { dtype: "bfloat16", maxShardBytes: 4096 },
      [8, 5, 2],
    ],
  ];
  for (const [name, key, options, lengths] of variants) {
    const dir = join(root, name.replace(/[^a-z0-9]+/gi, "-"));
    const model = makeModel(ARCHS2_CONFIGS[key], seed++);
    saveModel(model, dir, options);
    model.dispose();
    if (options.maxShardBytes)
      assert.ok(readdirSync(dir).includes("model.safetensors.index.json"), `${name}: not sharded`);
    cases.push({ name, dir, model: loadModel(dir), batches: batches(lengths, seed * 19) });
  }
  const request = {
    cases: cases.flatMap((c) =>
      c.batches.map((b) => ({ task: "logits", dir: c.dir, input_ids: b.ids, attention_mask: b.mask })),
    ),
  };
  const response = runPythonJson<{ results: { values: number[] }[] }>(REFERENCE, request, { file: true });
  let at = 0;
  return { cases, refs: cases.map((c) => c.batches.map(() => response.results[at++].values)) };
});

const NAMES = [
  ...Object.keys(ARCHS2_CONFIGS),
  "phi3 (longrope, within the original context)",
  "qwen3, bfloat16 and sharded",
  "phi3, bfloat16 and sharded",
];
for (const name of NAMES) {
  test(`logits match the PyTorch reference: ${name}`, { skip }, () => {
    const { cases, refs } = prepared();
    const i = cases.findIndex((c) => c.name === name);
    const c = cases[i];
    c.batches.forEach((batch, j) => {
      const diff = maxDiff(logitsOf(c.model, batch), refs[i][j], batch);
      assert.ok(diff <= TOL, `${name}, ${batch.kind}: max |diff| ${diff} > ${TOL}`);
      const span = Math.max(...refs[i][j]) - Math.min(...refs[i][j]);
      assert.ok(span > 1, `${name}: logits span only ${span}`);
    });
  });
}

test("LongRoPE: the long factors change the logits once a position passes the original context", { skip }, () => {
  // Guards the two longrope cases against agreeing by accident: the same 9 tokens with the
  // short factors forced (a config whose long factors equal the short ones) give other logits.
  const { cases } = prepared();
  const long = cases.find((c) => c.name === "phi3 (longrope)")!;
  const shortOnly = createModel({
    ...long.model.config,
    rope_scaling: { ...LONGROPE, long_factor: LONGROPE.short_factor },
  });
  torch.noGrad(() => {
    for (const [n, p] of long.model.namedParameters()) shortOnly.setParameter(n, p.detach().clone());
  });
  const batch = long.batches[0];
  assert.ok(maxDiff(logitsOf(shortOnly, batch), logitsOf(long.model, batch), batch) > 1e-2);
  // Within the original context the two agree exactly.
  const inside = { kind: "short", ids: batch.ids.map((r) => r.slice(0, 8)), mask: null };
  assert.deepEqual(logitsOf(shortOnly, inside), logitsOf(long.model, inside));
  shortOnly.dispose();
});

test("LongRoPE: a KV cache that crosses original_max_position_embeddings is refused, not silently wrong", () => {
  const model = makeModel(ARCHS2_CONFIGS["phi3 (longrope)"], 5);
  const cache = new KVCache(model.numLayers);
  torch.noGrad(() =>
    torch.tidy(() => {
      model.forward(torch.tensor([[1, 2, 3, 4, 5, 6, 7, 8]], { dtype: "int64" }), { cache });
      assert.throws(
        () => model.forward(torch.tensor([[9]], { dtype: "int64" }), { cache }),
        /LongRoPE: this step reaches position 9, past original_max_position_embeddings 8, with 8 cached positions/,
      );
    }),
  );
  cache.dispose();
  model.dispose();
});

test("LoRA all-linear finds Phi-3's fused qkv_proj and gate_up_proj, and Qwen3's projections (not its norms)", () => {
  for (const [key, want] of [
    ["phi3 (fused projections, GQA)", ["down_proj", "gate_up_proj", "o_proj", "qkv_proj"]],
    [
      "qwen3 (GQA, head_dim 16 = 2 x hidden / heads)",
      ["down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj"],
    ],
  ] as const) {
    const model = makeModel(ARCHS2_CONFIGS[key], 3);
    const lora = attachLora(model, {
      r: 2,
      alpha: 4,
      dropout: 0,
      targetModules: "all-linear",
      modulesToSave: [],
      useRslora: false,
    });
    assert.deepEqual([...lora.settings.targetModules].sort(), want, key);
    assert.equal(lora.layers.length, 2 * want.length);
    model.dispose();
  }
});

test("config errors name the field", () => {
  const phi3 = ARCHS2_CONFIGS["phi3 (longrope)"];
  assert.throws(
    () => createModel({ ...phi3, rope_scaling: { type: "dynamic", factor: 2 } }),
    /config.json: field rope_scaling.rope_type 'dynamic' is not supported for Phi-3 \(default or longrope\)/,
  );
  assert.throws(
    () => createModel({ ...phi3, rope_scaling: { ...LONGROPE, long_factor: [1, 2] } }),
    /config.json: field rope_scaling.long_factor must be a list of 4 positive numbers/,
  );
  assert.throws(
    () => createModel({ ...phi3, partial_rotary_factor: 0.1 }),
    /config.json: field partial_rotary_factor 0.1 gives 0 rotary dimensions/,
  );
  assert.throws(
    () => createModel({ ...ARCHS2_CONFIGS["phi3 (fused projections, GQA)"], hidden_act: "gelu" }),
    /config.json: hidden_act 'gelu' is not supported/,
  );
  // Qwen3Config's defaults: head_dim 128 when absent, the window only with use_sliding_window.
  const { head_dim: _, ...noHeadDim } = ARCHS2_CONFIGS["qwen3 (GQA, head_dim 16 = 2 x hidden / heads)"];
  const m = createModel(noHeadDim);
  assert.deepEqual(m.namedParameters().find(([n]) => n === "model.layers.0.self_attn.q_proj.weight")![1].shape, [
    4 * 128,
    32,
  ]);
  assert.deepEqual(m.namedParameters().find(([n]) => n === "model.layers.0.self_attn.q_norm.weight")![1].shape, [128]);
  m.dispose();
});
