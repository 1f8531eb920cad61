// Gradients of every differentiable op against central finite differences (float64), and the
// autograd machinery a training loop relies on: explicit gradients, retainGraph, accumulation,
// zeroGrad, .grad assignment, detach, noGrad / enableGrad, isLeaf.
import { test } from "node:test";
import assert from "node:assert/strict";
import { torch, type Tensor } from "../../src/index.js";
import { gradcheck, values } from "../helpers/gradcheck.js";

const f64 = (v: number[] | number[][]) => torch.tensor(v, { dtype: "float64" });
const i64 = (v: number[] | number[][]) => torch.tensor(v, { dtype: "int64" });
const nums = (t: Tensor) => Array.from(t.data() as Float64Array);
const run = (fn: () => void) => () => {
  torch.tidy(fn);
};

/** An input for gradcheck: n deterministic values in [lo, hi) of the given shape. */
function inp(shape: number[], seed: number, lo = -1, hi = 1) {
  return {
    values: values(
      shape.reduce((a, b) => a * b, 1),
      seed,
      lo,
      hi,
    ),
    shape,
  };
}
/** Values bounded away from zero (for abs, relu and other kinks at 0). */
function awayFromZero(shape: number[], seed: number) {
  const v = values(
    shape.reduce((a, b) => a * b, 1),
    seed,
    0.2,
    1.5,
  );
  return { values: v.map((x, i) => (i % 2 ? -x : x)), shape };
}
/** Distinct values (for max / min / sort ties), shuffled deterministically. */
function distinct(shape: number[], seed: number) {
  const n = shape.reduce((a, b) => a * b, 1);
  const order = values(n, seed)
    .map((r, i) => [r, i] as const)
    .sort((a, b) => a[0] - b[0]);
  const v = new Array<number>(n);
  order.forEach(([, i], rank) => {
    v[i] = (rank - n / 2) * 0.3 + 0.05;
  });
  return { values: v, shape };
}

function check(
  name: string,
  fn: (...xs: Tensor[]) => Tensor,
  inputs: { values: number[]; shape: number[] }[],
  options = {},
) {
  try {
    gradcheck(fn, inputs, options);
  } catch (e) {
    throw new Error(`${name}: ${(e as Error).message}`, { cause: e });
  }
}

// ---- gradchecks -------------------------------------------------------------------------

test(
  "gradcheck itself catches a wrong gradient (so the checks below can fail)",
  run(() => {
    // detach(x) * x: autograd sees x, the true derivative of x^2 is 2x.
    assert.throws(() => gradcheck((a) => a.detach().mul(a), [inp([3], 1, 0.5, 1)]), /gradcheck: input 0/);
  }),
);

test(
  "gradcheck: unary math and activations",
  run(() => {
    const x = inp([2, 3], 1, -2, 2);
    const pos = inp([2, 3], 2, 0.3, 3);
    check("neg", (a) => a.neg(), [x]);
    check("exp", (a) => a.exp(), [x]);
    check("log", (a) => a.log(), [pos]);
    check("log1p", (a) => a.log1p(), [pos]);
    check("sqrt", (a) => a.sqrt(), [pos]);
    check("rsqrt", (a) => a.rsqrt(), [pos]);
    check("abs", (a) => a.abs(), [awayFromZero([2, 3], 3)]);
    check("square", (a) => a.square(), [x]);
    check("reciprocal", (a) => a.reciprocal(), [pos]);
    check("sin", (a) => a.sin(), [x]);
    check("cos", (a) => a.cos(), [x]);
    check("tanh", (a) => a.tanh(), [x]);
    check("sigmoid", (a) => a.sigmoid(), [x]);
    check("logsigmoid", (a) => a.logsigmoid(), [x]);
    check("softplus", (a) => a.softplus(), [x]);
    check("softplus beta 2", (a) => a.softplus(2), [x]);
    check("relu", (a) => a.relu(), [awayFromZero([2, 3], 4)]);
    check("gelu exact", (a) => a.gelu(), [x]);
    check("gelu tanh", (a) => a.gelu("tanh"), [x]);
    check("silu", (a) => a.silu(), [x]);
  }),
);

