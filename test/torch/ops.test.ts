// Forward values of the tensor API against closed forms and results worked out by hand:
// creation, dtypes, shape ops, elementwise math, reductions and the nn building blocks.
import { test } from "node:test";
import assert from "node:assert/strict";
import { closeSync, mkdtempSync, openSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { torch, type Tensor } from "../../src/index.js";
import type { DType, NestedArray } from "../../src/torch/index.js";
import { values } from "../helpers/gradcheck.js";

// ---- helpers ----------------------------------------------------------------------------

/** Flattens nested arrays (booleans as 0/1). */
function flat(x: NestedArray): number[] {
  if (Array.isArray(x)) return x.flatMap(flat);
  return [Number(x)];
}

/** The tensor's elements as plain numbers, row-major. */
const nums = (t: Tensor): number[] => flat(t.toArray());

function close(actual: Tensor | NestedArray, expected: NestedArray, tol = 1e-6, what = ""): void {
  const a = actual instanceof torch.Tensor ? nums(actual) : flat(actual);
  const e = flat(expected);
  assert.equal(a.length, e.length, `${what}: ${a.length} elements, expected ${e.length}`);
  for (let i = 0; i < e.length; i++) {
    const ok =
      (Number.isNaN(e[i]) && Number.isNaN(a[i])) ||
      a[i] === e[i] ||
      Math.abs(a[i] - e[i]) <= tol * Math.max(1, Math.abs(e[i]));
    assert.ok(ok, `${what}[${i}]: got ${a[i]}, expected ${e[i]} (|diff| ${Math.abs(a[i] - e[i])})`);
  }
}

function same(t: Tensor, expected: NestedArray, dtype?: DType, shape?: number[]): void {
  if (dtype) assert.equal(t.dtype, dtype, "dtype");
  if (shape) assert.deepEqual(t.shape, shape, "shape");
  assert.deepEqual(t.toArray(), expected);
}

const f64 = (v: NestedArray) => torch.tensor(v, { dtype: "float64" });
const i64 = (v: NestedArray) => torch.tensor(v, { dtype: "int64" });
const run = (fn: () => void) => () => {
  torch.tidy(fn);
};

/** erf to ~1e-14 on [-4, 4] (Taylor series; JavaScript has no Math.erf). */
function erf(x: number): number {
  let term = x,
    sum = x;
  for (let n = 1; n < 200; n++) {
    term *= (-x * x) / n;
    const add = term / (2 * n + 1);
    sum += add;
    if (Math.abs(add) < 1e-17) break;
  }
  return (2 / Math.sqrt(Math.PI)) * sum;
}

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));
const softplus = (x: number) => Math.log1p(Math.exp(x));

// ---- creation ---------------------------------------------------------------------------

test(
  "tensor(): numbers, nested arrays, booleans, scalars and empty",
  run(() => {
    same(torch.tensor(2.5), 2.5, "float32", []);
    same(torch.tensor([1, 2, 3]), [1, 2, 3], "float32", [3]);
    same(
      torch.tensor([
        [1, 2, 3],
        [4, 5, 6],
      ]),
      [
        [1, 2, 3],
        [4, 5, 6],
      ],
      "float32",
      [2, 3],
    );
    same(
      torch.tensor([
        [[1], [2]],
        [[3], [4]],
      ]),
      [
        [[1], [2]],
        [[3], [4]],
      ],
      "float32",
      [2, 2, 1],
    );
    same(torch.tensor(true), true, "bool", []);
    same(
      torch.tensor([
        [true, false],
        [false, true],
      ]),
      [
        [true, false],
        [false, true],
      ],
      "bool",
      [2, 2],
    );
    same(torch.tensor([]), [], "float32", [0]);
    same(torch.tensor([1, 2], { dtype: "int64" }), [1, 2], "int64");
    // float32 storage: 0.1 is rounded to float32.
    assert.equal(torch.tensor([0.1]).toArray().toString(), String(Math.fround(0.1)));
    same(torch.tensor([0.1], { dtype: "float64" }), [0.1], "float64");
    const g = torch.tensor([1, 2], { requiresGrad: true });
    assert.equal(g.requiresGrad, true);
  }),
);

test(
  "tensor(): a shape option reshapes flat data (nested or typed)",
  run(() => {
    same(
      torch.tensor([1, 2, 3, 4, 5, 6], { shape: [2, 3] }),
      [
        [1, 2, 3],
        [4, 5, 6],
      ],
      "float32",
      [2, 3],
    );
    same(
      torch.tensor(new Int32Array([1, 2, 3, 4]), { shape: [2, 2] }),
      [
        [1, 2],
        [3, 4],
      ],
      "int32",
      [2, 2],
    );
    assert.throws(() => torch.tensor([1, 2, 3], { shape: [2, 2] }), /shape|element/i);
  }),
);

test(
  "tensor(): typed arrays keep their dtype and copy the data",
  run(() => {
    same(torch.tensor(new Float32Array([1.5, -2])), [1.5, -2], "float32", [2]);
    same(torch.tensor(new Float64Array([0.1, 0.2])), [0.1, 0.2], "float64", [2]);
    same(torch.tensor(new BigInt64Array([1n, -2n, 9007199254740991n])), [1, -2, 9007199254740991], "int64");
    same(torch.tensor(new Int32Array([7, -7])), [7, -7], "int32");
    same(torch.tensor(new Int16Array([300, -300])), [300, -300], "int16");
    same(torch.tensor(new Int8Array([-128, 127])), [-128, 127], "int8");
    same(torch.tensor(new Uint8Array([0, 255])), [0, 255], "uint8");
    // With a dtype the typed array is converted.
    same(torch.tensor(new Float32Array([1.75, -1.75]), { dtype: "int64" }), [1, -1], "int64");
    // A copy: writing to the source afterwards does not change the tensor.
    const src = new Float32Array([1, 2]);
    const t = torch.tensor(src);
    src[0] = 100;
    same(t, [1, 2]);
  }),
);

test(
  "zeros, ones, full, empty",
  run(() => {
    same(
      torch.zeros([2, 2]),
      [
        [0, 0],
        [0, 0],
      ],
      "float32",
      [2, 2],
    );
    same(torch.ones([3], { dtype: "int64" }), [1, 1, 1], "int64");
    same(torch.full([2], 3), [3, 3], "float32");
    same(torch.full([2], 3, { dtype: "int32" }), [3, 3], "int32");
    same(torch.full([2], true), [true, true], "bool");
    same(torch.full([1], -0.5, { dtype: "float64" }), [-0.5], "float64");
    same(torch.zeros([]), 0, "float32", []);
    const e = torch.empty([4, 5], { dtype: "float64" });
    assert.deepEqual(e.shape, [4, 5]);
    assert.equal(e.dtype, "float64");
    assert.equal(torch.zeros([2], { requiresGrad: true }).requiresGrad, true);
  }),
);

test(
  "arange: int64 for whole numbers, float32 otherwise",
  run(() => {
    same(torch.arange(5), [0, 1, 2, 3, 4], "int64");
    same(torch.arange(2, 8, 2), [2, 4, 6], "int64");
    same(torch.arange(3, 0, -1), [3, 2, 1], "int64");
    same(torch.arange(0, 1, 0.25), [0, 0.25, 0.5, 0.75], "float32");
    same(torch.arange(0.5, 3), [0.5, 1.5, 2.5], "float32");
    same(torch.arange(3, undefined, 1, { dtype: "float64" }), [0, 1, 2], "float64");
  }),
);

