// The check that a metric is a number at all: NaN or infinity is an error, never a row (training
// and evaluation both report metrics, so it sits below them).

/** A loss or metric that came out NaN or infinite: the weights or the data are broken, and averaging would hide it. */
export class NonFiniteMetricError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "NonFiniteMetricError";
  }
}

/** Throws a NonFiniteMetricError naming every metric of `values` that is NaN or infinite, after `context` ("step 12"), with `detail` (where it came from) after them. */
export function assertFinite(values: Record<string, number>, context: string, detail?: string | null): void {
  const bad = Object.entries(values).filter(([, v]) => !Number.isFinite(v));
  if (bad.length)
    throw new NonFiniteMetricError(
      `${context}: ${bad.map(([k, v]) => `${k} is ${v}`).join(", ")}${detail ? ` (${detail})` : ""}`,
    );
}
