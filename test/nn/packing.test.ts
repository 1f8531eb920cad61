// Packed linear weights (native/src/packed_linear.h, src/nn/packing.ts): the packed matmul equals
// LibTorch's own linear (OpenBLAS, a different kernel on a different layout) for the row counts
// a sampler uses; a weight written in place is packed again before the next call; calls that must
// record gradients, run under autocast or carry another dtype go to linear() itself; packs live
// exactly as long as a hold names their weight, and generate() leaves none behind.
import { test } from "node:test";
import assert from "node:assert/strict";
import { torch, type Tensor } from "../../src/index.js";
import { Linear } from "../../src/nn/layers.js";
import { holdPackedWeights, packedBytes, withPackedWeights } from "../../src/nn/packing.js";
import { createModel, generate } from "../../src/index.js";
import { skipUnless } from "../helpers/requirements.js";
import { TINY_LLAMA } from "../helpers/toy.js";

torch.setNumThreads(1);
const skip = skipUnless("onednn");

const values = (t: Tensor) => torch.tidy(() => Array.from(t.to("float64").data() as Float64Array));
function maxDiff(a: Tensor, b: Tensor): number {
  assert.deepEqual(a.shape, b.shape);
  const x = values(a);
  const y = values(b);
  return x.reduce((m, v, i) => Math.max(m, Math.abs(v - y[i])), 0);
}

test(
  "a packed linear equals linear() for 1, 16 and 1000 rows, 2-D and 3-D inputs, with and without bias",
  { skip },
  () => {
    torch.manualSeed(0);
    for (const withBias of [false, true]) {
      const weight = torch.randn([300, 96]).mul(0.1);
      const bias = withBias ? torch.randn([300]) : null;
      const pack = torch.PackedLinear.create(weight, bias);
      assert.ok(pack, "float32 weights on CPU pack");
      assert.ok(pack.bytes >= 300 * 96 * 4, `the packed copy holds the weight (${pack.bytes} bytes)`);
      for (const shape of [
        [1, 96],
        [16, 96],
        [1000, 96],
        [4, 7, 96],
        [2, 1, 96],
      ]) {
        torch.tidy(() => {
          const x = torch.randn(shape);
          const d = maxDiff(pack.forward(x), torch.linear(x, weight, bias));
          assert.ok(d < 1e-4, `rows ${shape.join("x")}, bias ${withBias}: differs by ${d}`);
        });
      }
      // A non-contiguous input (a transposed view) reads the same values.
      torch.tidy(() => {
        const x = torch.randn([96, 5]).t();
        assert.ok(maxDiff(pack.forward(x), torch.linear(x, weight, bias)) < 1e-4);
      });
      pack.dispose();
      pack.dispose();
      assert.throws(() => pack.forward(torch.randn([1, 96])), /disposed/);
      torch.dispose([weight, ...(bias ? [bias] : [])]);
    }
  },
);

test("a weight or bias written in place is packed again before the next call", { skip }, () => {
  torch.manualSeed(1);
  const weight = torch.randn([64, 32]);
  const bias = torch.randn([64]);
  const pack = torch.PackedLinear.create(weight, bias)!;
  const x = torch.randn([16, 32]);
  const before = pack.forward(x);
  weight.mul_(2);
  assert.ok(maxDiff(pack.forward(x), torch.linear(x, weight, bias)) < 1e-4, "follows the scaled weight");
  bias.add_(1);
  const after = pack.forward(x);
  assert.ok(maxDiff(after, torch.linear(x, weight, bias)) < 1e-4, "follows the shifted bias");
  assert.ok(maxDiff(after, before) > 0.5, "and is not the first result");
  pack.dispose();
  torch.dispose([weight, bias, x, before, after]);
});

