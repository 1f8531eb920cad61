// Parity with PyTorch run from Python: forward values and gradients of a broad set of ops, and
// AdamW / SGD / clip_grad_norm_ / LambdaLR trajectories, all in float64 at 1e-10. Each group
// runs ONE python process (startup and `import torch` cost a second or two). Skips, with the
// reason printed, where no python with torch exists.
import { test } from "node:test";
import assert from "node:assert/strict";
import { torch, type Tensor } from "../../src/index.js";
import { values } from "../helpers/gradcheck.js";
import { runPython } from "../helpers/python.js";
import { skipUnless } from "../helpers/requirements.js";

const skip = skipUnless("torch");

const TOL = 1e-10;

function assertClose(actual: ArrayLike<number>, expected: number[], what: string, tol = TOL): void {
  assert.equal(actual.length, expected.length, `${what}: ${actual.length} elements vs ${expected.length}`);
  let worst = 0,
    at = -1;
  for (let i = 0; i < expected.length; i++) {
    const d = Math.abs(actual[i] - expected[i]) / Math.max(1, Math.abs(expected[i]));
    if (!(d <= worst)) {
      worst = d;
      at = i;
    } // NaN counts as worst
  }
  assert.ok(worst <= tol, `${what}: element ${at}: engine ${actual[at]}, torch ${expected[at]} (rel diff ${worst})`);
}

/** Evaluates `fn` once, on first use (the python run shared by a group of tests). */
function lazy<T>(fn: () => T): () => T {
  let done = false,
    value: T;
  return () => {
    if (!done) {
      value = fn();
      done = true;
    }
    return value;
  };
}

// ---- ops: forward and backward ----------------------------------------------------------

type DTypeName = "float64" | "int64" | "bool";
interface Input {
  values: number[];
  shape: number[];
  dtype: DTypeName;
  grad: boolean;
}
interface OpCase {
  name: string;
  inputs: Input[];
  js: (...xs: Tensor[]) => Tensor;
  py: string;
}

let seed = 1;
const numel = (shape: number[]) => shape.reduce((a, b) => a * b, 1);
/** A float64 leaf of `shape` with deterministic values in [lo, hi). */
const F = (shape: number[], lo = -1.5, hi = 1.5, grad = true): Input => ({
  values: values(numel(shape), seed++ * 7919, lo, hi),
  shape,
  dtype: "float64",
  grad,
});
const I = (vals: number[], shape = [vals.length]): Input => ({ values: vals, shape, dtype: "int64", grad: false });
const B = (vals: boolean[], shape = [vals.length]): Input => ({
  values: vals.map(Number),
  shape,
  dtype: "bool",
  grad: false,
});

const CAUSAL_PY =
  "lambda q, k, v: torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]) + torch.full((q.shape[-2], k.shape[-2]), float('-inf')).triu(1), -1) @ v";
// Boolean mask (true = may attend), causal aligned to the end (query i is position tk - tq + i),
// turned into an additive mask of float64's lowest finite value as the engine documents (and as
// Hugging Face's eager attention does): a fully masked row then averages v uniformly instead of
// giving NaN. (With masked_fill instead of an addition the forward is the same, but the
// gradient of q on a fully masked row would be 0 rather than the softmax gradient.)
const MASKED_PY =
  "lambda q, k, v, m: torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]) + torch.zeros(()).masked_fill(~(m & torch.ones(q.shape[-2], k.shape[-2], dtype=torch.bool).tril(k.shape[-2] - q.shape[-2])), torch.finfo(torch.float64).min), -1) @ v";

