// The all-reduce overlapped with backward (native/src/grad_sync.h), in one process (a Gloo
// group of one rank, where the mean is the sum): when each bucket starts, across several
// backward calls as the recompute tape makes them (a parameter read by every LM-head chunk is
// final only after the last), that the gradients come back exact, that earlier micro-batches
// accumulate without it (no_sync), and that a gradient arriving after its bucket left is an
// error rather than a wrong average. The 2-rank numbers are ddp-equality.test.ts's.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { torch } from "../../src/index.js";
import type { GradientSync, ProcessGroup } from "../../src/torch/distributed.js";
import type { Tensor } from "../../src/torch/tensor.js";
import { freePort } from "./ranks.js";

let group: ProcessGroup;

before(async () => {
  group = torch.distributed.ProcessGroup.init({
    rank: 0,
    worldSize: 1,
    masterAddr: "127.0.0.1",
    masterPort: await freePort(),
    backend: "gloo",
    timeoutMs: 30000,
  });
});
after(() => group.destroy());

const f64 = (values: number[]) => torch.tensor(values, { dtype: "float64" });
const param = (values: number[]) => f64(values).requiresGrad_(true);
const values = (t: Tensor | null | undefined) => (t ? Array.from(t.data() as Float64Array) : null);

/**
 * A two-"layer" net as the trainer's tape runs it: `head` is read by two chunks (two backward
 * calls, like the LM head's), `body` by the graph below them (a third call, like the decoder's).
 * hidden = body * x; chunk k: (hidden * head).sum() * k, k = 1, 2.
 */
function tapeLikeStep(sync: GradientSync, head: Tensor, body: Tensor, nameLater: boolean): number[] {
  const started: number[] = [];
  const x = f64([1, 2]);
  const hidden = body.mul(x); // non-leaf: its graph reaches body
  const picked = hidden.detach().requiresGrad_(true); // the tape's leaf
  for (const k of [2, 1]) {
    const out = picked.mul(head).sum().mul(k);
    // Later calls: the other chunk (same parameters as this one) while it remains, and hidden's graph.
    sync.backward(out, null, nameLater ? [...(k === 2 ? [out] : []), hidden] : []);
    started.push(sync.started());
  }
  sync.backward(hidden, picked.grad!, []);
  started.push(sync.started());
  return started;
}

describe("gradient sync: all-reduce overlapped with backward", () => {
  it("starts each bucket once its gradients are final, across the tape's backward calls, with exact gradients", () => {
    const head = param([1, 1]);
    const body = param([1, 1]);
    // Reverse registration order: the head (reached first in backward) in bucket 0.
    const sync = group.gradientSync([head, body], [1, 1]);
    try {
      sync.arm();
      const started = tapeLikeStep(sync, head, body, true);
      // Not after the first chunk (the second reads the head too); after the second; the body's with the last call.
      assert.deepEqual(started, [0, 1, 2]);
      assert.equal(sync.finish(), 2);
      // d/dhead = 3 * hidden = 3 * [1, 2]; d/dbody = 3 * head * x = [3, 6].
      assert.deepEqual(values(head.grad), [3, 6]);
      assert.deepEqual(values(body.grad), [3, 6]);
    } finally {
      sync.destroy();
    }
  });

  it("a gradient that arrives after its bucket started is an error naming the cause, not a wrong mean", () => {
    const head = param([1, 1]);
    const body = param([1, 1]);
    const sync = group.gradientSync([head, body], [1, 1]);
    try {
      sync.arm();
      tapeLikeStep(sync, head, body, false);
      assert.throws(() => sync.finish(), /accumulated a gradient after its bucket's all-reduce had started/);
      // The next step starts afresh.
      sync.arm();
      tapeLikeStep(sync, head, body, true);
      sync.finish();
    } finally {
      sync.destroy();
    }
  });

  it("unarmed backward (earlier micro-batches) only accumulates; a parameter without a gradient gets zeros", () => {
    const a = param([1, 2, 3]);
    const unused = param([5]);
    const sync = group.gradientSync([unused, a], [2]);
    try {
      a.mul(f64([1, 1, 1]))
        .sum()
        .backward(); // micro-batch 1, not armed
      assert.equal(sync.started(), 0);
      sync.arm();
      sync.backward(a.mul(f64([2, 2, 2])).sum(), null, []); // the last micro-batch
      assert.equal(sync.started(), 0, "the bucket waits for `unused` until finish");
      assert.equal(sync.finish(), 0);
      assert.deepEqual(values(a.grad), [3, 3, 3]);
      assert.deepEqual(values(unused.grad), [0]);
    } finally {
      sync.destroy();
    }
  });

  it("rejects bad input with errors naming it", () => {
    const a = param([1]);
    assert.throws(() => group.gradientSync([a], [2]), /bucket sizes add up to 2, not the 1 parameters/);
    assert.throws(() => group.gradientSync([a, a], [2]), /listed twice/);
    assert.throws(() => group.gradientSync([f64([1])], [1]), /not a leaf that requires grad/);
    assert.throws(
      () => group.gradientSync([a, torch.tensor([1], { dtype: "float32" }).requiresGrad_(true)], [2]),
      /parameter 1 differs in dtype or device from the first of its bucket/,
    );
    const sync = group.gradientSync([a], [1]);
    try {
      assert.throws(() => sync.finish(), /not armed/);
      sync.arm();
      assert.throws(() => sync.arm(), /already armed/);
    } finally {
      sync.destroy();
    }
    assert.throws(() => sync.arm(), /destroyed/);
  });
});
