// The per-pair log, output_dir/pair_log.jsonl: every pair_logging_steps, each pair of a fixed
// sample of the training pairs with its implicit-reward margin and the loss's own per-pair
// values (Omni-DPO: w_qual, w_perf, the c-NLL gate), for the dashboard's w_qual/w_perf view.
//
// Why a fixed sample rather than the step's batch: a batch holds other pairs at every log, so
// no pair could be followed over the run (the slider, "the pairs that moved most"); the sample
// is the same pairs each time, at the price of one no-grad forward over them per log.
//
// Layout (compact, columnar): a header line {"pair_log":1,"ids":[...],"loss":...,"total_steps":T}
// (ids: indices into the training split), then one line per logged step,
// {"step":S,"epoch":E,"m":[...],"q":[...],"p":[...],"g":[...]}: margins, w_qual, w_perf and
// gate in the ids' order, 4 significant digits; a value the loss holds constant (a weight
// switched off) is one number instead of a list. A pair is fitted when its margin is above 0.
// About 25 bytes per pair per log (26 measured on the demo): 60k pairs x 100 logs is about
// 150 MB; the default sample of 256 pairs, about 650 KB.
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, writeSync } from "node:fs";
import { shuffled } from "../data/mixer.js";
import { writeFileAtomic, writingTo } from "../util/files.js";

export const PAIR_LOG_FILE = "pair_log.jsonl";

export interface PairLogHeader {
  pair_log: 1;
  ids: number[];
  loss: string;
  total_steps: number;
}
export interface PairLogRow {
  step: number;
  epoch: number;
  m: number[];
  q?: number[] | number;
  p?: number[] | number;
  g?: number[] | number;
}

/** The loss's metric names and the row keys they go under. */
export const PAIR_FIELDS = { w_qual: "q", w_perf: "p", nll_gate: "g" } as const;

/** The training pairs the log follows: `count` of `pairs` indices drawn with `seed`, in index order. */
export function pairSample(pairs: number, count: number, seed: number): number[] {
  return shuffled(
    Array.from({ length: pairs }, (_, i) => i),
    seed + 7919,
  )
    .slice(0, count)
    .sort((a, b) => a - b);
}

const short = (v: number) => Number(v.toPrecision(4));

export class PairLog {
  /** The file is not there yet: the header goes with the first row (a run that fails before logging leaves no file). */
  #headerPending = false;

  constructor(
    readonly file: string,
    readonly header: PairLogHeader,
  ) {}

  /**
   * Makes the file this run's: keeps the header and the rows up to `step` (a resumed run redoes
   * the later ones; -1 for a fresh run), or starts it over when its header is another sample's.
   */
  open(step: number): void {
    const same = (text: string) => {
      try {
        const h = JSON.parse(text) as PairLogHeader;
        return (
          h.pair_log === 1 && JSON.stringify(h.ids) === JSON.stringify(this.header.ids) && h.loss === this.header.loss
        );
      } catch {
        return false;
      }
    };
    if (!existsSync(this.file)) {
      this.#headerPending = true;
      return;
    }
    const lines = readFileSync(this.file, "utf8")
      .split("\n")
      .filter((l) => l.trim());
    const kept =
      step >= 0 && lines.length && same(lines[0])
        ? lines.slice(1).filter((l) => {
            try {
              return (JSON.parse(l) as PairLogRow).step <= step;
            } catch {
              return false;
            }
          })
        : [];
    writeFileAtomic(this.file, [JSON.stringify(this.header), ...kept].map((l) => l + "\n").join(""));
  }

  /** Appends one step's values (margins and the loss's per-pair metrics, in the header's order) and fsyncs. */
  write(step: number, epoch: number, margins: number[], metrics: Record<string, number[] | number>): void {
    const row: PairLogRow = { step, epoch, m: margins.map(short) };
    for (const [name, key] of Object.entries(PAIR_FIELDS)) {
      const v = metrics[name];
      if (v !== undefined) row[key] = typeof v === "number" ? short(v) : v.map(short);
    }
    if (this.#headerPending) {
      writeFileAtomic(this.file, JSON.stringify(this.header) + "\n");
      this.#headerPending = false;
    }
    writingTo(this.file, () => {
      const fd = openSync(this.file, "a");
      try {
        writeSync(fd, JSON.stringify(row) + "\n");
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
    });
  }
}
