// Saving and loading checkpoints in Hugging Face's layout: save -> load round-trips bit-exactly
// for every architecture (every parameter and the logits), config.json carries torch_dtype
// (generation_config.json is tested in generation-config.test.ts),
// sharded checkpoints (model-0000i-of-0000n.safetensors + index) load to the same model, BF16
// and F16 files load cast to float32 (or kept in bfloat16 when asked), and a GPT-2 loaded
// without the "transformer." prefix is saved back the same way.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { torch } from "../../src/index.js";
import { AutoModelForCausalLM, createModel, loadModel, saveModel } from "../../src/models/auto.js";
import { isModelDirectory } from "../../src/models/config.js";
import type { CausalLM } from "../../src/models/causal-lm.js";
import type { RawConfig } from "../../src/models/config.js";
import { readHeader, saveCheckpoint } from "../../src/models/safetensors.js";
import { PROBE_IDS, probeLogits } from "../helpers/toy.js";

// Tiny models: one thread avoids thread-pool overhead on every small op (and contention).
torch.setNumThreads(1);

const VOCAB = 97;
const root = mkdtempSync(join(tmpdir(), "omni-dpo-models-ckpt-"));
after(() => rmSync(root, { recursive: true, force: true }));
let dirs = 0;
const newDir = (what: string) => join(root, `${dirs++}-${what}`);

const llamaBase = {
  vocab_size: VOCAB,
  hidden_size: 32,
  intermediate_size: 64,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  max_position_embeddings: 64,
  rms_norm_eps: 1e-6,
  rope_theta: 10000,
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
  },
  llama: { architectures: ["LlamaForCausalLM"], model_type: "llama", ...llamaBase, tie_word_embeddings: false },
  "llama (tied)": {
    architectures: ["LlamaForCausalLM"],
    model_type: "llama",
    ...llamaBase,
    tie_word_embeddings: true,
    head_dim: 16,
  },
  qwen2: { architectures: ["Qwen2ForCausalLM"], model_type: "qwen2", ...llamaBase },
  mistral: { architectures: ["MistralForCausalLM"], model_type: "mistral", ...llamaBase, sliding_window: 4 },
  "qwen3 (tied)": {
    architectures: ["Qwen3ForCausalLM"],
    model_type: "qwen3",
    ...llamaBase,
    head_dim: 8,
    tie_word_embeddings: true,
  },
  "phi3 (longrope)": {
    architectures: ["Phi3ForCausalLM"],
    model_type: "phi3",
    ...llamaBase,
    partial_rotary_factor: 0.5,
    original_max_position_embeddings: 8,
    rope_scaling: { type: "longrope", short_factor: [1, 1.5], long_factor: [2, 4] },
  },
};

/** A model with every parameter random (biases and norm weights too). */
function makeModel(config: RawConfig, seed: number): CausalLM {
  torch.manualSeed(seed);
  const model = createModel(config, { std: 0.2 });
  torch.noGrad(() =>
    torch.tidy(() => {
      for (const [name, p] of model.namedParameters()) {
        let v = torch.randn(p.shape).mul(0.2);
        if (/norm|ln_/.test(name) && name.endsWith("weight")) v = v.add(1);
        model.setParameter(name, v);
      }
    }),
  );
  return model.eval();
}

function bytesOf(t: torch.Tensor): Buffer {
  const d = t.data();
  return Buffer.from(d.buffer, d.byteOffset, d.byteLength);
}

/** Every parameter of `b` has the name, shape, dtype and exact bytes of `a`'s (after `map`). */
function assertSameParameters(a: CausalLM, b: CausalLM, map: (t: torch.Tensor) => torch.Tensor = (t) => t): void {
  const pa = a.namedParameters(),
    pb = new Map(b.namedParameters());
  assert.deepEqual([...pb.keys()].sort(), pa.map(([n]) => n).sort());
  torch.tidy(() => {
    for (const [name, p] of pa) {
      const q = pb.get(name)!;
      const expected = map(p.detach());
      assert.deepEqual(q.shape, expected.shape, name);
      assert.equal(q.dtype, expected.dtype, name);
      assert.ok(bytesOf(expected).equals(bytesOf(q.detach())), `${name}: values differ`);
    }
  });
}

function assertBitEqual(a: Float32Array, b: Float32Array, what: string): void {
  assert.equal(a.length, b.length);
  assert.ok(
    Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength)),
    `${what}: logits differ`,
  );
}