test("calls that record gradients, run under autocast or carry float64 go to linear() itself", { skip }, () => {
  torch.manualSeed(2);
  const weight = torch.randn([8, 4]).requiresGrad_(true);
  const pack = torch.PackedLinear.create(weight, null)!;
  const x = torch.randn([3, 4]);
  // Recorded: backward reaches the weight, as through linear().
  torch.tidy(() => pack.forward(x).sum().backward());
  assert.ok(weight.grad, "the weight got a gradient");
  assert.ok(maxDiff(weight.grad, x.sum(0).unsqueeze(0).expand([8, 4])) < 1e-5);
  // Outside autograd: the packed path, no graph.
  torch.noGrad(() => assert.equal(pack.forward(x).requiresGrad, false));
  // Under CPU autocast to bfloat16 the result is autocast's dtype, as linear() gives.
  torch.autocast("bfloat16", () => torch.noGrad(() => assert.equal(pack.forward(x).dtype, "bfloat16")));
  // Another dtype: linear()'s own type rules (float64 input and float32 weight disagree).
  assert.throws(() => torch.noGrad(() => pack.forward(x.to("float64"))), /dtype|type/i);
  // A float64 weight does not pack at all.
  assert.equal(torch.PackedLinear.create(weight.detach().to("float64"), null), null);
  pack.dispose();
});

test("packs are made on first use inside a hold, shared by nested holds, and freed with the last", { skip }, () => {
  torch.manualSeed(3);
  const layer = new Linear(32, 48);
  const x = torch.randn([5, 32]);
  const plain = torch.noGrad(() => layer.forward(x));
  assert.equal(packedBytes(), 0);
  const release = holdPackedWeights(layer);
  assert.equal(packedBytes(), 0, "nothing packs before a call");
  torch.tidy(() => layer.forward(x)); // gradients on: linear() itself, nothing packed
  assert.equal(packedBytes(), 0, "a call that records gradients packs nothing");
  const packed = torch.noGrad(() => layer.forward(x));
  const bytes = packedBytes();
  assert.ok(bytes >= 48 * 32 * 4, `the weight is packed (${bytes} bytes)`);
  assert.ok(maxDiff(packed, plain) < 1e-5);
  withPackedWeights(layer, () => torch.noGrad(() => layer.forward(x).dispose()));
  assert.equal(packedBytes(), bytes, "a nested hold reuses the pack and leaves it to the outer one");
  release();
  release();
  assert.equal(packedBytes(), 0, "released with the last hold");
  layer.dispose();
});

test("generate() packs for its call only, and its tokens and logits match the unpacked model's", { skip }, () => {
  torch.manualSeed(4);
  const model = createModel({ ...TINY_LLAMA, tie_word_embeddings: true }, { std: 0.2 });
  const prompts = [
    [3, 14, 15, 92],
    [65, 35],
  ];
  const packedRun = generate(model, prompts, { maxNewTokens: 12, eosTokenIds: [] });
  assert.equal(packedBytes(), 0, "nothing stays packed after generate()");
  process.env.OMNI_DPO_PACKED_LINEAR = "0";
  try {
    assert.deepEqual(generate(model, prompts, { maxNewTokens: 12, eosTokenIds: [] }).tokens, packedRun.tokens);
  } finally {
    delete process.env.OMNI_DPO_PACKED_LINEAR;
  }
  // The tied head (the embedding's weight) packs too; the logits agree with the plain forward.
  const ids = torch.tensor([prompts[0]], { dtype: "int64" });
  const plain = torch.noGrad(() => model.forward(ids));
  const viaPacks = withPackedWeights(model, () => {
    const logits = torch.noGrad(() => model.forward(ids));
    assert.ok(
      packedBytes() >= 97 * 32 * 4 + 2 * (32 * 32 * 2 + 32 * 16 * 2 + 32 * 64 * 3) * 4,
      "every linear and the head",
    );
    return logits;
  });
  assert.ok(maxDiff(viaPacks, plain) < 1e-4);
  model.dispose();
});
