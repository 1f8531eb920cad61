// Gradient checkpointing and the chunked response log-probs against the full-logits path:
// the same per-sequence log-probs and the same gradient for every parameter, on the toy Llama,
// GPT-2, Qwen3 and Phi-3 shapes, in float64 (1e-10) and float32 (1e-5). The batches have rows with different
// response lengths, responses longer than the chunk, and right or left padding.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { torch, createModel } from "../../src/index.js";
import type { CausalLM } from "../../src/models/causal-lm.js";
import type { PaddedBatch } from "../../src/data/tokenize.js";
import { RecomputeTape } from "../../src/nn/recompute.js";
import { batchTensors, concatenatedForward, sequenceLogps } from "../../src/logprobs/forward.js";
import { KVCache } from "../../src/models/cache.js";

const VOCAB = 40;

type Toy = "llama" | "gpt2" | "qwen3" | "phi3";

function toyConfig(architecture: Toy, layers = 3): Record<string, unknown> {
  const decoder = {
    vocab_size: VOCAB,
    hidden_size: 16,
    intermediate_size: 32,
    num_hidden_layers: layers,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    max_position_embeddings: 64,
    rms_norm_eps: 1e-6,
  };
  switch (architecture) {
    case "gpt2":
      return {
        architectures: ["GPT2LMHeadModel"],
        model_type: "gpt2",
        vocab_size: VOCAB,
        n_embd: 16,
        n_layer: layers,
        n_head: 2,
        n_positions: 64,
      };
    case "llama":
      return { architectures: ["LlamaForCausalLM"], model_type: "llama", ...decoder, tie_word_embeddings: false };
    case "qwen3":
      return {
        architectures: ["Qwen3ForCausalLM"],
        model_type: "qwen3",
        ...decoder,
        head_dim: 4,
        tie_word_embeddings: true,
      };
    case "phi3":
      return {
        architectures: ["Phi3ForCausalLM"],
        model_type: "phi3",
        ...decoder,
        partial_rotary_factor: 0.5,
        sliding_window: 6,
      };
  }
}

function toyModel(architecture: Toy, dtype: torch.DType, seed = 3): CausalLM {
  torch.manualSeed(seed);
  return createModel(toyConfig(architecture), { dtype }).eval();
}

/**
 * Two pairs (4 rows) with prompts of 3 to 5 tokens and responses of 2 to 9 tokens, padded to one
 * length on the right (as training pads) or on the left.
 */
function toyBatch(side: "right" | "left"): PaddedBatch {
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

/** A loss that weighs every row differently, so each row's gradient counts. */
function lossOf(chosen: torch.Tensor, rejected: torch.Tensor): torch.Tensor {
  return chosen
    .mul(torch.tensor([0.7, -1.3], { dtype: chosen.dtype }))
    .sum()
    .add(rejected.mul(torch.tensor([0.4, 2.1], { dtype: chosen.dtype })).sum());
}

interface Run {
  logps: number[];
  grads: Map<string, number[]>;
}

function grads(model: CausalLM): Map<string, number[]> {
  const out = new Map<string, number[]>();
  for (const [name, p] of model.namedParameters()) {
    const g = p.grad;
    assert.ok(g, `${name} got no gradient`);
    out.set(name, g.flatten().toArray() as number[]);
    g.dispose();
    p.zeroGrad();
  }
  return out;
}

/** Today's path: full logits [2B, T, V] and the log-probs from them. */
function fullLogitsRun(model: CausalLM, batch: PaddedBatch, lengthNorm: boolean): Run {
  const logps = torch.tidy(() => {
    const { inputIds, attentionMask, labels } = batchTensors(batch);
    const lp = sequenceLogps(model.forward(inputIds, { attentionMask }), labels, lengthNorm).logps;
    const half = batch.inputIds.length / 2;
    lossOf(lp.narrow(0, 0, half), lp.narrow(0, half, half)).backward();
    return lp.toArray() as number[];
  });
  return { logps, grads: grads(model) };
}

function chunkedRun(
  model: CausalLM,
  batch: PaddedBatch,
  lengthNorm: boolean,
  options: { checkpointing: boolean; chunkRows?: number },
): Run {
  const tape = new RecomputeTape();
  const logps = torch.tidy(() => {
    const out = concatenatedForward(model, batch, lengthNorm, {
      recompute: tape,
      gradientCheckpointing: options.checkpointing,
      chunkRows: options.chunkRows,
    });
    lossOf(out.chosen, out.rejected).backward();
    tape.backward();
    return [...(out.chosen.toArray() as number[]), ...(out.rejected.toArray() as number[])];
  });
  return { logps, grads: grads(model) };
}

function assertClose(a: number[], b: number[], tol: number, what: string) {
  assert.equal(a.length, b.length, what);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]) / Math.max(1, Math.abs(b[i])));
  assert.ok(worst <= tol, `${what}: differs by ${worst} (tolerance ${tol})`);
}