const OPS: OpCase[] = [
  // linear algebra
  { name: "matmul 2-D", inputs: [F([3, 4]), F([4, 5])], js: (a, b) => torch.matmul(a, b), py: "lambda a, b: a @ b" },
  {
    name: "matmul batched, broadcast",
    inputs: [F([2, 3, 4]), F([4, 2])],
    js: (a, b) => a.matmul(b),
    py: "lambda a, b: torch.matmul(a, b)",
  },
  { name: "matmul vector", inputs: [F([3, 4]), F([4])], js: (a, b) => a.matmul(b), py: "lambda a, b: a @ b" },
  {
    name: "bmm",
    inputs: [F([2, 3, 4]), F([2, 4, 2])],
    js: (a, b) => torch.bmm(a, b),
    py: "lambda a, b: torch.bmm(a, b)",
  },
  {
    name: "linear with bias",
    inputs: [F([2, 3, 4]), F([5, 4]), F([5])],
    js: (x, w, b) => torch.linear(x, w, b),
    py: "lambda x, w, b: F.linear(x, w, b)",
  },
  {
    name: "linear without bias",
    inputs: [F([3, 4]), F([2, 4])],
    js: (x, w) => torch.linear(x, w),
    py: "lambda x, w: F.linear(x, w)",
  },
  // normalisation
  {
    name: "layer_norm affine",
    inputs: [F([2, 3, 6]), F([6]), F([6])],
    js: (x, w, b) => torch.layerNorm(x, [6], w, b),
    py: "lambda x, w, b: F.layer_norm(x, [6], w, b, 1e-5)",
  },
  {
    name: "layer_norm over 2 dims, no affine, eps 1e-3",
    inputs: [F([2, 3, 4])],
    js: (x) => torch.layerNorm(x, [3, 4], null, null, 1e-3),
    py: "lambda x: F.layer_norm(x, [3, 4], None, None, 1e-3)",
  },
  {
    name: "rmsNorm (Llama's formula)",
    inputs: [F([2, 3, 6]), F([6])],
    js: (x, w) => torch.rmsNorm(x, w, 1e-6),
    py: "lambda x, w: x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * w",
  },
  // softmax family
  {
    name: "softmax dim -1",
    inputs: [F([3, 5], -4, 4)],
    js: (x) => torch.softmax(x, -1),
    py: "lambda x: torch.softmax(x, -1)",
  },
  { name: "softmax dim 0", inputs: [F([3, 5], -4, 4)], js: (x) => x.softmax(0), py: "lambda x: torch.softmax(x, 0)" },
  {
    name: "log_softmax dim 1",
    inputs: [F([2, 4, 3], -4, 4)],
    js: (x) => torch.logSoftmax(x, 1),
    py: "lambda x: F.log_softmax(x, 1)",
  },
  {
    name: "logsumexp dim -1 keepdim",
    inputs: [F([3, 5], -4, 4)],
    js: (x) => x.logsumexp(-1, true),
    py: "lambda x: torch.logsumexp(x, -1, keepdim=True)",
  },
  {
    name: "logsumexp dims [0, 2]",
    inputs: [F([2, 3, 4], -4, 4)],
    js: (x) => x.logsumexp([0, 2]),
    py: "lambda x: torch.logsumexp(x, [0, 2])",
  },
  // cross-entropy
  {
    name: "cross_entropy mean",
    inputs: [F([6, 5], -3, 3), I([0, 4, 2, 1, 3, 2])],
    js: (x, t) => torch.crossEntropy(x, t),
    py: "lambda x, t: F.cross_entropy(x, t)",
  },
  {
    name: "cross_entropy ignore_index -100, mean",
    inputs: [F([6, 5], -3, 3), I([0, -100, 2, 1, -100, 4])],
    js: (x, t) => torch.crossEntropy(x, t),
    py: "lambda x, t: F.cross_entropy(x, t, ignore_index=-100)",
  },
  {
    name: "cross_entropy ignore_index 2 + label_smoothing 0.1, mean",
    inputs: [F([6, 5], -3, 3), I([0, 2, 2, 1, 3, 4])],
    js: (x, t) => torch.crossEntropy(x, t, { ignoreIndex: 2, labelSmoothing: 0.1 }),
    py: "lambda x, t: F.cross_entropy(x, t, ignore_index=2, label_smoothing=0.1)",
  },
  {
    name: "cross_entropy label_smoothing 0.2, sum",
    inputs: [F([6, 5], -3, 3), I([0, -100, 2, 1, 3, 4])],
    js: (x, t) => torch.crossEntropy(x, t, { labelSmoothing: 0.2, reduction: "sum" }),
    py: "lambda x, t: F.cross_entropy(x, t, label_smoothing=0.2, reduction='sum')",
  },
  {
    name: "cross_entropy none, [N, C, d]",
    inputs: [F([2, 4, 3], -3, 3), I([0, 3, -100, 1, 2, 3], [2, 3])],
    js: (x, t) => torch.crossEntropy(x, t, { reduction: "none", labelSmoothing: 0.05 }),
    py: "lambda x, t: F.cross_entropy(x, t, reduction='none', label_smoothing=0.05)",
  },
  {
    name: "cross_entropy class weights, mean",
    inputs: [F([6, 5], -3, 3), I([0, 4, -100, 1, 3, 2]), F([5], 0.2, 2, false)],
    js: (x, t, w) => torch.crossEntropy(x, t, { weight: w }),
    py: "lambda x, t, w: F.cross_entropy(x, t, weight=w)",
  },
  {
    name: "tokenLogProbs (log_softmax gathered, 0 where ignored)",
    inputs: [F([2, 3, 5], -3, 3), I([1, 4, -100, 0, -100, 2], [2, 3])],
    js: (x, t) => torch.tokenLogProbs(x, t),
    py: "lambda x, t: torch.where(t == -100, torch.zeros(()), F.log_softmax(x, -1).gather(-1, t.clamp(min=0).unsqueeze(-1)).squeeze(-1))",
  },
  // activations
  { name: "gelu exact", inputs: [F([4, 5], -4, 4)], js: (x) => x.gelu(), py: "lambda x: F.gelu(x)" },
  {
    name: "gelu tanh",
    inputs: [F([4, 5], -4, 4)],
    js: (x) => x.gelu("tanh"),
    py: "lambda x: F.gelu(x, approximate='tanh')",
  },
  { name: "silu", inputs: [F([4, 5], -4, 4)], js: (x) => x.silu(), py: "lambda x: F.silu(x)" },
  { name: "softplus", inputs: [F([4, 5], -30, 30)], js: (x) => x.softplus(), py: "lambda x: F.softplus(x)" },
  {
    name: "softplus beta 2 threshold 5",
    inputs: [F([4, 5], -6, 6)],
    js: (x) => x.softplus(2, 5),
    py: "lambda x: F.softplus(x, beta=2, threshold=5)",
  },
  { name: "logsigmoid", inputs: [F([4, 5], -30, 30)], js: (x) => x.logsigmoid(), py: "lambda x: F.logsigmoid(x)" },
  { name: "tanh", inputs: [F([4, 5], -3, 3)], js: (x) => x.tanh(), py: "torch.tanh" },
  { name: "sigmoid", inputs: [F([4, 5], -6, 6)], js: (x) => x.sigmoid(), py: "torch.sigmoid" },
  { name: "relu", inputs: [F([4, 5])], js: (x) => x.relu(), py: "torch.relu" },
  // attention
  {
    name: "sdpa causal (explicit softmax formula)",
    inputs: [F([2, 2, 4, 3]), F([2, 2, 4, 3]), F([2, 2, 4, 3])],
    js: (q, k, v) => torch.scaledDotProductAttention(q, k, v, { isCausal: true }),
    py: CAUSAL_PY,
  },
  {
    name: "sdpa causal + left-padding mask, a fully masked row",
    inputs: [
      F([2, 2, 4, 3]),
      F([2, 2, 4, 3]),
      F([2, 2, 4, 3]),
      B([true, true, true, true, false, false, true, true], [2, 1, 1, 4]),
    ],
    js: (q, k, v, m) => torch.scaledDotProductAttention(q, k, v, { isCausal: true, attnMask: m }),
    py: MASKED_PY,
  },
  {
    name: "sdpa causal + mask, 2 queries after 3 cached keys",
    inputs: [F([1, 2, 2, 3]), F([1, 2, 5, 3]), F([1, 2, 5, 3]), B([true, false, true, true, true], [1, 1, 1, 5])],
    js: (q, k, v, m) => torch.scaledDotProductAttention(q, k, v, { isCausal: true, attnMask: m }),
    py: MASKED_PY,
  },
  {
    name: "sdpa additive float mask",
    inputs: [F([1, 2, 3, 4]), F([1, 2, 5, 4]), F([1, 2, 5, 4]), F([3, 5], -2, 0, false)],
    js: (q, k, v, m) => torch.scaledDotProductAttention(q, k, v, { attnMask: m }),
    py: "lambda q, k, v, m: torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]) + m, -1) @ v",
  },
  // reductions
  { name: "var dim 1 (correction 1)", inputs: [F([3, 5])], js: (x) => x.var(1), py: "lambda x: torch.var(x, 1)" },
  {
    name: "var all, correction 0",
    inputs: [F([3, 5])],
    js: (x) => x.var(undefined, { correction: 0 }),
    py: "lambda x: torch.var(x, unbiased=False)",
  },
  {
    name: "var dims [0, 2] keepdim",
    inputs: [F([2, 3, 4])],
    js: (x) => x.var([0, 2], { keepdim: true }),
    py: "lambda x: torch.var(x, [0, 2], keepdim=True)",
  },
  { name: "std dim 0", inputs: [F([4, 3])], js: (x) => x.std(0), py: "lambda x: torch.std(x, 0)" },
  { name: "norm 2 (all)", inputs: [F([3, 4])], js: (x) => x.norm(), py: "lambda x: torch.norm(x)" },
  { name: "norm 1 dim 1", inputs: [F([3, 4])], js: (x) => x.norm(1, 1), py: "lambda x: torch.norm(x, 1, 1)" },
  {
    name: "norm 3 dim -1 keepdim",
    inputs: [F([3, 4])],
    js: (x) => x.norm(3, -1, true),
    py: "lambda x: torch.norm(x, 3, -1, keepdim=True)",
  },
  {
    name: "sum dim / mean",
    inputs: [F([3, 4])],
    js: (x) => x.sum(0).add(x.mean(1).sum()),
    py: "lambda x: x.sum(0) + x.mean(1).sum()",
  },
  {
    name: "max dim values / min",
    inputs: [F([3, 4])],
    js: (x) => x.max(1).values.add(x.min()),
    py: "lambda x: x.max(1).values + x.min()",
  },
  { name: "cumsum", inputs: [F([3, 4])], js: (x) => x.cumsum(1), py: "lambda x: torch.cumsum(x, 1)" },
  // indexing
  {
    name: "gather dim 1",
    inputs: [F([3, 4]), I([0, 3, 1, 1, 2, 0], [3, 2])],
    js: (x, i) => x.gather(1, i),
    py: "lambda x, i: torch.gather(x, 1, i)",
  },
  {
    name: "gather dim 0, repeated indices",
    inputs: [F([3, 4]), I([2, 2, 0, 1, 2, 2, 2, 0], [2, 4])],
    js: (x, i) => x.gather(0, i),
    py: "lambda x, i: torch.gather(x, 0, i)",
  },
  {
    name: "embedding, repeated ids",
    inputs: [F([6, 3]), I([1, 5, 1, 0, 2, 5], [2, 3])],
    js: (w, i) => torch.embedding(w, i),
    py: "lambda w, i: F.embedding(i, w)",
  },
  {
    name: "embedding with padding_idx 1",
    inputs: [F([6, 3]), I([1, 5, 1, 0, 2, 5], [2, 3])],
    js: (w, i) => torch.embedding(w, i, 1),
    py: "lambda w, i: F.embedding(i, w, padding_idx=1)",
  },
  {
    name: "indexSelect",
    inputs: [F([4, 3]), I([3, 0, 3])],
    js: (x, i) => x.indexSelect(0, i),
    py: "lambda x, i: torch.index_select(x, 0, i)",
  },
  {
    name: "scatterAdd",
    inputs: [F([2, 4]), I([0, 3, 3, 1, 2, 2], [2, 3]), F([2, 3])],
    js: (x, i, s) => x.scatterAdd(1, i, s),
    py: "lambda x, i, s: x.scatter_add(1, i, s)",
  },
  {
    name: "slice / select / narrow",
    inputs: [F([4, 5])],
    js: (x) => x.slice(1, 1, 5, 2).add(x.select(0, 2).narrow(0, 0, 2)),
    py: "lambda x: x[:, 1:5:2] + x[2].narrow(0, 0, 2)",
  },
  // elementwise
  {
    name: "exp / log",
    inputs: [F([3, 4], -2, 2), F([3, 4], 0.1, 3)],
    js: (a, b) => a.exp().add(b.log()),
    py: "lambda a, b: a.exp() + b.log()",
  },
  {
    name: "log1p / sqrt / rsqrt",
    inputs: [F([3, 4], 0.1, 3)],
    js: (x) => x.log1p().mul(x.sqrt()).sub(x.rsqrt()),
    py: "lambda x: x.log1p() * x.sqrt() - x.rsqrt()",
  },
  {
    name: "pow scalar 3 and 0.5",
    inputs: [F([3, 4], 0.1, 2)],
    js: (x) => x.pow(3).add(x.pow(0.5)),
    py: "lambda x: x.pow(3) + x.pow(0.5)",
  },
  {
    name: "pow tensor ** tensor",
    inputs: [F([3, 4], 0.2, 2), F([3, 4], -2, 2)],
    js: (a, b) => a.pow(b),
    py: "lambda a, b: torch.pow(a, b)",
  },
  {
    name: "clamp scalar bounds",
    inputs: [F([4, 5], -2, 2)],
    js: (x) => x.clamp(-0.7, 0.9),
    py: "lambda x: torch.clamp(x, -0.7, 0.9)",
  },
  {
    name: "clamp min only",
    inputs: [F([4, 5], -2, 2)],
    js: (x) => x.clamp(0.1),
    py: "lambda x: torch.clamp(x, min=0.1)",
  },
  {
    name: "where (tensor / tensor, tensor / scalar)",
    inputs: [B([true, false, false, true, true, false], [2, 3]), F([2, 3]), F([2, 3])],
    js: (c, a, b) => torch.where(c, a, b).add(torch.where(c, a, 0.5)),
    py: "lambda c, a, b: torch.where(c, a, b) + torch.where(c, a, torch.tensor(0.5))",
  },
  {
    name: "maskedFill",
    inputs: [F([2, 3]), B([true, false, true], [1, 3])],
    js: (x, m) => x.maskedFill(m, -2),
    py: "lambda x, m: x.masked_fill(m, -2)",
  },
  {
    name: "arithmetic: add alpha, sub, mul, div, neg, square, reciprocal, abs",
    inputs: [F([3, 4]), F([3, 4], 0.5, 2), F([4])],
    js: (a, b, c) => a.add(b, 2.5).sub(c).mul(b).div(a.square().add(1)).neg().add(b.reciprocal()).add(a.abs()),
    py: "lambda a, b, c: -(((a + 2.5 * b - c) * b) / (a.square() + 1)) + b.reciprocal() + a.abs()",
  },
  {
    name: "maximum / minimum",
    inputs: [F([3, 4]), F([3, 4])],
    js: (a, b) => a.maximum(b).add(a.minimum(b).mul(2)),
    py: "lambda a, b: torch.maximum(a, b) + 2 * torch.minimum(a, b)",
  },
  { name: "sin / cos", inputs: [F([3, 4], -3, 3)], js: (x) => x.sin().mul(x.cos()), py: "lambda x: x.sin() * x.cos()" },
  // shapes
  {
    name: "cat dim 1",
    inputs: [F([2, 3]), F([2, 2])],
    js: (a, b) => torch.cat([a, b], 1),
    py: "lambda a, b: torch.cat([a, b], 1)",
  },
  {
    name: "stack dim 0 and dim -1",
    inputs: [F([2, 3]), F([2, 3])],
    js: (a, b) => torch.stack([a, b], 0).add(torch.stack([b, a], -1).permute(2, 0, 1)),
    py: "lambda a, b: torch.stack([a, b], 0) + torch.stack([b, a], -1).permute(2, 0, 1)",
  },
  {
    name: "reshape / transpose / unsqueeze / expand / repeat",
    inputs: [F([2, 6])],
    js: (x) =>
      x
        .reshape(3, 4)
        .transpose(0, 1)
        .unsqueeze(0)
        .expand(2, 4, 3)
        .add(x.view(2, 1, 6).repeat(1, 2, 1).reshape(2, 4, 3)),
    py: "lambda x: x.reshape(3, 4).transpose(0, 1).unsqueeze(0).expand(2, 4, 3) + x.view(2, 1, 6).repeat(1, 2, 1).reshape(2, 4, 3)",
  },
  {
    name: "split / chunk / flip / tril",
    inputs: [F([4, 4])],
    js: (x) => {
      const [a, b] = x.split([1, 3], 0);
      const [c] = x.chunk(2, 1);
      return a.sum().add(b.flip(1).tril()).add(c.sum());
    },
    py: "lambda x: x.split([1, 3], 0)[0].sum() + x.split([1, 3], 0)[1].flip(1).tril() + x.chunk(2, 1)[0].sum()",
  },
];

