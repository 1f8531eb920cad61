// Optimizers (AdamW, SGD), gradient clipping and learning-rate schedules against update rules
// written out in plain JavaScript numbers: PyTorch's torch.optim semantics and transformers'
// get_*_schedule_with_warmup lambdas.
import { test } from "node:test";
import assert from "node:assert/strict";
import { torch, type Tensor } from "../../src/index.js";
import { values } from "../helpers/gradcheck.js";

const f64 = (v: number[]) => torch.tensor(v, { dtype: "float64" });
const param = (v: number[]) => torch.tensor(v, { dtype: "float64", requiresGrad: true });
const arr = (t: Tensor) => Array.from(t.data() as Float64Array);
const setGrad = (p: Tensor, g: number[]) => {
  p.grad = f64(g);
};

function allClose(actual: number[], expected: number[], tol: number, what = ""): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  actual.forEach((a, i) => {
    assert.ok(
      Math.abs(a - expected[i]) <= tol * Math.max(1, Math.abs(expected[i])),
      `${what}[${i}]: ${a} vs ${expected[i]} (|diff| ${Math.abs(a - expected[i])})`,
    );
  });
}

// ---- AdamW ------------------------------------------------------------------------------

interface AdamHyper {
  lr: number;
  betas: [number, number];
  eps: number;
  weightDecay: number;
}

/** torch.optim.AdamW in plain numbers: decoupled decay, then the bias-corrected Adam step. */
function adamwReference(p0: number[], grads: number[][], h: AdamHyper) {
  const p = [...p0];
  const m = p.map(() => 0),
    v = p.map(() => 0);
  const [b1, b2] = h.betas;
  grads.forEach((g, k) => {
    const t = k + 1;
    const bc1 = 1 - b1 ** t,
      bc2 = 1 - b2 ** t;
    for (let i = 0; i < p.length; i++) {
      p[i] *= 1 - h.lr * h.weightDecay;
      m[i] = b1 * m[i] + (1 - b1) * g[i];
      v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
      const denom = Math.sqrt(v[i]) / Math.sqrt(bc2) + h.eps;
      p[i] -= (h.lr / bc1) * (m[i] / denom);
    }
  });
  return { p, m, v };
}

const P0 = [0.5, -1.25, 2.0, 0.03125];
const GRADS = [
  [0.1, -0.2, 0.3, -0.4],
  [0.05, 0.5, -0.25, 0.0],
  [-0.3, 0.1, 0.2, 1.5],
  [0.7, -0.6, 0.01, 0.2],
  [-0.05, 0.3, 0.9, -0.8],
];

test("AdamW: 3 steps match the bias-corrected Adam update with decoupled weight decay", () => {
  torch.tidy(() => {
    const h: AdamHyper = { lr: 0.05, betas: [0.9, 0.99], eps: 1e-8, weightDecay: 0.1 };
    const p = param(P0);
    const opt = new torch.AdamW([p], h);
    for (const g of GRADS.slice(0, 3)) {
      setGrad(p, g);
      opt.step();
    }
    const ref = adamwReference(P0, GRADS.slice(0, 3), h);
    allClose(arr(p), ref.p, 1e-12, "param");
    const s = opt.stateDict().state[0];
    assert.equal(s.step, 3);
    allClose(arr(s.expAvg as Tensor), ref.m, 1e-12, "expAvg");
    allClose(arr(s.expAvgSq as Tensor), ref.v, 1e-12, "expAvgSq");
    // The parameter is still a leaf that requires grad, with its grad untouched.
    assert.ok(p.requiresGrad && p.isLeaf);
    allClose(arr(p.grad!), GRADS[2], 0, "grad");
    opt.dispose();
  });
});

test("AdamW: PyTorch's defaults (lr 1e-3, betas (0.9, 0.999), eps 1e-8, weight decay 1e-2)", () => {
  torch.tidy(() => {
    const p = param(P0);
    const opt = new torch.AdamW([p]);
    const g = opt.paramGroups[0];
    assert.deepEqual([g.lr, g.betas, g.eps, g.weightDecay, g.initialLr], [1e-3, [0.9, 0.999], 1e-8, 1e-2, 1e-3]);
    for (const gr of GRADS.slice(0, 2)) {
      setGrad(p, gr);
      opt.step();
    }
    allClose(
      arr(p),
      adamwReference(P0, GRADS.slice(0, 2), { lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 1e-2 }).p,
      1e-12,
      "param",
    );
    opt.dispose();
  });
});

