// Gemma 2 and Gemma 3 text through everything the other architectures support: checkpoints
// round-trip (plain, sharded, bf16); a KV cache gives the uncached logits also when the cache
// outgrows the sliding window; gradient checkpointing and the chunked log-probs (the final
// soft-capping inside the chunked head) equal the full-logits path; LoRA's all-linear targets
// every projection; config.json's layer pattern, rope and activation fields are read as
// transformers reads them, and unsupported values are errors naming the field.
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { torch, createModel } from "../../src/index.js";
import { loadModel, saveModel } from "../../src/models/auto.js";
import { KVCache } from "../../src/models/cache.js";
import { generate } from "../../src/models/generate.js";
import type { CausalLM } from "../../src/models/causal-lm.js";
import type { RawConfig } from "../../src/models/config.js";
import { gemma2Config } from "../../src/models/gemma2.js";
import { gemma3TextConfig } from "../../src/models/gemma3.js";
import { readHeader } from "../../src/models/safetensors.js";
import { attachLora } from "../../src/nn/lora.js";
import { RecomputeTape } from "../../src/nn/recompute.js";
import type { PaddedBatch } from "../../src/data/tokenize.js";
import { batchTensors, concatenatedForward, sequenceLogps } from "../../src/logprobs/forward.js";
import { GEMMA_CONFIGS, randomGemma } from "../helpers/gemma.js";
import { maxAbsDiff, probeLogits } from "../helpers/toy.js";

torch.setNumThreads(1);
const root = mkdtempSync(join(tmpdir(), "omni-dpo-gemma-"));
after(() => rmSync(root, { recursive: true, force: true }));
const ARCHS = { gemma2: GEMMA_CONFIGS.gemma2, gemma3_text: GEMMA_CONFIGS.gemma3_text };
const VOCAB = GEMMA_CONFIGS.gemma2.vocab_size as number;

const bytes = (t: torch.Tensor) => {
  const d = t.data();
  return Buffer.from(d.buffer, d.byteOffset, d.byteLength);
};

function assertSameWeights(a: CausalLM, b: CausalLM): void {
  const theirs = new Map(b.namedParameters());
  assert.deepEqual(
    [...theirs.keys()].sort(),
    a
      .namedParameters()
      .map(([n]) => n)
      .sort(),
  );
  for (const [name, p] of a.namedParameters()) {
    const q = theirs.get(name)!;
    assert.equal(q.dtype, p.dtype, name);
    assert.ok(bytes(p.detach()).equals(bytes(q.detach())), `${name}: values differ`);
  }
}