test(
  "rand, randn, randint, randperm: reproducible under manualSeed and in range",
  run(() => {
    torch.manualSeed(1234);
    const a = nums(torch.rand([1000])),
      b = nums(torch.randn([1000])),
      c = nums(torch.randint(-3, 4, [1000]));
    torch.manualSeed(1234);
    assert.deepEqual(nums(torch.rand([1000])), a);
    assert.deepEqual(nums(torch.randn([1000])), b);
    assert.deepEqual(nums(torch.randint(-3, 4, [1000])), c);
    torch.manualSeed(1235);
    assert.notDeepEqual(nums(torch.rand([1000])), a);

    assert.ok(
      a.every((x) => x >= 0 && x < 1),
      "rand in [0, 1)",
    );
    const mean = a.reduce((s, x) => s + x, 0) / a.length;
    assert.ok(Math.abs(mean - 0.5) < 0.05, `rand mean ${mean}`);

    torch.manualSeed(7);
    const n = nums(torch.randn([20000]));
    const m = n.reduce((s, x) => s + x, 0) / n.length;
    const sd = Math.sqrt(n.reduce((s, x) => s + (x - m) ** 2, 0) / n.length);
    assert.ok(Math.abs(m) < 0.03 && Math.abs(sd - 1) < 0.03, `randn mean ${m} std ${sd}`);

    const r = torch.randint(-3, 4, [1000]);
    assert.equal(r.dtype, "int64");
    const rv = nums(r);
    assert.ok(
      rv.every((x) => Number.isInteger(x) && x >= -3 && x < 4),
      "randint in [low, high)",
    );
    assert.deepEqual(
      [...new Set(rv)].sort((x, y) => x - y),
      [-3, -2, -1, 0, 1, 2, 3],
      "every value drawn",
    );
    assert.equal(torch.randint(0, 5, [3], { dtype: "int32" }).dtype, "int32");
    assert.equal(torch.rand([2], { dtype: "float64" }).dtype, "float64");

    const p = torch.randperm(10);
    assert.equal(p.dtype, "int64");
    assert.deepEqual(
      nums(p).sort((x, y) => x - y),
      [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    );
  }),
);

test(
  "rng state: getRngState/setRngState replays the stream",
  run(() => {
    torch.manualSeed(3);
    const state = torch.getRngState();
    assert.equal(state.dtype, "uint8");
    const first = nums(torch.randn([10]));
    torch.setRngState(state);
    assert.deepEqual(nums(torch.randn([10])), first);
  }),
);

test(
  "zerosLike, onesLike, fullLike, randLike, randnLike: shape and dtype of the input",
  run(() => {
    const x = torch.zeros([2, 3], { dtype: "float64" });
    same(
      torch.zerosLike(x),
      [
        [0, 0, 0],
        [0, 0, 0],
      ],
      "float64",
      [2, 3],
    );
    same(
      torch.onesLike(x),
      [
        [1, 1, 1],
        [1, 1, 1],
      ],
      "float64",
      [2, 3],
    );
    same(
      torch.onesLike(x, { dtype: "int64" }),
      [
        [1, 1, 1],
        [1, 1, 1],
      ],
      "int64",
    );
    same(
      torch.fullLike(x, 2.5),
      [
        [2.5, 2.5, 2.5],
        [2.5, 2.5, 2.5],
      ],
      "float64",
    );
    torch.manualSeed(5);
    const r = torch.randLike(x);
    const rn = torch.randnLike(x);
    assert.deepEqual([r.dtype, r.shape, rn.dtype, rn.shape], ["float64", [2, 3], "float64", [2, 3]]);
    assert.ok(nums(r).every((v) => v >= 0 && v < 1));
    torch.manualSeed(5);
    assert.deepEqual(nums(torch.randLike(x)), nums(r));
    assert.deepEqual(nums(torch.randnLike(x)), nums(rn));
  }),
);

test(
  "fromBuffer copies: later writes on either side do not show in the other",
  run(() => {
    const src = new Float32Array([1, 2, 3, 4, 5, 6]);
    const t = torch.fromBuffer(src, { dtype: "float32", shape: [2, 3] });
    same(
      t,
      [
        [1, 2, 3],
        [4, 5, 6],
      ],
      "float32",
      [2, 3],
    );
    src[4] = 50;
    same(
      t,
      [
        [1, 2, 3],
        [4, 5, 6],
      ],
      "float32",
      [2, 3],
    );
    t.mul_(2);
    assert.deepEqual([...src], [1, 2, 3, 4, 50, 6]);
    // Asking for the old zero-copy sharing is an error, not a silent copy.
    assert.throws(
      () => torch.fromBuffer(src, { dtype: "float32", shape: [6], ...({ copy: false } as object) }),
      /copy: false is no longer supported.*readInto/,
    );

    // Raw bytes reinterpreted: an ArrayBuffer, and a byte view at an aligned offset.
    const bytes = new ArrayBuffer(24);
    new Float64Array(bytes).set([0.5, -1, 2]);
    same(torch.fromBuffer(bytes, { dtype: "float64", shape: [3] }), [0.5, -1, 2], "float64");
    same(torch.fromBuffer(new Uint8Array(bytes, 8, 16), { dtype: "float64", shape: [2] }), [-1, 2]);
    const i64v = new BigInt64Array([5n, -6n]);
    same(torch.fromBuffer(new Uint8Array(i64v.buffer), { dtype: "int64", shape: [2, 1] }), [[5], [-6]], "int64");
    // An unaligned offset reads the right values.
    const odd = new Uint8Array(9);
    const view = new DataView(odd.buffer);
    view.setFloat32(1, 1.5, true);
    view.setFloat32(5, -2.25, true);
    same(torch.fromBuffer(new Uint8Array(odd.buffer, 1, 8), { dtype: "float32", shape: [2] }), [1.5, -2.25]);
  }),
);

test(
  "readInto fills a tensor's own memory from a file; short at the end of the file; CPU contiguous only",
  run(() => {
    const file = join(mkdtempSync(join(tmpdir(), "omni-dpo-read-")), "bytes.bin");
    writeFileSync(
      file,
      Buffer.concat([Buffer.from([0xaa, 0xbb]), Buffer.from(new Float32Array([1.5, -2, 3, 4.25]).buffer)]),
    );
    const fd = openSync(file, "r");
    try {
      const t = torch.empty([2, 2]);
      assert.equal(torch.readInto(t, fd, 2), 16);
      same(
        t,
        [
          [1.5, -2],
          [3, 4.25],
        ],
        "float32",
        [2, 2],
      );
      const tail = torch.zeros([4]);
      assert.equal(torch.readInto(tail, fd, 10), 8, "the file ends after two elements");
      same(tail, [3, 4.25, 0, 0]);
      assert.equal(torch.readInto(torch.empty([0]), fd, 0), 0);
      assert.throws(
        () => torch.readInto(torch.empty([2, 2]).transpose(0, 1), fd, 0),
        /readInto: needs a contiguous CPU tensor/,
      );
      assert.throws(() => torch.readInto(torch.empty([1]), -1, 0), /readInto: fd must be an integer/);
    } finally {
      closeSync(fd);
    }
    assert.throws(() => torch.readInto(torch.empty([1]), fd, 0), /readInto: reading fd \d+: Bad file descriptor/);
  }),
);

test(
  "dataView: writes through in both directions; data() is a copy",
  run(() => {
    const t = torch.zeros([3]);
    const v = t.dataView() as Float32Array;
    assert.ok(v instanceof Float32Array);
    v[1] = 5;
    same(t, [0, 5, 0]);
    t.add_(1);
    assert.deepEqual([...v], [1, 6, 1]);
    const d = t.data() as Float32Array;
    d[0] = 42;
    same(t, [1, 6, 1]);
    // A non-contiguous tensor has no zero-copy view, its contiguous() copy does.
    const m = torch
      .tensor([
        [1, 2],
        [3, 4],
      ])
      .transpose(0, 1);
    assert.throws(() => m.dataView(), /contiguous/);
    assert.deepEqual([...(m.contiguous().dataView() as Float32Array)], [1, 3, 2, 4]);
  }),
);

// ---- dtypes -----------------------------------------------------------------------------

test(
  "dtypes: each one holds its values; to(dtype) round-trips",
  run(() => {
    const base = f64([0, 1, 2, 3]);
    const all: DType[] = ["float32", "float64", "float16", "bfloat16", "int64", "int32", "uint8", "bool"];
    for (const dt of all) {
      const t = torch.tensor([0, 1, 2, 3], { dtype: dt });
      assert.equal(t.dtype, dt);
      const expected = dt === "bool" ? [false, true, true, true] : [0, 1, 2, 3];
      assert.deepEqual(t.toArray(), expected, dt);
      const there = base.to(dt);
      assert.equal(there.dtype, dt);
      assert.deepEqual(there.to("float64").toArray(), dt === "bool" ? [0, 1, 1, 1] : [0, 1, 2, 3], `${dt} round trip`);
    }
    // Rounding to the 16-bit formats (1/3 in binary, rounded to nearest).
    close(
      f64([1 / 3])
        .to("float16")
        .to("float64"),
      [0.333251953125],
      0,
      "float16",
    );
    close(
      f64([1 / 3])
        .to("bfloat16")
        .to("float64"),
      [0.333984375],
      0,
      "bfloat16",
    );
    close(torch.tensor([65504, 1e-8], { dtype: "float16" }), [65504, 0], 0, "float16 range");
    // Float to integer truncates toward zero; nonzero is true.
    same(torch.tensor([1.9, -1.9]).to("int32"), [1, -1], "int32");
    same(torch.tensor([0, -0.5, 2]).to("bool"), [false, true, true], "bool");
    same(torch.tensor([300]).to("int64").to("uint8"), [44], "uint8");
    // Method shorthands.
    assert.deepEqual(
      [base.float().dtype, base.double().dtype, base.long().dtype, base.bool().dtype],
      ["float32", "float64", "int64", "bool"],
    );
    assert.equal(base.to({ dtype: "int32" }).dtype, "int32");
    assert.equal(base.cpu().device, "cpu");
    // data(): the typed array of the dtype (16-bit floats as raw bits).
    assert.ok(torch.ones([1]).data() instanceof Float32Array);
    assert.ok(base.data() instanceof Float64Array);
    assert.ok(torch.ones([1], { dtype: "int64" }).data() instanceof BigInt64Array);
    assert.ok(torch.ones([1], { dtype: "int32" }).data() instanceof Int32Array);
    assert.ok(torch.ones([1], { dtype: "bool" }).data() instanceof Uint8Array);
    assert.deepEqual([...torch.tensor([1.5, -2], { dtype: "float16" }).data()], [0x3e00, 0xc000]);
    assert.deepEqual([...torch.tensor([1.5], { dtype: "bfloat16" }).data()], [0x3fc0]);
  }),
);

test(
  "integer tensors with integer scalars stay integer; fractions promote to float",
  run(() => {
    const a = i64([1, 2, 3]);
    same(a.add(3), [4, 5, 6], "int64");
    same(a.sub(1), [0, 1, 2], "int64");
    same(a.mul(2), [2, 4, 6], "int64");
    same(a.add(i64([1, 1, 1]), 2), [3, 4, 5], "int64");
    same(a.add(0.5), [1.5, 2.5, 3.5], "float32");
    same(a.div(2), [0.5, 1, 1.5], "float32");
    same(a.div(2, "floor"), [0, 1, 1], "int64");
    same(a.sum(), 6, "int64");
    same(torch.tensor([1, 2], { dtype: "int32" }).add(1), [2, 3], "int32");
    same(torch.tensor([250], { dtype: "uint8" }).add(10), [4], "uint8");
    // A float tensor with an integer scalar stays float.
    same(torch.tensor([1.5]).add(1), [2.5], "float32");
    same(f64([1.5]).mul(2), [3], "float64");
    same(torch.tensor([true, false]).add(1), [2, 1], "int64");
  }),
);

// ---- shape ops --------------------------------------------------------------------------

test(
  "reshape, view, flatten, transpose, t, permute, contiguous",
  run(() => {
    const x = torch.arange(6);
    same(
      x.reshape(2, 3),
      [
        [0, 1, 2],
        [3, 4, 5],
      ],
      "int64",
      [2, 3],
    );
    same(
      x.reshape([3, -1]),
      [
        [0, 1],
        [2, 3],
        [4, 5],
      ],
      undefined,
      [3, 2],
    );
    same(x.view(3, 2), [
      [0, 1],
      [2, 3],
      [4, 5],
    ]);
    same(x.view(-1, 6), [[0, 1, 2, 3, 4, 5]]);
    const m = x.reshape(2, 3);
    same(
      m.transpose(0, 1),
      [
        [0, 3],
        [1, 4],
        [2, 5],
      ],
      undefined,
      [3, 2],
    );
    same(m.t(), [
      [0, 3],
      [1, 4],
      [2, 5],
    ]);
    same(m.transpose(-1, -2).contiguous().view(6), [0, 3, 1, 4, 2, 5]);
    same(m.flatten(), [0, 1, 2, 3, 4, 5]);
    const c = torch.arange(24).reshape(2, 3, 4);
    const p = c.permute(2, 0, 1);
    assert.deepEqual(p.shape, [4, 2, 3]);
    // p[k][i][j] == c[i][j][k]
    const cv = c.toArray() as number[][][],
      pv = p.toArray() as number[][][];
    for (let i = 0; i < 2; i++)
      for (let j = 0; j < 3; j++) for (let k = 0; k < 4; k++) assert.equal(pv[k][i][j], cv[i][j][k]);
    same(c.permute([1, 0, 2]).select(0, 1).select(0, 1), [16, 17, 18, 19]);
    same(
      c.flatten(1),
      nums(c).reduce((rows: number[][], v, i) => {
        (rows[Math.floor(i / 12)] ??= []).push(v);
        return rows;
      }, []),
    );
    assert.equal(m.size(1), 3);
    assert.equal(m.size(-1), 3);
    assert.deepEqual(m.size(), [2, 3]);
    assert.equal(c.ndim, 3);
    assert.equal(c.numel(), 24);
  }),
);

test(
  "squeeze, unsqueeze, expand, expandAs, repeat",
  run(() => {
    const x = torch.tensor([[[1], [2]]]); // [1, 2, 1]
    same(x.squeeze(), [1, 2], undefined, [2]);
    same(x.squeeze(0), [[1], [2]], undefined, [2, 1]);
    same(x.squeeze(-1), [[1, 2]], undefined, [1, 2]);
    same(x.squeeze(1), [[[1], [2]]], undefined, [1, 2, 1]); // not of size 1: unchanged
    const v = torch.tensor([1, 2, 3]);
    same(v.unsqueeze(0), [[1, 2, 3]], undefined, [1, 3]);
    same(v.unsqueeze(-1), [[1], [2], [3]], undefined, [3, 1]);
    same(
      v.unsqueeze(1).expand(3, 2),
      [
        [1, 1],
        [2, 2],
        [3, 3],
      ],
      undefined,
      [3, 2],
    );
    same(v.expand([2, -1]), [
      [1, 2, 3],
      [1, 2, 3],
    ]);
    same(v.expandAs(torch.zeros([2, 3])), [
      [1, 2, 3],
      [1, 2, 3],
    ]);
    same(
      torch.tensor([1, 2]).repeat(2, 2),
      [
        [1, 2, 1, 2],
        [1, 2, 1, 2],
      ],
      undefined,
      [2, 4],
    );
    same(torch.tensor([[1], [2]]).repeat([1, 3]), [
      [1, 1, 1],
      [2, 2, 2],
    ]);
  }),
);

test(
  "cat, stack, split (size and sizes), chunk, narrow, slice, select",
  run(() => {
    const a = torch.tensor([
        [1, 2],
        [3, 4],
      ]),
      b = torch.tensor([[5, 6]]);
    same(
      torch.cat([a, b]),
      [
        [1, 2],
        [3, 4],
        [5, 6],
      ],
      undefined,
      [3, 2],
    );
    same(torch.cat([a, a], 1), [
      [1, 2, 1, 2],
      [3, 4, 3, 4],
    ]);
    same(torch.cat([a, a], -1), [
      [1, 2, 1, 2],
      [3, 4, 3, 4],
    ]);
    same(
      torch.stack([torch.tensor([1, 2]), torch.tensor([3, 4])]),
      [
        [1, 2],
        [3, 4],
      ],
      undefined,
      [2, 2],
    );
    same(torch.stack([torch.tensor([1, 2]), torch.tensor([3, 4])], 1), [
      [1, 3],
      [2, 4],
    ]);
    same(
      torch.stack([a, a], 2),
      [
        [
          [1, 1],
          [2, 2],
        ],
        [
          [3, 3],
          [4, 4],
        ],
      ],
      undefined,
      [2, 2, 2],
    );

    const x = torch.arange(5);
    assert.deepEqual(
      x.split(2).map((t) => t.toArray()),
      [[0, 1], [2, 3], [4]],
    );
    assert.deepEqual(
      x.split([1, 4]).map((t) => t.toArray()),
      [[0], [1, 2, 3, 4]],
    );
    const m = torch.arange(6).reshape(2, 3);
    assert.deepEqual(
      m.split([2, 1], 1).map((t) => t.toArray()),
      [
        [
          [0, 1],
          [3, 4],
        ],
        [[2], [5]],
      ],
    );
    assert.deepEqual(
      torch
        .arange(6)
        .chunk(3)
        .map((t) => t.toArray()),
      [
        [0, 1],
        [2, 3],
        [4, 5],
      ],
    );
    assert.deepEqual(
      torch
        .arange(5)
        .chunk(2)
        .map((t) => t.toArray()),
      [
        [0, 1, 2],
        [3, 4],
      ],
    );
    assert.deepEqual(
      m.chunk(3, 1).map((t) => t.toArray()),
      [
        [[0], [3]],
        [[1], [4]],
        [[2], [5]],
      ],
    );

    same(x.narrow(0, 1, 3), [1, 2, 3]);
    same(m.narrow(1, 1, 2), [
      [1, 2],
      [4, 5],
    ]);
    const y = torch.arange(6);
    same(y.slice(0, 1, null, 2), [1, 3, 5]);
    same(y.slice(0, -3), [3, 4, 5]);
    same(y.slice(0, null, 2), [0, 1]);
    same(y.slice(0, 4, 100), [4, 5]);
    same(m.slice(1, 1), [
      [1, 2],
      [4, 5],
    ]);
    same(m.select(0, 1), [3, 4, 5], undefined, [3]);
    same(m.select(1, -1), [2, 5]);
    // Views share memory: an in-place write to a slice shows in the base.
    const base = torch.zeros([4]);
    base.slice(0, 1, 3).fill_(7);
    same(base, [0, 7, 7, 0]);
  }),
);

test(
  "indexSelect, gather, scatterAdd, maskedFill, where, tril, triu, flip",
  run(() => {
    const m = torch.tensor([
      [1, 2, 3],
      [4, 5, 6],
    ]);
    same(m.indexSelect(1, i64([2, 0, 2])), [
      [3, 1, 3],
      [6, 4, 6],
    ]);
    same(m.indexSelect(0, i64([1])), [[4, 5, 6]]);
    same(
      m.gather(
        1,
        i64([
          [2, 0],
          [1, 1],
        ]),
      ),
      [
        [3, 1],
        [5, 5],
      ],
    );
    same(m.gather(0, i64([[1, 0, 1]])), [[4, 2, 6]]);
    // scatterAdd accumulates duplicates.
    same(torch.zeros([4]).scatterAdd(0, i64([0, 2, 2, 3]), torch.tensor([1, 2, 3, 4])), [1, 0, 5, 4]);
    same(
      torch.ones([2, 3]).scatterAdd(
        1,
        i64([
          [0, 0],
          [2, 1],
        ]),
        torch.tensor([
          [1, 2],
          [3, 4],
        ]),
      ),
      [
        [4, 1, 1],
        [1, 5, 4],
      ],
    );
    const mask = torch.tensor([
      [true, false, true],
      [false, false, true],
    ]);
    same(m.maskedFill(mask, -1), [
      [-1, 2, -1],
      [4, 5, -1],
    ]);
    same(m.maskedFill(mask, torch.tensor(0.5)), [
      [0.5, 2, 0.5],
      [4, 5, 0.5],
    ]);
    same(m.maskedFill(torch.tensor([false, true, false]), 0), [
      [1, 0, 3],
      [4, 0, 6],
    ]); // broadcast
    const other = torch.tensor([
      [10, 20, 30],
      [40, 50, 60],
    ]);
    same(torch.where(mask, m, other), [
      [1, 20, 3],
      [40, 50, 6],
    ]);
    same(torch.where(mask, m, 0), [
      [1, 0, 3],
      [0, 0, 6],
    ]);
    same(torch.where(mask, 9, other), [
      [9, 20, 9],
      [40, 50, 9],
    ]);
    same(torch.where(mask, 1, 0), [
      [1, 0, 1],
      [0, 0, 1],
    ]);
    same(torch.where(torch.tensor([true, false]).unsqueeze(1), m, other), [
      [1, 2, 3],
      [40, 50, 60],
    ]);
    const sq = torch.tensor([
      [1, 2, 3],
      [4, 5, 6],
      [7, 8, 9],
    ]);
    same(sq.tril(), [
      [1, 0, 0],
      [4, 5, 0],
      [7, 8, 9],
    ]);
    same(sq.tril(-1), [
      [0, 0, 0],
      [4, 0, 0],
      [7, 8, 0],
    ]);
    same(sq.triu(), [
      [1, 2, 3],
      [0, 5, 6],
      [0, 0, 9],
    ]);
    same(sq.triu(1), [
      [0, 2, 3],
      [0, 0, 6],
      [0, 0, 0],
    ]);
    same(m.tril(1), [
      [1, 2, 0],
      [4, 5, 6],
    ]);
    same(m.flip(0), [
      [4, 5, 6],
      [1, 2, 3],
    ]);
    same(m.flip(1), [
      [3, 2, 1],
      [6, 5, 4],
    ]);
    same(m.flip(0, 1), [
      [6, 5, 4],
      [3, 2, 1],
    ]);
    same(m.flip([-1]), [
      [3, 2, 1],
      [6, 5, 4],
    ]);
  }),
);

// ---- elementwise math -------------------------------------------------------------------

test(
  "add/sub (with alpha), mul, div with broadcasting and scalars",
  run(() => {
    const a = f64([
        [1, 2, 3],
        [4, 5, 6],
      ]),
      row = f64([10, 20, 30]),
      col = f64([[1], [2]]);
    same(
      a.add(row),
      [
        [11, 22, 33],
        [14, 25, 36],
      ],
      "float64",
    );
    same(a.add(col), [
      [2, 3, 4],
      [6, 7, 8],
    ]);
    same(a.add(row, 2), [
      [21, 42, 63],
      [24, 45, 66],
    ]);
    same(a.add(1.5), [
      [2.5, 3.5, 4.5],
      [5.5, 6.5, 7.5],
    ]);
    same(a.add(1, 3), [
      [4, 5, 6],
      [7, 8, 9],
    ]);
    same(a.sub(row), [
      [-9, -18, -27],
      [-6, -15, -24],
    ]);
    same(a.sub(row, 0.5), [
      [-4, -8, -12],
      [-1, -5, -9],
    ]);
    same(a.sub(1), [
      [0, 1, 2],
      [3, 4, 5],
    ]);
    same(a.mul(col), [
      [1, 2, 3],
      [8, 10, 12],
    ]);
    same(a.mul(-2), [
      [-2, -4, -6],
      [-8, -10, -12],
    ]);
    same(a.div(col), [
      [1, 2, 3],
      [2, 2.5, 3],
    ]);
    same(a.div(4), [
      [0.25, 0.5, 0.75],
      [1, 1.25, 1.5],
    ]);
    const n = f64([-7, 7, -7.5, 7.5]);
    same(n.div(2), [-3.5, 3.5, -3.75, 3.75]);
    same(n.div(2, "trunc"), [-3, 3, -3, 3]);
    same(n.div(2, "floor"), [-4, 3, -4, 3]);
    same(n.div(f64([2, -2, 2, -2]), "floor"), [-4, -4, -4, -4]);
    same(n.div(f64([2, -2, 2, -2]), "trunc"), [-3, -3, -3, -3]);
    same(i64([-7, 7]).div(2, "trunc"), [-3, 3], "int64");
    // Outer broadcasting [2,1] x [3] -> [2,3].
    same(
      col.mul(row),
      [
        [10, 20, 30],
        [20, 40, 60],
      ],
      undefined,
      [2, 3],
    );
    // Mixed dtypes promote as PyTorch: int64 + float32 -> float32, float32 + float64 -> float64.
    assert.equal(i64([1]).add(torch.tensor([0.5])).dtype, "float32");
    assert.equal(torch.tensor([1]).add(f64([0.5])).dtype, "float64");
  }),
);

test(
  "unary math: neg, exp, log, log1p, sqrt, rsqrt, abs, sign, square, reciprocal, sin, cos, tanh, round, floor",
  run(() => {
    const xs = [-2.5, -1, -0.3, 0, 0.4, 1, 3.7];
    const x = f64(xs);
    const pos = [0.01, 0.5, 1, 2, 10];
    const p = f64(pos);
    close(
      x.neg(),
      xs.map((v) => -v),
      0,
      "neg",
    );
    close(x.exp(), xs.map(Math.exp), 1e-14, "exp");
    close(p.log(), pos.map(Math.log), 1e-14, "log");
    close(f64([1e-10, 0.5, 3]).log1p(), [1e-10, 0.5, 3].map(Math.log1p), 1e-14, "log1p");
    close(p.sqrt(), pos.map(Math.sqrt), 1e-14, "sqrt");
    close(
      p.rsqrt(),
      pos.map((v) => 1 / Math.sqrt(v)),
      1e-14,
      "rsqrt",
    );
    close(x.abs(), xs.map(Math.abs), 0, "abs");
    close(x.sign(), [-1, -1, -1, 0, 1, 1, 1], 0, "sign");
    close(
      x.square(),
      xs.map((v) => v * v),
      1e-15,
      "square",
    );
    close(
      p.reciprocal(),
      pos.map((v) => 1 / v),
      1e-15,
      "reciprocal",
    );
    close(x.sin(), xs.map(Math.sin), 1e-14, "sin");
    close(x.cos(), xs.map(Math.cos), 1e-14, "cos");
    close(x.tanh(), xs.map(Math.tanh), 1e-14, "tanh");
    close(f64([-1.5, -0.4, 0.5, 1.5, 2.5]).round(), [-2, -0, 0, 2, 2], 0, "round (half to even)");
    close(x.floor(), xs.map(Math.floor), 0, "floor");
    same(f64([-1, 0]).sqrt().isnan(), [true, false]);
    same(f64([0, 1]).log().isfinite(), [false, true]);
  }),
);

test(
  "pow with scalar and tensor exponents",
  run(() => {
    const x = f64([0.5, 1, 2, 3]);
    close(x.pow(2), [0.25, 1, 4, 9], 1e-15, "pow 2");
    close(x.pow(0.5), [0.5, 1, 2, 3].map(Math.sqrt), 1e-15, "pow 0.5");
    close(x.pow(-1), [2, 1, 0.5, 1 / 3], 1e-15, "pow -1");
    close(x.pow(f64([3, 0, -2, 1.5])), [0.125, 1, 0.25, 3 ** 1.5], 1e-14, "pow tensor");
    close(
      x.pow(f64([[1], [2]])),
      [
        [0.5, 1, 2, 3],
        [0.25, 1, 4, 9],
      ],
      1e-15,
      "pow broadcast",
    );
    same(i64([2, 3]).pow(2), [4, 9], "int64");
  }),
);

test(
  "clamp: scalars, one-sided, tensor bounds, mixed",
  run(() => {
    const x = f64([-3, -1, 0, 1, 3]);
    same(x.clamp(-1.5, 2), [-1.5, -1, 0, 1, 2]);
    same(x.clamp(0), [0, 0, 0, 1, 3]);
    same(x.clamp(null, 0.5), [-3, -1, 0, 0.5, 0.5]);
    const lo = f64([-4, 0, -1, 2, 0]),
      hi = f64([-2, 1, 1, 3, 2]);
    same(x.clamp(lo, hi), [-3, 0, 0, 2, 2]);
    same(x.clamp(lo), [-3, 0, 0, 2, 3]);
    same(x.clamp(null, hi), [-3, -1, 0, 1, 2]);
    same(x.clamp(lo, 1), [-3, 0, 0, 1, 1]); // min(max(x, lo), hi): hi wins where lo > hi
    same(x.clamp(-2, hi), [-2, -1, 0, 1, 2]);
    same(i64([-5, 5]).clamp(-1, 1), [-1, 1], "int64");
    same(i64([-5, 0, 5]).clamp(i64([-1]), 1), [-1, 0, 1], "int64");
    same(x.clamp_(-1, 1), [-1, -1, 0, 1, 1]);
  }),
);

test(
  "activations: sigmoid, logsigmoid, softplus, relu, silu, gelu (exact and tanh) against closed forms",
  run(() => {
    const xs = [-3.5, -2, -0.7, -0.1, 0, 0.1, 0.7, 2, 3.5];
    const x = f64(xs);
    close(x.sigmoid(), xs.map(sigmoid), 1e-14, "sigmoid");
    close(
      x.logsigmoid(),
      xs.map((v) => -Math.log1p(Math.exp(-v))),
      1e-14,
      "logsigmoid",
    );
    close(f64([-200, 200]).logsigmoid(), [-200, 0], 1e-14, "logsigmoid stable");
    close(x.softplus(), xs.map(softplus), 1e-14, "softplus");
    close(
      x.softplus(2),
      xs.map((v) => softplus(2 * v) / 2),
      1e-14,
      "softplus beta",
    );
    close(f64([30, 25]).softplus(1, 20), [30, 25], 0, "softplus above threshold is linear");
    close(f64([1]).softplus(1, 0.5), [1], 0, "softplus custom threshold");
    close(
      x.relu(),
      xs.map((v) => Math.max(0, v)),
      0,
      "relu",
    );
    close(
      x.silu(),
      xs.map((v) => v * sigmoid(v)),
      1e-14,
      "silu",
    );
    close(
      x.gelu(),
      xs.map((v) => 0.5 * v * (1 + erf(v / Math.SQRT2))),
      1e-12,
      "gelu exact",
    );
    close(
      x.gelu("none"),
      xs.map((v) => 0.5 * v * (1 + erf(v / Math.SQRT2))),
      1e-12,
      "gelu none",
    );
    const k = Math.sqrt(2 / Math.PI);
    close(
      x.gelu("tanh"),
      xs.map((v) => 0.5 * v * (1 + Math.tanh(k * (v + 0.044715 * v ** 3)))),
      1e-12,
      "gelu tanh",
    );
    // The two forms really differ (the test would catch one computed as the other).
    assert.ok(Math.abs(f64([1]).gelu().item() - f64([1]).gelu("tanh").item()) > 1e-5);
    // float32 agrees at float32 precision.
    close(
      torch.tensor(xs).gelu("tanh"),
      xs.map((v) => 0.5 * v * (1 + Math.tanh(k * (v + 0.044715 * v ** 3)))),
      1e-6,
      "gelu tanh f32",
    );
  }),
);

test(
  "comparisons with tensors and scalars; logical ops",
  run(() => {
    const a = f64([1, 2, 3]),
      b = f64([3, 2, 1]);
    same(a.eq(b), [false, true, false], "bool");
    same(a.ne(b), [true, false, true], "bool");
    same(a.lt(b), [true, false, false]);
    same(a.le(b), [true, true, false]);
    same(a.gt(b), [false, false, true]);
    same(a.ge(b), [false, true, true]);
    same(a.eq(2), [false, true, false], "bool");
    same(a.ne(2), [true, false, true]);
    same(a.lt(2), [true, false, false]);
    same(a.le(2), [true, true, false]);
    same(a.gt(2), [false, false, true]);
    same(a.ge(2), [false, true, true]);
    same(a.gt(1.5), [false, true, true]);
    same(
      a.lt(f64([[2], [4]])),
      [
        [true, false, false],
        [true, true, true],
      ],
      "bool",
      [2, 3],
    );
    same(i64([1, 2]).eq(torch.tensor([1, 2.5])), [true, false]);
    const p = torch.tensor([true, true, false, false]),
      q = torch.tensor([true, false, true, false]);
    same(p.logicalAnd(q), [true, false, false, false], "bool");
    same(p.logicalOr(q), [true, true, true, false]);
    same(p.logicalXor(q), [false, true, true, false]);
    same(p.logicalNot(), [false, false, true, true]);
    same(f64([0, 2, 0]).logicalOr(f64([0, 0, -1])), [false, true, true], "bool");
  }),
);

// ---- reductions -------------------------------------------------------------------------

test(
  "sum and mean over all, one dim, several dims, keepdim",
  run(() => {
    const x = f64([
      [
        [1, 2],
        [3, 4],
        [5, 6],
      ],
      [
        [7, 8],
        [9, 10],
        [11, 12],
      ],
    ]); // [2, 3, 2]
    same(x.sum(), 78, "float64", []);
    same(
      x.sum(0),
      [
        [8, 10],
        [12, 14],
        [16, 18],
      ],
      undefined,
      [3, 2],
    );
    same(
      x.sum(-1),
      [
        [3, 7, 11],
        [15, 19, 23],
      ],
      undefined,
      [2, 3],
    );
    same(x.sum([0, 2]), [18, 26, 34], undefined, [3]);
    same(x.sum(1, true), [[[9, 12]], [[27, 30]]], undefined, [2, 1, 2]);
    same(x.sum([1, 2], true), [[[21]], [[57]]], undefined, [2, 1, 1]);
    same(x.mean(), 6.5, undefined, []);
    same(x.mean(0), [
      [4, 5],
      [6, 7],
      [8, 9],
    ]);
    same(x.mean([0, 1]), [6, 7]);
    same(
      x.mean(2, true),
      [
        [[1.5], [3.5], [5.5]],
        [[7.5], [9.5], [11.5]],
      ],
      undefined,
      [2, 3, 1],
    );
  }),
);

test(
  "max/min: whole tensor, values and indices along a dim; argmax, argmin",
  run(() => {
    const x = f64([
      [1, 9, 3],
      [7, 2, 8],
    ]);
    same(x.max(), 9, undefined, []);
    same(x.min(), 1, undefined, []);
    const mx = x.max(1);
    same(mx.values, [9, 8], "float64");
    same(mx.indices, [1, 2], "int64");
    const mn = x.min(0);
    same(mn.values, [1, 2, 3]);
    same(mn.indices, [0, 1, 0]);
    const mk = x.max(-1, true);
    same(mk.values, [[9], [8]], undefined, [2, 1]);
    same(mk.indices, [[1], [2]], undefined, [2, 1]);
    same(x.argmax(), 1, "int64", []);
    same(x.argmax(0), [1, 0, 1]);
    same(x.argmax(1, true), [[1], [2]]);
    same(x.argmin(), 0);
    same(x.argmin(1), [0, 1]);
    same(x.maximum(f64([5, 5, 5])), [
      [5, 9, 5],
      [7, 5, 8],
    ]);
    same(x.minimum(f64([5, 5, 5])), [
      [1, 5, 3],
      [5, 2, 5],
    ]);
  }),
);

test(
  "logsumexp (stable), var (correction 0 and 1), std, norm (1, 2, inf)",
  run(() => {
    const x = f64([
      [1, 2, 3],
      [-1, 0, 4],
    ]);
    const lse = (r: number[]) => Math.log(r.reduce((s, v) => s + Math.exp(v), 0));
    close(x.logsumexp(1), [lse([1, 2, 3]), lse([-1, 0, 4])], 1e-14, "logsumexp");
    close(x.logsumexp(0, true), [[lse([1, -1]), lse([2, 0]), lse([3, 4])]], 1e-14, "logsumexp keepdim");
    close(x.logsumexp([0, 1]), [lse([1, 2, 3, -1, 0, 4])], 1e-14, "logsumexp all");
    close(f64([1000, 1000]).logsumexp(0), [1000 + Math.LN2], 1e-14, "logsumexp large");
    close(torch.tensor([-1000, -1000]).logsumexp(0), [-1000 + Math.LN2], 1e-6, "logsumexp very negative");

    const v = f64([1, 2, 3, 4]); // mean 2.5, sum of squares 5
    close(v.var(), [5 / 3], 1e-15, "var default is unbiased");
    close(v.var(undefined, { correction: 1 }), [5 / 3], 1e-15, "var correction 1");
    close(v.var(undefined, { correction: 0 }), [1.25], 1e-15, "var correction 0");
    close(v.std(), [Math.sqrt(5 / 3)], 1e-15, "std");
    close(v.std(undefined, { correction: 0 }), [Math.sqrt(1.25)], 1e-15, "std correction 0");
    const m = f64([
      [1, 3],
      [2, 6],
    ]);
    close(m.var(1), [2, 8], 1e-15, "var dim");
    close(m.var(0, { correction: 0, keepdim: true }), [[0.25, 2.25]], 1e-15, "var dim keepdim");
    assert.deepEqual(m.var(0, { keepdim: true }).shape, [1, 2]);
    close(m.std(1), [Math.SQRT2, Math.sqrt(8)], 1e-15, "std dim");

    const n = f64([
      [3, -4],
      [-1, 0],
    ]);
    close(n.norm(), [Math.sqrt(26)], 1e-15, "norm 2 (default)");
    close(n.norm(1), [8], 1e-15, "norm 1");
    close(n.norm(Infinity), [4], 0, "norm inf");
    close(n.norm(2, 1), [5, 1], 1e-15, "norm 2 dim");
    close(n.norm(1, 0), [4, 4], 1e-15, "norm 1 dim");
    close(n.norm(Infinity, 1, true), [[4], [1]], 0, "norm inf dim keepdim");
    close(n.norm(3), [Math.cbrt(27 + 64 + 1)], 1e-14, "norm 3");
  }),
);

test(
  "cumsum, topk, sort",
  run(() => {
    same(f64([1, 2, 3]).cumsum(0), [1, 3, 6]);
    same(
      i64([
        [1, 2],
        [3, 4],
      ]).cumsum(1),
      [
        [1, 3],
        [3, 7],
      ],
      "int64",
    );
    const tk = f64([5, 1, 9, 3]).topk(2);
    same(tk.values, [9, 5]);
    same(tk.indices, [2, 0]);
    const s = f64([5, 1, 9, 3]).sort(0, true);
    same(s.values, [9, 5, 3, 1]);
    same(s.indices, [2, 0, 3, 1]);
  }),
);

// ---- nn ---------------------------------------------------------------------------------

test(
  "matmul (2-D, batched broadcast, vector), bmm",
  run(() => {
    const a = f64([
        [1, 2, 3],
        [4, 5, 6],
      ]),
      b = f64([
        [1, 0],
        [0, 1],
        [2, -1],
      ]);
    same(
      torch.matmul(a, b),
      [
        [7, -1],
        [16, -1],
      ],
      "float64",
      [2, 2],
    );
    same(a.matmul(f64([1, 1, 1])), [6, 15], undefined, [2]);
    same(f64([1, 2]).matmul(f64([3, 4])), 11, undefined, []);
    const batch = torch.stack([a, a.mul(2)]); // [2, 2, 3]
    same(
      batch.matmul(b),
      [
        [
          [7, -1],
          [16, -1],
        ],
        [
          [14, -2],
          [32, -2],
        ],
      ],
      undefined,
      [2, 2, 2],
    );
    same(
      torch.bmm(batch, torch.stack([b, b.neg()])),
      [
        [
          [7, -1],
          [16, -1],
        ],
        [
          [-14, 2],
          [-32, 2],
        ],
      ],
      undefined,
      [2, 2, 2],
    );
  }),
);

test(
  "linear with and without bias; embedding",
  run(() => {
    const x = f64([
        [1, 2],
        [3, -1],
      ]),
      w = f64([
        [1, 0],
        [2, 1],
        [-1, 3],
      ]),
      bias = f64([0.5, 0, -1]);
    same(
      torch.linear(x, w),
      [
        [1, 4, 5],
        [3, 5, -6],
      ],
      "float64",
      [2, 3],
    );
    same(torch.linear(x, w, bias), [
      [1.5, 4, 4],
      [3.5, 5, -7],
    ]);
    same(torch.linear(x, w, null), [
      [1, 4, 5],
      [3, 5, -6],
    ]);
    same(torch.linear(f64([[[1, 2]]]), w, bias), [[[1.5, 4, 4]]], undefined, [1, 1, 3]);
    const table = f64([
      [0, 0.5],
      [1, 1.5],
      [2, 2.5],
    ]);
    same(
      torch.embedding(table, i64([2, 0, 2])),
      [
        [2, 2.5],
        [0, 0.5],
        [2, 2.5],
      ],
      "float64",
      [3, 2],
    );
    same(torch.embedding(table, i64([[1], [0]])), [[[1, 1.5]], [[0, 0.5]]], undefined, [2, 1, 2]);
  }),
);

test(
  "layerNorm with and without affine; rmsNorm = x / sqrt(mean(x^2) + eps) * w",
  run(() => {
    const rows = [
      [1, 2, 3, 4],
      [-1, 0, 0, 5],
    ];
    const x = f64(rows);
    const ln = (r: number[], eps: number) => {
      const m = r.reduce((s, v) => s + v, 0) / r.length;
      const v = r.reduce((s, x) => s + (x - m) ** 2, 0) / r.length;
      return r.map((x) => (x - m) / Math.sqrt(v + eps));
    };
    close(
      torch.layerNorm(x, [4]),
      rows.map((r) => ln(r, 1e-5)),
      1e-12,
      "layerNorm",
    );
    const w = [1, 2, 0.5, -1],
      b = [0, 1, -1, 0.25];
    close(
      torch.layerNorm(x, [4], f64(w), f64(b)),
      rows.map((r) => ln(r, 1e-5).map((v, i) => v * w[i] + b[i])),
      1e-12,
      "layerNorm affine",
    );
    close(
      torch.layerNorm(x, [4], null, null, 0.1),
      rows.map((r) => ln(r, 0.1)),
      1e-12,
      "layerNorm eps",
    );
    close(torch.layerNorm(x, [2, 4]), [ln(rows.flat(), 1e-5)].flat(), 1e-12, "layerNorm over two dims");

    const rms = (r: number[], eps: number) => {
      const s = Math.sqrt(r.reduce((a, v) => a + v * v, 0) / r.length + eps);
      return r.map((v) => v / s);
    };
    close(
      torch.rmsNorm(x),
      rows.map((r) => rms(r, 1e-6)),
      1e-12,
      "rmsNorm",
    );
    close(
      torch.rmsNorm(x, f64(w)),
      rows.map((r) => rms(r, 1e-6).map((v, i) => v * w[i])),
      1e-12,
      "rmsNorm weight",
    );
    close(
      torch.rmsNorm(x, f64(w), 0.5),
      rows.map((r) => rms(r, 0.5).map((v, i) => v * w[i])),
      1e-12,
      "rmsNorm eps",
    );
    close(
      torch.rmsNorm(torch.tensor(rows)),
      rows.map((r) => rms(r, 1e-6)),
      1e-6,
      "rmsNorm float32",
    );
    const half = torch.rmsNorm(torch.tensor(rows, { dtype: "bfloat16" }), torch.tensor(w, { dtype: "bfloat16" }));
    assert.equal(half.dtype, "bfloat16");
    close(
      half,
      rows.map((r) => rms(r, 1e-6).map((v, i) => v * w[i])),
      1e-2,
      "rmsNorm bfloat16",
    );
  }),
);

test(
  "softmax and logSoftmax along a dim",
  run(() => {
    const rows = [
      [1, 2, 3],
      [0, 0, -1000],
    ];
    const sm = (r: number[]) => {
      const m = Math.max(...r);
      const e = r.map((v) => Math.exp(v - m));
      const s = e.reduce((a, b) => a + b, 0);
      return e.map((v) => v / s);
    };
    close(torch.softmax(f64(rows), 1), rows.map(sm), 1e-14, "softmax");
    close(f64(rows).softmax(-1), rows.map(sm), 1e-14, "softmax -1");
    close(
      torch.logSoftmax(f64(rows), 1),
      rows
        .map((r) => sm(r).map(Math.log))
        .map((r, i) => (i === 1 ? [Math.log(0.5), Math.log(0.5), -1000 - Math.log(2)] : r)),
      1e-13,
      "logSoftmax",
    );
    const cols = torch.softmax(f64(rows), 0);
    close(cols.sum(0), [1, 1, 1], 1e-15, "softmax dim 0 sums to 1");
    close(
      cols,
      [
        [sigmoid(1), sigmoid(2), 1],
        [sigmoid(-1), sigmoid(-2), 0],
      ],
      1e-14,
      "softmax dim 0",
    );
  }),
);

test(
  "crossEntropy: none/mean/sum, ignoreIndex, labelSmoothing",
  run(() => {
    const logits = [
      [2, 1, 0.1],
      [0.5, 2.5, -1],
      [1, 1, 1],
      [-2, 0, 3],
    ];
    const target = [0, 1, 2, -100];
    const logp = logits.map((r) => {
      const l = Math.log(r.reduce((s, v) => s + Math.exp(v), 0));
      return r.map((v) => v - l);
    });
    const L = f64(logits),
      T = i64(target);
    const loss = (eps: number, ignore: number) =>
      logp.map((r, i) =>
        target[i] === ignore ? 0 : -(1 - eps) * r[target[i]] - (eps / 3) * r.reduce((s, v) => s + v, 0),
      );
    const none = loss(0, -100);
    close(torch.crossEntropy(L, T, { reduction: "none" }), none, 1e-14, "none");
    close(torch.crossEntropy(L, T), [none.reduce((a, b) => a + b, 0) / 3], 1e-14, "mean over non-ignored");
    close(torch.crossEntropy(L, T, { reduction: "sum" }), [none.reduce((a, b) => a + b, 0)], 1e-14, "sum");
    // Another ignoreIndex: class 1 is ignored, -100 would be out of range so use valid targets.
    const T2 = i64([0, 1, 2, 2]);
    const t2 = [0, 1, 2, 2];
    const none2 = logp.map((r, i) => (t2[i] === 1 ? 0 : -r[t2[i]]));
    close(torch.crossEntropy(L, T2, { ignoreIndex: 1, reduction: "none" }), none2, 1e-14, "ignoreIndex 1");
    close(
      torch.crossEntropy(L, T2, { ignoreIndex: 1 }),
      [none2.reduce((a, b) => a + b, 0) / 3],
      1e-14,
      "ignoreIndex 1 mean",
    );
    const smooth = loss(0.1, -100);
    close(torch.crossEntropy(L, T, { labelSmoothing: 0.1, reduction: "none" }), smooth, 1e-14, "smoothing none");
    close(
      torch.crossEntropy(L, T, { labelSmoothing: 0.1 }),
      [smooth.reduce((a, b) => a + b, 0) / 3],
      1e-14,
      "smoothing mean",
    );
    close(
      torch.crossEntropy(L, T, { labelSmoothing: 0.1, reduction: "sum" }),
      [smooth.reduce((a, b) => a + b, 0)],
      1e-14,
      "smoothing sum",
    );
    // [N, C, T] layout: classes on dim 1.
    const L3 = L.unsqueeze(2).transpose(0, 2); // [1, 3, 4]
    close(torch.crossEntropy(L3, T.unsqueeze(0), { reduction: "none" }), [none], 1e-14, "[N, C, d]");
    // Class weights.
    const wts = [1, 2, 0.5];
    const wl = logp.map((r, i) => (target[i] === -100 ? 0 : -wts[target[i]] * r[target[i]]));
    close(
      torch.crossEntropy(L, T, { weight: f64(wts), reduction: "sum" }),
      [wl.reduce((a, b) => a + b, 0)],
      1e-14,
      "weight sum",
    );
    close(
      torch.crossEntropy(L, T, { weight: f64(wts) }),
      [wl.reduce((a, b) => a + b, 0) / (1 + 2 + 0.5)],
      1e-14,
      "weight mean",
    );
  }),
);

test(
  "dropout: p=0 and training=false are the identity; p=0.5 zeros about half, doubles survivors",
  run(() => {
    torch.manualSeed(11);
    const x = torch.randn([100]);
    same(torch.dropout(x, 0), x.toArray() as NestedArray);
    same(torch.dropout(x, 0.5, false), x.toArray() as NestedArray);
    const ones = torch.ones([20000]);
    const d = nums(torch.dropout(ones, 0.5));
    const zerosFrac = d.filter((v) => v === 0).length / d.length;
    assert.ok(Math.abs(zerosFrac - 0.5) < 0.02, `fraction zeroed ${zerosFrac}`);
    assert.ok(
      d.every((v) => v === 0 || v === 2),
      "survivors scaled by 1/(1-p) = 2",
    );
    const mean = d.reduce((a: number, b: number) => a + b, 0) / d.length;
    assert.ok(Math.abs(mean - 1) < 0.04, `mean ${mean}`);
    assert.ok(
      nums(torch.dropout(ones, 1)).every((v) => v === 0),
      "p=1 zeros everything",
    );
    // Reproducible under the seed.
    torch.manualSeed(2);
    const a = nums(torch.dropout(ones, 0.3));
    torch.manualSeed(2);
    assert.deepEqual(nums(torch.dropout(ones, 0.3)), a);
  }),
);

// ---- attention --------------------------------------------------------------------------

/** softmax(QK^T/sqrt(d) + mask) V in plain numbers, q [B,H,Tq,d], k/v [B,H,Tk,d] flat. */
function refAttention(
  q: number[],
  k: number[],
  v: number[],
  B: number,
  H: number,
  Tq: number,
  Tk: number,
  d: number,
  allowed: (b: number, h: number, i: number, j: number) => boolean,
): (number[] | null)[] {
  const rows: (number[] | null)[] = [];
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++)
      for (let i = 0; i < Tq; i++) {
        const qo = ((b * H + h) * Tq + i) * d;
        const s: number[] = [];
        for (let j = 0; j < Tk; j++) {
          if (!allowed(b, h, i, j)) {
            s.push(-Infinity);
            continue;
          }
          const ko = ((b * H + h) * Tk + j) * d;
          let dot = 0;
          for (let c = 0; c < d; c++) dot += q[qo + c] * k[ko + c];
          s.push(dot / Math.sqrt(d));
        }
        const m = Math.max(...s);
        if (m === -Infinity) {
          rows.push(null);
          continue;
        } // fully masked
        const e = s.map((x) => Math.exp(x - m));
        const z = e.reduce((a, c) => a + c, 0);
        const out = new Array(d).fill(0);
        for (let j = 0; j < Tk; j++) {
          const vo = ((b * H + h) * Tk + j) * d;
          for (let c = 0; c < d; c++) out[c] += (e[j] / z) * v[vo + c];
        }
        rows.push(out);
      }
  return rows;
}