test("AdamW: parameter groups carry their own lr, weightDecay and betas; weightDecay 0 does not decay", () => {
  torch.tidy(() => {
    const a = param(P0),
      b = param(P0.map((x) => -2 * x)),
      c = param([3, -4]),
      d = param([3, -4]);
    const opt = new torch.AdamW(
      [
        { params: [a], lr: 0.1, weightDecay: 0.5 },
        { params: [b], weightDecay: 0, betas: [0.8, 0.9] },
        { params: [c] },
        { params: [d], lr: 0.2, weightDecay: 0 },
      ],
      { lr: 0.01, weightDecay: 0.2 },
    );
    assert.deepEqual(
      opt.paramGroups.map((g) => [g.lr, g.weightDecay, g.betas]),
      [
        [0.1, 0.5, [0.9, 0.999]],
        [0.01, 0, [0.8, 0.9]],
        [0.01, 0.2, [0.9, 0.999]],
        [0.2, 0, [0.9, 0.999]],
      ],
    );
    const gb = GRADS.map((g) => g.map((x) => x * 3));
    for (let k = 0; k < 3; k++) {
      setGrad(a, GRADS[k]);
      setGrad(b, gb[k]);
      setGrad(c, [0, 0]);
      setGrad(d, [0, 0]); // a zero gradient: Adam's step is exactly 0
      opt.step();
    }
    allClose(
      arr(a),
      adamwReference(P0, GRADS.slice(0, 3), { lr: 0.1, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0.5 }).p,
      1e-12,
      "a",
    );
    allClose(
      arr(b),
      adamwReference(
        P0.map((x) => -2 * x),
        gb.slice(0, 3),
        { lr: 0.01, betas: [0.8, 0.9], eps: 1e-8, weightDecay: 0 },
      ).p,
      1e-12,
      "b",
    );
    // c decays only: (1 - lr * wd)^3; d (weightDecay 0) does not move at all.
    const f = (1 - 0.01 * 0.2) ** 3;
    allClose(arr(c), [3 * f, -4 * f], 1e-14, "c");
    assert.deepEqual(arr(d), [3, -4]);
    opt.dispose();
  });
});

test("AdamW: parameters without a gradient are skipped (no decay, no state)", () => {
  torch.tidy(() => {
    const a = param(P0),
      b = param([1, 2, 3]);
    const opt = new torch.AdamW([a, b], { lr: 0.1, weightDecay: 0.5 });
    setGrad(a, GRADS[0]);
    opt.step();
    opt.step(); // a's gradient is still there: two steps with the same gradient
    assert.deepEqual(arr(b), [1, 2, 3]);
    const sd = opt.stateDict();
    assert.deepEqual(Object.keys(sd.state), ["0"]);
    assert.deepEqual(sd.paramGroups[0].params, [0, 1]);
    allClose(
      arr(a),
      adamwReference(P0, [GRADS[0], GRADS[0]], { lr: 0.1, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0.5 }).p,
      1e-12,
      "a",
    );
    // zeroGrad drops the gradients (set_to_none): the next step changes nothing.
    opt.zeroGrad();
    assert.equal(a.grad, null);
    const before = arr(a);
    opt.step();
    assert.deepEqual(arr(a), before);
    assert.equal(opt.stateDict().state[0].step, 2);
    opt.dispose();
  });
});

test("optimizer: constructor rejects shared parameters, parameters without requiresGrad and a negative lr", () => {
  torch.tidy(() => {
    const a = param([1]),
      b = f64([2]);
    assert.throws(() => new torch.AdamW([{ params: [a] }, { params: [a] }]), /more than one group/);
    assert.throws(() => new torch.AdamW([b]), /does not require grad/);
    assert.throws(() => new torch.AdamW([a], { lr: -1 }), /learning rate must be >= 0/);
    assert.throws(() => new torch.SGD([a], { lr: 0.1, nesterov: true }), /Nesterov/);
    assert.throws(() => new torch.SGD([a], { lr: 0.1, nesterov: true, momentum: 0.9, dampening: 0.1 }), /Nesterov/);
  });
});