const OPS_PY = `
import json, math, sys
import torch
import torch.nn.functional as F
torch.set_default_dtype(torch.float64)
DT = {"float64": torch.float64, "int64": torch.int64, "bool": torch.bool}
out = []
for case in json.load(sys.stdin):
    xs = []
    for x in case["inputs"]:
        t = torch.tensor(x["values"], dtype=DT[x["dtype"]]).reshape(x["shape"])
        xs.append(t.requires_grad_(True) if x["grad"] else t)
    y = eval(case["py"])(*xs)
    w = torch.tensor([math.sin(i + 1) + 1.5 for i in range(y.numel())]).reshape(y.shape)
    (y * w).sum().backward()
    out.append({"shape": list(y.shape), "value": y.detach().reshape(-1).tolist(),
                "grads": [x.grad.reshape(-1).tolist() if x.grad is not None else None for x in xs]})
print(json.dumps(out))
`;

interface PyOpResult {
  shape: number[];
  value: number[];
  grads: (number[] | null)[];
}
const opsFromTorch = lazy(() =>
  runPython<PyOpResult[]>(
    OPS_PY,
    OPS.map(({ name, inputs, py }) => ({ name, inputs, py })),
  ),
);

OPS.forEach((c, index) => {
  test(`parity: ${c.name}`, { skip }, () => {
    const ref = opsFromTorch()[index];
    torch.tidy(() => {
      const xs = c.inputs.map((x) => {
        const t = torch.tensor(x.values, { dtype: x.dtype }).reshape(x.shape);
        return x.grad ? t.requiresGrad_() : t;
      });
      const y = c.js(...xs);
      assert.deepEqual(y.shape, ref.shape, "shape");
      assert.equal(y.dtype, "float64");
      assertClose(y.data() as Float64Array, ref.value, "value");
      const w = torch
        .tensor(
          Array.from({ length: y.numel() }, (_, i) => Math.sin(i + 1) + 1.5),
          { dtype: "float64" },
        )
        .reshape(y.shape);
      y.mul(w).sum().backward();
      xs.forEach((x, i) => {
        if (!c.inputs[i].grad) return;
        const g = x.grad;
        const expected = ref.grads[i] ?? new Array<number>(x.numel()).fill(0);
        assertClose(g ? (g.data() as Float64Array) : new Float64Array(x.numel()), expected, `grad of input ${i}`);
      });
    });
  });
});

