// Error paths: every failure is a JavaScript Error with a message that says what went wrong
// (the op's name and LibTorch's own message for LibTorch errors), and none aborts the process.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { torch, TorchError, type Tensor } from "../../src/index.js";

const run = (fn: () => void) => () => {
  torch.tidy(fn);
};
// Calls with deliberately wrong types, as untyped JavaScript could make them.
const any = (v: unknown) => v as any;

/** Asserts that fn throws an Error (not a string, not a crash) whose message matches every pattern. */
function throwsWith(fn: () => unknown, ...patterns: RegExp[]): Error {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught !== undefined, `expected an error matching ${patterns.join(", ")}`);
  assert.ok(caught instanceof Error, `expected an Error, got ${String(caught)}`);
  for (const p of patterns) assert.match(caught.message, p);
  assert.doesNotMatch(caught.message, /Exception raised from/, "no C++ backtrace in the message");
  return caught;
}

test(
  "LibTorch errors become JS Errors naming the op and carrying LibTorch's message",
  run(() => {
    throwsWith(
      () => torch.ones([2]).add(torch.ones([3])),
      /aten::add\.Tensor/,
      /size of tensor a \(2\) must match the size of tensor b \(3\)/,
    );
    throwsWith(() => torch.ones([2, 3]).sub(torch.ones([4, 3])), /aten::sub/, /must match/);
    throwsWith(
      () => torch.ones([2, 3]).matmul(torch.ones([2, 3])),
      /aten::matmul/,
      /cannot be multiplied \(2x3 and 2x3\)/,
    );
    throwsWith(() => torch.matmul(torch.ones([2, 2, 3]), torch.ones([2, 2, 3])), /aten::matmul/);
    throwsWith(() => torch.bmm(torch.ones([2, 3]), torch.ones([3, 2])), /aten::bmm/, /3D/);
    throwsWith(
      () => torch.ones([2, 3]).sum(5),
      /aten::sum/,
      /Dimension out of range \(expected to be in range of \[-2, 1\], but got 5\)/,
    );
    throwsWith(() => torch.ones([2, 3]).softmax(2), /aten::softmax/, /Dimension out of range/);
    throwsWith(() => torch.ones([2, 3]).transpose(0, 3), /aten::transpose/, /Dimension out of range/);
    throwsWith(() => torch.ones([2, 3]).select(0, 2), /aten::select/, /out of range/);
    throwsWith(() => torch.cat([torch.ones([2, 3]), torch.ones([2, 4])]), /aten::cat/, /Sizes of tensors must match/);
    throwsWith(
      () => torch.stack([torch.ones([2]), torch.ones([3])]),
      /aten::stack/,
      /stack expects each tensor to be equal size/,
    );
    throwsWith(() => torch.ones([6]).reshape(4, 2), /aten::reshape/, /shape '\[4, 2\]' is invalid for input of size 6/);
    throwsWith(() => torch.ones([2, 3]).transpose(0, 1).view(6), /aten::view/, /reshape/);
    throwsWith(() => torch.ones([2, 3]).expand(4, 3), /aten::expand/, /must match/);
    throwsWith(() => torch.linear(torch.ones([2, 3]), torch.ones([4, 5])), /aten::linear/, /cannot be multiplied/);
    throwsWith(
      () => torch.embedding(torch.ones([3, 2]), torch.tensor([5], { dtype: "int64" })),
      /aten::embedding/,
      /index out of range/,
    );
    throwsWith(
      () => torch.crossEntropy(torch.ones([2, 3]), torch.tensor([5, 0], { dtype: "int64" })),
      /aten::cross_entropy_loss/,
      /Target 5 is out of bounds/,
    );
    throwsWith(() => torch.ones([3]).gather(0, torch.tensor([7], { dtype: "int64" })), /aten::gather/, /out of bounds/);
    throwsWith(() => torch.ones([3]).split([1, 1]), /aten::split_with_sizes/, /sum exactly to 3/);
    throwsWith(() => torch.randint(5, 2, [3]), /aten::randint/, /from.*less than.*to/);
    throwsWith(() => torch.tensor([1.5]).div(2, any("round")), /aten::div/, /rounding_mode/);
    throwsWith(() => torch.tensor([1.5]).gelu(any("fast")), /aten::gelu/, /none or tanh/);
    throwsWith(() => torch.ones([2]).to("cuda"), /aten::to/, /not linked with support for cuda|CUDA/i);
    throwsWith(() => torch.ones([2]).to(any({ device: "tpu" })), /aten::to/, /device/);
    throwsWith(() => torch.layerNorm(torch.ones([2, 3]), [4]), /aten::layer_norm/, /normalized_shape/);
    throwsWith(() => torch.cat([]), /aten::cat/, /non-empty/);
    throwsWith(() => torch.ones([2], { dtype: "int64" }).softmax(0), /aten::softmax/);
  }),
);

