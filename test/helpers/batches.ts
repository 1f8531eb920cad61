// Random token batches and random weights for the model parity tests: rows of given lengths,
// unpadded and padded on either side, and every parameter of a model drawn at random.
import { torch } from "../../src/index.js";
import type { Module } from "../../src/nn/module.js";

export interface Batch {
  kind: string;
  ids: number[][];
  mask: number[][] | null;
}

/**
 * Rows of the given lengths (ids 1..vocab-1, never `pad`), three ways: unpadded (the short rows
 * filled with more tokens), right-padded and left-padded with `pad` (masks 0 there).
 */
export function paddedBatches(lengths: number[], seed: number, vocab: number, pad = 0): Batch[] {
  let s = seed;
  const rand = () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return 1 + (s % (vocab - 1));
  };
  const rows = lengths.map((n) => Array.from({ length: n }, rand));
  const t = Math.max(...lengths);
  const padded = (left: boolean) => ({
    ids: rows.map((r) => {
      const fill = new Array(t - r.length).fill(pad);
      return left ? [...fill, ...r] : [...r, ...fill];
    }),
    mask: rows.map((r) => {
      const ones = new Array(r.length).fill(1),
        zeros = new Array(t - r.length).fill(0);
      return left ? [...zeros, ...ones] : [...ones, ...zeros];
    }),
  });
  return [
    { kind: "unpadded", ids: rows.map((r) => [...r, ...Array.from({ length: t - r.length }, rand)]), mask: null },
    { kind: "right-padded", ...padded(false) },
    { kind: "left-padded", ...padded(true) },
  ];
}

/** Every parameter normal(0, 0.3), norm weights 1 + normal(0, 0.09): a wrong name or a skipped norm shows. */
export function randomizeParameters(model: Module, seed: number): void {
  torch.manualSeed(seed);
  torch.noGrad(() =>
    torch.tidy(() => {
      for (const [name, p] of model.namedParameters()) {
        let v = torch.randn(p.shape).mul(0.3);
        if (/norm/.test(name) && name.endsWith("weight")) v = v.mul(0.3).add(1);
        model.setParameter(name, v);
      }
    }),
  );
}