test(
  "gradcheck: arithmetic with broadcasting, scalars, alpha; pow; clamp; maximum/minimum",
  run(() => {
    const a = inp([2, 3], 5),
      row = inp([3], 6),
      col = inp([2, 1], 7);
    const pos = inp([2, 3], 8, 0.5, 2);
    check("add broadcast alpha", (x, y) => x.add(y, 0.5), [a, row]);
    check("add scalar", (x) => x.add(3), [a]);
    check("sub broadcast alpha", (x, y) => x.sub(y, 2), [a, col]);
    check("sub scalar", (x) => x.sub(1.5), [a]);
    check("mul broadcast", (x, y) => x.mul(y), [a, col]);
    check("mul scalar", (x) => x.mul(-2.5), [a]);
    check("div broadcast", (x, y) => x.div(y), [a, inp([3], 9, 0.5, 2)]);
    check("div scalar", (x) => x.div(4), [a]);
    check("pow scalar", (x) => x.pow(3), [a]);
    check("pow fractional", (x) => x.pow(1.5), [pos]);
    check("pow tensor (base and exponent)", (x, y) => x.pow(y), [pos, inp([2, 3], 10, -1.5, 1.5)]);
    // clamp away from the kinks: |x| spread over [0.2, 1.5], bounds at +-0.9 (no element within 0.05).
    const c = {
      values: awayFromZero([2, 4], 11).values.map((v) => (Math.abs(Math.abs(v) - 0.9) < 0.05 ? v * 1.2 : v)),
      shape: [2, 4],
    };
    check("clamp scalars", (x) => x.clamp(-0.9, 0.9), [c]);
    check("clamp min only", (x) => x.clamp(-0.9), [c]);
    check("clamp max only", (x) => x.clamp(null, 0.9), [c]);
    // Per element: x below lo (i % 3 == 0), above hi (1), or inside (2); always lo < hi.
    const lo = { values: c.values.map((v, i) => v + [0.1, -0.3, -0.1][i % 3]), shape: [2, 4] };
    const hi = { values: c.values.map((v, i) => v + [0.3, -0.1, 0.1][i % 3]), shape: [2, 4] };
    check("clamp tensor bounds (x, lo, hi)", (x, l, h) => x.clamp(l, h), [c, lo, hi]);
    check("maximum", (x, y) => x.maximum(y), [distinct([2, 3], 12), distinct([2, 3], 13)]);
    check("minimum", (x, y) => x.minimum(y), [distinct([2, 3], 14), distinct([2, 3], 15)]);
  }),
);

test(
  "gradcheck: reductions (sum, mean, max, min, logsumexp, var, std, norm, cumsum)",
  run(() => {
    const x = inp([2, 3, 2], 20);
    check("sum all", (a) => a.sum(), [x]);
    check("sum dims keepdim", (a) => a.sum([0, 2], true), [x]);
    check("mean all", (a) => a.mean(), [x]);
    check("mean dim", (a) => a.mean(1), [x]);
    const d = distinct([2, 3, 2], 21);
    check("max all", (a) => a.max(), [d]);
    check("max dim values", (a) => a.max(1).values, [d]);
    check("min dim keepdim values", (a) => a.min(-1, true).values, [d]);
    check("min all", (a) => a.min(), [d]);
    check("logsumexp", (a) => a.logsumexp(1), [inp([2, 3, 2], 22, -3, 3)]);
    check("logsumexp dims", (a) => a.logsumexp([0, 2], true), [x]);
    check("var correction 1", (a) => a.var(1), [x]);
    check("var correction 0", (a) => a.var([1, 2], { correction: 0 }), [x]);
    check("var all", (a) => a.var(), [x]);
    check("std", (a) => a.std(2, { keepdim: true }), [x]);
    check("std correction 0", (a) => a.std(undefined, { correction: 0 }), [x]);
    const nz = awayFromZero([2, 3, 2], 23);
    check("norm 2", (a) => a.norm(), [x]);
    check("norm 2 dim", (a) => a.norm(2, 1), [x]);
    check("norm 1", (a) => a.norm(1), [nz]);
    check("norm 1 dim", (a) => a.norm(1, [0, 2], true), [nz]);
    check("norm inf", (a) => a.norm(Infinity), [d]);
    check("norm inf dim", (a) => a.norm(Infinity, 2), [d]);
    check("cumsum", (a) => a.cumsum(1), [x]);
  }),
);

