// Files written whole or not at all, and durably: the content goes to a temporary name, is
// fsynced, renamed into place, and the directory is fsynced, so neither an interrupted run nor
// a power cut leaves a half-written file under the final name (or a rename that never reached
// the disk). Write errors (a full disk, a quota, an I/O error) name the file being written.
import {
  closeSync,
  existsSync,
  fsyncSync,
  openSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  truncateSync,
  writeSync,
} from "node:fs";
import { dirname, join } from "node:path";

/** A write that failed, naming the path; `code` is the system's (ENOSPC, EDQUOT, EIO, EFBIG...). */
export class WriteError extends Error {
  readonly code: string | undefined;
  constructor(
    readonly path: string,
    cause: unknown,
  ) {
    const e = cause as NodeJS.ErrnoException;
    super(`${path}: cannot write (${e?.message ?? String(cause)})`, { cause });
    this.name = "WriteError";
    this.code = e?.code;
  }
}

/** Runs `write`, turning any error into a WriteError naming `path` (an existing one is kept). */
export function writingTo<T>(path: string, write: () => T): T {
  try {
    return write();
  } catch (e) {
    throw e instanceof WriteError ? e : new WriteError(path, e);
  }
}

/** The temporary name a file is written under before its rename: `<file>.tmp-<pid>`. */
export function tempPath(file: string): string {
  return `${file}.tmp-${process.pid}`;
}

/** Whether a directory entry is a temporary name (of this module's writers, the safetensors writer's or a checkpoint's). */
export function isTempName(name: string): boolean {
  return /\.tmp-\d+$/.test(name);
}

/** fsyncs a file or a directory (a directory's fsync makes the renames and creations in it durable). */
export function fsyncPath(path: string): void {
  writingTo(path, () => {
    const fd = openSync(path, "r");
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  });
}

/** fsyncs every file under `dir` (recursively), then each directory, deepest first, `dir` last. */
export function fsyncTree(dir: string): void {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) fsyncTree(path);
    else fsyncPath(path);
  }
  fsyncPath(dir);
}

export function writeFileAtomic(file: string, data: string | Uint8Array): void {
  const tmp = tempPath(file);
  try {
    const fd = openSync(tmp, "w");
    try {
      const bytes = typeof data === "string" ? Buffer.from(data, "utf8") : data;
      for (let done = 0; done < bytes.byteLength;) done += writeSync(fd, bytes, done, bytes.byteLength - done);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, file);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw new WriteError(file, e);
  }
  fsyncPath(dirname(file));
}

export function writeJsonAtomic(file: string, value: unknown): void {
  writeFileAtomic(file, JSON.stringify(value, null, 2) + "\n");
}

/** One JSON object per line (JSONL). */
export function writeJsonLinesAtomic(file: string, rows: unknown[]): void {
  writeFileAtomic(file, rows.map((r) => JSON.stringify(r)).join("\n") + (rows.length ? "\n" : ""));
}

/**
 * Appends whole lines to a journal and fsyncs it before returning, so what was appended survives
 * a kill or a power cut; a new file's directory entry is made durable too. A kill in the middle
 * of a write can leave a torn last line, which readJournalLines drops.
 */
export function appendLinesDurable(file: string, lines: string[]): void {
  if (lines.length === 0) return;
  const created = !existsSync(file);
  writingTo(file, () => {
    const fd = openSync(file, "a");
    try {
      const bytes = Buffer.from(lines.map((l) => l + "\n").join(""), "utf8");
      for (let done = 0; done < bytes.byteLength;) done += writeSync(fd, bytes, done, bytes.byteLength - done);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  });
  if (created) fsyncPath(dirname(file));
}

/**
 * The complete lines of a journal (none when it does not exist). A torn last line (no final
 * newline: the writer was killed mid-write) is cut off the file, so the next append starts clean.
 */
export function readJournalLines(file: string): string[] {
  if (!existsSync(file)) return [];
  const text = readFileSync(file, "utf8");
  const end = text.lastIndexOf("\n") + 1;
  if (end < text.length) writingTo(file, () => truncateSync(file, Buffer.byteLength(text.slice(0, end), "utf8")));
  return text
    .slice(0, end)
    .split("\n")
    .filter((l) => l.length > 0);
}