function checkAttention(out: Tensor, expected: (number[] | null)[], what: string, tol = 1e-12): void {
  const d = out.shape[out.ndim - 1];
  const got = nums(out);
  assert.ok(got.every(Number.isFinite), `${what}: every output is finite`);
  expected.forEach((row, r) => {
    if (row === null) return;
    close(got.slice(r * d, (r + 1) * d), row, tol, `${what} row ${r}`);
  });
}

test(
  "scaledDotProductAttention: no mask, isCausal, padding mask, causal + padding, fully masked row",
  run(() => {
    const [B, H, T, d] = [2, 2, 4, 3];
    const n = B * H * T * d;
    const qv = values(n, 1, -2, 2),
      kv = values(n, 2, -2, 2),
      vv = values(n, 3, -2, 2);
    const q = torch.tensor(qv, { dtype: "float64" }).reshape(B, H, T, d);
    const k = torch.tensor(kv, { dtype: "float64" }).reshape(B, H, T, d);
    const v = torch.tensor(vv, { dtype: "float64" }).reshape(B, H, T, d);

    checkAttention(
      torch.scaledDotProductAttention(q, k, v),
      refAttention(qv, kv, vv, B, H, T, T, d, () => true),
      "no mask",
    );
    checkAttention(
      torch.scaledDotProductAttention(q, k, v, { isCausal: true }),
      refAttention(qv, kv, vv, B, H, T, T, d, (_b, _h, i, j) => j <= i),
      "causal",
    );

    // Left padding: batch 0 has 1 pad position, batch 1 has none. Mask [B, 1, 1, Tk], true = attend.
    const pads = [1, 0];
    const keep = [0, 1].map((b) => [[Array.from({ length: T }, (_, j) => j >= pads[b])]]);
    const pad = torch.tensor(keep);
    assert.equal(pad.dtype, "bool");
    checkAttention(
      torch.scaledDotProductAttention(q, k, v, { attnMask: pad }),
      refAttention(qv, kv, vv, B, H, T, T, d, (b, _h, _i, j) => j >= pads[b]),
      "padding",
    );

    // Causal + padding: row 0 of batch 0 can see nothing (its only key is padding).
    const both = torch.scaledDotProductAttention(q, k, v, { attnMask: pad, isCausal: true });
    const expected = refAttention(qv, kv, vv, B, H, T, T, d, (b, _h, i, j) => j <= i && j >= pads[b]);
    assert.equal(expected[0], null, "the reference has a fully masked row");
    checkAttention(both, expected, "causal + padding");

    // An additive float mask behaves as a boolean one.
    const additive = torch.zeros(pad.shape, { dtype: "float64" }).maskedFill(pad.logicalNot(), -Infinity);
    checkAttention(
      torch.scaledDotProductAttention(q, k, v, { attnMask: additive }),
      refAttention(qv, kv, vv, B, H, T, T, d, (b, _h, _i, j) => j >= pads[b]),
      "additive mask",
    );

    // float32: the same at float32 precision, fully masked row finite.
    const b32 = torch.scaledDotProductAttention(q.float(), k.float(), v.float(), { attnMask: pad, isCausal: true });
    assert.equal(b32.dtype, "float32");
    checkAttention(b32, expected, "float32 causal + padding", 1e-5);

    // A per-query boolean mask [Tq, Tk] with an all-false row.
    const rowMask = torch.tensor([
      [false, false, false, false],
      [true, true, false, false],
      [true, true, true, false],
      [true, true, true, true],
    ]);
    checkAttention(
      torch.scaledDotProductAttention(q, k, v, { attnMask: rowMask }),
      refAttention(qv, kv, vv, B, H, T, T, d, (_b, _h, i, j) => j <= i && i > 0),
      "fully masked first row",
    );
  }),
);

