// Evaluation results for the dashboard: the JSON objects `omni-dpo eval --json` prints (the
// win-rate task's, the math task's, the pairwise task's), saved to files, one per checkpoint or
// round. Each becomes a flat list of named figures; a file that cannot be read or holds no
// figure becomes a problem the page shows, never an exception.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { basename, join } from "node:path";

export interface EvalResult {
  /** The file's name without .json (a column of the table, a point of the chart). */
  name: string;
  file: string;
  /** Figure name -> value, in the file's order ("win_rate", "ci95 low", "math500 accuracy", ...). */
  metrics: Record<string, number>;
  problem?: string;
}

/** Bookkeeping, not results: left out of the table. */
const SKIPPED = new Set(["records", "groups", "resumed", "seconds", "problems_per_second", "tokens_per_second"]);

/**
 * The figures of one evaluation JSON: numbers at the top level and one level down
 * ("pass_at_k 4"), a two-number interval as its low and high ("ci95 low"), and a list of
 * benchmarks (the math task over several files) by their dataset names ("math500 accuracy").
 */
export function evalMetrics(value: unknown): Record<string, number> {
  const out: Record<string, number> = {};
  const add = (prefix: string, v: unknown, depth: number) => {
    if (typeof v === "number" && Number.isFinite(v)) out[prefix] = v;
    else if (Array.isArray(v) && v.length === 2 && v.every((x) => typeof x === "number")) {
      out[`${prefix} low`] = v[0] as number;
      out[`${prefix} high`] = v[1] as number;
    } else if (Array.isArray(v) && prefix === "benchmarks") {
      for (const b of v as Record<string, unknown>[]) {
        const name = typeof b?.dataset === "string" ? b.dataset : "?";
        for (const [k, x] of Object.entries(b ?? {})) if (!SKIPPED.has(k)) add(`${name} ${k}`, x, 0);
      }
    } else if (v !== null && typeof v === "object" && !Array.isArray(v) && depth < 1) {
      for (const [k, x] of Object.entries(v)) add(`${prefix} ${k}`, x, depth + 1);
    }
  };
  if (value !== null && typeof value === "object" && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) if (!SKIPPED.has(k)) add(k, v, 0);
  }
  return out;
}

/** Numbers in names compare as numbers: round-2 before round-10. */
const natural = (a: string, b: string) => a.localeCompare(b, undefined, { numeric: true });

/** The evaluations in `paths`, in order: each a JSON file, or a directory of them (sorted by name). */
export function readEvalResults(paths: string[]): EvalResult[] {
  const files = paths.flatMap((p) => {
    try {
      if (!statSync(p).isDirectory()) return [p];
    } catch {
      return [p]; // reported below as unreadable
    }
    return readdirSync(p)
      .filter((f) => f.endsWith(".json"))
      .sort(natural)
      .map((f) => join(p, f));
  });
  return files.map((file) => {
    const name = basename(file).replace(/\.json$/, "");
    let value: unknown;
    try {
      value = JSON.parse(readFileSync(file, "utf8"));
    } catch (e) {
      return { name, file, metrics: {}, problem: `${file}: cannot read an evaluation JSON: ${(e as Error).message}` };
    }
    const metrics = evalMetrics(value);
    return Object.keys(metrics).length
      ? { name, file, metrics }
      : { name, file, metrics, problem: `${file}: no figures (expected the JSON object eval --json prints)` };
  });
}
