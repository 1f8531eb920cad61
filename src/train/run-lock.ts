// One run per output_dir at a time: two runs on one directory would interleave metrics.jsonl
// and overwrite each other's checkpoints. The run holds output_dir/train.lock, created with
// O_CREAT|O_EXCL (so exactly one of two starting runs gets it) and holding its pid, host and
// start time. It is removed when the run ends (also on error, and by an exit handler when a
// second Ctrl-C exits at once). A lock left by a killed run on this host (its pid no longer
// alive) is taken over with a notice; one held by a live run, or by a run on another host
// (whose pid cannot be checked from here), is refused with a message naming it.
import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  statSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { WriteError } from "../util/files.js";

export const LOCK_FILE = "train.lock";

export interface LockHolder {
  pid: number;
  hostname: string;
  started: string;
}

export class RunLockedError extends Error {
  constructor(
    message: string,
    readonly file: string,
    readonly holder: LockHolder | null,
  ) {
    super(message);
    this.name = "RunLockedError";
  }
}

/** A lock file whose content cannot be read yet may be one being written this instant; older than this, it is a creator killed mid-write. */
const UNREADABLE_GRACE_MS = 5_000;

/** Whether a process with this pid runs on this host. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM"; // alive, someone else's
  }
}

function readText(file: string): string | null {
  try {
    return readFileSync(file, "utf8");
  } catch {
    return null;
  } // released meanwhile
}

function parseHolder(text: string): LockHolder | null {
  try {
    const h = JSON.parse(text) as LockHolder;
    return Number.isInteger(h.pid) && typeof h.hostname === "string" ? h : null;
  } catch {
    return null;
  }
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

export class RunLock {
  #released = false;
  readonly #onExit = () => this.release();

  private constructor(
    readonly file: string,
    readonly text: string,
    readonly outputDir: string,
    readonly createdDir: boolean,
  ) {
    process.on("exit", this.#onExit);
  }

  /** Takes output_dir's lock (creating output_dir), or throws a RunLockedError naming the holder. `notify` hears of a stale lock taken over. */
  static acquire(outputDir: string, notify?: (message: string) => void): RunLock {
    const createdDir = !existsSync(outputDir);
    mkdirSync(outputDir, { recursive: true });
    const file = join(outputDir, LOCK_FILE);
    const me: LockHolder = { pid: process.pid, hostname: hostname(), started: new Date().toISOString() };
    const text = JSON.stringify(me) + "\n";
    for (let attempt = 0; attempt < 50; attempt++) {
      try {
        const fd = openSync(file, "wx"); // O_CREAT | O_EXCL
        try {
          writeSync(fd, text);
          fsyncSync(fd);
        } finally {
          closeSync(fd);
        }
        return new RunLock(file, text, outputDir, createdDir);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw new WriteError(file, e);
      }
      const seen = readText(file);
      if (seen === null) continue;
      const holder = parseHolder(seen);
      let stale: string | null = null;
      if (holder && holder.hostname === me.hostname && !isAlive(holder.pid)) {
        stale = `pid ${holder.pid}, started ${holder.started}, is no longer running`;
      } else if (!holder) {
        const age = Date.now() - (existsSync(file) ? statSync(file).mtimeMs : Date.now());
        if (age < UNREADABLE_GRACE_MS) {
          sleepSync(100);
          continue;
        }
        stale = "it is unreadable (its run was killed while writing it)";
      }
      if (stale === null) {
        const who = holder!;
        throw new RunLockedError(
          `${outputDir} is in use by another run: pid ${who.pid} on ${who.hostname}, started ${who.started} ` +
            `(lock file ${file}). Wait for that run to end or stop it; if no run holds it (a crashed run on another host, ` +
            "or a pid since reused), delete the lock file.",
          file,
          who,
        );
      }
      // Only the lock just read is removed: one that changed meanwhile belongs to a run that
      // took it over first. (The re-read and the unlink are not one atomic step; the window is
      // microseconds, and both contenders would then race on O_EXCL again.)
      if (readText(file) === seen) {
        try {
          unlinkSync(file);
        } catch {
          /* another run removed it first */
        }
        notify?.(`${file}: took over a stale lock (${stale})`);
      }
    }
    throw new RunLockedError(`${file}: could not take the lock (it kept changing hands)`, file, null);
  }

  /** Removes the lock if it is still this run's, and output_dir if this run created it and left it empty. */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    process.off("exit", this.#onExit);
    if (readText(this.file) === this.text) {
      try {
        unlinkSync(this.file);
      } catch {
        /* already gone */
      }
    }
    if (this.createdDir) {
      try {
        if (readdirSync(this.outputDir).length === 0) rmdirSync(this.outputDir);
      } catch {
        /* not ours to worry about */
      }
    }
  }
}