function makeAdamW(ps: Tensor[]) {
  return new torch.AdamW(
    [
      { params: [ps[0], ps[1]], lr: 0.03 },
      { params: [ps[2]], weightDecay: 0, betas: [0.85, 0.95] },
    ],
    { lr: 0.01, weightDecay: 0.1 },
  );
}

test("AdamW: stateDict()/loadStateDict() round trip continues identically", () => {
  torch.tidy(() => {
    const inits = [P0, [0.25, -0.75], [1, 2, 3]];
    const ps = inits.map(param);
    const gradsFor = (k: number) => ps.map((p, j) => values(p.numel(), 7 * k + j));
    const opt = makeAdamW(ps);
    for (let k = 0; k < 3; k++) {
      ps.forEach((p, j) => setGrad(p, gradsFor(k)[j]));
      opt.step();
    }
    const saved = opt.stateDict();
    assert.deepEqual(Object.keys(saved.state), ["0", "1", "2"]);
    assert.deepEqual(
      saved.paramGroups.map((g) => g.params),
      [[0, 1], [2]],
    );

    const qs = ps.map((p) => p.detach().clone().requiresGrad_());
    const fresh = makeAdamW(qs);
    fresh.paramGroups[0].lr = 123; // overwritten by the saved hyperparameters
    fresh.loadStateDict(saved);
    assert.equal(fresh.paramGroups[0].lr, 0.03);
    for (let k = 3; k < 5; k++) {
      ps.forEach((p, j) => setGrad(p, gradsFor(k)[j]));
      qs.forEach((q, j) => setGrad(q, gradsFor(k)[j]));
      opt.step();
      fresh.step();
    }
    ps.forEach((p, j) => assert.deepEqual(arr(qs[j]), arr(p), `param ${j}`));
    assert.equal(fresh.stateDict().state[2].step, 5);
    // And both equal five uninterrupted reference steps.
    const all = [0, 1, 2, 3, 4].map(gradsFor);
    allClose(
      arr(ps[2]),
      adamwReference(
        inits[2],
        all.map((g) => g[2]),
        { lr: 0.01, betas: [0.85, 0.95], eps: 1e-8, weightDecay: 0 },
      ).p,
      1e-12,
      "p2",
    );
    allClose(
      arr(ps[0]),
      adamwReference(
        inits[0],
        all.map((g) => g[0]),
        { lr: 0.03, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0.1 },
      ).p,
      1e-12,
      "p0",
    );
    opt.dispose();
    fresh.dispose();
  });
});

test("AdamW: loadStateDict(own stateDict()) keeps the state (snapshot before replacing)", () => {
  torch.tidy(() => {
    const p = param(P0);
    const opt = new torch.AdamW([p], { lr: 0.05 });
    for (const g of GRADS.slice(0, 2)) {
      setGrad(p, g);
      opt.step();
    }
    opt.loadStateDict(opt.stateDict());
    setGrad(p, GRADS[2]);
    opt.step();
    allClose(
      arr(p),
      adamwReference(P0, GRADS.slice(0, 3), { lr: 0.05, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 1e-2 }).p,
      1e-12,
      "param",
    );
    opt.dispose();
  });
});

test("AdamW: loadStateDict rejects mismatched groups, parameter counts, shapes and indices, changing nothing", () => {
  torch.tidy(() => {
    const ps = [P0, [0.25, -0.75], [1, 2, 3]].map(param);
    const opt = makeAdamW(ps);
    ps.forEach((p, j) => setGrad(p, values(p.numel(), j + 1)));
    opt.step();
    const saved = opt.stateDict();

    const oneGroup = new torch.AdamW([param(P0), param([0, 0]), param([0, 0, 0])]);
    assert.throws(() => oneGroup.loadStateDict(saved), /2 parameter groups saved, optimizer has 1/);

    const fewer = new torch.AdamW([{ params: [param(P0)] }, { params: [param([0, 0, 0])] }]);
    assert.throws(() => fewer.loadStateDict(saved), /group 0 saved 2 parameters, has 1/);

    const shapes = [P0, [0.25, -0.75], [1, 2, 3, 4]].map(param);
    const wrongShape = makeAdamW(shapes);
    shapes.forEach((p) => setGrad(p, values(p.numel(), 9)));
    wrongShape.step();
    const stateBefore = wrongShape.stateDict();
    const snapshot = arr(stateBefore.state[2].expAvg as Tensor);
    wrongShape.paramGroups[0].lr = 0.5;
    assert.throws(() => wrongShape.loadStateDict(saved), /expAvg of parameter 2 has shape \[3\], parameter has \[4\]/);
    // A failed load leaves the optimizer as it was: hyperparameters and state.
    assert.equal(wrongShape.paramGroups[0].lr, 0.5);
    assert.deepEqual(arr(wrongShape.stateDict().state[2].expAvg as Tensor), snapshot);

    const extra = { ...saved, state: { ...saved.state, 7: saved.state[0] } };
    assert.throws(
      () => makeAdamW([P0, [0, 0], [0, 0, 0]].map(param)).loadStateDict(extra),
      /state for parameter 7, which does not exist/,
    );
    opt.dispose();
    wrongShape.dispose();
  });
});