const readJson = (file: string) => JSON.parse(readFileSync(file, "utf8"));

let seed = 100;
for (const [name, config] of Object.entries(CONFIGS)) {
  test(`save -> load round-trips bit-exactly: ${name}`, () => {
    const model = makeModel(config, seed++);
    const dir = newDir(name);
    saveModel(model, dir);
    assert.ok(isModelDirectory(dir));
    assert.deepEqual(readdirSync(dir).sort(), ["config.json", "generation_config.json", "model.safetensors"]);
    const written = readJson(join(dir, "config.json"));
    assert.equal(written.torch_dtype, "float32");
    for (const [k, v] of Object.entries(config)) assert.deepEqual(written[k], v, `config.json field ${k}`);
    // tied models store no lm_head; untied ones do
    const names = [...readHeader(join(dir, "model.safetensors")).tensors.keys()];
    assert.equal(
      names.includes("lm_head.weight"),
      name !== "gpt2" && config.tie_word_embeddings !== true,
      `lm_head.weight stored: ${names.includes("lm_head.weight")}`,
    );
    assert.deepEqual(
      names.sort(),
      model
        .namedParameters()
        .map(([n]) => n)
        .sort(),
    );

    const loaded = loadModel(dir);
    assert.equal(loaded.training, false, "loaded models start in eval mode");
    assert.equal(loaded.architecture, model.architecture);
    assertSameParameters(model, loaded);
    assertBitEqual(probeLogits(loaded), probeLogits(model), name);
    // and once more: a loaded model saves to the same bytes
    const again = newDir(`${name}-again`);
    saveModel(loaded, again);
    assert.ok(
      readFileSync(join(again, "model.safetensors")).equals(readFileSync(join(dir, "model.safetensors"))),
      "re-saved weights differ",
    );
    model.dispose();
    loaded.dispose();
  });
}

test("AutoModelForCausalLM.fromPretrained loads the same model as loadModel", async () => {
  const model = makeModel(CONFIGS.qwen2, 7);
  const dir = newDir("auto");
  saveModel(model, dir);
  const loaded = await AutoModelForCausalLM.fromPretrained(dir);
  assert.equal(loaded.architecture, "qwen2");
  assertSameParameters(model, loaded);
  model.dispose();
  loaded.dispose();
});

test("sharded checkpoints: model-0000i-of-0000n.safetensors plus an index, loading to the same model", () => {
  for (const name of ["gpt2", "llama"]) {
    const model = makeModel(CONFIGS[name], seed++);
    const dir = newDir(`${name}-sharded`);
    saveModel(model, dir, { maxShardBytes: 10_000 });
    const files = readdirSync(dir).sort();
    const shards = files.filter((f) => f.endsWith(".safetensors"));
    assert.ok(shards.length >= 3, `${name}: only ${shards.length} shards`);
    assert.ok(!files.includes("model.safetensors"));
    shards.forEach((f, i) =>
      assert.equal(
        f,
        `model-${String(i + 1).padStart(5, "0")}-of-${String(shards.length).padStart(5, "0")}.safetensors`,
      ),
    );
    const index = readJson(join(dir, "model.safetensors.index.json"));
    const params = model.namedParameters();
    assert.deepEqual(Object.keys(index.weight_map).sort(), params.map(([n]) => n).sort());
    assert.equal(
      index.metadata.total_size,
      params.reduce((s, [, p]) => s + p.numel() * 4, 0),
    );
    let inShards = 0;
    for (const shard of shards) {
      const header = readHeader(join(dir, shard));
      for (const t of header.tensors.keys()) assert.equal(index.weight_map[t], shard, `${t} is in ${shard}`);
      inShards += header.tensors.size;
      // no shard is above the limit, unless it holds a single tensor bigger than it
      const size = [...header.tensors.values()].reduce((s, info) => s + info.data_offsets[1] - info.data_offsets[0], 0);
      assert.ok(size <= 10_000 || header.tensors.size === 1, `${shard}: ${size} bytes`);
    }
    assert.equal(inShards, params.length);

    const loaded = loadModel(dir);
    assertSameParameters(model, loaded);
    assertBitEqual(probeLogits(loaded), probeLogits(model), `${name} sharded`);

    // saving the same directory unsharded replaces the index by one file
    saveModel(loaded, dir);
    assert.ok(readdirSync(dir).includes("model.safetensors"));
    assert.ok(!readdirSync(dir).includes("model.safetensors.index.json"));
    const reloaded = loadModel(dir);
    assertSameParameters(model, reloaded);
    model.dispose();
    loaded.dispose();
    reloaded.dispose();
  }
});