for (const [name, config] of Object.entries(ARCHS)) {
  describe(`${name}: checkpoints`, () => {
    it("save -> load round-trips bit-exactly: weights, logits, config.json; tied heads store no lm_head", () => {
      const model = randomGemma(config, 5);
      const dir = join(root, `${name}-plain`);
      saveModel(model, dir);
      const written = JSON.parse(readFileSync(join(dir, "config.json"), "utf8"));
      for (const [k, v] of Object.entries(config)) assert.deepEqual(written[k], v, `config.json field ${k}`);
      const stored = [...readHeader(join(dir, "model.safetensors")).tensors.keys()];
      assert.ok(!stored.includes("lm_head.weight"), "a tied model stores no lm_head.weight");
      assert.ok(stored.includes("model.layers.0.pre_feedforward_layernorm.weight"));
      assert.equal(stored.includes("model.layers.0.self_attn.q_norm.weight"), name === "gemma3_text");
      const loaded = loadModel(dir);
      assert.equal(loaded.architecture, name);
      assertSameWeights(model, loaded);
      assert.ok(
        bytes(torch.tensor(probeLogits(loaded))).equals(bytes(torch.tensor(probeLogits(model)))),
        "logits differ",
      );
      const again = join(root, `${name}-again`);
      saveModel(loaded, again);
      assert.ok(
        readFileSync(join(again, "model.safetensors")).equals(readFileSync(join(dir, "model.safetensors"))),
        "re-saved weights differ",
      );
      model.dispose();
      loaded.dispose();
    });

    it("sharded bf16: written as BF16 shards with an index, loaded back as bf16 ('auto') with the same bytes", () => {
      const model = randomGemma(config, 6, "bfloat16");
      const dir = join(root, `${name}-bf16-sharded`);
      saveModel(model, dir, { maxShardBytes: 4096 });
      const files = readdirSync(dir);
      assert.ok(files.includes("model.safetensors.index.json") && !files.includes("model.safetensors"));
      const shards = files.filter((f) => f.endsWith(".safetensors"));
      assert.ok(shards.length >= 3, `only ${shards.length} shards`);
      for (const f of shards) for (const t of readHeader(join(dir, f)).tensors.values()) assert.equal(t.dtype, "BF16");
      assert.equal(JSON.parse(readFileSync(join(dir, "config.json"), "utf8")).torch_dtype, "bfloat16");
      const loaded = loadModel(dir, { dtype: "auto" });
      assertSameWeights(model, loaded);
      assert.ok(maxAbsDiff(probeLogits(loaded), probeLogits(model)) === 0);
      model.dispose();
      loaded.dispose();
    });
  });

  it(`${name}: cached decoding gives the uncached logits, left-padded, with the cache far past the sliding window`, () => {
    const model = randomGemma(config, 7);
    const window = config.sliding_window as number;
    // Row 1 is left-padded by 3; 5 prompt tokens then 9 one at a time: 14 positions, window 3 or 4.
    const ids = [
      [5, 17, 3, 88, 42, 9, 61, 23, 70, 11, 4, 56, 31, 8],
      [0, 0, 0, 12, 7, 33, 2, 90, 14, 65, 38, 19, 44, 27],
    ];
    const mask = ids.map((row, r) => row.map((_, j) => (r === 1 && j < 3 ? 0 : 1)));
    assert.ok(ids[0].length > 3 * window);
    torch.noGrad(() =>
      torch.tidy(() => {
        const full = model.forward(torch.tensor(ids, { dtype: "int64" }), {
          attentionMask: torch.tensor(mask, { dtype: "int64" }),
        }); // [2, 14, V]
        const cache = new KVCache(model.numLayers);
        const prefill = 5;
        const parts = [
          model.forward(
            torch.tensor(
              ids.map((r) => r.slice(0, prefill)),
              { dtype: "int64" },
            ),
            {
              attentionMask: torch.tensor(
                mask.map((r) => r.slice(0, prefill)),
                { dtype: "int64" },
              ),
              cache,
            },
          ),
        ];
        for (let t = prefill; t < ids[0].length; t++) {
          parts.push(
            model.forward(
              torch.tensor(
                ids.map((r) => [r[t]]),
                { dtype: "int64" },
              ),
              {
                attentionMask: torch.tensor(
                  mask.map((r) => r.slice(0, t + 1)),
                  { dtype: "int64" },
                ),
                cache,
              },
            ),
          );
        }
        assert.equal(cache.length, ids[0].length);
        const cached = torch.cat(parts, 1); // [2, 14, V]
        // Compare real positions only (row 1's padding positions attend nothing).
        const keep = torch.tensor(mask, { dtype: "bool" }).unsqueeze(-1);
        const diff = full.sub(cached).abs().maskedFill(keep.logicalNot(), 0).max().item();
        assert.ok(diff < 1e-5, `cached logits differ by ${diff}`);
        cache.dispose();
      }),
    );
    model.dispose();
  });
}

// ---- gradient checkpointing and the chunked log-probs -----------------------------------------

/** Two pairs (4 rows), prompts of 3 to 5 tokens, responses of 2 to 9: longer than the window and the chunk. */
function pairBatch(side: "right" | "left"): PaddedBatch {
  const rows = [
    [5, 3, 2],
    [7, 9, 1, 4],
    [6, 2, 8, 3, 5],
    [1, 1, 2],
  ].map((prompt, r) => {
    const response = Array.from({ length: [9, 2, 6, 4][r] }, (_, i) => (7 * r + 3 * i + 11) % VOCAB);
    return { ids: [...prompt, ...response], labels: [...prompt.map(() => -100), ...response] };
  });
  const length = Math.max(...rows.map((r) => r.ids.length));
  const pad = (xs: number[], value: number) => {
    const fill = new Array(length - xs.length).fill(value);
    return side === "right" ? [...xs, ...fill] : [...fill, ...xs];
  };
  return {
    inputIds: rows.map((r) => pad(r.ids, 0)),
    attentionMask: rows.map((r) =>
      pad(
        r.ids.map(() => 1),
        0,
      ),
    ),
    labels: rows.map((r) => pad(r.labels, -100)),
  };
}

