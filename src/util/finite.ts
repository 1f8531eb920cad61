// The check that a loss or metric is a number at all: NaN or infinity is an error naming it,
// never a logged row or an averaged value. Training and evaluation both check their values.

/** A loss or metric that came out NaN or infinite: the weights or the data are broken, and averaging would hide it. */
export class NonFiniteMetricError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "NonFiniteMetricError";
  }
}

/**
 * Throws a NonFiniteMetricError naming every metric of `values` that is NaN or infinite, after
 * `context` ("step 12"), with `detail` (where it came from) after them.
 */
export function assertFinite(values: Record<string, number>, context: string, detail?: string | null): void {
  const bad = Object.entries(values).filter(([, v]) => !Number.isFinite(v));
  if (!bad.length) return;
  const named = bad.map(([k, v]) => `${k} is ${v}`).join(", ");
  throw new NonFiniteMetricError(`${context}: ${named}${detail ? ` (${detail})` : ""}`);
}