function assertSameRun(got: Run, want: Run, tol: number, label: string) {
  assertClose(got.logps, want.logps, tol, `${label}: log-probs`);
  assert.deepEqual([...got.grads.keys()], [...want.grads.keys()]);
  for (const [name, g] of want.grads) assertClose(got.grads.get(name)!, g, tol, `${label}: gradient of ${name}`);
}

for (const architecture of ["llama", "gpt2", "qwen3", "phi3"] as const) {
  describe(`${architecture}: chunked log-probs and gradient checkpointing equal the full-logits path`, () => {
    for (const [dtype, tol] of [
      ["float64", 1e-10],
      ["float32", 1e-5],
    ] as const) {
      it(`${dtype}: every parameter's gradient, right padding, responses longer than the chunk`, () => {
        const model = toyModel(architecture, dtype);
        try {
          const batch = toyBatch("right");
          const want = fullLogitsRun(model, batch, true);
          // 21 response tokens in chunks of 4: the chunks cut rows, and the chosen/rejected boundary, in the middle.
          assertSameRun(chunkedRun(model, batch, true, { checkpointing: false, chunkRows: 4 }), want, tol, "chunked");
          assertSameRun(
            chunkedRun(model, batch, true, { checkpointing: true, chunkRows: 4 }),
            want,
            tol,
            "checkpointed",
          );
          assertSameRun(chunkedRun(model, batch, true, { checkpointing: true }), want, tol, "checkpointed, one chunk");
        } finally {
          model.dispose();
        }
      });
    }

    it("float64: left padding and summed (not length-normalised) log-probs", () => {
      const model = toyModel(architecture, "float64");
      try {
        const batch = toyBatch("left");
        const want = fullLogitsRun(model, batch, false);
        assertSameRun(
          chunkedRun(model, batch, false, { checkpointing: true, chunkRows: 3 }),
          want,
          1e-10,
          "left padding",
        );
      } finally {
        model.dispose();
      }
    });

    it("without grad (reference, evaluation): the same log-probs, and logits/* as the mean over response tokens", () => {
      const model = toyModel(architecture, "float64");
      try {
        const batch = toyBatch("right");
        torch.noGrad(() =>
          torch.tidy(() => {
            const out = concatenatedForward(model, batch, true, { chunkRows: 5 });
            const { inputIds, attentionMask, labels } = batchTensors(batch);
            const logits = model.forward(inputIds, { attentionMask });
            const want = sequenceLogps(logits, labels, true).logps.toArray() as number[];
            assertClose(
              [...(out.chosen.toArray() as number[]), ...(out.rejected.toArray() as number[])],
              want,
              1e-10,
              "log-probs",
            );
            // TRL: logits[:, :-1] at positions whose next label counts, averaged over those positions and the vocabulary.
            const [, t, v] = logits.shape;
            const mask = labels
              .narrow(1, 1, t - 1)
              .ne(-100)
              .unsqueeze(-1)
              .to("float64"); // [2B, T-1, 1]
            const sums = logits.narrow(1, 0, t - 1).mul(mask);
            const mean = (from: number) =>
              sums.narrow(0, from, 2).sum().item() / (mask.narrow(0, from, 2).sum().item() * v);
            assert.ok(Math.abs(out.chosenLogitsMean - mean(0)) < 1e-10, `${out.chosenLogitsMean} vs ${mean(0)}`);
            assert.ok(Math.abs(out.rejectedLogitsMean - mean(2)) < 1e-10, `${out.rejectedLogitsMean} vs ${mean(2)}`);
          }),
        );
      } finally {
        model.dispose();
      }
    });
  });
}