test(
  "gradcheck: shape ops (reshape, transpose, permute, expand, repeat, squeeze, slice, select, narrow, flip, tril, triu)",
  run(() => {
    const x = inp([2, 3, 4], 30);
    check("reshape", (a) => a.reshape(4, 6).mul(a.reshape(4, 6)), [x]);
    check("view", (a) => a.view(6, 4).sin(), [x]);
    check("transpose", (a) => a.transpose(0, 2).exp(), [x]);
    check("permute", (a) => a.permute(2, 0, 1).contiguous().tanh(), [x]);
    check("expand", (a) => a.expand(3, 2, 4).mul(a.expand(3, 2, 4)), [inp([2, 1], 31)]);
    check("repeat", (a) => a.repeat(2, 3).sin(), [inp([2, 2], 32)]);
    check("squeeze / unsqueeze", (a) => a.unsqueeze(1).squeeze(1).square(), [inp([3, 1], 33)]);
    check("slice step", (a) => a.slice(2, 1, null, 2), [x]);
    check("select", (a) => a.select(1, 2), [x]);
    check("narrow", (a) => a.narrow(2, 1, 2), [x]);
    check("flip", (a) => a.flip(0, 2), [x]);
    check("flatten", (a) => a.flatten(1).square(), [x]);
    check("t", (a) => a.t().matmul(a), [inp([2, 3], 36)]);
    check("expandAs", (a) => a.expandAs(torch.zeros([2, 3])).exp(), [inp([3], 37)]);
    check("topk values", (a) => a.topk(2).values, [distinct([2, 4], 38)]);
    check("sort values", (a) => a.sort(1, true).values.mul(f64([1, 2, 3, 4])), [distinct([2, 4], 39)]);
    check("tril", (a) => a.tril(), [inp([3, 3], 34)]);
    check("triu diagonal 1", (a) => a.triu(1), [inp([3, 3], 35)]);
  }),
);

test(
  "gradcheck: cat, stack, split (size and sizes), chunk",
  run(() => {
    const a = inp([2, 3], 40),
      b = inp([1, 3], 41),
      c = inp([2, 3], 42);
    check("cat dim 0", (x, y) => torch.cat([x, y]).sin(), [a, b]);
    check("cat dim 1", (x, y) => torch.cat([x, y], 1).mul(2), [a, c]);
    check("stack", (x, y) => torch.stack([x, y], 1).exp(), [a, c]);
    check(
      "split size",
      (x) =>
        torch.cat(
          x.split(2, 1).map((p, i) => p.mul(i + 1)),
          1,
        ),
      [inp([2, 5], 43)],
    );
    check(
      "split sizes",
      (x) =>
        torch.cat(
          x.split([1, 3, 1], 1).map((p, i) => p.square().mul(i + 1)),
          1,
        ),
      [inp([2, 5], 44)],
    );
    check("chunk", (x) => x.chunk(2)[1].exp(), [inp([4, 2], 45)]);
  }),
);

test(
  "gradcheck: indexSelect, gather, scatterAdd, maskedFill, where",
  run(() => {
    const x = inp([3, 4], 50);
    check("indexSelect (repeated indices)", (a) => a.indexSelect(1, i64([3, 0, 3])), [x]);
    check(
      "gather",
      (a) =>
        a.gather(
          1,
          i64([
            [0, 0, 3],
            [1, 2, 2],
            [3, 1, 0],
          ]),
        ),
      [x],
    );
    check(
      "scatterAdd (self and src)",
      (a, s) =>
        a.scatterAdd(
          1,
          i64([
            [0, 0, 3],
            [1, 2, 2],
            [3, 1, 0],
          ]),
          s,
        ),
      [x, inp([3, 3], 51)],
    );
    const mask = torch.tensor([
      [true, false, false, true],
      [false, false, true, false],
      [true, true, false, false],
    ]);
    check("maskedFill scalar", (a) => a.maskedFill(mask, 0.5).square(), [x]);
    check("maskedFill tensor value", (a, v) => a.maskedFill(mask, v), [x, inp([], 52)]);
    check("where tensor/tensor", (a, b) => torch.where(mask, a, b).square(), [x, inp([3, 4], 53)]);
    check("where broadcast", (a, b) => torch.where(mask, a, b), [x, inp([4], 54)]);
    check("where tensor/scalar", (a) => torch.where(mask, a, 2), [x]);
    check("where scalar/tensor", (a) => torch.where(mask, -1, a), [x]);
  }),
);

