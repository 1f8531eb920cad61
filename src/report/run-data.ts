// What the dashboard knows of a run directory, read incrementally: metrics.jsonl and
// pair_log.jsonl from where the last read stopped (only complete lines: a line being written
// waits for its newline), the run lock and the checkpoints for the run's state. A file that
// shrank or was replaced (a resumed run truncates both logs) is read again from the start.
// Whatever is missing or broken becomes a problem the page shows, never an exception. Values
// are type-checked here (the page is built from them): a step count that is not a whole number,
// a pair log whose ids or margins are not numbers, is a problem, and the value is not used.
import { closeSync, existsSync, openSync, readFileSync, readSync, statSync } from "node:fs";
import { hostname } from "node:os";
import { basename, join, resolve } from "node:path";
import type { MetricRow } from "../train/metrics.js";
import { isAlive, LOCK_FILE, type LockHolder } from "../train/run-lock.js";
import { PAIR_LOG_FILE, type PairLogHeader, type PairLogRow } from "../train/pair-log.js";
import { checkpointDirs, RESUME_STATE } from "../train/checkpoint.js";

export const METRICS_FILE = "metrics.jsonl";
/** An `omni-dpo iterate` output_dir's rows, one per round (train/iterate.ts writes it). */
const ITERATE_FILE = "iterate.json";
const RESULTS_FILE = "train_results.json";
const HF_STATE_FILE = "trainer_state.json";

export type RunState = "running" | "finished" | "interrupted" | "not started" | "not a run";

export interface RunStatus {
  state: RunState;
  /** The last logged step, and the run's total when known (pair log header, checkpoint, or the finished run's trainer_state.json). */
  step: number;
  totalSteps: number | null;
  etaSeconds: number | null;
  /** Latest checkpoint's step. */
  checkpoint: number | null;
  detail: string;
}

/** What changed since the last poll; `reset`: the client drops what it had of this run first. */
export interface RunUpdate {
  run: number;
  name: string;
  reset: boolean;
  rows: MetricRow[];
  pairHeader: PairLogHeader | null;
  pairRows: PairLogRow[];
  status: RunStatus;
  problems: string[];
}

/** Complete lines of a growing file, from a byte offset; restarts when the file shrinks or is replaced. */
class LineTail {
  offset = 0;
  line = 0;
  ino = -1;
  /** Set when the file was replaced or shrank since the last read. */
  restarted = false;
  partial = false;

  constructor(readonly file: string) {}

  read(): string[] {
    this.restarted = false;
    let st;
    try {
      st = statSync(this.file);
    } catch {
      if (this.ino !== -1) this.#restart(-1);
      this.partial = false;
      return [];
    }
    if (st.ino !== this.ino || st.size < this.offset) this.#restart(st.ino);
    if (st.size === this.offset) return [];
    const buf = Buffer.alloc(st.size - this.offset);
    const fd = openSync(this.file, "r");
    try {
      readSync(fd, buf, 0, buf.length, this.offset);
    } finally {
      closeSync(fd);
    }
    const end = buf.lastIndexOf(0x0a) + 1; // only up to the last newline: the rest is being written
    this.partial = end < buf.length;
    this.offset += end;
    return end ? buf.subarray(0, end).toString("utf8").split("\n").slice(0, -1) : [];
  }

  #restart(ino: number): void {
    this.restarted = this.ino !== -1 || this.offset > 0;
    this.ino = ino;
    this.offset = 0;
    this.line = 0;
  }
}

function readJson<T>(file: string): T | null {
  try {
    return JSON.parse(readFileSync(file, "utf8")) as T;
  } catch {
    return null;
  }
}

const isCount = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
const isNumbers = (v: unknown): v is number[] => Array.isArray(v) && v.every((x) => typeof x === "number");
/** A value as a problem quotes it: JSON, cut short. */
const quote = (v: unknown) => {
  const j = JSON.stringify(v) ?? String(v);
  return j.length > 80 ? `${j.slice(0, 80)}…` : j;
};

/** Why a pair log's first line is not its header, or null when it is. */
function headerProblem(v: Record<string, unknown>): string | null {
  if (v.pair_log !== 1 || !Array.isArray(v.ids)) return "the first line is not a pair_log header";
  if (!v.ids.every(isCount)) return "the header's 'ids' are not all pair indices (whole numbers)";
  if (!isCount(v.total_steps)) return `the header's 'total_steps' is not a whole number (${quote(v.total_steps)})`;
  if (typeof v.loss !== "string") return `the header's 'loss' is not a string (${quote(v.loss)})`;
  return null;
}