test(
  "autograd errors are Errors too",
  run(() => {
    throwsWith(() => torch.ones([2], { requiresGrad: true }).mul(2).backward(), /backward/, /scalar outputs/);
    throwsWith(() => torch.ones([2]).sum().backward(), /backward/, /does not require grad/);
    const x = torch.ones([2], { requiresGrad: true });
    throwsWith(() => x.mul(x).backward(torch.ones([3])), /backward/, /shape/i);
    throwsWith(() => x.add_(1), /aten::add_/, /leaf Variable that requires grad/);
    const y = x.exp().sum();
    y.backward();
    throwsWith(() => y.backward(), /backward/, /second time/);
    throwsWith(
      () => {
        x.grad = torch.ones([3]);
      },
      /setGrad/,
      /different size/,
    );
    throwsWith(
      () => {
        x.grad = torch.ones([2], { dtype: "float64" });
      },
      /setGrad/,
      /different type/,
    );
    throwsWith(() => {
      x.mul(2).requiresGrad = false;
    }, /leaf/);
    throwsWith(() => torch.ones([2], { dtype: "int32" }).requiresGrad_(), /requiresGrad/, /floating point/);
  }),
);

test(
  "a disposed tensor used again throws a clear error",
  run(() => {
    const t = torch.ones([2]);
    t.dispose();
    assert.equal(t.isDisposed, true);
    for (const use of [
      () => t.add(1),
      () => t.shape,
      () => t.toArray(),
      () => t.item(),
      () => t.data(),
      () => t.numel(),
      () => t.requiresGrad,
      () => t.grad,
      () => torch.ones([2]).add(t),
      () => torch.cat([torch.ones([2]), t]),
      () => t.keep().clone(),
    ]) {
      throwsWith(use, /disposed/);
    }
    assert.equal(String(t), "Tensor(disposed)");
    // One that a finished tidy freed: the message says how to keep it.
    let inner: Tensor | undefined;
    torch.tidy(() => {
      inner = torch.ones([1]);
    });
    throwsWith(() => inner!.mul(2), /disposed/, /tidy/, /keep/);
  }),
);

test(
  "wrong argument types throw instead of crashing",
  run(() => {
    const t = torch.ones([2, 3]);
    throwsWith(() => t.add(any("x")), /aten::add\.Scalar/, /argument 'other' expects a number, got string/);
    throwsWith(() => t.mul(any({})), /expects a number, got object/);
    throwsWith(() => t.sum(any("x")), /argument 'dim' expects an integer, got string/);
    throwsWith(() => t.sum(any(0.5)), /argument 'dim' expects an integer/);
    throwsWith(() => t.sum(any(NaN)), /argument 'dim' expects an integer/);
    throwsWith(() => t.reshape(any("a")), /aten::reshape/, /expects an integer/);
    throwsWith(() => t.reshape(1e300, 1), /aten::reshape/, /expects an integer/);
    throwsWith(() => t.softmax(any("1")), /aten::softmax/, /expects an integer, got string/);
    throwsWith(() => t.transpose(any(null), 1), /aten::transpose/);
    throwsWith(() => t.clamp(any("0")), /aten::clamp/, /expects a number/);
    throwsWith(() => t.gather(1, any("idx")), /aten::gather/);
    throwsWith(() => torch.zeros(any("abc")), /aten::zeros/, /expects an array, got string/);
    throwsWith(() => torch.zeros(any(["a"])), /aten::zeros/, /expects an integer, got string/);
    throwsWith(() => torch.zeros([-1]), /aten::zeros/, /negative/);
    throwsWith(() => torch.full([2], any("x")), /aten::full/, /expects a number/);
    throwsWith(() => torch.arange(any("5")), /aten::arange/);
    throwsWith(() => torch.softmax(t, any(undefined)), /aten::softmax/, /missing argument 'dim'/);
    throwsWith(
      () => {
        t.requiresGrad = any("yes");
      },
      /requiresGrad/,
      /boolean/,
    );
    throwsWith(() => torch.tensor(any(["a", "b"])), /tensor\(\)/, /expected a number/);
    throwsWith(() => torch.tensor(any({ a: 1 })), /tensor\(\)/);
    throwsWith(() => torch.tensor(any(undefined)), /tensor\(\)/);
    throwsWith(() => torch.tensor(any(new Uint16Array(2))), /unsupported typed array/);
    throwsWith(
      () => torch.crossEntropy(t, torch.zeros([2], { dtype: "int64" }), { reduction: any("avg") }),
      /reduction must be none, mean or sum/,
    );
    throwsWith(() => torch.dropout(t, 1.5), /dropout probability must be in \[0, 1\]/);
    throwsWith(
      () => torch.tokenLogProbs(t, torch.zeros([2, 3], { dtype: "int64" })),
      /tokenLogProbs/,
      /one more dimension/,
    );
    throwsWith(() => torch.fromBuffer(any("bytes"), { dtype: "float32", shape: [1] }), /fromBuffer/, /TypedArray/);
    throwsWith(
      () => torch.fromBuffer(new Float32Array(2), { dtype: "float32", shape: any(["a"]) }),
      /fromBuffer/,
      /non-negative integers/,
    );
    throwsWith(
      () => torch.fromBuffer(new Float32Array(2), { dtype: "float32", shape: [-2] }),
      /fromBuffer/,
      /non-negative integers/,
    );
    throwsWith(() => torch.setRngState(torch.ones([3])), /rngState/, /ByteTensor/);
  }),
);

