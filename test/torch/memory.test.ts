// Deterministic memory: tidy() scopes, keep(), dispose(), the memory() figures, and a soak of
// 10,000 tidied training steps that must hold RSS and the live tensor count flat.
import { test } from "node:test";
import assert from "node:assert/strict";
import { torch, type Tensor } from "../../src/index.js";

const live = () => torch.memory().tensors;

test("tidy frees everything made inside except what it returns", () => {
  const before = live();
  let inside: Tensor[] = [];
  const out = torch.tidy(() => {
    const a = torch.ones([4, 4]);
    const b = a.add(1);
    const c = b.matmul(a);
    const parts = c.split(2);
    inside = [a, b, c, ...parts];
    return c.sum();
  });
  assert.equal(live(), before + 1, "only the returned tensor is left");
  assert.ok(inside.every((t) => t.isDisposed), "every intermediate is disposed");
  assert.equal(out.isDisposed, false);
  assert.equal(out.item(), 4 * 2 * 4 * 4);
  out.dispose();
  assert.equal(live(), before);
});

test("tidy keeps tensors returned inside arrays, plain objects and maps; other values pass through", () => {
  const before = live();
  const r = torch.tidy(() => {
    const a = torch.zeros([2]), b = torch.ones([2]), c = torch.full([1], 3), dropped = torch.ones([5]);
    void dropped;
    return { a, list: [b, 7], nested: { m: new Map([["c", c]]) }, label: "x" };
  });
  assert.equal(live(), before + 3);
  assert.equal(r.label, "x");
  assert.equal(r.list[1], 7);
  assert.deepEqual(r.a.toArray(), [0, 0]);
  assert.deepEqual((r.list[0] as Tensor).toArray(), [1, 1]);
  assert.deepEqual(r.nested.m.get("c")!.toArray(), [3]);
  torch.dispose(r);
  assert.equal(live(), before);
  // Non-tensor results are returned as they are.
  assert.equal(torch.tidy(() => torch.ones([3]).sum().item()), 3);
  assert.equal(live(), before);
});

test("nested tidy: a returned tensor moves to the parent scope and is freed there", () => {
  const before = live();
  let fromInner: Tensor | undefined;
  let innerTemp: Tensor | undefined;
  const outer = torch.tidy(() => {
    fromInner = torch.tidy(() => {
      innerTemp = torch.ones([3]);
      return innerTemp.mul(2);
    });
    assert.equal(innerTemp!.isDisposed, true, "the inner scope freed its temporary");
    assert.equal(fromInner.isDisposed, false, "the inner result outlives the inner scope");
    const kept = torch.tidy(() => torch.tidy(() => torch.ones([1])));  // two levels up
    return kept.add(fromInner.sum());
  });
  assert.equal(fromInner!.isDisposed, true, "the outer scope freed the inner result it did not return");
  assert.equal(live(), before + 1);
  assert.deepEqual(outer.toArray(), [7]);
  outer.dispose();
  assert.equal(live(), before);
});

test("keep() survives tidy until disposed", () => {
  const before = live();
  let temp: Tensor | undefined;
  const kept = torch.tidy(() => {
    const k = torch.keep(torch.ones([2]));
    const k2 = torch.zeros([3]).keep();
    temp = torch.ones([4]);
    assert.equal(k.isKept, true);
    return [k2, k] as const;
  })[1];
  const survivor = torch.tidy(() => {
    const s = torch.full([1], 5).keep();
    torch.ones([8]);
    return 0;
  });
  assert.equal(survivor, 0);
  assert.equal(temp!.isDisposed, true);
  assert.equal(kept.isDisposed, false);
  // k2 (returned), kept, and the full([1], 5) kept inside the second tidy.
  assert.equal(live(), before + 3);
  assert.deepEqual(kept.toArray(), [1, 1]);
  kept.dispose();
  assert.equal(live(), before + 2);
});

test("tidy disposes everything when fn throws, and rethrows", () => {
  const before = live();
  let made: Tensor[] = [];
  assert.throws(() => torch.tidy(() => {
    made = [torch.ones([10]), torch.zeros([10])];
    torch.tidy(() => { made.push(torch.ones([1])); return made[2]; });
    throw new Error("step failed");
  }), /step failed/);
  assert.equal(live(), before);
  assert.ok(made.every((t) => t.isDisposed));
  // A LibTorch error inside tidy likewise.
  assert.throws(() => torch.tidy(() => torch.ones([2]).add(torch.ones([3]))), /aten::add/);
  assert.equal(live(), before);
});

test("tidy rejects an async function (and frees what it made before the first await)", async () => {
  const before = live();
  let made: Tensor | undefined;
  assert.throws(() => torch.tidy((async () => {
    made = torch.ones([3]);
    await null;
    return made;
  }) as unknown as () => Tensor), /synchronous/);
  assert.equal(made!.isDisposed, true);
  assert.equal(live(), before);
  await new Promise((r) => setImmediate(r));
  assert.equal(live(), before);
});

