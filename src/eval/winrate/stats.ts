// The figures of a win-rate evaluation, from per-prompt preferences (1: the model's answer won,
// 0: the baseline's, 0.5: a tie, fractions where two judgements split): the mean, a percentile
// bootstrap confidence interval over prompts, and AlpacaEval 2's length-controlled win rate.
import { mulberry32 } from "../../util/random.js";

export function mean(values: readonly number[]): number {
  return values.reduce((s, v) => s + v, 0) / values.length;
}

/** The q-quantile of sorted values, interpolated linearly between order statistics (numpy's default). */
export function quantile(sorted: readonly number[], q: number): number {
  const at = q * (sorted.length - 1);
  const lo = Math.floor(at);
  const hi = Math.min(lo + 1, sorted.length - 1);
  return sorted[lo] + (at - lo) * (sorted[hi] - sorted[lo]);
}

export interface BootstrapOptions {
  /** Resamples of the prompts (default 1000). */
  resamples?: number;
  /** Seeds the resampling (default 0), so a report is repeatable. */
  seed?: number;
}

/**
 * The 95% percentile-bootstrap interval of the mean: the prompts are resampled with replacement
 * `resamples` times and the 2.5% and 97.5% quantiles of the resampled means returned. Prompts,
 * not judgements, are the unit, so the interval reflects which prompts were asked.
 */
export function bootstrapCI(values: readonly number[], options: BootstrapOptions = {}): [number, number] {
  const n = values.length;
  if (n === 0) throw new Error("bootstrapCI: no values");
  const next = mulberry32(options.seed ?? 0);
  const means = Array.from({ length: options.resamples ?? 1000 }, () => {
    let sum = 0;
    for (let j = 0; j < n; j++) sum += values[Math.floor(next() * n)];
    return sum / n;
  }).sort((a, b) => a - b);
  return [quantile(means, 0.025), quantile(means, 0.975)];
}

const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));

export interface LengthFit {
  /** The fitted preference at zero length difference: sigmoid(intercept). */
  lcWinRate: number;
  intercept: number;
  /** The weight of the standardised length difference. */
  slope: number;
  /** The scale the length differences were divided by (their root mean square); 0: all equal. */
  scale: number;
}

/**
 * AlpacaEval 2's idea of a length-controlled win rate: a logistic regression of the judge's
 * preference p_i (fractions allowed) on the standardised length difference x_i = d_i / s, where
 * d_i = length(model answer) - length(baseline answer) and s = sqrt(mean(d^2)), so that x = 0
 * still means equal lengths. The fit minimises the mean cross-entropy
 *   -mean(p log sigmoid(a + b x) + (1 - p) log(1 - sigmoid(a + b x))) + (penalty / 2) b^2
 * by Newton's method; the reported figure is sigmoid(a), the win rate the judge would give at
 * equal lengths. The small ridge on the slope keeps the fit finite when a few prompts separate
 * perfectly by length (all longer answers won); with penalty 0 it is the plain maximum likelihood.
 */
export function lengthControlledWinRate(
  preferences: readonly number[],
  lengthDiffs: readonly number[],
  penalty = 0.01,
): LengthFit {
  const n = preferences.length;
  if (n === 0 || n !== lengthDiffs.length)
    throw new Error("lengthControlledWinRate: one length difference per preference");
  const scale = Math.sqrt(mean(lengthDiffs.map((d) => d * d)));
  const x = lengthDiffs.map((d) => (scale > 0 ? d / scale : 0));
  let a = 0;
  let b = 0;
  for (let iter = 0; iter < 200; iter++) {
    // Gradient g and Hessian H of the objective in (a, b).
    let ga = 0;
    let gb = 0;
    let haa = 0;
    let hab = 0;
    let hbb = 0;
    for (let i = 0; i < n; i++) {
      const s = sigmoid(a + b * x[i]);
      const w = s * (1 - s);
      ga += (s - preferences[i]) / n;
      gb += ((s - preferences[i]) * x[i]) / n;
      haa += w / n;
      hab += (w * x[i]) / n;
      hbb += (w * x[i] * x[i]) / n;
    }
    gb += penalty * b;
    hbb += penalty;
    if (Math.abs(ga) < 1e-13 && Math.abs(gb) < 1e-13) break;
    // Equal lengths everywhere (or no slope to fit): the intercept alone.
    const det = haa * hbb - hab * hab;
    let da: number;
    let db: number;
    if (scale === 0 || det <= 1e-300) {
      da = haa > 0 ? ga / haa : Math.sign(ga);
      db = 0;
    } else {
      da = (hbb * ga - hab * gb) / det;
      db = (haa * gb - hab * ga) / det;
    }
    // Steps are capped so that a preference of exactly 0 or 1 everywhere walks the intercept out
    // steadily (its sigmoid to within 1e-13 of the answer) instead of overshooting.
    const size = Math.hypot(da, db);
    if (size > 4) [da, db] = [(4 * da) / size, (4 * db) / size];
    a -= da;
    b -= db;
  }
  return { lcWinRate: sigmoid(a), intercept: a, slope: b, scale };
}
