// Modules: to() moves and casts in place (the parameter objects stay the same, so an optimizer
// made before still steps them), buffers, stateDict() and loadStateDict() with strict checks.
import { test } from "node:test";
import assert from "node:assert/strict";
import { torch, type Tensor } from "../../src/index.js";
import { Module } from "../../src/nn/module.js";
import { LayerNorm, Linear } from "../../src/nn/layers.js";

torch.setNumThreads(1);

/** A two-layer block with a persistent float buffer, a persistent int64 buffer and a scratch buffer. */
class Block extends Module {
  readonly proj: Linear;
  readonly norm: LayerNorm;
  constructor() {
    super();
    this.proj = this.module("proj", new Linear(4, 3));
    this.norm = this.module("norm", new LayerNorm(3));
    this.registerBuffer("scale", torch.full([3], 0.5));
    this.registerBuffer("steps", torch.zeros([1], { dtype: "int64" }));
    this.registerBuffer("scratch", torch.ones([2]), { persistent: false });
  }
  forward(x: Tensor): Tensor {
    return torch.tidy(() => this.norm.forward(this.proj.forward(x)).mul(this.buffer("scale")));
  }
}

const vals = (t: Tensor) => torch.tidy(() => Array.from(t.to("float64").data() as Float64Array));

test("to(dtype) keeps parameter identity: an AdamW made before steps the moved weights; grads and buffers move", () => {
  torch.manualSeed(0);
  const m = new Block();
  const params = m.parameters();
  const opt = new torch.AdamW(params, { lr: 0.1, weightDecay: 0 });
  const x = torch.randn([5, 4]);
  torch.tidy(() => m.forward(x).square().sum().backward());
  const before = params.map(vals);
  const gradBefore = vals(params[0].grad!);

  assert.equal(m.to("float64"), m);
  assert.deepEqual(m.parameters(), params, "the same Tensor objects");
  for (const p of params) assert.equal(p.dtype, "float64");
  assert.deepEqual(params.map(vals), before, "values survive the cast (float32 -> float64 is exact)");
  assert.equal(params[0].grad!.dtype, "float64", "the gradient moved with its parameter");
  assert.deepEqual(vals(params[0].grad!), gradBefore);
  assert.ok(
    params.every((p) => p.requiresGrad && p.isLeaf),
    "still trainable leaves",
  );
  const buffers = Object.fromEntries(m.namedBuffers());
  assert.equal(buffers.scale.dtype, "float64", "floating buffers are cast");
  assert.equal(buffers.steps.dtype, "int64", "integer buffers are not");
  assert.equal(buffers.scratch.dtype, "float64");

  opt.step();
  const after = params.map(vals);
  for (let i = 0; i < params.length; i++) assert.notDeepEqual(after[i], before[i], `parameter ${i} was stepped`);
  // The stepped weights are the ones the module computes with.
  const y = torch.tidy(() => m.forward(x.to("float64")));
  assert.equal(y.dtype, "float64");
  opt.zeroGrad();
  torch.tidy(() => m.forward(x.to("float64")).square().sum().backward());
  opt.step();
  assert.notDeepEqual(params.map(vals), after, "and keeps training");
  // to() with nothing to change leaves everything as it is.
  const ids = params.map((p) => p.id);
  m.to({ dtype: "float64", device: "cpu" });
  assert.deepEqual(
    params.map((p) => p.id),
    ids,
  );
  torch.dispose([y, x]);
  opt.dispose();
  m.dispose();
});

test(
  "to('cuda') keeps parameter identity and an optimizer made before steps on the GPU",
  { skip: torch.cuda.isAvailable() ? undefined : "this LibTorch has no CUDA" },
  () => {
    torch.manualSeed(0);
    const m = new Block();
    const params = m.parameters();
    const opt = new torch.SGD(params, { lr: 0.1 });
    const before = params.map(vals);
    m.to("cuda");
    assert.deepEqual(m.parameters(), params);
    assert.ok(
      params.every((p) => p.device.startsWith("cuda")),
      "parameters moved",
    );
    assert.ok(
      m.namedBuffers().every(([, b]) => b.device.startsWith("cuda")),
      "buffers moved",
    );
    torch.tidy(() =>
      m
        .forward(torch.randn([5, 4], { device: "cuda" }))
        .square()
        .sum()
        .backward(),
    );
    opt.step();
    const after = params.map(vals);
    for (let i = 0; i < params.length; i++) assert.notDeepEqual(after[i], before[i]);
    m.to("cpu");
    assert.ok(params.every((p) => p.device === "cpu"));
    opt.dispose();
    m.dispose();
  },
);