test("BF16 checkpoints: written as BF16 with torch_dtype bfloat16, loaded cast to float32", () => {
  for (const name of ["gpt2", "llama (tied)"]) {
    const model = makeModel(CONFIGS[name], seed++);
    const dir = newDir(`${name}-bf16`);
    saveModel(model, dir, { dtype: "bfloat16" });
    assert.equal(readJson(join(dir, "config.json")).torch_dtype, "bfloat16");
    const header = readHeader(join(dir, "model.safetensors"));
    for (const [t, info] of header.tensors) assert.equal(info.dtype, "BF16", t);

    const loaded = loadModel(dir);
    // float32 parameters holding exactly the bf16-rounded values
    assertSameParameters(model, loaded, (t) => t.to("bfloat16").to("float32"));
    const a = probeLogits(loaded),
      b = probeLogits(model);
    let worst = 0;
    for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
    assert.ok(worst > 0 && worst < 0.5, `${name}: bf16 rounding moved logits by ${worst}`);

    // asked for, the weights stay in bfloat16
    const bf16 = loadModel(dir, { dtype: "bfloat16" });
    assertSameParameters(model, bf16, (t) => t.to("bfloat16"));
    const out = torch.noGrad(() => torch.tidy(() => bf16.forward(torch.tensor(PROBE_IDS, { dtype: "int64" })).dtype));
    assert.equal(out, "bfloat16");

    // and a float32 save of the bf16-loaded model round-trips it exactly
    const dir32 = newDir(`${name}-bf16-then-f32`);
    saveModel(loaded, dir32);
    assert.equal(readJson(join(dir32, "config.json")).torch_dtype, "float32");
    const back = loadModel(dir32);
    assertSameParameters(loaded, back);
    back.dispose();
    model.dispose();
    loaded.dispose();
    bf16.dispose();
  }
});

test("F16 checkpoints load cast to float32", () => {
  const model = makeModel(CONFIGS.mistral, seed++);
  const dir = newDir("mistral-f16");
  saveModel(model, dir, { dtype: "float16" });
  assert.equal(readJson(join(dir, "config.json")).torch_dtype, "float16");
  for (const info of readHeader(join(dir, "model.safetensors")).tensors.values()) assert.equal(info.dtype, "F16");
  const loaded = loadModel(dir);
  assertSameParameters(model, loaded, (t) => t.to("float16").to("float32"));
  model.dispose();
  loaded.dispose();
});

test("GPT-2 loaded without the transformer. prefix is saved back without it", () => {
  const model = makeModel(CONFIGS.gpt2, seed++);
  const dir = newDir("gpt2-unprefixed");
  saveModel(model, dir);
  torch.tidy(() =>
    saveCheckpoint(
      dir,
      model.namedParameters().map(([n, p]) => [n.replace(/^transformer\./, ""), p.detach()]),
    ),
  );
  const loaded = loadModel(dir);
  assertSameParameters(model, loaded);
  assertBitEqual(probeLogits(loaded), probeLogits(model), "gpt2 unprefixed");
  const out = newDir("gpt2-unprefixed-resaved");
  saveModel(loaded, out);
  const names = [...readHeader(join(out, "model.safetensors")).tensors.keys()];
  assert.ok(names.includes("wte.weight") && names.includes("h.0.attn.c_attn.weight"), names.join(", "));
  assert.ok(!names.some((n) => n.startsWith("transformer.")), names.join(", "));
  // a stored lm_head.weight (tied to wte) is accepted
  torch.tidy(() =>
    saveCheckpoint(dir, [
      ...model.namedParameters().map(([n, p]) => [n, p.detach()] as [string, torch.Tensor]),
      [
        "lm_head.weight",
        model
          .namedParameters()
          .find(([n]) => n === "transformer.wte.weight")![1]
          .detach(),
      ],
    ]),
  );
  const withHead = loadModel(dir);
  assertSameParameters(model, withHead);
  model.dispose();
  loaded.dispose();
  withHead.dispose();
});
