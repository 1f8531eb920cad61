// The recompute tape's afterBackward (ZeRO-3 frees a layer's gathered weights there): called
// once per segment, after backward has gone through the segment (its recomputation and the
// backprop, which still read what the segment read), and by dispose() for segments backward
// never reached.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { torch } from "../../src/index.js";
import { RecomputeTape } from "../../src/nn/recompute.js";

describe("recompute tape: afterBackward", () => {
  it("runs after each segment's backprop, last segment first, with the gradients already there", () => {
    const w = torch.tensor([2, 3], { dtype: "float64" }).requiresGrad_(true); // [2]
    const x = torch.tensor([1, 1], { dtype: "float64" }); // [2]
    const events: string[] = [];
    const tape = new RecomputeTape();
    const layer = (name: string) => (input: torch.Tensor) => {
      events.push(`run ${name} grad=${torch.isGradEnabled()}`);
      return input.mul(w); // [2]
    };
    const after = (name: string) => () =>
      events.push(`after ${name}: w.grad ${(w.grad?.toArray() as number[] | undefined)?.join(",")}`);
    const h1 = tape.segment(x, layer("a"), layer("a"), { afterBackward: after("a") });
    const h2 = tape.segment(h1, layer("b"), layer("b"), { afterBackward: after("b") });
    h2.sum().backward();
    tape.backward((root, grad) => {
      events.push("backprop");
      root.backward(grad ?? undefined);
    });
    // out = x * w * w: d/dw = 2 x w = [4, 6]; segment b's backprop gives x w = [2, 3] first.
    assert.deepEqual(events, [
      "run a grad=false",
      "run b grad=false",
      "run b grad=true",
      "backprop",
      "after b: w.grad 2,3",
      "run a grad=true",
      "backprop",
      "after a: w.grad 4,6",
    ]);
  });

  it("dispose() without backward calls each segment's afterBackward once", () => {
    const calls: number[] = [];
    const tape = new RecomputeTape();
    const x = torch.ones([3], { dtype: "float64" });
    tape.segment(x, (t) => t.mul(2), undefined, { afterBackward: () => calls.push(0) });
    tape.segment(x, (t) => t.mul(3), undefined, { afterBackward: () => calls.push(1) });
    tape.dispose();
    tape.dispose();
    assert.deepEqual(calls.sort(), [0, 1]);
  });
});