test("dispose() of a tensor, arrays and objects; disposing twice is safe", () => {
  const before = live();
  const a = torch.ones([2]), b = torch.ones([2]), c = torch.ones([2]), d = torch.ones([2]);
  const m = new Map([["d", d]]);
  assert.equal(live(), before + 4);
  torch.dispose([a, { inner: [b, { c }] }, m, 42, "text", null]);
  assert.ok([a, b, c, d].every((t) => t.isDisposed));
  assert.equal(live(), before);
  a.dispose();
  torch.dispose(a);
  torch.dispose([a, a]);
  assert.equal(live(), before);
  // A freed slot is reused by a new tensor; the old handle must not reach it.
  const e = torch.full([1], 9);
  a.dispose();
  assert.equal(e.isDisposed, false);
  assert.deepEqual(e.toArray(), [9]);
  assert.throws(() => a.toArray(), /disposed/);
  e.dispose();
  // Disposing inside tidy is fine; tidy does not dispose it again.
  torch.tidy(() => { const t = torch.ones([1]); t.dispose(); t.dispose(); });
  assert.equal(live(), before);
});

test("memory(): bytes count storages, a view's storage once", () => {
  torch.tidy(() => {
    const m0 = torch.memory();
    const x = torch.zeros([256]);  // 1024 bytes
    const m1 = torch.memory();
    assert.equal(m1.tensors, m0.tensors + 1);
    assert.equal(m1.bytes, m0.bytes + 1024);
    const views = [x.view(16, 16), x.slice(0, 0, 100), x.reshape(2, 128), x.select(0, 3), x.detach(), x.expand(2, 256)];
    const m2 = torch.memory();
    assert.equal(m2.tensors, m1.tensors + views.length);
    assert.equal(m2.bytes, m1.bytes, "views add no bytes");
    const copy = x.clone();
    assert.equal(torch.memory().bytes, m1.bytes + 1024, "a copy adds its own storage");
    const f64 = torch.zeros([10], { dtype: "float64" });
    assert.equal(torch.memory().bytes, m1.bytes + 1024 + 80);
    x.dispose();
    assert.equal(torch.memory().bytes, m1.bytes + 1024 + 80, "the storage stays while a view holds it");
    torch.dispose(views.slice(1));
    assert.equal(torch.memory().bytes, m1.bytes + 1024 + 80, "one view is enough to hold it");
    views[0].dispose();
    assert.equal(torch.memory().bytes, m1.bytes + 80, "freed with the last view");
    torch.dispose([views, copy, f64]);
    assert.equal(torch.memory().bytes, m0.bytes);
    assert.equal(torch.memory().tensors, m0.tensors);
  });
});

test("soak: 10,000 tidied AdamW steps of a small MLP keep RSS and the live tensor count flat", (t) => {
  const before = live();
  torch.manualSeed(0);
  const init = (shape: number[], scale: number) => torch.tidy(() => torch.randn(shape, { dtype: "float32" }).mul(scale)).requiresGrad_().keep();
  const w1 = init([64, 32], 1 / Math.sqrt(32)), b1 = torch.zeros([64], { requiresGrad: true }).keep();
  const w2 = init([1, 64], 1 / 8), b2 = torch.zeros([1], { requiresGrad: true }).keep();
  const params = [w1, b1, w2, b2];
  const opt = new torch.AdamW(params, { lr: 1e-3, weightDecay: 0.01 });
  const direction = torch.tidy(() => torch.randn([32, 1])).keep();

  const step = (): number => torch.tidy(() => {
    opt.zeroGrad();
    const x = torch.randn([16, 32]);
    const y = x.matmul(direction).mul(0.2).tanh();
    const h = torch.linear(x, w1, b1).gelu();
    const loss = torch.linear(h, w2, b2).sub(y).square().mean();
    loss.backward();
    opt.step();
    return loss.item();
  });

  const losses: number[] = [];
  for (let i = 0; i < 500; i++) losses.push(step());
  const rss0 = process.memoryUsage().rss;
  const mem0 = torch.memory();
  for (let i = 500; i < 10_000; i++) losses.push(step());
  const rss1 = process.memoryUsage().rss;
  const mem1 = torch.memory();

  assert.equal(mem1.tensors, mem0.tensors, "live tensor count is constant");
  assert.equal(mem1.bytes, mem0.bytes, "live tensor bytes are constant");
  const grownMb = (rss1 - rss0) / 2 ** 20;
  t.diagnostic(`RSS ${(rss0 / 2 ** 20).toFixed(1)} MB after warm-up, ${(rss1 / 2 ** 20).toFixed(1)} MB at the end; ${mem1.tensors} live tensors`);
  assert.ok(grownMb < 50, `RSS grew ${grownMb.toFixed(1)} MB over 9,500 steps`);
  const avg = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  assert.ok(avg(losses.slice(-200)) < avg(losses.slice(0, 200)), "the model trained");

  opt.dispose();
  torch.dispose([params, direction]);
  assert.equal(live(), before, "everything is freed at the end");
});