// ---- SGD --------------------------------------------------------------------------------

interface SgdHyper {
  lr: number;
  momentum?: number;
  dampening?: number;
  nesterov?: boolean;
  weightDecay?: number;
}

/** torch.optim.SGD in plain numbers. */
function sgdReference(p0: number[], grads: number[][], h: SgdHyper): number[] {
  const p = [...p0];
  const mom = h.momentum ?? 0,
    damp = h.dampening ?? 0,
    wd = h.weightDecay ?? 0;
  let buf: number[] | null = null;
  for (const g of grads) {
    let d = g.map((x, i) => x + wd * p[i]);
    if (mom !== 0) {
      buf = buf === null ? [...d] : buf.map((b, i) => mom * b + (1 - damp) * d[i]);
      const bb = buf;
      d = h.nesterov ? d.map((x, i) => x + mom * bb[i]) : [...bb];
    }
    for (let i = 0; i < p.length; i++) p[i] -= h.lr * d[i];
  }
  return p;
}

const SGD_CASES: SgdHyper[] = [
  { lr: 0.1 },
  { lr: 0.1, momentum: 0.9 },
  { lr: 0.05, momentum: 0.9, dampening: 0.3 },
  { lr: 0.05, momentum: 0.8, nesterov: true },
  { lr: 0.1, weightDecay: 0.25 },
  { lr: 0.02, momentum: 0.7, dampening: 0.1, weightDecay: 0.05 },
  { lr: 0.02, momentum: 0.9, nesterov: true, weightDecay: 0.1 },
];

for (const h of SGD_CASES) {
  test(`SGD ${JSON.stringify(h)}: 4 steps match the hand-computed update`, () => {
    torch.tidy(() => {
      const p = param(P0);
      const opt = new torch.SGD([p], h);
      for (const g of GRADS.slice(0, 4)) {
        setGrad(p, g);
        opt.step();
      }
      allClose(arr(p), sgdReference(P0, GRADS.slice(0, 4), h), 1e-12, "param");
      opt.dispose();
    });
  });
}

test("SGD: hand-checked numbers, plain and with momentum", () => {
  torch.tidy(() => {
    // plain: 1 - 0.5 * 0.2 = 0.9; then 0.9 - 0.5 * (-0.4) = 1.1
    const p = param([1]);
    const plain = new torch.SGD([p], { lr: 0.5 });
    setGrad(p, [0.2]);
    plain.step();
    setGrad(p, [-0.4]);
    plain.step();
    allClose(arr(p), [1.1], 1e-15);
    // momentum 0.5: buf 0.2 -> p 0.9; buf 0.5*0.2 + (-0.4) = -0.3 -> p 0.9 + 0.15 = 1.05
    const q = param([1]);
    const mom = new torch.SGD([q], { lr: 0.5, momentum: 0.5 });
    setGrad(q, [0.2]);
    mom.step();
    setGrad(q, [-0.4]);
    mom.step();
    allClose(arr(q), [1.05], 1e-15);
    assert.deepEqual(arr(mom.stateDict().state[0].momentumBuffer as Tensor), [-0.30000000000000004]);
  });
});

