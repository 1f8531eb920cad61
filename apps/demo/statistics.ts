// The demo's statistics: spreads over runs, and paired differences between two methods with a
// 95% confidence interval that counts both sources of noise a reviewer asks about: which seeds
// the runs drew (training seed and pair-building seed) and which problems were held out.

export interface Spread {
  mean: number;
  std: number;
  runs: number[];
}

/** Mean and sample standard deviation (0 for one run). */
export function spread(runs: number[]): Spread {
  const mean = average(runs);
  const std = runs.length > 1 ? Math.sqrt(sampleVariance(runs)) : 0;
  return { mean, std, runs };
}

export interface PairedDifference {
  /** Mean over runs and problems of a - b (accuracy points as fractions). */
  mean_diff: number;
  ci95: [number, number];
  /** The standard error behind the interval, and its Welch-Satterthwaite degrees of freedom. */
  se: number;
  df: number;
}

/**
 * a - b where `a[c][j]` and `b[c][j]` are 1 when run c of each method solved held-out problem j
 * (the same problems, and runs paired by seeds: a[c] and b[c] trained on the same pairs with
 * the same training seed). Model: d_cj = mu + run effect + problem effect + noise. The interval
 * is mean ± t * se with se^2 = var_c(run means)/n_runs + var_j(problem means)/n_problems, which
 * covers each source of noise (it counts the interaction twice, so it errs wide), and the
 * Welch-Satterthwaite degrees of freedom of that sum.
 */
export function pairedDifference(a: number[][], b: number[][]): PairedDifference {
  if (a.length === 0 || a.length !== b.length) throw new RangeError(`paired runs: ${a.length} against ${b.length}`);
  const problems = a[0].length;
  for (const rows of [a, b])
    for (const r of rows)
      if (r.length !== problems)
        throw new RangeError(`paired runs must cover the same ${problems} problems, got ${r.length}`);
  const diff = a.map((row, c) => row.map((x, j) => x - b[c][j])); // [runs][problems]
  const byRun = diff.map(average); // [runs]
  const byProblem = Array.from({ length: problems }, (_, j) => average(diff.map((row) => row[j]))); // [problems]
  const runPart = a.length > 1 ? sampleVariance(byRun) / a.length : 0;
  const problemPart = problems > 1 ? sampleVariance(byProblem) / problems : 0;
  const se = Math.sqrt(runPart + problemPart);
  const df =
    se === 0
      ? Infinity
      : (runPart + problemPart) ** 2 /
        ((a.length > 1 ? runPart ** 2 / (a.length - 1) : 0) + (problems > 1 ? problemPart ** 2 / (problems - 1) : 0));
  const meanDiff = average(byRun);
  const half = studentT975(df) * se;
  return { mean_diff: meanDiff, ci95: [meanDiff - half, meanDiff + half], se, df };
}

/** "better" or "worse" when the interval excludes 0, else "within noise". */
export function verdict(d: { ci95: [number, number] }): "better" | "worse" | "within noise" {
  return d.ci95[0] > 0 ? "better" : d.ci95[1] < 0 ? "worse" : "within noise";
}

/** The 97.5% quantile of Student's t with `df` degrees of freedom (two-sided 95%). */
export function studentT975(df: number): number {
  if (!(df > 0)) throw new RangeError(`degrees of freedom must be > 0, got ${df}`);
  const table = [
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.16, 2.145, 2.131,
  ];
  if (df < 1) return table[0];
  if (df <= table.length && Number.isInteger(df)) return table[df - 1];
  if (df < table.length) return table[Math.floor(df) - 1]; // between two entries: the wider
  // Beyond 15: the Cornish-Fisher expansion around the normal quantile (error < 1e-3).
  const z = 1.959963984540054;
  return z + (z ** 3 + z) / (4 * df) + (5 * z ** 5 + 16 * z ** 3 + 3 * z) / (96 * df ** 2);
}

export function average(xs: number[]): number {
  return xs.length ? xs.reduce((s, x) => s + x, 0) / xs.length : 0;
}

function sampleVariance(xs: number[]): number {
  const m = average(xs);
  return xs.reduce((s, x) => s + (x - m) ** 2, 0) / (xs.length - 1);
}

/** A distribution in five numbers: the 10th, 25th, 50th, 75th and 90th percentiles. */
export interface Quantiles {
  p10: number;
  p25: number;
  median: number;
  p75: number;
  p90: number;
}

/**
 * The percentiles of `xs`, each by linear interpolation between the closest ranks (numpy's and
 * R's default: rank q * (n - 1) from 0). NaN for an empty list.
 */
export function quantiles(xs: number[]): Quantiles {
  const sorted = [...xs].sort((a, b) => a - b);
  const at = (q: number) => {
    if (sorted.length === 0) return NaN;
    const r = q * (sorted.length - 1);
    const lo = Math.floor(r);
    const hi = Math.min(lo + 1, sorted.length - 1);
    return sorted[lo] + (r - lo) * (sorted[hi] - sorted[lo]);
  };
  return { p10: at(0.1), p25: at(0.25), median: at(0.5), p75: at(0.75), p90: at(0.9) };
}