test(
  "gradcheck: matmul, bmm, linear, embedding",
  run(() => {
    check("matmul 2-D", (a, b) => torch.matmul(a, b), [inp([2, 3], 60), inp([3, 4], 61)]);
    check("matmul batched broadcast", (a, b) => a.matmul(b), [inp([2, 2, 3], 62), inp([3, 2], 63)]);
    check("matmul vector", (a, b) => a.matmul(b), [inp([2, 3], 64), inp([3], 65)]);
    check("bmm", (a, b) => torch.bmm(a, b), [inp([2, 2, 3], 66), inp([2, 3, 2], 67)]);
    check("linear with bias", (x, w, b) => torch.linear(x, w, b), [inp([2, 3], 68), inp([4, 3], 69), inp([4], 70)]);
    check("linear without bias", (x, w) => torch.linear(x, w), [inp([2, 2, 3], 71), inp([4, 3], 72)]);
    // Indices are not differentiable: built inside fn; repeated indices accumulate.
    check(
      "embedding (weight)",
      (w) =>
        torch.embedding(
          w,
          i64([
            [2, 0],
            [2, 3],
          ]),
        ),
      [inp([4, 3], 73)],
    );
  }),
);

test(
  "gradcheck: layerNorm (input, weight, bias), rmsNorm (input, weight), softmax, logSoftmax",
  run(() => {
    const x = inp([2, 4], 80, -2, 2);
    check("layerNorm affine", (a, w, b) => torch.layerNorm(a, [4], w, b), [x, inp([4], 81), inp([4], 82)]);
    check("layerNorm plain", (a) => torch.layerNorm(a, [4]), [x]);
    check("layerNorm two dims", (a, w) => torch.layerNorm(a, [2, 4], w), [inp([2, 2, 4], 83), inp([2, 4], 84)]);
    check("rmsNorm with weight", (a, w) => torch.rmsNorm(a, w), [x, inp([4], 85)]);
    check("rmsNorm plain, eps", (a) => torch.rmsNorm(a, null, 0.1), [x]);
    check("softmax", (a) => torch.softmax(a, 1), [x]);
    check("softmax dim 0", (a) => a.softmax(0), [x]);
    check("logSoftmax", (a) => torch.logSoftmax(a, -1), [x]);
  }),
);

test(
  "gradcheck: crossEntropy (reductions, ignoreIndex, labelSmoothing, weight), tokenLogProbs",
  run(() => {
    const logits = inp([4, 3], 90, -2, 2);
    const target = () => i64([0, 2, -100, 1]);
    check("crossEntropy mean", (l) => torch.crossEntropy(l, target()), [logits]);
    check("crossEntropy sum", (l) => torch.crossEntropy(l, target(), { reduction: "sum" }), [logits]);
    check("crossEntropy none", (l) => torch.crossEntropy(l, target(), { reduction: "none" }), [logits]);
    check("crossEntropy ignoreIndex 2", (l) => torch.crossEntropy(l, i64([0, 2, 1, 2]), { ignoreIndex: 2 }), [logits]);
    check("crossEntropy labelSmoothing mean", (l) => torch.crossEntropy(l, target(), { labelSmoothing: 0.2 }), [
      logits,
    ]);
    check(
      "crossEntropy labelSmoothing none",
      (l) => torch.crossEntropy(l, target(), { labelSmoothing: 0.2, reduction: "none" }),
      [logits],
    );
    check(
      "crossEntropy labelSmoothing sum",
      (l) => torch.crossEntropy(l, target(), { labelSmoothing: 0.1, reduction: "sum" }),
      [logits],
    );
    check("crossEntropy weight", (l) => torch.crossEntropy(l, target(), { weight: f64([1, 2, 0.5]) }), [logits]);
    check(
      "crossEntropy [N, C, d]",
      (l) =>
        torch.crossEntropy(
          l,
          i64([
            [0, 2],
            [1, -100],
          ]),
        ),
      [inp([2, 3, 2], 91)],
    );
    check(
      "tokenLogProbs",
      (l) =>
        torch.tokenLogProbs(
          l,
          i64([
            [1, 4, -100],
            [0, -100, 3],
          ]),
        ),
      [inp([2, 3, 5], 92, -2, 2)],
    );
  }),
);

