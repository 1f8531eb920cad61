// The demo's --json shape, checked by the demo's tests (test/apps/demo/*.test.ts).
import assert from "node:assert/strict";

export interface PipelineJson {
  pipeline: string;
  sft_accuracy: { mean: number };
  methods: { name: string; heldout_accuracy: { mean: number; runs: number[] } }[];
  comparisons: { a: string; b: string; mean_diff: number; ci95: [number, number] }[];
  lr_sweep: { name: string; lr_multiple: number; heldout_accuracy: number }[];
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

/** The methods each pipeline compares (the rm pipeline leaves out RFT). */
export const PIPELINE_METHODS: Record<string, string[]> = {
  math: ["rft", "dpo", "simpo", "omni_dpo"],
  text: ["rft", "dpo", "simpo", "omni_dpo"],
  rm: ["dpo", "simpo", "omni_dpo"],
};

/** The per-pipeline JSON: methods with held-out means of their runs, comparisons with DPO and SFT, the sweep at 2x and 4x. */
export function assertPipelineShape(json: PipelineJson, runs: number): void {
  const names = PIPELINE_METHODS[json.pipeline];
  assert.deepEqual(
    json.methods.map((m) => m.name),
    names,
  );
  const a = json.sft_accuracy.mean;
  assert.ok(a >= 0 && a <= 1, `sft_accuracy.mean ${a}`);
  for (const m of json.methods) {
    assert.equal(m.heldout_accuracy.runs.length, runs, `${m.name}: ${runs} runs`);
    assert.ok(
      Math.abs(m.heldout_accuracy.mean - mean(m.heldout_accuracy.runs)) < 1e-12,
      `${m.name}: the mean of its runs`,
    );
  }
  for (const name of names.filter((n) => n !== "dpo"))
    assert.ok(
      json.comparisons.some((c) => c.a === name && c.b === "dpo"),
      `${name} - DPO`,
    );
  for (const name of names)
    assert.ok(
      json.comparisons.some((c) => c.a === name && c.b === "sft"),
      `${name} - SFT`,
    );
  for (const c of json.comparisons)
    assert.ok(c.ci95[0] <= c.mean_diff && c.mean_diff <= c.ci95[1], `${c.a} - ${c.b}: the interval holds the mean`);
  for (const m of json.methods)
    for (const k of [2, 4])
      assert.ok(
        json.lr_sweep.some((s) => s.name === m.name && s.lr_multiple === k),
        `${m.name} at ${k}x DPO's lr`,
      );
}