test("SGD: momentum state round-trips through stateDict()", () => {
  torch.tidy(() => {
    const h: SgdHyper = { lr: 0.05, momentum: 0.9, dampening: 0.2 };
    const p = param(P0);
    const opt = new torch.SGD([p], h);
    for (const g of GRADS.slice(0, 2)) {
      setGrad(p, g);
      opt.step();
    }
    const q = p.detach().clone().requiresGrad_();
    const fresh = new torch.SGD([q], { lr: 1 });
    fresh.loadStateDict(opt.stateDict());
    assert.equal(fresh.paramGroups[0].momentum, 0.9);
    for (const g of GRADS.slice(2, 5)) {
      setGrad(p, g);
      setGrad(q, g);
      opt.step();
      fresh.step();
    }
    assert.deepEqual(arr(q), arr(p));
    allClose(arr(p), sgdReference(P0, GRADS, h), 1e-12, "param");
  });
});

// ---- clipGradNorm -----------------------------------------------------------------------

test("clipGradNorm: returns the pre-clip 2-norm and scales to maxNorm when above it", () => {
  torch.tidy(() => {
    const a = param([0, 0, 0]),
      b = param([0, 0]),
      c = param([5]);
    setGrad(a, [3, 0, -4]);
    setGrad(b, [12, 0]); // joint norm 13; c has no grad and is ignored
    const total = torch.clipGradNorm([a, b, c], 6.5);
    assert.equal(total, 13);
    const coef = 6.5 / (13 + 1e-6);
    allClose(arr(a.grad!), [3 * coef, 0, -4 * coef], 1e-15, "a");
    allClose(arr(b.grad!), [12 * coef, 0], 1e-15, "b");
    assert.equal(c.grad, null);
    const after = Math.hypot(...arr(a.grad!), ...arr(b.grad!));
    assert.ok(Math.abs(after - 6.5) < 1e-6, `norm after clipping ${after}`);
  });
});

test("clipGradNorm: leaves gradients alone below maxNorm; no gradients gives 0", () => {
  torch.tidy(() => {
    const a = param([0, 0, 0]),
      b = param([0, 0]);
    setGrad(a, [3, 0, -4]);
    setGrad(b, [12, 0]);
    assert.equal(torch.clipGradNorm([a, b], 20), 13);
    assert.deepEqual(arr(a.grad!), [3, 0, -4]);
    assert.deepEqual(arr(b.grad!), [12, 0]);
    assert.equal(torch.clipGradNorm([param([1])], 1), 0);
  });
});

test("clipGradNorm: normType Infinity (max |g|) and 1", () => {
  torch.tidy(() => {
    const a = param([0, 0, 0]),
      b = param([0, 0]);
    setGrad(a, [3, 0, -7]);
    setGrad(b, [-2, 5]);
    assert.equal(torch.clipGradNorm([a, b], 3.5, Infinity), 7);
    const coef = 3.5 / (7 + 1e-6);
    allClose(arr(a.grad!), [3 * coef, 0, -7 * coef], 1e-15, "a");
    allClose(arr(b.grad!), [-2 * coef, 5 * coef], 1e-15, "b");
    // One parameter, normType Infinity.
    const c = param([0, 0]);
    setGrad(c, [-9, 4]);
    assert.equal(torch.clipGradNorm([c], 100, Infinity), 9);
    assert.deepEqual(arr(c.grad!), [-9, 4]);
    // normType 1: sum of |g|.
    const d = param([0, 0]),
      e = param([0]);
    setGrad(d, [1.5, -2]);
    setGrad(e, [0.5]);
    assert.ok(Math.abs(torch.clipGradNorm([d, e], 2, 1) - 4) < 1e-15);
    const c1 = 2 / (4 + 1e-6);
    allClose([...arr(d.grad!), ...arr(e.grad!)], [1.5 * c1, -2 * c1, 0.5 * c1], 1e-15, "l1");
  });
});

// ---- LR schedules -----------------------------------------------------------------------

// transformers' lambdas (optimization.py), written out independently.
const refConstant = (_s: number) => 1;
const refConstantWarmup = (w: number) => (s: number) => (s < w ? s / Math.max(1, w) : 1);
const refLinear = (w: number, n: number) => (s: number) =>
  s < w ? s / Math.max(1, w) : Math.max(0, (n - s) / Math.max(1, n - w));
const refCosine =
  (w: number, n: number, cycles = 0.5) =>
  (s: number) => {
    if (s < w) return s / Math.max(1, w);
    const progress = (s - w) / Math.max(1, n - w);
    return Math.max(0, 0.5 * (1 + Math.cos(Math.PI * cycles * 2 * progress)));
  };