test(
  "gradcheck: scaledDotProductAttention (no mask, causal, padding, causal + padding, additive)",
  run(() => {
    const [B, H, T, d] = [2, 1, 3, 2];
    const q = inp([B, H, T, d], 100),
      k = inp([B, H, T, d], 101),
      v = inp([B, H, T, d], 102);
    check("sdpa no mask", (a, b, c) => torch.scaledDotProductAttention(a, b, c), [q, k, v]);
    check("sdpa causal", (a, b, c) => torch.scaledDotProductAttention(a, b, c, { isCausal: true }), [q, k, v]);
    const pad = torch.tensor([[[[false, true, true]]], [[[true, true, true]]]]); // [B, 1, 1, T]
    check("sdpa padding", (a, b, c) => torch.scaledDotProductAttention(a, b, c, { attnMask: pad }), [q, k, v]);
    // Causal + left padding: batch 0's first query sees nothing. Its output is padding that a loss
    // ignores, so it is zeroed here; every other gradient must be exact.
    const queryIsPad = torch.tensor([[[[true], [false], [false]]], [[[false], [false], [false]]]]);
    check(
      "sdpa causal + padding",
      (a, b, c) =>
        torch.scaledDotProductAttention(a, b, c, { attnMask: pad, isCausal: true }).maskedFill(queryIsPad, 0),
      [q, k, v],
    );
    const additive = f64([
      [0, -0.5, -1e9],
      [0.25, 0, -1e9],
      [0, 0, 0],
    ]);
    check("sdpa additive mask", (a, b, c) => torch.scaledDotProductAttention(a, b, c, { attnMask: additive }), [
      q,
      k,
      v,
    ]);
  }),
);

test(
  "embedding: paddingIdx rows get no gradient; repeated rows accumulate",
  run(() => {
    const w = f64([
      [1, 2],
      [3, 4],
      [5, 6],
    ]).requiresGrad_();
    torch
      .embedding(w, i64([0, 2, 2, 1, 0]), 0)
      .sum()
      .backward();
    assert.deepEqual(nums(w.grad!), [0, 0, 1, 1, 2, 2]);
  }),
);

test(
  "dropout backward uses the forward's mask and scale",
  run(() => {
    torch.manualSeed(3);
    const x = torch.ones([1000], { dtype: "float64", requiresGrad: true });
    const y = torch.dropout(x, 0.25);
    y.backward(torch.onesLike(y));
    const g = nums(x.grad!),
      out = nums(y);
    assert.deepEqual(g, out, "d(dropout(x))/dx = mask / (1 - p), which is y for x = 1");
    assert.ok(out.some((v) => v === 0) && out.some((v) => Math.abs(v - 4 / 3) < 1e-15));
    const z = f64([1, 2]).requiresGrad_();
    torch.dropout(z, 0.5, false).sum().backward();
    assert.deepEqual(nums(z.grad!), [1, 1], "identity in eval mode");
  }),
);

test(
  "sdpa: gradients through a fully masked row are finite",
  run(() => {
    const q = torch.randn([1, 1, 3, 2], { dtype: "float64", requiresGrad: true });
    const k = torch.randn([1, 1, 3, 2], { dtype: "float64", requiresGrad: true });
    const v = torch.randn([1, 1, 3, 2], { dtype: "float64", requiresGrad: true });
    const pad = torch.tensor([false, true, true]);
    torch.scaledDotProductAttention(q, k, v, { attnMask: pad, isCausal: true }).sum().backward();
    for (const t of [q, k, v]) assert.ok(nums(t.grad!).every(Number.isFinite), "finite gradient");
  }),
);

// ---- autograd machinery -----------------------------------------------------------------

test(
  "backward with an explicit gradient for a non-scalar output",
  run(() => {
    const x = f64([1, 2, 3]).requiresGrad_();
    const y = x.mul(x).mul(f64([1, 10, 100])); // y_i = c_i x_i^2
    y.backward(f64([1, 0.5, -1]));
    assert.deepEqual(nums(x.grad!), [2 * 1 * 1 * 1, 2 * 2 * 10 * 0.5, 2 * 3 * 100 * -1]);
    const m = f64([
      [1, 2],
      [3, 4],
    ]).requiresGrad_();
    m.exp().backward(torch.onesLike(m));
    assert.deepEqual(nums(m.grad!), [1, 2, 3, 4].map(Math.exp));
    // No gradient given for a non-scalar output is an error, not a guess.
    assert.throws(() => x.mul(2).backward(), /scalar outputs/);
  }),
);

