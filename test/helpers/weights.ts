// Weights of two finished runs compared tensor by tensor (resumed against uninterrupted runs).
import assert from "node:assert/strict";
import { join } from "node:path";
import { torch } from "../../src/index.js";
import { loadSafetensors } from "../../src/models/safetensors.js";

/** Every tensor of two model.safetensors files agrees to `tol`; returns the largest difference. */
export function compareWeights(a: string, b: string, tol: number): number {
  const ta = loadSafetensors(join(a, "model.safetensors"));
  const tb = loadSafetensors(join(b, "model.safetensors"));
  let worst = 0;
  try {
    assert.deepEqual([...ta.keys()].sort(), [...tb.keys()].sort());
    for (const [name, x] of ta) {
      const y = tb.get(name)!;
      assert.deepEqual(y.shape, x.shape, name);
      const d = torch.tidy(() => x.sub(y).abs().max().item());
      worst = Math.max(worst, d);
      assert.ok(d <= tol, `${name}: weights differ by ${d}`);
    }
  } finally {
    for (const t of [...ta.values(), ...tb.values()]) t.dispose();
  }
  return worst;
}