/** Per-sequence log-probs and every parameter's gradient under a loss that weighs each row differently. */
function logpsAndGrads(
  model: CausalLM,
  run: () => { chosen: torch.Tensor; rejected: torch.Tensor },
  after?: () => void,
) {
  const logps = torch.tidy(() => {
    const { chosen, rejected } = run();
    chosen
      .mul(torch.tensor([0.7, -1.3], { dtype: chosen.dtype }))
      .sum()
      .add(rejected.mul(torch.tensor([0.4, 2.1], { dtype: chosen.dtype })).sum())
      .backward();
    after?.();
    return [...(chosen.toArray() as number[]), ...(rejected.toArray() as number[])];
  });
  const grads = new Map(
    model.namedParameters().map(([n, p]) => {
      assert.ok(p.grad, `${n} got no gradient`);
      const g = p.grad.flatten().toArray() as number[];
      p.zeroGrad();
      return [n, g];
    }),
  );
  return { logps, grads };
}

function assertClose(a: number[], b: number[], tol: number, what: string) {
  let worst = 0;
  for (let i = 0; i < b.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]) / Math.max(1, Math.abs(b[i])));
  assert.ok(a.length === b.length && worst <= tol, `${what}: differs by ${worst} (tolerance ${tol})`);
}

for (const [name, config] of Object.entries(ARCHS)) {
  for (const [dtype, tol, side] of [
    ["float64", 1e-10, "right"],
    ["float32", 1e-5, "left"],
  ] as const) {
    it(`${name}, ${dtype}, ${side} padding: checkpointed, chunked log-probs and gradients equal the full-logits path`, () => {
      const model = randomGemma(config, 8, dtype);
      const batch = pairBatch(side);
      const half = batch.inputIds.length / 2;
      const want = logpsAndGrads(model, () => {
        const { inputIds, attentionMask, labels } = batchTensors(batch);
        const lp = sequenceLogps(model.forward(inputIds, { attentionMask }), labels, true).logps;
        return { chosen: lp.narrow(0, 0, half), rejected: lp.narrow(0, half, half) };
      });
      for (const checkpointing of [false, true]) {
        const tape = new RecomputeTape();
        // 21 response tokens in chunks of 4: chunks cut rows and the chosen/rejected boundary.
        const got = logpsAndGrads(
          model,
          () =>
            concatenatedForward(model, batch, true, {
              recompute: tape,
              gradientCheckpointing: checkpointing,
              chunkRows: 4,
            }),
          () => tape.backward(),
        );
        assertClose(got.logps, want.logps, tol, `checkpointing ${checkpointing}: log-probs`);
        for (const [n, g] of want.grads)
          assertClose(got.grads.get(n)!, g, tol, `checkpointing ${checkpointing}: gradient of ${n}`);
      }
      model.dispose();
    });
  }
}

it("forward, cached generation and a checkpointed backward leave no tensor alive (both rotary tables freed with the model)", () => {
  const before = torch.memory().tensors;
  for (const config of Object.values(GEMMA_CONFIGS)) {
    const model = randomGemma(config, 10);
    generate(
      model,
      [
        [3, 1, 4, 1, 5],
        [9, 2],
      ],
      { maxNewTokens: 8 },
    );
    const tape = new RecomputeTape();
    torch.tidy(() => {
      const out = concatenatedForward(model, pairBatch("right"), true, {
        recompute: tape,
        gradientCheckpointing: true,
        chunkRows: 4,
      });
      out.chosen.sum().add(out.rejected.sum()).backward();
    });
    tape.backward();
    model.dispose();
  }
  assert.equal(torch.memory().tensors, before);
});

// ---- LoRA and config.json ------------------------------------------------------------------------

it("LoRA all-linear adapts every attention and MLP projection of every layer, not the head, and starts as the base model", () => {
  const config: RawConfig = { ...GEMMA_CONFIGS.gemma3_text, tie_word_embeddings: false };
  const model = randomGemma(config, 9);
  const before = probeLogits(model);
  const lora = attachLora(model, {
    r: 2,
    alpha: 4,
    dropout: 0,
    targetModules: "all-linear",
    modulesToSave: [],
    useRslora: false,
  });
  const names = lora.layers.map((l) => l.name).sort();
  const expected = Array.from({ length: config.num_hidden_layers as number }, (_, i) =>
    [
      "self_attn.q_proj",
      "self_attn.k_proj",
      "self_attn.v_proj",
      "self_attn.o_proj",
      "mlp.gate_proj",
      "mlp.up_proj",
      "mlp.down_proj",
    ].map((m) => `model.layers.${i}.${m}`),
  )
    .flat()
    .sort();
  assert.deepEqual(names, expected);
  assert.equal(maxAbsDiff(probeLogits(model), before), 0, "B starts at zero: the adapted model is the base model");
  model.dispose();
});