test(
  "retainGraph allows a second backward; without it the second backward throws",
  run(() => {
    const x = f64([0.5, -1]).requiresGrad_();
    const y = x.exp().mul(x).sum();
    y.backward(undefined, { retainGraph: true });
    y.backward();
    const once = [0.5, -1].map((v) => Math.exp(v) * (1 + v));
    assert.deepEqual(
      nums(x.grad!),
      once.map((g) => 2 * g),
    );

    const z = x.exp().mul(x).sum();
    z.backward();
    assert.throws(
      () => z.backward(),
      (e: Error) => /backward/.test(e.message) && /second time|retain_graph/.test(e.message),
    );
  }),
);

test(
  "createGraph gives differentiable gradients (second derivative)",
  run(() => {
    const x = f64([1, 2]).requiresGrad_();
    x.pow(3).sum().backward(undefined, { createGraph: true });
    const g = x.grad!; // 3x^2, with a graph
    assert.deepEqual(nums(g), [3, 12]);
    assert.equal(g.requiresGrad, true);
    x.zeroGrad();
    g.sum().backward();
    assert.deepEqual(nums(x.grad!), [6, 12]); // 6x
  }),
);

test(
  "gradients accumulate across backward calls; zeroGrad drops them",
  run(() => {
    const x = f64([1, 2]).requiresGrad_();
    assert.equal(x.grad, null);
    x.mul(3).sum().backward();
    x.square().sum().backward();
    assert.deepEqual(nums(x.grad!), [3 + 2, 3 + 4]);
    x.zeroGrad();
    assert.equal(x.grad, null);
    x.mul(5).sum().backward();
    assert.deepEqual(nums(x.grad!), [5, 5]);
    // The same leaf used twice in one graph: contributions add.
    const w = f64([2]).requiresGrad_();
    w.mul(w).add(w).sum().backward();
    assert.deepEqual(nums(w.grad!), [2 * 2 + 1]);
  }),
);

test(
  "setting .grad: backward accumulates into it; null clears; wrong shape or dtype is refused",
  run(() => {
    const x = f64([1, 2]).requiresGrad_();
    x.grad = f64([10, 20]);
    assert.deepEqual(nums(x.grad!), [10, 20]);
    x.mul(2).sum().backward();
    assert.deepEqual(nums(x.grad!), [12, 22]);
    x.grad = null;
    assert.equal(x.grad, null);
    assert.throws(() => {
      x.grad = f64([1, 2, 3]);
    }, /size|shape/);
    assert.throws(() => {
      x.grad = torch.tensor([1, 2]);
    }, /type|dtype/);
    assert.throws(() => {
      x.grad = x;
    }, /own grad/);
    assert.equal(x.grad, null, "a refused assignment leaves the gradient alone");
  }),
);

test(
  "detach stops the gradient",
  run(() => {
    const x = f64([1, 2, 3]).requiresGrad_();
    const d = x.mul(2).detach();
    assert.equal(d.requiresGrad, false);
    assert.equal(d.isLeaf, true);
    d.mul(x).sum().backward(); // d/dx [detach(2x) * x] = 2x, not 4x
    assert.deepEqual(nums(x.grad!), [2, 4, 6]);
    // detach shares memory with its source.
    const base = f64([1, 1]);
    base.detach().mul_(5);
    assert.deepEqual(nums(base), [5, 5]);
  }),
);

test(
  "noGrad: results do not require grad; the mode is restored, also when fn throws",
  run(() => {
    const x = f64([1, 2]).requiresGrad_();
    assert.equal(torch.isGradEnabled(), true);
    const y = torch.noGrad(() => {
      assert.equal(torch.isGradEnabled(), false);
      return x.mul(2).exp();
    });
    assert.equal(y.requiresGrad, false);
    assert.equal(torch.isGradEnabled(), true);
    assert.equal(x.mul(2).requiresGrad, true);
    assert.throws(
      () =>
        torch.noGrad(() => {
          throw new Error("boom");
        }),
      /boom/,
    );
    assert.equal(torch.isGradEnabled(), true, "restored after a throw");
    // A LibTorch error inside noGrad also restores it.
    assert.throws(() => torch.noGrad(() => x.add(f64([1, 2, 3]))), /aten::add/);
    assert.equal(torch.isGradEnabled(), true);
    // Nested: the inner one restores the outer's (off) mode.
    torch.noGrad(() => {
      torch.noGrad(() => undefined);
      assert.equal(torch.isGradEnabled(), false);
    });
    assert.equal(torch.isGradEnabled(), true);
  }),
);

