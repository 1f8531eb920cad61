// Generation (src/models/generate.ts) on tiny random models of every architecture: the KV cache
// changes nothing (greedy, and seeded sampling with temperature / top-k / top-p); a left-padded
// batch generates what each prompt generates alone; EOS ends a row (finishReasons says so) and
// leaves the other rows alone; maxNewTokens is respected; a seed reproduces samples; stop strings
// end generation through the decode function.
import { test } from "node:test";
import assert from "node:assert/strict";
import { torch } from "../../src/index.js";
import { createModel } from "../../src/models/auto.js";
import type { CausalLM } from "../../src/models/causal-lm.js";
import type { RawConfig } from "../../src/models/config.js";
import { KVCache } from "../../src/models/cache.js";
import { generate, pickTokens, type GenerateOptions } from "../../src/models/generate.js";

// Tiny models: one thread avoids thread-pool overhead on every small op (and contention).
torch.setNumThreads(1);

const VOCAB = 97;
const llamaBase = {
  vocab_size: VOCAB,
  hidden_size: 32,
  intermediate_size: 64,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  max_position_embeddings: 64,
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
  llama: { architectures: ["LlamaForCausalLM"], model_type: "llama", ...llamaBase },
  "llama 3 (rope_scaling, tied)": {
    architectures: ["LlamaForCausalLM"],
    model_type: "llama",
    ...llamaBase,
    hidden_size: 48,
    head_dim: 24,
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
  qwen2: { architectures: ["Qwen2ForCausalLM"], model_type: "qwen2", ...llamaBase },
  "qwen2 (sliding window on layer 1 only)": {
    architectures: ["Qwen2ForCausalLM"],
    model_type: "qwen2",
    ...llamaBase,
    use_sliding_window: true,
    sliding_window: 3,
    max_window_layers: 1,
  },
  "mistral (sliding_window 4)": {
    architectures: ["MistralForCausalLM"],
    model_type: "mistral",
    ...llamaBase,
    sliding_window: 4,
  },
  "qwen3 (q/k norms, window 3 on layer 1)": {
    architectures: ["Qwen3ForCausalLM"],
    model_type: "qwen3",
    ...llamaBase,
    head_dim: 16,
    use_sliding_window: true,
    sliding_window: 3,
    max_window_layers: 1,
  },
  "phi3 (partial rotary, longrope within its original context, sliding_window 5)": {
    architectures: ["Phi3ForCausalLM"],
    model_type: "phi3",
    ...llamaBase,
    partial_rotary_factor: 0.5,
    sliding_window: 5,
    original_max_position_embeddings: 32,
    rope_scaling: { type: "longrope", short_factor: [1, 1.5], long_factor: [2, 4] },
  },
};

/** A model with every parameter random (biases and norm weights too), peaked enough that greedy paths vary. */
function makeModel(config: RawConfig, seed: number): CausalLM {
  torch.manualSeed(seed);
  const model = createModel(config, { std: 0.2 });
  torch.noGrad(() =>
    torch.tidy(() => {
      for (const [name, p] of model.namedParameters()) {
        let v = torch.randn(p.shape).mul(name.includes("wpe") ? 0.5 : 0.3);
        if (/norm|ln_/.test(name) && name.endsWith("weight")) v = v.mul(0.3).add(1);
        model.setParameter(name, v);
      }
    }),
  );
  return model.eval();
}

const models = new Map<string, CausalLM>();
function model(name: string): CausalLM {
  if (!models.has(name)) models.set(name, makeModel(CONFIGS[name], 10 + models.size));
  return models.get(name)!;
}

// Prompts of different lengths, so the batch is left-padded (longest 7).
const PROMPTS = [
  [11, 5, 42, 7, 3],
  [88, 2],
  [9, 31, 64, 20, 15, 77, 4],
];
const SAMPLING: GenerateOptions[] = [
  { temperature: 1 },
  { temperature: 0.7, topK: 10 },
  { temperature: 1.3, topP: 0.8 },
  { temperature: 0.9, topK: 20, topP: 0.9 },
];

for (const name of Object.keys(CONFIGS)) {
  test(`${name}: the KV cache changes nothing (greedy and seeded sampling)`, () => {
    const m = model(name);
    const greedy = generate(m, PROMPTS, { maxNewTokens: 12 });
    assert.deepEqual(generate(m, PROMPTS, { maxNewTokens: 12, useCache: false }), greedy);
    assert.ok(greedy.tokens.every((t) => t.length === 12));
    SAMPLING.forEach((options, i) => {
      const withCache = generate(m, PROMPTS, { ...options, maxNewTokens: 10, seed: 100 + i });
      const without = generate(m, PROMPTS, { ...options, maxNewTokens: 10, seed: 100 + i, useCache: false });
      assert.deepEqual(without, withCache, `sampling ${JSON.stringify(options)}`);
    });
  });

  test(`${name}: a left-padded batch generates what each prompt generates alone`, () => {
    const m = model(name);
    for (const useCache of [true, false]) {
      const batched = generate(m, PROMPTS, { maxNewTokens: 10, useCache });
      PROMPTS.forEach((prompt, i) => {
        const alone = generate(m, [prompt], { maxNewTokens: 10, useCache });
        assert.deepEqual(batched.tokens[i], alone.tokens[0], `prompt ${i}, useCache ${useCache}`);
      });
    }
  });
}

test("a decoding step's grouped-query attention gives the logits of the full forward (padding, windows)", () => {
  // A step of one token reads the cached keys and values once per key/value head (its query heads
  // as a group) instead of copied out to every head: the step's logits must be the full forward's
  // at that position, for left-padded rows and sliding windows alike.
  const rows = [
    [0, 0, 11, 5, 42, 7, 3, 19],
    [9, 31, 64, 20, 15, 77, 4, 50],
  ];
  const mask = rows.map((r, i) => r.map((_, j) => (i === 0 && j < 2 ? 0 : 1)));
  for (const name of ["llama", "qwen2 (sliding window on layer 1 only)", "qwen3 (q/k norms, window 3 on layer 1)"]) {
    const m = model(name);
    const [stepped, full] = torch.noGrad(() =>
      torch.tidy(() => {
        const ids = torch.tensor(rows, { dtype: "int64" }); // [2, 8]
        const attention = torch.tensor(mask, { dtype: "int64" });
        const expected = m.forward(ids, { attentionMask: attention }).select(1, 7); // [2, V]
        const cache = new KVCache(m.numLayers);
        try {
          m.forward(ids.narrow(1, 0, 7), { attentionMask: attention.narrow(1, 0, 7), cache });
          const step = m.forward(ids.narrow(1, 7, 1), { attentionMask: attention, cache }).select(1, 0); // [2, V]
          return [step.toArray() as number[][], expected.toArray() as number[][]];
        } finally {
          cache.dispose();
        }
      }),
    );
    stepped.forEach((row, i) =>
      row.forEach((x, v) => assert.ok(Math.abs(x - full[i][v]) < 1e-4, `${name}, row ${i}, logit ${v}`)),
    );
  }
});

test("greedy generation continues with the argmax of the full forward pass", () => {
  // Independent of generate's bookkeeping: each generated token is the argmax of the logits of
  // the whole sequence so far, recomputed from scratch.
  const m = model("llama");
  const prompt = PROMPTS[0];
  const { tokens } = generate(m, [prompt], { maxNewTokens: 6 });
  const seq = [...prompt];
  for (const token of tokens[0]) {
    const expected = torch.noGrad(() =>
      torch.tidy(() => {
        const logits = m.forward(torch.tensor([seq], { dtype: "int64" }));
        return logits
          .select(1, seq.length - 1)
          .argmax(-1)
          .item();
      }),
    );
    assert.equal(token, expected);
    seq.push(token);
  }
});

test("EOS ends a row, finishReasons says so, and the other rows are unaffected", () => {
  for (const name of ["gpt2", "qwen2"]) {
    const m = model(name);
    const free = generate(m, PROMPTS, { maxNewTokens: 12 });
    // EOS: the first token of row 0's output that did not occur before it, at step >= 1 if any
    const row0 = free.tokens[0];
    let k = row0.findIndex((t, i) => i > 0 && !row0.slice(0, i).includes(t));
    if (k < 0) k = 0;
    const eos = row0[k];
    const stopped = generate(m, PROMPTS, { maxNewTokens: 12, eosTokenIds: [eos] });
    free.tokens.forEach((row, r) => {
      const at = row.indexOf(eos);
      if (at >= 0) {
        assert.deepEqual(stopped.tokens[r], row.slice(0, at + 1), `${name} row ${r}`);
        assert.equal(stopped.finishReasons[r], "eos");
      } else {
        assert.deepEqual(stopped.tokens[r], row, `${name} row ${r}`);
        assert.equal(stopped.finishReasons[r], "length");
      }
    });
    assert.equal(stopped.finishReasons[0], "eos");
    assert.equal(stopped.tokens[0].length, k + 1);
    // the cache makes no difference here either (finished rows keep being fed, masked)
    assert.deepEqual(generate(m, PROMPTS, { maxNewTokens: 12, eosTokenIds: [eos], useCache: false }), stopped);
    // a separate pad token id changes nothing
    assert.deepEqual(generate(m, PROMPTS, { maxNewTokens: 12, eosTokenIds: [eos], padTokenId: 96 }), stopped);
  }
});

test("generation stops when every row has hit EOS", () => {
  const m = model("llama");
  let steps = 0;
  const first = generate(m, [PROMPTS[0]], { maxNewTokens: 1 }).tokens[0][0];
  const r = generate(m, [PROMPTS[0]], {
    maxNewTokens: 20,
    eosTokenIds: [first],
    onStep: (s) => {
      steps = s;
    },
  });
  assert.deepEqual(r, { tokens: [[first]], finishReasons: ["eos"] });
  assert.equal(steps, 1);
});

test("maxNewTokens is respected", () => {
  const m = model("mistral (sliding_window 4)");
  for (const n of [0, 1, 5, 17]) {
    const r = generate(m, PROMPTS, { maxNewTokens: n, temperature: 1, seed: 3 });
    assert.deepEqual(
      r.tokens.map((t) => t.length),
      [n, n, n],
    );
    assert.deepEqual(r.finishReasons, ["length", "length", "length"]);
  }
  // beyond the model's positions is an error, not a silent truncation
  assert.throws(() => generate(model("gpt2"), PROMPTS, { maxNewTokens: 60 }), /positions/);
});

test("the same seed gives the same samples, a different seed different ones", () => {
  for (const name of ["gpt2", "llama"]) {
    const m = model(name);
    const options = { maxNewTokens: 16, temperature: 1.5 };
    const a = generate(m, PROMPTS, { ...options, seed: 1 });
    const b = generate(m, PROMPTS, { ...options, seed: 1 });
    const c = generate(m, PROMPTS, { ...options, seed: 2 });
    assert.deepEqual(b, a);
    assert.notDeepEqual(c.tokens, a.tokens);
    // sampling is not greedy decoding
    assert.notDeepEqual(a.tokens, generate(m, PROMPTS, { maxNewTokens: 16 }).tokens);
  }
});

test("top-k 1 and a tiny top-p reduce sampling to greedy decoding", () => {
  const m = model("qwen2");
  const greedy = generate(m, PROMPTS, { maxNewTokens: 10 });
  assert.deepEqual(
    generate(m, PROMPTS, { maxNewTokens: 10, temperature: 1.5, topK: 1, seed: 5 }).tokens,
    greedy.tokens,
  );
  assert.deepEqual(
    generate(m, PROMPTS, { maxNewTokens: 10, temperature: 1.5, topP: 1e-6, seed: 5 }).tokens,
    greedy.tokens,
  );
});

test("pickTokens: top-k and top-p sample only from the allowed tokens", () => {
  torch.manualSeed(0);
  // probabilities 0.5, 0.25, 0.125, 0.0625, ... (descending with the index)
  const logits = torch.tensor([Array.from({ length: 8 }, (_, i) => -i * Math.LN2)]);
  const seen = (options: GenerateOptions) => {
    const s = new Set<number>();
    for (let i = 0; i < 400; i++) s.add(pickTokens(logits, options)[0]);
    return [...s].sort();
  };
  assert.deepEqual(seen({ temperature: 1, topK: 3 }), [0, 1, 2]);
  // top-p 0.7: 0.5 < 0.7, 0.5 + 0.25 reaches it -> tokens 0 and 1
  assert.deepEqual(seen({ temperature: 1, topP: 0.7 }), [0, 1]);
  assert.deepEqual(seen({ temperature: 1, topP: 0.3 }), [0]);
  assert.deepEqual(seen({ temperature: 1, topK: 2, topP: 0.99 }), [0, 1]);
  assert.equal(seen({ temperature: 1 }).length >= 6, true);
  assert.deepEqual(pickTokens(logits, {}), [0]);
  logits.dispose();
});

test("stop strings end generation through the decode function", () => {
  const m = model("llama 3 (rope_scaling, tied)");
  const decode = (ids: number[]) => ids.map((i) => String.fromCharCode(97 + (i % 26))).join("");
  const free = generate(m, PROMPTS, { maxNewTokens: 12 });
  const row0 = free.tokens[0];
  const stop = decode(row0.slice(3, 5));
  const r = generate(m, PROMPTS, { maxNewTokens: 12, stopStrings: [stop, "no such text"], decode });
  free.tokens.forEach((row, i) => {
    let n = 1;
    while (n <= row.length && !decode(row.slice(0, n)).includes(stop)) n++;
    if (n <= row.length) {
      assert.deepEqual(r.tokens[i], row.slice(0, n), `row ${i}`);
      assert.equal(r.finishReasons[i], "stop_string");
      assert.ok(decode(r.tokens[i]).endsWith(stop));
    } else {
      assert.deepEqual(r.tokens[i], row, `row ${i}`);
      assert.equal(r.finishReasons[i], "length");
    }
  });
  assert.equal(r.finishReasons[0], "stop_string");
  assert.ok(r.tokens[0].length <= 5);
  assert.throws(() => generate(m, PROMPTS, { stopStrings: ["x"] }), /decode/);
});

test("input checks: no prompts, an empty prompt", () => {
  const m = model("gpt2");
  assert.deepEqual(generate(m, []), { tokens: [], finishReasons: [] });
  assert.throws(() => generate(m, [[1, 2], []]), /at least one token/);
});

test("sampling options outside transformers' ranges are errors naming the option", () => {
  const m = model("gpt2");
  const bad: [GenerateOptions, RegExp][] = [
    [{ temperature: 1, topP: 2 }, /topP must be from 0 to 1, got 2/],
    [{ temperature: 1, topP: -0.1 }, /topP must be from 0 to 1, got -0.1/],
    [{ temperature: 1, topP: NaN }, /topP must be from 0 to 1, got NaN/],
    [{ temperature: 1, topK: -1 }, /topK must be an integer >= 0 \(0: no limit\), got -1/],
    [{ temperature: 1, topK: 2.5 }, /topK must be an integer >= 0/],
    [{ temperature: -1 }, /temperature must be a finite number >= 0 \(0: greedy\), got -1/],
    [{ temperature: Infinity }, /temperature must be a finite number/],
    [{ temperature: 1, seed: 1e20 }, /seed must be an integer from 0 to 9007199254740991, got 100000000000000000000/],
    [{ temperature: 1, seed: -1 }, /seed must be an integer from 0/],
  ];
  for (const [options, message] of bad)
    assert.throws(() => generate(m, PROMPTS, { maxNewTokens: 1, ...options }), message);
  // The edges transformers accepts: top-p 0 (the most likely token only) and 1, top-k 0 (no limit).
  for (const topP of [0, 1]) generate(m, PROMPTS, { maxNewTokens: 1, temperature: 1, topP, topK: 0, seed: 0 });
  assert.deepEqual(
    generate(m, PROMPTS, { maxNewTokens: 3, temperature: 1, topP: 0, seed: 5 }).tokens,
    generate(m, PROMPTS, { maxNewTokens: 3 }).tokens,
  );
});

test("generate restores training mode and decodes without dropout", () => {
  const m = model("gpt2");
  m.train();
  const a = generate(m, PROMPTS, { maxNewTokens: 4 });
  assert.equal(m.training, true);
  m.eval();
  // dropout was off while generating: same result as in eval mode
  assert.deepEqual(generate(m, PROMPTS, { maxNewTokens: 4 }), a);
});