test(
  "scaledDotProductAttention: with fewer queries than keys, isCausal aligns bottom-right, with or without a mask",
  run(() => {
    // Decoding with a cache: query i of Tq is position Tk - Tq + i and sees keys 0..Tk-Tq+i.
    const [Tq, Tk, d] = [2, 4, 3];
    const qv = values(Tq * d, 7, -2, 2),
      kv = values(Tk * d, 8, -2, 2),
      vv = values(Tk * d, 9, -2, 2);
    const q = torch.tensor(qv, { dtype: "float64", shape: [1, 1, Tq, d] });
    const k = torch.tensor(kv, { dtype: "float64", shape: [1, 1, Tk, d] });
    const v = torch.tensor(vv, { dtype: "float64", shape: [1, 1, Tk, d] });
    const expected = refAttention(qv, kv, vv, 1, 1, Tq, Tk, d, (_b, _h, i, j) => j <= Tk - Tq + i);
    checkAttention(torch.scaledDotProductAttention(q, k, v, { isCausal: true }), expected, "isCausal alone");
    checkAttention(
      torch.scaledDotProductAttention(q, k, v, { isCausal: true, attnMask: torch.ones([Tk], { dtype: "bool" }) }),
      expected,
      "isCausal + mask",
    );
  }),
);