test(
  "an unknown dtype throws naming the allowed ones",
  run(() => {
    const allowed = ["uint8", "int8", "int16", "int32", "int64", "float16", "float32", "float64", "bool", "bfloat16"];
    for (const make of [
      () => torch.zeros([2], { dtype: any("float8") }),
      () => torch.tensor([1], { dtype: any("float8") }),
      () => torch.ones([1]).to(any("float8")),
      () => torch.ones([1]).to({ dtype: any("float8") }),
      () => torch.full([1], 0, { dtype: any("float8") }),
      () => torch.fromBuffer(new Uint8Array(1), { dtype: any("float8"), shape: [1] }),
    ]) {
      const e = throwsWith(make, /unknown dtype 'float8'/);
      for (const name of allowed) assert.ok(e.message.includes(name), `message names ${name}`);
    }
    // PyTorch's aliases are accepted.
    assert.equal(torch.zeros([1], { dtype: any("double") }).dtype, "float64");
    assert.equal(torch.zeros([1], { dtype: any("long") }).dtype, "int64");
  }),
);

test(
  "ragged nested arrays throw",
  run(() => {
    throwsWith(() => torch.tensor([[1, 2], [3]]), /ragged/);
    throwsWith(() => torch.tensor(any([[1, 2], 3])), /ragged/);
    throwsWith(() => torch.tensor(any([1, [2]])), /expected a number at depth 1, got an array/);
    throwsWith(() => torch.tensor([[[1], [2]], [[3]]]), /ragged/);
    throwsWith(() => torch.tensor([[1, 2], []]), /ragged/);
  }),
);

test(
  "item() on a tensor that does not hold exactly one element throws",
  run(() => {
    throwsWith(() => torch.ones([2]).item(), /item\(\) needs a tensor with one element, this one has 2/);
    throwsWith(() => torch.ones([2, 3]).item(), /has 6/);
    throwsWith(() => torch.zeros([0]).item(), /has 0/);
    assert.equal(torch.ones([1, 1, 1]).item(), 1);
  }),
);

test(
  "fromBuffer with a byte length that does not match shape and dtype throws",
  run(() => {
    throwsWith(
      () => torch.fromBuffer(new Float32Array(3), { dtype: "float32", shape: [2, 2] }),
      /fromBuffer/,
      /buffer holds 12 bytes, shape and dtype need 16/,
    );
    throwsWith(() => torch.fromBuffer(new Float32Array(5), { dtype: "float32", shape: [2, 2] }), /holds 20 bytes/);
    throwsWith(
      () => torch.fromBuffer(new Uint8Array(6), { dtype: "float64", shape: [1] }),
      /holds 6 bytes, shape and dtype need 8/,
    );
    throwsWith(
      () => torch.fromBuffer(new Float32Array(4), { dtype: "float32", shape: [5] }),
      /holds 16 bytes, shape and dtype need 20/,
    );
    throwsWith(() => torch.tensor(new Float32Array(4), { shape: [3] }), /holds 16 bytes/);
    // Same length, another element size: fine.
    assert.deepEqual(torch.fromBuffer(new Float32Array(4), { dtype: "float64", shape: [2] }).shape, [2]);
  }),
);

