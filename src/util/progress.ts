// A one-line progress bar with rate and ETA on stderr. On a terminal it redraws in place;
// elsewhere (CI logs, pipes) it prints a line every few seconds so logs stay short.
export class Progress {
  readonly #start = Date.now();
  #lastPrint = 0;
  #done = 0;
  readonly #tty = Boolean(process.stderr.isTTY);

  constructor(
    readonly label: string,
    readonly total: number,
    readonly enabled = true,
  ) {}

  /** Advances to `done` (absolute) and shows `info` (e.g. "loss 0.41") after the bar. */
  update(done: number, info = ""): void {
    this.#done = done;
    if (!this.enabled) return;
    const now = Date.now();
    const finished = done >= this.total;
    if (!finished && now - this.#lastPrint < (this.#tty ? 100 : 5000)) return;
    this.#lastPrint = now;
    const elapsed = (now - this.#start) / 1000;
    const rate = done / Math.max(elapsed, 1e-9);
    const eta = done > 0 ? (this.total - done) / rate : NaN;
    const width = 24;
    const filled = Math.round((width * Math.min(done, this.total)) / Math.max(this.total, 1));
    const bar = "█".repeat(filled) + "░".repeat(width - filled);
    const line = `${this.label} ${bar} ${done}/${this.total} ${formatSeconds(elapsed)}<${formatSeconds(eta)} ${info}`;
    if (this.#tty) process.stderr.write(`\r\x1b[2K${line}${finished ? "\n" : ""}`);
    else process.stderr.write(`${line}\n`);
  }

  finish(info = ""): void {
    if (this.#done < this.total || this.#tty) this.update(this.total, info);
  }
}

export function formatSeconds(s: number): string {
  if (!Number.isFinite(s)) return "?";
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)}s`;
  const m = Math.floor(s / 60);
  return m < 60
    ? `${m}m${String(Math.round(s % 60)).padStart(2, "0")}s`
    : `${Math.floor(m / 60)}h${String(m % 60).padStart(2, "0")}m`;
}

/** A metrics row as one console line: key=value, fractions to 4 significant digits. */
export function formatRow(row: Record<string, number | string>): string {
  return Object.entries(row)
    .map(([k, v]) => `${k}=${typeof v === "number" && !Number.isInteger(v) ? v.toPrecision(4) : v}`)
    .join(" ");
}