test(
  "tokenLogProbs: logSoftmax + gather, 0 at ignored labels",
  run(() => {
    const [N, T, V] = [2, 3, 5];
    const lv = values(N * T * V, 4, -3, 3);
    const logits = torch.tensor(lv, { dtype: "float64" }).reshape(N, T, V);
    const labels = i64([
      [1, 4, -100],
      [0, -100, 3],
    ]);
    const out = torch.tokenLogProbs(logits, labels);
    assert.deepEqual(out.shape, [N, T]);
    const viaLogSoftmax = logits.logSoftmax(-1).gather(-1, labels.clamp(0).unsqueeze(-1)).squeeze(-1);
    const lab = [
      [1, 4, -100],
      [0, -100, 3],
    ];
    const ref = nums(viaLogSoftmax).map((v, i) => (lab.flat()[i] === -100 ? 0 : v));
    close(out, ref, 1e-13, "tokenLogProbs");
    assert.equal(nums(out)[2], 0);
    assert.equal(nums(out)[4], 0);
    // Hand check of one entry.
    const row = lv.slice(0, V);
    close([nums(out)[0]], [row[1] - Math.log(row.reduce((s, x) => s + Math.exp(x), 0))], 1e-13, "entry [0, 0]");
    // A different ignoreIndex.
    const alt = torch.tokenLogProbs(
      logits,
      i64([
        [1, 4, 2],
        [0, 2, 3],
      ]),
      2,
    );
    close(alt, ref, 1e-13, "ignoreIndex 2");
  }),
);

