// The charts' y axis: a near-constant series (an eval accuracy that differs between runs in the
// 8th digit, or does not change at all) gets distinct tick labels and sits mid-plot, not spread
// from edge to edge by rounding noise; a series that really varies keeps its own range.
import { test } from "node:test";
import assert from "node:assert/strict";
import { lineChart, yAxis } from "../../src/report/svg.js";

const distinct = (labels: string[]) => new Set(labels).size === labels.length;

test("a constant or near-constant series gets distinct tick labels and a range centred on it", () => {
  const cases: [number, number][] = [
    [0.75, 0.75],
    [0.75, 0.75 + 1e-9],
    [0.6931471, 0.6931472],
    [1.0001, 1.0001],
    [-3.2, -3.2 + 1e-7],
    [1e-4, 1e-4 * (1 + 1e-6)],
    [150_000, 150_000.5],
    [0, 0],
  ];
  for (const [lo, hi] of cases) {
    const { range, ticks, labels } = yAxis(lo, hi);
    assert.ok(ticks.length >= 2, `[${lo}, ${hi}]: ${ticks.length} ticks`);
    assert.ok(distinct(labels), `[${lo}, ${hi}]: tick labels ${labels.join(", ")}`);
    // The values sit in the middle fifth of the range.
    const at = (v: number) => (v - range[0]) / (range[1] - range[0]);
    for (const v of [lo, hi]) assert.ok(at(v) > 0.4 && at(v) < 0.6, `[${lo}, ${hi}]: ${v} at ${at(v)} of ${range}`);
    for (const t of ticks) assert.ok(t >= range[0] && t <= range[1], `tick ${t} outside ${range}`);
  }
  // On a log scale (the values are log10), too.
  const log = yAxis(Math.log10(0.5), Math.log10(0.5 + 1e-9), { log: true });
  assert.ok(log.range[1] - log.range[0] >= Math.log10(1.01), `${log.range}`);
});

test("a series that varies keeps its range (with the 5% margin), and labels stay fmt's short ones", () => {
  const { range, labels } = yAxis(0.5, 0.7);
  assert.ok(Math.abs(range[0] - 0.49) < 1e-12 && Math.abs(range[1] - 0.71) < 1e-12, `${range}`);
  assert.deepEqual(labels, ["0.5", "0.55", "0.6", "0.65", "0.7"]);
  // A given range is kept as it is.
  assert.deepEqual(yAxis(0.3, 0.3, { range: [0, 1] }).range, [0, 1]);
});

test("tick labels more precise than fmt's 4 digits when those repeat (exponent form)", () => {
  // 2.0e-4 ... : fmt's exponent form has 2 digits; ticks 1e-6 apart need more.
  const { labels } = yAxis(2e-4, 2.05e-4, { range: [2e-4, 2.05e-4] });
  assert.ok(distinct(labels), labels.join(", "));
});

test("two runs whose eval accuracy differs by rounding noise are drawn mid-chart, not at opposite edges", () => {
  const svg = lineChart(
    "Eval reward accuracy",
    "step",
    "eval_rewards/accuracies",
    [
      {
        name: "a",
        points: [
          [3, 0.75],
          [6, 0.75],
          [10, 0.75],
        ],
      },
      {
        name: "b",
        points: [
          [3, 0.7500000001],
          [6, 0.7500000001],
          [10, 0.7500000001],
        ],
      },
    ],
    { width: 440, height: 260 },
  );
  const cy = [...svg.matchAll(/<circle class="pt" cx="[^"]+" cy="([^"]+)"/g)].map((m) => Number(m[1]));
  assert.equal(cy.length, 6);
  assert.ok(Math.max(...cy) - Math.min(...cy) < 2, `the runs are ${Math.max(...cy) - Math.min(...cy)} px apart`);
  const ticks = [...svg.matchAll(/<text class="y-tick"[^>]*>([^<]*)<\/text>/g)].map((m) => m[1]);
  assert.ok(ticks.length >= 2 && distinct(ticks), `tick labels ${ticks.join(", ")}`);
  // Mid-chart: between the plot's top (28 + a legend row) and bottom (260 - 44) lines.
  const mid = (42 + 216) / 2;
  for (const y of cy) assert.ok(Math.abs(y - mid) < 20, `a point at y=${y}, the plot's middle is ${mid}`);
});