test(
  "setNumThreads and manualSeed reject bad values and change nothing",
  run(() => {
    const threads = torch.getNumThreads();
    for (const n of [0, -1, 1.5, NaN, Infinity, 1e9])
      throwsWith(() => torch.setNumThreads(n), /setNumThreads: expected an integer from 1 to \d+/);
    throwsWith(() => torch.setNumThreads(any("2")), /setNumThreads/);
    assert.equal(torch.getNumThreads(), threads);
    for (const s of [-1, 0.5, NaN, Infinity])
      throwsWith(() => torch.manualSeed(s), /manualSeed: expected a non-negative integer/);
    throwsWith(() => torch.manualSeed(any("1")), /manualSeed/);
    // A valid seed still works afterwards.
    torch.manualSeed(0);
    const a = torch.rand([3]).toArray();
    torch.manualSeed(0);
    assert.deepEqual(torch.rand([3]).toArray(), a);
  }),
);

// Each case must throw; none may abort the process. They run in this process and, to report an
// abort cleanly (rather than losing the test runner), in a child process first.
const RISKY: string[] = [
  "torch.embedding(torch.ones([3, 2]), torch.tensor([-7], { dtype: 'int64' }))",
  "torch.ones([3]).indexSelect(0, torch.tensor([3], { dtype: 'int64' }))",
  "torch.ones([3]).gather(0, torch.tensor([-9], { dtype: 'int64' }))",
  "torch.zeros([3]).scatterAdd(0, torch.tensor([5], { dtype: 'int64' }), torch.ones([1]))",
  "torch.crossEntropy(torch.ones([2, 3]), torch.tensor([-5, 0], { dtype: 'int64' }))",
  "torch.ones([2, 2]).maskedFill(torch.ones([3], { dtype: 'bool' }), 0)",
  "torch.where(torch.ones([3], { dtype: 'bool' }), torch.ones([2]), 0)",
  "torch.ones([2]).narrow(0, 1, 5)",
  "torch.ones([2]).slice(0, 0, 2, 0)",
  "torch.ones([2]).select(0, -3)",
  "torch.ones([4]).view(3, -1)",
  "torch.ones([2]).reshape(-1, -1)",
  "torch.ones([2]).expand(-1, -1, 3)",
  "torch.ones([2]).repeat(-1)",
  "torch.ones([2]).permute(0, 0)",
  "torch.ones([2]).flip(3)",
  "torch.zeros([1e12, 1e12])",
  "torch.zeros([2 ** 62, 8])",
  "torch.ones([2]).reshape(2 ** 70)",
  "torch.randperm(-1)",
  "torch.tensor([[-1, 2]]).multinomial(1)",
  "torch.ones([2, 3]).matmul(torch.ones([]))",
  "torch.bmm(torch.ones([2, 2, 3]), torch.ones([3, 2, 2]))",
  "torch.scaledDotProductAttention(torch.ones([1, 1, 2, 3]), torch.ones([1, 1, 2, 4]), torch.ones([1, 1, 2, 4]))",
  "torch.scaledDotProductAttention(torch.ones([1, 1, 2, 3]), torch.ones([1, 1, 2, 3]), torch.ones([1, 1, 2, 3]), { attnMask: torch.ones([3, 3], { dtype: 'bool' }) })",
  "torch.layerNorm(torch.ones([2, 3]), [3], torch.ones([4]))",
  "torch.ones([2, 3]).topk(5)",
  "torch.setRngState(torch.zeros([3], { dtype: 'uint8' }))",
  "torch.ones([2, 2]).transpose(0, 1).dataView()",
  "torch.fromBuffer(new Float32Array(2), { dtype: 'float32', shape: [2 ** 40, 2 ** 40] })",
  "torch.tensor(new Float64Array(3), { shape: [4] })",
  "(() => { const t = torch.ones([1]); t.dispose(); t.dispose(); t.neg(); })()",
  "(() => { const x = torch.ones([2], { requiresGrad: true }); const y = x.square().sum(); y.backward(); y.backward(); })()",
  "(() => { const x = torch.ones([2], { requiresGrad: true }); x.grad = torch.ones([2, 1]); })()",
  "torch.ones([2]).to('cuda:7')",
  "torch.ones([2]).cuda()",
];