// ---- optimizers, clipping and schedules ---------------------------------------------------

const W0 = values(12, 11, -1, 1),
  B0 = values(4, 12, -1, 1);
const TARGET = values(12, 13, -2, 2),
  COEF = values(12, 14, 0.5, 3),
  M = values(16, 15, -1, 1);

/** A fixed quadratic with coupling: sum(c * (w - t)^2) + |M b + 0.5 w[:4]|^2. */
function lossOf(w: Tensor, b: Tensor): Tensor {
  const t = torch.tensor(TARGET, { dtype: "float64" }).reshape(3, 4),
    c = torch.tensor(COEF, { dtype: "float64" }).reshape(3, 4);
  const m = torch.tensor(M, { dtype: "float64" }).reshape(4, 4);
  const r = m.matmul(b).add(w.reshape(-1).slice(0, 0, 4).mul(0.5));
  return w.sub(t).square().mul(c).sum().add(r.square().sum());
}

type Run = "adamw" | "adamw_clip" | "sgd_momentum" | "sgd_nesterov_wd" | "adamw_linear_schedule";
const STEPS = 5;

const OPTIM_PY = `
import json, math, sys
import torch
torch.set_default_dtype(torch.float64)
d = json.load(sys.stdin)
T = torch.tensor(d["target"]).reshape(3, 4); C = torch.tensor(d["coef"]).reshape(3, 4); M = torch.tensor(d["m"]).reshape(4, 4)
def loss(w, b):
    r = M @ b + 0.5 * w.reshape(-1)[:4]
    return ((w - T) ** 2 * C).sum() + (r ** 2).sum()
def fresh():
    return (torch.tensor(d["w0"]).reshape(3, 4).requires_grad_(True), torch.tensor(d["b0"]).requires_grad_(True))

def lin_warmup(warmup, total):  # transformers.get_linear_schedule_with_warmup
    def f(step):
        if step < warmup: return float(step) / float(max(1, warmup))
        return max(0.0, float(total - step) / float(max(1, total - warmup)))
    return f
def cos_warmup(warmup, total, cycles=0.5):  # transformers.get_cosine_schedule_with_warmup
    def f(step):
        if step < warmup: return float(step) / float(max(1, warmup))
        progress = float(step - warmup) / float(max(1, total - warmup))
        return max(0.0, 0.5 * (1.0 + math.cos(math.pi * float(cycles) * 2.0 * progress)))
    return f
def const_warmup(warmup):  # transformers.get_constant_schedule_with_warmup
    return lambda step: float(step) / float(max(1.0, warmup)) if step < warmup else 1.0

def run(kind):
    w, b = fresh()
    if kind.startswith("adamw"):
        opt = torch.optim.AdamW([{"params": [w]}, {"params": [b], "weight_decay": 0.0}], lr=1e-2, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1)
    elif kind == "sgd_momentum":
        opt = torch.optim.SGD([{"params": [w]}, {"params": [b], "lr": 0.02}], lr=0.05, momentum=0.9, dampening=0.1)
    else:
        opt = torch.optim.SGD([w, b], lr=0.03, momentum=0.8, nesterov=True, weight_decay=0.05)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lin_warmup(2, 6)) if kind == "adamw_linear_schedule" else None
    norms = []
    for _ in range(d["steps"]):
        opt.zero_grad()
        loss(w, b).backward()
        if kind == "adamw_clip":
            norms.append(float(torch.nn.utils.clip_grad_norm_([w, b], 1.0)))
        opt.step()
        if sched: sched.step()
    return {"w": w.detach().reshape(-1).tolist(), "b": b.detach().tolist(), "norms": norms}

def clip(max_norm, norm_type):
    w, b = fresh()
    loss(w, b).backward()
    total = float(torch.nn.utils.clip_grad_norm_([w, b], max_norm, norm_type=norm_type))
    return {"total": total, "gw": w.grad.reshape(-1).tolist(), "gb": b.grad.tolist()}

def schedule(lam, steps):
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([{"params": [p], "lr": 0.1}, {"params": [torch.zeros(1, requires_grad=True)], "lr": 0.004}], lr=1.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lam)
    lrs = [sched.get_last_lr()]
    for _ in range(steps):
        opt.step(); sched.step()
        lrs.append(sched.get_last_lr())
    return lrs

print(json.dumps({
    "runs": {k: run(k) for k in d["runs"]},
    "clip": [clip(m, float(n)) for m, n in d["clips"]],
    "schedules": {
        "constant": schedule(lambda s: 1.0, 12),
        "constant_with_warmup": schedule(const_warmup(4), 12),
        "linear": schedule(lin_warmup(3, 10), 12),
        "linear_ratio": schedule(lin_warmup(math.ceil(10 * 0.25), 10), 12),
        "cosine": schedule(cos_warmup(2, 10), 12),
        "cosine_ratio": schedule(cos_warmup(math.ceil(9 * 0.3), 9), 12),
    },
}))
`;