// ---- output -----------------------------------------------------------------------------

test(
  "item, toArray, data",
  run(() => {
    assert.equal(torch.tensor([3.5]).item(), 3.5);
    assert.equal(torch.tensor(2.25, { dtype: "float64" }).item(), 2.25);
    assert.equal(torch.tensor([[7]], { dtype: "int64" }).item(), 7);
    assert.equal(torch.tensor(true).item(), 1);
    assert.equal(torch.tensor(false).item(), 0);
    assert.equal(torch.tensor([1.5], { dtype: "float16" }).item(), 1.5);
    assert.equal(typeof torch.tensor([3], { dtype: "int64" }).item(), "number");
    assert.deepEqual(
      torch
        .tensor([
          [1, 2],
          [3, 4],
        ])
        .toArray(),
      [
        [1, 2],
        [3, 4],
      ],
    );
    assert.deepEqual(torch.zeros([2, 0]).toArray(), [[], []]);
    assert.deepEqual(torch.tensor([1.5, 2.5], { dtype: "bfloat16" }).toArray(), [1.5, 2.5]);
    assert.deepEqual(torch.tensor([5], { dtype: "int64" }).toArray(), [5]);
    const t = torch.tensor([
      [1, 2],
      [3, 4],
    ]);
    assert.deepEqual(
      [...(t.transpose(0, 1).data() as Float32Array)],
      [1, 3, 2, 4],
      "data() is row-major of the logical layout",
    );
    assert.deepEqual([...(torch.tensor([5n, -5n].map(Number), { dtype: "int64" }).data() as BigInt64Array)], [5n, -5n]);
    assert.match(String(t), /shape=\[2, 2\], dtype=float32/);
  }),
);