describe("recompute tape", () => {
  it("checkpointed layers under any loss of the hidden states: every weight's gradient as without the tape", () => {
    const model = toyModel("llama", "float64");
    try {
      const ids = torch.tensor(
        [
          [3, 8, 1, 4, 9, 2],
          [5, 5, 7, 1, 0, 3],
        ],
        { dtype: "int64" },
      );
      const weight = torch.randn([VOCAB], { dtype: "float64" });
      const plain = torch.tidy(() => {
        model.logitsFromHidden(model.hiddenStates(ids)).mul(weight).tanh().sum().backward();
        return grads(model);
      });
      const tape = new RecomputeTape();
      const checkpointed = torch.tidy(() => {
        const h = model.hiddenStates(ids, { recompute: tape });
        assert.equal(tape.length, 3, "one segment per decoder layer");
        assert.ok(h.isLeaf && h.requiresGrad, "the last layer's output is a leaf of the tape");
        model.logitsFromHidden(h).mul(weight).tanh().sum().backward();
        tape.backward();
        return grads(model);
      });
      for (const [name, g] of plain) assertClose(checkpointed.get(name)!, g, 1e-10, name);
      torch.dispose([ids, weight]);
    } finally {
      model.dispose();
    }
  });

  it("frees everything it held after backward, and after dispose", () => {
    const model = toyModel("gpt2", "float32");
    try {
      const batch = toyBatch("right");
      const before = torch.memory().tensors;
      const tape = new RecomputeTape();
      torch.tidy(() => {
        const out = concatenatedForward(model, batch, true, {
          recompute: tape,
          gradientCheckpointing: true,
          chunkRows: 4,
        });
        lossOf(out.chosen, out.rejected).backward();
      });
      assert.ok(torch.memory().tensors > before, "the tape holds the layers' inputs until backward");
      tape.backward();
      for (const p of model.parameters()) p.zeroGrad();
      assert.equal(torch.memory().tensors, before);
      assert.throws(() => tape.backward(), /already run backward/);

      const unused = new RecomputeTape();
      torch.tidy(() => {
        concatenatedForward(model, batch, true, { recompute: unused, gradientCheckpointing: true });
      });
      unused.dispose();
      assert.equal(torch.memory().tensors, before);
    } finally {
      model.dispose();
    }
  });

  it("refuses a KV cache, a model in training mode, and checkpointing without a tape", () => {
    const model = toyModel("llama", "float32");
    try {
      const ids = torch.tensor([[1, 2, 3]], { dtype: "int64" });
      const tape = new RecomputeTape();
      assert.throws(() => model.hiddenStates(ids, { recompute: tape, cache: new KVCache(3) }), /KV cache/);
      model.train();
      assert.throws(() => model.hiddenStates(ids, { recompute: tape }), /eval mode \(dropout off\)/);
      model.eval();
      assert.throws(
        () => concatenatedForward(model, toyBatch("right"), true, { gradientCheckpointing: true }),
        /needs a recompute tape/,
      );
      tape.dispose();
      ids.dispose();
    } finally {
      model.dispose();
    }
  });
});