test("stateDict: parameters and persistent buffers in PyTorch's order, as the live tensors", () => {
  const m = new Block();
  const dict = m.stateDict();
  assert.deepEqual([...dict.keys()], ["scale", "steps", "proj.weight", "proj.bias", "norm.weight", "norm.bias"]);
  assert.equal(dict.get("proj.weight"), m.proj.weight, "live tensors, not copies");
  assert.equal(dict.has("scratch"), false, "a non-persistent buffer is not state");
  assert.deepEqual(
    m.namedBuffers().map(([n]) => n),
    ["scale", "steps", "scratch"],
  );
  assert.equal(m.parameters().length, 4, "buffers are not parameters");
  assert.equal(
    m.namedBuffers().every(([, b]) => !b.requiresGrad),
    true,
  );
  m.dispose();
});

test("loadStateDict copies in place (identity kept, cast to each tensor's dtype), round-trips stateDict", () => {
  torch.manualSeed(1);
  const source = new Block();
  torch.noGrad(() => {
    source.stateDict().get("scale")!.fill_(3);
    source.stateDict().get("steps")!.fill_(7);
  });
  const target = new Block().to("float64");
  const params = target.parameters();
  const result = target.loadStateDict(source.stateDict());
  assert.deepEqual(result, { missingKeys: [], unexpectedKeys: [] });
  assert.deepEqual(target.parameters(), params, "same objects");
  for (const [name, t] of target.stateDict()) {
    assert.deepEqual(vals(t), vals(source.stateDict().get(name)!), name);
  }
  assert.equal(target.proj.weight.dtype, "float64", "kept its dtype");
  assert.equal(target.proj.weight.requiresGrad, true);
  // A plain object works as well.
  target.loadStateDict(Object.fromEntries(source.stateDict()));
  source.dispose();
  target.dispose();
});

test("loadStateDict strict: one error names every missing, unexpected and wrong-shape key; nothing is copied", () => {
  const m = new Block();
  const snapshot = [...m.stateDict()].map(([n, t]) => [n, vals(t)]);
  const dict = new Map(m.stateDict());
  dict.delete("norm.bias");
  dict.delete("steps");
  const extra = torch.ones([2]),
    wrong = torch.ones([4, 4]),
    changed = torch.full([3], 9);
  dict.set("head.weight", extra);
  dict.set("proj.weight", wrong);
  dict.set("scale", changed);
  assert.throws(
    () => m.loadStateDict(dict),
    (e: Error) => {
      assert.match(e.message, /^Block\.loadStateDict: /);
      assert.match(e.message, /missing keys: steps, norm\.bias/);
      assert.match(e.message, /unexpected keys: head\.weight/);
      assert.match(e.message, /proj\.weight has shape \[4, 4\], the module's is \[3, 4\]/);
      return true;
    },
  );
  assert.deepEqual(
    [...m.stateDict()].map(([n, t]) => [n, vals(t)]),
    snapshot,
    "a failed load changes nothing",
  );

  // strict: false reports missing and unexpected keys instead, but a wrong shape is still an error.
  assert.throws(() => m.loadStateDict(dict, { strict: false }), /proj\.weight has shape \[4, 4\]/);
  dict.delete("proj.weight");
  const result = m.loadStateDict(dict, { strict: false });
  assert.deepEqual(result, { missingKeys: ["steps", "proj.weight", "norm.bias"], unexpectedKeys: ["head.weight"] });
  assert.deepEqual(vals(m.stateDict().get("scale")!), [9, 9, 9], "what was given is loaded");
  torch.dispose([extra, wrong, changed]);
  m.dispose();
});

test("registerBuffer and names: clashes, dots and buffers that require grad are refused", () => {
  const m = new Block();
  assert.throws(() => m.registerBuffer("scale", torch.ones([1])), /'scale' is already registered/);
  assert.throws(() => m.registerBuffer("proj", torch.ones([1])), /'proj' is already registered/);
  assert.throws(() => m.registerBuffer("a.b", torch.ones([1])), /must be non-empty and contain no '\.'/);
  const g = torch.ones([1], { requiresGrad: true });
  assert.throws(() => m.registerBuffer("g", g), /buffer 'g' requires grad/);
  // Buffers live as long as the module: a tidy around registration does not free them.
  const kept = torch.tidy(() => m.registerBuffer("late", torch.ones([2])));
  assert.equal(kept.isDisposed, false);
  m.dispose();
  assert.equal(kept.isDisposed, true, "dispose() frees buffers too");
  g.dispose();
});