// ---------------------------------------------------------------- named operator arguments

test("operators called by argument name: schema order, defaults for what is left out, unknown names refused", async () => {
  const { argumentNames, positionalArguments } = await import("../../src/torch/ops.js");
  const { callNamed } = await import("../../src/torch/tensor.js");
  // Schema types with parentheses and brackets ("Tensor(a) self", "int[1] dim=[]") and the "*" marker.
  assert.deepEqual(argumentNames("to.dtype_layout"), [
    "self",
    "dtype",
    "layout",
    "device",
    "pin_memory",
    "non_blocking",
    "copy",
    "memory_format",
  ]);
  assert.deepEqual(argumentNames("sum.dim_IntList"), ["self", "dim", "keepdim", "dtype"]);
  assert.deepEqual(positionalArguments("to.dtype_layout", { self: 7, device: "cpu" }), [
    7,
    undefined,
    undefined,
    "cpu",
  ]);
  const t = torch.tensor([
    [1, 2],
    [3, 4],
  ]);
  const s = callNamed("sum.dim_IntList", { self: t.id, dim: [1], keepdim: true }); // dtype left out: its default
  assert.deepEqual(s.toArray(), [[3], [7]]);
  assert.equal(t.to("float64").dtype, "float64");
  assert.throws(
    () => callNamed("sum.dim_IntList", { self: t.id, dims: [1] }),
    /aten::sum.dim_IntList has no argument 'dims'; its arguments: self, dim, keepdim, dtype/,
  );
  for (const x of [t, s]) x.dispose();
});