test("risky cases never abort the process (child process)", () => {
  const index = new URL("../../src/index.js", import.meta.url).href;
  const script = `
    import { torch } from ${JSON.stringify(index)};
    const cases = JSON.parse(process.env.RISKY_CASES);
    let thrown = 0;
    for (const code of cases) {
      try { new Function("torch", code)(torch); console.log("NO ERROR: " + code); }
      catch (e) { if (e instanceof Error) thrown++; else console.log("NOT AN Error: " + code); }
    }
    console.log("survived " + thrown + "/" + cases.length);
  `;
  const r = spawnSync(process.execPath, ["--input-type=module", "-e", script], {
    env: { ...process.env, RISKY_CASES: JSON.stringify(RISKY) },
    encoding: "utf8",
    timeout: 60_000,
  });
  assert.equal(r.signal, null, `child killed by ${r.signal}; stderr:\n${r.stderr}`);
  assert.equal(r.status, 0, `child exited ${r.status}; stderr:\n${r.stderr}`);
  assert.equal(r.stdout.trim().split("\n").pop(), `survived ${RISKY.length}/${RISKY.length}`, r.stdout);
});

test("risky cases each throw an Error in this process, which then carries on", () => {
  const before = torch.memory().tensors;
  for (const code of RISKY) {
    torch.tidy(() => {
      assert.throws(() => new Function("torch", code)(torch), Error, code);
    });
  }
  assert.equal(torch.memory().tensors, before, "nothing leaked by the failed calls");
  // Still fully working.
  assert.deepEqual(
    torch.tidy(() => torch.ones([2]).add(1).toArray()),
    [2, 2],
  );
  assert.equal(torch.isGradEnabled(), true);
});

test(
  "every LibTorch error is a TorchError carrying the op and LibTorch's message",
  run(() => {
    const cases: [() => unknown, string, RegExp][] = [
      [
        () => torch.ones([2]).add(torch.ones([3])),
        "aten::add.Tensor",
        /^The size of tensor a \(2\) must match the size of tensor b \(3\)/,
      ],
      [() => torch.ones([2, 3]).matmul(torch.ones([2, 3])), "aten::matmul", /cannot be multiplied/],
      [
        () => torch.ones([2, 3]).sum(any("x")),
        "aten::sum.dim_IntList",
        /^argument 'dim' expects an integer, got string$/,
      ],
      [() => torch.ones([2]).sum().backward(), "backward", /does not require grad/],
      [
        () => {
          torch.ones([2], { requiresGrad: true }).grad = torch.ones([3]);
        },
        "setGrad",
        /different size/,
      ],
      [
        () => torch.fromBuffer(new Float32Array(3), { dtype: "float32", shape: [2] }),
        "fromBuffer",
        /^buffer holds 12 bytes, shape and dtype need 8$/,
      ],
      [() => torch.schemaOf("no_such_op"), "aten::no_such_op", /this LibTorch has no operator/],
    ];
    for (const [fn, op, detail] of cases) {
      const e = throwsWith(fn, /./);
      assert.ok(e instanceof torch.TorchError, `${op}: a TorchError`);
      assert.ok(e instanceof TorchError, "the package entry exports the same class");
      assert.equal(e.name, "TorchError");
      assert.equal(e.op, op);
      assert.match(e.torchMessage, detail);
      assert.equal(e.message, `${op}: ${e.torchMessage}`, "the message is the op and LibTorch's message, as before");
    }
    // Errors the TypeScript layer raises itself are plain Errors.
    assert.equal(throwsWith(() => torch.ones([2]).item(), /item/) instanceof torch.TorchError, false);
  }),
);