test(
  "enableGrad inside noGrad records gradients; the outer mode comes back",
  run(() => {
    const x = f64([3]).requiresGrad_();
    torch.noGrad(() => {
      const y = torch.enableGrad(() => {
        assert.equal(torch.isGradEnabled(), true);
        return x.square();
      });
      assert.equal(y.requiresGrad, true);
      assert.equal(torch.isGradEnabled(), false);
      assert.equal(x.square().requiresGrad, false);
      y.backward();
    });
    assert.deepEqual(nums(x.grad!), [6]);
    assert.throws(
      () =>
        torch.noGrad(() =>
          torch.enableGrad(() => {
            throw new Error("inner");
          }),
        ),
      /inner/,
    );
    assert.equal(torch.isGradEnabled(), true);
  }),
);

test(
  "requiresGrad on an integer tensor is a clear error; requiresGrad setter and isLeaf",
  run(() => {
    assert.throws(() => i64([1, 2]).requiresGrad_(), /floating point/);
    assert.throws(() => torch.tensor([1, 2], { dtype: "int64", requiresGrad: true }), /floating point/);
    assert.throws(() => {
      torch.tensor([true]).requiresGrad = true;
    }, /floating point/);
    const x = torch.zeros([2]);
    assert.equal(x.requiresGrad, false);
    x.requiresGrad = true;
    assert.equal(x.requiresGrad, true);
    assert.equal(x.isLeaf, true);
    const y = x.add(1);
    assert.equal(y.isLeaf, false);
    assert.equal(y.requiresGrad, true);
    assert.equal(torch.zeros([1]).isLeaf, true, "a tensor that does not require grad is a leaf");
    assert.equal(torch.zeros([1]).add(1).isLeaf, true);
    assert.equal(y.detach().isLeaf, true);
    // Only leaves can stop requiring grad.
    assert.throws(() => {
      y.requiresGrad = false;
    }, /leaf/);
    // Gradients reach leaves only.
    y.sum().backward();
    assert.deepEqual(nums(x.grad!.double()), [1, 1]);
    // An in-place op on a leaf that requires grad is refused (it would corrupt the graph).
    assert.throws(() => x.add_(1), /leaf/);
    torch.noGrad(() => x.add_(1)); // allowed under noGrad, as an optimizer step does
    assert.deepEqual(Array.from(x.data() as Float32Array), [1, 1]);
  }),
);

test(
  "grad returns the same wrapper while the gradient is unchanged, and a new one after it changes",
  run(() => {
    const x = f64([1, 2]).requiresGrad_();
    x.mul(3).sum().backward();
    const g = x.grad!;
    assert.equal(x.grad, g, "a second read is the same object");
    const before = torch.memory().tensors;
    for (let i = 0; i < 1000; i++) assert.equal(x.grad, g);
    assert.equal(torch.memory().tensors, before, "reads make no handles");
    // backward accumulates into the same gradient tensor: the wrapper shows the new values.
    x.square().sum().backward();
    assert.equal(x.grad, g);
    assert.deepEqual(nums(g), [3 + 2, 3 + 4]);
    // After zeroGrad the next backward makes a new gradient; the old wrapper keeps the old one.
    x.zeroGrad();
    assert.equal(x.grad, null);
    x.mul(5).sum().backward();
    const g2 = x.grad!;
    assert.notEqual(g2, g);
    assert.deepEqual(nums(g2), [5, 5]);
    assert.deepEqual(nums(g), [5, 7]);
    // An assigned gradient, and a wrapper disposed by the caller, are noticed too.
    x.grad = f64([9, 9]);
    assert.deepEqual(nums(x.grad!), [9, 9]);
    const g3 = x.grad!;
    g3.dispose();
    assert.deepEqual(nums(x.grad!), [9, 9]);
    // A wrapper read inside a tidy belongs to it; reading afterwards gives a live one.
    const inner = torch.tidy(() => {
      const gi = x.grad!;
      return gi.isDisposed;
    });
    assert.equal(inner, false);
    assert.equal(x.grad!.isDisposed, false);
  }),
);
