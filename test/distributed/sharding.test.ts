// How data splits across ranks: as PyTorch's DistributedSampler (checked against it), the eval
// stride and its inverse, and gradient buckets (one dtype each, at most the cap).
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { torch } from "../../src/index.js";
import { buckets, interleave, shardOf, strideOf } from "../../src/train/distributed/index.js";
import { runPythonJson } from "../../src/util/python.js";
import { skipUnless } from "../helpers/requirements.js";

const SAMPLER = fileURLToPath(new URL("../../../test/distributed/distributed_sampler.py", import.meta.url));
const CASES = [
  { n: 16, world: 2 },
  { n: 15, world: 2 },
  { n: 10, world: 4 },
  { n: 3, world: 4 },
  { n: 1, world: 3 },
  { n: 7, world: 1 },
];

describe("sharding", () => {
  it("shardOf is PyTorch's DistributedSampler (pad from the start, then stride)", { skip: skipUnless("torch") }, () => {
    const expected = runPythonJson<number[][][]>(SAMPLER, CASES, { file: true });
    CASES.forEach((c, i) => {
      const order = Array.from({ length: c.n }, (_, k) => k);
      assert.deepEqual(
        Array.from({ length: c.world }, (_, r) => shardOf(order, r, c.world)),
        expected[i],
        JSON.stringify(c),
      );
    });
  });

  it("strideOf counts each item once and interleave puts them back in order", () => {
    const items = Array.from({ length: 11 }, (_, k) => `p${k}`);
    const parts = [0, 1, 2].map((r) => strideOf(items, r, 3));
    assert.deepEqual(
      parts.map((p) => p.length),
      [4, 4, 3],
    );
    assert.deepEqual(interleave(parts, items.length), items);
  });

  it("buckets keep one dtype each and stay under the cap unless one tensor is larger", () => {
    torch.tidy(() => {
      const ts = [
        torch.zeros([10]),
        torch.zeros([10]),
        torch.zeros([5], { dtype: "float64" }),
        torch.zeros([100]),
        torch.zeros([1]),
      ];
      const b = buckets(ts, 80); // bytes: 40, 40 | 40 (float64) | 400 | 4
      assert.deepEqual(
        b.map((x) => x.map((t) => t.numel())),
        [[10, 10], [5], [100], [1]],
      );
    });
  });
});
