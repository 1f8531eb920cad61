// torch.autocast: inside the scope LibTorch's autocast policy runs matmuls in bfloat16 from
// float32 inputs (weights included), the weights and their gradients stay float32, and the
// previous state comes back after the scope, after a throw and after nested scopes.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { torch } from "../../src/index.js";

const off = { enabled: false, dtype: "bfloat16" };

describe("torch.autocast", () => {
  it("runs linear and matmul in bfloat16 from float32 inputs, exactly as the bf16-cast inputs would", () => {
    torch.tidy(() => {
      torch.manualSeed(0);
      const x = torch.randn([4, 16]);
      const w = torch.randn([8, 16], { requiresGrad: true });
      const [y, m, state] = torch.autocast(
        "bfloat16",
        () => [torch.linear(x, w), x.matmul(w.t()), torch.autocastState()] as const,
      );
      assert.equal(y.dtype, "bfloat16");
      assert.equal(m.dtype, "bfloat16");
      assert.deepEqual(state, { enabled: true, dtype: "bfloat16" });
      const expected = torch.linear(x.to("bfloat16"), w.to("bfloat16"));
      assert.deepEqual(y.toArray(), expected.toArray());
      // Elementwise ops are not on the policy: they keep their inputs' dtype.
      assert.equal(torch.autocast("bfloat16", () => x.mul(x)).dtype, "float32");
      assert.equal(torch.linear(x, w).dtype, "float32", "autocast stays on after the scope");
    });
  });

  it("leaves the weights float32 and backpropagates float32 gradients into them", () => {
    torch.tidy(() => {
      torch.manualSeed(1);
      const x = torch.randn([4, 16]);
      const w = torch.randn([8, 16], { requiresGrad: true });
      const loss = torch.autocast("bfloat16", () => torch.linear(x, w).to("float32").square().mean());
      loss.backward();
      assert.equal(w.dtype, "float32");
      assert.equal(w.grad!.dtype, "float32");
      // The float32 gradient of the same loss, to bf16 rounding.
      const w32 = w.detach().requiresGrad_(true);
      torch.linear(x, w32).square().mean().backward();
      const cos = w.grad!.mul(w32.grad!).sum().item() / (w.grad!.norm().item() * w32.grad!.norm().item());
      assert.ok(cos > 0.999, `gradient cosine ${cos}`);
    });
  });

  it("restores the previous state after a throw, and nests (enabled: false inside turns it off there only)", () => {
    assert.deepEqual(torch.autocastState(), off);
    assert.throws(
      () =>
        torch.autocast("bfloat16", () => {
          throw new Error("inside");
        }),
      /inside/,
    );
    assert.deepEqual(torch.autocastState(), off);
    torch.tidy(() => {
      const a = torch.randn([2, 3]);
      const b = torch.randn([3, 2]);
      torch.autocast("bfloat16", () => {
        assert.equal(torch.autocast("bfloat16", () => a.matmul(b), { enabled: false }).dtype, "float32");
        assert.throws(
          () =>
            torch.autocast(
              "bfloat16",
              () => {
                throw new Error("nested");
              },
              { enabled: false },
            ),
          /nested/,
        );
        assert.equal(a.matmul(b).dtype, "bfloat16", "the outer scope is on again after the inner one");
        assert.deepEqual(torch.autocastState(), { enabled: true, dtype: "bfloat16" });
      });
    });
    assert.deepEqual(torch.autocastState(), off);
  });

  it("a weight changed between two scopes is used changed (the cast cache ends with the outermost scope)", () => {
    torch.tidy(() => {
      const x = torch.ones([1, 4]);
      const w = torch.ones([1, 4], { requiresGrad: true });
      assert.deepEqual(torch.autocast("bfloat16", () => torch.linear(x, w)).toArray(), [[4]]);
      torch.noGrad(() => w.mul_(2)); // what an optimizer step does
      assert.deepEqual(torch.autocast("bfloat16", () => torch.linear(x, w)).toArray(), [[8]]);
    });
  });

  it("rejects a dtype the device's autocast does not support, and unknown devices, by name", () => {
    assert.throws(() => torch.autocast("float16", () => 0), /cpu autocast supports bfloat16, got float16/);
    assert.throws(() => torch.autocast("float32", () => 0), /got float32/);
    assert.throws(() => torch.autocast("bfloat16", () => 0, { device: "tpu" as never }), /unknown device 'tpu'/);
    assert.deepEqual(torch.autocastState(), off);
  });
});