test("scheduleMultiplier: constant, constant_with_warmup, linear and cosine match transformers' lambdas", () => {
  const N = 20;
  const cases: [torch.ScheduleOptions, (s: number) => number][] = [
    [{ type: "constant" }, refConstant],
    [{ type: "constant", totalSteps: N, warmupSteps: 5 }, refConstant],
    [{ type: "constant_with_warmup", warmupSteps: 4 }, refConstantWarmup(4)],
    [{ type: "constant_with_warmup" }, refConstantWarmup(0)],
    [{ type: "linear", totalSteps: N }, refLinear(0, N)],
    [{ type: "linear", totalSteps: N, warmupSteps: 3 }, refLinear(3, N)],
    [{ type: "cosine", totalSteps: N }, refCosine(0, N)],
    [{ type: "cosine", totalSteps: N, warmupSteps: 6 }, refCosine(6, N)],
    [{ type: "cosine", totalSteps: N, warmupSteps: 2, numCycles: 1.5 }, refCosine(2, N, 1.5)],
    // warmupRatio: ceil(total * ratio) steps.
    [{ type: "linear", totalSteps: N, warmupRatio: 0.12 }, refLinear(3, N)], // ceil(2.4) = 3
    [{ type: "cosine", totalSteps: N, warmupRatio: 0.25 }, refCosine(5, N)], // exactly 5
    [{ type: "constant_with_warmup", totalSteps: 7, warmupRatio: 0.5 }, refConstantWarmup(4)], // ceil(3.5)
    // warmupSteps wins over warmupRatio; warmupSteps 0 falls back to the ratio, as transformers.
    [{ type: "linear", totalSteps: N, warmupSteps: 2, warmupRatio: 0.5 }, refLinear(2, N)],
    [{ type: "linear", totalSteps: N, warmupSteps: 0, warmupRatio: 0.5 }, refLinear(10, N)],
  ];
  for (const [options, ref] of cases) {
    for (let s = 0; s <= N + 3; s++) {
      const got = torch.scheduleMultiplier(options, s);
      assert.ok(Math.abs(got - ref(s)) <= 1e-15, `${JSON.stringify(options)} step ${s}: ${got} vs ${ref(s)}`);
    }
  }
  // Spot values: warmup starts at 0 (as transformers), linear reaches 0 at totalSteps and stays there.
  assert.equal(torch.scheduleMultiplier({ type: "linear", totalSteps: 10, warmupSteps: 2 }, 0), 0);
  assert.equal(torch.scheduleMultiplier({ type: "linear", totalSteps: 10, warmupSteps: 2 }, 1), 0.5);
  assert.equal(torch.scheduleMultiplier({ type: "linear", totalSteps: 10, warmupSteps: 2 }, 2), 1);
  assert.equal(torch.scheduleMultiplier({ type: "linear", totalSteps: 10, warmupSteps: 2 }, 6), 0.5);
  assert.equal(torch.scheduleMultiplier({ type: "linear", totalSteps: 10, warmupSteps: 2 }, 10), 0);
  assert.equal(torch.scheduleMultiplier({ type: "linear", totalSteps: 10, warmupSteps: 2 }, 12), 0);
  assert.equal(torch.scheduleMultiplier({ type: "cosine", totalSteps: 10 }, 5), 0.5 * (1 + Math.cos(Math.PI * 0.5)));
  assert.equal(torch.scheduleMultiplier({ type: "cosine", totalSteps: 10 }, 10), 0);
  assert.equal(torch.warmupStepsOf({ type: "linear", totalSteps: 100, warmupRatio: 0.03 }), 3);
  assert.equal(torch.warmupStepsOf({ type: "linear", totalSteps: 101, warmupRatio: 0.03 }), 4); // ceil(3.03)
  assert.equal(torch.warmupStepsOf({ type: "linear", totalSteps: 100 }), 0);
});