test("every addon entry point turns any input into an Error, never a crash (child process)", () => {
  const dist = new URL("../../src/", import.meta.url).href;
  const script = `
    const { torch } = await import(${JSON.stringify(dist + "index.js")});
    torch.ones([1]);  // loads the addon
    const { native } = await import(${JSON.stringify(dist + "torch/native.js")});
    const { TorchError } = await import(${JSON.stringify(dist + "torch/errors.js")});
    const live = () => torch.ones([2]).id;
    const bad = [undefined, null, "x", {}, [], [1, "a"], -1, 1.5, NaN, Infinity, 1e300, 2 ** 53, true, 10n, Symbol("s"), () => 1];
    let calls = 0, errors = 0;
    const notTorchErrors = [];
    for (const name of Object.keys(native).filter((n) => n !== "configure")) {
      for (const b of bad) {
        for (const args of [[], [b], [live(), b], [live(), live(), b], [live(), b, b, b], [b, b, b, b]]) {
          calls++;
          try { native[name](...args); }
          catch (e) { errors++; if (!(e instanceof TorchError)) notTorchErrors.push(name + ": " + String(e)); }
        }
      }
    }
    // configure() last: bad input leaves the error class in place.
    for (const b of bad) { try { native.configure(b, b); } catch (e) { if (!(e instanceof TorchError)) notTorchErrors.push("configure: " + String(e)); } }
    torch.setNumThreads(1);
    console.log(JSON.stringify({ calls, errors, notTorchErrors: notTorchErrors.slice(0, 5), after: torch.ones([2]).add(1).sum().item() }));`;
  const r = spawnSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8", timeout: 120_000 });
  assert.equal(r.signal, null, `child killed by ${r.signal}; stderr:\n${r.stderr.slice(-2000)}`);
  assert.equal(r.status, 0, `child exited ${r.status}; stderr:\n${r.stderr.slice(-2000)}`);
  const got = JSON.parse(r.stdout.trim().split("\n").pop()!);
  assert.ok(got.calls > 1000 && got.errors > got.calls / 2, JSON.stringify(got));
  assert.deepEqual(got.notTorchErrors, [], "every failure is a TorchError");
  assert.equal(got.after, 4, "the engine still works");
});

test("thread counts beyond the bound are refused, not fatal: setNumThreads(1e9), OMP_NUM_THREADS=1000000000 (child process)", () => {
  const index = new URL("../../src/index.js", import.meta.url).href;
  const script = `
    import { torch } from ${JSON.stringify(index)};
    let error = null;
    try { if (process.env.OMP_NUM_THREADS === undefined) torch.setNumThreads(1e9); else torch.ones([1]); } catch (e) { error = e.message; }
    if (process.env.OMP_NUM_THREADS === undefined) {
      const a = torch.randn([256, 256]);
      console.log(JSON.stringify({ error, threads: torch.getNumThreads(), ok: a.matmul(a).abs().sum().item() > 0 }));
    } else console.log(JSON.stringify({ error }));`;
  const env = { ...process.env };
  delete env.OMP_NUM_THREADS;
  const viaCall = spawnSync(process.execPath, ["--input-type=module", "-e", script], {
    encoding: "utf8",
    env,
    timeout: 60_000,
  });
  assert.equal(viaCall.status, 0, viaCall.stderr);
  const a = JSON.parse(viaCall.stdout.trim());
  assert.match(a.error, /setNumThreads: expected an integer from 1 to \d+, got 1000000000/);
  assert.ok(a.threads >= 1 && a.threads < 1e9 && a.ok, viaCall.stdout);
  const viaEnv = spawnSync(process.execPath, ["--input-type=module", "-e", script], {
    encoding: "utf8",
    env: { ...env, OMP_NUM_THREADS: "1000000000" },
    timeout: 60_000,
  });
  assert.equal(viaEnv.status, 0, viaEnv.stderr);
  assert.match(
    JSON.parse(viaEnv.stdout.trim()).error,
    /OMP_NUM_THREADS=1000000000 is not a thread count from 1 to \d+/,
  );
});

test("a worker thread that uses tensors gets an error; the main thread carries on (child process)", () => {
  const index = new URL("../../src/index.js", import.meta.url).href;
  const script = `
    import { Worker } from "node:worker_threads";
    import { torch } from ${JSON.stringify(index)};
    const a = torch.ones([2]);
    const worker = new Worker(${JSON.stringify(`
      import { parentPort } from "node:worker_threads";
      import { torch } from ${JSON.stringify(index)};
      try { torch.ones([2]).add(1); parentPort.postMessage("no error"); } catch (e) { parentPort.postMessage(e.message); }`)}, { eval: true });
    const message = await new Promise((resolve) => worker.once("message", resolve));
    await worker.terminate();
    console.log(JSON.stringify({ message, main: a.add(1).sum().item() }));`;
  const r = spawnSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8", timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  const got = JSON.parse(r.stdout.trim());
  assert.match(got.message, /could not be loaded: the omni-dpo engine is already in use by another thread/);
  assert.equal(got.main, 4);
});