describe("config.json as transformers reads it", () => {
  const gemma2 = (extra: RawConfig) => gemma2Config({ ...GEMMA_CONFIGS.gemma2, num_hidden_layers: 6, ...extra });
  const gemma3 = (extra: RawConfig) =>
    gemma3TextConfig({
      ...GEMMA_CONFIGS.gemma3_text,
      num_hidden_layers: 12,
      sliding_window_pattern: undefined,
      ...extra,
    });

  it("sliding layers: Gemma 2's even layers, Gemma 3's five local to one global, layer_types when given", () => {
    assert.deepEqual(gemma2({}).slidingLayers, [true, false, true, false, true, false]);
    assert.deepEqual(gemma3({}).slidingLayers, [
      true,
      true,
      true,
      true,
      true,
      false,
      true,
      true,
      true,
      true,
      true,
      false,
    ]);
    assert.deepEqual(gemma3({ sliding_window_pattern: 2 }).slidingLayers.slice(0, 4), [true, false, true, false]);
    const types = [
      "full_attention",
      "sliding_attention",
      "full_attention",
      "full_attention",
      "sliding_attention",
      "full_attention",
    ];
    assert.deepEqual(
      gemma2({ layer_types: types }).slidingLayers,
      types.map((t) => t === "sliding_attention"),
    );
  });

  it("defaults: Gemma 2 caps at 50 and 30 and windows 4096; Gemma 3 caps nothing, rope 1e6 global and 1e4 local", () => {
    const raw: RawConfig = {
      architectures: ["Gemma2ForCausalLM"],
      vocab_size: 10,
      hidden_size: 8,
      intermediate_size: 16,
      num_hidden_layers: 2,
      num_attention_heads: 2,
    };
    const g2 = gemma2Config(raw);
    assert.deepEqual(
      [g2.attentionSoftcap, g2.finalSoftcap, g2.slidingWindow, g2.headDim, g2.attentionScale, g2.tied],
      [50, 30, 4096, 256, 1 / 16, true],
    );
    const g3 = gemma3TextConfig(raw);
    assert.deepEqual(
      [g3.attentionSoftcap, g3.finalSoftcap, g3.globalRope.theta, g3.localRope.theta, g3.qkNorm],
      [null, null, 1e6, 1e4, true],
    );
    assert.deepEqual(
      gemma3({ rope_scaling: { rope_type: "linear", factor: 8 } }).localRope.scaling,
      null,
      "scaling is for global layers only",
    );
  });

  it("unsupported or malformed fields are errors naming the field", () => {
    assert.throws(
      () => gemma3({ rope_scaling: { rope_type: "yarn", factor: 8 } }),
      /config\.json: field rope_scaling: rope type 'yarn' is not supported for gemma3_text \(supported: default, linear\)/,
    );
    assert.throws(
      () => gemma3({ rope_scaling: { rope_type: "linear" } }),
      /rope_scaling: linear scaling needs a positive factor/,
    );
    assert.throws(
      () => gemma2({ hidden_activation: "silu" }),
      /config\.json: hidden_activation 'silu' is not supported/,
    );
    assert.equal(
      gemma2({ hidden_activation: null, hidden_act: "silu" }).gelu,
      "tanh",
      "hidden_act is not Gemma's key (transformers ignores it)",
    );
    assert.equal(gemma3({ hidden_activation: "gelu" }).gelu, "none");
    assert.throws(
      () => gemma2({ layer_types: ["full_attention"] }),
      /config\.json: field layer_types must list 6 entries/,
    );
    assert.throws(
      () => gemma2({ final_logit_softcapping: "30" }),
      /field final_logit_softcapping must be a positive number or null/,
    );
    assert.throws(() => gemma3({ use_bidirectional_attention: true }), /use_bidirectional_attention/);
    assert.throws(
      () => createModel({ ...GEMMA_CONFIGS.gemma2, num_key_value_heads: 3 }),
      /num_attention_heads 4 is not a multiple of num_key_value_heads 3/,
    );
  });
});