test("LRScheduler: sets every group's lr from its own initial lr, step by step", () => {
  torch.tidy(() => {
    const a = param([1, 2]),
      b = param([3]);
    const opt = new torch.SGD(
      [
        { params: [a], lr: 0.1 },
        { params: [b], lr: 0.02 },
      ],
      { lr: 1 },
    );
    const N = 12,
      ref = refCosine(3, N);
    const sched = new torch.LRScheduler(opt, { type: "cosine", totalSteps: N, warmupSteps: 3 });
    assert.deepEqual(sched.getLastLr(), [0, 0]); // step 0 of the warmup
    assert.equal(sched.lastStep, 0);
    for (let s = 1; s <= N + 1; s++) {
      sched.step();
      assert.equal(sched.lastStep, s);
      const lrs = sched.getLastLr();
      assert.ok(
        Math.abs(lrs[0] - 0.1 * ref(s)) < 1e-16 && Math.abs(lrs[1] - 0.02 * ref(s)) < 1e-16,
        `step ${s}: ${lrs}`,
      );
      assert.deepEqual(
        opt.paramGroups.map((g) => g.lr),
        lrs,
      );
      assert.deepEqual(
        opt.paramGroups.map((g) => g.initialLr),
        [0.1, 0.02],
      );
    }
  });
});

test("LRScheduler: the scheduled lr is the one the optimizer uses", () => {
  torch.tidy(() => {
    const p = param([1]);
    const opt = new torch.SGD([p], { lr: 0.5 });
    const sched = new torch.LRScheduler(opt, { type: "linear", totalSteps: 4, warmupSteps: 1 });
    const expected = [1];
    for (let s = 0; s < 4; s++) {
      setGrad(p, [1]);
      opt.step();
      expected[0] -= 0.5 * refLinear(1, 4)(s);
      sched.step();
    }
    // lr multipliers 0, 1, 2/3, 1/3: 1 - 0.5 * 2 = 0
    allClose(arr(p), expected, 1e-15);
    allClose(arr(p), [0], 1e-15);
  });
});

test("LRScheduler: stateDict()/loadStateDict() restore the step", () => {
  torch.tidy(() => {
    const options: torch.ScheduleOptions = { type: "linear", totalSteps: 10, warmupRatio: 0.2 };
    const opt = new torch.AdamW([param([1])], { lr: 0.4 });
    const sched = new torch.LRScheduler(opt, options);
    for (let s = 0; s < 6; s++) sched.step();
    const saved = sched.stateDict();
    assert.deepEqual(saved, { step: 6 });

    const opt2 = new torch.AdamW([param([1])], { lr: 0.4 });
    const sched2 = new torch.LRScheduler(opt2, options);
    assert.equal(sched2.getLastLr()[0], 0);
    sched2.loadStateDict(saved);
    assert.equal(sched2.lastStep, 6);
    assert.deepEqual(sched2.getLastLr(), sched.getLastLr());
    assert.ok(Math.abs(sched2.getLastLr()[0] - 0.4 * refLinear(2, 10)(6)) < 1e-16);
    sched.step();
    sched2.step();
    assert.deepEqual(sched2.getLastLr(), sched.getLastLr());
    assert.ok(Math.abs(sched2.getLastLr()[0] - 0.4 * refLinear(2, 10)(7)) < 1e-16);
  });
});

test("LRScheduler: unknown type, missing totalSteps and a bad warmupRatio throw", () => {
  torch.tidy(() => {
    const opt = new torch.AdamW([param([1])]);
    const bad = { type: "exponential" } as unknown as torch.ScheduleOptions;
    assert.throws(() => new torch.LRScheduler(opt, bad), /unknown lr_scheduler_type 'exponential'/);
    assert.throws(() => torch.scheduleMultiplier(bad, 3), /unknown lr_scheduler_type/);
    assert.throws(() => new torch.LRScheduler(opt, { type: "linear" }), /linear schedule needs totalSteps > 0/);
    assert.throws(
      () => new torch.LRScheduler(opt, { type: "linear", totalSteps: 0, warmupSteps: 2 }),
      /linear schedule needs totalSteps > 0/,
    );
    assert.throws(
      () => new torch.LRScheduler(opt, { type: "cosine", warmupSteps: 2 }),
      /cosine schedule needs totalSteps > 0/,
    );
    assert.throws(
      () => new torch.LRScheduler(opt, { type: "linear", totalSteps: 10, warmupRatio: 1.5 }),
      /warmup_ratio must be in \[0, 1\]/,
    );
    // A failed construction leaves the optimizer's lr alone.
    assert.equal(opt.paramGroups[0].lr, 1e-3);
    // constant and constant_with_warmup need no totalSteps.
    assert.doesNotThrow(() => new torch.LRScheduler(opt, { type: "constant" }));
    assert.doesNotThrow(() => new torch.LRScheduler(opt, { type: "constant_with_warmup", warmupSteps: 3 }));
  });
});