/** Whether a pair log row holds a step and, per followed pair, numbers (w_qual, w_perf, gate: one or one per pair). */
function isPairRow(v: Record<string, unknown>, pairs: number): boolean {
  const perPair = (x: unknown) => x === undefined || typeof x === "number" || (isNumbers(x) && x.length === pairs);
  return (
    typeof v.step === "number" && isNumbers(v.m) && v.m.length === pairs && perPair(v.q) && perPair(v.p) && perPair(v.g)
  );
}

export class RunReader {
  readonly name: string;
  readonly dir: string;
  rows: MetricRow[] = [];
  pairHeader: PairLogHeader | null = null;
  pairRows: PairLogRow[] = [];
  readonly #metrics: LineTail;
  readonly #pairs: LineTail;
  #badLines: string[] = [];
  /** (time, step) when rows arrived, for the ETA. */
  #seen: [number, number][] = [];

  constructor(
    dir: string,
    readonly index: number,
    name?: string,
  ) {
    this.dir = resolve(dir);
    this.name = name ?? basename(this.dir);
    this.#metrics = new LineTail(join(this.dir, METRICS_FILE));
    this.#pairs = new LineTail(join(this.dir, PAIR_LOG_FILE));
  }

  /** Reads what was appended; returns the update, or null when nothing changed (the ETA aside). */
  poll(): RunUpdate | null {
    if (this.#readRounds()) {
      const status = this.status();
      return this.#update(true, this.rows, [], status, this.problems(status));
    }
    const newRows = this.#readMetrics();
    const newPairs = this.#readPairs();
    const reset = this.#metrics.restarted || this.#pairs.restarted;
    const status = this.status();
    const problems = this.problems(status);
    const seen = JSON.stringify([{ ...status, etaSeconds: null }, problems]);
    const changed = seen !== this.#lastSeen;
    this.#lastSeen = seen;
    if (reset) return this.#update(true, this.rows, this.pairRows, status, problems);
    return newRows.length || newPairs.length || changed
      ? this.#update(false, newRows, newPairs, status, problems)
      : null;
  }

  /** Everything read so far, as one update that replaces the client's copy. */
  snapshot(): RunUpdate {
    this.#readRounds();
    const status = this.status();
    return this.#update(true, this.rows, this.pairRows, status, this.problems(status));
  }

  #lastSeen = "";