const RUNS: Run[] = ["adamw", "adamw_clip", "sgd_momentum", "sgd_nesterov_wd", "adamw_linear_schedule"];
const CLIPS: [number, number][] = [
  [1.0, 2],
  [1e6, 2],
  [0.5, Infinity],
  [2.0, 1],
  [0.3, 3],
];
const SCHEDULES: Record<string, torch.ScheduleOptions> = {
  constant: { type: "constant" },
  constant_with_warmup: { type: "constant_with_warmup", warmupSteps: 4 },
  linear: { type: "linear", totalSteps: 10, warmupSteps: 3 },
  linear_ratio: { type: "linear", totalSteps: 10, warmupRatio: 0.25 },
  cosine: { type: "cosine", totalSteps: 10, warmupSteps: 2 },
  cosine_ratio: { type: "cosine", totalSteps: 9, warmupRatio: 0.3 },
};

interface PyOptim {
  runs: Record<Run, { w: number[]; b: number[]; norms: number[] }>;
  clip: { total: number; gw: number[]; gb: number[] }[];
  schedules: Record<string, number[][]>;
}
const optimFromTorch = lazy(() =>
  runPython<PyOptim>(OPTIM_PY, {
    w0: W0,
    b0: B0,
    target: TARGET,
    coef: COEF,
    m: M,
    steps: STEPS,
    runs: RUNS,
    // JSON has no Infinity: python gets the string "inf" and float()s it.
    clips: CLIPS.map(([m, n]) => [m, n === Infinity ? "inf" : n]),
  }),
);

