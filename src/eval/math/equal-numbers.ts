// Python's math.isclose with the reference grader's relative tolerance, shared by the numeric and symbolic steps.
/** math.isclose(a, b, rel_tol=1e-4). */
export const isClose = (a: number, b: number): boolean =>
  a === b || (Number.isFinite(a) && Number.isFinite(b) && Math.abs(a - b) <= 1e-4 * Math.max(Math.abs(a), Math.abs(b)));