  #update(reset: boolean, rows: MetricRow[], pairRows: PairLogRow[], status: RunStatus, problems: string[]): RunUpdate {
    return { run: this.index, name: this.name, reset, rows, pairHeader: this.pairHeader, pairRows, status, problems };
  }

  #roundsSeen = "";

  /**
   * An iterate output_dir: its rounds as rows (step: the round; round_pairs, round_train_loss and
   * each numeric eval figure as round_eval_*), read whole when iterate.json changes. Whether it changed.
   */
  #readRounds(): boolean {
    const file = join(this.dir, ITERATE_FILE);
    const st = statSync(file, { throwIfNoEntry: false });
    const seen = st ? `${st.ino}:${st.mtimeMs}:${st.size}` : "";
    if (seen === this.#roundsSeen) return false;
    this.#roundsSeen = seen;
    const rounds = readJson<{ rounds?: unknown }>(file)?.rounds;
    this.rows = [];
    if (!Array.isArray(rounds)) {
      if (st) this.#badLines.push(`${ITERATE_FILE}: not {"rounds": [...]}; ignored`);
      return true;
    }
    for (const r of rounds as Record<string, unknown>[]) {
      if (!isCount(r?.round)) continue;
      const row: MetricRow = { step: r.round as number, round_pairs: Number(r.pairs) };
      if (typeof r.train_loss === "number") row.round_train_loss = r.train_loss;
      const evaluation = (r.eval ?? {}) as Record<string, unknown>;
      for (const [k, v] of Object.entries(evaluation)) if (typeof v === "number") row[`round_eval_${k}`] = v;
      this.rows.push(row);
    }
    return true;
  }

  #readMetrics(): MetricRow[] {
    const lines = this.#metrics.read();
    if (this.#metrics.restarted) {
      this.rows = [];
      this.#badLines = this.#badLines.filter((p) => !p.startsWith(METRICS_FILE));
    }
    const out: MetricRow[] = [];
    for (const l of lines) {
      this.#metrics.line++;
      if (!l.trim()) continue;
      try {
        const row = JSON.parse(l) as MetricRow;
        if (typeof row !== "object" || row === null || typeof row.step !== "number")
          throw new Error("no numeric 'step'");
        out.push(row);
      } catch (e) {
        this.#badLines.push(
          `${METRICS_FILE} line ${this.#metrics.line}: not a metrics row (${(e as Error).message}); skipped`,
        );
      }
    }
    for (const row of out) this.rows.push(row); // not push(...out): too many arguments for a long run's file
    const last = out.filter((r) => "loss" in r).at(-1);
    if (last) this.#seen.push([Date.now(), last.step as number]);
    return out;
  }

  #readPairs(): PairLogRow[] {
    const lines = this.#pairs.read();
    if (this.#pairs.restarted) {
      this.pairHeader = null;
      this.pairRows = [];
      this.#badLines = this.#badLines.filter((p) => !p.startsWith(PAIR_LOG_FILE));
    }
    const out: PairLogRow[] = [];
    for (const l of lines) {
      this.#pairs.line++;
      try {
        const v = JSON.parse(l) as Record<string, unknown>;
        if (typeof v !== "object" || v === null) throw new Error("not a JSON object");
        if (this.#pairs.line === 1) {
          const problem = headerProblem(v);
          if (problem) throw new Error(problem);
          this.pairHeader = v as unknown as PairLogHeader;
        } else if (this.pairHeader && isPairRow(v, this.pairHeader.ids.length)) {
          out.push(v as unknown as PairLogRow);
        } else {
          throw new Error(`expected {"step", "m": [${this.pairHeader?.ids.length ?? "?"} margins]} (numbers)`);
        }
      } catch (e) {
        this.#badLines.push(`${PAIR_LOG_FILE} line ${this.#pairs.line}: ${(e as Error).message}; skipped`);
      }
    }
    for (const row of out) this.pairRows.push(row);
    return out;
  }

  /** What the page should say is missing or wrong (`status`: this poll's, read once). */
  problems(status: RunStatus = this.status()): string[] {
    if (!existsSync(this.dir)) return [`${this.dir} does not exist`];
    if (this.#roundsSeen) return this.#badLines.slice(-20);
    const out: string[] = [];
    if (status.state === "not a run") {
      out.push(
        `${this.dir} is not a training run: it has no ${METRICS_FILE}, ${LOCK_FILE} or checkpoint-* (pass an output_dir of omni-dpo train)`,
      );
      return out;
    }
    if (!existsSync(join(this.dir, METRICS_FILE)))
      out.push(`no ${METRICS_FILE} yet: nothing logged (the run logs every logging_steps)`);
    else if (!this.rows.length) out.push(`${METRICS_FILE} has no rows yet`);
    if (this.#metrics.partial)
      out.push(`${METRICS_FILE}: the last line is incomplete (being written); it is shown once complete`);
    if (!existsSync(join(this.dir, PAIR_LOG_FILE)))
      out.push(`no ${PAIR_LOG_FILE}: the per-pair view needs a run with pair_log_samples > 0`);
    else if (this.pairHeader && !this.pairRows.length) out.push(`${PAIR_LOG_FILE} has no logged step yet`);
    return [...out, ...this.#statusProblems, ...this.#badLines.slice(-20)];
  }

  /** Values status() found unusable in the run's files (set by each call). */
  #statusProblems: string[] = [];

  /** A whole number of steps from `file`'s `field`; anything else is a problem, and null. */
  #count(file: string, field: string, v: unknown): number | null {
    if (v === undefined || v === null || isCount(v)) return v ?? null;
    this.#statusProblems.push(`${file}: '${field}' is not a whole number of steps (${quote(v)}); ignored`);
    return null;
  }

  status(): RunStatus {
    const dir = this.dir;
    this.#statusProblems = [];
    if (this.#roundsSeen) return this.#iterateStatus();
    const checkpoints = checkpointDirs(dir);
    const latest = checkpoints.at(-1) ?? null;
    const lock = readJson<LockHolder>(join(dir, LOCK_FILE));
    // train_results.json is written with the final model; so is output_dir's trainer_state.json
    // (transformers' format: global_step, max_steps). A checkpoint's own resume state has the total.
    const finished = existsSync(join(dir, RESULTS_FILE));
    const hf = finished ? readJson<{ global_step?: unknown; max_steps?: unknown }>(join(dir, HF_STATE_FILE)) : null;
    const final = hf && {
      global_step: this.#count(HF_STATE_FILE, "global_step", hf.global_step) ?? undefined,
      max_steps: this.#count(HF_STATE_FILE, "max_steps", hf.max_steps) ?? undefined,
    };
    const resume = latest ? readJson<{ totalSteps?: unknown }>(join(latest.dir, RESUME_STATE)) : null;
    const resumeTotal =
      resume && this.#count(join(basename(latest!.dir), RESUME_STATE), "totalSteps", resume.totalSteps);
    // A loop, not Math.max(...rows): a long run's rows are more than the call stack holds as arguments.
    const step = this.rows.reduce((m, r) => ("loss" in r && (r.step as number) > m ? (r.step as number) : m), 0);
    const totalSteps = this.pairHeader?.total_steps ?? resumeTotal ?? final?.max_steps ?? null;
    const base = { step, totalSteps, etaSeconds: null as number | null, checkpoint: latest?.step ?? null };
    const hasMetrics = existsSync(join(dir, METRICS_FILE));
    if (lock && Number.isInteger(lock.pid)) {
      if (lock.hostname !== hostname())
        return {
          ...base,
          state: "running",
          detail: `locked by pid ${lock.pid} on ${lock.hostname} (not checkable from here), started ${lock.started}`,
        };
      if (isAlive(lock.pid))
        return {
          ...base,
          state: "running",
          etaSeconds: this.#eta(step, totalSteps, lock),
          detail: `pid ${lock.pid}, started ${lock.started}`,
        };
      return {
        ...base,
        state: "interrupted",
        detail: `its process (pid ${lock.pid}) is gone and left ${LOCK_FILE}: it was killed${latest ? `; resumes from checkpoint-${latest.step}` : ""}`,
      };
    }
    if (finished && (final?.max_steps === undefined || (final.global_step ?? 0) >= final.max_steps)) {
      return {
        ...base,
        step: Math.max(step, final?.global_step ?? 0),
        state: "finished",
        detail: `finished at step ${final?.global_step ?? step}`,
      };
    }
    if (!hasMetrics && !latest && !lock) return { ...base, state: "not a run", detail: "no run files" };
    if (!step && !latest) return { ...base, state: "not started", detail: "no step logged and no lock held" };
    return {
      ...base,
      state: "interrupted",
      detail: latest ? `stopped; resumes from checkpoint-${latest.step}` : "stopped before its first checkpoint",
    };
  }

  /** An iterate output_dir's state: its rounds done, and the round under way (its training's lock) if any. */
  #iterateStatus(): RunStatus {
    const done = this.rows.length;
    const base = { step: done, totalSteps: null, etaSeconds: null, checkpoint: null };
    const next = join(this.dir, `round-${done + 1}`);
    if (!existsSync(next)) return { ...base, state: "finished", detail: `iterate: ${done} rounds done` };
    const lock = readJson<LockHolder>(join(next, "train", LOCK_FILE));
    const alive = lock !== null && lock.hostname === hostname() && isAlive(lock.pid);
    return {
      ...base,
      state: alive ? "running" : "interrupted",
      detail: `iterate: ${done} rounds done; round ${done + 1} ${alive ? "training" : "under way or stopped"}`,
    };
  }

  /** Seconds left at the rate rows arrived while watching, else since the lock was taken. */
  #eta(step: number, total: number | null, lock: LockHolder): number | null {
    if (total === null || step <= 0) return null;
    const seen = this.#seen.filter(([, s]) => s > 0);
    let rate = 0;
    if (seen.length >= 2 && seen.at(-1)![1] > seen[0][1])
      rate = (seen.at(-1)![1] - seen[0][1]) / ((seen.at(-1)![0] - seen[0][0]) / 1000);
    else {
      const started = Date.parse(lock.started);
      const since =
        checkpointDirs(this.dir)
          .filter((c) => statSync(c.dir).mtimeMs < started)
          .at(-1)?.step ?? 0;
      const seconds =
        (statSync(join(this.dir, METRICS_FILE), { throwIfNoEntry: false })?.mtimeMs ?? Date.now()) / 1000 -
        started / 1000;
      if (step > since && seconds > 0) rate = (step - since) / seconds;
    }
    return rate > 0 ? Math.max(0, (total - step) / rate) : null;
  }
}