function fresh(): [Tensor, Tensor] {
  return [
    torch.tensor(W0, { dtype: "float64" }).reshape(3, 4).detach().requiresGrad_(),
    torch.tensor(B0, { dtype: "float64", requiresGrad: true }),
  ];
}

function runEngine(kind: Run): { w: number[]; b: number[]; norms: number[] } {
  return torch.tidy(() => {
    const [w, b] = fresh();
    const opt = kind.startsWith("adamw")
      ? new torch.AdamW([{ params: [w] }, { params: [b], weightDecay: 0 }], {
          lr: 1e-2,
          betas: [0.9, 0.95],
          eps: 1e-8,
          weightDecay: 0.1,
        })
      : kind === "sgd_momentum"
        ? new torch.SGD([{ params: [w] }, { params: [b], lr: 0.02 }], { lr: 0.05, momentum: 0.9, dampening: 0.1 })
        : new torch.SGD([w, b], { lr: 0.03, momentum: 0.8, nesterov: true, weightDecay: 0.05 });
    const sched =
      kind === "adamw_linear_schedule"
        ? new torch.LRScheduler(opt, { type: "linear", totalSteps: 6, warmupSteps: 2 })
        : null;
    const norms: number[] = [];
    for (let s = 0; s < STEPS; s++) {
      opt.zeroGrad();
      torch.tidy(() => lossOf(w, b).backward());
      if (kind === "adamw_clip") norms.push(torch.clipGradNorm([w, b], 1.0));
      opt.step();
      sched?.step();
    }
    opt.dispose();
    return { w: Array.from(w.data() as Float64Array), b: Array.from(b.data() as Float64Array), norms };
  });
}

