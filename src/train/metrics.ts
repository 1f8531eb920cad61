// Where training metrics go: one JSON object per line in output_dir/metrics.jsonl (train rows
// and `eval_`-prefixed eval rows), written as they happen so an interrupted run keeps them;
// and the average of a logging interval. (A metric that is no number is an error: util/finite.ts.)
import { appendFileSync, existsSync, readFileSync } from "node:fs";
import { writeFileAtomic, writingTo } from "../util/files.js";

export type MetricRow = Record<string, number | string>;

export { assertFinite, NonFiniteMetricError } from "../util/finite.js";

export class MetricsSink {
  constructor(readonly file: string) {}

  write(row: MetricRow): void {
    writingTo(this.file, () => appendFileSync(this.file, JSON.stringify(row) + "\n"));
  }

  /** Drops rows logged after `step` (a resumed run rewrites them). */
  truncateAfter(step: number): void {
    if (!existsSync(this.file)) return;
    const kept = readFileSync(this.file, "utf8")
      .split("\n")
      .filter((l) => {
        if (!l.trim()) return false;
        try {
          return ((JSON.parse(l) as MetricRow).step as number) <= step;
        } catch {
          return false;
        }
      });
    writeFileAtomic(this.file, kept.map((l) => l + "\n").join(""));
  }

  static read(file: string): MetricRow[] {
    if (!existsSync(file)) return [];
    return readFileSync(file, "utf8")
      .split("\n")
      .filter((l) => l.trim())
      .map((l) => JSON.parse(l) as MetricRow);
  }
}

/** Averages metric values over the steps since the last log, as the HF trainer reports them. */
export class MetricAverager {
  #sums = new Map<string, number>();
  #counts = new Map<string, number>();

  add(values: Record<string, number>): void {
    for (const [k, v] of Object.entries(values)) {
      this.#sums.set(k, (this.#sums.get(k) ?? 0) + v);
      this.#counts.set(k, (this.#counts.get(k) ?? 0) + 1);
    }
  }

  drain(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [k, s] of this.#sums) out[k] = s / this.#counts.get(k)!;
    this.#sums.clear();
    this.#counts.clear();
    return out;
  }
}
