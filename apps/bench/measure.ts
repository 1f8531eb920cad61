// Timing for benchmarks: warm up, size the loop to about `trialSeconds`, take the median of
// several trials. The Python side (measure.py) follows the same procedure.
export interface Timing {
  secondsPerIteration: number;
  iterations: number;
}

export function measure(
  fn: () => void,
  options: { trials?: number; trialSeconds?: number; warmup?: number } = {},
): Timing {
  const trials = options.trials ?? 5;
  const trialSeconds = options.trialSeconds ?? 0.25;
  for (let i = 0; i < (options.warmup ?? 2); i++) fn();
  let iterations = 1;
  for (;;) {
    const t = time(fn, iterations);
    if (t >= trialSeconds / 4 || iterations > 1e7) {
      iterations = Math.max(1, Math.ceil((iterations * trialSeconds) / Math.max(t, 1e-9)));
      break;
    }
    iterations *= 4;
  }
  const results: number[] = [];
  for (let i = 0; i < trials; i++) results.push(time(fn, iterations) / iterations);
  results.sort((a, b) => a - b);
  return { secondsPerIteration: results[Math.floor(results.length / 2)], iterations };
}

function time(fn: () => void, n: number): number {
  const start = process.hrtime.bigint();
  for (let i = 0; i < n; i++) fn();
  return Number(process.hrtime.bigint() - start) / 1e9;
}

/** One benchmark row: this engine beside PyTorch, with speed relative to PyTorch (> 1 is faster). */
export interface Row {
  name: string;
  unit: string;
  omni: number;
  pytorch: number | null;
  higherIsBetter: boolean;
  speedVsPytorch: number | null;
}

export function row(name: string, unit: string, omni: number, pytorch: number | null, higherIsBetter: boolean): Row {
  const speed = pytorch === null ? null : higherIsBetter ? omni / pytorch : pytorch / omni;
  return { name, unit, omni, pytorch, higherIsBetter, speedVsPytorch: speed };
}

export function formatTable(rows: Row[]): string {
  const fmt = (v: number | null) =>
    v === null ? "n/a" : v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2);
  const header = ["benchmark", "unit", "omni-dpo", "PyTorch", "vs PyTorch"];
  const body = rows.map((r) => [
    r.name,
    r.unit,
    fmt(r.omni),
    fmt(r.pytorch),
    r.speedVsPytorch === null ? "n/a" : `${r.speedVsPytorch.toFixed(2)}x`,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  ");
  return [line(header), widths.map((w) => "-".repeat(w)).join("  "), ...body.map(line)].join("\n");
}