for (const kind of RUNS) {
  test(`parity: ${kind}, ${STEPS} steps on a quadratic, two parameter groups`, { skip }, () => {
    const ref = optimFromTorch().runs[kind];
    const got = runEngine(kind);
    assertClose(got.w, ref.w, "w");
    assertClose(got.b, ref.b, "b");
    assertClose(got.norms, ref.norms, "pre-clip norms");
    // The run really moved the parameters.
    assert.ok(got.w.some((v, i) => Math.abs(v - W0[i]) > 1e-3));
  });
}

test("parity: clip_grad_norm_ (2-norm above and below maxNorm, inf, 1 and 3)", { skip }, () => {
  const refs = optimFromTorch().clip;
  CLIPS.forEach(([maxNorm, normType], i) => {
    torch.tidy(() => {
      const [w, b] = fresh();
      lossOf(w, b).backward();
      const total = torch.clipGradNorm([w, b], maxNorm, normType);
      assertClose([total], [refs[i].total], `total norm (${maxNorm}, ${normType})`);
      assertClose(w.grad!.data() as Float64Array, refs[i].gw, `clipped grad w (${maxNorm}, ${normType})`);
      assertClose(b.grad!.data() as Float64Array, refs[i].gb, `clipped grad b (${maxNorm}, ${normType})`);
    });
  });
});

test("parity: LR schedules vs torch.optim.lr_scheduler.LambdaLR with transformers' lambdas", { skip }, () => {
  const refs = optimFromTorch().schedules;
  for (const [name, options] of Object.entries(SCHEDULES)) {
    torch.tidy(() => {
      const opt = new torch.SGD(
        [
          { params: [torch.zeros([1], { dtype: "float64", requiresGrad: true })], lr: 0.1 },
          { params: [torch.zeros([1], { dtype: "float64", requiresGrad: true })], lr: 0.004 },
        ],
        { lr: 1 },
      );
      const sched = new torch.LRScheduler(opt, options);
      const lrs = [sched.getLastLr()];
      for (let s = 0; s < 12; s++) {
        sched.step();
        lrs.push(sched.getLastLr());
      }
      assertClose(lrs.flat(), refs[name].flat(), name, 1e-15);
    });
  }
});
