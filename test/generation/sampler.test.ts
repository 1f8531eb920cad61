// The sampler's top-p without a full sort: the cutoff found by weighted selection is the one a
// sort of the whole row gives (an independent oracle here: sort descending, keep while the mass
// above is below p), on peaked, flat and tied rows; sampling by uniforms then draws each kept
// token with its renormalised probability.
import { test } from "node:test";
import assert from "node:assert/strict";
import { torch } from "../../src/index.js";
import { pickTokens, topPCutoff } from "../../src/models/generate.js";
import { mulberry32 } from "../../src/util/random.js";

torch.setNumThreads(1);

function sortedCutoff(row: Float32Array, p: number, sorted = descending(row)): number {
  let above = 0;
  let last = sorted[0];
  for (const x of sorted) {
    if (above >= p) break;
    last = x;
    above += x;
  }
  return last;
}

/** The row's probabilities above 0, largest first. */
function descending(row: Float32Array): Float32Array {
  return row.filter((x) => x > 0).sort((a, b) => b - a);
}

/** A standard normal draw (Box-Muller) from a uniform stream. */
function gaussian(random: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
}

function normalised(values: number[]): Float32Array {
  const sum = values.reduce((a, b) => a + b, 0);
  return Float32Array.from(values.map((v) => v / sum));
}

test("topPCutoff equals the cutoff of a full sort (peaked, flat, tied, with zeros)", () => {
  const random = mulberry32(11);
  const rows: Float32Array[] = [];
  for (let n = 0; n < 30; n++) {
    const size = 1 + Math.floor(random() * 300);
    const peak = [0.01, 1, 5, 20][n % 4];
    rows.push(normalised(Array.from({ length: size }, () => Math.exp(peak * random()))));
  }
  rows.push(normalised([1, 1, 1, 1, 1, 1, 1, 1])); // all tied
  rows.push(normalised([4, 2, 2, 2, 1, 0, 0, 1])); // ties at the cutoff, zeros
  rows.push(Float32Array.from([1]));
  for (const [i, row] of rows.entries()) {
    for (const p of [0.05, 0.3, 0.5, 0.9, 0.95, 0.999]) {
      assert.equal(topPCutoff(row, p), sortedCutoff(row, p), `row ${i}, p ${p}`);
    }
  }
});

test("topPCutoff on vocabulary-sized rows: flat (one bucket holds the cutoff), peaked, with ties", () => {
  const random = mulberry32(5);
  const vocab = 32000;
  const rows = [0.02, 0.3, 3, 12].map((scale) =>
    normalised(Array.from({ length: vocab }, () => Math.exp(scale * gaussian(random)))),
  );
  // Many tokens tied at the cutoff's value, and a row where one token holds most of the mass.
  rows.push(normalised(Array.from({ length: vocab }, (_, i) => (i % 3 === 0 ? 2 : 1))));
  rows.push(normalised(Array.from({ length: vocab }, (_, i) => (i === 17 ? 1e5 : random()))));
  for (const [i, row] of rows.entries()) {
    const sorted = descending(row);
    for (const p of [0, 0.1, 0.5, 0.9, 0.95, 0.999, 1]) {
      assert.equal(topPCutoff(row, p), sortedCutoff(row, p, sorted), `row ${i}, p ${p}`);
    }
  }
});

test("pickTokens draws what a full sort's top-p then the inverse CDF draws (fixed logits, fixed uniforms)", () => {
  // The oracle: softmax(logits / T) from the engine, then in plain JS a sort of the whole row for
  // the cutoff and a walk in token order over the kept tokens to the uniform's share of their mass.
  const random = mulberry32(23);
  const vocab = 32000;
  const values = [0.05, 1, 4].flatMap((scale) =>
    Array.from({ length: 2 }, () => Array.from({ length: vocab }, () => scale * gaussian(random))),
  );
  const logits = torch.tensor(values, { dtype: "float32" }); // [6, V]
  for (const [temperature, topP] of [
    [0.8, 0.95],
    [1, 0.5],
    [0.7, 1],
  ]) {
    const probs = torch.tidy(() => logits.div(temperature).softmax(-1).toArray() as number[][]);
    const kept = probs.map((row) => {
      const q = Float32Array.from(row);
      const cut = topP < 1 ? sortedCutoff(q, topP) : 0;
      const ids = [...q.keys()].filter((i) => q[i] > 0 && q[i] >= cut);
      return { q, ids, mass: ids.reduce((s, i) => s + q[i], 0) };
    });
    for (let draw = 0; draw < 5; draw++) {
      const uniforms = values.map(() => random());
      const expected = kept.map(({ q, ids, mass }, r) => {
        const target = uniforms[r] * mass;
        let sum = 0;
        return ids.find((i) => (sum += q[i]) > target) ?? ids[ids.length - 1];
      });
      assert.deepEqual(pickTokens(logits, { temperature, topP }, uniforms), expected, `T ${temperature}, p ${topP}`);
    }
  }
  logits.dispose();
});

test("pickTokens with uniforms draws each kept token with its renormalised probability", () => {
  const logits = torch.tensor([[2, 1.5, 1, 0.5, 0, -0.5, -1, -3]], { dtype: "float32" });
  const probs = normalised([2, 1.5, 1, 0.5, 0, -0.5, -1, -3].map((x) => Math.exp(x)));
  const cut = sortedCutoff(probs, 0.8);
  const kept = [...probs].map((q, i) => (q >= cut ? i : -1)).filter((i) => i >= 0);
  const mass = kept.reduce((s, i) => s + probs[i], 0);
  const n = 4000;
  const counts = new Array(8).fill(0);
  for (let j = 0; j < n; j++) counts[pickTokens(logits, { temperature: 1, topP: 0.8 }, [(j + 0.5) / n])[0]]++;
  for (let i = 0; i < 8; i++) {
    const expected = kept.includes(i) ? probs[i] / mass : 0;
    assert.ok(Math.abs(counts[i] / n - expected) <= 1 / n + 1e-6, `token ${i}: ${counts[i] / n} vs ${expected}`);
  }
  logits.dispose();
});
